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
    return int64_t{50000};
  }();
  return ns;
}

int64_t spin_only_ns() {
  static const int64_t ns = std::thread::hardware_concurrency() >= 8 ? 10000 : 0;
  return ns;
}

void poll_pause() { ::sched_yield(); }

}  // namespace hira
