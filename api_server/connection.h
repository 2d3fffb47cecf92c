// One guest process's session in the API server: its channel, handle table,
// shadow threads and in-flight callbacks.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "handle_table.h"
#include "hira/channel.h"
#include "hira/server.h"
#include "hira/trace.h"
#include "hira/window.h"
#include "staging_pool.h"

namespace hira::server {

class Connection {
 public:
  Connection(const ServerApi &api, int fd);
  ~Connection();

  // Reads frames until the channel closes; returns the exit code.
  int run();

  HandleTable &handles() { return handles_; }
  // The guest's shared-memory window, when it brought one.
  const MappedWindow *window() const { return window_.get(); }
  // Are these `len` bytes inside the guest's window?
  bool in_window(const void *p, uint64_t len) const {
    return window_ && window_->offset_of(p, len).has_value();
  }
  // Puts reply data that already lies in the window there by reference.
  WindowPlacer *reply_placer() { return window_ ? &reply_placer_ : nullptr; }
  // Deferred out buffers waiting for their callee (see CallContext).
  bool reserve_deferred(uint64_t bytes);
  void unreserve_deferred(uint64_t bytes);
  StagingPool &staging() { return staging_; }
  // When done() holds: the Data frame for `token` (none: nothing is sent)
  // carries the buffer to the guest if `send_bytes`, else only says so (the
  // bytes are in the window, or the guest's window copy of in data may be
  // reused); then the buffer goes back to the staging pool unless it is
  // the guest's window space.
  void add_deferred(std::optional<uint64_t> token, void *buffer, uint64_t bytes,
                    std::function<bool()> done, std::function<void()> release, bool send_bytes);
  // Sends the deferred buffers that are done, in order: called before every
  // reply and callback, so that the guest has the data before it can learn
  // that the call that fills it completed, and by a watcher thread while
  // any wait, so that the guest has each as soon as it is done (the parts
  // of a large read, window space a write is done with).
  void flush_deferred();

  // The block for guest_addr, used by a call until end_manual_use().
  void *manual_buffer(uint64_t guest_addr, uint64_t bytes, bool zeroed);
  void end_manual_use(void *block);
  void release_manual_buffer(uint64_t guest_addr);
  // An object (the real library's) uses / stops using a block.
  void hold_manual(void *block);
  void drop_manual(void *block);
  // Account notices to the router (see wire::AccountNotice); `func`: the
  // call they are about (0 for a destruction). Any thread.
  // call_id and flags (kFlagAsync) name the call the notices are about, if any.
  void send_notices(uint32_t func, const std::vector<wire::AccountNotice> &notices,
                    uint64_t call_id = 0, uint32_t flags = 0);
  void *callback_userdata(uint64_t guest_id, uint32_t callback_id);
  bool invoke_callback(const CallbackRegistration &reg, Writer &args,
                       std::unique_ptr<uint8_t[]> *data, Reader *result);
  void defer_error(uint32_t thread, uint32_t func, int64_t value);
  // Returns window space for the guest's copy (see CallContext::put_mapped), or nullptr.
  uint8_t *register_mapped(void *addr, uint64_t bytes);
  bool is_mapped(void *addr, uint64_t bytes);
  // One mapping of addr is gone; `copy` names its window copy if the guest said.
  void unregister_mapped(void *addr, const void *copy);

 private:
  struct Shadow;
  struct PendingCallback {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    Frame frame;
  };

  bool handshake();
  // Where a guest in a VM has its window inside the region it came with.
  struct RegionSlice {
    uint64_t offset, bytes;
  };
  // Maps the guest's window from the hello's descriptor: its own memfd, or
  // the given slice of its VM's region.
  void map_window(int fd, const std::optional<RegionSlice> &slice);
  void dispatch(Frame f);
  void shadow_loop(Shadow *s);
  void execute(Shadow *s, Frame &f);
  void send_reply(const Frame &call, CallContext &ctx, Shadow *s);
  void reply_status(const Frame &call, wire::ReplyStatus status, uint32_t detail);

