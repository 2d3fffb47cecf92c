// The para-virtual path end to end: real QEMU (TCG here), a real Debian
// guest kernel, hira-vsock as the VM's virtio-vsock device, the host's
// router and API servers. Guests boot from build/guest (the guest_image
// fixture builds it with qemu_device/build-guest-image).
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "opencl_programs.h"
#include "test_support.h"

namespace hira::test {
namespace {

std::string hira() { return build_dir() + "/bin/hira"; }

// A shell script for the guest: runs each program, its output between markers.
std::string write_runner(const TempDir &dir) {
  const std::string path = dir.path() + "/run-all";
  std::ofstream(path) << "#!/bin/sh\n"
                         "for p in \"$@\"; do\n"
                         "  echo \"=== begin $p\"\n"
                         "  \"$p\"\n"
                         "  echo \"=== exit $?\"\n"
                         "done\n";
  std::filesystem::permissions(path, std::filesystem::perms::owner_all);
  return path;
}

// Output of one program from the runner's stream.
std::string section(const std::string &all, const std::string &prog, int *exit_code) {
  const std::string begin = "=== begin " + prog + "\n";
  const auto b = all.find(begin);
  if (b == std::string::npos) return "<missing>";
  const auto e = all.find("=== exit ", b + begin.size());
  if (e == std::string::npos) return "<cut short>";
  *exit_code = std::atoi(all.c_str() + e + 9);
  return all.substr(b + begin.size(), e - b - begin.size());
}

// Data through the VM's shared region (the default), and through the vsock
// stream (no region), so both paths stay correct.
class VmPrograms : public ::testing::TestWithParam<const char *> {};

TEST_P(VmPrograms, OpenClProgramsInAGuestMatchNative) {
  TempDir dir;
  std::vector<std::string> argv = {hira(),      "vm",  "--quiet",     "--memory", "1G",
                                   "--timeout", "900", "--window-mb", GetParam()};
  std::vector<std::string> progs;
  for (const char *name : kOpenClPrograms) {
    // Gigabytes of data: a TCG guest with 1 GiB of RAM is not the place.
    if (std::string(name) == "large_writes") continue;
    progs.push_back(program(name));
    argv.insert(argv.end(), {"--add", program(name)});
  }
  argv.push_back("--");
  argv.push_back(write_runner(dir));
  argv.insert(argv.end(), progs.begin(), progs.end());
  const RunResult vm = run(argv, {}, std::chrono::seconds(960));
  ASSERT_FALSE(vm.timed_out);
  ASSERT_EQ(vm.exit_code, 0) << vm.err;
  for (const auto &p : progs) {
    const RunResult native = run({p});
    int code = -1;
    EXPECT_EQ(section(vm.out, p, &code), native.out) << p << "\n" << vm.err;
    EXPECT_EQ(code, native.exit_code) << p;
  }
}

INSTANTIATE_TEST_SUITE_P(Window, VmPrograms, ::testing::Values("256", "0"), [](const auto &info) {
  return std::string(info.param) == "0" ? "ThroughTheStream" : "ThroughTheSharedRegion";
});

// What hira-vsock says it relayed to the router ("... N bytes to the router").
long bytes_through_stream(const std::string &err) {
  const auto at = err.rfind(" bytes to the router");
  if (at == std::string::npos) return -1;
  const auto start = err.rfind(", ", at);
  return std::atol(err.c_str() + start + 2);
}

TEST(VmEndToEnd, DataTakesTheSharedRegionNotTheStream) {
  const RunResult native = run({program("vector_add")});
  const RunResult shared = run({hira(), "vm", "--timeout", "300", "--", program("vector_add")}, {},
                               std::chrono::seconds(330));
  ASSERT_EQ(shared.exit_code, 0) << shared.err;
  EXPECT_EQ(shared.out, native.out);
  const RunResult stream =
      run({hira(), "vm", "--timeout", "300", "--window-mb", "0", "--", program("vector_add")}, {},
          std::chrono::seconds(330));
  ASSERT_EQ(stream.exit_code, 0) << stream.err;
  EXPECT_EQ(stream.out, native.out);
  // vector_add writes and reads 256 KiB: only commands cross the stream.
  EXPECT_LT(bytes_through_stream(shared.err), 64 * 1024) << shared.err;
  EXPECT_GT(bytes_through_stream(stream.err), 512 * 1024) << stream.err;
}

TEST(VmEndToEnd, ExitStatusAndStderrComeBackSeparately) {
  const RunResult vm = run({hira(), "vm", "--quiet", "--timeout", "120", "--", "/bin/sh", "-c",
                            "echo to-stdout; echo to-stderr >&2; exit 7"},
                           {}, std::chrono::seconds(150));
  EXPECT_EQ(vm.exit_code, 7) << vm.err;
  EXPECT_EQ(vm.out, "to-stdout\n");
  EXPECT_NE(vm.err.find("to-stderr\n"), std::string::npos) << vm.err;
  EXPECT_EQ(vm.err.find("to-stdout"), std::string::npos);
}

TEST(VmEndToEnd, AQemuThatCannotStartFailsCleanly) {
  // QEMU never connects to the device backend: hira vm must still end it
  // (it waits in accept with SIGTERM, blocked at spawn, unblocked).
  const RunResult vm =
      run({hira(), "vm", "--quiet", "--accel", "tcg", "--qemu", "/bin/false", "--", "/bin/true"},
          {}, std::chrono::seconds(30));
  EXPECT_FALSE(vm.timed_out);
  EXPECT_EQ(vm.exit_code, 125) << vm.err;
  EXPECT_NE(vm.err.find("did not report an exit status"), std::string::npos) << vm.err;
}

// An operator's router with two VMs, as docs/operator-guide.md shows.
class TwoVms : public ::testing::Test {
 protected:
  void SetUp() override {
    stats_ = dir_.path() + "/stats.json";
    router_ = std::make_unique<Process>(std::vector<std::string>{
        build_dir() + "/bin/hira-router", "--listen", "vmA=unix:" + dir_.path() + "/a.sock",
        "--listen", "vmB=unix:" + dir_.path() + "/b.sock", "--apis", build_dir() + "/apis",
        "--ready-file", dir_.path() + "/ready", "--stats-json", stats_});
    for (int i = 0; i < 500 && !std::filesystem::exists(dir_.path() + "/ready"); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_TRUE(std::filesystem::exists(dir_.path() + "/ready")) << router_->err();
  }
  std::vector<std::string> vm(const std::string &name, int cid) {
    return {hira(),
            "vm",
            "--quiet",
            "--name",
            name,
            "--cid",
            std::to_string(cid),
            "--router",
            "unix:" + dir_.path() + "/" + (name == "vmA" ? "a" : "b") + ".sock"};
  }
  nlohmann::json stop_router() {
    router_->signal(SIGTERM);
    EXPECT_EQ(router_->wait(), 0) << router_->err();
    return nlohmann::json::parse(read_file(stats_));
  }

  TempDir dir_;
  std::string stats_;
  std::unique_ptr<Process> router_;
};

TEST_F(TwoVms, EachIsAccountedUnderItsOwnIdentity) {
  auto a = vm("vmA", 3);
  a.insert(a.end(), {"--timeout", "300", "--", program("vector_add")});
  auto b = vm("vmB", 4);
  b.insert(b.end(), {"--timeout", "300", "--", program("matrix_multiply")});
  Process pa(a), pb(b);
  ASSERT_EQ(pa.wait(std::chrono::seconds(330)), 0) << pa.err();
  ASSERT_EQ(pb.wait(std::chrono::seconds(330)), 0) << pb.err();
  EXPECT_EQ(pa.out(), run({program("vector_add")}).out);
  EXPECT_EQ(pb.out(), run({program("matrix_multiply")}).out);
  const auto stats = stop_router();
  const auto &res = stats["opencl"]["resources"];
  ASSERT_TRUE(res.contains("vmA/departed")) << stats.dump(2);
  ASSERT_TRUE(res.contains("vmB/departed")) << stats.dump(2);
  // vector_add moves 512 KiB (two 256 KiB transfers); matrix_multiply other amounts.
  EXPECT_EQ(res["vmA/departed"]["transfer_bytes"]["total"], 524288) << stats.dump(2);
  EXPECT_NE(res["vmB/departed"]["transfer_bytes"]["total"], 524288) << stats.dump(2);
}

TEST_F(TwoVms, AVmKilledMidCallLeavesTheOtherServed) {
  // vmA runs jacobi over and over and is killed (QEMU SIGKILL) mid-run.
  auto a = vm("vmA", 3);
  a.insert(a.end(), {"--timeout", "8", "--", "/bin/sh", "-c",
                     "while true; do " + program("jacobi") + " >/dev/null; done"});
  a.insert(a.begin() + 2, {"--add", program("jacobi")});
  Process pa(a);
  auto b = vm("vmB", 4);
  b.insert(b.end(), {"--timeout", "300", "--", program("reduction")});
  const RunResult rb = run(b, {}, std::chrono::seconds(330));
  EXPECT_EQ(rb.exit_code, 0) << rb.err;
  EXPECT_EQ(rb.out, run({program("reduction")}).out);
  EXPECT_NE(pa.wait(std::chrono::seconds(60)), 0);
  EXPECT_NE(pa.err().find("stopping the VM"), std::string::npos) << pa.err();
  // The router survived and serves vmA again.
  auto again = vm("vmA", 3);
  again.insert(again.end(), {"--timeout", "300", "--", program("vector_add")});
  const RunResult ra = run(again, {}, std::chrono::seconds(330));
  EXPECT_EQ(ra.exit_code, 0) << ra.err;
  EXPECT_EQ(ra.out, run({program("vector_add")}).out);
  EXPECT_TRUE(router_->running());
}

}  // namespace
}  // namespace hira::test
