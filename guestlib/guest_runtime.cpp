#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "hira/bulk_copy.h"
#include "hira/guest.h"
#include "hira/hop_trace.h"
#include "hira/trace.h"
#include "hira/window.h"
#include "hira_window.h"

namespace hira::guest {

namespace {

// HIRA_TRACE=1: what the guest runtime does with callbacks and data.
__attribute__((format(printf, 1, 2))) void trace(const char *fmt, ...) {
  if (!tracing()) return;
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  std::fprintf(stderr, "hira-trace(guest %d): %s\n", static_cast<int>(::getpid()), line);
}

// A deferred buffer's token: where its out data goes (dst, bytes), or, for
// in data (dst nullptr), the window space it is read from until the
// server's Data frame says the callee is done.
struct ExpectedData {
  void *dst;
  uint64_t bytes;
  // Window space the server fills (put_data_space), given back once read.
  WindowArena *arena = nullptr;
  const uint8_t *window = nullptr;
  uint64_t offset = 0;
  void give_back() const {
    if (arena != nullptr) arena->give(offset);
  }
};
std::mutex g_expected_mu;
auto *g_expected = new std::unordered_map<uint64_t, ExpectedData>;
uint64_t g_next_token = 1;

// Writes a Data frame where its call said it would go, before the frames
// behind it (a reply or callback that tells the application it is there).
void deliver_data(const Frame &f) {
  ExpectedData e{};
  {
    std::lock_guard lock(g_expected_mu);
    const auto it = g_expected->find(f.header.call_id);
    if (it == g_expected->end()) {
      trace("data for unknown token %llu ignored",
            static_cast<unsigned long long>(f.header.call_id));
      return;
    }
    e = it->second;
    g_expected->erase(it);
  }
  // In the window space the call set aside; or large data that followed the
  // frame; or small data as its payload.
  const bool followed = (f.header.flags & wire::kFlagBulk) != 0;
  const bool in_window = (f.header.flags & wire::kFlagInWindow) != 0;
  const uint8_t *src = in_window ? e.window + e.offset : followed ? f.bulk.get() : f.data.get();
  const uint64_t size = in_window ? e.bytes : followed ? f.bulk_size : f.size;
  if (e.dst != nullptr && (!in_window || e.arena != nullptr)) {
    copy_bulk(e.dst, src, std::min<uint64_t>(e.bytes, size));
  }
  e.give_back();
  trace("data for token %llu: %llu bytes", static_cast<unsigned long long>(f.header.call_id),
        static_cast<unsigned long long>(size));
}

// A synchronous call waiting for its reply.
// A synchronous call waiting for its reply (guarded by its Connection's mu_).
struct Waiter {
  bool done = false;
  bool have_frame = false;
  Frame frame;
};

uint32_t this_thread_id() {
  static std::atomic<uint32_t> next{1};
  thread_local const uint32_t id = next.fetch_add(1);
  return id;
}

struct Registration {
  void *fn;
  void *userdata;
};

class Registry {
 public:
  std::mutex &mutex() { return mu_; }
  uint64_t add(void *fn, void *userdata) {
    std::lock_guard lock(mu_);
    const auto key = std::make_pair(fn, userdata);
    if (const auto it = ids_.find(key); it != ids_.end()) return it->second;
    regs_.push_back({fn, userdata});
    const uint64_t id = regs_.size();
    ids_[key] = id;
    return id;
  }
  bool get(uint64_t id, Registration *out) {
    std::lock_guard lock(mu_);
    if (id == 0 || id > regs_.size()) return false;
    *out = regs_[id - 1];
    return true;
  }

 private:
  std::mutex mu_;
  std::vector<Registration> regs_;
  std::map<std::pair<void *, void *>, uint64_t> ids_;
};

Registry &registry() {
  static auto *r = new Registry;  // never destroyed: callbacks may run at exit
  return *r;
}

// The connection of this process for one API.
class Connection {
 public:
  static Connection *for_api(const ApiInfo &api);

  bool call(wire::FrameHeader h, Writer &args, Waiter *w) {
    if (w != nullptr) {
      std::lock_guard lock(mu_);
      if (dead_) return false;
      waiting_[h.call_id] = w;
      ++pending_;
      last_call_ = std::chrono::steady_clock::now();
    }
    if (w == nullptr) {
      // An async call waits briefly for the next ones: they leave together
      // (or with the next sync call), one system call for many.
      if (!channel_->queue(h, &args)) return false;
      if (!flush_pending_.exchange(true)) {
        std::lock_guard lock(flush_mu_);
        flush_cv_.notify_one();
      }
      return true;
    }
    if (channel_->send(h, &args)) return true;
    if (w != nullptr) {
      std::lock_guard lock(mu_);
      waiting_.erase(h.call_id);
      --pending_;
      cv_.notify_all();
    }
    return false;
  }

