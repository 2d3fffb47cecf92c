// One API server session for the server fuzz targets: the byte stream a
// router would send (a hello, then calls), run by a real Connection with its
// shadow threads; the server's replies are read and dropped.
#pragma once

#include <dlfcn.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "connection.h"
#include "hira/channel.h"
#include "hira/server.h"

namespace hira::fuzz {

inline void put(std::vector<uint8_t> &out, const void *p, size_t n) {
  const auto *b = static_cast<const uint8_t *>(p);
  out.insert(out.end(), b, b + n);
}

// One frame: header (magic, version and length filled in) and payload.
inline void put_frame(std::vector<uint8_t> &out, wire::FrameHeader h, const uint8_t *payload,
                      size_t n) {
  h.magic = wire::kMagic;
  h.version = wire::kVersion;
  h.length = static_cast<uint32_t>(n);
  put(out, &h, sizeof(h));
  put(out, payload, n);
}

// The hello the router forwards, encoded as the guest library does.
inline void put_hello(std::vector<uint8_t> &out, const char *api, uint64_t signature) {
  Writer w;
  const auto len = static_cast<uint32_t>(std::strlen(api));
  w.put_u32(len);
  w.put_bulk(api, len);
  w.put_u64(signature);
  w.put_u32(1);  // pid
  std::vector<uint8_t> hello;
  for (const iovec &v : w.iovecs()) put(hello, v.iov_base, v.iov_len);
  put_frame(out, make_header(wire::Kind::Hello), hello.data(), hello.size());
}

// Runs `stream` against a fresh server Connection of `api` until the
// server has read it all and closed.
inline void run_session(const server::ServerApi &api, const std::vector<uint8_t> &stream) {
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
  // The router's side: writes the session, then reads (and drops) replies
  // until the server closes.
  std::thread router([&] {
    for (size_t off = 0; off < stream.size();) {
      const ssize_t n = ::write(sv[1], stream.data() + off, stream.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::shutdown(sv[1], SHUT_WR);
    char sink[4096];
    while (::read(sv[1], sink, sizeof(sink)) > 0) {
    }
  });
  {
    server::Connection conn(api, sv[0]);
    conn.run();
  }
  ::shutdown(sv[1], SHUT_RDWR);
  router.join();
  ::close(sv[1]);
}

// The calls of a fuzz input: u8 function, u8 flags (bit 0 async), u8
// thread, u16 length, payload; repeated. Functions `skip` refuses are left
// out; ids up to `function_count` (one past the last: unknown) occur. With
// `threads` 1 every call runs on guest thread 1, in order; else on threads
// 0..threads-1 as the input says.
template <class Skip>
void put_calls(std::vector<uint8_t> &out, const uint8_t *data, size_t size, uint32_t function_count,
               uint32_t threads, Skip skip) {
  uint64_t call_id = 1;
  for (size_t off = 0; off + 5 <= size;) {
    const uint32_t func = data[off] % (function_count + 1);
    const uint32_t flags = (data[off + 1] & 1) != 0 ? uint32_t{wire::kFlagAsync} : 0u;
    const uint32_t thread = threads == 1 ? 1 : data[off + 2] % threads;
    uint16_t len;
    std::memcpy(&len, data + off + 3, 2);
    off += 5;
    len = static_cast<uint16_t>(std::min<size_t>(len, size - off));
    if (!skip(func)) {
      put_frame(out, make_header(wire::Kind::Call, func, call_id++, thread, flags), data + off,
                len);
    }
    off += len;
  }
}

// Binds `api` to the library at `path` (a fuzz target's LLVMFuzzerInitialize),
// or says why not and aborts.
inline void bind_or_abort(const server::ServerApi &api, const char *path, const char *target) {
  void *lib = ::dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::fprintf(stderr, "%s: %s\n", target, ::dlerror());
    std::abort();
  }
  api.bind(lib);
}

// One session of calls built from the input (put_calls) after a hello, on
// `threads` guest threads, every function id but those `skip` refuses.
template <class Skip>
void run_calls(const server::ServerApi &api, const char *name, uint64_t signature,
               uint32_t function_count, uint32_t threads, const uint8_t *data, size_t size,
               Skip skip) {
  if (size > (1u << 16)) return;
  std::vector<uint8_t> stream;
  put_hello(stream, name, signature);
  put_calls(stream, data, size, function_count, threads, skip);
  run_session(api, stream);
}

}  // namespace hira::fuzz
