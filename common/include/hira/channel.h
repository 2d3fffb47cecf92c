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

  wire::Kind kind() const { return static_cast<wire::Kind>(header.kind); }
  Reader reader() const { return {data.get(), size}; }
};

enum class RecvResult { Ok, Closed, Malformed };

class Channel {
 public:
  explicit Channel(int fd);
  ~Channel();
  Channel(const Channel &) = delete;
  Channel &operator=(const Channel &) = delete;

  // Sends one frame; the header's magic, version and length are filled in.
  bool send(wire::FrameHeader header, Writer *payload);
  bool send(wire::FrameHeader header, const iovec *iov, size_t iovcnt);
  // Forwards a received frame unchanged (router).
  bool forward(const Frame &f);

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

  // Wakes a blocked recv() on another thread; the fd stays valid.
  void shutdown();
  int fd() const { return fd_; }

 private:
  int fd_;
  std::mutex send_mu_;
  // Read-ahead (receiving thread only): bytes [rpos_, rend_) of rbuf_.
  size_t buffered(size_t want);
  std::vector<uint8_t> rbuf_;
  size_t rpos_ = 0, rend_ = 0;
  std::mutex spare_mu_;
  std::unique_ptr<uint8_t[]> spare_;
  size_t spare_size_ = 0;
};

// Endpoints are written "unix:/path/to/socket" or "tcp:HOST:PORT".
int listen_endpoint(const std::string &endpoint, std::string *error);
int connect_endpoint(const std::string &endpoint, std::string *error);
// The port a TCP listener is bound to (for "tcp:127.0.0.1:0").
int bound_tcp_port(int listen_fd);

wire::FrameHeader make_header(wire::Kind kind, uint32_t func = 0, uint64_t call_id = 0,
                              uint32_t thread = 0, uint32_t flags = 0);

}  // namespace hira
