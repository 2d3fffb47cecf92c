// libFuzzer target: the CUDA API server's generated decoders and its own
// server-side code (server_impl calls, server_check ranges, kernel
// parameter layouts), fed calls built from the input as fuzz_server_calls
// does, with the toolkit's stub libcuda behind them (no GPU here: every
// call the server makes answers CUDA_ERROR_STUB_LIBRARY, so what runs is
// hira's code up to the driver). Built with ASan and UBSan by
// fuzz/CMakeLists.txt; `ctest -R fuzz` runs it briefly from the committed corpus.
#include "cuda_protocol.h"
#include "server_session.h"

extern const hira::server::ServerApi hira_server_api;

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  hira::fuzz::bind_or_abort(hira_server_api, HIRA_FUZZ_CUDA_LIBRARY, "fuzz_cuda_server_calls");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // Every function id, and one past the last (unknown), on 4 guest threads.
  hira::fuzz::run_calls(hira_server_api, kApiName, kApiSignature, kFunctionCount, 4, data, size,
                        [](uint32_t) { return false; });
  return 0;
}
