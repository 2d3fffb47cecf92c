// The shipped eBPF policies and the policy loader, against the real kernel:
// each policy is verified and run with BPF_PROG_TEST_RUN as the router runs
// it, on hand-built commands.
#include "policy.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <string>

#include "admission.h"
#include "resource_ids.h"
#include "router_options.h"
#include "test_support.h"
#include "vm.h"

namespace hira::router {
namespace {

std::string shipped() { return test::build_dir() + "/policies"; }
std::string test_policy(const std::string &name) {
  return test::build_dir() + "/tests/policies/" + name + ".bpf.o";
}

class PolicyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "loading eBPF programs needs root";
    a_ = &vms_.add("a");
    b_ = &vms_.add("b");
  }
  std::unique_ptr<Policy> load(const std::string &name) {
    std::string error;
    auto p = Policy::load(resolve_policy(name, shipped()), &error);
    EXPECT_TRUE(p) << error;
    if (p) {
      EXPECT_TRUE(p->configure(vms_, ids_, &error)) << error;
    }
    return p;
  }
  // A command of `vm`; device work (a kernel launch, a clFinish) unless not.
  hira_cmd command(const Vm &vm, uint64_t now_ns, bool device_work = true) const {
    hira_cmd c{};
    c.hook = HIRA_HOOK_SCHEDULE;
    c.vm = vm.index;
    c.vm_count = vms_.count();
    c.now_ns = now_ns;
    c.device_work = device_work ? 1 : 0;
    c.amount[HIRA_RC_CALLS] = 1;
    return c;
  }
  // Both VMs ask for something that is not device work (they are active).
  void both_active(const Policy &p, uint64_t t) const {
    hira_cmd ca = command(*a_, t, false), cb = command(*b_, t, false);
    EXPECT_EQ(schedule(p, &ca), uint32_t{HIRA_RUN});
    EXPECT_EQ(schedule(p, &cb), uint32_t{HIRA_RUN});
  }
  uint32_t schedule(const Policy &p, hira_cmd *c) const {
    uint32_t verdict = 99;
    EXPECT_TRUE(p.schedule(c, &verdict));
    return verdict;
  }
  // `waiter` asks for the device while `holder` has it (so it waits), then
  // the holder's wait for the device returns (its turn ends); at t .. t + 2.
  void wait_behind(const Policy &p, const Vm &holder, const Vm &waiter, uint64_t t) const {
    hira_cmd h = command(holder, t);
    EXPECT_EQ(schedule(p, &h), uint32_t{HIRA_RUN});
    hira_cmd w = command(waiter, t + 1);
    EXPECT_EQ(schedule(p, &w), uint32_t{HIRA_WAIT});
    consume_device_time(p, holder, t + 2, 1);
  }
  void consume_device_time(const Policy &p, const Vm &vm, uint64_t now_ns, uint64_t ns) const {
    hira_cmd c = command(vm, now_ns);
    c.hook = HIRA_HOOK_CONSUME;
    c.amount[HIRA_RC_CALLS] = 0;
    c.amount[HIRA_RC_DEVICE_TIME] = static_cast<int64_t>(ns);
    EXPECT_TRUE(p.consume(&c));
  }

  ResourceIds ids_;
  VmTable vms_;
  Vm *a_ = nullptr;
  Vm *b_ = nullptr;
  static constexpr uint64_t kSecond = 1000000000ull;
};

