#include "call_builder.h"

#include <sys/uio.h>

#include <cstring>
#include <utility>

#include "hira/codec.h"

namespace hira::test {

Arg u64(uint64_t v) { return {Arg::U64, v, 8, {}}; }
Arg handle(uint64_t v) { return u64(v); }
Arg scalar(uint64_t v, size_t size) { return {Arg::Scalar, v, size, {}}; }
Arg size_arg(uint64_t v) { return scalar(v, sizeof(size_t)); }
Arg manual_ptr(size_t elem, uint64_t count, uint64_t guest_addr) {
  Arg a{Arg::ManualPtr, count, elem, pattern_bytes(elem * count)};
  a.addr = guest_addr;
  return a;
}

Arg in_ptr(size_t elem, uint64_t count, std::vector<uint8_t> data) {
  return {Arg::InPtr, count, elem, std::move(data)};
}
Arg in_ptr(size_t elem, uint64_t count) { return in_ptr(elem, count, pattern_bytes(elem * count)); }
Arg out_ptr(size_t elem, uint64_t count) { return {Arg::OutPtr, count, elem, {}}; }
Arg absent() { return {Arg::Absent, 0, 0, {}}; }
Arg raw(std::vector<uint8_t> b) { return {Arg::Raw, 0, 0, std::move(b)}; }
Arg handles(std::initializer_list<uint64_t> ids) {
  std::vector<uint8_t> b(1 + 8 + 8 * ids.size());
  b[0] = 1;
  const uint64_t n = ids.size();
  std::memcpy(&b[1], &n, 8);
  size_t at = 9;
  for (const uint64_t id : ids) {
    std::memcpy(&b[at], &id, 8);
    at += 8;
  }
  return raw(std::move(b));
}

std::vector<uint8_t> pattern_bytes(size_t n, size_t step) {
  std::vector<uint8_t> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = static_cast<uint8_t>(i * step + 1);
  return data;
}

std::vector<uint8_t> flatten(Writer &w) {
  std::vector<uint8_t> out;
  for (const iovec &v : w.iovecs()) {
    const auto *p = static_cast<const uint8_t *>(v.iov_base);
    out.insert(out.end(), p, p + v.iov_len);
  }
  return out;
}

std::vector<uint8_t> encode(const std::vector<Arg> &args) {
  Writer w;
  for (const Arg &a : args) {
    const auto blob = w.begin_blob();
    switch (a.kind) {
      case Arg::U64:
        w.put_u64(a.value);
        break;
      case Arg::Scalar: {
        uint8_t b[8];
        std::memcpy(b, &a.value, 8);
        for (size_t i = 0; i < a.size; ++i) w.put_u8(b[i]);
        break;
      }
      case Arg::InPtr:
        w.put_u8(1);
        w.put_u64(a.value);
        w.put_bulk(a.bytes.data(), a.bytes.size());
        break;
      case Arg::ManualPtr:
        w.put_u8(1);
        w.put_u64(a.value);
        w.put_u64(a.addr);
        w.put_bulk(a.bytes.data(), a.bytes.size());
        break;
      case Arg::OutPtr:
        w.put_u8(1);
        w.put_u64(a.value);
        break;
      case Arg::Absent:
        w.put_u8(0);
        break;
      case Arg::Raw:
        for (uint8_t b : a.bytes) w.put_u8(b);
        break;
    }
    w.end_blob(blob);
  }
  return flatten(w);
}

}  // namespace hira::test
