// The CUDA driver API through hira's generated libcuda.so.1. Here the API
// server loads the toolkit's stub libcuda (no GPU: every call answers
// CUDA_ERROR_STUB_LIBRARY), so each program must fail exactly as it does
// natively against the stub; scripts/gpu-check cuda runs the same programs
// on a GPU. The library's exports are checked in-process.
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "test_support.h"

namespace hira::test {
namespace {

namespace fs = std::filesystem;

std::string guest_dir() { return build_dir() + "/apis/cuda/guest"; }

std::vector<std::string> cuda_programs() {
  std::vector<std::string> v;
  const fs::path dir = build_dir() + "/bin/cuda";
  if (!fs::exists(dir)) return v;
  for (const auto &e : fs::directory_iterator(dir)) v.push_back(e.path().filename().string());
  std::sort(v.begin(), v.end());
  return v;
}

bool cuda_built() { return fs::exists(guest_dir() + "/libcuda.so.1"); }

TEST(CudaPrograms, EachFailsThroughHiraExactlyAsNativelyAgainstTheStub) {
  if (!cuda_built()) GTEST_SKIP() << "no CUDA toolkit: the cuda API is not built";
  const auto programs = cuda_programs();
  ASSERT_GE(programs.size(), 10u);
  Router router;
  auto env = router.guest_env();
  env["LD_LIBRARY_PATH"] = guest_dir();
  for (const auto &p : programs) {
    SCOPED_TRACE(p);
    const std::string path = build_dir() + "/bin/cuda/" + p;
    const RunResult native = run({path}, {{"LD_LIBRARY_PATH", build_dir() + "/cuda-stub"}});
    // The stub refuses the first call: the program says which, with the code.
    ASSERT_EQ(native.exit_code, 1) << native.out << native.err;
    ASSERT_NE(native.out.find("error 34"), std::string::npos) << native.out;
    const RunResult remoted = run({path}, env);
    EXPECT_EQ(remoted.exit_code, native.exit_code) << remoted.err;
    EXPECT_EQ(remoted.out, native.out);
  }
  // The calls went through the router to the server (and its stub).
  EXPECT_NE(router.stop().find("cuInit"), std::string::npos);
}

// A VM's device memory quota holds for CUDA: an allocation over it gets
// CUDA_ERROR_OUT_OF_MEMORY from the router (the driver never sees it; here
// the stub would have answered 34), and a free makes room again.
TEST(CudaQuota, AnAllocationOverTheQuotaGetsOutOfMemory) {
  if (!cuda_built()) GTEST_SKIP() << "no CUDA toolkit: the cuda API is not built";
  const std::string probe = build_dir() + "/bin/cuda/cu_quota_probe";
  const RunResult r = run(
      {build_dir() + "/bin/hira", "run", "--quiet", "--quota", "device_memory=2560K", "--", probe});
  EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
  // The stub answers the allocations the quota lets through; the one over
  // it is refused before it gets there.
  EXPECT_NE(r.out.find("cuMemAlloc 1 MiB: error 34\ncuMemAlloc 4 MiB: error 2\n"
                       "cuMemAlloc 1 MiB again: error 34\n"),
            std::string::npos)
      << r.out << r.err;
  // A physical allocation of virtual memory management counts as well.
  EXPECT_NE(r.out.find("cuMemCreate 4 MiB: error 2\ncuMemCreate 2 MiB: error 34\n"),
            std::string::npos)
      << r.out << r.err;
  // ... and so does an array.
  EXPECT_NE(r.out.find("cuArray3DCreate 4 MiB: error 2\ncuArray3DCreate 1 MiB: error 34\n"),
            std::string::npos)
      << r.out << r.err;
}

// Does [p, p + n) lie in this process's mapping of the hira window?
bool in_hira_window(const void *p, size_t n) {
  std::ifstream maps("/proc/self/maps");
  const auto a = reinterpret_cast<uintptr_t>(p);
  for (std::string line; std::getline(maps, line);) {
    if (line.find("hira-window") == std::string::npos) continue;
    uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream in(line);
    in >> std::hex >> lo >> dash >> hi;
    if (a >= lo && a + n <= hi) return true;
  }
  return false;
}

// Pinned memory lives in the guest's window while it fits half of the
// guest's part, from its top (the API server reads and writes it in place,
// and async copies of it go from there); beyond that it is the guest's own
// memory.
// The library runs in this process, through a router whose API server
// loads the stub (its answers: error 34).
TEST(CudaPinnedMemory, LivesInTheWindowUpToHalfOfIt) {
  if (!cuda_built()) GTEST_SKIP() << "no CUDA toolkit: the cuda API is not built";
  Router router;
  ASSERT_EQ(::setenv("HIRA_SOCKET", router.endpoint().c_str(), 1), 0);
  ASSERT_EQ(::setenv("HIRA_WINDOW_MB", "64", 1), 0);  // the guest's part: 48 MiB, half: 24
  void *lib = dlopen((guest_dir() + "/libcuda.so.1").c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(lib, nullptr) << dlerror();
  auto init = reinterpret_cast<int (*)(unsigned)>(dlsym(lib, "cuInit"));
  auto alloc = reinterpret_cast<int (*)(void **, size_t)>(dlsym(lib, "cuMemAllocHost_v2"));
  auto release = reinterpret_cast<int (*)(void *)>(dlsym(lib, "cuMemFreeHost"));
  auto htod_async = reinterpret_cast<int (*)(unsigned long long, const void *, size_t, void *)>(
      dlsym(lib, "cuMemcpyHtoDAsync_v2"));
  auto dtoh_async = reinterpret_cast<int (*)(void *, unsigned long long, size_t, void *)>(
      dlsym(lib, "cuMemcpyDtoHAsync_v2"));
  ASSERT_TRUE(init && alloc && release && htod_async && dtoh_async);
  EXPECT_EQ(init(0), 34);  // through the router: the connection and its window are up
  const size_t mib = 1 << 20;
  void *a = nullptr, *b = nullptr, *c = nullptr, *d = nullptr;
  ASSERT_EQ(alloc(&a, mib), 0);
  EXPECT_TRUE(in_hira_window(a, mib));
  std::memset(a, 7, mib);
  // Async copies of it take the window path to the server (and the stub).
  EXPECT_EQ(htod_async(0x1000, a, mib, nullptr), 34);
  EXPECT_EQ(dtoh_async(a, 0x1000, mib, nullptr), 34);
  EXPECT_EQ(static_cast<unsigned char *>(a)[mib - 1], 7);
  ASSERT_EQ(alloc(&b, 20 * mib), 0);  // 21 of 24 MiB
  EXPECT_TRUE(in_hira_window(b, 20 * mib));
  // From the top of the guest's part down (its calls' data goes from the
  // bottom, where the server may pin the copies' area).
  EXPECT_LE(static_cast<char *>(b) + 20 * mib, static_cast<char *>(a));
  ASSERT_EQ(alloc(&c, 20 * mib), 0);  // does not fit: the guest's own memory
  EXPECT_FALSE(in_hira_window(c, 1));
  std::memset(c, 1, 20 * mib);
  EXPECT_EQ(release(b), 0);  // its space comes back
  ASSERT_EQ(alloc(&d, 20 * mib), 0);
  EXPECT_TRUE(in_hira_window(d, 20 * mib));
  for (void *p : {a, c, d}) EXPECT_EQ(release(p), 0);
}

// The generated library, loaded in this process (no call below reaches a server).
class CudaLibrary : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_built()) GTEST_SKIP() << "no CUDA toolkit: the cuda API is not built";
    lib_ = dlopen((guest_dir() + "/libcuda.so.1").c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(lib_, nullptr) << dlerror();
  }
  void TearDown() override {
    if (lib_ != nullptr) dlclose(lib_);
  }
  void *sym(const char *name) { return dlsym(lib_, name); }
  void *lib_ = nullptr;
};

TEST_F(CudaLibrary, ExportsTheNamesCudaHMapsTo) {
  for (const char *name :
       {"cuInit", "cuMemAlloc_v2", "cuCtxCreate_v4", "cuMemcpyHtoD_v2", "cuGetProcAddress_v2",
        "cuLaunchKernel", "cuModuleGetGlobal_v2", "cuEventElapsedTime_v2", "cuStreamDestroy_v2"}) {
    EXPECT_NE(sym(name), nullptr) << name;
  }
  // hira's own calls are not the API's.
  EXPECT_EQ(sym("hira_cu_error_text"), nullptr);
  EXPECT_EQ(sym("hira_cu_module_load_ex"), nullptr);
}

// A program built for the per-thread default stream links cuda.h's _ptsz
// and _ptds names; cuGetProcAddress asked for per-thread symbols (as the
// runtime and cuda.h's inline cuGetProcAddress do) gives those variants,
// and the plain function where there is none.
TEST_F(CudaLibrary, ExportsThePerThreadDefaultStreamVariants) {
  for (const char *name : {"cuMemcpyAsync_ptsz", "cuMemcpyHtoD_v2_ptds", "cuLaunchKernel_ptsz",
                           "cuStreamSynchronize_ptsz", "cuEventRecord_ptsz", "cuMemsetD32_v2_ptds",
                           "cuStreamGetCaptureInfo_v3_ptsz", "cuLaunchKernelEx_ptsz"}) {
    EXPECT_NE(sym(name), nullptr) << name;
  }
  using GetProcAddress = int (*)(const char *, void **, int, unsigned long long, int *);
  auto get = reinterpret_cast<GetProcAddress>(sym("cuGetProcAddress_v2"));
  ASSERT_NE(get, nullptr);
  const unsigned long long kPerThread = 1u << 1;  // CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM
  struct Lookup {
    const char *symbol, *per_thread, *legacy;
  };
  for (const Lookup &l : {Lookup{"cuMemcpyAsync", "cuMemcpyAsync_ptsz", "cuMemcpyAsync"},
                          Lookup{"cuMemcpyHtoD", "cuMemcpyHtoD_v2_ptds", "cuMemcpyHtoD_v2"},
                          Lookup{"cuStreamGetCaptureInfo", "cuStreamGetCaptureInfo_v3_ptsz",
                                 "cuStreamGetCaptureInfo_v3"},
                          Lookup{"cuCtxGetDevice", "cuCtxGetDevice_v2", "cuCtxGetDevice_v2"}}) {
    void *fn = nullptr;
    int status = -1;
    ASSERT_EQ(get(l.symbol, &fn, 13000, kPerThread, &status), 0) << l.symbol;
    EXPECT_EQ(fn, sym(l.per_thread)) << l.symbol;
    EXPECT_EQ(status, 0) << l.symbol;
    ASSERT_EQ(get(l.symbol, &fn, 13000, 0, &status), 0) << l.symbol;
    EXPECT_EQ(fn, sym(l.legacy)) << l.symbol;
  }
}

TEST_F(CudaLibrary, AFunctionTheSpecLeavesOutAnswersNotSupportedWithOneLine) {
  using ExportPointer = int (*)(void *, unsigned long long);
  auto export_pointer = reinterpret_cast<ExportPointer>(sym("cuMemPoolExportPointer"));
  ASSERT_NE(export_pointer, nullptr) << "every function of cuda.h is exported";
  char share[64] = {};  // a CUmemPoolPtrExportData; never written
  testing::internal::CaptureStderr();
  const int first = export_pointer(share, 0x1000);
  const int second = export_pointer(share, 0x1000);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(first, 801);  // CUDA_ERROR_NOT_SUPPORTED
  EXPECT_EQ(second, 801);
  EXPECT_EQ(err,
            "hira: cuMemPoolExportPointer is not supported through hira (the cuda spec does not "
            "describe it); it returns CUDA_ERROR_NOT_SUPPORTED\n");
}

// Stream attributes whose values name objects are refused in the guest,
// with one line, before anything is sent (no router here).
TEST_F(CudaLibrary, StreamAttributesThatNameObjectsAreRefusedWithOneLine) {
  using SetAttribute = int (*)(void *, int, const void *);
  auto set = reinterpret_cast<SetAttribute>(sym("cuStreamSetAttribute"));
  ASSERT_NE(set, nullptr);
  unsigned char value[64] = {};
  testing::internal::CaptureStderr();
  const int r = set(nullptr, 7 /* CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT */, value);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(r, 801);  // CUDA_ERROR_NOT_SUPPORTED
  EXPECT_EQ(err, "hira: cuStreamSetAttribute with attribute 7 is not supported through hira\n");
}

TEST_F(CudaLibrary, GetProcAddressReturnsTheLibrarysOwnEntryPoints) {
  using GetProcAddress = int (*)(const char *, void **, int, unsigned long long, int *);
  auto get = reinterpret_cast<GetProcAddress>(sym("cuGetProcAddress_v2"));
  ASSERT_NE(get, nullptr);
  void *fn = nullptr;
  int status = -1;
  ASSERT_EQ(get("cuMemAlloc", &fn, 13000, 0, &status), 0);
  EXPECT_EQ(fn, sym("cuMemAlloc_v2"));
  EXPECT_EQ(status, 0);  // CU_GET_PROC_ADDRESS_SUCCESS
  ASSERT_EQ(get("cuCtxCreate", &fn, 13000, 0, &status), 0);
  EXPECT_EQ(fn, sym("cuCtxCreate_v4"));
  ASSERT_EQ(get("cuInit", &fn, 13000, 0, &status), 0);
  EXPECT_EQ(fn, sym("cuInit"));
  // Left out of the spec: its NOT_SUPPORTED answer, never a null pointer.
  ASSERT_EQ(get("cuMemPoolCreate", &fn, 13000, 0, &status), 0);
  EXPECT_EQ(fn, sym("cuMemPoolCreate"));
  // As the driver answers: success, and the status says there is nothing.
  EXPECT_EQ(get("cuNoSuchFunction", &fn, 13000, 0, &status), 0);
  EXPECT_EQ(fn, nullptr);
  EXPECT_EQ(status, 1);  // CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND
  // A program built for an older CUDA gets the variant of its time ...
  ASSERT_EQ(get("cuCtxGetDevice", &fn, 12000, 0, &status), 0);
  EXPECT_EQ(fn, sym("cuCtxGetDevice"));
  ASSERT_EQ(get("cuCtxGetDevice", &fn, 13000, 0, &status), 0);
  EXPECT_EQ(fn, sym("cuCtxGetDevice_v2"));
  ASSERT_EQ(get("cuCtxSynchronize", &fn, 12090, 0, &status), 0);
  EXPECT_EQ(fn, sym("cuCtxSynchronize"));
  ASSERT_EQ(get("cuCtxSynchronize", &fn, 13000, 0, &status), 0);
  EXPECT_EQ(fn, sym("cuCtxSynchronize_v2"));
  // Entry points of older versions are the library's own (guest_export_as).
  for (const char *legacy : {"cuGraphGetEdges", "cuEventElapsedTime", "cuCtxCreate_v2",
                             "cuStreamGetCaptureInfo_v2", "cuGraphInstantiate_v2"}) {
    ASSERT_NE(sym(legacy), nullptr) << legacy;
  }
  ASSERT_EQ(get("cuGraphGetEdges", &fn, 12020, 0, &status), 0);
  EXPECT_EQ(fn, sym("cuGraphGetEdges"));
  ASSERT_EQ(get("cuEventElapsedTime", &fn, 12000, 0, &status), 0);
  EXPECT_EQ(fn, sym("cuEventElapsedTime"));
  ASSERT_EQ(get("cuEventElapsedTime", &fn, 12080, 0, &status), 0);
  EXPECT_EQ(fn, sym("cuEventElapsedTime_v2"));
  ASSERT_EQ(get("cuGraphGetEdges", &fn, 12030, 0, &status), 0);
  EXPECT_EQ(fn, sym("cuGraphGetEdges_v2"));
  // ... and nothing for a function newer than it.
  EXPECT_EQ(get("cuMemAllocAsync", &fn, 11000, 0, &status), 0);
  EXPECT_EQ(fn, nullptr);
  EXPECT_EQ(status, 2);                                // CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT
  EXPECT_EQ(get(nullptr, &fn, 13000, 0, &status), 1);  // CUDA_ERROR_INVALID_VALUE
}

}  // namespace
}  // namespace hira::test
