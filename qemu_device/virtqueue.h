// One split virtqueue (virtio 1.x, section 2.7) in guest memory, served from
// the device side. The guest owns the memory and may change it at any time:
// every index and descriptor is copied out once, checked, and only then
// used; a chain that leaves guest memory, loops or is malformed is returned
// to the guest unused and counted, and the queue goes on.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "guest_memory.h"

namespace hira::vsock {

struct Segment {
  uint8_t *data;
  uint32_t len;
};

// A descriptor chain the device took from the available ring.
struct Chain {
  uint16_t head = 0;
  std::vector<Segment> readable;  // driver -> device, in order
  std::vector<Segment> writable;  // device -> driver, in order
  uint64_t readable_bytes() const;
  uint64_t writable_bytes() const;
  // Copies up to `len` readable bytes from `offset` into out; returns how many.
  size_t read(size_t offset, void *out, size_t len) const;
  // Scatters `len` bytes into the writable segments from `offset`.
  size_t write(size_t offset, const void *in, size_t len) const;
};

class Virtqueue {
 public:
  static constexpr uint32_t kMaxSize = 32768;

  // VHOST_USER_SET_VRING_NUM
  bool set_size(uint32_t num);
  // VHOST_USER_SET_VRING_ADDR: the three parts, as VMM addresses.
  bool set_addresses(const GuestMemory &mem, uint64_t desc, uint64_t avail, uint64_t used,
                     std::string *error);
  // VHOST_USER_SET_VRING_BASE / GET_VRING_BASE
  void set_base(uint16_t next_avail) { next_avail_ = next_avail; }
  uint16_t base() const { return next_avail_; }
  // Maps the ring again after the memory table changed (same addresses).
  bool remap(const GuestMemory &mem);
  // Forgets where the ring is (the VMM stopped it).
  void detach();
  bool ready() const { return desc_ != nullptr; }

  // The next chain the guest made available, if any. Chains that break the
  // rules are returned to the guest (length 0) and skipped.
  std::optional<Chain> pop(const GuestMemory &mem);
  // Hands a chain back, saying how many bytes the device wrote into it.
  void push(const Chain &c, uint32_t written);
  // Whether the guest wants an interrupt for what was pushed.
  bool should_notify() const;
  // Whether the guest made chains available since the last pop.
  bool has_available() const;

  uint64_t bad_chains() const { return bad_chains_; }
  const std::string &last_error() const { return last_error_; }
  // The guest's available index ran more than a ring ahead: it is broken
  // beyond what skipping a chain can mend, and the queue stops.
  bool broken() const { return broken_; }

 private:
  bool map(const GuestMemory &mem);
  bool walk(const GuestMemory &mem, uint16_t head, Chain *c);
  void put_used(uint16_t head, uint32_t len);

  uint32_t num_ = 0;
  uint64_t desc_addr_ = 0, avail_addr_ = 0, used_addr_ = 0;  // VMM addresses
  bool has_addresses_ = false;
  uint8_t *desc_ = nullptr, *avail_ = nullptr, *used_ = nullptr;
  uint16_t next_avail_ = 0, next_used_ = 0;
  uint64_t bad_chains_ = 0;
  bool broken_ = false;
  std::string last_error_;
};

}  // namespace hira::vsock
