#include "connection.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <system_error>
#include <utility>

#include "hira/hop_trace.h"

namespace hira::server {

namespace {
// Guest threads one server shadows; a guest with more gets errors, not a fork bomb.
constexpr size_t kMaxShadowThreads = 512;
// Bytes of lifetime_manual buffers one guest process may keep.
constexpr uint64_t kMaxManualBytes = 4ull << 30;
// Bytes of calls read ahead of the ones running (--max-backlog-mb). A
// guest that keeps sending while its calls cannot run (a shadow thread
// blocked in a wait) meets back-pressure: the server stops reading, the
// router stops reading that guest, and the guest's own sends block.
std::atomic<uint64_t> g_max_backlog_bytes{256ull << 20};
// Freed staging blocks kept for reuse (StagingPool).
constexpr uint64_t kStagingCacheBytes = 256ull << 20;
uint64_t max_backlog() { return g_max_backlog_bytes.load(std::memory_order_relaxed); }
// The one connection of this server process, for the spec's utilities
// (hold_manual_block / drop_manual_block run on the real library's threads).
std::atomic<Connection *> g_connection{nullptr};
}  // namespace

void set_max_backlog_bytes(uint64_t bytes) { g_max_backlog_bytes.store(bytes); }

// A guest thread's twin: runs that thread's calls in order, so a blocking call
// in one guest thread never holds up another.
struct Connection::Shadow {
  uint32_t thread = 0;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Frame> queue;
  std::deque<uint64_t> seqs;      // arrival order of each queued frame
  std::atomic<size_t> queued{0};  // queue.size(), for polling without the lock
  bool stop = false;
  // A sync call handed to this thread without the queue and its lock: the
  // reader fills `mail` and then sets mail_full; this thread takes it before
  // anything queued (the reader uses it only while the queue is empty and
  // the mail taken, so calls keep their order). Moving a call between two
  // cores through the queue cost ~1.2 us on the H200 (hop trace).
  std::atomic<bool> mail_full{false};
  Frame mail;
  uint64_t mail_seq = 0;
  // Set while this thread sleeps (or is about to) on cv: the reader, after
  // filling the mail, wakes it under mu only then (both seq_cst: one of the
  // two sees the other's store).
  std::atomic<bool> sleeping{false};
  Scratch scratch;    // touched only by this thread
  AdaptiveSpin spin;  // how long it polls for its next call (this thread's)
  // The first failure of an async call since this thread's last sync reply
  // (set under mu; has_deferred is read without it first).
  std::atomic<bool> has_deferred{false};
  uint32_t deferred_func = 0;
  int64_t deferred_value = 0;
  std::thread worker;
};

Connection::Connection(const ServerApi &api, int fd)
    : api_(api),
      channel_(fd),
      staging_(kStagingCacheBytes),
      use_mail_([] {
        const char *v = std::getenv("HIRA_SERVER_HANDOFF");
        return v == nullptr || std::string_view(v) != "queue";
      }()) {
  g_connection.store(this);
}

Connection::~Connection() {
  if (deferred_watcher_.joinable()) {
    {
      std::lock_guard lock(deferred_mu_);
      stop_watcher_ = true;
    }
    deferred_cv_.notify_all();
    deferred_watcher_.join();
  }
  std::map<uint32_t, std::unique_ptr<Shadow>> shadows;
  {
    std::lock_guard lock(mu_);
    shadows.swap(shadows_);
  }
  for (auto &[id, s] : shadows) {
    {
      std::lock_guard lock(s->mu);
      s->stop = true;
      s->cv.notify_one();
    }
    s->worker.join();
  }
  // Deferred buffers nobody will receive: freed once their callee is done
  // with them; one still being filled is left to the process's end (the
  // library may write into it yet).
  std::lock_guard lock(deferred_mu_);
  for (auto &d : deferred_) {
    if (!d.done()) continue;
    d.release();
    if (!in_window(d.buffer, 1)) staging_.give(d.buffer);
  }
  deferred_.clear();
  deferred_count_.store(0);
}

void Connection::map_window(int fd, const std::optional<RegionSlice> &slice) {
  std::string why;
  if (!slice) {
    if (const auto size = check_window_fd(fd, kMaxWindowBytes, &why)) {
      window_ = std::make_unique<MappedWindow>(fd, *size);
    }
  } else if (check_region_slice(fd, slice->offset, slice->bytes, kMaxWindowBytes, &why)) {
    window_ = std::make_unique<MappedWindow>(fd, slice->bytes, slice->offset);
  }
  if (window_ && !window_->ok()) window_.reset();
}

bool Connection::handshake() {
  Frame f;
  Channel::HelloFds fds;  // the guest's window, and the router's command rings
  const RecvResult rr = channel_.recv_hello(f, &fds);
  const int window_fd = fds.window;
  const int rings_fd = fds.rings;
  const bool hello = rr == RecvResult::Ok && f.kind() == wire::Kind::Hello;
  // The hello, read once: the API it asks for and, from a guest in a VM,
  // the slice of the VM's region that the window descriptor stands for.
  bool matches = false;
  const bool vm_window = (f.header.flags & wire::kFlagVmWindow) != 0;
  std::optional<RegionSlice> slice;
  bool slice_ok = !vm_window;
  if (hello) {
    Reader r = f.reader();
    const uint32_t len = r.get_u32();
    const uint8_t *name = len <= 256 ? r.bulk(len) : nullptr;
    const uint64_t signature = r.get_u64();
    matches = name != nullptr &&
              std::string(reinterpret_cast<const char *>(name), len) == api_.name &&
              signature == api_.signature;
    if (vm_window) {
      r.get_u32();  // pid
      const uint64_t offset = r.get_u64();
      const uint64_t bytes = r.get_u64();
      slice_ok = r.done();
      slice = RegionSlice{offset, bytes};
    }
  }
  if (window_fd >= 0) {
    if (slice_ok) map_window(window_fd, slice);
    ::close(window_fd);
    if (window_) {
      channel_.set_window({window_->base(), window_->size()});
      map_zone_ =
          std::make_unique<WindowArena>(server_zone_start(window_->size()), window_->size());
    }
  }
  std::unique_ptr<RingPair> rings;
  if (rings_fd >= 0) {
    std::string why;
    rings = RingPair::attach(rings_fd, &why);
    ::close(rings_fd);
  }
  if (!hello) return false;
  const auto status = matches ? wire::ReplyStatus::Ok : wire::ReplyStatus::Unsupported;
  heartbeats_ = (f.header.flags & wire::kFlagHeartbeats) != 0;
  uint32_t flags = window_ ? uint32_t{wire::kFlagWindow} : 0u;
  if (rings) flags |= wire::kFlagRings;
  channel_.send(make_header(wire::Kind::HelloAck, static_cast<uint32_t>(status), 0, 0, flags),
                nullptr);
  if (rings) channel_.attach_rings(std::move(rings), false);
  return status == wire::ReplyStatus::Ok;
}

int Connection::run() {
  if (!handshake()) {
    std::fprintf(stderr, "hira-server(%s): handshake failed: not a guest of this API\n", api_.name);
    return 2;
  }
  // A guest that times its calls out hears from the server twice a second
  // while one of its sync calls runs: a long kernel is not a stopped server.
  struct Heartbeats {
    explicit Heartbeats(Connection &conn) : c(conn) {}
    Connection &c;
    std::mutex mu;
    std::condition_variable cv;
    bool stop = false;
    std::thread beat;
    ~Heartbeats() {
      if (!beat.joinable()) return;
      {
        std::lock_guard lock(mu);
        stop = true;
      }
      cv.notify_all();
      beat.join();
    }
  } heartbeats(*this);
  if (heartbeats_) {
    heartbeats.beat = std::thread([&heartbeats] {
      std::unique_lock lock(heartbeats.mu);
      while (!heartbeats.cv.wait_for(lock, std::chrono::milliseconds(500),
                                     [&] { return heartbeats.stop; })) {
        if (heartbeats.c.running_sync_.load() > 0) {
          heartbeats.c.channel_.send(make_header(wire::Kind::Heartbeat), nullptr);
        }
      }
    });
  }
  for (;;) {
    wait_for_backlog();
    Frame f;
    const RecvResult rr = channel_.recv(f);
    if (rr != RecvResult::Ok) {
      if (rr == RecvResult::Malformed) {
        std::fprintf(stderr, "hira-server(%s): malformed frame; closing\n", api_.name);
      }
      break;
    }
    switch (f.kind()) {
      case wire::Kind::Call:
        dispatch(std::move(f));
        break;
      case wire::Kind::CallbackDone: {
        std::lock_guard lock(mu_);
        const auto it = pending_callbacks_.find(f.header.call_id);
        if (it == pending_callbacks_.end()) break;  // unknown: ignore
        PendingCallback *p = it->second;
        pending_callbacks_.erase(it);
        std::lock_guard pl(p->mu);
        p->frame = std::move(f);
        p->done = true;
        p->cv.notify_one();
        break;
      }
      case wire::Kind::Bye:
        return 0;
      default:
        std::fprintf(stderr, "hira-server(%s): unexpected frame kind %u; closing\n", api_.name,
                     f.header.kind);
        return 3;
    }
  }
  // Wake trampolines waiting on a guest that is gone.
  std::lock_guard lock(mu_);
  closed_ = true;
  for (auto &[id, p] : pending_callbacks_) {
    std::lock_guard pl(p->mu);
    p->done = true;
    p->cv.notify_one();
  }
  pending_callbacks_.clear();
  return 0;
}

// Frames the reader must see to make progress (a CallbackDone a blocked
// call waits for) cannot be behind a full backlog in a correct program: the
// guest thread of a call waiting for its callback is itself blocked in that
// call, so nothing queues behind it. A guest that does it anyway stalls only
// itself; the server says so once.
void Connection::wait_for_backlog() {
  if (backlog_bytes_.load(std::memory_order_relaxed) < max_backlog()) return;
  std::unique_lock lock(backlog_mu_);
  if (!backlog_cv_.wait_for(lock, std::chrono::seconds(10),
                            [&] { return backlog_bytes_ < max_backlog(); })) {
    std::fprintf(stderr,
                 "hira-server(%s): the guest sent %llu MiB of calls that cannot run yet (a "
                 "call it made earlier is blocked); reading more when they drain\n",
                 api_.name, static_cast<unsigned long long>(backlog_bytes_.load() >> 20));
    backlog_cv_.wait(lock, [&] { return backlog_bytes_ < max_backlog(); });
  }
}

void Connection::drained(uint64_t bytes) {
  const uint64_t before = backlog_bytes_.fetch_sub(bytes, std::memory_order_relaxed);
  if (before >= max_backlog() && before - bytes < max_backlog()) {
    std::lock_guard lock(backlog_mu_);  // the reader may be about to wait
    backlog_cv_.notify_all();
  }
}

void Connection::reply_status(const Frame &call, wire::ReplyStatus status, uint32_t detail) {
  if ((call.header.flags & wire::kFlagAsync) != 0) return;
  wire::ReplyPrefix p{};
  p.status = static_cast<uint32_t>(status);
  p.detail = detail;
  const iovec iov{&p, sizeof(p)};
  channel_.send(
      make_header(wire::Kind::Reply, call.header.func, call.header.call_id, call.header.thread),
      &iov, 1);
}

void Connection::dispatch(Frame f) {
  hop_trace::mark(f.header.call_id, hop_trace::kServerGotCall);
  if (f.header.func >= api_.function_count) {
    reply_status(f, wire::ReplyStatus::Unsupported, 0);
    return;
  }
  // The spec, not the guest, decides whether a call is answered (mode 2:
  // the spec lets the guest decide per call).
  const uint8_t mode = api_.function_async[f.header.func];
  const bool async = mode == 1 || (mode == 2 && (f.header.flags & wire::kFlagAsync) != 0);
  f.header.flags = (async ? uint32_t{wire::kFlagAsync} : 0u) |
                   (f.header.flags & (wire::kFlagTagged | wire::kFlagBulk));
  Shadow *s = nullptr;
  {
    std::lock_guard lock(mu_);
    auto &slot = shadows_[f.header.thread];
    if (!slot) {
      if (shadows_.size() > kMaxShadowThreads) {
        shadows_.erase(f.header.thread);
        reply_status(f, wire::ReplyStatus::Denied, 0);
        return;
      }
      slot = std::make_unique<Shadow>();
      slot->thread = f.header.thread;
      Shadow *raw = slot.get();
      slot->worker = std::thread([this, raw] { shadow_loop(raw); });
    }
    s = slot.get();
  }
  // Only this (the reading) thread counts arrivals.
  const uint64_t seq = ++arrivals_;
  if (async) {
    std::lock_guard lock(order_mu_);
    unfinished_async_.insert(seq);
    unfinished_count_.fetch_add(1, std::memory_order_release);
  }
  backlog_bytes_.fetch_add(f.size + f.bulk_size, std::memory_order_relaxed);
  if (use_mail_ && !async && !s->mail_full.load(std::memory_order_acquire) &&
      s->queued.load(std::memory_order_acquire) == 0) {
    s->mail = std::move(f);
    s->mail_seq = seq;
    s->mail_full.store(true);
    if (s->sleeping.load()) {
      std::lock_guard lock(s->mu);
      s->cv.notify_one();
    }
    return;
  }
  std::lock_guard lock(s->mu);
  s->queue.push_back(std::move(f));
  s->seqs.push_back(seq);
  s->queued.fetch_add(1, std::memory_order_release);
  s->cv.notify_one();
}

void Connection::shadow_loop(Shadow *s) {
  for (;;) {
    Frame f;
    uint64_t seq = 0;
    // Poll before sleeping, as the channel does (polling.h).
    const auto start = std::chrono::steady_clock::now();
    auto take_mail = [&] {
      f = std::move(s->mail);
      seq = s->mail_seq;
      s->mail_full.store(false, std::memory_order_release);
    };
    poll_for(
        [&] {
          return s->mail_full.load(std::memory_order_acquire) ||
                 s->queued.load(std::memory_order_acquire) != 0;
        },
        s->spin.budget());
    if (s->mail_full.load(std::memory_order_acquire)) {
      take_mail();
    } else {
      std::unique_lock lock(s->mu);
      s->sleeping.store(true);
      s->cv.wait(lock, [&] { return s->stop || !s->queue.empty() || s->mail_full.load(); });
      s->sleeping.store(false);
      if (s->mail_full.load(std::memory_order_acquire)) {
        take_mail();
      } else {
        if (s->queue.empty()) return;
        f = std::move(s->queue.front());
        s->queue.pop_front();
        s->queued.fetch_sub(1);
        seq = s->seqs.front();
        s->seqs.pop_front();
      }
    }
    s->spin.waited(std::chrono::steady_clock::now() - start);
    // An async call another guest thread sent earlier may still be queued on
    // its own shadow thread; the guest saw it return, so it must take effect
    // first (clSetKernelArg in one thread, the enqueue in another). Async
    // calls never wait on other threads, so this cannot deadlock.
    // (No async call unfinished at all, the common case: no lock.)
    if (unfinished_count_.load(std::memory_order_acquire) != 0) {
      std::unique_lock lock(order_mu_);
      order_cv_.wait(
          lock, [&] { return unfinished_async_.empty() || *unfinished_async_.begin() >= seq; });
    }
    const bool async = (f.header.flags & wire::kFlagAsync) != 0;
    const uint64_t bytes = f.size + f.bulk_size;
    execute(s, f);
    drained(bytes);
    if (async) {
      std::lock_guard lock(order_mu_);
      unfinished_async_.erase(seq);
      unfinished_count_.fetch_sub(1, std::memory_order_release);
      order_cv_.notify_all();
    }
  }
}

void Connection::execute(Shadow *s, Frame &f) {
  const uint32_t func = f.header.func;
  CallContext ctx(*this, s->thread, f.reader(), &s->scratch);
  ctx.set_call(func, (f.header.flags & wire::kFlagAsync) != 0);
  if (tracing()) {
    std::fprintf(stderr, "hira-trace(server): thread %u: %s%s\n", s->thread,
                 api_.function_names[func], ctx.is_async() ? " (async)" : "");
  }
  const bool sync = !ctx.is_async();
  if (sync) hop_trace::mark(f.header.call_id, hop_trace::kServerRunCall);
  if (sync) running_sync_.fetch_add(1);
  if (api_.bound[func] == 0) {
    ctx.reject(wire::ReplyStatus::Unsupported, 0);
  } else {
    api_.handlers[func](ctx);
  }
  if (tracing()) {
    std::fprintf(stderr, "hira-trace(server): thread %u: %s returned\n", s->thread,
                 api_.function_names[func]);
  }
  if ((f.header.flags & wire::kFlagAsync) != 0) {
    if (ctx.failed()) {
      std::fprintf(stderr, "hira-server(%s): async %s refused: %s\n", api_.name,
                   api_.function_names[func], wire::status_name(ctx.status()));
    }
  }
  // What the call's new object holds reaches the router before the guest
  // can release it (which it can only once it has the reply).
  send_notices(func, ctx.notices_, f.header.call_id, f.header.flags & wire::kFlagAsync);
  if (sync) hop_trace::mark(f.header.call_id, hop_trace::kServerRan);
  if ((f.header.flags & wire::kFlagAsync) == 0) send_reply(f, ctx, s);
  if (sync) hop_trace::mark(f.header.call_id, hop_trace::kServerSentReply);
  if (sync) running_sync_.fetch_sub(1);
  for (const uint64_t addr : ctx.release_after_reply_) release_manual_buffer(addr);
  channel_.recycle(std::move(f));
}

bool Connection::reserve_deferred(uint64_t bytes) {
  std::lock_guard lock(deferred_mu_);
  if (bytes > kMaxManualBytes || deferred_bytes_ > kMaxManualBytes - bytes) return false;
  deferred_bytes_ += bytes;
  return true;
}

void Connection::unreserve_deferred(uint64_t bytes) {
  std::lock_guard lock(deferred_mu_);
  deferred_bytes_ -= std::min(bytes, deferred_bytes_);
}

void Connection::add_deferred(std::optional<uint64_t> token, void *buffer, uint64_t bytes,
                              std::function<bool()> done, std::function<void()> release,
                              bool send_bytes) {
  std::lock_guard lock(deferred_mu_);
  deferred_.push_back({token, buffer, bytes, std::move(done), std::move(release), send_bytes});
  deferred_count_.store(deferred_.size(), std::memory_order_release);
  if (!deferred_watcher_.joinable()) {
    try {
      deferred_watcher_ = std::thread([this] { watch_deferred(); });
    } catch (const std::system_error &) {
      // No thread left: the buffers go with the next reply, as they may.
    }
  }
  deferred_cv_.notify_one();
}

void Connection::watch_deferred() {
  std::unique_lock lock(deferred_mu_);
  for (;;) {
    deferred_cv_.wait(lock, [&] { return stop_watcher_ || !deferred_.empty(); });
    if (stop_watcher_) return;
    lock.unlock();
    flush_deferred();
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    lock.lock();
  }
}

void Connection::flush_deferred() {
  // Most replies have nothing to send first: no lock (the watcher thread
  // holds it often) for them.
  if (deferred_count_.load(std::memory_order_acquire) == 0) return;
  std::lock_guard lock(deferred_mu_);
  for (auto it = deferred_.begin(); it != deferred_.end();) {
    if (!it->done()) {
      ++it;
      continue;
    }
    if (it->token && !it->send_bytes) {  // the guest has the bytes, or may reuse its own
      channel_.send(make_header(wire::Kind::Data, 0, *it->token, 0, wire::kFlagInWindow), nullptr,
                    0);
    } else if (it->token) {
      // Large ones follow the frame in chunks (any size, and a relay holds
      // one chunk of it at a time).
      const iovec iov{it->buffer, it->bytes};
      if (it->bytes < kBulkFollowMin) {
        channel_.send(make_header(wire::Kind::Data, 0, *it->token), &iov, 1);
      } else {
        channel_.send(make_header(wire::Kind::Data, 0, *it->token), nullptr, 0, {}, {&iov, 1});
      }
      if (tracing()) {
        std::fprintf(stderr, "hira-trace(server): data for token %llu sent (%llu bytes)\n",
                     static_cast<unsigned long long>(*it->token),
                     static_cast<unsigned long long>(it->bytes));
      }
    }
    it->release();
    if (!in_window(it->buffer, 1)) {
      staging_.give(it->buffer);
      deferred_bytes_ -= std::min(it->bytes, deferred_bytes_);
    }
    it = deferred_.erase(it);
  }
  deferred_count_.store(deferred_.size(), std::memory_order_release);
}

void Connection::send_reply(const Frame &call, CallContext &ctx, Shadow *s) {
  flush_deferred();
  wire::ReplyPrefix p{};
  p.status = static_cast<uint32_t>(ctx.status());
  p.detail = ctx.detail();
  if (s->has_deferred.load(std::memory_order_acquire)) {
    std::lock_guard lock(s->mu);
    if (s->has_deferred) {
      p.has_deferred = 1;
      p.deferred_func = s->deferred_func;
      p.deferred_value = s->deferred_value;
      s->has_deferred = false;
    }
  }
  std::vector<iovec> iov{{&p, sizeof(p)}};
  uint32_t flags = 0;
  if (!ctx.failed() && sizeof(p) + ctx.reply().size() > wire::kMaxPayload) {
    // No frame carries it (the call did run): the guest gets an error now
    // instead of waiting forever for a reply that cannot be sent.
    p.status = static_cast<uint32_t>(wire::ReplyStatus::OutOfMemory);
  } else if (!ctx.failed()) {
    for (const auto &v : ctx.reply().iovecs()) iov.push_back(v);
    if (ctx.reply().tagged()) flags = wire::kFlagTagged;
  }
  // Bulk data in the blobs is aligned relative to the payload start.
  static_assert(sizeof(wire::ReplyPrefix) % kBulkAlign == 0);
  std::span<const iovec> bulk;
  if (!ctx.failed() && p.status == 0) bulk = ctx.reply().bulk();
  channel_.send(make_header(wire::Kind::Reply, call.header.func, call.header.call_id,
                            call.header.thread, flags),
                iov.data(), iov.size(), {}, bulk);
}

void Connection::defer_error(uint32_t thread, uint32_t func, int64_t value) {
  Shadow *s = nullptr;
  {
    std::lock_guard lock(mu_);
    const auto it = shadows_.find(thread);
    if (it == shadows_.end()) return;
    s = it->second.get();
  }
  std::lock_guard lock(s->mu);
  if (s->has_deferred) return;  // the first failure is the one reported
  s->deferred_func = func;
  s->deferred_value = value;
  s->has_deferred.store(true, std::memory_order_release);
}

void *Connection::manual_buffer(uint64_t guest_addr, uint64_t bytes, bool zeroed) {
  std::lock_guard lock(mu_);
  uint8_t *&current = manual_[guest_addr];
  if (current != nullptr) {
    ManualBlock &b = manual_blocks_.at(current);
    if (b.size >= bytes) {
      ++b.calls;
      return current;
    }
  }
  void *p = bytes > kMaxManualBytes || manual_bytes_ > kMaxManualBytes - bytes
                ? nullptr
                : staging_.take(std::max<uint64_t>(bytes, 1));
  if (p == nullptr) {
    if (current == nullptr) manual_.erase(guest_addr);
    return nullptr;
  }
  if (zeroed) std::memset(p, 0, bytes);
  uint8_t *outgrown = std::exchange(current, static_cast<uint8_t *>(p));
  ManualBlock &b = manual_blocks_[current];
  b.size = bytes;
  b.calls = 1;
  manual_bytes_ += bytes;
  if (outgrown != nullptr) maybe_free_manual(outgrown);
  return p;
}

void Connection::maybe_free_manual(uint8_t *p) {
  const auto it = manual_blocks_.find(p);
  if (it == manual_blocks_.end()) return;
  const ManualBlock &b = it->second;
  if (b.calls != 0 || b.holds != 0 || (!b.owned && !b.released)) return;
  for (auto m = manual_.begin(); m != manual_.end(); ++m) {
    if (m->second == p) {
      manual_.erase(m);
      break;
    }
  }
  manual_bytes_ -= std::min(b.size, manual_bytes_);
  manual_blocks_.erase(it);
  staging_.give(p);
}

void Connection::end_manual_use(void *block) {
  std::lock_guard lock(mu_);
  const auto it = manual_blocks_.find(static_cast<uint8_t *>(block));
  if (it == manual_blocks_.end() || it->second.calls == 0) return;
  --it->second.calls;
  maybe_free_manual(it->first);
}

void Connection::release_manual_buffer(uint64_t guest_addr) {
  std::lock_guard lock(mu_);
  const auto it = manual_.find(guest_addr);
  if (it == manual_.end()) return;
  uint8_t *p = it->second;
  manual_.erase(it);
  manual_blocks_.at(p).released = true;
  maybe_free_manual(p);
}

void Connection::hold_manual(void *block) {
  std::lock_guard lock(mu_);
  const auto it = manual_blocks_.find(static_cast<uint8_t *>(block));
  if (it == manual_blocks_.end()) return;
  ++it->second.holds;
  it->second.owned = true;
}

void Connection::drop_manual(void *block) {
  std::lock_guard lock(mu_);
  const auto it = manual_blocks_.find(static_cast<uint8_t *>(block));
  if (it == manual_blocks_.end() || it->second.holds == 0) return;
  --it->second.holds;
  maybe_free_manual(it->first);
}

void *hold_manual_block(void *block) {
  if (Connection *c = g_connection.load(); c != nullptr && block != nullptr) c->hold_manual(block);
  return block;
}

void drop_manual_block(void *block) {
  if (Connection *c = g_connection.load(); c != nullptr && block != nullptr) c->drop_manual(block);
}

int guest_window(void **base, size_t *bytes) {
  Connection *c = g_connection.load();
  const MappedWindow *w = c != nullptr ? c->window() : nullptr;
  if (w == nullptr || !w->ok()) return 0;
  *base = w->base();
  *bytes = w->size();
  return 1;
}

void object_destroyed(void *token) {
  const auto id = reinterpret_cast<uintptr_t>(token);
  Connection *c = g_connection.load();
  if (c == nullptr || id == 0) return;
  c->send_notices(0, {{wire::kNoticeGone, 0, id, 0}});
}

void Connection::send_notices(uint32_t func, const std::vector<wire::AccountNotice> &notices,
                              uint64_t call_id, uint32_t flags) {
  if (notices.empty()) return;
  const iovec iov{const_cast<wire::AccountNotice *>(notices.data()),
                  notices.size() * sizeof(wire::AccountNotice)};
  channel_.send(make_header(wire::Kind::Account, func, call_id, 0, flags), &iov, 1);
}

uint8_t *Connection::register_mapped(void *addr, uint64_t bytes) {
  std::lock_guard lock(mu_);
  Mapping &m = mapped_[addr];
  m.bytes = std::max(m.bytes, bytes);
  ++m.count;
  if (!map_zone_ || bytes == 0) return nullptr;
  const auto offset = map_zone_->take(bytes);
  if (!offset) return nullptr;  // the zone is full: this copy travels inline
  m.copies.push_back(*offset);
  return window_->base() + *offset;
}

bool Connection::is_mapped(void *addr, uint64_t bytes) {
  std::lock_guard lock(mu_);
  const auto it = mapped_.find(addr);
  return it != mapped_.end() && bytes <= it->second.bytes;
}

void Connection::unregister_mapped(void *addr, const void *copy) {
  std::lock_guard lock(mu_);
  const auto it = mapped_.find(addr);
  if (it == mapped_.end()) return;
  Mapping &m = it->second;
  if (!m.copies.empty()) {
    // The copy the guest unmapped from, else the oldest: the zone gets it back.
    auto c = m.copies.begin();
    if (const auto at = window_->offset_of(copy, 0)) {
      if (auto named = std::find(m.copies.begin(), m.copies.end(), *at); named != m.copies.end()) {
        c = named;
      }
    }
    map_zone_->give(*c);
    m.copies.erase(c);
  }
  if (--m.count == 0) mapped_.erase(it);
}

void *Connection::callback_userdata(uint64_t guest_id, uint32_t callback_id) {
  std::lock_guard lock(mu_);
  auto &slot = registrations_[{guest_id, callback_id}];
  if (!slot)
    slot =
        std::make_unique<CallbackRegistration>(CallbackRegistration{this, guest_id, callback_id});
  return slot.get();
}

bool Connection::invoke_callback(const CallbackRegistration &reg, Writer &args,
                                 std::unique_ptr<uint8_t[]> *data, Reader *result) {
  PendingCallback p;
  uint64_t id;
  {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    id = next_callback_call_++;
    pending_callbacks_[id] = &p;
  }
  flush_deferred();  // a completion callback must find the data there
  if (tracing()) {
    std::fprintf(stderr, "hira-trace(server): callback %u (call %llu) sent\n", reg.callback_id,
                 static_cast<unsigned long long>(id));
  }
  if (!channel_.send(make_header(wire::Kind::Callback, reg.callback_id, id), &args)) {
    std::lock_guard lock(mu_);
    pending_callbacks_.erase(id);
    return false;
  }
  std::unique_lock lock(p.mu);
  p.cv.wait(lock, [&] { return p.done; });
  if (tracing()) {
    std::fprintf(stderr, "hira-trace(server): callback %u (call %llu) %s\n", reg.callback_id,
                 static_cast<unsigned long long>(id), p.frame.data ? "done" : "guest gone");
  }
  if (!p.frame.data) return false;  // guest gone
  *result = p.frame.reader();
  *data = std::move(p.frame.data);
  return true;
}

}  // namespace hira::server
