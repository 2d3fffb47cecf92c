// libFuzzer target: the OpenCL API server's generated decoders, with the
// server runtime and the real implementation (PoCL through the system's
// ICD loader) behind them. Each input is a session: a fixed prologue makes
// real objects (platform 1, device 2, context 3, queue 4, a 4 KiB buffer 5,
// a 16x16 RGBA image 6, a sampler 7, a program from source 8, not built),
// then the input's calls (built as in server_session.h, all on the
// prologue's guest thread, in order) run, free to name those ids; an epilogue releases the
// prologue's objects so that sessions do not pile up in the implementation. Left out: calls that
// block until the guest acts (user events, waits on them) and those that run the implementation's
// compiler or binary loaders (minutes of JIT per input). Built with ASan and UBSan by
// fuzz/CMakeLists.txt; `ctest -R fuzz` runs it briefly from the committed corpus.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "call_builder.h"
#include "opencl_protocol.h"
#include "server_session.h"

extern const hira::server::ServerApi hira_server_api;

namespace {

using namespace hira::test;

// CL constants, spelled here so that this target needs no OpenCL header.
constexpr uint64_t kDeviceTypeAll = 0xFFFFFFFF;
constexpr uint64_t kMemReadWrite = 1;
constexpr uint32_t kRgba = 0x10B5, kUnsignedInt8 = 0x10DA;

void put_call(std::vector<uint8_t> &out, uint32_t func, uint64_t id, const std::vector<Arg> &args) {
  const std::vector<uint8_t> payload = encode(args);
  hira::fuzz::put_frame(out, hira::make_header(hira::wire::Kind::Call, func, id, 1), payload.data(),
                        payload.size());
}

std::vector<uint8_t> bytes_of(std::initializer_list<uint32_t> words) {
  std::vector<uint8_t> b;
  for (const uint32_t w : words) hira::fuzz::put(b, &w, sizeof(w));
  return b;
}

// The prologue: objects 1..8 (see the top of this file).
std::vector<uint8_t> prologue() {
  std::vector<uint8_t> s;
  hira::fuzz::put_hello(s, kApiName, kApiSignature);
  uint64_t id = 1u << 20;  // call ids of their own
  put_call(s, FN_clGetPlatformIDs, id++, {scalar(1, 4), out_ptr(8, 1), out_ptr(4, 1)});
  put_call(s, FN_clGetDeviceIDs, id++,
           {handle(1), scalar(kDeviceTypeAll, 8), scalar(1, 4), out_ptr(8, 1), out_ptr(4, 1)});
  put_call(s, FN_clCreateContext, id++,
           {absent(), scalar(1, 4), handles({2}), u64(0), raw(), out_ptr(4, 1)});
  put_call(s, FN_clCreateCommandQueue, id++, {handle(3), handle(2), scalar(0, 8), out_ptr(4, 1)});
  put_call(s, FN_clCreateBuffer, id++,
           {handle(3), scalar(kMemReadWrite, 8), size_arg(4096), absent(), out_ptr(4, 1)});
  put_call(s, FN_clCreateImage2D, id++,
           {handle(3), scalar(kMemReadWrite, 8), in_ptr(8, 1, bytes_of({kRgba, kUnsignedInt8})),
            size_arg(16), size_arg(16), size_arg(0), absent(), out_ptr(4, 1)});
  put_call(s, FN_clCreateSampler, id++,
           {handle(3), scalar(0, 4), scalar(0x1132 /* CLAMP_TO_EDGE */, 4),
            scalar(0x1140 /* NEAREST */, 4), out_ptr(4, 1)});
  {  // clCreateProgramWithSource(3, 1, &source, NULL, &err): the strings
     // array holds one nested buffer, which a Writer aligns in the payload.
    static const char source[] = "__kernel void k(__global int *a) { a[0] = 1; }";
    hira::Writer w;
    auto blob = w.begin_blob();
    w.put_u64(3);
    w.end_blob(blob);
    blob = w.begin_blob();
    w.put_u32(1);
    w.end_blob(blob);
    blob = w.begin_blob();
    w.put_u8(1);
    w.put_u64(1);
    w.put_u8(1);
    w.put_u64(sizeof(source));
    w.put_bulk(source, sizeof(source));
    w.end_blob(blob);
    blob = w.begin_blob();  // lengths: NULL
    w.put_u8(0);
    w.end_blob(blob);
    blob = w.begin_blob();
    w.put_u8(1);
    w.put_u64(1);
    w.end_blob(blob);
    const std::vector<uint8_t> payload = flatten(w);
    hira::fuzz::put_frame(
        s, hira::make_header(hira::wire::Kind::Call, FN_clCreateProgramWithSource, id++, 1),
        payload.data(), payload.size());
  }
  return s;
}

// Releases 8..3 (the prologue's objects) in reverse order of creation.
void put_epilogue(std::vector<uint8_t> &s) {
  uint64_t id = 2u << 20;
  put_call(s, FN_clReleaseProgram, id++, {handle(8)});
  put_call(s, FN_clReleaseSampler, id++, {handle(7)});
  put_call(s, FN_clReleaseMemObject, id++, {handle(6)});
  put_call(s, FN_clReleaseMemObject, id++, {handle(5)});
  put_call(s, FN_clFinish, id++, {handle(4)});
  put_call(s, FN_clReleaseCommandQueue, id++, {handle(4)});
  put_call(s, FN_clReleaseContext, id++, {handle(3)});
}

bool left_out(uint32_t f) {
  switch (f) {
    case FN_clCreateUserEvent:
    case FN_clSetUserEventStatus:
    case FN_clWaitForEvents:
    case FN_clEnqueueWaitForEvents:
    case FN_clBuildProgram:
    case FN_clCompileProgram:
    case FN_clLinkProgram:
    case FN_clCreateProgramWithBinary:
    case FN_clCreateProgramWithIL:
    case FN_clCreateProgramWithILKHR:
    case FN_clCreateProgramWithBuiltInKernels:
    case FN_clEnqueueNativeKernel:
      return true;
    default:
      return false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int *, char ***) {
  hira::fuzz::bind_or_abort(hira_server_api, "libOpenCL.so.1", "fuzz_opencl_server_calls");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > (1u << 16)) return 0;
  static const std::vector<uint8_t> start = prologue();
  std::vector<uint8_t> stream = start;
  // One guest thread, as the prologue's: a call never races a release of
  // the same object on another thread (that would be the guest racing its
  // own destroy against its own use, inside the implementation).
  hira::fuzz::put_calls(stream, data, size, kFunctionCount, 1, left_out);
  put_epilogue(stream);
  hira::fuzz::run_session(hira_server_api, stream);
  return 0;
}
