#include "hira/channel.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/vm_sockets.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>
#include <vector>

namespace hira {

namespace {

// Only large frames are worth keeping a buffer for, and not without limit.
constexpr size_t kRecycleMin = 1u << 20;
constexpr size_t kRecycleMax = 512u << 20;
constexpr size_t kReadAhead = 64u << 10;
// A frame's buffer starts this large and doubles as its bytes arrive.
constexpr size_t kGrowStep = 1u << 20;

// Sends every byte; `fds` ride with the first sendmsg.
bool write_all(int fd, std::span<iovec> iov, std::span<const int> fds) {
  size_t idx = 0;
  constexpr size_t kMaxFds = 8;
  if (fds.size() > kMaxFds) return false;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFds)] = {};
  while (idx < iov.size()) {
    msghdr msg{};
    msg.msg_iov = &iov[idx];
    msg.msg_iovlen = std::min<size_t>(iov.size() - idx, IOV_MAX);
    if (!fds.empty()) {
      msg.msg_control = control;
      msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
      cmsghdr *c = CMSG_FIRSTHDR(&msg);
      c->cmsg_level = SOL_SOCKET;
      c->cmsg_type = SCM_RIGHTS;
      c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
      std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
    }
    const ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
    if (n > 0) fds = {};
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    auto left = static_cast<size_t>(n);
    while (idx < iov.size() && left >= iov[idx].iov_len) {
      left -= iov[idx].iov_len;
      ++idx;
    }
    if (idx < iov.size()) {
      iov[idx].iov_base = static_cast<uint8_t *>(iov[idx].iov_base) + left;
      iov[idx].iov_len -= left;
    }
  }
  return true;
}

}  // namespace

// One recvmsg: descriptors that come with the bytes are kept (as many as
// accepted) or closed, so that no peer can fill this process's table.
ssize_t Channel::read_some(void *buf, size_t n, bool wait) {
  if (rings_) return rings_->read(buf, n, wait);
  iovec iov{buf, n};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * 8)];
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  const ssize_t r = ::recvmsg(fd_, &msg, MSG_CMSG_CLOEXEC | (wait ? 0 : MSG_DONTWAIT));
  if (r < 0 || msg.msg_controllen == 0) return r;
  for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int passed;
      std::memcpy(&passed, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (passed_fds_.size() < accept_fds_) {
        passed_fds_.push_back(passed);
      } else {
        ::close(passed);
      }
    }
  }
  return r;
}

RecvResult Channel::recv_hello(Frame &out, HelloFds *fds) {
  accept_fds_ = 2;
  const RecvResult rr = recv(out);
  accept_fds_ = 0;
  std::vector<int> passed = std::exchange(passed_fds_, {});
  size_t next = 0;
  auto take_if = [&](uint32_t flag) {
    if (rr != RecvResult::Ok || (out.header.flags & flag) == 0 || next >= passed.size()) return -1;
    return std::exchange(passed[next++], -1);
  };
  fds->window = take_if(wire::kFlagWindow);
  fds->rings = take_if(wire::kFlagRings);
  for (const int fd : passed) {
    if (fd >= 0) ::close(fd);
  }
  return rr;
}

