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
//
// Bulk data by reference: a payload written for a connection with a shared
// memory window (see window.h) is *tagged*: each bulk array starts with a u32
// tag, 0 for bytes inline or k for entry k-1 of the frame's reference table,
// which follows the blobs: RefEntry[n], then u32 n, u32 0. Only the table
// needs checking against the window (the router does it without decoding
// anything else), and the bytes never travel with the command.
//
// Large bulk data that no window holds travels after its frame instead, as
// Bulk chunks (wire::kFlagBulk): a kRefBulk reference names its bytes in
// that stream. The frame itself stays small, so a relay checks the command
// whole and then passes the bytes through a chunk at a time.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

namespace hira {

inline constexpr size_t kBulkAlign = 16;           // bulk arrays start 16-aligned
inline constexpr size_t kZeroCopyMin = 32 * 1024;  // larger bulk data is not copied

// One entry of a tagged payload's reference table: bytes of the window.
struct RefEntry {
  uint64_t offset;
  uint64_t length;
  uint32_t kind;  // kRefData or kRefOut
  uint32_t zero;
};
static_assert(sizeof(RefEntry) == 24);
inline constexpr uint32_t kRefData = 0;  // bulk data named by a tag
inline constexpr uint32_t kRefOut = 1;   // window space the guest set aside for an out buffer
inline constexpr uint32_t kRefBulk = 2;  // bulk data in the bytes that follow the frame
inline constexpr uint32_t kMaxRefs = 256;
// Bulk arrays this large that no window takes follow the frame (tagged
// payloads only); smaller ones travel inline.
inline constexpr size_t kBulkFollowMin = 64 * 1024;
inline constexpr size_t kRefTrailer = 8;  // u32 count, u32 0

// Where a Writer may put bulk data instead of inline: place() returns the
// window offset of `len` bytes equal to p[0, len) (p may already lie in the
// window), or false to send them inline; reserve() sets `len` bytes aside
// for the receiver to fill, or returns false; reserve_for() is reserve() for
// bytes that end at `dst`: where dst already lies in the window (memory the
// application keeps there), the receiver fills it in place.
class WindowPlacer {
 public:
  virtual bool place(const void *p, size_t len, uint64_t *offset) = 0;
  virtual bool reserve(size_t len, uint64_t *offset) = 0;
  virtual bool reserve_for(const void *dst, size_t len, uint64_t *offset) {
    (void)dst;
    return reserve(len, offset);
  }

 protected:
  ~WindowPlacer() = default;
};

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
    if (tagged_) {
      uint64_t offset = 0;
      if (len != 0 && room() && placer_ != nullptr && placer_->place(p, len, &offset)) {
        put_ref(kRefData, offset, len);
        return;
      }
      if (len >= kBulkFollowMin && room()) {
        put_ref(kRefBulk, bulk_bytes_, len);
        bulk_.push_back({const_cast<void *>(p), len});
        bulk_bytes_ += len;
        return;
      }
      put_u32(0);  // inline
    }
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

  // Bulk data the caller already put in the window at `offset` (tagged
  // payloads only; otherwise the bytes at p go as put_bulk sends them).
  void put_bulk_at(uint64_t offset, const void *p, size_t len) {
    if (tagged_ && len != 0 && room()) {
      put_ref(kRefData, offset, len);
    } else {
      put_bulk(p, len);
    }
  }

  // Makes the payload tagged (see the top of this file); bulk data goes to
  // `placer` where it agrees (nullptr: no window), else large arrays follow
  // the frame and small ones go inline. Before any put.
  void set_window(WindowPlacer *placer) {
    tagged_ = true;
    placer_ = placer;
  }
  bool tagged() const { return tagged_; }
  // Where the receiver should put an out buffer of `len` bytes: a tag for
  // window space the placer sets aside (0: its own memory). Tagged only;
  // nothing is written otherwise.
  void put_out_space(size_t len) { put_out_space(nullptr, len); }
  // The same for bytes that end at `dst` (see WindowPlacer::reserve_for).
  void put_out_space(const void *dst, size_t len) {
    if (!tagged_) return;
    uint64_t offset = 0;
    const bool reserved =
        len != 0 && room() && placer_ != nullptr &&
        (dst != nullptr ? placer_->reserve_for(dst, len, &offset) : placer_->reserve(len, &offset));
    put_out_at(reserved ? std::optional<uint64_t>(offset) : std::nullopt, len);
  }