  // Only data the call already put in the window goes by reference: the
  // guest owns the window's free space.
  class InWindowPlacer : public WindowPlacer {
   public:
    explicit InWindowPlacer(const Connection &c) : conn_(c) {}
    bool place(const void *p, size_t len, uint64_t *offset) override {
      const auto off = conn_.window_->offset_of(p, len);
      if (off) *offset = *off;
      return off.has_value();
    }
    bool reserve(size_t, uint64_t *) override { return false; }

   private:
    const Connection &conn_;
  };

  const ServerApi &api_;
  Channel channel_;
  HandleTable handles_;
  std::unique_ptr<MappedWindow> window_;
  InWindowPlacer reply_placer_{*this};

  std::mutex mu_;
  std::map<uint32_t, std::unique_ptr<Shadow>> shadows_;
  // lifetime_manual buffers. Page-aligned: the real library may keep using
  // one as device memory (CL_MEM_USE_HOST_PTR) and rely on its device's
  // base-address alignment. Never moved, and never freed while a call or an
  // object uses it: a block objects held (hold_manual) goes when the last of
  // them drops it; one nothing ever held stays, as the library may still
  // use it, until the guest's address is released (deallocate) or the end.
  struct ManualBlock {
    uint64_t size = 0;      // (the memory comes from staging_ and goes back there)
    uint32_t calls = 0;     // calls in progress that use it
    uint32_t holds = 0;     // objects that use it (hold_manual)
    bool owned = false;     // an object held it once: freed with the last
    bool released = false;  // its guest address was released (deallocate)
  };
  // Frees block p if nothing uses it any more (mu_ held).
  void maybe_free_manual(uint8_t *p);
  struct DeferredOut {
    std::optional<uint64_t> token;
    void *buffer;
    uint64_t bytes;
    std::function<bool()> done;
    std::function<void()> release;
    bool send_bytes = false;
  };
  StagingPool staging_;
  std::mutex deferred_mu_;               // held while sending, so Data frames keep their order
  std::condition_variable deferred_cv_;  // the watcher: deferred_ is not empty, or stop
  std::thread deferred_watcher_;         // started with the first deferred buffer
  bool stop_watcher_ = false;            // guarded by deferred_mu_
  void watch_deferred();
  std::deque<DeferredOut> deferred_;
  std::atomic<size_t> deferred_count_{0};  // deferred_.size(), for a look without the lock
  uint64_t deferred_bytes_ = 0;                     // reserved: in calls and waiting here
  std::map<uint8_t *, ManualBlock> manual_blocks_;  // by data
  std::map<uint64_t, uint8_t *> manual_;            // guest address -> its current block
  uint64_t manual_bytes_ = 0;                       // sum of the blocks' sizes
  // Regions the real library mapped (a region may be mapped more than once).
  struct Mapping {
    uint64_t bytes = 0;
    uint32_t count = 0;
    std::vector<uint64_t> copies;  // window offsets of the guest's copies
  };
  std::map<void *, Mapping> mapped_;
  std::unique_ptr<WindowArena> map_zone_;  // the window's server zone
  std::map<std::pair<uint64_t, uint32_t>, std::unique_ptr<CallbackRegistration>> registrations_;
  std::unordered_map<uint64_t, PendingCallback *> pending_callbacks_;
  uint64_t next_callback_call_ = 1;
  // Bytes of frames read and not yet run (every shadow's queue): the reader
  // stops reading above --max-backlog-mb (see wait_for_backlog).
  std::mutex backlog_mu_;
  std::condition_variable backlog_cv_;
  std::atomic<uint64_t> backlog_bytes_{0};
  bool heartbeats_ = false;           // the guest asked for them (kFlagHeartbeats)
  // Sync calls reach an idle shadow through its mail slot (Shadow::mail);
  // HIRA_SERVER_HANDOFF=queue turns it off, to measure what it saves.
  const bool use_mail_;
  std::atomic<int> running_sync_{0};  // sync calls executing now
  void wait_for_backlog();
  void drained(uint64_t bytes);
  // Cross-thread order of async calls (see shadow_loop).
  std::mutex order_mu_;
  std::condition_variable order_cv_;
  uint64_t arrivals_ = 0;  // the reading thread's only
  std::set<uint64_t> unfinished_async_;
  std::atomic<uint64_t> unfinished_count_{0};  // unfinished_async_.size()
  bool closed_ = false;
};

}  // namespace hira::server
