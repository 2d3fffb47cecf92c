// A guest that speaks the wire protocol by hand, for tests that play a
// hostile or broken peer against the real router and API servers.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "call_builder.h"
#include "hira/channel.h"
#include "hira/codec.h"
#include "hira/wire.h"
#include "test_support.h"

namespace hira::test {

using namespace std::chrono_literals;
using wire::ReplyStatus;

// ---------------------------------------------------------------------------
// Raw wire I/O

inline bool write_bytes(int fd, const void *data, size_t n) {
  const auto *p = static_cast<const uint8_t *>(data);
  while (n > 0) {
    const ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Sends a frame; magic, version and length are filled in unless `raw`.
inline bool send_frame(int fd, wire::FrameHeader h, const std::vector<uint8_t> &payload,
                       bool raw = false) {
  if (!raw) {
    h.magic = wire::kMagic;
    h.version = wire::kVersion;
    h.length = static_cast<uint32_t>(payload.size());
  }
  std::vector<uint8_t> bytes(sizeof(h) + payload.size());
  std::memcpy(bytes.data(), &h, sizeof(h));
  if (!payload.empty()) std::memcpy(bytes.data() + sizeof(h), payload.data(), payload.size());
  return write_bytes(fd, bytes.data(), bytes.size());
}

// A frame announcing bulk bytes (kFlagBulk; `announce`, or the true count)
// and then those bytes as Bulk frames of `chunk` bytes (the last shorter).
inline bool send_with_bulk(int fd, wire::FrameHeader h, std::vector<uint8_t> body,
                           const std::vector<uint8_t> &bulk, size_t chunk = wire::kBulkChunk,
                           std::optional<uint64_t> announce = std::nullopt) {
  h.flags |= wire::kFlagBulk;
  const uint64_t count = announce.value_or(bulk.size());
  const auto *c = reinterpret_cast<const uint8_t *>(&count);
  body.insert(body.end(), c, c + sizeof(count));
  if (!send_frame(fd, h, body)) return false;
  for (size_t at = 0; at < bulk.size(); at += chunk) {
    const size_t n = std::min(chunk, bulk.size() - at);
    const std::vector<uint8_t> piece(bulk.begin() + static_cast<long>(at),
                                     bulk.begin() + static_cast<long>(at + n));
    if (!send_frame(fd, make_header(wire::Kind::Bulk, h.func, h.call_id, h.thread), piece)) {
      return false;
    }
  }
  return true;
}

struct RawFrame {
  wire::FrameHeader h{};
  std::vector<uint8_t> payload;
  wire::Kind kind() const { return static_cast<wire::Kind>(h.kind); }
};

enum class Got { Frame, Closed, Timeout, Error };

using Clock = std::chrono::steady_clock;

inline Got read_exact(int fd, void *buf, size_t n, Clock::time_point deadline) {
  size_t got = 0;
  while (got < n) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return Got::Timeout;
    pollfd p{fd, POLLIN, 0};
    const int pr = ::poll(&p, 1, static_cast<int>(left.count()));
    if (pr < 0 && errno == EINTR) continue;
    if (pr <= 0) return pr == 0 ? Got::Timeout : Got::Error;
    const ssize_t r = ::read(fd, static_cast<uint8_t *>(buf) + got, n - got);
    if (r < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return errno == ECONNRESET ? Got::Closed : Got::Error;
    }
    if (r == 0) return got == 0 ? Got::Closed : Got::Error;
    got += static_cast<size_t>(r);
  }
  return Got::Frame;
}

inline Got recv_frame(int fd, RawFrame *out, std::chrono::milliseconds timeout = 10s) {
  const auto deadline = Clock::now() + timeout;
  const Got g = read_exact(fd, &out->h, sizeof(out->h), deadline);
  if (g != Got::Frame) return g;
  if (!wire::header_is_sane(out->h) || out->h.length > (64u << 20)) return Got::Error;
  out->payload.resize(out->h.length);
  if (out->h.length == 0) return Got::Frame;
  const Got p = read_exact(fd, out->payload.data(), out->payload.size(), deadline);
  return p == Got::Closed ? Got::Error : p;
}

// True once the peer has closed the connection (whatever it sent before).
inline bool wait_closed(int fd, std::chrono::milliseconds timeout = 5s) {
  const auto deadline = Clock::now() + timeout;
  uint8_t buf[4096];
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    const ssize_t r = ::read(fd, buf, sizeof(buf));
    if (r == 0) return true;
    if (r < 0 && errno != EINTR && errno != EAGAIN) return true;  // ECONNRESET
  }
}

inline wire::ReplyPrefix prefix_of(const RawFrame &f) {
  wire::ReplyPrefix p{};
  if (f.payload.size() >= sizeof(p))
    std::memcpy(&p, f.payload.data(), sizeof(p));
  else
    p.status = 0xffffffffu;
  return p;
}

// The reply's blobs after the prefix.
inline Reader reply_blobs(const RawFrame &f) {
  if (f.payload.size() < sizeof(wire::ReplyPrefix)) return Reader(nullptr, 0);
  return Reader(f.payload.data(), sizeof(wire::ReplyPrefix), f.payload.size());
}

inline int32_t return_value(const RawFrame &f) {
  Reader r = reply_blobs(f);
  Reader b = r.blob();
  const auto v = b.get<int32_t>();
  return b.done() ? v : INT32_MIN;
}

// The handle an allocating call returned in its out-argument blob `blob`.
inline uint64_t returned_handle(const RawFrame &f, int blob) {
  Reader r = reply_blobs(f);
  for (int i = 0; i < blob; ++i) r.blob();
  Reader b = r.blob();
  if (b.get_u64() != 1) return 0;
  const uint64_t h = b.get_u64();
  return b.done() && r.ok() ? h : 0;
}

inline std::vector<uint8_t> hello_payload(const std::string &name, uint64_t signature,
                                          std::optional<uint32_t> name_len = std::nullopt) {
  Writer w;
  w.put_u32(name_len.value_or(static_cast<uint32_t>(name.size())));
  w.put_bulk(name.data(), name.size());
  w.put_u64(signature);
  w.put_u32(static_cast<uint32_t>(::getpid()));
  return flatten(w);
}

// ---------------------------------------------------------------------------
// A guest speaking the protocol by hand.

class RawGuest {
 public:
  explicit RawGuest(int fd) : fd_(fd) {}
  explicit RawGuest(const std::string &endpoint) : fd_(connect_to(endpoint)) {}
  ~RawGuest() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawGuest(const RawGuest &) = delete;
  RawGuest &operator=(const RawGuest &) = delete;

