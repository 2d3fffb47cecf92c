// Builds the payload of a hira Call by hand: one blob per argument, encoded
// the way the generated guest library does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <vector>

#include "hira/codec.h"

namespace hira::test {

// One argument of a call.
struct Arg {
  enum Kind { U64, Scalar, InPtr, ManualPtr, OutPtr, Absent, Raw } kind;
  uint64_t value = 0;          // U64/Scalar value, pointer count
  size_t size = 0;             // Scalar size; InPtr/OutPtr element size
  std::vector<uint8_t> bytes;  // InPtr data, Raw blob
  uint64_t addr = 0;           // ManualPtr: the guest address
};

// A 64-bit value (handles and ids travel this way).
Arg u64(uint64_t v);
// An API handle: the same blob as u64(v).
Arg handle(uint64_t v);
// The low `size` bytes of v.
Arg scalar(uint64_t v, size_t size);
// A size_t argument.
Arg size_arg(uint64_t v);
// A present in-pointer to `count` elements of `elem` bytes, carrying `data`
// as its bulk bytes (which may deliberately disagree with elem * count).
Arg in_ptr(size_t elem, uint64_t count, std::vector<uint8_t> data);
// The same, carrying pattern_bytes(elem * count).
Arg in_ptr(size_t elem, uint64_t count);
// An in-pointer whose memory outlives the call (lifetime_manual, e.g.
// CL_MEM_USE_HOST_PTR): its guest address travels before its bytes.
Arg manual_ptr(size_t elem, uint64_t count, uint64_t guest_addr);
// A present out-pointer to `count` elements of `elem` bytes.
Arg out_ptr(size_t elem, uint64_t count);
// A null pointer.
Arg absent();
// A blob of exactly these bytes.
Arg raw(std::vector<uint8_t> b = {});
// A present array of handles (encoded element by element, as the guest does).
Arg handles(std::initializer_list<uint64_t> ids);

// n bytes where byte i is i * step + 1 (mod 256).
std::vector<uint8_t> pattern_bytes(size_t n, size_t step = 13);

// The payload a Writer describes (owned and zero-copy parts), as one byte string.
std::vector<uint8_t> flatten(Writer &w);

// The Call payload: one blob per argument, flattened to one byte string.
std::vector<uint8_t> encode(const std::vector<Arg> &args);

}  // namespace hira::test
