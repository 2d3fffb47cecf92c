// One guest process connected to the router: its API server, the two pumps
// between them, command validation and accounting.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "api_registry.h"
#include "hira/channel.h"
#include "server_pool.h"
#include "stats.h"

namespace hira::router {

class GuestSession {
 public:
  // `origin` names where the guest came from (the listener's label).
  GuestSession(int guest_fd, const ApiRegistry &apis, ServerPool &pool, Stats &stats,
               std::string origin);
  ~GuestSession();
  // Serves the guest until it or its server goes away.
  void run();

 private:
  struct Pending {
    uint32_t func;
    std::chrono::steady_clock::time_point start;
    CallAccounting accounting;
  };

  bool handshake();
  bool start_server();
  void guest_to_server();
  void server_to_guest();
  void reply_status(const wire::FrameHeader &call, wire::ReplyStatus status);
  void account_call(uint32_t func, const std::vector<Reader> &blobs, const CallAccounting &a);
  void account_reply(const Pending &p, const Frame &reply);

  Channel guest_;
  std::unique_ptr<Channel> server_;
  const ApiRegistry &apis_;
  ServerPool &pool_;
  const ApiEntry *api_ = nullptr;
  Stats &stats_;
  std::string name_;
  pid_t server_pid_ = -1;

  std::mutex mu_;
  std::unordered_map<uint64_t, Pending> pending_;
  std::map<std::pair<uint32_t, uint64_t>, int64_t> held_;  // (resource, handle) -> amount
  std::unordered_map<uint64_t, uint32_t> refs_;  // handles holding resources -> references
  bool server_gone_ = false;
};

}  // namespace hira::router
