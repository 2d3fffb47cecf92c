#include "guest_session.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "command_check.h"
#include "hira/hop_trace.h"
#include "hira/remote_auth.h"
#include "hira/window.h"
#include "vm_region.h"

namespace hira::router {

namespace {
// Sync calls one guest may have in flight; beyond that it is cut off.
constexpr size_t kMaxPending = 1 << 16;
constexpr int kHelloTimeoutSec = 10;
// A refusal that names no argument: the guest returns the spec's error value.
constexpr uint32_t kNoArgument = ~0u;

// A guest's string as it may appear in a log line: printable ASCII only
// (others as \xNN), at most 64 characters, so that no guest can forge or
// break the lines operators read.
std::string printable(const std::string &s) {
  std::string out;
  for (const unsigned char c : s.substr(0, 64)) {
    if (c >= 0x20 && c < 0x7f && c != '\\') {
      out.push_back(static_cast<char>(c));
    } else {
      char esc[5];
      std::snprintf(esc, sizeof(esc), "\\x%02x", c);
      out += esc;
    }
  }
  if (s.size() > 64) out += "...";
  return out;
}

// A delta by which a call allocates a continuous resource (booked when its
// reply shows the allocation happened; counted against quotas until then).
bool allocates(const RouterModule &m, const ResourceDelta &d) {
  return !d.by_handle && !d.probe && d.amount > 0 && d.resource < m.resource_count &&
         m.resource_continuous[d.resource] != 0;
}

}  // namespace

GuestSession::GuestSession(int guest_fd, const RouterParts &parts, Vm &vm, std::string origin,
                           VmRegion *region)
    : guest_(guest_fd),
      apis_(parts.apis),
      pool_(parts.pool),
      stats_(parts.stats),
      limits_(parts.limits),
      resources_(parts.resources),
      dispatcher_(parts.dispatcher),
      admission_(parts.admission),
      vm_(vm),
      name_(std::move(origin)),
      region_(region) {
  guest_.grow_frames_as_they_arrive();
  // Bulk bytes pass through a chunk at a time, never held whole.
  guest_.pass_bulk_through();
}

namespace {
// Whether child `pid` exits within `ms` (reaped if it does).
bool exits_within(pid_t pid, int ms) {
  const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (pidfd >= 0) {
    pollfd p{pidfd, POLLIN, 0};
    ::poll(&p, 1, ms);
    ::close(pidfd);
    return ::waitpid(pid, nullptr, WNOHANG) != 0;
  }
  for (int waited = 0; waited < ms; ++waited) {  // kernels before 5.3
    if (::waitpid(pid, nullptr, WNOHANG) != 0) return true;
    ::usleep(1000);
  }
  return false;
}
}  // namespace

GuestSession::~GuestSession() {
  if (region_slice_) region_->release(*region_slice_);
  // Its server ends with it, and with the server what its objects held.
  for (uint32_t r = 0; r < kMaxResources; ++r) {
    vm_.ledger.held[r].fetch_sub(held_by_rc_[r].load(), std::memory_order_relaxed);
  }
  if (counted_) vm_.ledger.guests.fetch_sub(1, std::memory_order_relaxed);
  vm_.ledger.releasing.fetch_sub(static_cast<uint32_t>(releasing_.size()));
  if (server_pid_ > 0) {
    // Its guest is gone: the server ends on SIGTERM, or on SIGKILL if it
    // does not within a grace period (a vendor library stuck in a call).
    ::kill(server_pid_, SIGTERM);
    if (!exits_within(server_pid_, 2000)) {
      std::fprintf(stderr, "hira-router: the API server of %s ignored SIGTERM; killing it\n",
                   name_.c_str());
      ::kill(server_pid_, SIGKILL);
      ::waitpid(server_pid_, nullptr, 0);
    }
  }
  try {
    stats_.forget_guest(name_);
  } catch (const std::exception &) {
    // Out of memory: its resources stay listed under its own name.
  }
}

void GuestSession::run() {
  if (!handshake()) return;
  std::thread back;
  try {
    back = std::thread([this] {
      try {
        server_to_guest();
      } catch (const std::exception &e) {  // out of memory: this guest only
        std::fprintf(stderr, "hira-router: guest %s dropped: %s\n", name_.c_str(), e.what());
        guest_.shutdown();
      }
    });
  } catch (const std::system_error &) {
    // Out of threads: this guest is not served (its calls fail at once);
    // the router and its other guests go on.
    std::fprintf(stderr, "hira-router: guest %s: no thread left to serve it; disconnecting it\n",
                 name_.c_str());
    return;
  }
  // Whatever happens to this pump, the other one is joined (a joinable
  // thread destroyed by an exception would abort the whole router).
  try {
    guest_to_server();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "hira-router: guest %s dropped: %s\n", name_.c_str(), e.what());
  }
  // The guest is gone (or cut off): closing the server's channel ends it.
  server_->shutdown();
  back.join();
}