  // Waits for w's reply. The waiting thread reads the channel itself when no
  // other thread is reading it, which saves a thread wake-up per call; frames
  // for other calls it hands over, callbacks it queues.
  void wait(Waiter &w) {
    std::unique_lock lock(mu_);
    // The timeout runs from the call or from the last frame heard, whichever
    // is later: the server sends heartbeats while a long call runs.
    const auto start = std::chrono::steady_clock::now();
    auto deadline_now = [&] {
      if (call_timeout() == 0) return std::chrono::steady_clock::time_point::max();
      return std::max(start, last_heard_.load()) + std::chrono::seconds(call_timeout());
    };
    while (!w.done) {
      const auto deadline = deadline_now();
      if (std::chrono::steady_clock::now() >= deadline) {
        give_up(lock);
        break;
      }
      if (!reader_busy_ && !dead_) {
        read_as_reader(lock, deadline);
        continue;
      }
      cv_.wait_until(lock, deadline);
    }
    // Frames that came in the same read as this reply (a callback right
    // behind it) are in the channel's read-ahead, where the receiver's poll
    // cannot see them: deliver them before going back to the application.
    while (!reader_busy_ && !dead_ && channel_->has_read_ahead()) read_as_reader(lock);
    --pending_;
    cv_.notify_all();
  }
  uint64_t next_call_id() { return next_id_.fetch_add(1); }
  // Writes the async calls that wait to be sent (at exit).
  void flush() { channel_->flush(); }
  int fd() const { return channel_->fd(); }
  // The shared-memory window, when the router accepted one.
  const MappedWindow *window() const { return window_.get(); }
  WindowArena *arena() { return arena_.get(); }
  // Window space for `bytes` of this process's data, or none: no window,
  // less than kWindowMin (that goes inline), or the window is full.
  std::optional<uint64_t> take_space(uint64_t bytes) {
    if (!window_ || bytes < kWindowMin) return std::nullopt;
    return arena_->take(bytes);
  }
  void recycle(Frame &&f) { channel_->recycle(std::move(f)); }
  const ApiInfo &api() const { return api_; }
  // Window space the application keeps (window_alloc), at most half of the
  // arena; nullptr when there is none.
  void *keep_space(uint64_t bytes) {
    if (!window_ || bytes == 0 || bytes > (uint64_t{1} << 62)) return nullptr;
    // Whole pages of their own (the arena aligns 64 KiB and up to pages), so
    // that the server can pin each block by itself; from the top of the
    // guest's part, away from the calls' space at the bottom (which the
    // server may pin as a whole).
    bytes = std::max<uint64_t>((bytes + 4095) / 4096 * 4096, uint64_t{64} << 10);
    std::lock_guard lock(kept_mu_);
    if (bytes > server_zone_start(window_->size()) / 2 - kept_bytes_) return nullptr;
    const auto at = arena_->take_last(bytes);
    if (!at) return nullptr;
    kept_[*at] = bytes;
    kept_bytes_ += bytes;
    return window_->base() + *at;
  }
  bool kept_offset(const void *p, uint64_t bytes, uint64_t *offset) {
    if (!window_ || bytes == 0) return false;
    const auto at = window_->offset_of(p, bytes);
    if (!at) return false;
    std::lock_guard lock(kept_mu_);
    auto it = kept_.upper_bound(*at);  // the block that starts at or before p
    if (it == kept_.begin()) return false;
    --it;
    if (*at + bytes > it->first + it->second) return false;
    *offset = *at;
    return true;
  }
  bool give_kept(void *p) {
    if (!window_ || p == nullptr) return false;
    const auto at = window_->offset_of(p, 1);
    if (!at) return false;
    std::lock_guard lock(kept_mu_);
    const auto it = kept_.find(*at);
    if (it == kept_.end()) return false;
    kept_bytes_ -= it->second;
    kept_.erase(it);
    arena_->give(*at);
    return true;
  }

 private:
  Connection(const ApiInfo &api, int fd) : api_(api), channel_(std::make_unique<Channel>(fd)) {
    hop_trace::init();
  }

  static Connection *open(const ApiInfo &api) {
    if (std::getenv(wire::kInsideApiServerEnv) != nullptr) return nullptr;  // never from a server
    const char *endpoint = std::getenv("HIRA_SOCKET");
    if (endpoint == nullptr || *endpoint == '\0') {
      std::fprintf(stderr,
                   "hira: %s: HIRA_SOCKET is not set; run the program with `hira run -- PROGRAM` "
                   "or point HIRA_SOCKET at a router (unix:/path or tcp:host:port)\n",
                   api.name);
      return nullptr;
    }
    std::string error;
    const int fd = connect_endpoint(endpoint, &error);
    if (fd < 0) {
      std::fprintf(stderr, "hira: %s: cannot reach the router at %s: %s\n", api.name, endpoint,
                   error.c_str());
      return nullptr;
    }
    auto *c = new Connection(api, fd);
    const bool local = endpoint_is_local(endpoint);
    const int window_fd = local ? c->make_window() : -1;
    if (std::strncmp(endpoint, "vsock:", 6) == 0) c->make_vm_window();
    int rings_fd = -1;
    auto rings = local ? c->make_rings(&rings_fd) : nullptr;
    const bool ok = c->hello(window_fd, rings_fd, std::move(rings));
    for (const int f : {window_fd, rings_fd}) {
      if (f >= 0) ::close(f);
    }
    if (!ok) {
      delete c;
      return nullptr;
    }
    std::thread([c] { c->receive_loop(); }).detach();
    std::thread([c] { c->callback_loop(); }).detach();
    std::thread([c] { c->flush_loop(); }).detach();
    return c;
  }

  static bool endpoint_is_local(const char *endpoint) {
    return std::strncmp(endpoint, "unix:", 5) == 0;
  }

