// A VM as the router knows it: its identity (the listener or device its
// guests arrive on), its share of device time, its quotas, and the ledger of
// what its guest processes used. VMs are made at start-up and never go.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "resource_ids.h"

namespace hira::router {

// Counted without a lock (every command passes here).
struct VmLedger {
  std::atomic<uint64_t> calls{0};
  std::atomic<uint64_t> bytes_in{0};        // guest -> server
  std::atomic<uint64_t> bytes_out{0};       // server -> guest
  std::atomic<uint64_t> device_ns{0};       // measured by the API servers
  std::atomic<uint64_t> queue_delay_ns{0};  // commands held by policies
  std::atomic<uint64_t> waits{0};           // ... how many times
  std::atomic<uint64_t> refused_quota{0};
  std::atomic<uint64_t> refused_policy{0};
  std::atomic<uint32_t> guests{0};  // guest processes connected now
  // Objects released by their applications whose servers have not yet
  // reported them destroyed (what they hold still counts).
  std::atomic<uint32_t> releasing{0};
  std::array<std::atomic<int64_t>, kMaxResources> held{};   // continuous, now
  std::array<std::atomic<uint64_t>, kMaxResources> used{};  // instantaneous, in total
};

struct Vm {
  std::string name;
  uint32_t index = 0;
  uint32_t weight = 1;
  // Router-wide resource id -> limit (--quota).
  std::map<uint32_t, uint64_t> limits;
  VmLedger ledger;
  // The VM's queue: its commands pass admission one at a time, in order.
  std::mutex queue;
  std::chrono::steady_clock::time_point last_long_hold_said{};  // (queue held)
};

class VmTable {
 public:
  // The VM of that name, made if new (at start-up only: not thread-safe).
  Vm &add(const std::string &name);
  Vm *find(const std::string &name) const;
  const std::vector<std::unique_ptr<Vm>> &all() const { return vms_; }
  uint32_t count() const { return static_cast<uint32_t>(vms_.size()); }

 private:
  std::vector<std::unique_ptr<Vm>> vms_;
};

}  // namespace hira::router