int GuestSession::accept_window(int fd) {
  if (fd < 0) return -1;
  if (!api_->remote_endpoint.empty()) {  // a remote server cannot map it: data inline
    ::close(fd);
    return -1;
  }
  std::string why = "windows are off";
  const auto size =
      limits_.max_window_bytes == 0 ? std::nullopt : check_window_fd(fd, kMaxWindowBytes, &why);
  if (!size) {
    std::fprintf(stderr,
                 "hira-router: guest %s: shared-memory window refused (%s); its data "
                 "travels inline\n",
                 name_.c_str(), why.c_str());
    ::close(fd);
    return -1;
  }
  // A window larger than the operator allows is used up to the limit (the
  // server maps only that much of it, and the guest is told): a guest built
  // with a larger default keeps its window under a stricter operator.
  window_bytes_ = std::min(*size, limits_.max_window_bytes / 4096 * 4096);
  window_cut_ = window_bytes_ < *size;
  return fd;
}

int GuestSession::accept_vm_window(uint64_t offset, uint64_t bytes) {
  std::string why;
  if (region_ == nullptr) {
    why = "this VM has no shared region (hira-router --vm-window)";
  } else if (!api_->remote_endpoint.empty()) {
    why = "its API server is remote";
  } else if (limits_.max_window_bytes == 0) {
    why = "windows are off";
  } else if (check_region_slice(region_->fd(), offset, bytes, limits_.max_window_bytes, &why)) {
    if (region_->claim(offset, bytes)) {
      const int fd = ::fcntl(region_->fd(), F_DUPFD_CLOEXEC, 0);
      if (fd >= 0) {
        region_slice_ = offset;
        window_bytes_ = bytes;
        return fd;
      }
      region_->release(offset);
      why = std::strerror(errno);
    } else {
      why = "another guest process of this VM holds that slice";
    }
  }
  std::fprintf(stderr,
               "hira-router: guest %s: shared-memory window refused (%s); its data travels "
               "inline\n",
               name_.c_str(), why.c_str());
  return -1;
}

std::unique_ptr<RingPair> GuestSession::accept_rings(int fd) {
  if (fd < 0) return nullptr;
  std::string why;
  auto rings = RingPair::attach(fd, &why);
  ::close(fd);
  if (!rings) {
    std::fprintf(stderr,
                 "hira-router: guest %s: command rings refused (%s); its calls use the socket\n",
                 name_.c_str(), why.c_str());
  }
  return rings;
}

