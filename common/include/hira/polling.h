// Polling before sleeping: a wake-up costs more than a synchronous call's
// whole work, so a thread that expects an answer soon looks for it a while
// before it sleeps in the kernel. It yields the CPU between looks, so that
// on a machine with few cores the thread that would answer can run (without
// yielding, polling on 2 vCPUs doubled a call's latency; with it, polling
// cut it to a fifth).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace hira {

// How long a thread polls before sleeping: $HIRA_SPIN_US (0 turns polling
// off, at most 10 ms), else 2 ms with 8 cores or more, 50 us with fewer.
int64_t spin_budget_ns();

// How long polling only spins before it starts yielding: a yield is a
// system call (a microsecond in a VM), too coarse for an answer that comes
// in a few hundred nanoseconds where cores are free; where they are not,
// spinning without yielding delays the thread that would answer.
int64_t spin_only_ns();

// A polling budget that follows what polling achieves for one waiter. It
// grows (doubling, up to spin_budget_ns()) when a wait ends within twice
// the maximum budget, so a peer that answers fast is polled for; it shrinks
// by a quarter when a wait runs longer, so a peer that keeps answering
// slowly (a guest in an emulated VM, a server between a guest's bursts)
// soon costs no CPU spinning.
class AdaptiveSpin {
 public:
  AdaptiveSpin() : ns_(spin_budget_ns()) {}
  int64_t budget() const { return ns_; }
  void waited(std::chrono::nanoseconds how_long) {
    const int64_t max = spin_budget_ns();
    if (how_long.count() <= 2 * max) {
      ns_ = std::min(max, ns_ * 2 + 1000);
    } else {
      ns_ -= ns_ / 4;  // gently: one preempted wait must not end polling
    }
  }

 private:
  int64_t ns_;
};

// One look's pause: gives the CPU to whoever else is runnable.
void poll_pause();
inline void cpu_relax() { __builtin_ia32_pause(); }

// Polls `ready` for up to `budget_ns`; true once it holds.
template <class Ready>
bool poll_for(Ready ready, int64_t budget_ns) {
  if (ready()) return true;
  if (budget_ns <= 0) return false;
  const auto start = std::chrono::steady_clock::now();
  const int64_t spin_ns = std::min(budget_ns, spin_only_ns());
  const auto spin_until = start + std::chrono::nanoseconds(spin_ns);
  const auto until = start + std::chrono::nanoseconds(budget_ns);
  while (spin_ns > 0) {
    // Spinning: the clock is read every 64 looks only.
    for (int i = 0; i < 64; ++i) {
      cpu_relax();
      if (ready()) return true;
    }
    if (std::chrono::steady_clock::now() >= spin_until) break;
  }
  while (std::chrono::steady_clock::now() < until) {
    poll_pause();
    if (ready()) return true;
  }
  return false;
}

}  // namespace hira