bool Channel::read_exact(void *buf, size_t n) {
  size_t got = 0;
  while (got < n) {
    const ssize_t r = read_some(static_cast<uint8_t *>(buf) + got, n - got);
    if (r < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    if (r == 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

void Channel::attach_rings(std::unique_ptr<RingPair> rings, bool creator) {
  rings_ = std::make_unique<RingStream>(std::move(rings), creator, fd_);
}

bool Channel::wait_readable(std::chrono::milliseconds timeout) {
  if (has_read_ahead()) return true;
  if (rings_) return rings_->wait_readable(timeout);
  pollfd p{fd_, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) != 0;
}

namespace {

bool split_tcp(const std::string &rest, std::string *host, std::string *port) {
  const auto colon = rest.rfind(':');
  if (colon == std::string::npos) return false;
  *host = rest.substr(0, colon);
  *port = rest.substr(colon + 1);
  return !host->empty() && !port->empty();
}

int tcp_socket(const std::string &rest, bool listening, std::string *error) {
  std::string host, port;
  if (!split_tcp(rest, &host, &port)) {
    *error = "expected tcp:HOST:PORT";
    return -1;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = listening ? AI_PASSIVE : 0;
  addrinfo *res = nullptr;
  if (const int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res); rc != 0) {
    *error = std::string("cannot resolve ") + host + ": " + gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo *a = res; a != nullptr; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (listening) {
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 64) == 0) break;
    } else if (::connect(fd, a->ai_addr, a->ai_addrlen) == 0) {
      break;
    }
    *error = std::strerror(errno);
    ::close(fd);
    fd = -1;
  }
  ::freeaddrinfo(res);
  return fd;
}

int unix_socket(const std::string &path, bool listening, std::string *error) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) {
    *error = "socket path too long: " + path;
    return -1;
  }
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::strerror(errno);
    return -1;
  }
  int rc;
  if (listening) {
    ::unlink(path.c_str());
    rc = ::bind(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr));
    if (rc == 0) rc = ::listen(fd, 64);
  } else {
    rc = ::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr));
  }
  if (rc != 0) {
    *error = path + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

// "vsock:CID:PORT": a guest reaching its host (CID 2) through the VM's
// virtio-vsock device. Connect only: the host side is the device backend.
int vsock_socket(const std::string &rest, std::string *error) {
  unsigned long cid = 0, port = 0;
  char extra = 0;
  if (std::sscanf(rest.c_str(), "%lu:%lu%c", &cid, &port, &extra) != 2 || cid > UINT32_MAX ||
      port > UINT32_MAX) {
    *error = "expected vsock:CID:PORT";
    return -1;
  }
  const int fd = ::socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error =
        std::string("no vsock here (load the vsock transport module?): ") + std::strerror(errno);
    return -1;
  }
  sockaddr_vm addr{};
  addr.svm_family = AF_VSOCK;
  addr.svm_cid = static_cast<unsigned>(cid);
  addr.svm_port = static_cast<unsigned>(port);
  if (::connect(fd, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0) {
    *error = "vsock:" + rest + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

// "fd:N": a listening socket the parent already bound (hira run binds it so
// the program can start while the router does; connects wait in the backlog).
int inherited_listener(const std::string &number, std::string *error) {
  int fd = -1;
  try {
    size_t used = 0;
    fd = std::stoi(number, &used);
    if (used != number.size()) fd = -1;
  } catch (const std::exception &) {
    fd = -1;
  }
  int accepting = 0;
  socklen_t len = sizeof(accepting);
  if (fd < 0 || ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) != 0 ||
      accepting == 0) {
    *error = "fd:" + number + " is not an inherited listening socket";
    return -1;
  }
  ::fcntl(fd, F_SETFD, FD_CLOEXEC);  // API servers must not inherit it
  return fd;
}

int open_endpoint(const std::string &endpoint, bool listening, std::string *error) {
  if (listening && endpoint.rfind("fd:", 0) == 0)
    return inherited_listener(endpoint.substr(3), error);
  if (endpoint.rfind("unix:", 0) == 0) return unix_socket(endpoint.substr(5), listening, error);
  if (endpoint.rfind("tcp:", 0) == 0) return tcp_socket(endpoint.substr(4), listening, error);
  if (!listening && endpoint.rfind("vsock:", 0) == 0)
    return vsock_socket(endpoint.substr(6), error);
  *error = std::string("endpoint must start with unix: or tcp:") +
           (listening ? " or fd:" : " or vsock:") + " (got '" + endpoint + "')";
  return -1;
}

}  // namespace

Channel::Channel(int fd) : fd_(fd) {}

Channel::~Channel() {
  rings_.reset();
  if (fd_ >= 0) ::close(fd_);
  for (const int fd : passed_fds_) ::close(fd);
}

namespace {
// Frames up to this size may be queued; a queue this long is written out.
constexpr size_t kQueueFrameMax = 4096;
constexpr size_t kQueueMax = 64u << 10;
}  // namespace

namespace {
// Fills in the header's magic, version and length; returns the length.
size_t seal(wire::FrameHeader &header, const iovec *iov, size_t iovcnt) {
  size_t total = 0;
  for (size_t i = 0; i < iovcnt; ++i) total += iov[i].iov_len;
  header.magic = wire::kMagic;
  header.version = wire::kVersion;
  header.length = static_cast<uint32_t>(total);
  return total;
}

// A Writer's payload as iovecs; a tagged one marks the header.
std::vector<iovec> payload_of(wire::FrameHeader &header, Writer *payload) {
  if (payload == nullptr) return {};
  if (payload->tagged()) header.flags |= wire::kFlagTagged;
  return payload->iovecs();
}
}  // namespace

bool Channel::write_out(std::span<iovec> iov, std::span<const int> fds) {
  if (rings_) return fds.empty() && rings_->write(iov.data(), iov.size());
  return write_all(fd_, iov, fds);
}

namespace {
// Bulk chunks written with one system call (at most).
constexpr size_t kChunksPerWrite = 64;

wire::FrameHeader chunk_header(const wire::FrameHeader &of, uint32_t len) {
  wire::FrameHeader h = make_header(wire::Kind::Bulk, of.func, of.call_id, of.thread);
  h.magic = wire::kMagic;
  h.version = wire::kVersion;
  h.length = len;
  return h;
}
}  // namespace

bool Channel::send(wire::FrameHeader header, const iovec *iov, size_t iovcnt,
                   std::span<const int> fds, std::span<const iovec> bulk) {
  uint64_t bulk_bytes = 0;
  for (const auto &b : bulk) bulk_bytes += b.iov_len;
  if (bulk_bytes != 0) header.flags |= wire::kFlagBulk;
  const size_t body = seal(header, iov, iovcnt) + (bulk_bytes != 0 ? sizeof(bulk_bytes) : 0);
  if (body > wire::kMaxPayload || bulk_bytes > wire::kMaxBulk) return false;
  header.length = static_cast<uint32_t>(body);
  std::lock_guard lock(send_mu_);
  // Kept between frames (send_mu_ held): most frames then allocate nothing.
  std::vector<iovec> &all = send_iov_;
  all.clear();
  // What is queued goes first, in the same system call.
  if (!queued_.empty()) all.push_back({queued_.data(), queued_.size()});
  all.push_back({&header, sizeof(header)});
  for (size_t i = 0; i < iovcnt; ++i) {
    if (iov[i].iov_len != 0) all.push_back(iov[i]);
  }
  if (bulk_bytes != 0) all.push_back({&bulk_bytes, sizeof(bulk_bytes)});
  // The bulk bytes follow in chunks, a batch of them per system call.
  wire::FrameHeader chunks[kChunksPerWrite];
  size_t piece = 0, used = 0;  // next byte: bulk[piece], `used` bytes into it
  uint64_t left = bulk_bytes;
  bool ok = true;
  do {
    for (size_t n = 0; left != 0 && n < kChunksPerWrite; ++n) {
      const auto len = static_cast<uint32_t>(std::min<uint64_t>(left, wire::kBulkChunk));
      chunks[n] = chunk_header(header, len);
      all.push_back({&chunks[n], sizeof(chunks[n])});
      for (size_t need = len; need != 0;) {
        const size_t from_piece = std::min(need, bulk[piece].iov_len - used);
        if (from_piece != 0) {
          all.push_back({static_cast<uint8_t *>(bulk[piece].iov_base) + used, from_piece});
        }
        used += from_piece;
        need -= from_piece;
        if (used == bulk[piece].iov_len) {
          ++piece;
          used = 0;
        }
      }
      left -= len;
    }
    ok = write_out(all, fds);
    all.clear();
    fds = {};
    queued_.clear();
  } while (ok && left != 0);
  return ok;
}

bool Channel::relay(const Frame &f, Channel &from) {
  if (from.bulk_left_ == 0) return forward(f);
  std::lock_guard lock(send_mu_);
  iovec first[3];
  size_t n = 0;
  if (!queued_.empty()) first[n++] = {queued_.data(), queued_.size()};
  first[n++] = {const_cast<wire::FrameHeader *>(&f.header), sizeof(f.header)};
  first[n++] = {f.data.get(), f.size};
  bool ok = write_out({first, n}, {});
  queued_.clear();
  uint8_t *chunk = from.chunk_buffer();
  if (chunk == nullptr) return false;
  // A failed destination does not stop the reading: the source stays in
  // step with its peer.
  while (from.bulk_left_ != 0) {
    const uint32_t len = from.read_chunk(chunk);
    if (len == 0) return false;
    if (ok) {
      wire::FrameHeader h = chunk_header(f.header, len);
      iovec piece[2] = {{&h, sizeof(h)}, {chunk, len}};
      ok = write_out(piece, {});
    }
  }
  return ok;
}

bool Channel::flush_locked() {
  if (queued_.empty()) return true;
  iovec all{queued_.data(), queued_.size()};
  const bool ok = write_out({&all, 1}, {});
  queued_.clear();
  return ok;
}

bool Channel::queue_locked(wire::FrameHeader header, const iovec *iov, size_t iovcnt) {
  seal(header, iov, iovcnt);
  const auto *hb = reinterpret_cast<const uint8_t *>(&header);
  queued_.insert(queued_.end(), hb, hb + sizeof(header));
  for (size_t i = 0; i < iovcnt; ++i) {
    const auto *b = static_cast<const uint8_t *>(iov[i].iov_base);
    queued_.insert(queued_.end(), b, b + iov[i].iov_len);
  }
  return queued_.size() < kQueueMax || flush_locked();
}

bool Channel::queue(wire::FrameHeader header, Writer *payload) {
  const auto iov = payload_of(header, payload);
  size_t total = 0;
  for (const auto &v : iov) total += v.iov_len;
  if (total > kQueueFrameMax || (payload != nullptr && payload->bulk_bytes() != 0)) {
    return send(header, payload);
  }
  std::lock_guard lock(send_mu_);
  return queue_locked(header, iov.data(), iov.size());
}

bool Channel::queue_forward(const Frame &f) {
  if (f.size > kQueueFrameMax) return forward(f);
  const iovec iov{f.data.get(), f.size};
  std::lock_guard lock(send_mu_);
  return queue_locked(f.header, &iov, f.size != 0 ? 1 : 0);
}

bool Channel::flush() {
  std::lock_guard lock(send_mu_);
  return flush_locked();
}

bool Channel::send(wire::FrameHeader header, Writer *payload, std::span<const int> fds) {
  const auto iov = payload_of(header, payload);
  if (payload == nullptr) return send(header, iov.data(), iov.size(), fds);
  return send(header, iov.data(), iov.size(), fds, payload->bulk());
}

bool Channel::forward(const Frame &f, std::span<const int> fds) {
  const iovec iov{f.data.get(), f.size};
  return send(f.header, &iov, f.size != 0 ? 1 : 0, fds);
}

size_t Channel::buffered(size_t want) {
  // One read usually brings a small frame whole (header and payload), or
  // several frames: one system call per frame instead of two.
  if (rend_ - rpos_ >= want) return rend_ - rpos_;
  if (rbuf_.empty()) rbuf_.resize(kReadAhead);
  if (rpos_ != 0) {
    std::memmove(rbuf_.data(), rbuf_.data() + rpos_, rend_ - rpos_);
    rend_ -= rpos_;
    rpos_ = 0;
  }
  // A socket is polled a while before the read that sleeps (see
  // polling.h); rings poll by themselves.
  bool poll_first = !rings_ && read_spin_.budget() != 0;
  while (rend_ < want) {
    ssize_t r = -1;
    auto read_into_buffer = [&](bool wait) {
      r = read_some(rbuf_.data() + rend_, rbuf_.size() - rend_, wait);
      return r >= 0 || (errno != EAGAIN && errno != EINTR);
    };
    if (!poll_first) {
      read_into_buffer(true);
    } else {
      const auto start = std::chrono::steady_clock::now();
      if (poll_for([&] { return read_into_buffer(false); }, read_spin_.budget())) {
        poll_first = r > 0;  // poll again for the rest of a frame
      } else {
        poll_first = false;
        read_into_buffer(true);
      }
      read_spin_.waited(std::chrono::steady_clock::now() - start);
    }
    if (r < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (r == 0) break;
    rend_ += static_cast<size_t>(r);
  }
  return rend_ - rpos_;
}

bool Channel::take(void *buf, size_t n) {
  const size_t got = std::min(n, rend_ - rpos_);
  std::memcpy(buf, rbuf_.data() + rpos_, got);
  rpos_ += got;
  return got == n || read_exact(static_cast<uint8_t *>(buf) + got, n - got);
}

uint32_t Channel::read_chunk(uint8_t *dst) {
  wire::FrameHeader h{};
  if (!broken_ && buffered(sizeof(h)) >= sizeof(h)) {
    std::memcpy(&h, rbuf_.data() + rpos_, sizeof(h));
    rpos_ += sizeof(h);
    if (wire::header_is_sane(h) && h.kind == static_cast<uint16_t>(wire::Kind::Bulk) &&
        h.call_id == bulk_call_ && h.length != 0 && h.length <= wire::kBulkChunk &&
        h.length <= bulk_left_ && take(dst, h.length)) {
      bulk_left_ -= h.length;
      return h.length;
    }
  }
  broken_ = true;  // nothing after this can be read as frames
  return 0;
}

uint8_t *Channel::chunk_buffer() {
  if (!chunk_) chunk_.reset(new (std::nothrow) uint8_t[wire::kBulkChunk]);
  return chunk_.get();
}

bool Channel::receive_bulk(Frame &f) {
  f.bulk = large_buffer(f.bulk_size, &f.bulk_capacity);
  if (!f.bulk) return false;
  for (uint64_t got = 0; bulk_left_ != 0;) {
    const uint32_t len = read_chunk(f.bulk.get() + got);
    if (len == 0) return false;
    got += len;
  }
  return true;
}

bool Channel::skip_bulk() {
  uint8_t *chunk = chunk_buffer();
  if (chunk == nullptr) return false;
  while (bulk_left_ != 0) {
    if (read_chunk(chunk) == 0) return false;
  }
  return true;
}

std::unique_ptr<uint8_t[]> Channel::large_buffer(size_t bytes, size_t *capacity) {
  if (bytes >= kRecycleMin) {
    std::lock_guard lock(spare_mu_);
    if (spare_ && spare_size_ >= bytes) {
      *capacity = std::exchange(spare_size_, 0);
      return std::move(spare_);
    }
  }
  *capacity = std::max<size_t>(1, bytes);
  // A frame the process cannot hold is the sender's problem, not a reason
  // to abort the receiver.
  return std::unique_ptr<uint8_t[]>(new (std::nothrow) uint8_t[*capacity]);
}

RecvResult Channel::recv(Frame &out) {
  // Bulk bytes of the last frame that nobody passed on.
  if (broken_ || (bulk_left_ != 0 && !skip_bulk())) return RecvResult::Malformed;
  out.bulk.reset();
  out.bulk_size = out.bulk_capacity = 0;
  const size_t have = buffered(sizeof(out.header));
  if (have == 0) return RecvResult::Closed;
  if (have < sizeof(out.header)) return RecvResult::Malformed;
  std::memcpy(&out.header, rbuf_.data() + rpos_, sizeof(out.header));
  rpos_ += sizeof(out.header);
  if (!wire::header_is_sane(out.header)) return RecvResult::Malformed;
  out.window = window_;
  out.size = out.header.length;
  // From an untrusted peer, memory grows with the bytes that arrive, not
  // with what the header promises (see grow_frames_as_they_arrive).
  out.data = large_buffer(grow_ ? std::min(out.size, kGrowStep) : out.size, &out.capacity);
  if (!out.data) return RecvResult::Malformed;
  // What read-ahead already holds, then the rest straight into the frame.
  size_t got = std::min(out.size, rend_ - rpos_);
  std::memcpy(out.data.get(), rbuf_.data() + rpos_, got);
  rpos_ += got;
  while (got < out.size) {
    if (got == out.capacity) {
      const size_t grown = std::min(out.size, out.capacity * 2);
      std::unique_ptr<uint8_t[]> bigger(new (std::nothrow) uint8_t[grown]);
      if (!bigger) return RecvResult::Malformed;
      std::memcpy(bigger.get(), out.data.get(), got);
      out.data = std::move(bigger);
      out.capacity = grown;
    }
    const size_t want = std::min(out.size, out.capacity) - got;
    if (!read_exact(out.data.get() + got, want)) return RecvResult::Malformed;  // truncated
    got += want;
  }
  if ((out.header.flags & wire::kFlagBulk) != 0) {
    uint64_t total = 0;
    if (out.size < sizeof(total)) return RecvResult::Malformed;
    std::memcpy(&total, out.data.get() + out.size - sizeof(total), sizeof(total));
    if (total == 0 || total > wire::kMaxBulk) return RecvResult::Malformed;
    out.bulk_size = total;
    bulk_left_ = total;
    bulk_call_ = out.header.call_id;
    if (!pass_bulk_ && !receive_bulk(out)) return RecvResult::Malformed;
  }
  return RecvResult::Ok;
}

void Channel::recycle(Frame &&f) {
  std::lock_guard lock(spare_mu_);
  auto keep = [&](std::unique_ptr<uint8_t[]> &buf, size_t capacity) {
    if (buf && capacity >= kRecycleMin && capacity <= kRecycleMax && capacity > spare_size_) {
      spare_ = std::move(buf);
      spare_size_ = capacity;
    }
  };
  keep(f.data, f.capacity);
  keep(f.bulk, f.bulk_capacity);
}

void Channel::set_recv_timeout(int seconds) {
  const timeval tv{seconds, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
}

void Channel::shutdown() {
  if (rings_) rings_->shutdown();
  ::shutdown(fd_, SHUT_RDWR);
}

int listen_endpoint(const std::string &endpoint, std::string *error) {
  return open_endpoint(endpoint, true, error);
}

int connect_endpoint(const std::string &endpoint, std::string *error) {
  return open_endpoint(endpoint, false, error);
}

int bound_tcp_port(int listen_fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (::getsockname(listen_fd, reinterpret_cast<sockaddr *>(&ss), &len) != 0) return -1;
  if (ss.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in *>(&ss)->sin_port);
  if (ss.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6 *>(&ss)->sin6_port);
  return -1;
}

void put_hello(Writer &w, const std::string &api, uint64_t signature, uint32_t pid,
               std::optional<HelloSlice> slice) {
  w.put_u32(static_cast<uint32_t>(api.size()));
  w.put_bulk(api.data(), api.size());
  w.put_u64(signature);
  w.put_u32(pid);
  if (slice) {
    w.put_u64(slice->offset);
    w.put_u64(slice->bytes);
  }
}

wire::FrameHeader make_header(wire::Kind kind, uint32_t func, uint64_t call_id, uint32_t thread,
                              uint32_t flags) {
  wire::FrameHeader h{};
  h.kind = static_cast<uint16_t>(kind);
  h.func = func;
  h.call_id = call_id;
  h.thread = thread;
  h.flags = flags;
  return h;
}

}  // namespace hira
