// A framed, bidirectional byte stream between two hira components.
// The transport underneath is any connected stream socket: a Unix socket
// (local), TCP (remote API server), and later AF_VSOCK or a vhost-user
// backend. Between processes of one host the bytes can move to
// shared-memory rings after the hello (ring.h); the socket then only tells
// whether the peer is alive. Sending is thread-safe; receiving belongs to
// one thread.
#pragma once

#include <sys/uio.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "hira/codec.h"
#include "hira/polling.h"
#include "hira/ring.h"
#include "hira/wire.h"

namespace hira {

struct Frame {
  wire::FrameHeader header{};
  std::unique_ptr<uint8_t[]> data;
  size_t size = 0;
  size_t capacity = 0;  // bytes allocated behind data (>= size)
  WindowView window;    // the receiving channel's window (tagged payloads)
  // The bytes that followed the frame (wire::kFlagBulk): bulk_size of them
  // in `bulk`, or none there where the channel passes them on unread
  // (Channel::pass_bulk_through).
  std::unique_ptr<uint8_t[]> bulk;
  uint64_t bulk_size = 0;
  uint64_t bulk_capacity = 0;

  wire::Kind kind() const { return static_cast<wire::Kind>(header.kind); }
  bool tagged() const { return (header.flags & wire::kFlagTagged) != 0; }
  // The payload (without the bulk count); a tagged one's references are
  // checked against the window and the bulk bytes.
  Reader reader() const {
    size_t n = size;
    if ((header.flags & wire::kFlagBulk) != 0) n = n >= sizeof(uint64_t) ? n - sizeof(uint64_t) : 0;
    if (tagged()) return Reader::tagged(data.get(), n, window, {bulk.get(), bulk_size});
    return {data.get(), n};
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
  // (and kFlagTagged for a tagged payload). `fds` travel with it
  // (SCM_RIGHTS; Unix sockets only, before rings are attached). `bulk`
  // follows it in Bulk chunks (kFlagBulk and the count are added).
  bool send(wire::FrameHeader header, Writer *payload, std::span<const int> fds = {});
  bool send(wire::FrameHeader header, const iovec *iov, size_t iovcnt,
            std::span<const int> fds = {}, std::span<const iovec> bulk = {});
  // Forwards a received frame unchanged (router); one whose bulk bytes were
  // passed through unread must go with relay().
  bool forward(const Frame &f, std::span<const int> fds = {});
  // Forwards `f`, just received from `from` (a pass_bulk_through channel,
  // read by this thread), and then its bulk bytes as they arrive there, a
  // chunk at a time. False if either side failed; `from` is past the bytes
  // either way unless it failed itself.
  bool relay(const Frame &f, Channel &from);

  // Small frames that need no answer can wait to be written together with
  // the next ones (one system call for many asynchronous calls): queue()
  // keeps a copy, and every send() or flush() writes what is queued first,
  // so frames always leave in the order they were given. Larger frames are
  // written at once. Returns false when the channel failed.
  bool queue(wire::FrameHeader header, Writer *payload);
  bool queue_forward(const Frame &f);
  bool flush();

  // Receives a Hello (router and API server): the descriptors it brings,
  // in the order its flags name them (kFlagWindow, then kFlagRings), go to
  // *fds (the caller owns them; -1 where none came); any others, and those
  // of a frame that is not Ok, are closed. Descriptors that come with any
  // other frame are always closed on arrival.
  struct HelloFds {
    int window = -1;
    int rings = -1;
  };
  RecvResult recv_hello(Frame &out, HelloFds *fds);

  // From now on the bytes travel through `rings` (the socket must carry
  // nothing more: both sides switch after the hello). `creator`: this side
  // created them (RingStream). Before the channel is shared between threads.
  void attach_rings(std::unique_ptr<RingPair> rings, bool creator);
  bool has_rings() const { return rings_ != nullptr; }
  // Waits until recv() has something to return (a frame's first bytes, or
  // the end of the stream); false after `timeout` without.
  bool wait_readable(std::chrono::milliseconds timeout);
  // The window tagged payloads received here refer to (see Frame::reader).
  void set_window(WindowView w) { window_ = w; }
  // The peer is untrusted (a guest, seen by the router): a frame's buffer
  // grows with the bytes that arrive instead of being allocated whole from
  // its header, so that a header promising 1 GiB costs what was sent.
  // Trusted peers' large frames are allocated at once (growing costs copies).
  void grow_frames_as_they_arrive() { grow_ = true; }
  // A relay (the router): recv() leaves a frame's bulk bytes in the stream
  // (Frame::bulk_size says how many) for relay() to pass on; the next recv()
  // skips them if nobody did. What this side holds stays one frame and one
  // chunk, whatever the transfer.
  void pass_bulk_through() { pass_bulk_ = true; }

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
  // 0: it waits for ever. Sockets only (the hello's wait).
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
  // Every byte out (send_mu_ held).
  bool write_out(std::span<iovec> iov, std::span<const int> fds);
  std::vector<iovec> send_iov_;  // send()'s pieces, guarded by send_mu_
  // Read-ahead (receiving thread only): bytes [rpos_, rend_) of rbuf_.
  size_t buffered(size_t want);
  ssize_t read_some(void *buf, size_t n, bool wait = true);
  // Exactly n bytes, or false (end of stream or error).
  bool read_exact(void *buf, size_t n);
  // Exactly n bytes, read-ahead first.
  bool take(void *buf, size_t n);
  // The next Bulk chunk of the frame being received (its header checked
  // against what is left of its bytes) into dst (kBulkChunk bytes): its
  // length, or 0 if it is wrong or cut short (the channel is then broken).
  uint32_t read_chunk(uint8_t *dst);
  // A buffer of one chunk, kept (nullptr if none can be had).
  uint8_t *chunk_buffer();
  // The bulk bytes of `f` into f.bulk (an endpoint).
  bool receive_bulk(Frame &f);
  // Reads and drops what is left of a passed-through frame's bulk bytes.
  bool skip_bulk();
  // A buffer of `bytes` for a large frame or its bulk bytes: the recycled
  // one if it is large enough, else a new one (nullptr if none).
  std::unique_ptr<uint8_t[]> large_buffer(size_t bytes, size_t *capacity);
  std::unique_ptr<RingStream> rings_;
  size_t accept_fds_ = 0;  // descriptors read_some() keeps (recv_hello)
  bool grow_ = false;
  bool pass_bulk_ = false;
  uint64_t bulk_left_ = 0;            // bulk bytes of the last frame still in the stream
  uint64_t bulk_call_ = 0;            // ... and its call_id
  bool broken_ = false;               // bulk bytes broke the framing: recv() fails
  std::unique_ptr<uint8_t[]> chunk_;  // chunk_buffer()
  std::vector<int> passed_fds_;
  WindowView window_;
  std::vector<uint8_t> rbuf_;
  AdaptiveSpin read_spin_;  // how long a socket read polls first (polling.h)
  size_t rpos_ = 0, rend_ = 0;
  std::mutex spare_mu_;
  std::unique_ptr<uint8_t[]> spare_;
  size_t spare_size_ = 0;
};

// Endpoints are written "unix:/path/to/socket" or "tcp:HOST:PORT"; a listener
// may also be "fd:N", a listening socket inherited from the parent, and a
// guest in a VM connects to "vsock:2:PORT" (its host, through the device).
inline constexpr uint32_t kVsockPort = 5723;  // where hira-vsock takes guests
int listen_endpoint(const std::string &endpoint, std::string *error);
int connect_endpoint(const std::string &endpoint, std::string *error);
// The port a TCP listener is bound to (for "tcp:127.0.0.1:0").
int bound_tcp_port(int listen_fd);

wire::FrameHeader make_header(wire::Kind kind, uint32_t func = 0, uint64_t call_id = 0,
                              uint32_t thread = 0, uint32_t flags = 0);

// A Hello's payload: the API's name, its spec signature and the guest's pid,
// then, for a window that is a slice of a shared region (kFlagVmWindow), the
// slice's offset and bytes. The guest writes it; the router writes it again
// for the server when it hands over only part of a window.
struct HelloSlice {
  uint64_t offset, bytes;
};
void put_hello(Writer &w, const std::string &api, uint64_t signature, uint32_t pid,
               std::optional<HelloSlice> slice = std::nullopt);

}  // namespace hira
