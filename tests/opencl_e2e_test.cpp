// Every OpenCL program of tests/opencl gives the same output natively and
// through hira, both with hira's drop-in libOpenCL.so.1 and with hira as an
// ICD vendor beside the native one under the system loader (ocl-icd).
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "opencl_programs.h"
#include "test_support.h"

namespace hira::test {
namespace {

// A guest of `router` that loads hira's drop-in libOpenCL.so.1.
std::map<std::string, std::string> dropin_env(const Router &router) {
  auto env = router.guest_env();
  env["LD_LIBRARY_PATH"] = build_dir() + "/apis/opencl/guest";
  return env;
}

class OpenCl : public ::testing::TestWithParam<const char *> {};

TEST_P(OpenCl, DropInLibraryMatchesNative) {
  const RunResult native = run({program(GetParam())});
  ASSERT_EQ(native.exit_code, 0) << native.out << native.err;
  Router router;
  auto env = dropin_env(router);
  const RunResult remoted = run({program(GetParam())}, env);
  EXPECT_EQ(remoted.exit_code, 0) << remoted.err;
  EXPECT_EQ(remoted.out, native.out);
}

// The same with bulk data inline through the router (no shared-memory
// window), as for a guest that cannot share memory with the host; the
// frames, large ones too, stream through the command rings.
TEST_P(OpenCl, DropInLibraryMatchesNativeWithoutWindow) {
  const RunResult native = run({program(GetParam())});
  ASSERT_EQ(native.exit_code, 0) << native.out << native.err;
  Router router;
  auto env = dropin_env(router);
  env["HIRA_WINDOW_MB"] = "0";
  const RunResult remoted = run({program(GetParam())}, env);
  EXPECT_EQ(remoted.exit_code, 0) << remoted.err;
  EXPECT_EQ(remoted.out, native.out);
}

TEST_P(OpenCl, IcdVendorMatchesNative) {
  const RunResult native = run({program(GetParam())});
  ASSERT_EQ(native.exit_code, 0) << native.out << native.err;
  Router router;
  // Only hira's vendor file: the program's first platform is the remote one.
  // The window, but every frame through the socket (no command rings).
  const RunResult remoted =
      run({program(GetParam())}, {{"HIRA_SOCKET", router.endpoint()},
                                  {"OCL_ICD_VENDORS", build_dir() + "/apis/opencl/icd"},
                                  {"HIRA_RINGS", "0"}});
  EXPECT_EQ(remoted.exit_code, 0) << remoted.err;
  EXPECT_EQ(remoted.out, native.out);
  // And the calls really went through the router.
  EXPECT_NE(router.stop().find("clGetPlatformIDs"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(Programs, OpenCl, ::testing::ValuesIn(kOpenClPrograms),
                         [](const auto &info) { return std::string(info.param); });

TEST(OpenClHandles, InvalidForeignAndStaleHandlesGetTheSpecifiedErrors) {
  Router router;
  auto env = dropin_env(router);
  const RunResult r = run({program("invalid_handles")}, env);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("results after hostile calls: 1"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
  // The API server survived every call: the router never saw it go away.
  EXPECT_EQ(router.process().err().find("went away"), std::string::npos);
}

// What hira answers in the guest (GL/EGL/SVM sharing, native kernels,
// device fission, KHR names of core functions), each error as specified.
TEST(OpenClGuestAnswers, UnshareableEntryPointsFailAsSpecifiedAndAliasesActAsCore) {
  Router router;
  const RunResult r = run({program("guest_answers")}, dropin_env(router));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("guest answers: all as specified"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("FAIL"), std::string::npos) << r.out;
}

// Immutable object properties are answered by the guest after the first
// query (guest_cache_if); counts that change are always asked.
TEST(OpenClInfo, ImmutablePropertiesAreAnsweredInTheGuest) {
  Router router;
  auto env = dropin_env(router);
  const RunResult r = run({program("opencl30")}, env);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("1000 size queries: 256000"), std::string::npos) << r.out;
  const auto stats = nlohmann::json::parse(router.stop());
  const auto &fns = stats["opencl"]["functions"];
  // 1000 CL_MEM_SIZE queries, 5 counts and a few others: the sizes went once.
  EXPECT_LT(fns["clGetMemObjectInfo"]["calls"].get<int>(), 20) << fns.dump();
}

// Without argument info (a program built with ""), clSetKernelArg goes
// async once the implementation has accepted that kind and size of value
// for that argument; anything else is asked synchronously.
TEST(OpenClArgs, RepeatedArgumentSetsGoAsyncOnceLearnt) {
  Router router;
  auto env = dropin_env(router);
  const RunResult r = run({program("program_binaries")}, env);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto stats = nlohmann::json::parse(router.stop());
  const auto &set_arg = stats["opencl"]["functions"]["clSetKernelArg"];
  EXPECT_GE(set_arg["async"].get<int>(), 20) << set_arg.dump();
  EXPECT_LT(set_arg["async"].get<int>(), set_arg["calls"].get<int>()) << set_arg.dump();
}

// The router accounts a buffer until its last reference goes, whatever the
// order of retains and releases.
TEST(OpenClAccounting, DeviceMemoryFollowsTheObjectNotTheReleaseCalls) {
  Router router;
  auto env = dropin_env(router);
  const RunResult r = run({program("retained_buffers")}, env);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto stats = nlohmann::json::parse(router.stop());
  const auto &res = stats["opencl"]["resources"];
  ASSERT_EQ(res.size(), 1u) << stats.dump();
  const auto &memory = res.begin().value()["device_memory"];
  EXPECT_EQ(memory["current"], 1 << 20) << memory.dump();  // `kept`, still referenced
  EXPECT_EQ(memory["peak"], (1 << 20) + (1 << 16)) << memory.dump();
}

// The account follows what the implementation destroys: a parent buffer
// its sub-buffer keeps alive counts after its last release, an image counts
// with the size the implementation gives it, a released buffer does not.
TEST(OpenClAccounting, DeviceMemoryCountsUntilTheImplementationDestroysTheObject) {
  Router router;
  const RunResult r = run({program("object_lifetimes")}, dropin_env(router));
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  const auto at = r.err.find("image bytes: ");
  ASSERT_NE(at, std::string::npos) << r.err;
  const long image = std::stol(r.err.substr(at + 13));
  const auto stats = nlohmann::json::parse(router.stop());
  const auto &res = stats["opencl"]["resources"];
  ASSERT_EQ(res.size(), 1u) << stats.dump();
  const auto &memory = res.begin().value()["device_memory"];
  EXPECT_EQ(memory["current"], (1 << 20) + image) << memory.dump();
  EXPECT_EQ(memory["peak"], (1 << 20) + image + (1 << 18)) << memory.dump();
}

// Debian's pyopencl: imports (it links OpenCL 2.x entry points) and computes
// the same through hira as natively, drop-in and through the ICD loader.
TEST(OpenClPython, PyopenclProgramMatchesNative) {
  const std::vector<std::string> argv = {"/usr/bin/python3",
                                         source_dir() + "/tests/python/pyopencl_arrays.py"};
  const std::map<std::string, std::string> quiet = {{"PYOPENCL_CTX", "0"},
                                                    {"PYOPENCL_NO_CACHE", "1"}};
  const RunResult native = run(argv, quiet, std::chrono::seconds(300));
  ASSERT_EQ(native.exit_code, 0) << native.out << native.err;
  Router router;
  auto env = router.guest_env();
  env.insert(quiet.begin(), quiet.end());
  env["LD_LIBRARY_PATH"] = build_dir() + "/apis/opencl/guest";
  const RunResult dropin = run(argv, env, std::chrono::seconds(300));
  EXPECT_EQ(dropin.exit_code, 0) << dropin.err;
  EXPECT_EQ(dropin.out, native.out);
  env.erase("LD_LIBRARY_PATH");
  env["OCL_ICD_VENDORS"] = build_dir() + "/apis/opencl/icd";
  const RunResult icd = run(argv, env, std::chrono::seconds(300));
  EXPECT_EQ(icd.exit_code, 0) << icd.err;
  EXPECT_EQ(icd.out, native.out);
}

// The system's vendor files and hira's, in one folder for OCL_ICD_VENDORS.
void add_native_and_hira_vendors(const TempDir &vendors) {
  // Readable by the API servers, which run as their own users.
  std::filesystem::permissions(
      vendors.path(), std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                          std::filesystem::perms::group_exec | std::filesystem::perms::others_read |
                          std::filesystem::perms::others_exec);
  for (const auto &dir : {std::string("/etc/OpenCL/vendors"), build_dir() + "/apis/opencl/icd"}) {
    for (const auto &entry : std::filesystem::directory_iterator(dir)) {
      if (entry.path().extension() == ".icd") {
        std::filesystem::copy_file(entry.path(),
                                   vendors.path() + "/" + entry.path().filename().string());
      }
    }
  }
}

size_t count_of(const std::string &s, const std::string &what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + 1)) ++n;
  return n;
}

TEST(OpenClLoader, HiraPlatformIsListedBesideTheNativeOne) {
  TempDir vendors;
  add_native_and_hira_vendors(vendors);
  const RunResult native = run({"clinfo", "-l"}, {{"OCL_ICD_VENDORS", "/etc/OpenCL/vendors"}});
  ASSERT_EQ(native.exit_code, 0);
  Router router;
  const RunResult both = run(
      {"clinfo", "-l"}, {{"HIRA_SOCKET", router.endpoint()}, {"OCL_ICD_VENDORS", vendors.path()}});
  ASSERT_EQ(both.exit_code, 0) << both.err;
  EXPECT_EQ(count_of(both.out, "Platform #"), count_of(native.out, "Platform #") + 1) << both.out;
  // The hira platform says so (the loader's order is the folder's); the
  // native ones keep their names.
  EXPECT_EQ(count_of(both.out, ": hira: "), 1u) << both.out;
}

// hira run with OCL_ICD_VENDORS naming hira's vendor file beside the native
// ones: the API server never loads hira's own library (it would call itself).
TEST(OpenClLoader, IcdUnderHiraRunWithHiraVendorPresent) {
  TempDir vendors;
  add_native_and_hira_vendors(vendors);
  const RunResult native = run({"clinfo", "-l"}, {{"OCL_ICD_VENDORS", "/etc/OpenCL/vendors"}});
  ASSERT_EQ(native.exit_code, 0);
  // Drop-in: the program sees the one remote platform, named as natively.
  const RunResult dropin = run({build_dir() + "/bin/hira", "run", "--quiet", "--", "clinfo", "-l"},
                               {{"OCL_ICD_VENDORS", vendors.path()}});
  EXPECT_EQ(dropin.exit_code, 0) << dropin.err;
  EXPECT_EQ(dropin.out, native.out);
  EXPECT_EQ(dropin.err.find("hira:"), std::string::npos) << dropin.err;
  // Through the loader: the native platforms and hira's.
  const RunResult icd = run({build_dir() + "/bin/hira", "run", "--quiet", "--", "env", "-u",
                             "LD_LIBRARY_PATH", "clinfo", "-l"},
                            {{"OCL_ICD_VENDORS", vendors.path()}});
  EXPECT_EQ(icd.exit_code, 0) << icd.err;
  EXPECT_NE(icd.out.find("hira: "), std::string::npos) << icd.out;
  EXPECT_EQ(icd.err.find("hira:"), std::string::npos) << icd.err;
}

TEST(OpenClLoader, DropInLibraryExportsTheVersionNodesAppsLinkAgainst) {
  const RunResult r = run({"objdump", "-T", build_dir() + "/apis/opencl/guest/libOpenCL.so.1"});
  ASSERT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("OPENCL_1.0  clCreateBuffer"), std::string::npos);
  EXPECT_NE(r.out.find("OPENCL_1.1  clCreateSubBuffer"), std::string::npos);
  EXPECT_NE(r.out.find("OPENCL_1.2  clEnqueueFillBuffer"), std::string::npos);
  EXPECT_NE(r.out.find("OPENCL_2.0  clCreateCommandQueueWithProperties"), std::string::npos);
  EXPECT_NE(r.out.find("OPENCL_2.1  clCreateProgramWithIL"), std::string::npos);
  EXPECT_NE(r.out.find("OPENCL_2.2  clSetProgramSpecializationConstant"), std::string::npos);
  EXPECT_NE(r.out.find("OPENCL_3.0  clCreateBufferWithProperties"), std::string::npos);
  // Every symbol the system's loader exports, under the same version node.
  const RunResult loader = run({"objdump", "-T", "/usr/lib/x86_64-linux-gnu/libOpenCL.so.1"});
  ASSERT_EQ(loader.exit_code, 0);
  std::istringstream lines(loader.out);
  for (std::string line; std::getline(lines, line);) {
    const auto at = line.find("OPENCL_");
    if (at == std::string::npos || line.find(" cl", at) == std::string::npos) continue;
    EXPECT_NE(r.out.find(line.substr(at)), std::string::npos) << "missing: " << line.substr(at);
  }
  // Programs linked against the system loader run on it unchanged (checked above);
  // nothing beyond the API leaks out of the library.
  EXPECT_EQ(r.out.find("hira::"), std::string::npos);
}

}  // namespace
}  // namespace hira::test