  // A window for this process's data ($HIRA_WINDOW_MB, 0 for none).
  int make_window() {
    uint64_t mb = kDefaultWindowBytes >> 20;
    if (const char *v = std::getenv("HIRA_WINDOW_MB"); v != nullptr && *v != '\0') {
      char *end = nullptr;
      mb = std::strtoull(v, &end, 10);
      if (*end != '\0' || mb > (kMaxWindowBytes >> 20)) {
        std::fprintf(stderr,
                     "hira: %s: HIRA_WINDOW_MB=%s is not a size in MiB (0-65536); "
                     "using no window\n",
                     api_.name, v);
        return -1;
      }
    }
    if (mb == 0) return -1;
    std::string error;
    const int fd = create_window_fd(mb << 20, &error);
    if (fd < 0) {
      std::fprintf(stderr, "hira: %s: no shared-memory window (%s); data travels inline\n",
                   api_.name, error.c_str());
      return -1;
    }
    window_ = std::make_unique<MappedWindow>(fd, mb << 20);
    if (!window_->ok()) {
      window_.reset();
      ::close(fd);
      return -1;
    }
    return fd;
  }

  // In a VM: a slice of the VM's shared region, from the hira_window
  // module, as this process's window (no descriptor can cross the vsock
  // stream; the router knows the region). Without the device, data inline.
  void make_vm_window() {
    if (const char *v = std::getenv("HIRA_WINDOW_MB"); v != nullptr && std::strcmp(v, "0") == 0) {
      return;
    }
    const int fd = ::open("/dev/hira_window", O_RDWR | O_CLOEXEC);
    if (fd < 0) return;  // no shared region in this VM (or every slice taken)
    hira_window_slice slice{};
    if (::ioctl(fd, HIRA_WINDOW_IOC_SLICE, &slice) == 0) {
      // The mapping keeps the slice ours until the process ends.
      window_ = std::make_unique<MappedWindow>(fd, slice.size);
      if (window_->ok()) {
        vm_slice_offset_ = slice.offset;
      } else {
        window_.reset();
      }
    }
    ::close(fd);
  }

  // Command rings to offer the router, and their memfd in *fd
  // ($HIRA_RINGS=0 for none: every frame through the socket).
  std::unique_ptr<RingPair> make_rings(int *fd) {
    if (const char *v = std::getenv("HIRA_RINGS"); v != nullptr && std::strcmp(v, "0") == 0) {
      return nullptr;
    }
    std::string error;
    auto rings = RingPair::create(fd, &error);
    if (!rings) {
      std::fprintf(stderr, "hira: %s: no shared-memory command rings (%s); calls use the socket\n",
                   api_.name, error.c_str());
    }
    return rings;
  }

  bool hello(int window_fd, int rings_fd, std::unique_ptr<RingPair> rings) {
    // A guest that times calls out wants heartbeats while long ones run.
    uint32_t flags = call_timeout() != 0 ? uint32_t{wire::kFlagHeartbeats} : 0u;
    std::vector<int> fds;
    std::optional<HelloSlice> slice;
    if (window_fd >= 0) {
      flags |= wire::kFlagWindow;
      fds.push_back(window_fd);
    } else if (window_ && vm_slice_offset_) {
      flags |= wire::kFlagVmWindow;
      slice = HelloSlice{*vm_slice_offset_, window_->size()};
    }
    Writer w;
    put_hello(w, api_.name, api_.signature, static_cast<uint32_t>(::getpid()), slice);
    if (rings_fd >= 0) {
      flags |= wire::kFlagRings;
      fds.push_back(rings_fd);
    }
    if (!channel_->send(make_header(wire::Kind::Hello, 0, 0, 0, flags), &w, fds)) return false;
    Frame f;
    if (channel_->recv(f) != RecvResult::Ok || f.kind() != wire::Kind::HelloAck) {
      std::fprintf(stderr, "hira: %s: the router closed the connection during setup\n", api_.name);
      return false;
    }
    const auto status = static_cast<wire::ReplyStatus>(f.header.func);
    if (status != wire::ReplyStatus::Ok) {
      std::fprintf(stderr, "hira: %s: the router refused this API: %s\n", api_.name,
                   wire::status_name(status));
      return false;
    }
    if (window_ && (f.header.flags & wire::kFlagWindow) != 0) {
      // The router may grant less of a local window than it holds (an
      // operator's stricter limit): only that much is mapped and used.
      Reader ack = f.reader();
      const uint64_t granted = f.header.length >= 8 ? ack.get_u64() : window_->size();
      if (granted < window_->size() && window_fd >= 0) {
        window_ = std::make_unique<MappedWindow>(window_fd, granted);
        if (!window_->ok()) {
          std::fprintf(stderr, "hira: %s: cannot map the granted window\n", api_.name);
          return false;
        }
      }
      channel_->set_window({window_->base(), window_->size()});
      arena_ = std::make_unique<WindowArena>(0, server_zone_start(window_->size()));
    } else {
      window_.reset();  // refused (the router said why): everything inline
    }
    if (rings && (f.header.flags & wire::kFlagRings) != 0) {
      channel_->attach_rings(std::move(rings), true);
    }
    return true;
  }

  // $HIRA_CALL_TIMEOUT_S: seconds a sync call waits for its reply before
  // the router or server counts as gone (0, the default: forever, for
  // kernels that run long).
  static unsigned call_timeout() {
    static const unsigned s = [] {
      const char *v = std::getenv("HIRA_CALL_TIMEOUT_S");
      return v == nullptr ? 0u : static_cast<unsigned>(std::strtoul(v, nullptr, 10));
    }();
    return s;
  }

