// eBPF policies: object files loaded with libbpf (the kernel's verifier
// checks each program, so an operator's policy cannot crash or hang the
// router) and run with BPF_PROG_TEST_RUN on a struct hira_cmd
// (policies/hira_policy.h says what the hooks see and may answer).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "hira_policy.h"
#include "resource_ids.h"
#include "vm.h"

struct bpf_object;

namespace hira::router {

struct PolicyVerdict {
  uint32_t verdict = HIRA_RUN;  // enum hira_verdict
  uint64_t delay_ns = 0;        // HIRA_WAIT
  uint32_t resource = 0;        // HIRA_OVER_QUOTA / HIRA_REFUSE
  std::string policy;           // who did not say HIRA_RUN
};

class Policy {
 public:
  // Loads and verifies `path`; null with *error (the verifier's log where
  // it refused a program) if it cannot.
  static std::unique_ptr<Policy> load(const std::string &path, std::string *error);
  ~Policy();
  Policy(const Policy &) = delete;
  Policy &operator=(const Policy &) = delete;

  // Fills hira_shares and hira_limits, where the policy has them.
  bool configure(const VmTable &vms, const ResourceIds &ids, std::string *error);
  // Runs a hook (false if the policy has none or the kernel refused the run).
  bool schedule(hira_cmd *cmd, uint32_t *verdict) const { return run(schedule_fd_, cmd, verdict); }
  bool consume(hira_cmd *cmd) const {
    uint32_t ignored = 0;
    return run(consume_fd_, cmd, &ignored);
  }
  bool has_schedule() const { return schedule_fd_ >= 0; }
  bool has_consume() const { return consume_fd_ >= 0; }
  // Its hooks are named *_device_work: they run for device work only.
  bool schedule_device_work_only() const { return schedule_device_work_only_; }
  bool consume_device_work_only() const { return consume_device_work_only_; }
  const std::string &name() const { return name_; }

 private:
  Policy() = default;
  bool run(int fd, hira_cmd *cmd, uint32_t *ret) const;
  std::string name_;
  bpf_object *obj_ = nullptr;
  int schedule_fd_ = -1;
  int consume_fd_ = -1;
  int shares_fd_ = -1;
  int limits_fd_ = -1;
  bool schedule_device_work_only_ = false;
  bool consume_device_work_only_ = false;
};

// The policies in force: run in order; the strictest verdict wins.
class PolicySet {
 public:
  // Loads every path (or shipped name, resolved in `shipped_dir`).
  static std::shared_ptr<PolicySet> load(const std::vector<std::string> &paths,
                                         const std::string &shipped_dir, const VmTable &vms,
                                         const ResourceIds &ids, std::string *error);
  bool empty() const { return policies_.empty(); }
  PolicyVerdict schedule(hira_cmd *cmd) const;
  void consume(hira_cmd *cmd) const;
  std::vector<std::string> names() const;

  // What running hooks cost (for the metrics).
  mutable std::atomic<uint64_t> runs{0};
  mutable std::atomic<uint64_t> run_ns{0};
  mutable std::atomic<uint64_t> failures{0};

 private:
  void add_run_time(std::chrono::steady_clock::time_point start) const;
  std::vector<std::unique_ptr<Policy>> policies_;
};

// A policy name the router ships (wfq_fixed, ...) or a path, as a path.
std::string resolve_policy(const std::string &name_or_path, const std::string &shipped_dir);

}  // namespace hira::router
