// The router's enforcement options (--policy, --share, --quota, --metrics),
// shared by hira-router and the commands that start one (hira run, hira vm),
// and how they configure the VMs.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "resource_ids.h"
#include "vm.h"

namespace hira::router {

struct PolicyOptions {
  std::vector<std::string> policies;  // paths or shipped names
  std::vector<std::string> shares;    // VM=WEIGHT
  std::vector<std::string> quotas;    // VM:RESOURCE=AMOUNT
  std::string metrics;                // HOST:PORT
  std::string policy_dir;             // where shipped policies are
};

void add_policy_options(CLI::App &app, PolicyOptions *o);

// Applies --share and --quota to the VMs; the policies to load (those named,
// plus the shipped ones --share and --quota need). Sets *error on a bad option.
std::vector<std::string> configure_vms(const PolicyOptions &o, const ResourceIds &ids, VmTable *vms,
                                       std::string *error);

// "80M", "2G", "1000", "5ms" (device time, in ns): the amount, or nullopt.
std::optional<uint64_t> parse_amount(const std::string &text);

std::string shipped_policy_dir(const PolicyOptions &o);

}  // namespace hira::router