  // No reply in time: the peer is stopped or hung. This call and every one
  // after it fail (a late reply could no longer be matched safely).
  void give_up(std::unique_lock<std::mutex> &) {
    if (!dead_) {
      std::fprintf(stderr,
                   "hira: %s: no reply within HIRA_CALL_TIMEOUT_S=%u s: the router or API "
                   "server stopped answering; calls fail from now on\n",
                   api_.name, call_timeout());
    }
    mark_dead_locked();
  }

  void mark_dead_locked() {
    dead_ = true;
    for (auto &[id, w] : waiting_) w->done = true;
    waiting_.clear();
    channel_->shutdown();
    cv_.notify_all();
    idle_cv_.notify_all();
  }

  // Reads one frame (the caller holds the reader role) and delivers it.
  // Before `deadline`, unless a frame is already read ahead: false if none came.
  bool read_one(std::chrono::steady_clock::time_point deadline =
                    std::chrono::steady_clock::time_point::max()) {
    if (deadline != std::chrono::steady_clock::time_point::max()) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (!channel_->wait_readable(std::max(left, std::chrono::milliseconds(0)))) return false;
    }
    Frame f;
    if (channel_->recv(f) != RecvResult::Ok) {
      // The router or the server is gone: fail every call now and later.
      std::lock_guard lock(mu_);
      mark_dead_locked();
      return true;
    }
    last_heard_.store(std::chrono::steady_clock::now());
    if (f.kind() == wire::Kind::Heartbeat) return true;  // only says the server lives
    if (f.kind() == wire::Kind::Reply) {
      hop_trace::mark(f.header.call_id, hop_trace::kGuestGotReply);
      std::lock_guard lock(mu_);
      const auto it = waiting_.find(f.header.call_id);
      if (it == waiting_.end()) return true;  // nobody asked: ignore
      Waiter *w = it->second;
      waiting_.erase(it);
      w->frame = std::move(f);
      w->have_frame = true;
      w->done = true;
      cv_.notify_all();
    } else if (f.kind() == wire::Kind::Data) {
      deliver_data(f);
      channel_->recycle(std::move(f));
    } else if (f.kind() == wire::Kind::Callback) {
      std::lock_guard lock(cb_mu_);
      trace("callback %u (call %llu) received", f.header.func,
            static_cast<unsigned long long>(f.header.call_id));
      callbacks_.push_back(std::move(f));
      cb_cv_.notify_one();
    }
    return true;
  }

  // Reads what arrives while the application makes no calls (callbacks
  // after the call that caused them returned). While calls are flowing it
  // stays out of the way: waking it for every reply would cost what reading
  // in the caller saves.
  void receive_loop() {
    using namespace std::chrono_literals;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        while (!dead_ && (pending_ != 0 || reader_busy_ ||
                          std::chrono::steady_clock::now() - last_call_ < 2ms)) {
          idle_cv_.wait_for(lock, 2ms);
        }
        if (dead_) return;
        // Frames a caller's read brought along (a callback behind its reply)
        // are in the channel already: no poll would ever report them.
        if (channel_->has_read_ahead()) {
          read_as_reader(lock);
          continue;
        }
      }
      // A bounded wait: a caller that read ahead while this thread was
      // about to poll leaves frames no poll reports (see wait()).
      if (!channel_->wait_readable(100ms)) continue;
      std::unique_lock lock(mu_);
      if (dead_) return;
      if (pending_ != 0 || reader_busy_) continue;  // a caller reads it
      read_as_reader(lock);
    }
  }

  // Takes the reader role (mu_ held on entry and exit) and reads one frame
  // (waiting until `deadline` at most).
  void read_as_reader(std::unique_lock<std::mutex> &lock,
                      std::chrono::steady_clock::time_point deadline =
                          std::chrono::steady_clock::time_point::max()) {
    reader_busy_ = true;
    lock.unlock();
    read_one(deadline);
    lock.lock();
    reader_busy_ = false;
    cv_.notify_all();
  }

  // Sends queued async calls a moment after the first of them, unless a
  // sync call took them along before: a program that only makes async calls
  // for a while still has them run.
  void flush_loop() {
    for (;;) {
      {
        std::unique_lock lock(flush_mu_);
        flush_cv_.wait(lock, [&] { return flush_pending_.load(); });
      }
      std::this_thread::sleep_for(std::chrono::microseconds(20));
      flush_pending_ = false;  // a call queued from here on asks again
      if (!channel_->flush()) return;
    }
  }

  // Runs application callbacks one at a time, in the order the server sent them.
  void callback_loop() {
    for (;;) {
      Frame f;
      {
        std::unique_lock lock(cb_mu_);
        cb_cv_.wait(lock, [&] { return !callbacks_.empty(); });
        f = std::move(callbacks_.front());
        callbacks_.pop_front();
      }
      Reader r = f.reader();
      Reader reg_blob = r.blob();
      const uint64_t reg_id = reg_blob.get_u64();
      Registration reg{};
      Writer result;
      if (reg_blob.done() && registry().get(reg_id, &reg)) {
        if (!api_.dispatch_callback(f.header.func, reg.fn, reg.userdata, r, result)) {
          std::fprintf(stderr, "hira: %s: malformed callback %u ignored\n", api_.name,
                       f.header.func);
          result.clear();
        }
      }
      auto h =
          make_header(wire::Kind::CallbackDone, f.header.func, f.header.call_id, this_thread_id());
      trace("callback %u (call %llu) ran, registration %llu %s", f.header.func,
            static_cast<unsigned long long>(f.header.call_id),
            static_cast<unsigned long long>(reg_id), reg.fn != nullptr ? "known" : "UNKNOWN");
      channel_->send(h, &result);
    }
  }

  const ApiInfo &api_;
  std::unique_ptr<Channel> channel_;
  std::unique_ptr<MappedWindow> window_;
  std::optional<uint64_t> vm_slice_offset_;  // window_ is this slice of the VM's region
  std::unique_ptr<WindowArena> arena_;
  std::mutex kept_mu_;
  std::map<uint64_t, uint64_t> kept_;  // window_alloc'd: offset -> bytes
  uint64_t kept_bytes_ = 0;
  // When the last frame arrived (any frame, heartbeats too): the call timeout
  // counts silence.
  std::atomic<std::chrono::steady_clock::time_point> last_heard_{};
  std::atomic<uint64_t> next_id_{1};
  std::mutex mu_;
  std::condition_variable cv_;
  // The receive loop's own: it looks every 2 ms while calls flow, and waking
  // it at the end of every call would cost a thread switch per call.
  std::condition_variable idle_cv_;
  bool dead_ = false;
  bool reader_busy_ = false;  // a thread is reading the channel
  int pending_ = 0;           // sync calls waiting for replies
  std::chrono::steady_clock::time_point last_call_{};
  std::unordered_map<uint64_t, Waiter *> waiting_;
  std::mutex cb_mu_;
  std::condition_variable cb_cv_;
  std::deque<Frame> callbacks_;
  std::atomic<bool> flush_pending_{false};
  std::mutex flush_mu_;
  std::condition_variable flush_cv_;
};

}  // namespace

