// The demo application gives the same output natively and through hira.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "test_support.h"

namespace hira::test {
namespace {

const std::string kDemo = build_dir() + "/bin/acc_demo";

RunResult native(const std::vector<std::string> &args) {
  std::vector<std::string> argv = {kDemo};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv);
}

TEST(DemoEndToEnd, HiraRunMatchesNativeOutput) {
  const RunResult n = native({"4", "4096"});
  ASSERT_EQ(n.exit_code, 0) << n.err;
  const RunResult h = run({build_dir() + "/bin/hira", "run", "--", kDemo, "4", "4096"});
  ASSERT_EQ(h.exit_code, 0) << h.err;
  EXPECT_EQ(h.out, n.out);
  // The per-function summary names every function the demo called.
  EXPECT_NE(h.err.find("hira: calls to the acc API"), std::string::npos) << h.err;
  EXPECT_NE(h.err.find("acc_saxpy"), std::string::npos);
  EXPECT_NE(h.err.find("acc_run"), std::string::npos);
}

// HIRA_HOP_TRACE: every process of a call leaves its records, and
// bench/hop_trace.py joins them into the hops of each synchronous call.
TEST(DemoEndToEnd, HopTraceCoversEveryStageOfASyncCall) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("hira-hops-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  // The API server runs as a user of its own.
  fs::permissions(dir, fs::perms::all | fs::perms::sticky_bit);
  const std::string prefix = (dir / "hop").string();
  const RunResult h = run({build_dir() + "/bin/hira", "run", "--quiet", "--", kDemo, "2", "512"},
                          {{"HIRA_HOP_TRACE", prefix}});
  ASSERT_EQ(h.exit_code, 0) << h.err;
  EXPECT_EQ(h.out, native({"2", "512"}).out);
  size_t files = 0;
  for ([[maybe_unused]] const auto &e : fs::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 3u) << "one per process: the program, the router, the API server";
  const RunResult j =
      run({"/usr/bin/python3", source_dir() + "/bench/hop_trace.py", prefix, "--skip", "0"});
  fs::remove_all(dir);
  ASSERT_EQ(j.exit_code, 0) << j.out << j.err;
  EXPECT_NE(j.out.find("synchronous calls; median us per hop"), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("router got reply -> router sent reply"), std::string::npos) << j.out;
  // The router's own finer marks split its hops.
  EXPECT_NE(j.out.find("router admitted -> router recorded"), std::string::npos) << j.out;
  EXPECT_NE(j.out.find("router got reply -> router matched reply"), std::string::npos) << j.out;
  EXPECT_GT(std::stoul(j.out), 0u) << j.out;
}

TEST(DemoEndToEnd, ManyThreadsAtOnce) {
  const RunResult n = native({"16", "1000"});
  ASSERT_EQ(n.exit_code, 0) << n.err;
  Router router;
  const RunResult h = run({kDemo, "16", "1000"}, router.guest_env());
  ASSERT_EQ(h.exit_code, 0) << h.err;
  EXPECT_EQ(h.out, n.out);
}

TEST(DemoEndToEnd, SeveralGuestProcessesShareOneRouter) {
  const RunResult n = native({"3", "2048"});
  Router router;
  std::vector<std::unique_ptr<Process>> guests;
  for (int i = 0; i < 4; ++i) {
    guests.push_back(std::make_unique<Process>(std::vector<std::string>{kDemo, "3", "2048"},
                                               router.guest_env()));
  }
  for (auto &g : guests) {
    ASSERT_EQ(g->wait(), 0) << g->err() << router.process().err();
    EXPECT_EQ(g->out(), n.out);
  }
}

TEST(DemoEndToEnd, RouterAccountsCallsAndResources) {
  Router router;
  const RunResult h = run({kDemo, "2", "1024"}, router.guest_env());
  ASSERT_EQ(h.exit_code, 0) << h.err;
  const auto stats = nlohmann::json::parse(router.stop());
  const auto &fns = stats["acc"]["functions"];
  EXPECT_EQ(fns["acc_context_create"]["calls"], 2);
  EXPECT_EQ(fns["acc_saxpy"]["calls"], 4);  // one good, one failing, per thread
  EXPECT_EQ(fns["acc_saxpy"]["async"], 4);
  EXPECT_EQ(fns["acc_buffer_create"]["calls"], 4);
  // Each thread holds two 1024-float buffers at its peak, and frees them.
  const auto &res = stats["acc"]["resources"];
  ASSERT_EQ(res.size(), 1u);
  const auto &guest = res.begin().value();
  EXPECT_EQ(guest["device_memory"]["total"], 4 * 1024 * 4);
  EXPECT_GE(guest["device_memory"]["peak"], 2 * 1024 * 4);
  EXPECT_EQ(guest["device_memory"]["current"], 0);
  // Per thread: 2 saxpy + acc_run's 5 steps (from its argument) + 1 sleep.
  EXPECT_EQ(guest["kernel_launches"]["total"], 2 * (2 + 5 + 1));
}

TEST(DemoEndToEnd, WithoutRouterTheGuestLibraryFailsCleanly) {
  // No HIRA_SOCKET: every call returns the spec's error value, nothing hangs.
  const RunResult h =
      run({kDemo, "1", "16"},
          {{"LD_LIBRARY_PATH", build_dir() + "/apis/acc/guest"}, {"HIRA_SOCKET", ""}},
          std::chrono::seconds(30));
  EXPECT_FALSE(h.timed_out);
  EXPECT_EQ(h.exit_code, 1);
  EXPECT_NE(h.err.find("HIRA_SOCKET is not set"), std::string::npos) << h.err;
}

TEST(DemoEndToEnd, HiraRunWhoseRouterCannotStartFailsCleanly) {
  // hira run starts the program while the router starts; a router that
  // cannot (no API under --apis) closes the socket, so the program's calls
  // fail at once and hira says why.
  TempDir empty;
  const RunResult h =
      run({build_dir() + "/bin/hira", "run", "--apis", empty.path(), "--", kDemo, "1", "16"},
          {{"LD_LIBRARY_PATH", build_dir() + "/apis/acc/guest"}}, std::chrono::seconds(30));
  EXPECT_FALSE(h.timed_out);
  EXPECT_NE(h.exit_code, 0);
  EXPECT_NE(h.err.find("no API found"), std::string::npos) << h.err;
  EXPECT_NE(h.err.find("the router exited early"), std::string::npos) << h.err;
}

TEST(DemoEndToEnd, CtrlCReachesTheProgramUnderHiraRun) {
  // hira ignores SIGINT itself, to clean up after the program; the program
  // must not inherit that.
  Process h({build_dir() + "/bin/hira", "run", "--quiet", "--", "sleep", "30"});
  pid_t sleeper = -1;
  for (int i = 0; i < 500 && sleeper < 0; ++i) {
    for (const auto &entry : std::filesystem::directory_iterator("/proc")) {
      const std::string pid = entry.path().filename();
      if (pid.find_first_not_of("0123456789") != std::string::npos) continue;
      if (read_file("/proc/" + pid + "/comm") == "sleep\n" &&
          read_file("/proc/" + pid + "/stat").find(" " + std::to_string(h.pid()) + " ") !=
              std::string::npos) {
        sleeper = std::stoi(pid);
      }
    }
    if (sleeper < 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_GT(sleeper, 0);
  ::kill(sleeper, SIGINT);
  EXPECT_EQ(h.wait(std::chrono::seconds(10)), 128 + SIGINT);
}

TEST(DemoEndToEnd, RouterRefusesAnInheritedDescriptorThatIsNoListener) {
  const RunResult r =
      run({build_dir() + "/bin/hira-router", "--listen", "fd:0", "--apis", build_dir() + "/apis"},
          {}, std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("fd:0 is not an inherited listening socket"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace hira::test

namespace hira::test {
namespace {

TEST(DemoEndToEnd, ForkedChildGetsItsOwnConnection) {
  Router router;
  const RunResult r =
      run({build_dir() + "/bin/acc_stress", "fork"}, router.guest_env(), std::chrono::seconds(30));
  EXPECT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("child: acc_get_version=0 1.2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("parent: child exit=0 contexts=1 destroy=0"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace hira::test

namespace hira::test {
namespace {

// Async calls leave the guest in batches; one followed by nothing (the
// program sleeps, makes no further call) still reaches the server promptly.
TEST(DemoEndToEnd, AnAsyncCallAloneStillRunsPromptly) {
  ::setenv("HIRA_TRACE", "1", 1);  // the router's API servers say what they run
  Router router;
  ::unsetenv("HIRA_TRACE");
  Process guest({build_dir() + "/bin/acc_stress", "async", "5000"}, router.guest_env());
  ASSERT_TRUE(guest.wait_for_output("sent", std::chrono::seconds(20))) << guest.err();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  bool ran = false;
  while (!ran && std::chrono::steady_clock::now() < deadline) {
    ran = router.process().err().find("acc_saxpy (async)") != std::string::npos;
    if (!ran) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(ran) << router.process().err();
  EXPECT_TRUE(guest.running()) << "the guest had already exited: the call ran at its exit";
  guest.signal(SIGKILL);
}

}  // namespace
}  // namespace hira::test

namespace hira::test {
namespace {

// A long-running router keeps one resource entry per VM for the guest
// processes that have left, not one per process that ever connected.
TEST(DemoEndToEnd, DepartedGuestsAreFoldedIntoTheirVm) {
  Router router;
  for (int i = 0; i < 3; ++i) {
    const RunResult h = run({build_dir() + "/bin/acc_demo", "2", "1024"}, router.guest_env());
    ASSERT_EQ(h.exit_code, 0) << h.err;
  }
  // The sessions end right after their guests: give the last one a moment.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto stats = nlohmann::json::parse(router.stop());
  const auto &res = stats["acc"]["resources"];
  ASSERT_EQ(res.size(), 1u) << res.dump();
  ASSERT_TRUE(res.contains("local/departed")) << res.dump();
  EXPECT_EQ(res["local/departed"]["kernel_launches"]["total"], 3 * 2 * (2 + 5 + 1));
  EXPECT_EQ(res["local/departed"]["device_memory"]["total"], 3 * 4 * 1024 * 4);
  EXPECT_EQ(res["local/departed"]["device_memory"]["current"], 0);
}

}  // namespace
}  // namespace hira::test
