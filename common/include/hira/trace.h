// HIRA_TRACE=1 in a process's environment: hira's runtimes (guest library,
// API server) say on stderr what they do with calls, callbacks and data.
#pragma once

#include <cstdlib>

namespace hira {

inline bool tracing() {
  static const bool on = [] {
    const char *v = std::getenv("HIRA_TRACE");
    return v != nullptr && *v != '\0' && *v != '0';
  }();
  return on;
}

}  // namespace hira
