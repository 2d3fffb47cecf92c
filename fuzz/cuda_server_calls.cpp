// libFuzzer target: the CUDA API server's generated decoders and its own
// server-side code (server_impl calls, server_check ranges, kernel
// parameter layouts), fed calls built from the input as fuzz_server_calls
// does, with the toolkit's stub libcuda behind them (no GPU here: every
// call the server makes answers CUDA_ERROR_STUB_LIBRARY, so what runs is
// hira's code up to the driver). Built with ASan and UBSan by
// fuzz/CMakeLists.txt; `ctest -R fuzz` runs it briefly from the committed corpus.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "cuda_protocol.h"
#include "server_session.h"

extern const hira::server::ServerApi hira_server_api;

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  void *lib = ::dlopen(HIRA_FUZZ_CUDA_LIBRARY, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    std::fprintf(stderr, "fuzz_cuda_server_calls: %s\n", ::dlerror());
    std::abort();
  }
  hira_server_api.bind(lib);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > (1u << 16)) return 0;
  std::vector<uint8_t> stream;
  hira::fuzz::put_hello(stream, kApiName, kApiSignature);
  // Every function id, and one past the last (unknown), on 4 guest threads.
  hira::fuzz::put_calls(stream, data, size, kFunctionCount, 4, [](uint32_t) { return false; });
  hira::fuzz::run_session(hira_server_api, stream);
  return 0;
}
