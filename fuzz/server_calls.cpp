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

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "acc_protocol.h"
#include "server_session.h"

extern const hira::server::ServerApi hira_server_api;

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
  hira::fuzz::put_hello(stream, kApiName, kApiSignature);
  // Every function id, and one past the last (unknown).
  hira::fuzz::put_calls(stream, data, size, FN_acc_context_count + 1, 4,
                        [](uint32_t f) { return f == FN_acc_sleep || f == FN_acc_run; });
  hira::fuzz::run_session(hira_server_api, stream);
  return 0;
}
