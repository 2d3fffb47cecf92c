// Memory the API server keeps for calls that outlive their reply (the data
// of a non-blocking write until the device read it, a non-blocking read's
// bytes until they are sent). Freed blocks are kept for the next call of a
// similar size: a fresh 4 MiB block costs a thousand page faults, more than
// copying into it.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>

namespace hira::server {

class StagingPool {
 public:
  // Keeps at most `cache_bytes` of freed blocks.
  explicit StagingPool(uint64_t cache_bytes) : cache_limit_(cache_bytes) {}
  ~StagingPool();
  StagingPool(const StagingPool &) = delete;
  StagingPool &operator=(const StagingPool &) = delete;

  // A page-aligned block of at least `bytes`, or nullptr.
  void *take(uint64_t bytes);
  // Gives back a block take() returned.
  void give(void *p);

 private:
  std::mutex mu_;
  std::multimap<uint64_t, void *> free_;        // capacity -> block
  std::unordered_map<void *, uint64_t> taken_;  // block -> capacity
  uint64_t cached_ = 0;
  const uint64_t cache_limit_;
};

}  // namespace hira::server