  // The same for window space the caller already set aside at `offset`
  // (nullopt: none, the receiver's own memory).
  void put_out_at(std::optional<uint64_t> offset, size_t len) {
    if (!tagged_) return;
    if (offset && len != 0 && room()) {
      put_ref(kRefOut, *offset, len);
    } else {
      put_u32(0);  // the receiver's own memory
    }
  }

  size_t position() const { return external_ + buf_.size(); }
  // The bytes that follow the frame (kRefBulk), in order; the caller's
  // memory, valid as long as the arrays given to put_bulk.
  const std::vector<iovec> &bulk() const { return bulk_; }
  uint64_t bulk_bytes() const { return bulk_bytes_; }

  // The whole payload, reference table included, bulk bytes excluded.
  size_t size() const {
    return position() + (tagged_ ? refs_.size() * sizeof(RefEntry) + kRefTrailer : 0);
  }

  // The payload as an iovec list (valid until the Writer changes).
  std::vector<iovec> iovecs() {
    flush_pending();
    std::vector<iovec> v;
    v.reserve(segments_.size() + 2);
    for (auto &s : segments_) {
      v.push_back({s.owned ? buf_.data() + s.offset : s.ptr, s.len});
    }
    if (tagged_) {
      if (!refs_.empty()) v.push_back({refs_.data(), refs_.size() * sizeof(RefEntry)});
      trailer_[0] = static_cast<uint32_t>(refs_.size());
      trailer_[1] = 0;
      v.push_back({trailer_, sizeof(trailer_)});
    }
    return v;
  }

