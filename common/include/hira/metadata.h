// Per-object metadata for LAPIS `declare_metadata`/`metadata(h)`: one T per
// object pointer, created zeroed on first use, kept for the process's life.
#pragma once

#include <memory>
#include <mutex>
#include <unordered_map>

namespace hira {

template <class T>
T *metadata(const volatile void *obj) {
  static std::mutex mu;
  static std::unordered_map<const volatile void *, std::unique_ptr<T>> table;
  std::lock_guard lock(mu);
  auto &slot = table[obj];
  if (!slot) slot = std::make_unique<T>();
  return slot.get();
}

}  // namespace hira