TEST_F(PolicyTest, QuotaOnAContinuousResource) {
  // A router serving an API with a continuous device_memory (as the specs do).
  static const char *names[] = {"device_memory"};
  static const uint8_t continuous[] = {1};
  RouterModule m{};
  m.name = "test";
  m.resource_count = 1;
  m.resource_names = names;
  m.resource_continuous = continuous;
  ids_.add_api(m);
  const uint32_t memory = *ids_.find("device_memory");
  a_->limits[memory] = 8 << 20;
  auto p = load("quota");
  ASSERT_TRUE(p);
  hira_cmd c = command(*a_, kSecond);
  c.amount[memory] = 3 << 20;
  c.held[memory] = 4 << 20;
  EXPECT_EQ(schedule(*p, &c), uint32_t{HIRA_RUN});  // 7 MiB of 8
  c.held[memory] = 6 << 20;
  EXPECT_EQ(schedule(*p, &c), uint32_t{HIRA_OVER_QUOTA});  // 9 MiB of 8
  uint32_t verdict = 0;
  ASSERT_TRUE(p->schedule(&c, &verdict));
  EXPECT_EQ(c.resource, memory);  // the hook names what is over
  // An instantaneous limit is the rate limiter's business, not the quota's.
  a_->limits.erase(memory);
  a_->limits[HIRA_RC_BYTES] = 1;
  std::string error;
  ASSERT_TRUE(p->configure(vms_, ids_, &error));
  hira_cmd bytes = command(*a_, kSecond);
  bytes.amount[HIRA_RC_BYTES] = 1 << 20;
  EXPECT_EQ(schedule(*p, &bytes), uint32_t{HIRA_RUN});
  hira_cmd other = command(*b_, kSecond);  // VM b has no quota
  other.amount[memory] = 1ll << 40;
  EXPECT_EQ(schedule(*p, &other), uint32_t{HIRA_RUN});
}

TEST_F(PolicyTest, RateLimitHoldsCallsPastTheRate) {
  a_->limits[HIRA_RC_CALLS] = 10;  // 10 calls a second
  auto p = load("rate_limit");
  ASSERT_TRUE(p);
  uint64_t now = 5 * kSecond;
  int ran = 0;
  for (int i = 0; i < 12; ++i) {
    hira_cmd c = command(*a_, now);
    if (schedule(*p, &c) != HIRA_RUN) {
      EXPECT_GT(c.delay_ns, 0u);
      EXPECT_LE(c.delay_ns, kSecond / 4);
      break;
    }
    c.hook = HIRA_HOOK_CONSUME;
    EXPECT_TRUE(p->consume(&c));
    ++ran;
  }
  EXPECT_EQ(ran, 10);                                // a second's worth of burst, then waits
  hira_cmd later = command(*a_, now + kSecond / 5);  // 2 calls' worth later
  EXPECT_EQ(schedule(*p, &later), uint32_t{HIRA_RUN});
  hira_cmd other = command(*b_, now);
  EXPECT_EQ(schedule(*p, &other), uint32_t{HIRA_RUN});  // b is not limited
}

TEST_F(PolicyTest, WfqHoldsTheVmOverItsShare) {
  auto p = load("wfq_fixed");
  ASSERT_TRUE(p);
  const uint64_t t = 10 * kSecond;
  // Both VMs active; a used 300 ms of device time, b 100 ms.
  both_active(*p, t);
  consume_device_time(*p, *a_, t + 1, 300000000);
  consume_device_time(*p, *b_, t + 1, 100000000);
  // Nobody else waits for the device: a, over its share, still runs (the
  // device would idle), and b's device work waits for a's turn.
  wait_behind(*p, *a_, *b_, t + 2);
  // Now b waits: a is held, b runs.
  hira_cmd ca = command(*a_, t + 5);
  EXPECT_EQ(schedule(*p, &ca), uint32_t{HIRA_WAIT});
  EXPECT_EQ(ca.delay_ns, 5000000u);
  hira_cmd cb = command(*b_, t + 6);
  EXPECT_EQ(schedule(*p, &cb), uint32_t{HIRA_RUN});
  // b's turn ends: b sends its next work at once, so a still waits; once b
  // has sent nothing for 10 ms, a runs again.
  consume_device_time(*p, *b_, t + 7, 1);
  ca = command(*a_, t + 8);
  EXPECT_EQ(schedule(*p, &ca), uint32_t{HIRA_WAIT});
  ca = command(*a_, t + 7 + 10000001);
  EXPECT_EQ(schedule(*p, &ca), uint32_t{HIRA_RUN});
}