namespace {

std::mutex g_connections_mu;
auto *g_connections = new std::unordered_map<std::string, Connection *>;

}  // namespace

// Async calls still queued when the program ends are sent: the server runs
// them, and the router counts them.
void flush_all_connections() {
  std::lock_guard lock(g_connections_mu);
  for (auto &[name, conn] : *g_connections) {
    if (conn != nullptr) conn->flush();
  }
}

namespace {
// The connection already open for an API, or nullptr (never opens one).
Connection *open_connection(const char *api_name) {
  std::lock_guard lock(g_connections_mu);
  const auto it = g_connections->find(api_name);
  return it == g_connections->end() ? nullptr : it->second;
}
}  // namespace

void *window_alloc(const char *api_name, size_t bytes) {
  Connection *conn = open_connection(api_name);
  return conn != nullptr ? conn->keep_space(bytes) : nullptr;
}

bool window_free(const char *api_name, void *p) {
  Connection *conn = open_connection(api_name);
  return conn != nullptr && conn->give_kept(p);
}

bool window_kept_offset(const char *api_name, const void *p, size_t bytes, uint64_t *offset) {
  Connection *conn = open_connection(api_name);
  return conn != nullptr && conn->kept_offset(p, bytes, offset);
}

Connection *Connection::for_api(const ApiInfo &api) {
  std::lock_guard lock(g_connections_mu);
  auto &slot = (*g_connections)[api.name];
  if (slot == nullptr) {
    slot = open(api);
    static const bool at_exit = std::atexit(flush_all_connections) == 0;
    (void)at_exit;
  }
  return slot;
}

Call::Call(const ApiInfo &api, uint32_t func, bool async)
    : api_(api), func_(func), async_(async), conn_(Connection::for_api(api)), placer_(conn_) {
  // Every call is tagged: its large arrays go to the window, or follow the
  // frame where no window takes them. Async calls keep nothing alive after
  // they are sent: their data never goes to the window.
  const bool window =
      !async && conn_ != nullptr && static_cast<Connection *>(conn_)->window() != nullptr;
  args_.set_window(window ? &placer_ : nullptr);
}

Call::~Call() {
  if (replied_) static_cast<Connection *>(conn_)->recycle(std::move(frame_));
}

Call::Placer::~Placer() {
  if (held_.empty()) return;
  WindowArena *arena = static_cast<Connection *>(conn_)->arena();
  for (const uint64_t offset : held_) arena->give(offset);
}

bool Call::Placer::place(const void *p, size_t len, uint64_t *offset) {
  auto *conn = static_cast<Connection *>(conn_);
  if (const auto at = conn->window()->offset_of(p, len)) {
    *offset = *at;  // already there (a mapped region's copy)
    return true;
  }
  if (!reserve(len, offset)) return false;  // small, or the window is full: inline
  copy_bulk(conn->window()->base() + *offset, p, len);
  return true;
}

bool Call::Placer::reserve_for(const void *dst, size_t len, uint64_t *offset) {
  if (const auto at = static_cast<Connection *>(conn_)->window()->offset_of(dst, len)) {
    *offset = *at;  // the application's memory in the window: filled in place
    return true;
  }
  return reserve(len, offset);
}

bool Call::Placer::reserve(size_t len, uint64_t *offset) {
  const auto at = static_cast<Connection *>(conn_)->take_space(len);
  if (!at) return false;  // small, or the window is full: inline
  held_.push_back(*at);
  *offset = *at;
  return true;
}