namespace hira::test {
namespace {

// Objects whose storage is the server's copy of guest memory give it back
// when the implementation destroys them: 4.3 GiB of CL_MEM_USE_HOST_PTR
// buffers made and released one after another all succeed, as natively.
// Transfers larger than any frame (1.06 GiB in one call) give native
// results, without a window (their bytes follow their commands in chunks,
// through the command rings) and with one too small for them (through the
// socket); the router holds a chunk of them at a time, never the transfer.
TEST(OpenClLargeTransfers, MoreThanAFrameHoldsTravelsInChunksThroughABoundedRouter) {
  const RunResult native = run({program("large_transfers")});
  ASSERT_EQ(native.exit_code, 0) << native.out << native.err;
  // The third: the guest's default window (4 GiB), of which a router that
  // allows 256 MiB grants that much (the guest maps and uses only it).
  for (const int mode : {0, 1, 2}) {
    const bool window = mode != 0;
    SCOPED_TRACE(mode == 0   ? "no window, rings"
                 : mode == 1 ? "a 256 MiB window, sockets"
                             : "a 4 GiB window of which 256 MiB are granted");
    Router router(mode == 2 ? std::vector<std::string>{"--max-window-mb", "256"}
                            : std::vector<std::string>{});
    auto env = dropin_env(router);
    if (mode != 2) env["HIRA_WINDOW_MB"] = window ? "256" : "0";
    if (window) env["HIRA_RINGS"] = "0";
    const RunResult remoted = run({program("large_transfers")}, env);
    EXPECT_EQ(remoted.exit_code, 0) << remoted.err;
    EXPECT_EQ(remoted.out, native.out);
    const long peak_kb = status_kb(router.process().pid(), "VmHWM");
    EXPECT_GT(peak_kb, 0);
    EXPECT_LT(peak_kb, 64 * 1024) << "the router's peak RSS: " << peak_kb << " kB";
    router.stop();
    EXPECT_EQ(router.process().err().find("window refused"), std::string::npos)
        << router.process().err();
  }
}

TEST(OpenClServerMemory, UseHostPtrCopiesGoWithTheirBuffers) {
  const RunResult native = run({program("host_ptr_churn")});
  ASSERT_EQ(native.exit_code, 0) << native.out << native.err;
  Router router;
  const RunResult remoted = run({program("host_ptr_churn")}, dropin_env(router));
  EXPECT_EQ(remoted.exit_code, 0) << remoted.err;
  EXPECT_EQ(remoted.out, native.out);
}

}  // namespace
}  // namespace hira::test
