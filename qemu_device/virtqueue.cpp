#include "virtqueue.h"

#include <algorithm>
#include <cstring>

namespace hira::vsock {

namespace {

constexpr uint16_t kDescNext = 1, kDescWrite = 2, kDescIndirect = 4;
constexpr uint16_t kAvailNoInterrupt = 1;

struct Desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
static_assert(sizeof(Desc) == 16);

// The guest writes these concurrently: one load, with the ordering the
// virtio memory model asks for (read the index, then what it covers).
uint16_t load16(const uint8_t *p) {
  return __atomic_load_n(reinterpret_cast<const uint16_t *>(p), __ATOMIC_ACQUIRE);
}
void store16_release(uint8_t *p, uint16_t v) {
  __atomic_store_n(reinterpret_cast<uint16_t *>(p), v, __ATOMIC_RELEASE);
}

}  // namespace

uint64_t Chain::readable_bytes() const {
  uint64_t n = 0;
  for (const auto &s : readable) n += s.len;
  return n;
}

uint64_t Chain::writable_bytes() const {
  uint64_t n = 0;
  for (const auto &s : writable) n += s.len;
  return n;
}

size_t Chain::read(size_t offset, void *out, size_t len) const {
  size_t done = 0;
  for (const auto &s : readable) {
    if (done == len) break;
    if (offset >= s.len) {
      offset -= s.len;
      continue;
    }
    const size_t n = std::min<size_t>(s.len - offset, len - done);
    std::memcpy(static_cast<uint8_t *>(out) + done, s.data + offset, n);
    done += n;
    offset = 0;
  }
  return done;
}

size_t Chain::write(size_t offset, const void *in, size_t len) const {
  size_t done = 0;
  for (const auto &s : writable) {
    if (done == len) break;
    if (offset >= s.len) {
      offset -= s.len;
      continue;
    }
    const size_t n = std::min<size_t>(s.len - offset, len - done);
    std::memcpy(s.data + offset, static_cast<const uint8_t *>(in) + done, n);
    done += n;
    offset = 0;
  }
  return done;
}

bool Virtqueue::set_size(uint32_t num) {
  if (num == 0 || num > kMaxSize || (num & (num - 1)) != 0) return false;
  num_ = num;
  return true;
}

bool Virtqueue::set_addresses(const GuestMemory &mem, uint64_t desc, uint64_t avail, uint64_t used,
                              std::string *error) {
  detach();
  if (num_ == 0) {
    *error = "ring addresses before its size";
    return false;
  }
  desc_addr_ = desc;
  avail_addr_ = avail;
  used_addr_ = used;
  has_addresses_ = true;
  if (!map(mem)) {
    *error = "ring addresses outside guest memory or misaligned";
    return false;
  }
  next_used_ = load16(used_ + 2);
  broken_ = false;
  return true;
}

bool Virtqueue::remap(const GuestMemory &mem) { return has_addresses_ && map(mem); }

bool Virtqueue::map(const GuestMemory &mem) {
  desc_ = avail_ = used_ = nullptr;
  // Sizes from the split-ring layout: 16-byte descriptors; avail and used
  // each have flags, idx, the ring and one event word.
  uint8_t *d = mem.vmm(desc_addr_, 16ull * num_);
  uint8_t *a = mem.vmm(avail_addr_, 6ull + 2ull * num_);
  uint8_t *u = mem.vmm(used_addr_, 6ull + 8ull * num_);
  if (d == nullptr || a == nullptr || u == nullptr || (desc_addr_ % 16) != 0 ||
      (avail_addr_ % 2) != 0 || (used_addr_ % 4) != 0) {
    return false;
  }
  desc_ = d;
  avail_ = a;
  used_ = u;
  return true;
}

void Virtqueue::detach() {
  desc_ = avail_ = used_ = nullptr;
  has_addresses_ = false;
}

bool Virtqueue::has_available() const {
  return ready() && !broken_ && load16(avail_ + 2) != next_avail_;
}

bool Virtqueue::walk(const GuestMemory &mem, uint16_t head, Chain *c) {
  c->head = head;
  uint16_t i = head;
  for (uint32_t steps = 0;; ++steps) {
    if (i >= num_ || steps >= num_) {
      last_error_ = i >= num_ ? "descriptor index past the ring" : "descriptor chain loops";
      return false;
    }
    Desc d;
    std::memcpy(&d, desc_ + 16ull * i, sizeof(d));
    if ((d.flags & kDescIndirect) != 0) {
      last_error_ = "indirect descriptor (not negotiated)";
      return false;
    }
    uint8_t *p = mem.guest(d.addr, d.len);
    if (p == nullptr) {
      last_error_ = "descriptor outside guest memory";
      return false;
    }
    if (d.len > 0) {
      if ((d.flags & kDescWrite) != 0) {
        c->writable.push_back({p, d.len});
      } else if (!c->writable.empty()) {
        last_error_ = "readable descriptor after a writable one";
        return false;
      } else {
        c->readable.push_back({p, d.len});
      }
    }
    if ((d.flags & kDescNext) == 0) return true;
    i = d.next;
  }
}

std::optional<Chain> Virtqueue::pop(const GuestMemory &mem) {
  while (ready() && !broken_) {
    const uint16_t avail_idx = load16(avail_ + 2);
    if (avail_idx == next_avail_) return std::nullopt;
    if (static_cast<uint16_t>(avail_idx - next_avail_) > num_) {
      broken_ = true;
      last_error_ = "available index more than a ring ahead";
      return std::nullopt;
    }
    uint16_t head;
    std::memcpy(&head, avail_ + 4 + 2ull * (next_avail_ % num_), 2);
    ++next_avail_;
    Chain c;
    if (walk(mem, head, &c)) return c;
    ++bad_chains_;
    // Returned unused, so a guest that made one mistake loses one buffer.
    if (head < num_) put_used(head, 0);
  }
  return std::nullopt;
}

void Virtqueue::put_used(uint16_t head, uint32_t len) {
  uint8_t *elem = used_ + 4 + 8ull * (next_used_ % num_);
  const uint32_t id = head;
  std::memcpy(elem, &id, 4);
  std::memcpy(elem + 4, &len, 4);
  store16_release(used_ + 2, ++next_used_);
}

void Virtqueue::push(const Chain &c, uint32_t written) {
  if (ready()) put_used(c.head, written);
}

bool Virtqueue::should_notify() const {
  return ready() && (load16(avail_) & kAvailNoInterrupt) == 0;
}

}  // namespace hira::vsock
