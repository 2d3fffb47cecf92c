// Shared-memory command rings: the byte stream of a Channel carried by two
// single-producer single-consumer rings in one sealed memfd instead of by
// its socket. A frame then costs a copy into shared memory and, only when
// the reader sleeps, one futex wake: no system call at all while both sides
// poll. The socket stays: it carries the hello (and the memfd with it), and
// its hang-up is how a side learns that the other process is gone (a
// thread per stream waits for it and wakes this side's sleepers).
//
// The side that creates the memfd writes ring 0 and reads ring 1; the side
// that attaches it does the opposite. Nothing in the shared pages is
// trusted: positions are kept privately and only published there, and a
// peer position that makes no sense breaks the stream (read/write fail).
#pragma once

#include <sys/uio.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "hira/polling.h"

namespace hira {

// Data bytes of each direction. Frames larger than this stream through.
inline constexpr uint64_t kRingBytes = 512u << 10;

struct RingControl;  // the shared positions and futex words of one ring

// One pair of rings mapped into this process.
class RingPair {
 public:
  // A fresh pair; *fd is its memfd, to pass to the peer (the caller closes it).
  static std::unique_ptr<RingPair> create(int *fd, std::string *error);
  // Checks a memfd received from a peer (a sealed memfd of exactly a pair's
  // size) and maps it; the fd is not kept.
  static std::unique_ptr<RingPair> attach(int fd, std::string *error);
  ~RingPair();
  RingPair(const RingPair &) = delete;
  RingPair &operator=(const RingPair &) = delete;

  RingControl *control(int ring) const;
  uint8_t *data(int ring) const;

 private:
  explicit RingPair(uint8_t *base) : base_(base) {}
  uint8_t *base_;
};

// This process's end of the stream a RingPair carries. Reading belongs to
// one thread, writing to one at a time (the Channel's send lock).
class RingStream {
 public:
  // `creator`: this side created the pair. `socket` tells when the peer is
  // gone (it is not read or written here).
  RingStream(std::unique_ptr<RingPair> pair, bool creator, int socket);
  // Shuts the socket down (the peer sees the hang-up).
  ~RingStream();
  RingStream(const RingStream &) = delete;
  RingStream &operator=(const RingStream &) = delete;

  // Copies up to n bytes (at least one): waits for them unless `wait` is
  // false. 0: the peer is gone and everything it wrote was read, or
  // shutdown(). -1: nothing there (not waiting), or the peer broke the ring.
  ssize_t read(void *buf, size_t n, bool wait);
  // Every byte, waiting for space as needed; false when the peer is gone,
  // broke the ring, or shutdown() was called.
  bool write(const iovec *iov, size_t iovcnt);
  // Waits until read() would not block (data, or the end): false on timeout.
  bool wait_readable(std::chrono::milliseconds timeout);
  // Wakes this side's waits; reads and writes fail from now on.
  void shutdown();

 private:
  bool peer_gone() const;
  // The watcher thread: waits for the socket's hang-up, then wakes. None
  // when no thread can be started (then peer_gone() polls the socket).
  std::thread start_watcher();
  void watch_peer();
  void wake_waiters();
  // Waits until ready() (true) or the end (false): polls within the
  // adaptive budget, then sleeps on `seq` with `sleeping` raised.
  template <class Ready>
  bool wait(Ready ready, std::atomic<uint32_t> &seq, std::atomic<uint32_t> &sleeping,
            AdaptiveSpin *spin, std::chrono::steady_clock::time_point deadline);

  std::unique_ptr<RingPair> pair_;
  RingControl *in_, *out_;
  const uint8_t *in_data_;
  uint8_t *out_data_;
  int socket_;
  uint64_t read_pos_ = 0;   // private: what this side consumed
  uint64_t write_pos_ = 0;  // private: what this side produced
  // The reader's position as the writer last read it: read again only when
  // it does not leave room enough, so that the reader's line is not pulled
  // to the writer's core on every frame (and back on every read).
  // (Every kTailCheckEvery-th write reads it anyway: a peer that scribbled
  // on it is found within that many frames.)
  uint64_t tail_seen_ = 0;
  uint32_t writes_since_tail_ = 0;
  static constexpr uint32_t kTailCheckEvery = 32;
  std::atomic<bool> shut_{false};
  std::atomic<bool> peer_gone_{false};
  // How long each side polls before sleeping.
  AdaptiveSpin read_spin_, write_spin_;
  std::thread watcher_;  // last: starts once everything above is set
};

}  // namespace hira