bool GuestSession::handshake() {
  guest_.set_recv_timeout(kHelloTimeoutSec);
  Frame f;
  Channel::HelloFds fds;  // the hello may bring the guest's window and rings
  const RecvResult hello = guest_.recv_hello(f, &fds);
  int window_fd = fds.window;
  int rings_fd = fds.rings;
  // Closes both on every way out; whoever uses one takes it (sets it to -1).
  struct FdsGuard {
    int *a, *b;
    ~FdsGuard() {
      for (const int *fd : {a, b}) {
        if (*fd >= 0) ::close(*fd);
      }
    }
  } guard{&window_fd, &rings_fd};
  if (hello != RecvResult::Ok || f.kind() != wire::Kind::Hello ||
      (f.header.flags & wire::kFlagBulk) != 0) {
    return false;
  }
  guest_.set_recv_timeout(0);
  Reader r = f.reader();
  const uint32_t len = r.get_u32();
  const uint8_t *name = len <= 256 ? r.bulk(len) : nullptr;
  const uint64_t signature = r.get_u64();
  const uint32_t pid = r.get_u32();
  // A guest in a VM names its slice of the VM's region instead of passing a window.
  const bool vm_window = (f.header.flags & wire::kFlagVmWindow) != 0;
  const uint64_t slice_offset = vm_window ? r.get_u64() : 0;
  const uint64_t slice_bytes = vm_window ? r.get_u64() : 0;
  auto refuse = [&](wire::ReplyStatus s, const std::string &why) {
    std::fprintf(stderr, "hira-router: refusing guest %s: %s\n", name_.c_str(), why.c_str());
    guest_.send(make_header(wire::Kind::HelloAck, static_cast<uint32_t>(s)), nullptr);
    return false;
  };
  if (name == nullptr || !r.done()) return refuse(wire::ReplyStatus::BadFrame, "malformed hello");
  const std::string api(reinterpret_cast<const char *>(name), len);
  api_ = apis_.find(api);
  if (api_ == nullptr)
    return refuse(wire::ReplyStatus::Unsupported, "unknown API '" + printable(api) + "'");
  if (signature != api_->module->signature) {
    return refuse(wire::ReplyStatus::Unsupported,
                  "guest library for '" + api + "' was generated from another spec version");
  }
  name_ += "/pid" + std::to_string(pid);
  fstats_ = stats_.functions(*api_->module);
  if (!start_server()) return refuse(wire::ReplyStatus::NoServer, "cannot start the API server");
  // Forward the hello so the server checks it serves the same API; the
  // window goes to this guest's server only, and only after the check. The
  // server gets rings of its own (the router's memory, not the guest's).
  const int server_window = vm_window ? accept_vm_window(slice_offset, slice_bytes)
                                      : accept_window(std::exchange(window_fd, -1));
  std::unique_ptr<RingPair> guest_rings = accept_rings(std::exchange(rings_fd, -1));
  std::unique_ptr<RingPair> server_rings;
  int server_rings_fd = -1;
  if (api_->remote_endpoint.empty()) {
    std::string why;
    server_rings = RingPair::create(&server_rings_fd, &why);
    if (!server_rings) {
      std::fprintf(stderr, "hira-router: no command rings for the server of %s (%s)\n",
                   name_.c_str(), why.c_str());
    }
  }
  std::vector<int> server_fds;
  f.header.flags &= wire::kFlagHeartbeats;  // the guest's wish passes; descriptors are ours
  if (server_window >= 0) {
    f.header.flags |= wire::kFlagWindow | (vm_window ? uint32_t{wire::kFlagVmWindow} : 0u);
    server_fds.push_back(server_window);
  }
  if (server_rings_fd >= 0) {
    f.header.flags |= wire::kFlagRings;
    server_fds.push_back(server_rings_fd);
  }
  bool sent = false;
  if (server_window >= 0 && window_cut_) {
    // The server maps the part of the window the guest may use, as it maps
    // a VM's slice: the same hello with the slice [0, window_bytes_).
    Writer w;
    put_hello(w, api, signature, pid, HelloSlice{0, window_bytes_});
    f.header.flags |= wire::kFlagVmWindow;
    sent = server_->send(f.header, &w, server_fds);
  } else {
    sent = server_->forward(f, server_fds);
  }
  for (const int fd : server_fds) ::close(fd);
  Frame ack;
  // A server that never answers (stuck starting: a vendor library hanging in
  // its initialisation, no memory) must not hold its guest for ever.
  server_->set_recv_timeout(kHelloTimeoutSec);
  const bool acked = sent && server_->recv(ack) == RecvResult::Ok &&
                     ack.kind() == wire::Kind::HelloAck && ack.header.func == 0;
  server_->set_recv_timeout(0);
  if (!acked) {
    return refuse(wire::ReplyStatus::NoServer, "the API server refused the guest" + server_fate());
  }
  if (server_rings && (ack.header.flags & wire::kFlagRings) != 0) {
    server_->attach_rings(std::move(server_rings), true);
  }
  uint32_t ack_flags = 0;
  Writer ack_payload;
  if (server_window >= 0 && (ack.header.flags & wire::kFlagWindow) != 0) {
    // The router checks references against the window's size; it never maps it.
    guest_.set_window({nullptr, window_bytes_});
    server_->set_window({nullptr, window_bytes_});
    ack_flags |= wire::kFlagWindow;
    ack_payload.put_u64(window_bytes_);  // what of its window the guest may use
  }
  if (guest_rings) ack_flags |= wire::kFlagRings;
  if (!guest_.send(make_header(wire::Kind::HelloAck, 0, 0, 0, ack_flags), &ack_payload)) {
    return false;
  }
  if (guest_rings) guest_.attach_rings(std::move(guest_rings), false);
  pool_.refill(*api_, vm_.name);
  vm_.ledger.guests.fetch_add(1, std::memory_order_relaxed);
  counted_ = true;
  return true;
}

