#include "hira/polling.h"

#include <sched.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace hira {

int64_t spin_budget_ns() {
  static const int64_t ns = [] {
    if (const char *v = std::getenv("HIRA_SPIN_US"); v != nullptr && *v != '\0') {
      return std::clamp<int64_t>(std::atoll(v), 0, 10000) * 1000;
    }
    // Where cores are free, long enough to cover a wait for the device
    // (CUDA's own waits spin there too): a sleeping waiter's wake-up cost
    // 10-15% on 100 us kernels synchronized every ten launches on the H200.
    // Where they are not, short: the CPU belongs to whoever would answer.
    return std::thread::hardware_concurrency() >= 8 ? int64_t{2000000} : int64_t{50000};
  }();
  return ns;
}

int64_t spin_only_ns() {
  static const int64_t ns = std::thread::hardware_concurrency() >= 8 ? 10000 : 0;
  return ns;
}

void poll_pause() { ::sched_yield(); }

}  // namespace hira
