#include "hira/hop_trace.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <mutex>
#include <string>

namespace hira::hop_trace {

namespace detail {
Record *records = nullptr;
uint64_t capacity = 0;
std::atomic<uint64_t> next{0};

void append(uint64_t call_id, Stage stage) {
  // Each thread claims records in blocks: one shared counter bumped per
  // record would itself move a cache line between the threads of a call.
  constexpr uint64_t kBlock = 4096;
  thread_local uint64_t at = 0, end = 0;
  if (at == end) {
    at = next.fetch_add(kBlock, std::memory_order_relaxed);
    end = at + kBlock;
  }
  const uint64_t i = at++;
  if (i >= capacity) return;  // full: later records are dropped
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  thread_local const auto tid = static_cast<uint32_t>(::gettid());
  records[i] = {call_id, stage, tid,
                static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec)};
}
}  // namespace detail

void init() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char *prefix = std::getenv("HIRA_HOP_TRACE");
    if (prefix == nullptr || *prefix == '\0') return;
    const char *n = std::getenv("HIRA_HOP_TRACE_RECORDS");
    const uint64_t cap = n != nullptr ? std::strtoull(n, nullptr, 10) : uint64_t{1} << 20;
    const std::string path = std::string(prefix) + "." + std::to_string(::getpid());
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const uint64_t bytes = cap * sizeof(Record);
    if (fd < 0 || ::ftruncate(fd, static_cast<off_t>(bytes)) != 0) {
      std::fprintf(stderr, "hira: HIRA_HOP_TRACE: cannot create %s\n", path.c_str());
      if (fd >= 0) ::close(fd);
      return;
    }
    void *p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) return;
    detail::capacity = cap;
    detail::records = static_cast<Record *>(p);
  });
}

}  // namespace hira::hop_trace
