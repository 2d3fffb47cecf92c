// A framed, bidirectional byte stream between two hira components.
// The transport underneath is any connected stream socket: a Unix socket
// (local), TCP (remote API server), and later AF_VSOCK or a vhost-user
// backend. Sending is thread-safe; receiving belongs to one thread.
#pragma once

#include <sys/uio.h>

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "hira/codec.h"
#include "hira/wire.h"

namespace hira {

struct Frame {
  wire::FrameHeader header{};
  std::unique_ptr<uint8_t[]> data;
  size_t size = 0;
  size_t capacity = 0;  // bytes allocated behind data (>= size)
  WindowView window;    // the receiving channel's window (tagged payloads)

  wire::Kind kind() const { return static_cast<wire::Kind>(header.kind); }
  bool tagged() const { return (header.flags & wire::kFlagTagged) != 0; }
  // The payload; a tagged one's references are checked against the window.
  Reader reader() const {
    if (tagged()) return Reader::tagged(data.get(), size, window);
    return {data.get(), size};
  }
};

enum class RecvResult { Ok, Closed, Malformed };

class Channel {
 public:
  explicit Channel(int fd);
  ~Channel();
  Channel(const Channel &) = delete;
  Channel &operator=(const Channel &) = delete;

  // Sends one frame; the header's magic, version and length are filled in
  // (and kFlagTagged for a tagged payload). `fd`, if not -1, travels with
  // it (SCM_RIGHTS; Unix sockets only).
  bool send(wire::FrameHeader header, Writer *payload, int fd = -1);
  bool send(wire::FrameHeader header, const iovec *iov, size_t iovcnt, int fd = -1);
  // Forwards a received frame unchanged (router).
  bool forward(const Frame &f, int fd = -1);

  // Small frames that need no answer can wait to be written together with
  // the next ones (one system call for many asynchronous calls): queue()
  // keeps a copy, and every send() or flush() writes what is queued first,
  // so frames always leave in the order they were given. Larger frames are
  // written at once. Returns false when the channel failed.
  bool queue(wire::FrameHeader header, Writer *payload);
  bool queue_forward(const Frame &f);
  bool flush();

  // File descriptors a peer passes are closed on arrival unless this is on;
  // then the first one is kept for take_fd() (any more are closed).
  void accept_fds(bool on) { accept_fds_ = on; }
  // The kept descriptor (the caller owns it), or -1.
  int take_fd();
  // The window tagged payloads received here refer to (see Frame::reader).
  void set_window(WindowView w) { window_ = w; }
  // The peer is untrusted (a guest, seen by the router): a frame's buffer
  // grows with the bytes that arrive instead of being allocated whole from
  // its header, so that a header promising 1 GiB costs what was sent.
  // Trusted peers' large frames are allocated at once (growing costs copies).
  void grow_frames_as_they_arrive() { grow_ = true; }

  RecvResult recv(Frame &out);
  // Gives a received frame's buffer back for the next large recv(): fresh
  // large allocations are mmap'd and page-faulted on every frame, which
  // halves bandwidth for big transfers. Thread-safe.
  void recycle(Frame &&f);

  // Bytes already read ahead from the fd and not yet returned by recv(): a
  // thread that polls the fd before recv() must check this first, or frames
  // that arrived with an earlier one wait for the next byte on the wire.
  // Only whoever may call recv() may ask.
  bool has_read_ahead() const { return rpos_ < rend_; }

  // recv() gives up (Malformed or Closed) after `seconds` without a byte;
  // 0: it waits for ever.
  void set_recv_timeout(int seconds);

  // Wakes a blocked recv() on another thread; the fd stays valid.
  void shutdown();
  int fd() const { return fd_; }

 private:
  int fd_;
  std::mutex send_mu_;
  std::vector<uint8_t> queued_;  // whole frames, guarded by send_mu_
  bool queue_locked(wire::FrameHeader header, const iovec *iov, size_t iovcnt);
  bool flush_locked();
  // Read-ahead (receiving thread only): bytes [rpos_, rend_) of rbuf_.
  size_t buffered(size_t want);
  ssize_t read_some(void *buf, size_t n, int flags = 0);
  bool accept_fds_ = false;
  bool grow_ = false;
  int passed_fd_ = -1;
  WindowView window_;
  std::vector<uint8_t> rbuf_;
  size_t rpos_ = 0, rend_ = 0;
  std::mutex spare_mu_;
  std::unique_ptr<uint8_t[]> spare_;
  size_t spare_size_ = 0;
};

// How long a thread about to sleep for the next frame polls for it first:
// a wake-up costs more than a sync call's whole work where cores are free,
// and nothing where they are not (then polling only steals the CPU from the
// thread that would send the frame). $HIRA_SPIN_US, else 30 us on machines
// with 8 or more CPUs and 0 below.
int64_t spin_budget_ns();

// Endpoints are written "unix:/path/to/socket" or "tcp:HOST:PORT".
int listen_endpoint(const std::string &endpoint, std::string *error);
int connect_endpoint(const std::string &endpoint, std::string *error);
// The port a TCP listener is bound to (for "tcp:127.0.0.1:0").
int bound_tcp_port(int listen_fd);

wire::FrameHeader make_header(wire::Kind kind, uint32_t func = 0, uint64_t call_id = 0,
                              uint32_t thread = 0, uint32_t flags = 0);

}  // namespace hira
