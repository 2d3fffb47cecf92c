#include "policy.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstring>
#include <mutex>

namespace hira::router {

namespace {

// libbpf reports through one process-wide callback: while a policy loads,
// what it says (the verifier's log among it) is collected for the error.
std::mutex g_log_mu;
std::string *g_log = nullptr;

int collect_log(enum libbpf_print_level level, const char *format, va_list args) {
  if (level == LIBBPF_DEBUG || g_log == nullptr) return 0;
  char line[4096];
  const int n = std::vsnprintf(line, sizeof(line), format, args);
  if (n > 0 && g_log->size() < (64u << 10)) g_log->append(line);
  return 0;
}

std::string why_not_loaded(int err, const std::string &log) {
  // EPERM: no privilege; the verifier's refusals come as EACCES or EINVAL.
  if (err == EPERM) {
    return "the kernel refused to load eBPF programs (" + std::string(std::strerror(err)) +
           "): policies need root, or CAP_BPF and CAP_PERFMON; without --policy, --share and "
           "--quota the router serves guests without policies";
  }
  std::string s = err == EACCES ? "the kernel's verifier refused it" : std::strerror(err);
  if (!log.empty()) s += "; libbpf and the verifier said:\n" + log;
  return s;
}

int map_fd(bpf_object *obj, const char *name) {
  const bpf_map *m = bpf_object__find_map_by_name(obj, name);
  return m == nullptr ? -1 : bpf_map__fd(m);
}

int prog_fd(bpf_object *obj, const char *name) {
  const bpf_program *p = bpf_object__find_program_by_name(obj, name);
  return p == nullptr ? -1 : bpf_program__fd(p);
}

}  // namespace

std::unique_ptr<Policy> Policy::load(const std::string &path, std::string *error) {
  std::unique_ptr<Policy> p(new Policy);
  p->name_ = path.substr(path.rfind('/') + 1);
  std::string log;
  {
    std::lock_guard lock(g_log_mu);
    g_log = &log;
    const auto old = libbpf_set_print(collect_log);
    p->obj_ = bpf_object__open_file(path.c_str(), nullptr);
    int err = p->obj_ == nullptr ? errno : 0;
    if (err == 0) {
      // Every program is a hook: syscall programs run by BPF_PROG_TEST_RUN.
      bpf_program *prog = nullptr;
      bpf_object__for_each_program(prog, p->obj_) {
        if (bpf_program__type(prog) != BPF_PROG_TYPE_SYSCALL) {
          log += std::string("program ") + bpf_program__name(prog) +
                 " is not SEC(\"syscall\"): hira runs hooks with BPF_PROG_TEST_RUN\n";
          err = EINVAL;
        }
      }
    }
    // The verifier gives up with EAGAIN when a signal arrives while it
    // works (an operator's SIGHUPs): it is asked again.
    for (int attempt = 0; err == 0 && attempt < 5; ++attempt) {
      if (bpf_object__load(p->obj_) == 0) break;
      err = errno;
      if (err != EAGAIN || attempt == 4) break;
      bpf_object__close(p->obj_);
      log.clear();
      p->obj_ = bpf_object__open_file(path.c_str(), nullptr);
      err = p->obj_ == nullptr ? errno : 0;
    }
    libbpf_set_print(old);
    g_log = nullptr;
    if (err != 0) {
      *error = path + ": " + why_not_loaded(err, log);
      return nullptr;
    }
  }
  // A hook named *_device_work sees only the spec's device work (launches,
  // transfers, waits): the router skips it for every other command.
  p->schedule_fd_ = prog_fd(p->obj_, "schedule");
  p->consume_fd_ = prog_fd(p->obj_, "consume");
  if (p->schedule_fd_ < 0 && (p->schedule_fd_ = prog_fd(p->obj_, "schedule_device_work")) >= 0) {
    p->schedule_device_work_only_ = true;
  }
  if (p->consume_fd_ < 0 && (p->consume_fd_ = prog_fd(p->obj_, "consume_device_work")) >= 0) {
    p->consume_device_work_only_ = true;
  }
  p->shares_fd_ = map_fd(p->obj_, "hira_shares");
  p->limits_fd_ = map_fd(p->obj_, "hira_limits");
  if (p->schedule_fd_ < 0 && p->consume_fd_ < 0) {
    *error = path +
             ": no program named 'schedule' or 'consume' (or their _device_work forms): the "
             "hooks a policy has";
    return nullptr;
  }
  return p;
}

Policy::~Policy() {
  if (obj_ != nullptr) bpf_object__close(obj_);
}

bool Policy::configure(const VmTable &vms, const ResourceIds &ids, std::string *error) {
  for (const auto &vm : vms.all()) {
    const uint32_t key = vm->index;
    if (shares_fd_ >= 0 && bpf_map_update_elem(shares_fd_, &key, &vm->weight, BPF_ANY) != 0) {
      *error = name_ + ": cannot set hira_shares: " + std::strerror(errno);
      return false;
    }
    if (limits_fd_ < 0) continue;
    for (const auto &[rc, amount] : vm->limits) {
      const uint32_t k = vm->index * kMaxResources + rc;
      const hira_limit l{amount, 1, ids.continuous(rc) ? 1u : 0u};
      if (bpf_map_update_elem(limits_fd_, &k, &l, BPF_ANY) != 0) {
        *error = name_ + ": cannot set hira_limits: " + std::strerror(errno);
        return false;
      }
    }
  }
  return true;
}

bool Policy::run(int fd, hira_cmd *cmd, uint32_t *ret) const {
  if (fd < 0) return false;
  // A syscall program's context is copied in and back out (ctx_in).
  LIBBPF_OPTS(bpf_test_run_opts, opts, .ctx_in = cmd, .ctx_size_in = sizeof(*cmd));
  if (bpf_prog_test_run_opts(fd, &opts) != 0) return false;
  *ret = opts.retval;
  return true;
}

std::shared_ptr<PolicySet> PolicySet::load(const std::vector<std::string> &paths,
                                           const std::string &shipped_dir, const VmTable &vms,
                                           const ResourceIds &ids, std::string *error) {
  auto set = std::make_shared<PolicySet>();
  for (const auto &name : paths) {
    auto p = Policy::load(resolve_policy(name, shipped_dir), error);
    if (!p || !p->configure(vms, ids, error)) return nullptr;
    set->policies_.push_back(std::move(p));
  }
  return set;
}

namespace {
// Refusals beat waits; the longest wait wins among waits.
int strictness(uint32_t v) {
  switch (v) {
    case HIRA_OVER_QUOTA:
      return 3;
    case HIRA_REFUSE:
      return 2;
    case HIRA_WAIT:
      return 1;
    default:
      return 0;
  }
}
}  // namespace

PolicyVerdict PolicySet::schedule(hira_cmd *cmd) const {
  PolicyVerdict v;
  const auto start = std::chrono::steady_clock::now();
  for (const auto &p : policies_) {
    if (!p->has_schedule() || (p->schedule_device_work_only() && cmd->device_work == 0)) continue;
    hira_cmd c = *cmd;
    uint32_t r = HIRA_RUN;
    runs.fetch_add(1, std::memory_order_relaxed);
    if (!p->schedule(&c, &r)) {
      failures.fetch_add(1, std::memory_order_relaxed);
      continue;  // the kernel would not run it: the policy cannot hold guests up
    }
    if (r > HIRA_OVER_QUOTA) r = HIRA_REFUSE;  // an answer outside the contract
    if (strictness(r) > strictness(v.verdict) ||
        (r == HIRA_WAIT && v.verdict == HIRA_WAIT && c.delay_ns > v.delay_ns)) {
      v.verdict = r;
      v.delay_ns = c.delay_ns;
      v.resource = c.resource;
      v.policy = p->name();
    }
  }
  add_run_time(start);
  return v;
}

void PolicySet::consume(hira_cmd *cmd) const {
  const auto start = std::chrono::steady_clock::now();
  for (const auto &p : policies_) {
    if (!p->has_consume() || (p->consume_device_work_only() && cmd->device_work == 0)) continue;
    hira_cmd c = *cmd;
    runs.fetch_add(1, std::memory_order_relaxed);
    if (!p->consume(&c)) failures.fetch_add(1, std::memory_order_relaxed);
  }
  add_run_time(start);
}

void PolicySet::add_run_time(std::chrono::steady_clock::time_point start) const {
  run_ns.fetch_add(static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                             std::chrono::steady_clock::now() - start)
                                             .count()),
                   std::memory_order_relaxed);
}

std::vector<std::string> PolicySet::names() const {
  std::vector<std::string> v;
  for (const auto &p : policies_) v.push_back(p->name());
  return v;
}

std::string resolve_policy(const std::string &name_or_path, const std::string &shipped_dir) {
  if (name_or_path.find('/') != std::string::npos || name_or_path.ends_with(".o")) {
    return name_or_path;
  }
  std::string name = name_or_path;
  for (auto &c : name) {
    if (c == '-') c = '_';
  }
  return shipped_dir + "/" + name + ".bpf.o";
}

}  // namespace hira::router