TEST_F(PolicyTest, TheDeviceGoesToOneVmAtATime) {
  auto p = load("wfq_fixed");
  ASSERT_TRUE(p);
  const uint64_t t = 10 * kSecond;
  hira_cmd ca = command(*a_, t);  // a launches a kernel: its turn
  EXPECT_EQ(schedule(*p, &ca), uint32_t{HIRA_RUN});
  hira_cmd cb = command(*b_, t + 1);  // b's kernel waits for the turn
  EXPECT_EQ(schedule(*p, &cb), uint32_t{HIRA_WAIT});
  EXPECT_EQ(cb.delay_ns, 2000000u);
  cb = command(*b_, t + 1, false);  // what is not device work goes
  EXPECT_EQ(schedule(*p, &cb), uint32_t{HIRA_RUN});
  ca = command(*a_, t + 2);  // a's own clFinish goes in its turn
  EXPECT_EQ(schedule(*p, &ca), uint32_t{HIRA_RUN});
  consume_device_time(*p, *a_, t + 3, 1000000);  // ... and returns: the turn ends
  cb = command(*b_, t + 4);
  EXPECT_EQ(schedule(*p, &cb), uint32_t{HIRA_RUN});
  ca = command(*a_, t + 5);
  EXPECT_EQ(schedule(*p, &ca), uint32_t{HIRA_WAIT});
  // b never waits for its work: after the quantum a takes the device.
  ca = command(*a_, t + 4 + 20000000);
  EXPECT_EQ(schedule(*p, &ca), uint32_t{HIRA_RUN});
  // An async measured call (a launch) does not end a turn; a wait does.
  hira_cmd launch = command(*a_, t + 4 + 20000001);
  launch.hook = HIRA_HOOK_CONSUME;
  launch.async = 1;
  launch.amount[HIRA_RC_DEVICE_TIME] = 1000;
  EXPECT_TRUE(p->consume(&launch));
  cb = command(*b_, t + 4 + 20000002);
  EXPECT_EQ(schedule(*p, &cb), uint32_t{HIRA_WAIT});
}

TEST_F(PolicyTest, WfqHonoursShares) {
  a_->weight = 3;  // a may use three times what b does
  auto p = load("wfq_fixed");
  ASSERT_TRUE(p);
  const uint64_t t = 10 * kSecond;
  both_active(*p, t);
  consume_device_time(*p, *a_, t + 1, 280000000);
  consume_device_time(*p, *b_, t + 1, 100000000);
  wait_behind(*p, *a_, *b_, t + 2);  // b waits for the device
  hira_cmd ca = command(*a_, t + 5);
  EXPECT_EQ(schedule(*p, &ca), uint32_t{HIRA_RUN});  // 74% < 75%
  consume_device_time(*p, *a_, t + 6, 40000000);     // its turn ends; b still waits
  ca = command(*a_, t + 7);
  EXPECT_EQ(schedule(*p, &ca), uint32_t{HIRA_WAIT});  // 76% > 75%
}

TEST_F(PolicyTest, OrderedGivesTheFreeDeviceToTheWaitingVmFurthestBehind) {
  Vm &c = vms_.add("c");
  for (const char *name : {"wfq_ordered", "wfq_fixed"}) {
    auto p = load(name);
    ASSERT_TRUE(p);
    const uint64_t t = 10 * kSecond;
    // Three VMs, none over its share by more than the slack: a used
    // 101 ms, b 100 ms, c 99 ms.
    both_active(*p, t);
    hira_cmd cc = command(c, t, false);
    EXPECT_EQ(schedule(*p, &cc), uint32_t{HIRA_RUN});
    consume_device_time(*p, *a_, t + 1, 101000000);
    consume_device_time(*p, *b_, t + 1, 100000000);
    consume_device_time(*p, c, t + 1, 99000000);
    // b has the device; c waits for it; b's turn ends.
    wait_behind(*p, *b_, c, t + 2);
    // a asks first. wfq_ordered: c is further behind, so a waits briefly
    // and c runs; wfq_fixed: whoever asks first.
    hira_cmd ca = command(*a_, t + 5);
    const bool ordered = std::string(name) == "wfq_ordered";
    EXPECT_EQ(schedule(*p, &ca), ordered ? uint32_t{HIRA_WAIT} : uint32_t{HIRA_RUN}) << name;
    if (!ordered) continue;
    EXPECT_EQ(ca.delay_ns, 2000000u);
    cc = command(c, t + 6);
    EXPECT_EQ(schedule(*p, &cc), uint32_t{HIRA_RUN});
    // a's turn comes when c's ends.
    consume_device_time(*p, c, t + 7, 1000000);
    ca = command(*a_, t + 8);
    EXPECT_EQ(schedule(*p, &ca), uint32_t{HIRA_RUN});
  }
}

