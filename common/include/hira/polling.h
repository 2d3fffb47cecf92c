// Polling before sleeping: a wake-up costs more than a synchronous call's
// whole work, so a thread that expects an answer soon looks for it a while
// before it sleeps in the kernel. It yields the CPU between looks, so that
// on a machine with few cores the thread that would answer can run (without
// yielding, polling on 2 vCPUs doubled a call's latency; with it, polling
// cut it to a fifth).
#pragma once

#include <chrono>
#include <cstdint>

namespace hira {

// How long a thread polls before sleeping: $HIRA_SPIN_US (0 turns polling
// off), else 50 us.
int64_t spin_budget_ns();

// One look's pause: gives the CPU to whoever else is runnable.
void poll_pause();

// Polls `ready` for up to `budget_ns`; true once it holds.
template <class Ready>
bool poll_for(Ready ready, int64_t budget_ns) {
  if (ready()) return true;
  if (budget_ns <= 0) return false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::nanoseconds(budget_ns);
  do {
    poll_pause();
    if (ready()) return true;
  } while (std::chrono::steady_clock::now() < until);
  return false;
}

}  // namespace hira