std::string GuestSession::server_fate() {
  if (server_pid_ <= 0) return "";
  int status = 0;
  for (int i = 0; i < 50; ++i) {  // it closed its end: it is exiting
    if (::waitpid(server_pid_, &status, WNOHANG) == server_pid_) {
      server_pid_ = -1;
      if (WIFSIGNALED(status))
        return " (it was killed by signal " + std::to_string(WTERMSIG(status)) + ")";
      const int code = WEXITSTATUS(status);
      return " (it exited with status " + std::to_string(code) +
             (code == 126   ? ": it could not enter its sandbox)"
              : code == 127 ? ": it could not be started)"
                            : ")");
    }
    ::usleep(2000);
  }
  return "";
}

bool GuestSession::start_server() {
  if (!api_->remote_endpoint.empty()) {
    std::string error;
    const int fd = connect_endpoint(api_->remote_endpoint, &error);
    if (fd < 0 || (!api_->remote_key.empty() &&
                   !authenticate_server(fd, api_->remote_key, kHelloTimeoutSec, &error))) {
      std::fprintf(stderr, "hira-router: remote API server %s: %s\n", api_->remote_endpoint.c_str(),
                   error.c_str());
      if (fd >= 0) ::close(fd);
      return false;
    }
    server_ = std::make_unique<Channel>(fd);
    server_->pass_bulk_through();
    return true;
  }
  const SpawnedServer s = pool_.take(*api_, vm_.name);
  if (s.pid < 0) return false;
  server_pid_ = s.pid;
  server_sandbox_ = s.sandbox;
  server_ = std::make_unique<Channel>(s.fd);
  // A server runs code its guest chose: it is no more trusted than the guest.
  server_->grow_frames_as_they_arrive();
  server_->pass_bulk_through();
  return true;
}

void GuestSession::reply_status(const wire::FrameHeader &call, wire::ReplyStatus status,
                                uint32_t detail) {
  if ((call.flags & wire::kFlagAsync) != 0) return;
  wire::ReplyPrefix p{};
  p.status = static_cast<uint32_t>(status);
  p.detail = detail;
  const iovec iov{&p, sizeof(p)};
  guest_.send(make_header(wire::Kind::Reply, call.func, call.call_id, call.thread), &iov, 1);
}

void GuestSession::FastSlot::put(const Pending &call) {
  p.func = call.func;
  p.start = call.start;
  p.accounting.count = std::min(call.accounting.count, kMaxDeltas);
  std::copy_n(call.accounting.deltas, p.accounting.count, p.accounting.deltas);
}

void GuestSession::FastSlot::take(Pending *call) const {
  call->func = p.func;
  call->start = p.start;
  call->accounting.count = p.accounting.count;
  std::copy_n(p.accounting.deltas, p.accounting.count, call->accounting.deltas);
  call->writes.clear();
}

void GuestSession::rejected(uint32_t func) {
  if (fstats_ != nullptr && func < api_->module->function_count) {
    Stats::record_rejected(fstats_[func]);
  }
}

bool GuestSession::references_clear(const Frame &f,
                                    std::vector<std::pair<uint64_t, uint64_t>> *writes) const {
  const Reader r = f.reader();  // its table was checked against the window
  auto overlaps_inflight = [&](uint64_t begin, uint64_t end) {
    auto it = writes_.upper_bound(begin);
    if (it != writes_.begin() && std::prev(it)->second > begin) return true;
    return it != writes_.end() && it->first < end;
  };
  for (uint32_t i = 0; i < r.ref_count(); ++i) {
    const RefEntry e = r.ref(i);
    if (e.length == 0) continue;
    const uint64_t end = e.offset + e.length;
    if (overlaps_inflight(e.offset, end)) return false;
    if (e.kind != kRefOut) continue;
    for (const auto &[b, en] : *writes) {
      if (b < end && e.offset < en) return false;  // two outs of one call on the same bytes
    }
    writes->emplace_back(e.offset, end);
  }
  return true;
}

