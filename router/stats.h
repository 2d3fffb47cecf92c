// What the router saw: calls per function and resources per guest.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hira/router_module.h"

namespace hira::router {

// Counted without a lock: every call of every guest passes here twice, and
// a lock shared by all sessions' pumps would cost each call its cache line.
struct FunctionStats {
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> async_calls{0};
  std::atomic<uint64_t> rejected{0};  // refused by the router (malformed, unknown)
  std::atomic<uint64_t> failed{0};    // the server could not run it (bad handle, no server, ...)
  std::atomic<uint64_t> bytes_in{0};  // guest -> server payload
  std::atomic<uint64_t> bytes_out{0};
  std::atomic<uint64_t> total_ns{0};  // sync calls: router-observed round trip
  std::atomic<uint64_t> max_ns{0};
};

struct ResourceStats {
  int64_t current = 0;  // continuous: held now
  int64_t peak = 0;
  uint64_t total = 0;  // instantaneous: consumed; continuous: allocated
};

class Stats {
 public:
  void add_api(const RouterModule &m);
  // The counters of API m's functions (m.function_count of them), or null:
  // a session looks them up once (apis_ does not change after add_api).
  FunctionStats *functions(const RouterModule &m);
  static void record_call(FunctionStats &f, bool async, uint64_t bytes);
  static void record_reply(FunctionStats &f, uint64_t bytes, uint64_t ns, bool ok);
  static void record_rejected(FunctionStats &f);
  void record_resource(const RouterModule &m, const std::string &guest, uint32_t rc, int64_t delta);
  // The guest process has gone: its resources join its VM's departed total
  // ("LABEL/departed"), so that a long-running router keeps one entry per
  // VM and API, not one per guest process that ever connected.
  void forget_guest(const std::string &guest);

  void print(FILE *out) const;
  nlohmann::json json() const;

 private:
  struct ApiStats {
    const RouterModule *module = nullptr;
    std::unique_ptr<FunctionStats[]> functions;                // module->function_count of them
    std::map<std::string, std::vector<ResourceStats>> guests;  // guest -> per resource
  };
  mutable std::mutex mu_;  // guards the resources
  std::map<std::string, ApiStats, std::less<>> apis_;
};

}  // namespace hira::router
