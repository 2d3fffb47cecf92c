#include "admission.h"

#include <time.h>

namespace hira::router {

namespace {
uint64_t monotonic_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}
}  // namespace

std::shared_ptr<const PolicySet> Admission::in_force() const {
  if (!enforcing()) return nullptr;
  auto set = policies_.load();
  return set && !set->empty() ? set : nullptr;
}

hira_cmd Admission::context(const Vm &vm, uint32_t hook, const RouterModule &m, uint32_t func,
                            bool async) const {
  hira_cmd c{};
  c.hook = hook;
  c.vm = vm.index;
  c.vm_count = vms_.count();
  c.func = func;
  c.device_work = func < m.function_count ? m.device_work[func] : 0;
  c.async = async ? 1 : 0;
  c.now_ns = monotonic_ns();
  for (uint32_t r = 0; r < kMaxResources; ++r) {
    c.held[r] = vm.ledger.held[r].load(std::memory_order_relaxed);
  }
  return c;
}

void Admission::add_amounts(hira_cmd *c, const RouterModule &m, const CallAccounting &a,
                            uint64_t bytes) const {
  c->amount[HIRA_RC_CALLS] = 1;
  c->amount[HIRA_RC_BYTES] = static_cast<int64_t>(bytes);
  for (uint32_t i = 0; i < a.count && i < kMaxDeltas; ++i) {
    const ResourceDelta &d = a.deltas[i];
    if (d.by_handle || d.amount <= 0 || d.resource >= m.resource_count) continue;
    const uint32_t id = ids_.id(m, d.resource);
    if (id < kMaxResources) c->amount[id] += d.amount;
  }
}

PolicyVerdict Admission::judge(const Vm &vm, const RouterModule &m, uint32_t func, bool async,
                               const CallAccounting &a, uint64_t bytes) const {
  const auto set = in_force();
  if (!set) return {};
  hira_cmd c = context(vm, HIRA_HOOK_SCHEDULE, m, func, async);
  add_amounts(&c, m, a, bytes);
  return set->schedule(&c);
}

void Admission::admitted(const Vm &vm, const RouterModule &m, uint32_t func, bool async,
                         const CallAccounting &a, uint64_t bytes) const {
  const auto set = in_force();
  if (!set) return;
  hira_cmd c = context(vm, HIRA_HOOK_CONSUME, m, func, async);
  add_amounts(&c, m, a, bytes);
  set->consume(&c);
}

void Admission::measured(const Vm &vm, const RouterModule &m, uint32_t func, bool async,
                         uint32_t resource, int64_t amount) const {
  const auto set = in_force();
  if (!set || resource >= kMaxResources) return;
  hira_cmd c = context(vm, HIRA_HOOK_CONSUME, m, func, async);
  c.amount[resource] = amount;
  set->consume(&c);
}

}  // namespace hira::router