bool Call::invoke() {
  auto *conn = static_cast<Connection *>(conn_);
  if (conn == nullptr) {
    status_ = wire::ReplyStatus::NoServer;
    return false;
  }
  auto h = make_header(wire::Kind::Call, func_, conn->next_call_id(), this_thread_id(),
                       async_ ? uint32_t{wire::kFlagAsync} : 0u);
  if (async_) {
    status_ = conn->call(h, args_, nullptr) ? wire::ReplyStatus::Ok : wire::ReplyStatus::NoServer;
    return status_ == wire::ReplyStatus::Ok;
  }
  Waiter w;
  hop_trace::mark(h.call_id, hop_trace::kGuestSend);
  if (!conn->call(h, args_, &w)) {
    status_ = wire::ReplyStatus::NoServer;
    return false;
  }
  conn->wait(w);
  hop_trace::mark(h.call_id, hop_trace::kGuestReturn);
  if (!w.have_frame) {
    status_ = wire::ReplyStatus::NoServer;
    return false;
  }
  frame_ = std::move(w.frame);
  replied_ = true;
  Reader r = frame_.reader();
  prefix_ = r.get<wire::ReplyPrefix>();
  if (!r.ok()) {
    status_ = wire::ReplyStatus::BadFrame;
    return false;
  }
  status_ = static_cast<wire::ReplyStatus>(prefix_.status);
  reply_ = r;
  if (prefix_.has_deferred != 0)
    report_async_failure(api_, prefix_.deferred_func, prefix_.deferred_value);
  return status_ == wire::ReplyStatus::Ok;
}

namespace {

// Answers of guest_cache_if calls, keyed by API, function and the encoded
// arguments (handle ids are never reused, so a key never means another
// object). Bounded: past the limit it starts over.
class AnswerCache {
 public:
  static std::string key(const ApiInfo &api, uint32_t func, Writer &args) {
    std::string k(api.name);
    k.push_back('\0');
    k.append(reinterpret_cast<const char *>(&func), sizeof(func));
    for (const auto &v : args.iovecs()) k.append(static_cast<const char *>(v.iov_base), v.iov_len);
    return k;
  }
  bool find(const std::string &k, std::vector<uint8_t> *answer) {
    std::lock_guard lock(mu_);
    const auto it = answers_.find(k);
    if (it == answers_.end()) return false;
    *answer = it->second;
    return true;
  }
  void keep(std::string k, uint32_t flags, const uint8_t *data, size_t size) {
    constexpr size_t kMaxBytes = 16u << 20;
    if (size > kMaxBytes / 16) return;
    std::lock_guard lock(mu_);
    if (bytes_ + k.size() + size > kMaxBytes) {
      answers_.clear();
      bytes_ = 0;
    }
    bytes_ += k.size() + size;
    auto &a = answers_[std::move(k)];
    a.resize(sizeof(flags) + size);
    std::memcpy(a.data(), &flags, sizeof(flags));
    std::memcpy(a.data() + sizeof(flags), data, size);
  }

 private:
  std::mutex mu_;
  std::unordered_map<std::string, std::vector<uint8_t>> answers_;
  size_t bytes_ = 0;
};

AnswerCache &answer_cache() {
  static auto *c = new AnswerCache;  // never destroyed: calls may run at exit
  return *c;
}

}  // namespace

bool Call::answer_from_cache() {
  std::vector<uint8_t> answer;
  cache_key_ = AnswerCache::key(api_, func_, args_);  // remember_answer() keeps it under this
  if (!answer_cache().find(cache_key_, &answer)) return false;
  cache_key_.clear();  // kept already
  // The reply's frame flags (is it tagged?), then its payload.
  uint32_t flags = 0;
  if (answer.size() < sizeof(flags)) return false;
  std::memcpy(&flags, answer.data(), sizeof(flags));
  frame_ = Frame{};
  frame_.header.flags = flags;
  frame_.size = answer.size() - sizeof(flags);
  frame_.capacity = frame_.size == 0 ? 1 : frame_.size;
  frame_.data = std::make_unique_for_overwrite<uint8_t[]>(frame_.capacity);
  std::memcpy(frame_.data.get(), answer.data() + sizeof(flags), frame_.size);
  Reader r = frame_.reader();
  prefix_ = r.get<wire::ReplyPrefix>();
  prefix_.has_deferred = 0;  // said when it first came
  status_ = static_cast<wire::ReplyStatus>(prefix_.status);
  reply_ = r;
  return r.ok() && status_ == wire::ReplyStatus::Ok;
}

void Call::remember_answer() {
  if (status_ != wire::ReplyStatus::Ok || !frame_.data || cache_key_.empty()) return;
  // An answer in window space is gone once this call is over.
  if (frame_.reader().ref_count() != 0) return;
  answer_cache().keep(std::move(cache_key_), frame_.header.flags, frame_.data.get(), frame_.size);
}

namespace {
// A new token for `e` (g_expected_mu held).
uint64_t add_expected_locked(const ExpectedData &e) {
  const uint64_t token = g_next_token++;
  (*g_expected)[token] = e;
  return token;
}
}  // namespace

uint64_t expect_data(void *dst, uint64_t bytes) {
  std::lock_guard lock(g_expected_mu);
  return add_expected_locked({dst, bytes});
}

void forget_data(uint64_t token) {
  std::lock_guard lock(g_expected_mu);
  const auto it = g_expected->find(token);
  if (it == g_expected->end()) return;
  it->second.give_back();
  g_expected->erase(it);
}

uint64_t put_deferred_in(const ApiInfo &api, Writer &w, const void *src, uint64_t bytes) {
  Connection *conn = Connection::for_api(api);
  const auto offset = w.tagged() && conn != nullptr ? conn->take_space(bytes) : std::nullopt;
  if (!offset) {  // no window, small, or full: the server copies the bytes it gets
    w.put_u64(0);
    w.put_bulk(src, bytes);
    return 0;
  }
  copy_bulk(conn->window()->base() + *offset, src, bytes);
  uint64_t token = 0;
  {
    std::lock_guard lock(g_expected_mu);
    token = add_expected_locked({nullptr, bytes, conn->arena(), conn->window()->base(), *offset});
  }
  w.put_u64(token);
  w.put_bulk_at(*offset, src, bytes);
  return token;
}