void GuestSession::end_writes(const Pending &p) {
  for (const auto &[begin, end] : p.writes) writes_.erase(begin);
}

void GuestSession::account_call(uint32_t func, const std::vector<Reader> &blobs,
                                const CallAccounting &a) {
  const RouterModule &m = *api_->module;
  // A retain of a handle that holds resources: one more reference to drop
  // before they are released.
  if (const int32_t arg = m.retained_arg[func];
      arg >= 0 && static_cast<size_t>(arg) < blobs.size()) {
    Reader b = blobs[static_cast<size_t>(arg)];
    const uint64_t h = b.get_u64();
    std::lock_guard lock(mu_);
    if (const auto it = refs_.find(h); b.ok() && it != refs_.end()) ++it->second;
  }
  // A release drops one reference per handle (however many resources it
  // holds); only the last one releases them, unless the server reports
  // when the object is really gone.
  std::vector<uint64_t> seen, last;
  // Most calls release nothing: they take no lock here (the server pump
  // takes it for every reply).
  const bool releases = std::any_of(a.deltas, a.deltas + std::min<uint32_t>(a.count, kMaxDeltas),
                                    [](const ResourceDelta &d) { return d.by_handle; });
  if (releases) {
    std::lock_guard lock(mu_);
    for (uint32_t i = 0; i < a.count && i < kMaxDeltas; ++i) {
      const ResourceDelta &d = a.deltas[i];
      if (!d.by_handle || std::find(seen.begin(), seen.end(), d.handle) != seen.end()) continue;
      seen.push_back(d.handle);
      const auto r = refs_.find(d.handle);
      if (r == refs_.end()) continue;
      if (--r->second != 0) continue;
      refs_.erase(r);
      if (until_destroyed_.count(d.handle) != 0) {
        // Its holdings go when the server reports it destroyed: until then
        // a refusal over quota waits for it (the application released it).
        if (releasing_.insert(d.handle).second) vm_.ledger.releasing.fetch_add(1);
        continue;
      }
      last.push_back(d.handle);
    }
  }
  for (uint32_t i = 0; i < a.count && i < kMaxDeltas; ++i) {
    const ResourceDelta &d = a.deltas[i];
    if (d.resource >= m.resource_count) continue;
    if (d.by_handle) {
      if (std::find(last.begin(), last.end(), d.handle) != last.end()) {
        release(d.resource, d.handle);
      }
    } else if (m.resource_continuous[d.resource] == 0) {
      stats_.record_resource(m, name_, d.resource, d.amount);
      book_used(d.resource, d.amount);
    } else if (d.amount < 0) {
      stats_.record_resource(m, name_, d.resource, d.amount);
      book_held(d.resource, d.amount);
    }
    // Continuous allocations are booked when the reply shows they happened.
  }
}

void GuestSession::account_reply(const Pending &p, const Frame &reply) {
  const RouterModule &m = *api_->module;
  bool any = false;
  for (uint32_t i = 0; i < p.accounting.count; ++i) any |= allocates(m, p.accounting.deltas[i]);
  if (!any) return;
  Reader r = reply.reader();
  const auto prefix = r.get<wire::ReplyPrefix>();
  if (!r.ok() || prefix.status != 0 || !m.reply_succeeded(p.func, r)) return;
  const uint64_t h = m.allocated_handle(p.func, r);
  for (uint32_t i = 0; i < p.accounting.count; ++i) {
    const auto &d = p.accounting.deltas[i];
    if (allocates(m, d)) hold(p.func, d.resource, h, d.amount);
  }
}

void GuestSession::hold(uint32_t func, uint32_t resource, uint64_t handle, int64_t amount) {
  const RouterModule &m = *api_->module;
  // A creation that returned no object (the implementation refused it, and
  // the function returns the object, not a status) holds nothing: booked,
  // it could never be released.
  if (handle == 0) return;
  {
    std::lock_guard lock(mu_);
    held_[{resource, handle}] += amount;
    refs_.emplace(handle, 1);  // the creating call's reference
    if (m.held_until_destroyed[func] != 0) until_destroyed_.insert(handle);
  }
  stats_.record_resource(m, name_, resource, amount);
  book_held(resource, amount);
}