TEST_F(PolicyTest, AimdDelayGrowsAdditivelyAndHalves) {
  auto p = load("wfq-aimd");
  ASSERT_TRUE(p);
  const uint64_t t = 10 * kSecond;
  both_active(*p, t);
  hira_cmd ca{};
  consume_device_time(*p, *a_, t + 1, 300000000);
  consume_device_time(*p, *b_, t + 1, 100000000);
  wait_behind(*p, *a_, *b_, t + 2);  // b waits for the device
  for (uint64_t i = 1; i <= 3; ++i) {
    ca = command(*a_, t + 4 + i);
    ASSERT_EQ(schedule(*p, &ca), uint32_t{HIRA_WAIT});
    EXPECT_EQ(ca.delay_ns, i * 1000000u);
  }
  hira_cmd cb = command(*b_, t + 9);  // b takes the device and catches up
  ASSERT_EQ(schedule(*p, &cb), uint32_t{HIRA_RUN});
  consume_device_time(*p, *b_, t + 10, 400000000);
  ca = command(*a_, t + 11);
  EXPECT_EQ(schedule(*p, &ca), uint32_t{HIRA_RUN});
  // a over again: while b does not wait a runs (its delay halves again,
  // 1.5 -> 0.75 ms); once b waits, a is held for 0.75 + 1 ms.
  consume_device_time(*p, *a_, t + 12, 400000000);
  const uint64_t later = t + 10 + 10000001;  // b's turn (ended at t + 10) is 10 ms old
  wait_behind(*p, *a_, *b_, later);
  ca = command(*a_, later + 3);
  ASSERT_EQ(schedule(*p, &ca), uint32_t{HIRA_WAIT});
  EXPECT_EQ(ca.delay_ns, 1750000u);
}

TEST_F(PolicyTest, TheVerifierRefusesAPolicyThatCouldHang) {
  std::string error;
  EXPECT_FALSE(Policy::load(test_policy("unbounded_loop"), &error));
  EXPECT_NE(error.find("unbounded_loop.bpf.o"), std::string::npos) << error;
  // The kernel's own words reach the operator.
  EXPECT_NE(error.find("verifier"), std::string::npos) << error;
  EXPECT_TRUE(error.find("loop") != std::string::npos ||
              error.find("too large") != std::string::npos ||
              error.find("back-edge") != std::string::npos)
      << error;
}

TEST_F(PolicyTest, TheVerifierRefusesAPolicyThatCouldCrash) {
  std::string error;
  EXPECT_FALSE(Policy::load(test_policy("out_of_bounds"), &error));
  EXPECT_NE(error.find("map_value_or_null"), std::string::npos) << error;
}

TEST_F(PolicyTest, NotAPolicyIsRefusedClearly) {
  std::string error;
  EXPECT_FALSE(Policy::load(test::build_dir() + "/bin/hira-router", &error));
  EXPECT_NE(error.find("hira-router"), std::string::npos);
  EXPECT_FALSE(Policy::load("/nonexistent.bpf.o", &error));
  EXPECT_NE(error.find("/nonexistent.bpf.o"), std::string::npos);
}