  void clear() {
    buf_.clear();
    segments_.clear();
    refs_.clear();
    bulk_.clear();
    bulk_bytes_ = 0;
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
  // The table may take one more reference.
  bool room() const { return refs_.size() < kMaxRefs; }
  // A new reference and the tag that names it.
  void put_ref(uint32_t kind, uint64_t offset, size_t len) {
    refs_.push_back({offset, len, kind, 0});
    put_u32(static_cast<uint32_t>(refs_.size()));
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
  bool tagged_ = false;
  WindowPlacer *placer_ = nullptr;
  std::vector<RefEntry> refs_;
  uint32_t trailer_[2] = {};
  std::vector<iovec> bulk_;
  uint64_t bulk_bytes_ = 0;
};

// The window a tagged payload's references point into, as its receiver
// sees it: `base` is nullptr where the receiver only checks references
// (the router) and does not map the window.
struct WindowView {
  const uint8_t *base = nullptr;
  uint64_t size = 0;
};

// How a value of T is read where its bytes are not trusted (the router): an
// enum as its underlying integer, since holding a value outside an enum's
// range is undefined behaviour in C++ (CUresult from a hostile server).
template <class T>
struct wire_repr {
  using type = T;
};
template <class T>
requires std::is_enum_v<T>
struct wire_repr<T> {
  using type = std::underlying_type_t<T>;
};
template <class T>
using wire_repr_t = typename wire_repr<T>::type;

class Reader {
 public:
  Reader() = default;
  Reader(const uint8_t *base, size_t begin, size_t end) : base_(base), pos_(begin), end_(end) {}
  Reader(const uint8_t *data, size_t len) : Reader(data, 0, len) {}

  // A tagged payload (see the top of this file): its reference table is
  // checked against `window` and `bulk` (the bytes that followed the frame;
  // base nullptr where they were passed on unread) here, once; a table that
  // does not fit the payload or names bytes outside either fails the reader.
  static Reader tagged(const uint8_t *data, size_t len, const WindowView &window,
                       const WindowView &bulk = {}) {
    Reader r(data, len);
    r.tagged_ = true;
    r.window_ = window;
    r.bulk_ = bulk;
    if (len < kRefTrailer) return failed();
    uint32_t count = 0, zero = 0;
    std::memcpy(&count, data + len - kRefTrailer, sizeof(count));
    std::memcpy(&zero, data + len - sizeof(zero), sizeof(zero));
    if (zero != 0 || count > kMaxRefs || (len - kRefTrailer) / sizeof(RefEntry) < count) {
      return failed();
    }
    const size_t table = len - kRefTrailer - count * sizeof(RefEntry);
    r.end_ = table;
    r.refs_ = data + table;
    r.ref_count_ = count;
    for (uint32_t i = 0; i < count; ++i) {
      const RefEntry e = r.ref(i);
      const uint64_t limit = e.kind == kRefBulk ? bulk.size : window.size;
      if (e.kind > kRefBulk || e.zero != 0 || e.offset > limit || e.length > limit - e.offset) {
        return failed();
      }
    }
    return r;
  }
  uint32_t ref_count() const { return ref_count_; }
  RefEntry ref(uint32_t i) const {
    RefEntry e{};
    if (i < ref_count_) std::memcpy(&e, refs_ + i * sizeof(RefEntry), sizeof(e));
    return e;
  }

  // An enum is read as its integer and converted, never loaded from the
  // bytes as an enum object: a guest may send any value, which the API's C
  // implementation then judges (as it would from a C caller). Code that
  // decides on such a value itself (the router) reads get<wire_repr_t<E>>().
  template <class T>
  T get() {
    static_assert(std::is_trivially_copyable_v<T>);
    if constexpr (std::is_enum_v<T>) {
      return static_cast<T>(get<std::underlying_type_t<T>>());
    } else {
      T v{};
      if (need(sizeof(T))) {
        std::memcpy(&v, base_ + pos_, sizeof(T));
        pos_ += sizeof(T);
      }
      return v;
    }
  }
  uint8_t get_u8() { return get<uint8_t>(); }
  uint32_t get_u32() { return get<uint32_t>(); }
  uint64_t get_u64() { return get<uint64_t>(); }

  // The next blob as its own reader.
  Reader blob() {
    const uint32_t len = get_u32();
    if (!need(len)) return failed();
    Reader r(base_, pos_, pos_ + len);
    r.tagged_ = tagged_;
    r.window_ = window_;
    r.bulk_ = bulk_;
    r.refs_ = refs_;
    r.ref_count_ = ref_count_;
    pos_ += len;
    return r;
  }

  // Bulk element data written by Writer::put_bulk; nullptr on overrun, or
  // for a reference that is not `len` bytes of data in a mapped window.
  const uint8_t *bulk(size_t len) {
    if (tagged_) {
      const uint32_t tag = get_u32();
      if (!ok_) return nullptr;
      if (tag != 0) {
        auto e = named(tag, kRefData);
        const WindowView &in = e ? window_ : bulk_;
        if (!e) e = named(tag, kRefBulk);
        if (!e || e->length != len || in.base == nullptr) {
          ok_ = false;
          return nullptr;
        }
        return in.base + e->offset;
      }
    }
    const size_t pad = (kBulkAlign - pos_ % kBulkAlign) % kBulkAlign;
    if (!need(pad)) return nullptr;
    pos_ += pad;
    if (!need(len)) return nullptr;
    const uint8_t *p = base_ + pos_;
    pos_ += len;
    return p;
  }

  // Window space for an out buffer of `len` bytes (Writer::put_out_space),
  // or nullptr: none was set aside, or the window is not mapped here.
  uint8_t *out_space(size_t len) {
    if (!tagged_) return nullptr;
    const uint32_t tag = get_u32();
    if (!ok_ || tag == 0) return nullptr;
    const auto e = named(tag, kRefOut);
    if (!e || e->length < len) {
      ok_ = false;
      return nullptr;
    }
    // The window is the guest's, shared and writable: const only here.
    return window_.base == nullptr ? nullptr : const_cast<uint8_t *>(window_.base) + e->offset;
  }

  bool ok() const { return ok_; }
  bool tagged() const { return tagged_; }
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
  // The reference a tag names, if it is one of `kind`.
  std::optional<RefEntry> named(uint32_t tag, uint32_t kind) const {
    if (tag == 0 || tag > ref_count_) return std::nullopt;
    const RefEntry e = ref(tag - 1);
    if (e.kind != kind) return std::nullopt;
    return e;
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
  bool tagged_ = false;
  WindowView window_;
  WindowView bulk_;                // the bytes that followed the frame (kRefBulk)
  const uint8_t *refs_ = nullptr;  // the reference table (unaligned RefEntry[])
  uint32_t ref_count_ = 0;
};

}  // namespace hira
