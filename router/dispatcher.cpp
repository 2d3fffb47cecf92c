#include "dispatcher.h"

#include <algorithm>
#include <chrono>
#include <cstdio>

namespace hira::router {

namespace {
// However long a policy asks, a waiting command asks again this often (so a
// policy that is swapped, or whose state changed, is heard).
constexpr auto kMaxSleep = std::chrono::milliseconds(100);
// How long an allocation over quota waits for memory being released.
constexpr auto kReleaseWait = std::chrono::seconds(2);
// A hold longer than this is logged.
constexpr auto kLongHold = std::chrono::nanoseconds(std::chrono::milliseconds(500));
}  // namespace

wire::ReplyStatus Dispatcher::pass(Vm &vm, const RouterModule &m, uint32_t func, bool async,
                                   const CallAccounting &a, uint64_t bytes,
                                   const std::function<void()> &before_waiting) {
  if (!admission_.enforcing()) return wire::ReplyStatus::Ok;  // nothing to ask: no queue
  std::lock_guard turn(vm.queue);
  std::chrono::steady_clock::time_point waiting_since{};
  std::string last_waiting_policy;
  const auto start = std::chrono::steady_clock::now();
  for (;;) {
    // Read before the verdict: a release that completes in between has
    // already given its memory back when this says none is on its way.
    const uint32_t releasing = vm.ledger.releasing.load();
    PolicyVerdict v = admission_.judge(vm, m, func, async, a, bytes);
    // Over quota while objects the VM released are still being destroyed:
    // their memory is on its way back, so the command waits for it (a
    // while), as an allocation right after a release expects.
    if (v.verdict == HIRA_OVER_QUOTA && releasing != 0 &&
        std::chrono::steady_clock::now() - start < kReleaseWait) {
      v.verdict = HIRA_WAIT;
      v.delay_ns = 500000;
    }
    if (v.verdict != HIRA_WAIT) {
      if (waiting_since != std::chrono::steady_clock::time_point{}) {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                            std::chrono::steady_clock::now() - waiting_since)
                            .count();
        vm.ledger.queue_delay_ns.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
        // A command held this long is worth an operator's look (which
        // policy, which VM); said at most once a second per VM.
        if (ns > kLongHold.count() &&
            std::chrono::steady_clock::now() - vm.last_long_hold_said > std::chrono::seconds(1)) {
          vm.last_long_hold_said = std::chrono::steady_clock::now();
          std::fprintf(stderr, "hira-router: VM %s: %s waited %.0f ms for policy %s\n",
                       vm.name.c_str(), func < m.function_count ? m.function_names[func] : "?",
                       static_cast<double>(ns) / 1e6, last_waiting_policy.c_str());
        }
      }
      if (v.verdict == HIRA_RUN) {
        admission_.admitted(vm, m, func, async, a, bytes);
        return wire::ReplyStatus::Ok;
      }
      if (v.verdict == HIRA_OVER_QUOTA) {
        vm.ledger.refused_quota.fetch_add(1, std::memory_order_relaxed);
        return wire::ReplyStatus::OverQuota;
      }
      vm.ledger.refused_policy.fetch_add(1, std::memory_order_relaxed);
      return wire::ReplyStatus::Denied;
    }
    last_waiting_policy = v.policy;
    if (waiting_since == std::chrono::steady_clock::time_point{}) {
      waiting_since = std::chrono::steady_clock::now();
      vm.ledger.waits.fetch_add(1, std::memory_order_relaxed);
      before_waiting();
    }
    const auto sleep = std::min<std::chrono::nanoseconds>(
        std::chrono::nanoseconds(std::max<uint64_t>(v.delay_ns, 1000)), kMaxSleep);
    std::unique_lock lock(wake_mu_);
    const uint64_t seen = generation_;
    wake_.wait_for(lock, sleep, [&] { return generation_ != seen; });
  }
}

void Dispatcher::wake_all() {
  {
    std::lock_guard lock(wake_mu_);
    ++generation_;
  }
  wake_.notify_all();
}

}  // namespace hira::router
