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
#include "acc_protocol.h"
#include "server_session.h"

extern const hira::server::ServerApi hira_server_api;

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  hira::fuzz::bind_or_abort(hira_server_api, HIRA_FUZZ_ACC_LIBRARY, "fuzz_server_calls");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  // Every function id, and one past the last (unknown).
  hira::fuzz::run_calls(hira_server_api, kApiName, kApiSignature, FN_acc_context_count + 1, 4, data,
                        size, [](uint32_t f) { return f == FN_acc_sleep || f == FN_acc_run; });
  return 0;
}
