#include "guest_memory.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hira::vsock {

namespace {
// [addr, addr + len) inside [start, start + size), without overflow.
bool inside(uint64_t addr, uint64_t len, uint64_t start, uint64_t size) {
  return addr >= start && addr - start <= size && len <= size - (addr - start);
}
}  // namespace

GuestMemory::~GuestMemory() { clear(); }

void GuestMemory::clear() {
  for (const Region &r : regions_) ::munmap(r.map, r.map_len);
  regions_.clear();
}

bool GuestMemory::set(const std::vector<MemoryRegionSpec> &specs, std::string *error) {
  clear();
  bool ok = specs.size() <= kMaxRegions;
  if (!ok) *error = "more than 8 memory regions";
  for (const MemoryRegionSpec &s : specs) {
    if (ok && (s.size == 0 || s.mmap_offset > UINT64_MAX - s.size ||
               s.guest_phys_addr > UINT64_MAX - s.size || s.user_addr > UINT64_MAX - s.size)) {
      *error = "a memory region of size 0 or past the end of the address space";
      ok = false;
    }
    if (ok) {
      const size_t len = s.mmap_offset + s.size;
      void *map = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, s.fd, 0);
      if (map == MAP_FAILED) {
        *error = std::string("cannot map guest memory: ") + std::strerror(errno);
        ok = false;
      } else {
        regions_.push_back({s.guest_phys_addr, s.size, s.user_addr,
                            static_cast<uint8_t *>(map) + s.mmap_offset, map, len});
      }
    }
    if (s.fd >= 0) ::close(s.fd);
  }
  if (!ok) clear();
  return ok;
}

uint8_t *GuestMemory::guest(uint64_t gpa, uint64_t len) const {
  for (const Region &r : regions_) {
    if (inside(gpa, len, r.gpa, r.size)) return r.base + (gpa - r.gpa);
  }
  return nullptr;
}

uint8_t *GuestMemory::vmm(uint64_t user_addr, uint64_t len) const {
  for (const Region &r : regions_) {
    if (inside(user_addr, len, r.user_addr, r.size)) return r.base + (user_addr - r.user_addr);
  }
  return nullptr;
}

}  // namespace hira::vsock