void GuestSession::book_held(uint32_t resource, int64_t delta) {
  const uint32_t id = resources_.id(*api_->module, resource);
  if (id >= kMaxResources) return;
  held_by_rc_[id].fetch_add(delta, std::memory_order_relaxed);
  vm_.ledger.held[id].fetch_add(delta, std::memory_order_relaxed);
}

void GuestSession::book_used(uint32_t resource, int64_t amount) {
  const uint32_t id = resources_.id(*api_->module, resource);
  if (id >= kMaxResources || amount <= 0) return;
  vm_.ledger.used[id].fetch_add(static_cast<uint64_t>(amount), std::memory_order_relaxed);
  if (id == HIRA_RC_DEVICE_TIME) {
    vm_.ledger.device_ns.fetch_add(static_cast<uint64_t>(amount), std::memory_order_relaxed);
  }
}

void GuestSession::reserve(const CallAccounting &a, int sign) {
  const RouterModule &m = *api_->module;
  for (uint32_t i = 0; i < a.count && i < kMaxDeltas; ++i) {
    const ResourceDelta &d = a.deltas[i];
    if (allocates(m, d)) book_held(d.resource, sign * d.amount);
  }
}

void GuestSession::release(uint32_t resource, uint64_t handle) {
  int64_t amount = 0;
  {
    std::lock_guard lock(mu_);
    const auto it = held_.find({resource, handle});
    if (it == held_.end()) return;
    amount = it->second;
    held_.erase(it);
  }
  stats_.record_resource(*api_->module, name_, resource, -amount);
  book_held(resource, -amount);
}

bool GuestSession::account_notices(const Frame &f) {
  const RouterModule &m = *api_->module;
  if (f.size % sizeof(wire::AccountNotice) != 0 || f.bulk_size != 0) return false;
  for (size_t at = 0; at < f.size; at += sizeof(wire::AccountNotice)) {
    wire::AccountNotice n{};
    std::memcpy(&n, f.data.get() + at, sizeof(n));
    if (n.op == wire::kNoticeUse) {
      // Measured by the server (device time): instantaneous resources only.
      if (n.resource >= m.resource_count || m.resource_continuous[n.resource] != 0 ||
          n.amount < 0 || n.handle != 0) {
        return false;
      }
      stats_.record_resource(m, name_, n.resource, n.amount);
      book_used(n.resource, n.amount);
      const bool async = (f.header.flags & wire::kFlagAsync) != 0;
      admission_.measured(vm_, m, f.header.func, async, resources_.id(m, n.resource), n.amount);
      // A wait for the device ended: commands held for the device ask again.
      if (!async && f.header.func < m.function_count && m.device_work[f.header.func] != 0) {
        dispatcher_.wake_all();
      }
      continue;
    }
    if (n.op == wire::kNoticeGone) {
      bool was_releasing = false;
      {
        std::lock_guard lock(mu_);
        // Only what the server said it would report (a server cannot
        // release what the router books from release calls).
        if (until_destroyed_.erase(n.handle) == 0) continue;
        refs_.erase(n.handle);
        was_releasing = releasing_.erase(n.handle) != 0;
      }
      for (uint32_t r = 0; r < m.resource_count; ++r) release(r, n.handle);
      // Only now: an allocation waiting for this memory must see it back
      // in its VM's ledger when it sees nothing more on its way.
      if (was_releasing) vm_.ledger.releasing.fetch_sub(1);
      continue;
    }
    // A server measures what its call's new object holds; a server that
    // says anything else is broken (its guest controls it on CPU devices).
    if (n.op != wire::kNoticeHold || n.resource >= m.resource_count ||
        m.resource_continuous[n.resource] == 0 || n.amount < 0 || n.handle == 0 ||
        f.header.func >= m.function_count) {
      return false;
    }
    hold(f.header.func, n.resource, n.handle, n.amount);
  }
  return true;
}

