#include "staging_pool.h"

#include <bit>
#include <cstdlib>

namespace hira::server {

namespace {
constexpr uint64_t kMinBlock = 64u << 10;
constexpr uint64_t kPage = 4096;
}  // namespace

StagingPool::~StagingPool() {
  for (const auto &[cap, p] : free_) std::free(p);
}

void *StagingPool::take(uint64_t bytes) {
  // Sizes round up to a power of two, so that blocks find their next use.
  const uint64_t cap = std::bit_ceil(std::max(bytes, kMinBlock));
  {
    std::lock_guard lock(mu_);
    if (const auto it = free_.find(cap); it != free_.end()) {
      void *p = it->second;
      free_.erase(it);
      cached_ -= cap;
      taken_[p] = cap;
      return p;
    }
  }
  void *p = nullptr;
  if (::posix_memalign(&p, kPage, cap) != 0) return nullptr;
  std::lock_guard lock(mu_);
  taken_[p] = cap;
  return p;
}

void StagingPool::give(void *p) {
  if (p == nullptr) return;
  std::lock_guard lock(mu_);
  const auto it = taken_.find(p);
  if (it == taken_.end()) return;
  const uint64_t cap = it->second;
  taken_.erase(it);
  if (cached_ + cap <= cache_limit_) {
    free_.emplace(cap, p);
    cached_ += cap;
  } else {
    std::free(p);
  }
}

}  // namespace hira::server
