#include "hira/bulk_copy.h"

#include <pthread.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace hira {

namespace {

// Below this a copy is not split: waking the helpers costs more than it saves.
size_t parallel_min() {
  static const size_t n = [] {
    if (const char *v = std::getenv("HIRA_COPY_PARALLEL_MIN_KB"); v != nullptr && *v != '\0') {
      return static_cast<size_t>(std::strtoull(v, nullptr, 10)) << 10;
    }
    return size_t{4} << 20;
  }();
  return n;
}

unsigned copy_threads() {
  static const unsigned n = [] {
    if (const char *v = std::getenv("HIRA_COPY_THREADS"); v != nullptr && *v != '\0') {
      return std::clamp(static_cast<unsigned>(std::atoi(v)), 1u, 16u);
    }
    return std::thread::hardware_concurrency() >= 8 ? 4u : 1u;
  }();
  return n;
}

// Helper threads that each copy one part of the current job. One job at a
// time: a second large copy waits (it would only compete for the same
// memory bandwidth).
class CopyPool {
 public:
  explicit CopyPool(unsigned helpers) {
    for (unsigned i = 0; i < helpers; ++i) {
      std::thread([this, i] { work(i + 1); }).detach();  // lives as long as the process
    }
    parts_ = helpers + 1;
  }

  void copy(void *dst, const void *src, size_t n) {
    std::lock_guard job(job_mu_);
    {
      std::lock_guard lock(mu_);
      dst_ = static_cast<char *>(dst);
      src_ = static_cast<const char *>(src);
      n_ = n;
      left_ = parts_ - 1;
      ++generation_;
    }
    cv_.notify_all();
    copy_part(0);
    std::unique_lock lock(mu_);
    done_cv_.wait(lock, [&] { return left_ == 0; });
  }

 private:
  void copy_part(unsigned part) {
    // Page-aligned parts, the last one takes the rest.
    const size_t chunk = (n_ / parts_ + 4095) / 4096 * 4096;
    const size_t begin = std::min(n_, chunk * part);
    const size_t end = part + 1 == parts_ ? n_ : std::min(n_, begin + chunk);
    if (end > begin) std::memcpy(dst_ + begin, src_ + begin, end - begin);
  }

  void work(unsigned part) {
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
      }
      copy_part(part);
      std::lock_guard lock(mu_);
      if (--left_ == 0) done_cv_.notify_one();
    }
  }

  std::mutex job_mu_;
  std::mutex mu_;
  std::condition_variable cv_, done_cv_;
  char *dst_ = nullptr;
  const char *src_ = nullptr;
  size_t n_ = 0;
  unsigned parts_ = 1;
  unsigned left_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace

namespace {
std::mutex g_pool_mu;
CopyPool *g_pool = nullptr;  // never destroyed: copies may run at exit
// A forked child has none of the helper threads: it starts a pool of its own.
const int g_atfork = ::pthread_atfork(nullptr, nullptr, [] { g_pool = nullptr; });
}  // namespace

void copy_bulk(void *dst, const void *src, size_t n) {
  if (dst == src) return;  // filled in place (an out buffer in the window)
  const unsigned threads = copy_threads();
  if (n < parallel_min() || threads <= 1) {
    std::memcpy(dst, src, n);
    return;
  }
  CopyPool *pool;
  {
    std::lock_guard lock(g_pool_mu);
    if (g_pool == nullptr) g_pool = new CopyPool(threads - 1);
    pool = g_pool;
  }
  pool->copy(dst, src, n);
}

}  // namespace hira