void GuestSession::guest_to_server() {
  const RouterModule &m = *api_->module;
  std::vector<Reader> blobs;
  for (;;) {
    Frame f;
    // Nothing more is here: what waits to travel on goes before this waits.
    if (!guest_.has_read_ahead() && !server_->flush()) return;
    const RecvResult rr = guest_.recv(f);
    if (rr == RecvResult::Malformed) {
      std::fprintf(stderr, "hira-router: guest %s sent a malformed frame; disconnecting it\n",
                   name_.c_str());
    }
    if (rr != RecvResult::Ok) return;
    hop_trace::mark(f.header.call_id, hop_trace::kRouterGotCall);
    if (f.kind() == wire::Kind::CallbackDone) {
      if (!server_->relay(f, guest_)) return;
      continue;
    }
    if (f.kind() != wire::Kind::Call) {
      std::fprintf(stderr,
                   "hira-router: guest %s sent an unexpected frame (kind %u); "
                   "disconnecting it\n",
                   name_.c_str(), f.header.kind);
      return;
    }
    const CheckResult cr = check_call(m, f, &blobs);
    if (cr != CheckResult::Ok) {
      rejected(f.header.func);
      reply_status(f.header, cr == CheckResult::UnknownFunction ? wire::ReplyStatus::Unsupported
                                                                : wire::ReplyStatus::BadFrame);
      continue;
    }
    hop_trace::mark(f.header.call_id, hop_trace::kRouterChecked);
    const bool async = (f.header.flags & wire::kFlagAsync) != 0;
    Pending p{f.header.func, std::chrono::steady_clock::now(), {}, {}};
    if (f.tagged()) {
      // References to window bytes a call in flight is filling are refused:
      // the guest would read or write them while the server does.
      std::lock_guard lock(mu_);
      if (!references_clear(f, &p.writes)) {
        rejected(f.header.func);
        reply_status(f.header, wire::ReplyStatus::BadArgument, kNoArgument);
        continue;
      }
    }
    m.account_call(f.header.func, blobs.data(), &p.accounting);
    const uint64_t bytes = f.size + f.bulk_size;
    // Its VM's queue: the policies in force let it go, hold it, or refuse it.
    // (What waits to go to the server goes first: a release it holds may be
    // what lets this command under its quota.)
    const wire::ReplyStatus verdict = dispatcher_.pass(vm_, m, f.header.func, async, p.accounting,
                                                       bytes, [this] { server_->flush(); });
    if (verdict != wire::ReplyStatus::Ok) {
      rejected(f.header.func);
      if (async) {
        // No reply to carry the refusal: said once per function here, and
        // the guest's later calls on what it would have made fail.
        if (refused_async_said_.insert(f.header.func).second) {
          std::fprintf(stderr, "hira-router: guest %s: async %s refused (%s)\n", name_.c_str(),
                       m.function_names[f.header.func], wire::status_name(verdict));
        }
      }
      reply_status(f.header, verdict);
      continue;
    }
    hop_trace::mark(f.header.call_id, hop_trace::kRouterAdmitted);
    vm_.ledger.calls.fetch_add(1, std::memory_order_relaxed);
    vm_.ledger.bytes_in.fetch_add(bytes, std::memory_order_relaxed);
    account_call(f.header.func, blobs, p.accounting);
    if (fstats_ != nullptr) Stats::record_call(fstats_[f.header.func], async, bytes);
    if (!async) {
      const uint64_t id = f.header.call_id;
      FastSlot &slot = fast_[id % kFastSlots];
      if (id != 0 && p.writes.empty() && pending_count_.load() == 0 && !server_gone_.load() &&
          slot.id.load(std::memory_order_acquire) == 0) {
        slot.put(p);  // (p.writes is empty)
        slot.id.store(id);
        // The server went while this was recorded: answered here, unless
        // the sweep took it first.
        if (server_gone_.load()) {
          uint64_t mine = id;
          if (slot.id.compare_exchange_strong(mine, 0)) {
            reply_status(f.header, wire::ReplyStatus::NoServer);
          }
          continue;
        }
      } else {
        std::lock_guard lock(mu_);
        if (server_gone_) {
          reply_status(f.header, wire::ReplyStatus::NoServer);
          continue;
        }
        bool duplicate = false;
        for (const auto &s : fast_) duplicate |= id != 0 && s.id.load() == id;
        if (duplicate || pending_.size() >= kMaxPending || !pending_.emplace(id, p).second) {
          std::fprintf(stderr,
                       "hira-router: guest %s: too many or duplicate call ids; "
                       "disconnecting it\n",
                       name_.c_str());
          return;
        }
        pending_count_.store(pending_.size());
        for (const auto &[begin, end] : p.writes) writes_[begin] = end;
      }
    }
    if (!async) reserve(p.accounting, +1);
    hop_trace::mark(f.header.call_id, hop_trace::kRouterRecorded);
    // Async calls travel on together while more are already here (one
    // system call for many); anything else, or an empty read-ahead, sends
    // what waits.
    const bool sent = async && f.bulk_size == 0 && guest_.has_read_ahead()
                          ? server_->queue_forward(f)
                          : server_->relay(f, guest_);
    if (!sent) reply_status(f.header, wire::ReplyStatus::NoServer);
    hop_trace::mark(f.header.call_id, hop_trace::kRouterSentCall);
    guest_.recycle(std::move(f));
  }
}

