// Admission: what the policies in force say about one command of a VM, and
// what they are told a VM consumed. Builds the hook context (policies/
// hira_policy.h) from the command's generated accounting and the VM's ledger.
#pragma once

#include <atomic>
#include <memory>

#include "hira/router_module.h"
#include "policy.h"
#include "resource_ids.h"
#include "vm.h"

namespace hira::router {

class Admission {
 public:
  Admission(const VmTable &vms, const ResourceIds &ids) : vms_(vms), ids_(ids) {}

  // The policies in force; swapped at run time (commands being admitted
  // finish under the set they started with).
  void set_policies(std::shared_ptr<const PolicySet> p) {
    enforcing_.store(p && !p->empty(), std::memory_order_release);
    policies_.store(std::move(p));
  }
  // Whether any policy is in force: the one check a command pays without
  // policies (the shared pointer's load takes a lock every guest would share).
  bool enforcing() const { return enforcing_.load(std::memory_order_acquire); }
  std::shared_ptr<const PolicySet> policies() const { return policies_.load(); }

  // The schedule hooks' verdict on a command (HIRA_RUN without policies).
  PolicyVerdict judge(const Vm &vm, const RouterModule &m, uint32_t func, bool async,
                      const CallAccounting &a, uint64_t bytes) const;
  // Tells the consume hooks what an admitted command takes.
  void admitted(const Vm &vm, const RouterModule &m, uint32_t func, bool async,
                const CallAccounting &a, uint64_t bytes) const;
  // Tells them what an API server measured of a call of `func` (router-wide
  // resource id).
  void measured(const Vm &vm, const RouterModule &m, uint32_t func, bool async, uint32_t resource,
                int64_t amount) const;

 private:
  // The policies in force, or null (the cheap check first).
  std::shared_ptr<const PolicySet> in_force() const;
  hira_cmd context(const Vm &vm, uint32_t hook, const RouterModule &m, uint32_t func,
                   bool async) const;
  void add_amounts(hira_cmd *c, const RouterModule &m, const CallAccounting &a,
                   uint64_t bytes) const;
  const VmTable &vms_;
  const ResourceIds &ids_;
  std::atomic<std::shared_ptr<const PolicySet>> policies_;
  std::atomic<bool> enforcing_{false};
};

}  // namespace hira::router
