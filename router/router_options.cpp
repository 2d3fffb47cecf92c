#include "router_options.h"

#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdint>

namespace hira::router {

void add_policy_options(CLI::App &app, PolicyOptions *o) {
  app.add_option(
         "--policy", o->policies,
         "eBPF policy to enforce: an object file (clang -target bpf) or a shipped one "
         "(wfq_fixed, wfq_aimd, wfq_ordered, quota, rate_limit); repeatable; SIGHUP reloads them")
      ->group("Enforcement");
  app.add_option("--share", o->shares,
                 "VM=WEIGHT: the VM's share of device time (default 1); loads wfq_fixed unless "
                 "a wfq policy is named")
      ->group("Enforcement");
  app.add_option("--quota", o->quotas,
                 "VM:RESOURCE=AMOUNT: most the VM may hold of a continuous resource "
                 "(device_memory=80M), or use per second of an instantaneous one (calls=1000, "
                 "bytes=100M, device_time=500ms); loads the quota / rate_limit policies")
      ->group("Enforcement");
  app.add_option("--metrics", o->metrics,
                 "HOST:PORT: serve per-VM usage in the Prometheus text format at /metrics")
      ->group("Enforcement");
  app.add_option("--policy-dir", o->policy_dir,
                 "where the shipped policies are (default: ../policies beside the router)")
      ->group("Enforcement");
}

std::optional<uint64_t> parse_amount(const std::string &text) {
  size_t used = 0;
  unsigned long long n = 0;
  try {
    if (text.empty() || text[0] == '-') return std::nullopt;
    n = std::stoull(text, &used);
  } catch (const std::exception &) {
    return std::nullopt;
  }
  const std::string unit = text.substr(used);
  static const std::pair<const char *, uint64_t> kUnits[] = {{"", 1},
                                                             {"K", 1ull << 10},
                                                             {"M", 1ull << 20},
                                                             {"G", 1ull << 30},
                                                             {"T", 1ull << 40},
                                                             {"ns", 1},
                                                             {"us", 1000},
                                                             {"ms", 1000000},
                                                             {"s", 1000000000},
                                                             {"k", 1000},
                                                             {"KB", 1000},
                                                             {"MB", 1000000},
                                                             {"GB", 1000000000},
                                                             {"KiB", 1ull << 10},
                                                             {"MiB", 1ull << 20},
                                                             {"GiB", 1ull << 30}};
  for (const auto &[name, scale] : kUnits) {
    if (unit != name) continue;
    if (n > UINT64_MAX / scale) return std::nullopt;
    return n * scale;
  }
  return std::nullopt;
}

std::vector<std::string> configure_vms(const PolicyOptions &o, const ResourceIds &ids, VmTable *vms,
                                       std::string *error) {
  std::vector<std::string> policies = o.policies;
  // Is a policy whose name starts so (wfq_, quota, ...) among those named?
  auto named = [&](const std::string &prefix) {
    return std::any_of(policies.begin(), policies.end(), [&](const std::string &p) {
      std::string base = p.substr(p.rfind('/') + 1);
      std::replace(base.begin(), base.end(), '-', '_');
      return base.rfind(prefix, 0) == 0;
    });
  };
  auto vm_named = [&](const std::string &name, const std::string &arg) -> Vm * {
    Vm *vm = vms->find(name);
    if (vm == nullptr) {
      std::string known;
      for (const auto &v : vms->all()) known += (known.empty() ? "" : ", ") + v->name;
      *error =
          arg + ": no VM named '" + name + "' (the VMs are the --listen labels: " + known + ")";
    }
    return vm;
  };
  for (const auto &s : o.shares) {
    const auto eq = s.find('=');
    const auto weight = eq == std::string::npos ? std::nullopt : parse_amount(s.substr(eq + 1));
    if (!weight || *weight == 0 || *weight > 1000000) {
      *error = "--share " + s + ": expected VM=WEIGHT with WEIGHT 1..1000000";
      return {};
    }
    Vm *vm = vm_named(s.substr(0, eq), "--share " + s);
    if (vm == nullptr) return {};
    vm->weight = static_cast<uint32_t>(*weight);
  }
  bool held = false, rated = false;
  for (const auto &q : o.quotas) {
    const auto colon = q.find(':');
    const auto eq = q.find('=', colon == std::string::npos ? 0 : colon);
    if (colon == std::string::npos || eq == std::string::npos) {
      *error = "--quota " + q + ": expected VM:RESOURCE=AMOUNT (e.g. vm1:device_memory=512M)";
      return {};
    }
    Vm *vm = vm_named(q.substr(0, colon), "--quota " + q);
    if (vm == nullptr) return {};
    const std::string rc_name = q.substr(colon + 1, eq - colon - 1);
    const auto rc = ids.find(rc_name);
    if (!rc) {
      std::string known;
      for (uint32_t r = 0; r < ids.count(); ++r) known += (r ? ", " : "") + ids.name(r);
      *error = "--quota " + q + ": no resource '" + rc_name + "' (known: " + known + ")";
      return {};
    }
    const auto amount = parse_amount(q.substr(eq + 1));
    if (!amount) {
      *error = "--quota " + q + ": AMOUNT is a number with an optional unit (K, M, G; ms, s)";
      return {};
    }
    vm->limits[*rc] = *amount;
    (ids.continuous(*rc) ? held : rated) = true;
  }
  if (!o.shares.empty() && !named("wfq_")) policies.push_back("wfq_fixed");
  if (held && !named("quota")) policies.push_back("quota");
  if (rated && !named("rate_limit")) policies.push_back("rate_limit");
  return policies;
}

std::string shipped_policy_dir(const PolicyOptions &o) {
  if (!o.policy_dir.empty()) return o.policy_dir;
  char exe[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return "policies";
  std::string dir(exe, static_cast<size_t>(n));
  dir = dir.substr(0, dir.rfind('/'));
  return dir.substr(0, dir.rfind('/')) + "/policies";
}

}  // namespace hira::router
