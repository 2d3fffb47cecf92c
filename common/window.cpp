#include "hira/window.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hira {

namespace {
constexpr unsigned kRequiredSeals = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL;
}

int create_sealed_memfd(const char *name, uint64_t bytes, std::string *error) {
  const int fd = ::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) {
    *error = std::string("memfd_create: ") + std::strerror(errno);
    return -1;
  }
  if (::ftruncate(fd, static_cast<off_t>(bytes)) != 0 ||
      ::fcntl(fd, F_ADD_SEALS, kRequiredSeals) != 0) {
    *error = std::string("sizing or sealing ") + name + ": " + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

std::optional<uint64_t> check_window_fd(int fd, uint64_t max_bytes, std::string *error) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *error = "not a memory file";
    return std::nullopt;
  }
  const int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (static_cast<unsigned>(seals) & kRequiredSeals) != kRequiredSeals) {
    // Unsealed, it could shrink under the server's mapping (SIGBUS there).
    *error = "not a memfd sealed against shrinking and growing";
    return std::nullopt;
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size == 0 || size > max_bytes) {
    *error = "window of " + std::to_string(size) + " bytes (the limit is " +
             std::to_string(max_bytes) + ")";
    return std::nullopt;
  }
  return size;
}

bool check_region_slice(int fd, uint64_t offset, uint64_t bytes, uint64_t max_bytes,
                        std::string *error) {
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *error = "the VM's region is not a memory file";
    return false;
  }
  const auto size = static_cast<uint64_t>(st.st_size);
  if (offset % 4096 != 0 || bytes < (1u << 20) || bytes > max_bytes || offset > size ||
      bytes > size - offset) {
    *error = "a slice [" + std::to_string(offset) + ", +" + std::to_string(bytes) +
             ") that is not inside the VM's " + std::to_string(size) +
             "-byte region, page-aligned, from 1 MiB to " + std::to_string(max_bytes) + " bytes";
    return false;
  }
  return true;
}

MappedWindow::MappedWindow(int fd, uint64_t bytes, uint64_t offset) {
  void *p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd,
                   static_cast<off_t>(offset));
  if (p == MAP_FAILED) return;
  base_ = static_cast<uint8_t *>(p);
  size_ = bytes;
}

MappedWindow::~MappedWindow() {
  if (base_ != nullptr) ::munmap(base_, size_);
}

std::optional<uint64_t> MappedWindow::offset_of(const void *p, uint64_t len) const {
  const auto *b = static_cast<const uint8_t *>(p);
  if (base_ == nullptr || b < base_ || b > base_ + size_) return std::nullopt;
  const auto offset = static_cast<uint64_t>(b - base_);
  if (len > size_ - offset) return std::nullopt;
  return offset;
}

WindowArena::WindowArena(uint64_t begin, uint64_t end) {
  if (end > begin) free_[begin] = end - begin;
}

namespace {
// Runs of 64 KiB and more are page-aligned (the server may pin them), the
// rest 64-aligned; every run is a multiple of 64 bytes.
uint64_t run_alignment(uint64_t len) { return len >= (64u << 10) ? 4096 : 64; }
uint64_t run_bytes(uint64_t len) { return (len + 63) / 64 * 64; }
}  // namespace

uint64_t WindowArena::carve_locked(uint64_t run_start, uint64_t start, uint64_t want) {
  const uint64_t end = run_start + free_[run_start];
  free_.erase(run_start);
  if (start > run_start) free_[run_start] = start - run_start;
  if (end > start + want) free_[start + want] = end - (start + want);
  used_[start] = want;
  in_use_ += want;
  return start;
}

std::optional<uint64_t> WindowArena::take(uint64_t len) {
  const uint64_t align = run_alignment(len), want = run_bytes(len);
  std::lock_guard lock(mu_);
  for (const auto &[run_start, run_len] : free_) {
    const uint64_t start = (run_start + align - 1) / align * align;
    const uint64_t end = run_start + run_len;
    if (start <= end && end - start >= want) return carve_locked(run_start, start, want);
  }
  return std::nullopt;
}

std::optional<uint64_t> WindowArena::take_last(uint64_t len) {
  const uint64_t align = run_alignment(len), want = run_bytes(len);
  std::lock_guard lock(mu_);
  for (auto it = free_.rbegin(); it != free_.rend(); ++it) {
    const auto [run_start, run_len] = *it;
    if (run_len < want) continue;
    const uint64_t start = (run_start + run_len - want) / align * align;
    if (start >= run_start) return carve_locked(run_start, start, want);
  }
  return std::nullopt;
}

void WindowArena::give(uint64_t offset) {
  std::lock_guard lock(mu_);
  const auto u = used_.find(offset);
  if (u == used_.end()) return;
  uint64_t start = offset, len = u->second;
  in_use_ -= len;
  used_.erase(u);
  // Merge with the free runs on either side.
  auto next = free_.lower_bound(start);
  if (next != free_.end() && next->first == start + len) {
    len += next->second;
    next = free_.erase(next);
  }
  if (next != free_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      len += prev->second;
      free_.erase(prev);
    }
  }
  free_[start] = len;
}

uint64_t WindowArena::in_use() const {
  std::lock_guard lock(mu_);
  return in_use_;
}

}  // namespace hira
