// A guest whose API server dies gets an error, not a hang, and other guests
// keep running.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "test_support.h"

namespace hira::test {
namespace {

const std::string kStress = build_dir() + "/bin/acc_stress";

TEST(Faults, KillingTheApiServerMidCallFailsTheCall) {
  Router router;
  Process victim({kStress, "sleep", "20000"}, router.guest_env());
  ASSERT_TRUE(victim.wait_for_output("sleeping")) << victim.err();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  const auto servers = router.servers();
  ASSERT_EQ(servers.size(), 1u);
  const auto t0 = std::chrono::steady_clock::now();
  ::kill(servers[0], SIGKILL);
  // The sleeping call returns ACC_ERR_UNAVAILABLE (-5) at once, not after 20 s.
  EXPECT_EQ(victim.wait(std::chrono::seconds(10)), 2) << victim.err();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_NE(victim.out().find("status=-5"), std::string::npos) << victim.out();
  EXPECT_NE(victim.err().find("API server unavailable"), std::string::npos) << victim.err();
  // The router survives and serves the next guest.
  const RunResult next = run({kStress, "loop", "50"}, router.guest_env());
  EXPECT_EQ(next.exit_code, 0) << next.err;
  EXPECT_TRUE(router.process().running());
}

TEST(Faults, OtherGuestsKeepRunningWhileOneServerDies) {
  Router router;
  Process victim({kStress, "sleep", "20000"}, router.guest_env());
  ASSERT_TRUE(victim.wait_for_output("sleeping")) << victim.err();
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const auto before = router.servers();
  ASSERT_EQ(before.size(), 1u);
  // A second guest starts, then the first guest's server is killed under it.
  Process bystander({kStress, "loop", "3000"}, router.guest_env());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ::kill(before[0], SIGKILL);
  EXPECT_EQ(victim.wait(std::chrono::seconds(10)), 2);
  EXPECT_EQ(bystander.wait(std::chrono::seconds(60)), 0) << bystander.err();
  EXPECT_NE(bystander.out().find("ok"), std::string::npos);
}

TEST(Faults, GuestKilledMidCallLeavesRouterServing) {
  Router router;
  Process victim({kStress, "sleep", "3000"}, router.guest_env());
  ASSERT_TRUE(victim.wait_for_output("sleeping"));
  victim.signal(SIGKILL);
  victim.wait();
  // Its server goes away with it (once the real call returns).
  const RunResult next = run({kStress, "loop", "20"}, router.guest_env());
  EXPECT_EQ(next.exit_code, 0) << next.err;
  for (int i = 0; i < 100 && !router.servers().empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(router.servers().empty());
}

// The router's server processes once their number is `want` (or 5 s).
size_t settle(const Router &router, size_t want) {
  for (int i = 0; i < 200 && router.servers().size() != want; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return router.servers().size();
}

// The APIs the build generated (acc, opencl, and cuda where a CUDA toolkit
// is installed).
size_t built_apis() {
  size_t built = 0;
  for (const auto &e : std::filesystem::directory_iterator(build_dir() + "/apis")) {
    built += std::filesystem::exists(e.path() / "router_module.so") ? 1 : 0;
  }
  return built;
}

// The HOME a server runs with. A server the router has just started may not
// have reached its exec yet (until then it has the router's environment):
// waited for, up to 2 s.
std::string home_of(pid_t pid) {
  const std::string proc = "/proc/" + std::to_string(pid);
  for (int i = 0; i < 80; ++i) {
    std::error_code ec;
    const auto exe = std::filesystem::read_symlink(proc + "/exe", ec).filename().string();
    if (exe.rfind("hira-server", 0) != 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
      continue;
    }
    const std::string env = read_file(proc + "/environ");
    for (size_t at = 0; at < env.size(); at = env.find('\0', at) + 1) {
      if (env.compare(at, 5, "HOME=") == 0) return env.substr(at + 5, env.find('\0', at) - at - 5);
      if (env.find('\0', at) == std::string::npos) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  return "";
}

// --warm-servers: one started server per API waits for the next guest; a
// guest takes it and the pool starts another. A warm server that died while
// idle is never handed out.
TEST(ServerPool, GuestsGetWarmServersAndThePoolRefills) {
  Router router({"--warm-servers", "1"});
  const size_t built = built_apis();
  ASSERT_GE(built, 2u);
  const size_t apis = settle(router, built);
  ASSERT_EQ(apis, built);
  const auto warm = router.servers();
  Process guest({kStress, "sleep", "2000"}, router.guest_env());
  ASSERT_TRUE(guest.wait_for_output("sleeping")) << guest.err();
  // The guest's server is one that was warm; a new one waits beside it.
  const auto during = router.servers();
  EXPECT_EQ(during.size(), built + 1);
  size_t kept = 0;
  for (const pid_t p : warm) kept += std::count(during.begin(), during.end(), p);
  EXPECT_EQ(kept, built);
  EXPECT_EQ(guest.wait(std::chrono::seconds(30)), 0) << guest.err();
  EXPECT_EQ(settle(router, built), built);  // the used server ended with its guest
  // Kill every idle server: the next guest still gets a working one.
  for (const pid_t p : router.servers()) ::kill(p, SIGKILL);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  const RunResult next = run({kStress, "loop", "20"}, router.guest_env());
  EXPECT_EQ(next.exit_code, 0) << next.err;
}

// With --server-cache the servers of a VM share a home (the vendor's
// compile caches): warm servers wait in their VM's home, before the first
// guest and after every refill, not in a private one (where every program
// would be compiled again).
TEST(ServerPool, WarmServersWaitInTheirVmsCacheHome) {
  TempDir dir;
  std::filesystem::permissions(
      dir.path(), std::filesystem::perms::owner_all | std::filesystem::perms::others_exec);
  const std::string cache = dir.path() + "/cache";
  Router router({"--warm-servers", "1", "--server-cache", cache});
  const size_t built = built_apis();
  ASSERT_EQ(settle(router, built), built);
  const auto warm = router.servers();
  for (const pid_t p : warm) EXPECT_EQ(home_of(p), cache + "/local") << "server " << p;
  const RunResult guest = run({kStress, "loop", "20"}, router.guest_env());
  EXPECT_EQ(guest.exit_code, 0) << guest.err;
  ASSERT_EQ(settle(router, built), built);
  const auto after = router.servers();
  EXPECT_NE(after, warm);  // the guest's server ended; another took its place
  for (const pid_t p : after) EXPECT_EQ(home_of(p), cache + "/local") << "server " << p;
}

}  // namespace
}  // namespace hira::test

namespace hira::test {
namespace {

// An API server that stops answering (SIGSTOP) fails the guest's call after
// HIRA_CALL_TIMEOUT_S instead of blocking it forever; without the setting
// the call waits (a long kernel is not a dead server).
TEST(Faults, AStoppedServerFailsCallsAfterTheCallTimeout) {
  Router router;
  auto env = router.guest_env();
  env.insert_or_assign("HIRA_CALL_TIMEOUT_S", std::string("1"));
  Process guest({kStress, "sleep", "3000"}, env);
  ASSERT_TRUE(guest.wait_for_output("sleeping")) << guest.err();
  const auto servers = router.servers();
  ASSERT_EQ(servers.size(), 1u);
  ::kill(servers[0], SIGSTOP);
  const auto t0 = std::chrono::steady_clock::now();
  // The 3 s call gets no reply: it fails after about 1 s with the API's error.
  EXPECT_EQ(guest.wait(std::chrono::seconds(10)), 2) << guest.err();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(2800));
  EXPECT_NE(guest.out().find("status=-5"), std::string::npos) << guest.out();
  EXPECT_NE(guest.err().find("no reply within HIRA_CALL_TIMEOUT_S=1 s"), std::string::npos)
      << guest.err();
  ::kill(servers[0], SIGCONT);
  EXPECT_TRUE(router.process().running());
}

// The timeout counts silence, not a call's length: while a call runs, its
// server says so twice a second, so a call three times longer than the
// timeout still returns its result (a stopped server, above, says nothing).
TEST(Faults, ALongCallOutlivesTheCallTimeoutWhileItsServerAnswers) {
  Router router;
  auto env = router.guest_env();
  env.insert_or_assign("HIRA_CALL_TIMEOUT_S", std::string("1"));
  const RunResult r = run({kStress, "sleep", "3000"}, env, std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("status=0"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.find("no reply within"), std::string::npos) << r.err;
}

TEST(Faults, WithoutACallTimeoutALongCallIsWaitedFor) {
  Router router;
  auto env = router.guest_env();
  // (insert_or_assign: GCC 12 at -O3 warns wrongly about assigning a literal here)
  env.insert_or_assign("HIRA_CALL_TIMEOUT_S", std::string("0"));
  const RunResult r = run({kStress, "sleep", "1500"}, env, std::chrono::seconds(30));
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("status=0"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace hira::test
