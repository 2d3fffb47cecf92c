// libFuzzer target: what an API server does with the calls that reach it.
// The router checked only a call's shape; the server's generated decoders
// read every value, size and handle of it. Each input is a session of the
// acc demo API: a hello, then calls built from the input (function id,
// flags, guest thread, payload bytes), run by a real Connection with its
// shadow threads against the real demo library; the server's replies are
// read and dropped. Calls that run as long as the guest asks by design
// (acc_sleep, acc_run) are left out.
// Built with ASan and UBSan by fuzz/CMakeLists.txt; `ctest -R fuzz` runs it
// briefly from the committed corpus.
#include <dlfcn.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "acc_protocol.h"
#include "connection.h"
#include "hira/channel.h"
#include "hira/server.h"

extern const hira::server::ServerApi hira_server_api;

namespace {

void put(std::vector<uint8_t> &out, const void *p, size_t n) {
  const auto *b = static_cast<const uint8_t *>(p);
  out.insert(out.end(), b, b + n);
}

void put_frame(std::vector<uint8_t> &out, hira::wire::FrameHeader h, const uint8_t *payload,
               size_t n) {
  h.magic = hira::wire::kMagic;
  h.version = hira::wire::kVersion;
  h.length = static_cast<uint32_t>(n);
  put(out, &h, sizeof(h));
  put(out, payload, n);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  void *lib = ::dlopen(HIRA_FUZZ_ACC_LIBRARY, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::fprintf(stderr, "fuzz_server_calls: %s\n", ::dlerror());
    std::abort();
  }
  hira_server_api.bind(lib);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > (1u << 16)) return 0;
  std::vector<uint8_t> stream;
  {  // The hello the router forwards, encoded as the guest library does.
    hira::Writer w;
    const uint32_t len = static_cast<uint32_t>(std::strlen(kApiName));
    w.put_u32(len);
    w.put_bulk(kApiName, len);
    w.put_u64(kApiSignature);
    w.put_u32(1);  // pid
    std::vector<uint8_t> hello;
    for (const iovec &v : w.iovecs()) put(hello, v.iov_base, v.iov_len);
    put_frame(stream, hira::make_header(hira::wire::Kind::Hello), hello.data(), hello.size());
  }
  // Calls: u8 function, u8 flags (bit 0 async), u8 thread, u16 length, payload.
  uint64_t call_id = 1;
  for (size_t off = 0; off + 5 <= size;) {
    // Every function id, and one past the last (unknown).
    const uint32_t func = data[off] % (FN_acc_context_count + 2);
    const uint32_t flags = (data[off + 1] & 1) != 0 ? uint32_t{hira::wire::kFlagAsync} : 0u;
    const uint32_t thread = data[off + 2] % 4;
    uint16_t len;
    std::memcpy(&len, data + off + 3, 2);
    off += 5;
    len = static_cast<uint16_t>(std::min<size_t>(len, size - off));
    if (func != FN_acc_sleep && func != FN_acc_run) {
      put_frame(stream, hira::make_header(hira::wire::Kind::Call, func, call_id++, thread, flags),
                data + off, len);
    }
    off += len;
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return 0;
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
    hira::server::Connection conn(hira_server_api, sv[0]);
    conn.run();
  }
  ::shutdown(sv[1], SHUT_RDWR);
  router.join();
  ::close(sv[1]);
  return 0;
}
