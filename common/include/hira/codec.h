// Bounds-checked encoding of call arguments.
//
// A Call payload is one length-prefixed *blob* per argument, in declaration
// order; a Reply payload is a ReplyPrefix, one blob for the return value and
// one blob per argument (empty when the argument carries nothing back). The
// router can therefore check the shape of any command (argument count, scalar
// sizes) and read scalar arguments without knowing how buffers are encoded.
//
// Reader never reads past its end: a short or malformed payload sets a sticky
// failure flag and yields zeros, so decoders check ok() once at the end.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <type_traits>
#include <vector>

namespace hira {

inline constexpr size_t kBulkAlign = 16;           // bulk arrays start 16-aligned
inline constexpr size_t kZeroCopyMin = 32 * 1024;  // larger bulk data is not copied

class Writer {
 public:
  Writer() { buf_.reserve(256); }

  template <class T>
  void put(const T &v) {
    static_assert(std::is_trivially_copyable_v<T>);
    append(&v, sizeof(T));
  }
  void put_u8(uint8_t v) { put(v); }
  void put_u32(uint32_t v) { put(v); }
  void put_u64(uint64_t v) { put(v); }

  struct BlobMark {
    size_t slot;   // index of the length slot in buf_
    size_t start;  // payload position of the blob's first byte
  };
  // Opens a blob; close it with end_blob().
  BlobMark begin_blob() {
    const size_t slot = buf_.size();
    put_u32(0);
    return {slot, position()};
  }
  void end_blob(BlobMark m) {
    const auto len = static_cast<uint32_t>(position() - m.start);
    std::memcpy(&buf_[m.slot], &len, sizeof(len));
  }
  void empty_blob() { put_u32(0); }

  // Bulk element data, 16-aligned relative to the payload start. Large
  // arrays are referenced, not copied: the caller keeps them alive until
  // the frame is sent.
  void put_bulk(const void *p, size_t len) {
    const size_t pad = (kBulkAlign - position() % kBulkAlign) % kBulkAlign;
    static const uint8_t zeros[kBulkAlign] = {};
    append(zeros, pad);
    if (len >= kZeroCopyMin) {
      flush_pending();
      segments_.push_back({const_cast<void *>(p), len, false});
      external_ += len;
      owned_start_ = buf_.size();
    } else {
      append(p, len);
    }
  }

  size_t position() const { return external_ + buf_.size(); }
  size_t size() const { return position(); }

  // The payload as an iovec list (valid until the Writer changes).
  std::vector<iovec> iovecs() {
    flush_pending();
    std::vector<iovec> v;
    v.reserve(segments_.size());
    for (auto &s : segments_) {
      v.push_back({s.owned ? buf_.data() + s.offset : s.ptr, s.len});
    }
    return v;
  }

  void clear() {
    buf_.clear();
    segments_.clear();
    external_ = 0;
    owned_start_ = 0;
  }

 private:
  struct Segment {
    void *ptr;
    size_t len;
    bool owned;
    size_t offset = 0;
  };
  void append(const void *p, size_t n) {
    if (n == 0) return;
    const auto *b = static_cast<const uint8_t *>(p);
    buf_.insert(buf_.end(), b, b + n);
  }
  // Turns bytes appended since the last segment into an owned segment.
  void flush_pending() {
    if (buf_.size() > owned_start_) {
      segments_.push_back({nullptr, buf_.size() - owned_start_, true, owned_start_});
      owned_start_ = buf_.size();
    }
  }

  std::vector<uint8_t> buf_;
  std::vector<Segment> segments_;
  size_t external_ = 0;     // bytes held in external segments
  size_t owned_start_ = 0;  // first byte of buf_ not yet in a segment
};

class Reader {
 public:
  Reader() = default;
  Reader(const uint8_t *base, size_t begin, size_t end) : base_(base), pos_(begin), end_(end) {}
  Reader(const uint8_t *data, size_t len) : Reader(data, 0, len) {}

  template <class T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    T v{};
    if (need(sizeof(T))) {
      std::memcpy(&v, base_ + pos_, sizeof(T));
      pos_ += sizeof(T);
    }
    return v;
  }
  uint8_t get_u8() { return get<uint8_t>(); }
  uint32_t get_u32() { return get<uint32_t>(); }
  uint64_t get_u64() { return get<uint64_t>(); }

  // The next blob as its own reader.
  Reader blob() {
    const uint32_t len = get_u32();
    if (!need(len)) return failed();
    Reader r(base_, pos_, pos_ + len);
    pos_ += len;
    return r;
  }

  // Bulk element data written by Writer::put_bulk; nullptr on overrun.
  const uint8_t *bulk(size_t len) {
    const size_t pad = (kBulkAlign - pos_ % kBulkAlign) % kBulkAlign;
    if (!need(pad)) return nullptr;
    pos_ += pad;
    if (!need(len)) return nullptr;
    const uint8_t *p = base_ + pos_;
    pos_ += len;
    return p;
  }

  bool ok() const { return ok_; }
  bool at_end() const { return pos_ == end_; }
  size_t remaining() const { return end_ - pos_; }
  void fail() { ok_ = false; }
  // ok() and every byte consumed: what a decoder demands of an argument.
  bool done() const { return ok_ && at_end(); }

 private:
  bool need(size_t n) {
    if (!ok_ || n > end_ - pos_) {
      ok_ = false;
      return false;
    }
    return true;
  }
  static Reader failed() {
    Reader r;
    r.ok_ = false;
    return r;
  }

  const uint8_t *base_ = nullptr;
  size_t pos_ = 0;
  size_t end_ = 0;
  bool ok_ = true;
};

}  // namespace hira