void GuestSession::server_to_guest() {
  for (;;) {
    Frame f;
    if (server_->recv(f) != RecvResult::Ok) break;
    if (f.kind() == wire::Kind::Reply) {
      hop_trace::mark(f.header.call_id, hop_trace::kRouterGotReply);
      Pending p{};
      const uint64_t id = f.header.call_id;
      FastSlot &slot = fast_[id % kFastSlots];
      uint64_t expect = id;
      if (id != 0 && slot.id.load(std::memory_order_acquire) == id) {
        slot.take(&p);
        slot.id.compare_exchange_strong(expect, 0);  // only this thread frees it while serving
      } else {
        std::lock_guard lock(mu_);
        const auto it = pending_.find(id);
        if (it == pending_.end()) continue;  // not a call we forwarded
        p = it->second;
        end_writes(p);
        pending_.erase(it);
        pending_count_.store(pending_.size());
      }
      hop_trace::mark(f.header.call_id, hop_trace::kRouterMatched);
      const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          std::chrono::steady_clock::now() - p.start)
                          .count();
      Reader r = f.reader();
      const auto prefix = r.get<wire::ReplyPrefix>();
      if (fstats_ != nullptr) {
        Stats::record_reply(fstats_[p.func], f.size + f.bulk_size, static_cast<uint64_t>(ns),
                            r.ok() && prefix.status == 0);
      }
      vm_.ledger.bytes_out.fetch_add(f.size + f.bulk_size, std::memory_order_relaxed);
      reserve(p.accounting, -1);
      account_reply(p, f);
      f.header.func = p.func;
      if (!guest_.relay(f, *server_)) break;
      hop_trace::mark(f.header.call_id, hop_trace::kRouterSentReply);
      server_->recycle(std::move(f));
    } else if (f.kind() == wire::Kind::Account) {
      if (!account_notices(f)) {
        std::fprintf(stderr, "hira-router: server for %s sent malformed accounting; ignored\n",
                     name_.c_str());
      }
      server_->recycle(std::move(f));
    } else if (f.kind() == wire::Kind::Callback || f.kind() == wire::Kind::Data ||
               f.kind() == wire::Kind::Heartbeat) {
      if (!guest_.relay(f, *server_)) break;
      server_->recycle(std::move(f));
    } else {
      std::fprintf(stderr, "hira-router: server for %s sent frame kind %u; closing\n",
                   name_.c_str(), f.header.kind);
      break;
    }
  }
  // The server is gone: every call still waiting gets an answer, then the
  // guest is disconnected so that later calls fail at once.
  std::unordered_map<uint64_t, Pending> orphans;
  {
    std::lock_guard lock(mu_);
    server_gone_ = true;
    orphans.swap(pending_);
    pending_count_.store(0);
    writes_.clear();
  }
  for (auto &slot : fast_) {
    uint64_t id = slot.id.load();
    if (id == 0) continue;
    Pending p;
    slot.take(&p);  // while the slot is still this call's
    if (slot.id.compare_exchange_strong(id, 0)) orphans.emplace(id, std::move(p));
  }
  for (const auto &[id, p] : orphans) {
    reserve(p.accounting, -1);
    auto h = make_header(wire::Kind::Call, p.func, id);
    reply_status(h, wire::ReplyStatus::NoServer);
  }
  if (!orphans.empty()) {
    std::fprintf(stderr,
                 "hira-router: the API server of %s went away with %zu call(s) in "
                 "flight\n",
                 name_.c_str(), orphans.size());
  }
  guest_.shutdown();
}

}  // namespace hira::router