TEST_F(PolicyTest, TheStrictestVerdictWins) {
  a_->limits[HIRA_RC_CALLS] = 1;
  std::string error;
  auto set = PolicySet::load({"rate_limit", test_policy("refuse_odd_calls")}, shipped(), vms_, ids_,
                             &error);
  ASSERT_TRUE(set) << error;
  hira_cmd c = command(*a_, 7 * kSecond);
  c.func = 2;
  EXPECT_EQ(set->schedule(&c).verdict, uint32_t{HIRA_RUN});
  set->consume(&c);
  c.func = 4;
  EXPECT_EQ(set->schedule(&c).verdict, uint32_t{HIRA_WAIT});  // rate spent
  c.func = 3;
  const PolicyVerdict v = set->schedule(&c);
  EXPECT_EQ(v.verdict, uint32_t{HIRA_REFUSE});  // a refusal beats a wait
  EXPECT_EQ(v.policy, "refuse_odd_calls.bpf.o");
  EXPECT_GE(set->runs.load(), 6u);
}

TEST_F(PolicyTest, DeviceWorkHooksCostNothingOnOtherCommands) {
  std::string error;
  auto set = PolicySet::load({"wfq_fixed"}, shipped(), vms_, ids_, &error);
  ASSERT_TRUE(set) << error;
  hira_cmd query = command(*a_, kSecond, false);  // clGetDeviceInfo, say
  EXPECT_EQ(set->schedule(&query).verdict, uint32_t{HIRA_RUN});
  set->consume(&query);
  EXPECT_EQ(set->runs.load(), 0u);
  hira_cmd launch = command(*a_, kSecond);
  EXPECT_EQ(set->schedule(&launch).verdict, uint32_t{HIRA_RUN});
  set->consume(&launch);
  EXPECT_EQ(set->runs.load(), 2u);
}

TEST(PolicyOptions, AmountsAndTheirUnits) {
  EXPECT_EQ(parse_amount("80M"), uint64_t{80} << 20);
  EXPECT_EQ(parse_amount("2G"), uint64_t{2} << 30);
  EXPECT_EQ(parse_amount("1000"), 1000u);
  EXPECT_EQ(parse_amount("5ms"), 5000000u);
  EXPECT_EQ(parse_amount("100MB"), 100000000u);
  EXPECT_FALSE(parse_amount(""));
  EXPECT_FALSE(parse_amount("-1"));
  EXPECT_FALSE(parse_amount("12X"));
  EXPECT_FALSE(parse_amount("99999999999999999999"));
  EXPECT_FALSE(parse_amount("20000000T"));
}

TEST(PolicyOptions, SharesAndQuotasNameKnownVmsAndResources) {
  ResourceIds ids;
  VmTable vms;
  vms.add("vm1");
  std::string error;
  PolicyOptions o;
  o.quotas = {"vm2:calls=10"};
  EXPECT_TRUE(configure_vms(o, ids, &vms, &error).empty());
  EXPECT_NE(error.find("no VM named 'vm2'"), std::string::npos) << error;
  EXPECT_NE(error.find("vm1"), std::string::npos) << error;
  error.clear();
  o.quotas = {"vm1:gpu_hours=10"};
  configure_vms(o, ids, &vms, &error);
  EXPECT_NE(error.find("no resource 'gpu_hours'"), std::string::npos) << error;
  error.clear();
  o.quotas = {"vm1:calls=1000"};
  o.shares = {"vm1=3"};
  const auto policies = configure_vms(o, ids, &vms, &error);
  EXPECT_EQ(error, "");
  EXPECT_EQ(policies, (std::vector<std::string>{"wfq_fixed", "rate_limit"}));
  EXPECT_EQ(vms.find("vm1")->weight, 3u);
  EXPECT_EQ(vms.find("vm1")->limits.at(HIRA_RC_CALLS), 1000u);
  o.shares = {"vm1=0"};
  configure_vms(o, ids, &vms, &error);
  EXPECT_NE(error.find("WEIGHT"), std::string::npos);
}

}  // namespace
}  // namespace hira::router
