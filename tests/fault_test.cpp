// A guest whose API server dies gets an error, not a hang, and other guests
// keep running.
#include <gtest/gtest.h>
#include <signal.h>

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

}  // namespace
}  // namespace hira::test
