#include "hira/ring.h"

#include <linux/futex.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <ctime>
#include <system_error>

#include "hira/polling.h"
#include "hira/window.h"

namespace hira {

struct RingControl {
  alignas(64) std::atomic<uint64_t> head;  // bytes ever written (the writer publishes)
  alignas(64) std::atomic<uint64_t> tail;  // bytes ever read (the reader publishes)
  // Readers sleep on data_seq, counted in reader_sleeping; the writer bumps
  // data_seq and wakes them. The same for a writer waiting for space. (The
  // reading thread and one that only waits for data, wait_readable(), may
  // sleep at once.)
  alignas(64) std::atomic<uint32_t> data_seq;
  std::atomic<uint32_t> reader_sleeping;
  alignas(64) std::atomic<uint32_t> space_seq;
  std::atomic<uint32_t> writer_sleeping;
};
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free && sizeof(std::atomic<uint32_t>) == 4);

namespace {

constexpr uint64_t kControlBytes = 4096;  // one page per ring's control
static_assert(sizeof(RingControl) <= kControlBytes);
constexpr uint64_t kPairBytes = 2 * kControlBytes + 2 * kRingBytes;
// A sleeping side is woken when its peer goes (see watch_peer()); it also
// looks this often, should a wake-up ever be lost.
constexpr auto kLivenessCheck = std::chrono::milliseconds(500);
// Bytes of the ring a writer fetches ahead for its next frame (a call or
// reply without data is 100-300 bytes).
constexpr size_t kPrefetchBytes = 256;

// Wait and wake across processes (the pages are shared: no private futexes).
void futex_wait(std::atomic<uint32_t> &word, uint32_t seen, std::chrono::nanoseconds timeout) {
  const auto ns = std::max<int64_t>(0, timeout.count());
  const timespec ts{static_cast<time_t>(ns / 1000000000), static_cast<long>(ns % 1000000000)};
  ::syscall(SYS_futex, reinterpret_cast<uint32_t *>(&word), FUTEX_WAIT, seen, &ts, nullptr, 0);
}

// Has the peer on `socket` hung up (or the socket failed)? Waits up to
// `timeout_ms` for it (-1: until it happens or a signal interrupts); a
// failing poll() itself counts as a hang-up when `failure_is_hangup`.
bool hung_up(int socket, int timeout_ms, bool failure_is_hangup) {
  pollfd p{socket, POLLRDHUP, 0};
  const int r = ::poll(&p, 1, timeout_ms);
  if (r < 0) return failure_is_hangup && errno != EINTR;
  return r > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
}

void futex_wake(std::atomic<uint32_t> &word) {
  word.fetch_add(1, std::memory_order_seq_cst);
  ::syscall(SYS_futex, reinterpret_cast<uint32_t *>(&word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr,
            0);
}

}  // namespace

std::unique_ptr<RingPair> RingPair::create(int *fd, std::string *error) {
  *fd = create_sealed_memfd("hira-rings", kPairBytes, error);
  if (*fd < 0) return nullptr;
  auto pair = attach(*fd, error);
  if (!pair) {
    ::close(*fd);
    *fd = -1;
  }
  return pair;
}

std::unique_ptr<RingPair> RingPair::attach(int fd, std::string *error) {
  const auto size = check_window_fd(fd, kPairBytes, error);
  if (!size) return nullptr;
  if (*size != kPairBytes) {
    *error = "command rings of " + std::to_string(*size) + " bytes (expected " +
             std::to_string(kPairBytes) + ")";
    return nullptr;
  }
  void *p = ::mmap(nullptr, kPairBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    *error = std::string("mapping the command rings: ") + std::strerror(errno);
    return nullptr;
  }
  return std::unique_ptr<RingPair>(new RingPair(static_cast<uint8_t *>(p)));
}

RingPair::~RingPair() { ::munmap(base_, kPairBytes); }

RingControl *RingPair::control(int ring) const {
  return reinterpret_cast<RingControl *>(base_ + static_cast<uint64_t>(ring) * kControlBytes);
}

uint8_t *RingPair::data(int ring) const {
  return base_ + 2 * kControlBytes + static_cast<uint64_t>(ring) * kRingBytes;
}

RingStream::RingStream(std::unique_ptr<RingPair> pair, bool creator, int socket)
    : pair_(std::move(pair)),
      in_(pair_->control(creator ? 1 : 0)),
      out_(pair_->control(creator ? 0 : 1)),
      in_data_(pair_->data(creator ? 1 : 0)),
      out_data_(pair_->data(creator ? 0 : 1)),
      socket_(socket),
      watcher_(start_watcher()) {}

std::thread RingStream::start_watcher() {
  try {
    return std::thread([this] { watch_peer(); });
  } catch (const std::system_error &) {
    // Out of threads: the sleepers look at the socket themselves, at every
    // liveness check (kLivenessCheck) instead of at once.
    return {};
  }
}

RingStream::~RingStream() {
  // Ends the watcher (and tells the peer, which sees the hang-up).
  ::shutdown(socket_, SHUT_RDWR);
  if (watcher_.joinable()) watcher_.join();
}

void RingStream::watch_peer() {
  while (!hung_up(socket_, -1, true)) {
  }
  peer_gone_.store(true);
  wake_waiters();
}

void RingStream::wake_waiters() {
  futex_wake(in_->data_seq);
  futex_wake(out_->space_seq);
}

bool RingStream::peer_gone() const {
  if (peer_gone_.load() || watcher_.joinable()) return peer_gone_.load();
  return hung_up(socket_, 0, false);
}

template <class Ready>
bool RingStream::wait(Ready ready, std::atomic<uint32_t> &seq, std::atomic<uint32_t> &sleeping,
                      AdaptiveSpin *spin, std::chrono::steady_clock::time_point deadline) {
  const auto start = std::chrono::steady_clock::now();
  auto adapt = [&] {
    if (spin != nullptr) spin->waited(std::chrono::steady_clock::now() - start);
  };
  if (poll_for([&] { return ready() || shut_.load(std::memory_order_relaxed); },
               spin != nullptr ? spin->budget() : 0)) {
    adapt();
    return !shut_.load();
  }
  sleeping.fetch_add(1, std::memory_order_seq_cst);
  for (;;) {
    const uint32_t seen = seq.load(std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (ready()) break;
    const auto now = std::chrono::steady_clock::now();
    if (shut_.load() || peer_gone() || now >= deadline) break;
    futex_wait(seq, seen, std::min<std::chrono::nanoseconds>(kLivenessCheck, deadline - now));
    if (ready() || shut_.load() || peer_gone()) break;
  }
  sleeping.fetch_sub(1, std::memory_order_relaxed);
  adapt();
  return ready() && !shut_.load();
}

ssize_t RingStream::read(void *buf, size_t n, bool block) {
  auto available = [&] { return in_->head.load(std::memory_order_seq_cst) - read_pos_; };
  if (shut_.load()) return 0;
  if (available() == 0) {
    if (!block) {
      errno = EAGAIN;
      return -1;
    }
    if (!wait([&] { return available() != 0; }, in_->data_seq, in_->reader_sleeping, &read_spin_,
              std::chrono::steady_clock::time_point::max()) &&
        available() == 0) {
      return 0;  // shut down, or the peer is gone and left nothing unread
    }
  }
  const uint64_t avail = available();
  if (avail > kRingBytes) {  // the peer's position is nonsense
    errno = EPROTO;
    return -1;
  }
  const size_t take = std::min<uint64_t>(n, avail);
  const size_t at = read_pos_ % kRingBytes;
  const size_t first = std::min<size_t>(take, kRingBytes - at);
  std::memcpy(buf, in_data_ + at, first);
  std::memcpy(static_cast<uint8_t *>(buf) + first, in_data_, take - first);
  read_pos_ += take;
  in_->tail.store(read_pos_, std::memory_order_seq_cst);
  if (in_->writer_sleeping.load(std::memory_order_seq_cst) != 0) futex_wake(in_->space_seq);
  return static_cast<ssize_t>(take);
}

bool RingStream::write(const iovec *iov, size_t iovcnt) {
  size_t idx = 0, done_in_iov = 0;
  uint64_t left = 0;
  for (size_t i = 0; i < iovcnt; ++i) left += iov[i].iov_len;
  auto space = [&](bool fresh) -> uint64_t {
    if (fresh) tail_seen_ = out_->tail.load(std::memory_order_seq_cst);
    const uint64_t used = write_pos_ - tail_seen_;
    return used > kRingBytes ? ~uint64_t{0} : kRingBytes - used;  // ~0: broken
  };
  while (idx < iovcnt) {
    if (shut_.load()) return false;
    uint64_t room = space(false);
    if (room < left || ++writes_since_tail_ >= kTailCheckEvery) {
      room = space(true);
      writes_since_tail_ = 0;
    }
    if (room == 0) {
      if (!wait([&] { return space(true) != 0; }, out_->space_seq, out_->writer_sleeping,
                &write_spin_, std::chrono::steady_clock::time_point::max())) {
        return false;
      }
      room = space(false);
    }
    if (room > kRingBytes) return false;  // the peer's position is nonsense
    // As much as fits, then publish it: a large frame streams through.
    while (idx < iovcnt && room != 0) {
      const auto *src = static_cast<const uint8_t *>(iov[idx].iov_base) + done_in_iov;
      const size_t take = std::min<uint64_t>(iov[idx].iov_len - done_in_iov, room);
      const size_t at = write_pos_ % kRingBytes;
      const size_t first = std::min<size_t>(take, kRingBytes - at);
      std::memcpy(out_data_ + at, src, first);
      std::memcpy(out_data_, src + first, take - first);
      write_pos_ += take;
      room -= take;
      left -= take;
      done_in_iov += take;
      if (done_in_iov == iov[idx].iov_len) {
        ++idx;
        done_in_iov = 0;
      }
    }
    out_->head.store(write_pos_, std::memory_order_seq_cst);
    if (out_->reader_sleeping.load(std::memory_order_seq_cst) != 0) futex_wake(out_->data_seq);
  }
  // The next frame's lines were last read on the peer's core: fetch them
  // for writing now, while the writer waits for its answer, rather than
  // miss on each of them when that frame is written.
  const size_t next = write_pos_ % kRingBytes;
  for (size_t k = 0; k < kPrefetchBytes; k += 64) {
    __builtin_prefetch(out_data_ + (next + k) % kRingBytes, 1);
  }
  return true;
}

bool RingStream::wait_readable(std::chrono::milliseconds timeout) {
  auto ready = [&] { return in_->head.load(std::memory_order_seq_cst) != read_pos_; };
  if (ready() || shut_.load()) return true;
  if (timeout.count() <= 0) return false;
  // Only the reading thread polls (and owns read_spin_).
  wait(ready, in_->data_seq, in_->reader_sleeping, nullptr,
       std::chrono::steady_clock::now() + timeout);
  return ready() || shut_.load() || peer_gone();
}

void RingStream::shutdown() {
  shut_.store(true);
  wake_waiters();
}

}  // namespace hira
