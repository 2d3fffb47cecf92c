// One guest process connected to the router: its API server, the two pumps
// between them, command validation and accounting.
#pragma once

#include <sys/types.h>

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "admission.h"
#include "api_registry.h"
#include "dispatcher.h"
#include "hira/channel.h"
#include "hira/window.h"
#include "server_pool.h"
#include "stats.h"
#include "vm.h"

namespace hira::router {

class VmRegion;

// What the operator allows every guest process.
struct GuestLimits {
  uint64_t max_window_bytes = kDefaultWindowBytes;  // 0: no shared-memory windows
};

// The router's parts every session uses.
struct RouterParts {
  const ApiRegistry &apis;
  ServerPool &pool;
  Stats &stats;
  const GuestLimits &limits;
  const ResourceIds &resources;
  Dispatcher &dispatcher;
  const Admission &admission;
};

class GuestSession {
 public:
  // `vm` is the VM the guest's listener stands for; `origin` names the
  // guest ("LABEL#n"); `region` is that VM's shared region, if the operator
  // gave it one.
  GuestSession(int guest_fd, const RouterParts &parts, Vm &vm, std::string origin,
               VmRegion *region = nullptr);
  ~GuestSession();
  // Serves the guest until it or its server goes away.
  void run();

 private:
  struct Pending {
    uint32_t func;
    std::chrono::steady_clock::time_point start;
    CallAccounting accounting;
    std::vector<std::pair<uint64_t, uint64_t>> writes;  // window ranges the server fills
  };

  bool handshake();
  bool start_server();
  // How the server that just closed its channel ended, for the log ("" if it runs).
  std::string server_fate();
  // The guest's window fd (closed here), checked: the fd to hand its server, or -1.
  int accept_window(int fd);
  // A slice of the VM's region a guest in a VM names, checked and claimed:
  // the region's fd to hand its server, or -1.
  int accept_vm_window(uint64_t offset, uint64_t bytes);
  // The guest's command rings fd (closed here), checked and mapped, or null.
  std::unique_ptr<RingPair> accept_rings(int fd);
  void guest_to_server();
  void server_to_guest();
  // Counts a call of `func` the router refused.
  void rejected(uint32_t func);
  void reply_status(const wire::FrameHeader &call, wire::ReplyStatus status, uint32_t detail = 0);
  // A tagged call's window references against the writes in flight (mu_
  // held): false if one overlaps (the server may be filling those bytes).
  // Its own out ranges go to *writes.
  bool references_clear(const Frame &f, std::vector<std::pair<uint64_t, uint64_t>> *writes) const;
  void end_writes(const Pending &p);
  void account_call(uint32_t func, const std::vector<Reader> &blobs, const CallAccounting &a);
  void account_reply(const Pending &p, const Frame &reply);
  // An Account frame from the server (wire::AccountNotice): what an object
  // holds, or that it is gone. False if it is malformed.
  bool account_notices(const Frame &f);
  // `handle` (0: none known) holds `amount` of `resource`, allocated by a
  // call of `func`; and the release of what it holds (mu_ not held).
  void hold(uint32_t func, uint32_t resource, uint64_t handle, int64_t amount);
  void release(uint32_t resource, uint64_t handle);
  // The VM's ledger: what this guest holds (+/-) and consumed, by the
  // module's resource index.
  void book_held(uint32_t resource, int64_t delta);
  void book_used(uint32_t resource, int64_t amount);
  // Continuous amounts an admitted call asks for count against its VM's
  // quota until its reply says whether they were taken.
  void reserve(const CallAccounting &a, int sign);

  Channel guest_;
  std::unique_ptr<Channel> server_;
  const ApiRegistry &apis_;
  ServerPool &pool_;
  const ApiEntry *api_ = nullptr;
  Stats &stats_;
  FunctionStats *fstats_ = nullptr;  // stats_ of api_'s functions, looked up once
  const GuestLimits &limits_;
  const ResourceIds &resources_;
  Dispatcher &dispatcher_;
  const Admission &admission_;
  Vm &vm_;
  // What this guest holds, by router-wide resource id: its VM's ledger
  // gives it back when the guest (and its server with its objects) goes.
  std::array<std::atomic<int64_t>, kMaxResources> held_by_rc_{};
  bool counted_ = false;
  std::unordered_set<uint32_t> refused_async_said_;  // functions whose refusal was logged  // in
                                                     // its VM's ledger as a connected guest
  std::string name_;
  uint64_t window_bytes_ = 0;
  // The guest's window is larger than the operator allows: the server maps
  // and the guest uses only its first window_bytes_.
  bool window_cut_ = false;
  VmRegion *region_;
  std::optional<uint64_t> region_slice_;  // the slice of region_ this guest holds
  pid_t server_pid_ = -1;
  std::shared_ptr<SandboxPlan> server_sandbox_;  // its home goes once it has ended

  std::mutex mu_;
  // Sync calls in flight, by call id. A call takes the slot of (id %
  // kFastSlots) and the reply frees it without mu_: the two pumps run on
  // different cores, and the lock and a map node cost ~0.5 us each way on
  // the H200 (hop trace). Where that slot is taken, a call fills window
  // ranges, or pending_ holds anything (so duplicates are still seen), the
  // call goes in pending_ under mu_. A slot's id is 0 when free; whoever
  // changes it from a call's id to 0 (reply, or the sweep when the server
  // goes) answers that call.
  static constexpr size_t kFastSlots = 64;
  // A slot's call is copied in and out field by field, only as many
  // deltas as it has: most calls have none, and then the other pump reads
  // one cache line of the slot, not the whole Pending.
  struct alignas(64) FastSlot {
    std::atomic<uint64_t> id{0};
    Pending p;
    void put(const Pending &call);
    void take(Pending *call) const;
  };
  std::array<FastSlot, kFastSlots> fast_;
  std::atomic<size_t> pending_count_{0};  // pending_.size(), read without mu_
  std::unordered_map<uint64_t, Pending> pending_;
  std::map<std::pair<uint32_t, uint64_t>, int64_t> held_;  // (resource, handle) -> amount
  std::unordered_map<uint64_t, uint32_t> refs_;  // handles holding resources -> references
  // Handles whose holdings go when the server reports them destroyed
  // (rc_until_destroyed), not at their last release call.
  std::unordered_set<uint64_t> until_destroyed_;
  // ... of which the application released the last reference (mu_).
  std::unordered_set<uint64_t> releasing_;
  std::map<uint64_t, uint64_t> writes_;  // window ranges being filled: offset -> end (disjoint)
  std::atomic<bool> server_gone_{false};
};

}  // namespace hira::router