void put_data_space(const ApiInfo &api, Writer &w, uint64_t token) {
  if (!w.tagged()) return;
  Connection *conn = Connection::for_api(api);
  std::optional<uint64_t> offset;
  std::lock_guard lock(g_expected_mu);
  const auto it = g_expected->find(token);
  if (conn != nullptr && it != g_expected->end()) {
    offset = conn->take_space(it->second.bytes);
    if (offset) {
      it->second.arena = conn->arena();
      it->second.window = conn->window()->base();
      it->second.offset = *offset;
    }
  }
  w.put_out_at(offset, it != g_expected->end() ? it->second.bytes : 0);
}

uint64_t register_callback(void *fn, void *userdata) { return registry().add(fn, userdata); }

namespace {

struct HandleBox {
  const void *dispatch;  // must stay first: loaders read it
  uint64_t id;
  uint32_t type;
  uint64_t refs = 0;  // the application's references, mirrored from the server's rule
  bool dead = false;  // counted, and the last reference was dropped
};

class BoxTable {
 public:
  std::mutex &mutex() { return mu_; }
  void *box(uint64_t id, uint32_t type, const void *dispatch) {
    if (id == 0) return nullptr;
    std::lock_guard lock(mu_);
    auto &slot = by_id_[{id, type}];
    if (slot == nullptr) {
      slot = new HandleBox{dispatch, id, type};  // kept: apps may hold stale handles
      boxes_.insert(slot);
    }
    return slot;
  }
  uint64_t unbox(const void *h, uint32_t type) {
    if (h == nullptr) return 0;
    std::lock_guard lock(mu_);
    const auto *b = static_cast<const HandleBox *>(h);
    if (boxes_.count(const_cast<HandleBox *>(b)) == 0 || b->type != type || b->dead) {
      return kInvalidHandle;
    }
    return b->id;
  }
  void retain(const void *h) {
    std::lock_guard lock(mu_);
    auto *b = static_cast<HandleBox *>(const_cast<void *>(h));
    if (h != nullptr && boxes_.count(b) != 0) ++b->refs;
  }
  void add_reference(const void *h) {
    std::lock_guard lock(mu_);
    auto *b = static_cast<HandleBox *>(const_cast<void *>(h));
    if (h != nullptr && boxes_.count(b) != 0 && b->refs != 0) ++b->refs;
  }
  void release(const void *h) {
    std::lock_guard lock(mu_);
    auto *b = static_cast<HandleBox *>(const_cast<void *>(h));
    if (h == nullptr || boxes_.count(b) == 0 || b->refs == 0) return;
    if (--b->refs == 0) b->dead = true;
  }

 private:
  std::mutex mu_;
  std::map<std::pair<uint64_t, uint32_t>, HandleBox *> by_id_;
  std::set<HandleBox *> boxes_;
};

BoxTable *g_boxes = new BoxTable;  // replaced in a forked child
BoxTable &boxes() { return *g_boxes; }

}  // namespace

uint64_t new_handle_id() {
  static std::atomic<uint64_t> next{1};
  return wire::kGuestIdBit | next.fetch_add(1);
}

void *box_handle(uint64_t id, uint32_t type, const void *dispatch) {
  return boxes().box(id, type, dispatch);
}

uint64_t unbox_handle(const void *handle, uint32_t type) { return boxes().unbox(handle, type); }
uint64_t unbox_handle(const void *handle, uint32_t type, uint32_t also) {
  const uint64_t id = boxes().unbox(handle, type);
  return id != kInvalidHandle || also == type ? id : boxes().unbox(handle, also);
}
void retain_handle(const void *handle) { boxes().retain(handle); }
void release_handle(const void *handle) { boxes().release(handle); }
void add_handle_reference(const void *handle) { boxes().add_reference(handle); }

namespace {

struct Region {
  uint64_t server_addr;
  uint64_t bytes;
  bool owned;        // allocated by us (freed at unmap), or the application's memory
  bool writes_back;  // the unmap sends the bytes back (not for read-only maps)
};

std::mutex g_regions_mu;
std::map<const void *, Region> &regions() {
  static auto *r = new std::map<const void *, Region>;
  return *r;
}

// Guest copies of unmapped regions, kept for the next map: fresh large
// allocations are new mappings whose pages fault on every map (a 4 MiB map
// and unmap cost ~1 ms more that way). Bounded in count and bytes.
class RegionBlocks {
 public:
  static uint64_t rounded(uint64_t bytes) { return (bytes + 4095) / 4096 * 4096 + 4096; }
  void *take(uint64_t bytes) {
    const uint64_t want = rounded(bytes);
    {
      std::lock_guard lock(mu_);
      for (auto it = free_.begin(); it != free_.end(); ++it) {
        if (it->second < want || it->second > 2 * want) continue;
        void *p = it->first;
        held_ -= it->second;
        sizes_[p] = it->second;
        free_.erase(it);
        return p;
      }
    }
    void *p = std::aligned_alloc(4096, want);
    if (p == nullptr) return nullptr;
    std::lock_guard lock(mu_);
    sizes_[p] = want;
    return p;
  }
  void give(void *p) {
    std::lock_guard lock(mu_);
    const auto it = sizes_.find(p);
    const uint64_t size = it != sizes_.end() ? it->second : 0;
    if (it != sizes_.end()) sizes_.erase(it);
    if (size == 0 || free_.size() >= kMaxBlocks || held_ + size > kMaxBytes) {
      std::free(p);
      return;
    }
    free_.emplace_back(p, size);
    held_ += size;
  }

