// The guest's RAM as the VMM described it (VHOST_USER_SET_MEM_TABLE),
// mapped into this process. Every address a guest or the VMM hands us is
// translated here, with its length, or refused: nothing outside a region is
// ever touched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hira::vsock {

struct MemoryRegionSpec {
  uint64_t guest_phys_addr = 0;
  uint64_t size = 0;
  uint64_t user_addr = 0;    // where the VMM has it mapped (vring addresses use it)
  uint64_t mmap_offset = 0;  // where the region starts in fd
  int fd = -1;
};

class GuestMemory {
 public:
  static constexpr size_t kMaxRegions = 8;

  GuestMemory() = default;
  ~GuestMemory();
  GuestMemory(const GuestMemory &) = delete;
  GuestMemory &operator=(const GuestMemory &) = delete;

  // Replaces the whole table. Takes the descriptors (closes them, mapped or
  // not). On failure nothing stays mapped and *error says why.
  bool set(const std::vector<MemoryRegionSpec> &regions, std::string *error);
  void clear();
  bool empty() const { return regions_.empty(); }

  // [gpa, gpa + len) inside one region: its bytes here; else nullptr.
  uint8_t *guest(uint64_t gpa, uint64_t len) const;
  // The same for an address in the VMM's own address space.
  uint8_t *vmm(uint64_t user_addr, uint64_t len) const;

 private:
  struct Region {
    uint64_t gpa, size, user_addr;
    uint8_t *base;  // the region's first byte
    void *map;      // what to munmap
    size_t map_len;
  };
  std::vector<Region> regions_;
};

}  // namespace hira::vsock