  int fd() const { return fd_; }
  bool connected() const { return fd_ >= 0; }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

  // Sends a Hello; returns the HelloAck status, or -1 if none came.
  int64_t hello(const std::vector<uint8_t> &payload) {
    if (!send_frame(fd_, make_header(wire::Kind::Hello), payload)) return -1;
    RawFrame f;
    if (recv_frame(fd_, &f) != Got::Frame || f.kind() != wire::Kind::HelloAck) return -1;
    return f.h.func;
  }
  int64_t hello(const std::string &api, uint64_t signature) {
    return hello(hello_payload(api, signature));
  }

  uint64_t send_call(uint32_t func, const std::vector<uint8_t> &payload, uint32_t flags = 0,
                     uint32_t thread = 1) {
    return send_call_as(next_call_++, func, payload, flags, thread);
  }
  // The same with a call id of the test's choosing.
  uint64_t send_call_as(uint64_t id, uint32_t func, const std::vector<uint8_t> &payload,
                        uint32_t flags = 0, uint32_t thread = 1) {
    send_frame(fd_, make_header(wire::Kind::Call, func, id, thread, flags), payload);
    return id;
  }

  // Waits for the Reply to call `id`, answering callbacks meanwhile. Any
  // other reply is an error (only one sync call is ever in flight).
  std::optional<RawFrame> wait_reply(uint64_t id, std::string *why,
                                     std::chrono::milliseconds timeout = 10s) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      RawFrame f;
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
      const Got g = recv_frame(fd_, &f, std::max(left, 1ms));
      if (g != Got::Frame) {
        *why = g == Got::Timeout  ? "no reply within the timeout (hang)"
               : g == Got::Closed ? "connection closed"
                                  : "malformed frame or read error";
        return std::nullopt;
      }
      if (f.kind() == wire::Kind::Callback) {
        ++callbacks_;
        send_frame(fd_, make_header(wire::Kind::CallbackDone, f.h.func, f.h.call_id), {});
        continue;
      }
      // What a server tells its router (a test standing in for the router
      // may talk to a server directly): not the guest's business.
      if (f.kind() == wire::Kind::Account) continue;
      if (f.kind() != wire::Kind::Reply) {
        *why = "unexpected frame kind " + std::to_string(f.h.kind);
        return std::nullopt;
      }
      if (f.h.call_id != id) {
        *why = "reply to call " + std::to_string(f.h.call_id) + " while waiting for " +
               std::to_string(id);
        return std::nullopt;
      }
      return f;
    }
  }

  std::optional<RawFrame> call(uint32_t func, const std::vector<Arg> &args, uint32_t flags = 0,
                               uint32_t thread = 1) {
    return call_raw(func, encode(args), flags, thread);
  }
  std::optional<RawFrame> call_raw(uint32_t func, const std::vector<uint8_t> &payload,
                                   uint32_t flags = 0, uint32_t thread = 1) {
    const uint64_t id = send_call(func, payload, flags, thread);
    std::string why;
    auto r = wait_reply(id, &why);
    if (!r) last_error_ = why;
    return r;
  }

  const std::string &last_error() const { return last_error_; }
  uint64_t callbacks() const { return callbacks_; }

 private:
  int fd_;
  uint64_t next_call_ = 1;
  uint64_t callbacks_ = 0;
  std::string last_error_;
};

// Reply status of a sync call, or a failure describing why there is none.
#define EXPECT_STATUS(reply, guest, want)                                                \
  do {                                                                                   \
    const auto &r_ = (reply);                                                            \
    ASSERT_TRUE(r_.has_value()) << (guest).last_error();                                 \
    EXPECT_EQ(prefix_of(*r_).status, static_cast<uint32_t>(want))                        \
        << "got " << wire::status_name(static_cast<ReplyStatus>(prefix_of(*r_).status)); \
  } while (0)

}  // namespace hira::test