 private:
  static constexpr size_t kMaxBlocks = 8;
  static constexpr uint64_t kMaxBytes = 256ull << 20;
  std::mutex mu_;
  std::vector<std::pair<void *, uint64_t>> free_;
  std::unordered_map<void *, uint64_t> sizes_;  // blocks handed out
  uint64_t held_ = 0;
};

RegionBlocks &region_blocks() {
  static auto *b = new RegionBlocks;  // never destroyed: unmaps may run at exit
  return *b;
}

}  // namespace

void *map_region(Reader &blob, void *at) {
  const uint64_t addr = blob.get_u64();
  if (addr == 0) return nullptr;
  const uint64_t bytes = blob.get_u64();
  if (bytes > (uint64_t{1} << 40)) return nullptr;
  const uint8_t flags = blob.get_u8();
  const bool reads = (flags & wire::kMapReads) != 0;
  const bool in_window = (flags & wire::kMapInWindow) != 0;
  const uint8_t *src = nullptr;
  if (reads || in_window) {
    src = blob.bulk(bytes);
    if (src == nullptr) return nullptr;
  }
  // Window space the server set aside is the copy itself: the application
  // reads and writes the shared pages, and nothing is copied here.
  void *copy = at != nullptr ? at
               : in_window   ? const_cast<uint8_t *>(src)
                             : region_blocks().take(bytes);
  if (copy == nullptr) return nullptr;
  if (reads && copy != src) copy_bulk(copy, src, bytes);
  std::lock_guard lock(g_regions_mu);
  regions()[copy] = {addr, bytes, at == nullptr && !in_window, (flags & wire::kMapWrites) != 0};
  return copy;
}

void encode_unmap(Writer &w, const void *guest_ptr) {
  if (guest_ptr == nullptr) {
    w.put_u8(0);
    return;
  }
  Region r{};
  {
    std::lock_guard lock(g_regions_mu);
    const auto it = regions().find(guest_ptr);
    if (it == regions().end()) {
      w.put_u8(2);  // not a region we mapped: the server refuses it
      return;
    }
    r = it->second;
  }
  w.put_u8(1);
  w.put_u64(r.server_addr);
  // A mapping for reading only sends nothing back.
  const uint64_t back = r.writes_back ? r.bytes : 0;
  w.put_u64(back);
  w.put_bulk(guest_ptr, back);
}

void release_region(const void *guest_ptr) {
  std::lock_guard lock(g_regions_mu);
  const auto it = regions().find(guest_ptr);
  if (it == regions().end()) return;
  if (it->second.owned) region_blocks().give(const_cast<void *>(it->first));
  regions().erase(it);
}

void report_async_failure(const ApiInfo &api, uint32_t func, int64_t value) {
  // Never returned from another call (that would be a wrong answer to it):
  // said once per function on stderr, where a developer looks.
  static std::mutex mu;
  static std::set<uint32_t> seen;
  {
    std::lock_guard lock(mu);
    if (!seen.insert(func).second) return;
  }
  const char *name = func < api.function_count ? api.function_names[func] : "?";
  std::fprintf(stderr,
               "hira: %s.%s: an asynchronous call returned %lld on the server after the guest "
               "had accepted it (the application saw success)\n",
               api.name, name, static_cast<long long>(value));
}

void report_failure(const ApiInfo &api, uint32_t func, wire::ReplyStatus status) {
  // Loaded inside an API server by a loader: offline on purpose, and quiet.
  if (std::getenv(wire::kInsideApiServerEnv) != nullptr) return;
  // Refused handles and arguments come back as the API's own error codes.
  if (status == wire::ReplyStatus::BadHandle || status == wire::ReplyStatus::BadArgument) return;
  static std::mutex mu;
  static std::set<std::pair<uint32_t, uint32_t>> seen;
  {
    std::lock_guard lock(mu);
    if (!seen.insert({func, static_cast<uint32_t>(status)}).second) return;
  }
  const char *name = func < api.function_count ? api.function_names[func] : "?";
  std::fprintf(stderr, "hira: %s.%s: %s\n", api.name, name, wire::status_name(status));
}

namespace {

// fork(): the child shares the parent's sockets, which must not carry two
// processes' calls. The child starts over: fresh connections (its own API
// servers) and no handles; the parent's handles are invalid there, as an
// API's objects are after fork. Locks are held across fork so the child
// never inherits one mid-update.
void before_fork() {
  g_connections_mu.lock();
  registry().mutex().lock();
  boxes().mutex().lock();
  g_regions_mu.lock();
}
void after_fork_in_parent() {
  g_regions_mu.unlock();
  boxes().mutex().unlock();
  registry().mutex().unlock();
  g_connections_mu.unlock();
}
void after_fork_in_child() {
  for (auto &[name, conn] : *g_connections) {
    if (conn != nullptr) ::close(conn->fd());  // the parent keeps its own copy
  }
  g_connections = new std::unordered_map<std::string, Connection *>;  // old ones leak
  g_boxes = new BoxTable;
  after_fork_in_parent();
}
const int g_atfork = ::pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);

}  // namespace

}  // namespace hira::guest
