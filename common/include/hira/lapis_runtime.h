// The LAPIS runtime library functions that spec expressions may call, for the
// generated code (lapis_specs/lapis.h declares them for parsing the spec).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

// Elements of a zero-terminated (key, value) list, terminator included; 0 for
// NULL. The API server pads every decoded buffer with a zero element, so a
// list whose terminator a guest left out still ends inside the buffer.
inline size_t __lapis_list_len(const void *list, size_t elem_size) {
  if (list == nullptr) return 0;
  const auto *p = static_cast<const unsigned char *>(list);
  static const unsigned char zero[16] = {};
  for (size_t i = 0;; i += 2) {
    if (std::memcmp(p + i * elem_size, zero, elem_size) == 0) return i + 1;
  }
}
#define lapis_list_len(p) __lapis_list_len((const void *)(p), sizeof(*(p)))

// Checked size arithmetic for spec expressions: saturates at UINT64_MAX,
// which every buffer size check refuses.
inline uint64_t lapis_mul(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}
inline uint64_t lapis_add(uint64_t a, uint64_t b) {
  uint64_t r;
  return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

// Spec expressions mix widths and signedness (lapis_min(work_dim, 3)), as C does.
template <class A, class B>
inline std::common_type_t<A, B> lapis_min(A a, B b) {
  using T = std::common_type_t<A, B>;
  return static_cast<T>(a) < static_cast<T>(b) ? static_cast<T>(a) : static_cast<T>(b);
}
template <class A, class B>
inline std::common_type_t<A, B> lapis_max(A a, B b) {
  using T = std::common_type_t<A, B>;
  return static_cast<T>(a) < static_cast<T>(b) ? static_cast<T>(b) : static_cast<T>(a);
}
