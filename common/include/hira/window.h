// The shared-memory window of one guest process: bulk data of its calls
// (blocking transfers, out buffers) lives here instead of travelling through
// the router. Locally it is a sealed memfd the guest creates and passes to
// the router with its hello; the router checks it and hands it to that
// guest's API server only. The router never maps it: it checks the
// references a command makes (codec.h) against the window's size.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>

namespace hira {

// Bulk arrays smaller than this travel inline: placing them costs more
// than copying them through the socket.
inline constexpr uint64_t kWindowMin = 4096;
// A window costs only the pages that are touched (the memfd is sparse and
// mapped without reserve), so the default is large: pinned host memory lives
// in it, up to half of the guest's part, and 1 GiB pinned buffers must fit.
inline constexpr uint64_t kDefaultWindowBytes = 4ull << 30;
// The largest window any component accepts (operators set lower limits).
inline constexpr uint64_t kMaxWindowBytes = 64ull << 30;

// The last quarter of a window is the API server's, for the guest's copies
// of mapped memory (which live from a map to its unmap); the rest is the
// guest's, for its calls.
inline uint64_t server_zone_start(uint64_t window_bytes) { return window_bytes - window_bytes / 4; }

// A memfd of `bytes`, sealed so that nobody can shrink or grow it (a
// mapping of it can then never fault past its end). -1 and *error on failure.
int create_sealed_memfd(const char *name, uint64_t bytes, std::string *error);
inline int create_window_fd(uint64_t bytes, std::string *error) {
  return create_sealed_memfd("hira-window", bytes, error);
}

// Checks a window fd (or any shared memory) received from a peer: a sealed
// memfd of at most `max_bytes`. Returns its size, or nullopt and *error.
std::optional<uint64_t> check_window_fd(int fd, uint64_t max_bytes, std::string *error);

// Checks a VM's shared region (a file the host gave the VM as an ivshmem
// device) for a window slice [offset, offset + bytes): a regular file that
// long, offset page-aligned, bytes from 1 MiB to max_bytes.
bool check_region_slice(int fd, uint64_t offset, uint64_t bytes, uint64_t max_bytes,
                        std::string *error);

// A window mapped into this process (shared, read-write).
class MappedWindow {
 public:
  // Maps `bytes` of fd from `offset` (fd is not kept); empty on failure (see ok()).
  MappedWindow(int fd, uint64_t bytes, uint64_t offset = 0);
  ~MappedWindow();
  MappedWindow(const MappedWindow &) = delete;
  MappedWindow &operator=(const MappedWindow &) = delete;

  bool ok() const { return base_ != nullptr; }
  uint8_t *base() const { return base_; }
  uint64_t size() const { return size_; }
  // [p, p + len) lies inside the window: its offset.
  std::optional<uint64_t> offset_of(const void *p, uint64_t len) const;

 private:
  uint8_t *base_ = nullptr;
  uint64_t size_ = 0;
};

// Space in a window, handed out by the guest for one call at a time.
// First fit over a free list; thread-safe.
class WindowArena {
 public:
  // Hands out [begin, end).
  WindowArena(uint64_t begin, uint64_t end);
  // Offset of `len` free bytes (page-aligned from 64 KiB, else 64-aligned),
  // or nullopt when no free run is long enough (the caller sends inline).
  std::optional<uint64_t> take(uint64_t len);
  // The same from the other end (the highest free run that is long enough,
  // its last bytes): space kept long (pinned memory) stays out of the low
  // end, where the space of calls comes and goes.
  std::optional<uint64_t> take_last(uint64_t len);
  void give(uint64_t offset);
  uint64_t in_use() const;

 private:
  mutable std::mutex mu_;
  // Hands out [start, start + want) of the free run at run_start (mu_ held).
  uint64_t carve_locked(uint64_t run_start, uint64_t start, uint64_t want);

  std::map<uint64_t, uint64_t> free_;  // offset -> length
  std::map<uint64_t, uint64_t> used_;  // offset -> length
  uint64_t in_use_ = 0;
};

}  // namespace hira
