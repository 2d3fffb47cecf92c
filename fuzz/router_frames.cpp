// libFuzzer target: what the router does with a guest's bytes. The input is
// the byte stream a guest sends; every frame the router's channel accepts
// goes through the shape check and the generated accounting of an API's
// router module (OpenCL's, and CUDA's in fuzz_cuda_router_frames), and
// through the reference-table check of a window, and
// every frame is also read as a reply (the server's bytes the router reads).
// Built with ASan and UBSan by fuzz/CMakeLists.txt; `ctest -R fuzz` runs it
// briefly from the committed corpus.
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "command_check.h"
#include "hira/channel.h"
#include "hira/router_module.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > (1u << 16)) return 0;  // what one socket buffer surely holds
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return 0;
  size_t off = 0;
  while (off < size) {
    const ssize_t n = ::write(sv[1], data + off, size - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  ::close(sv[1]);
  const hira::router::RouterModule &m = hira_router_module;
  hira::Channel channel(sv[0]);
  channel.grow_frames_as_they_arrive();  // as the router reads a guest
  channel.pass_bulk_through();
  // A 1 MiB window: references are checked against its size, as the
  // router checks them (it never maps a guest's window).
  channel.set_window({nullptr, uint64_t{1} << 20});
  std::vector<hira::Reader> blobs;
  for (int frames = 0; frames < 64; ++frames) {
    hira::Frame f;
    if (channel.recv(f) != hira::RecvResult::Ok) break;
    if (hira::router::check_call(m, f, &blobs) == hira::router::CheckResult::Ok) {
      hira::router::CallAccounting a;
      m.account_call(f.header.func, blobs.data(), &a);
      if (a.count > hira::router::kMaxDeltas) __builtin_trap();
    }
    // The same bytes as a reply to this function.
    if (f.header.func < m.function_count) {
      hira::Reader r = f.reader();
      r.get<hira::wire::ReplyPrefix>();
      if (r.ok()) {
        (void)m.reply_succeeded(f.header.func, r);
        (void)m.allocated_handle(f.header.func, r);
      }
    }
  }
  return 0;
}
