// In-process tests of the wire codec (hira::Writer / hira::Reader) and of the
// router's command validation (hira::router::check_call) against the real,
// generated router module of the demo 'acc' API.
//
// Readers are fed bytes placed right before an inaccessible guard page, so an
// out-of-bounds read crashes the test instead of passing silently.
#include "hira/codec.h"

#include <dlfcn.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "call_builder.h"
#include "command_check.h"
#include "hira/bulk_copy.h"
#include "hira/channel.h"
#include "hira/router_module.h"
#include "hira/window.h"
#include "hira/wire.h"
#include "test_support.h"

namespace hira {
namespace {

using test::flatten;

// ---------------------------------------------------------------------------
// Helpers

// Memory whose end is followed by a PROT_NONE page: bytes copied in with
// place() end exactly at the guard, so any read past them faults.
class GuardedBuffer {
 public:
  explicit GuardedBuffer(size_t capacity) {
    page_ = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
    usable_ = (capacity + page_ - 1) / page_ * page_;
    void *p = ::mmap(nullptr, usable_ + page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                     -1, 0);
    if (p == MAP_FAILED) std::abort();
    base_ = static_cast<uint8_t *>(p);
    if (::mprotect(base_ + usable_, page_, PROT_NONE) != 0) std::abort();
  }
  ~GuardedBuffer() { ::munmap(base_, usable_ + page_); }
  GuardedBuffer(const GuardedBuffer &) = delete;
  GuardedBuffer &operator=(const GuardedBuffer &) = delete;

  // Copies bytes so that they end at the guard page; returns their start.
  uint8_t *place(const uint8_t *data, size_t n) {
    if (n > usable_) std::abort();
    uint8_t *dst = base_ + usable_ - n;
    if (n != 0) std::memcpy(dst, data, n);
    return dst;
  }
  uint8_t *place(const std::vector<uint8_t> &v) { return place(v.data(), v.size()); }
  size_t capacity() const { return usable_; }

 private:
  size_t page_ = 0, usable_ = 0;
  uint8_t *base_ = nullptr;
};

// A Frame whose payload is borrowed (not owned): never freed by the Frame.
struct BorrowedFrame {
  Frame f;
  BorrowedFrame(uint8_t *data, size_t size, uint32_t func, uint32_t flags) {
    f.header = make_header(wire::Kind::Call, func, 1, 0, flags);
    f.header.magic = wire::kMagic;
    f.header.version = wire::kVersion;
    f.header.length = static_cast<uint32_t>(size);
    f.data.reset(data);
    f.size = size;
  }
  ~BorrowedFrame() { (void)f.data.release(); }
  BorrowedFrame(const BorrowedFrame &) = delete;
  BorrowedFrame &operator=(const BorrowedFrame &) = delete;
};

// ---------------------------------------------------------------------------
// Writer / Reader round trips

struct Pod {
  uint32_t a;
  uint16_t b;
  double c;
};

TEST(Codec, ScalarsRoundTrip) {
  Writer w;
  w.put_u8(0xab);
  w.put_u32(0xdeadbeef);
  w.put_u64(0x0123456789abcdefull);
  w.put<int32_t>(-7);
  w.put<double>(3.5);
  w.put<float>(-0.25f);
  w.put(Pod{42, 7, 1e300});
  const auto bytes = flatten(w);
  ASSERT_EQ(bytes.size(), w.size());
  ASSERT_EQ(bytes.size(), 1 + 4 + 8 + 4 + 8 + 4 + sizeof(Pod));

  GuardedBuffer g(bytes.size());
  Reader r(g.place(bytes), bytes.size());
  EXPECT_EQ(r.get_u8(), 0xab);
  EXPECT_EQ(r.get_u32(), 0xdeadbeefu);
  EXPECT_EQ(r.get_u64(), 0x0123456789abcdefull);
  EXPECT_EQ(r.get<int32_t>(), -7);
  EXPECT_EQ(r.get<double>(), 3.5);
  EXPECT_EQ(r.get<float>(), -0.25f);
  const Pod p = r.get<Pod>();
  EXPECT_EQ(p.a, 42u);
  EXPECT_EQ(p.b, 7u);
  EXPECT_EQ(p.c, 1e300);
  EXPECT_TRUE(r.done());
  // Reading past the end fails, yields zero and stays failed.
  EXPECT_EQ(r.get_u8(), 0u);
  EXPECT_FALSE(r.ok());
  EXPECT_FALSE(r.done());
}

TEST(Codec, EmptyPayload) {
  Writer w;
  EXPECT_EQ(w.size(), 0u);
  EXPECT_TRUE(w.iovecs().empty());
  Reader r(nullptr, 0);
  EXPECT_TRUE(r.done());
  EXPECT_EQ(r.get_u32(), 0u);
  EXPECT_FALSE(r.ok());
  Reader r2(nullptr, 0);
  Reader b = r2.blob();
  EXPECT_FALSE(r2.ok());
  EXPECT_FALSE(b.ok());
  Reader r3(nullptr, 0);
  (void)r3.bulk(0);  // zero bytes at the end: fine
  EXPECT_TRUE(r3.done());
  EXPECT_EQ(r3.bulk(1), nullptr);
  EXPECT_FALSE(r3.ok());
}

TEST(Codec, BlobsAndNestedBlobs) {
  Writer w;
  const auto outer = w.begin_blob();
  w.put_u32(1);
  const auto inner = w.begin_blob();
  w.put_u64(2);
  const auto innermost = w.begin_blob();
  w.put_u8(3);
  w.end_blob(innermost);
  w.end_blob(inner);
  w.empty_blob();
  w.put_u32(4);
  w.end_blob(outer);
  w.empty_blob();
  const auto last = w.begin_blob();
  w.put<uint16_t>(5);
  w.end_blob(last);
  const auto bytes = flatten(w);

  GuardedBuffer g(bytes.size());
  Reader r(g.place(bytes), bytes.size());
  Reader o = r.blob();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(o.remaining(), 4u + (4 + 8 + (4 + 1)) + 4 + 4);
  EXPECT_EQ(o.get_u32(), 1u);
  Reader i = o.blob();
  EXPECT_EQ(i.get_u64(), 2u);
  Reader ii = i.blob();
  EXPECT_EQ(ii.get_u8(), 3u);
  EXPECT_TRUE(ii.done());
  EXPECT_TRUE(i.done());
  Reader e = o.blob();
  EXPECT_TRUE(e.done());
  EXPECT_EQ(e.remaining(), 0u);
  EXPECT_EQ(o.get_u32(), 4u);
  EXPECT_TRUE(o.done());
  Reader e2 = r.blob();
  EXPECT_TRUE(e2.done());
  Reader l = r.blob();
  EXPECT_EQ(l.get<uint16_t>(), 5u);
  EXPECT_TRUE(l.done());
  EXPECT_TRUE(r.done());
  // A reader never reads beyond its blob, even if the parent has more bytes.
  Reader again(g.place(bytes), bytes.size());
  Reader ob = again.blob();
  (void)ob.get_u32();
  Reader ib = ob.blob();
  EXPECT_EQ(ib.get_u64(), 2u);
  (void)ib.blob();
  EXPECT_EQ(ib.get_u8(), 0u);  // the inner blob is exhausted
  EXPECT_FALSE(ib.ok());
  EXPECT_TRUE(ob.ok());  // failure of a child does not fail the parent
}

TEST(Codec, SmallBulkIsCopiedAndAligned) {
  for (size_t lead = 0; lead < 40; ++lead) {
    for (size_t len : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{1000}}) {
      std::vector<uint8_t> data(len);
      for (size_t i = 0; i < len; ++i) data[i] = static_cast<uint8_t>(i * 7 + lead);
      Writer w;
      for (size_t i = 0; i < lead; ++i) w.put_u8(0xee);
      const auto blob = w.begin_blob();
      w.put_u64(len);
      w.put_bulk(data.data(), data.size());
      w.put_u8(0x5a);
      w.end_blob(blob);
      const auto iov = w.iovecs();
      ASSERT_EQ(iov.size(), 1u);  // nothing is zero-copy below kZeroCopyMin
      if (len != 0) {
        // The copy does not alias the caller's memory.
        const auto *p = static_cast<const uint8_t *>(iov[0].iov_base);
        EXPECT_FALSE(p <= data.data() && data.data() < p + iov[0].iov_len);
      }
      const auto bytes = flatten(w);
      GuardedBuffer g(bytes.size());
      const uint8_t *base = g.place(bytes);
      Reader r(base, bytes.size());
      for (size_t i = 0; i < lead; ++i) ASSERT_EQ(r.get_u8(), 0xee);
      Reader b = r.blob();
      ASSERT_EQ(b.get_u64(), len);
      const uint8_t *got = b.bulk(len);
      ASSERT_NE(got, nullptr);
      EXPECT_EQ(static_cast<size_t>(got - base) % kBulkAlign, 0u) << "lead " << lead;
      EXPECT_TRUE(std::equal(data.begin(), data.end(), got));
      EXPECT_EQ(b.get_u8(), 0x5a);
      EXPECT_TRUE(b.done());
      EXPECT_TRUE(r.done());
    }
  }
}

TEST(Codec, LargeBulkIsZeroCopy) {
  for (size_t len : {kZeroCopyMin, kZeroCopyMin + 1, size_t{100000}, size_t{1} << 20}) {
    for (size_t lead : {size_t{0}, size_t{3}, size_t{13}}) {
      std::vector<uint8_t> big(len), big2(len + 5);
      for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 131 + 17);
      for (size_t i = 0; i < big2.size(); ++i) big2[i] = static_cast<uint8_t>(i * 31 + 3);
      std::vector<uint8_t> small(20, 0x42);
      Writer w;
      for (size_t i = 0; i < lead; ++i) w.put_u8(0x11);
      const auto blob = w.begin_blob();  // a blob around the external segment
      w.put_u8(1);
      w.put_u64(big.size());
      w.put_bulk(big.data(), big.size());
      w.end_blob(blob);
      w.put_u32(0x77777777);
      w.put_bulk(small.data(), small.size());  // alignment counts external bytes
      w.put_bulk(big2.data(), big2.size());    // two external segments
      w.put_u8(0x99);
      EXPECT_EQ(w.size(), w.position());

      const auto iov = w.iovecs();
      bool aliased = false, aliased2 = false;
      size_t total = 0;
      for (const auto &v : iov) {
        total += v.iov_len;
        aliased |= v.iov_base == big.data() && v.iov_len == big.size();
        aliased2 |= v.iov_base == big2.data() && v.iov_len == big2.size();
      }
      EXPECT_TRUE(aliased) << "bulk data of " << len << " bytes should be referenced";
      EXPECT_TRUE(aliased2);
      EXPECT_EQ(total, w.size());
      EXPECT_GE(iov.size(), 4u);

      const auto bytes = flatten(w);
      GuardedBuffer g(bytes.size());
      const uint8_t *base = g.place(bytes);
      Reader r(base, bytes.size());
      for (size_t i = 0; i < lead; ++i) ASSERT_EQ(r.get_u8(), 0x11);
      Reader b = r.blob();
      ASSERT_TRUE(r.ok());
      EXPECT_EQ(b.get_u8(), 1);
      ASSERT_EQ(b.get_u64(), big.size());
      const uint8_t *p = b.bulk(big.size());
      ASSERT_NE(p, nullptr);
      EXPECT_EQ(static_cast<size_t>(p - base) % kBulkAlign, 0u);
      EXPECT_EQ(std::memcmp(p, big.data(), big.size()), 0);
      EXPECT_TRUE(b.done());
      EXPECT_EQ(r.get_u32(), 0x77777777u);
      const uint8_t *ps = r.bulk(small.size());
      ASSERT_NE(ps, nullptr);
      EXPECT_EQ(static_cast<size_t>(ps - base) % kBulkAlign, 0u);
      EXPECT_EQ(std::memcmp(ps, small.data(), small.size()), 0);
      const uint8_t *p2 = r.bulk(big2.size());
      ASSERT_NE(p2, nullptr);
      EXPECT_EQ(static_cast<size_t>(p2 - base) % kBulkAlign, 0u);
      EXPECT_EQ(std::memcmp(p2, big2.data(), big2.size()), 0);
      EXPECT_EQ(r.get_u8(), 0x99);
      EXPECT_TRUE(r.done());
    }
  }
}

TEST(Codec, ClearResetsTheWriter) {
  std::vector<uint8_t> big(kZeroCopyMin * 2, 1);
  Writer w;
  w.put_u32(5);
  w.put_bulk(big.data(), big.size());
  w.clear();
  EXPECT_EQ(w.size(), 0u);
  EXPECT_TRUE(w.iovecs().empty());
  w.put_u8(9);
  const auto bytes = flatten(w);
  ASSERT_EQ(bytes.size(), 1u);
  EXPECT_EQ(bytes[0], 9);
}

// The same encoding decoded from every strict prefix must fail cleanly.
TEST(Codec, TruncatedInputsFailWithoutReadingOutOfBounds) {
  std::vector<uint8_t> bulk(100);
  for (size_t i = 0; i < bulk.size(); ++i) bulk[i] = static_cast<uint8_t>(i + 1);
  Writer w;
  w.put_u32(0x01020304);
  const auto b1 = w.begin_blob();
  w.put_u8(1);
  w.put_u64(bulk.size());
  w.put_bulk(bulk.data(), bulk.size());
  w.end_blob(b1);
  const auto b2 = w.begin_blob();
  w.put_u64(0x1111111111111111ull);
  w.end_blob(b2);
  w.put_u64(0x2222222222222222ull);
  const auto bytes = flatten(w);

  GuardedBuffer g(bytes.size());
  for (size_t n = 0; n <= bytes.size(); ++n) {
    Reader r(g.place(bytes.data(), n), n);
    const uint32_t a = r.get_u32();
    Reader x = r.blob();
    const uint8_t present = x.get_u8();
    const uint64_t count = x.get_u64();
    const uint8_t *data = x.bulk(count);
    Reader y = r.blob();
    const uint64_t yv = y.get_u64();
    const uint64_t z = r.get_u64();
    if (n == bytes.size()) {
      EXPECT_TRUE(r.done());
      EXPECT_TRUE(x.done());
      EXPECT_TRUE(y.done());
      EXPECT_EQ(a, 0x01020304u);
      EXPECT_EQ(present, 1u);
      ASSERT_NE(data, nullptr);
      EXPECT_EQ(std::memcmp(data, bulk.data(), bulk.size()), 0);
      EXPECT_EQ(yv, 0x1111111111111111ull);
      EXPECT_EQ(z, 0x2222222222222222ull);
    } else {
      EXPECT_FALSE(r.ok()) << "prefix of " << n << " bytes decoded";
      EXPECT_EQ(z, 0u);
      if (n < 4) {
        EXPECT_EQ(a, 0u);
      }
      if (!x.ok()) {
        EXPECT_EQ(data, nullptr);
      }
      if (!y.ok()) {
        EXPECT_EQ(yv, 0u);
      }
    }
  }
}

TEST(Codec, HostileLengthsFail) {
  GuardedBuffer g(64);
  // A blob claiming more than is there, including lengths near 2^32.
  for (uint32_t len : {5u, 0x7fffffffu, 0x80000000u, 0xfffffff0u, 0xffffffffu}) {
    std::vector<uint8_t> bytes(8, 0);
    std::memcpy(bytes.data(), &len, 4);
    Reader r(g.place(bytes), bytes.size());
    Reader b = r.blob();
    EXPECT_FALSE(r.ok()) << len;
    EXPECT_FALSE(b.ok());
    EXPECT_EQ(b.get_u64(), 0u);
    EXPECT_EQ(b.bulk(1), nullptr);
    EXPECT_FALSE(r.blob().ok());
  }
  // Bulk sizes that would overflow pointer arithmetic.
  for (size_t len : {size_t{64}, SIZE_MAX, SIZE_MAX - 15, size_t{1} << 63}) {
    std::vector<uint8_t> bytes(40, 7);
    Reader r(g.place(bytes), bytes.size());
    EXPECT_EQ(r.get_u8(), 7);
    EXPECT_EQ(r.bulk(len), nullptr) << len;
    EXPECT_FALSE(r.ok());
    EXPECT_EQ(r.get_u8(), 0);
  }
  // Padding alone may run off the end.
  {
    std::vector<uint8_t> bytes(5, 1);
    Reader r(g.place(bytes), bytes.size());
    (void)r.get_u8();
    EXPECT_EQ(r.bulk(0), nullptr);
    EXPECT_FALSE(r.ok());
  }
  // A zero-length bulk exactly at the end succeeds.
  {
    std::vector<uint8_t> bytes(16, 1);
    Reader r(g.place(bytes), bytes.size());
    EXPECT_NE(r.get<uint64_t>(), 0u);
    EXPECT_NE(r.get<uint64_t>(), 0u);
    EXPECT_NE(r.bulk(0), nullptr);
    EXPECT_TRUE(r.done());
  }
}

// A reference model of Reader's contract, to check the real one against.
struct ModelReader {
  const uint8_t *base;
  size_t pos, end;
  bool ok = true;
  bool need(size_t n) {
    if (!ok || n > end - pos) {
      ok = false;
      return false;
    }
    return true;
  }
  uint64_t get(size_t k) {
    uint64_t v = 0;
    if (need(k)) {
      std::memcpy(&v, base + pos, k);
      pos += k;
    }
    return v;
  }
  ModelReader blob() {
    const auto len = static_cast<uint32_t>(get(4));
    if (!need(len)) return {base, 0, 0, false};
    ModelReader r{base, pos, pos + len};
    pos += len;
    return r;
  }
  const uint8_t *bulk(size_t len) {
    const size_t pad = (kBulkAlign - pos % kBulkAlign) % kBulkAlign;
    if (!need(pad)) return nullptr;
    pos += pad;
    if (!need(len)) return nullptr;
    const uint8_t *p = base + pos;
    pos += len;
    return p;
  }
};

template <class T>
uint64_t get_as_u64(Reader &r) {
  T v = r.get<T>();
  uint64_t out = 0;
  std::memcpy(&out, &v, sizeof(T));
  return out;
}

// Random byte strings (and mutations of valid encodings) through random
// sequences of Reader operations: no crash, no out-of-bounds access, and the
// same results as the model.
TEST(Codec, RandomizedReaderNeverMisbehaves) {
  std::mt19937_64 rng(0x5eed1234);
  GuardedBuffer g(4096);
  // Seeds: valid encodings with blobs, nesting and bulk data.
  std::vector<std::vector<uint8_t>> seeds;
  for (int s = 0; s < 8; ++s) {
    Writer w;
    std::vector<uint8_t> data(static_cast<size_t>(s) * 37 + 1, static_cast<uint8_t>(s));
    const auto b = w.begin_blob();
    w.put_u8(1);
    w.put_u64(data.size());
    w.put_bulk(data.data(), data.size());
    const auto nested = w.begin_blob();
    w.put_u32(static_cast<uint32_t>(s));
    w.end_blob(nested);
    w.end_blob(b);
    w.put_u64(static_cast<uint64_t>(s) << 40);
    w.empty_blob();
    seeds.push_back(flatten(w));
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  int iterations = 0;
  for (; iterations < 200000; ++iterations) {
    if ((iterations & 1023) == 0 && std::chrono::steady_clock::now() > deadline) break;
    std::vector<uint8_t> bytes;
    if (rng() % 2 == 0) {
      bytes.resize(rng() % 200);
      for (auto &b : bytes) b = static_cast<uint8_t>(rng());
      // Small lengths are what make blobs nest; bias some u32s towards them.
      for (size_t i = 0; i + 4 <= bytes.size(); i += 4) {
        if (rng() % 3 == 0) {
          const uint32_t v = static_cast<uint32_t>(rng() % 24);
          std::memcpy(&bytes[i], &v, 4);
        }
      }
    } else {
      bytes = seeds[rng() % seeds.size()];
      const int muts = 1 + static_cast<int>(rng() % 4);
      for (int m = 0; m < muts && !bytes.empty(); ++m) {
        switch (rng() % 4) {
          case 0:
            bytes[rng() % bytes.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
            break;
          case 1:
            bytes.resize(rng() % bytes.size());
            break;
          case 2:
            bytes[rng() % bytes.size()] = static_cast<uint8_t>(rng());
            break;
          case 3:
            bytes.push_back(static_cast<uint8_t>(rng()));
            break;
        }
      }
    }
    const uint8_t *base = g.place(bytes);
    const size_t start = bytes.empty() ? 0 : rng() % (bytes.size() + 1);
    // A stack of readers (blobs nest) and their models.
    std::vector<Reader> rs{Reader(base, start, bytes.size())};
    std::vector<ModelReader> ms{ModelReader{base, start, bytes.size()}};
    const int ops = 1 + static_cast<int>(rng() % 24);
    for (int op = 0; op < ops; ++op) {
      Reader &r = rs.back();
      ModelReader &m = ms.back();
      switch (rng() % 8) {
        case 0:
          ASSERT_EQ(r.get_u8(), m.get(1));
          break;
        case 1:
          ASSERT_EQ(r.get_u32(), m.get(4));
          break;
        case 2:
          ASSERT_EQ(r.get_u64(), m.get(8));
          break;
        case 3:
          ASSERT_EQ(get_as_u64<uint16_t>(r), m.get(2));
          break;
        case 4:
        case 5: {
          Reader child = r.blob();
          ModelReader mchild = m.blob();
          ASSERT_EQ(child.ok(), mchild.ok);
          if (child.ok()) {
            ASSERT_EQ(child.remaining(), mchild.end - mchild.pos);
          }
          rs.push_back(child);
          ms.push_back(mchild);
          break;
        }
        case 6: {
          size_t len;
          switch (rng() % 4) {
            case 0:
              len = rng() % 8;
              break;
            case 1:
              len = r.ok() ? r.remaining() : 0;
              break;
            case 2:
              len = rng() % 300;
              break;
            default:
              len = static_cast<size_t>(rng());
              break;
          }
          const uint8_t *p = r.bulk(len);
          ASSERT_EQ(p, m.bulk(len));
          if (p != nullptr) {
            ASSERT_GE(p, base);
            ASSERT_LE(p + len, base + bytes.size());
            ASSERT_EQ(static_cast<size_t>(p - base) % kBulkAlign, 0u);
            volatile uint8_t sink = 0;
            for (size_t i = 0; i < len; ++i) sink = sink ^ p[i];  // touch every byte
          }
          break;
        }
        case 7:
          if (rs.size() > 1) {
            rs.pop_back();
            ms.pop_back();
          }
          break;
      }
      ASSERT_EQ(rs.back().ok(), ms.back().ok);
      if (rs.back().ok()) {
        ASSERT_EQ(rs.back().remaining(), ms.back().end - ms.back().pos);
        ASSERT_EQ(rs.back().at_end(), ms.back().pos == ms.back().end);
      }
      if (!rs.back().ok()) {
        ASSERT_EQ(rs.back().get_u64(), 0u);
      }
    }
  }
  EXPECT_GT(iterations, 10000);
}

// ---------------------------------------------------------------------------
// check_call against the real router module

// Call payloads encoded the way generated guest code does.
using test::Arg;
using test::encode;
using test::handle;
using test::in_ptr;
using test::out_ptr;
using test::pattern_bytes;
using test::raw;
using test::scalar;

class CheckCall : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const std::string path = test::build_dir() + "/apis/acc/router_module.so";
    handle_ = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(handle_, nullptr) << path << ": " << ::dlerror();
    module_ = static_cast<const router::RouterModule *>(::dlsym(handle_, "hira_router_module"));
    ASSERT_NE(module_, nullptr);
    ASSERT_EQ(module_->abi, router::kRouterModuleAbi);
  }
  void SetUp() override { ASSERT_NE(module_, nullptr); }

  static uint32_t id(const char *name) {
    for (uint32_t i = 0; i < module_->function_count; ++i) {
      if (std::strcmp(module_->function_names[i], name) == 0) return i;
    }
    ADD_FAILURE() << "no function " << name;
    return 0xffffffffu;
  }
  static uint32_t flags_for(uint32_t func) {
    return module_->function_async[func] != 0 ? uint32_t{wire::kFlagAsync} : 0u;
  }

  // A valid call of every function of the acc API.
  static std::vector<std::pair<uint32_t, std::vector<Arg>>> valid_calls() {
    std::vector<std::pair<uint32_t, std::vector<Arg>>> v;
    const Arg name = in_ptr(1, 6, {'h', 'e', 'l', 'l', 'o', 0});
    v.push_back({id("acc_get_version"), {out_ptr(4, 1), out_ptr(4, 1)}});
    v.push_back({id("acc_context_create"), {name, out_ptr(8, 1)}});
    v.push_back({id("acc_context_destroy"), {handle(1)}});
    v.push_back(
        {id("acc_context_name"), {handle(1), out_ptr(1, 16), scalar(16, 8), out_ptr(8, 1)}});
    v.push_back({id("acc_context_stats"), {handle(1), out_ptr(16, 1)}});
    v.push_back({id("acc_buffer_create"), {handle(1), scalar(64, 8), out_ptr(8, 1)}});
    v.push_back({id("acc_buffer_release"), {handle(2)}});
    v.push_back({id("acc_buffer_write"),
                 {handle(2), scalar(0, 8), in_ptr(1, 40, pattern_bytes(40, 1)), scalar(40, 8)}});
    v.push_back({id("acc_buffer_read"), {handle(2), scalar(8, 8), out_ptr(1, 40), scalar(40, 8)}});
    v.push_back(
        {id("acc_saxpy"), {handle(1), scalar(0x40000000, 4), handle(2), handle(3), scalar(4, 8)}});
    v.push_back({id("acc_finish"), {handle(1)}});
    v.push_back({id("acc_sum"),
                 {handle(1), in_ptr(4, 10, pattern_bytes(40, 1)), scalar(10, 8), out_ptr(8, 1)}});
    v.push_back({id("acc_run"), {handle(1), scalar(3, 4), handle(77), raw({})}});
    v.push_back({id("acc_sleep"), {handle(1), scalar(5, 4)}});
    v.push_back({id("acc_context_count"), {}});
    // A large zero-copy argument.
    v.push_back({id("acc_buffer_write"),
                 {handle(2), scalar(0, 8), in_ptr(1, 100000, pattern_bytes(100000, 1)),
                  scalar(100000, 8)}});
    return v;
  }

  router::CheckResult check(const std::vector<uint8_t> &payload, uint32_t func, uint32_t flags,
                            std::vector<Reader> *blobs) {
    BorrowedFrame bf(guard_.place(payload), payload.size(), func, flags);
    return router::check_call(*module_, bf.f, blobs);
  }
  router::CheckResult check(const std::vector<uint8_t> &payload, uint32_t func) {
    std::vector<Reader> blobs;
    return check(payload, func, func < module_->function_count ? flags_for(func) : 0, &blobs);
  }

  static void *handle_;
  static const router::RouterModule *module_;
  GuardedBuffer guard_{1 << 20};
};

void *CheckCall::handle_ = nullptr;
const router::RouterModule *CheckCall::module_ = nullptr;

TEST_F(CheckCall, ModuleDescribesTheAccApi) {
  EXPECT_STREQ(module_->name, "acc");
  EXPECT_EQ(module_->function_count, 15u);
  EXPECT_NE(module_->signature, 0u);
  EXPECT_EQ(module_->function_async[id("acc_saxpy")], 1);
  EXPECT_EQ(module_->function_async[id("acc_get_version")], 0);
  EXPECT_EQ(module_->arg_count[id("acc_context_count")], 0u);
  EXPECT_EQ(module_->arg_count[id("acc_saxpy")], 5u);
}

TEST_F(CheckCall, AcceptsValidCalls) {
  const auto calls = valid_calls();
  std::vector<bool> covered(module_->function_count);
  for (const auto &[func, args] : calls) {
    const auto payload = encode(args);
    std::vector<Reader> blobs;
    ASSERT_EQ(check(payload, func, flags_for(func), &blobs), router::CheckResult::Ok)
        << module_->function_names[func];
    ASSERT_EQ(blobs.size(), module_->arg_count[func]);
    for (size_t i = 0; i < args.size(); ++i) {
      const uint32_t want = module_->arg_sizes[module_->arg_offset[func] + i];
      if (want != router::kVariableSize) {
        EXPECT_EQ(blobs[i].remaining(), want);
      }
    }
    router::CallAccounting acct;
    module_->account_call(func, blobs.data(), &acct);
    EXPECT_LE(acct.count, router::kMaxDeltas);
    covered[func] = true;
  }
  for (uint32_t f = 0; f < module_->function_count; ++f) {
    EXPECT_TRUE(covered[f]) << "no valid call for " << module_->function_names[f];
  }
}

TEST_F(CheckCall, AccountsResourcesFromArguments) {
  const uint32_t create = id("acc_buffer_create");
  const auto payload = encode({handle(1), scalar(4096, 8), out_ptr(8, 1)});
  std::vector<Reader> blobs;
  ASSERT_EQ(check(payload, create, 0, &blobs), router::CheckResult::Ok);
  router::CallAccounting acct;
  module_->account_call(create, blobs.data(), &acct);
  ASSERT_EQ(acct.count, 1u);
  EXPECT_EQ(acct.deltas[0].amount, 4096);
  EXPECT_FALSE(acct.deltas[0].by_handle);
}

TEST_F(CheckCall, RejectsUnknownFunctions) {
  const auto payload = encode({handle(1)});
  for (uint32_t func :
       {module_->function_count, module_->function_count + 1, 1000u, 0x7fffffffu, 0xffffffffu}) {
    std::vector<Reader> blobs;
    EXPECT_EQ(check(payload, func, 0, &blobs), router::CheckResult::UnknownFunction) << func;
    EXPECT_EQ(check(payload, func, wire::kFlagAsync, &blobs), router::CheckResult::UnknownFunction);
  }
}

TEST_F(CheckCall, RejectsAsyncFlagMismatch) {
  for (const auto &[func, args] : valid_calls()) {
    const auto payload = encode(args);
    std::vector<Reader> blobs;
    const uint32_t wrong = flags_for(func) ^ wire::kFlagAsync;
    EXPECT_EQ(check(payload, func, wrong, &blobs), router::CheckResult::WrongAsyncFlag)
        << module_->function_names[func];
    // Other flag bits do not matter.
    EXPECT_EQ(check(payload, func, flags_for(func) | 0x80000000u, &blobs), router::CheckResult::Ok);
  }
}

TEST_F(CheckCall, RejectsWrongArgumentCounts) {
  for (const auto &[func, args] : valid_calls()) {
    const char *name = module_->function_names[func];
    auto more = args;
    more.push_back(handle(5));
    EXPECT_EQ(check(encode(more), func), router::CheckResult::BadShape) << name;
    auto empty_extra = args;
    empty_extra.push_back(raw({}));
    EXPECT_EQ(check(encode(empty_extra), func), router::CheckResult::BadShape) << name;
    if (!args.empty()) {
      auto fewer = args;
      fewer.pop_back();
      EXPECT_EQ(check(encode(fewer), func), router::CheckResult::BadShape) << name;
    }
    // Trailing bytes after the last blob.
    auto payload = encode(args);
    payload.push_back(0);
    EXPECT_EQ(check(payload, func), router::CheckResult::BadShape) << name;
    // The last blob truncated (its length claims more than is there).
    payload = encode(args);
    if (!payload.empty()) {
      payload.pop_back();
      EXPECT_EQ(check(payload, func), router::CheckResult::BadShape) << name;
    }
  }
}

TEST_F(CheckCall, RejectsWrongScalarSizes) {
  for (const auto &[func, args] : valid_calls()) {
    for (size_t i = 0; i < args.size(); ++i) {
      const uint32_t want = module_->arg_sizes[module_->arg_offset[func] + i];
      if (want == router::kVariableSize) continue;
      std::vector<size_t> sizes = {0, 1, size_t{want} + 1, size_t{want} * 2};
      if (want > 0) sizes.push_back(size_t{want} - 1);
      for (size_t size : sizes) {
        if (size == want) continue;
        auto bad = args;
        bad[i] = raw(std::vector<uint8_t>(size, 0xab));
        EXPECT_EQ(check(encode(bad), func), router::CheckResult::BadShape)
            << module_->function_names[func] << " arg " << i << " size " << size;
      }
    }
  }
}

// Random and mutated frames: check_call never crashes or reads out of
// bounds, and whatever it accepts really has the function's shape.
TEST_F(CheckCall, RandomizedFramesNeverMisbehave) {
  std::mt19937_64 rng(0xc0ffee);
  const auto calls = valid_calls();
  std::vector<std::vector<uint8_t>> seeds;
  for (const auto &[func, args] : calls) seeds.push_back(encode(args));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  int iterations = 0, accepted_mutants = 0;
  uint64_t rejected[4] = {};
  for (; iterations < 200000; ++iterations) {
    if ((iterations & 1023) == 0 && std::chrono::steady_clock::now() > deadline) break;
    const size_t which = rng() % calls.size();
    uint32_t func = calls[which].first;
    std::vector<uint8_t> bytes;
    bool mutated = true;
    switch (rng() % 8) {
      case 0: {  // pure noise
        bytes.resize(rng() % 160);
        for (auto &b : bytes) b = static_cast<uint8_t>(rng());
        break;
      }
      case 1:  // the valid frame, unmutated
        bytes = seeds[which];
        mutated = false;
        break;
      default: {
        bytes = seeds[which];
        const int muts = 1 + static_cast<int>(rng() % 5);
        for (int m = 0; m < muts; ++m) {
          if (bytes.empty()) {
            bytes.push_back(static_cast<uint8_t>(rng()));
            continue;
          }
          const size_t at = rng() % bytes.size();
          switch (rng() % 7) {
            case 0:
              bytes[at] ^= static_cast<uint8_t>(1u << (rng() % 8));
              break;
            case 1:
              bytes[at] = static_cast<uint8_t>(rng());
              break;
            case 2:
              bytes.resize(at);
              break;
            case 3:
              bytes.insert(bytes.begin() + static_cast<long>(at), static_cast<uint8_t>(rng()));
              break;
            case 4:
              bytes.erase(bytes.begin() + static_cast<long>(at));
              break;
            case 5: {  // an interesting u32 (blob lengths)
              static const uint32_t vals[] = {0,          1,          4,          8,
                                              0x7fffffff, 0x80000000, 0xffffffff, 0xfffffffc};
              if (at + 4 <= bytes.size()) std::memcpy(&bytes[at], &vals[rng() % 8], 4);
              break;
            }
            case 6: {  // splice a piece of another seed
              const auto &o = seeds[rng() % seeds.size()];
              const size_t from = rng() % (o.size() + 1);
              const size_t n = std::min<size_t>(rng() % 32, o.size() - from);
              bytes.insert(bytes.begin() + static_cast<long>(at),
                           o.begin() + static_cast<long>(from),
                           o.begin() + static_cast<long>(from + n));
              break;
            }
          }
        }
      }
    }
    uint32_t flags = flags_for(func);
    const uint64_t h = rng() % 16;
    if (h == 0) {
      func = static_cast<uint32_t>(rng());
      mutated = true;
    } else if (h == 1) {
      func = module_->function_count + static_cast<uint32_t>(rng() % 4);
      mutated = true;
    } else if (h == 2) {
      flags ^= wire::kFlagAsync;
      mutated = true;
    }
    std::vector<Reader> blobs;
    const router::CheckResult cr = check(bytes, func, flags, &blobs);
    if (!mutated) {
      ASSERT_EQ(cr, router::CheckResult::Ok) << module_->function_names[func];
    }
    if (cr != router::CheckResult::Ok) {
      ++rejected[static_cast<int>(cr)];
      continue;
    }
    if (mutated) ++accepted_mutants;
    // Accepted: the shape must really match.
    ASSERT_LT(func, module_->function_count);
    ASSERT_EQ(blobs.size(), module_->arg_count[func]);
    ASSERT_EQ((flags & wire::kFlagAsync) != 0, module_->function_async[func] != 0);
    for (size_t i = 0; i < blobs.size(); ++i) {
      const uint32_t want = module_->arg_sizes[module_->arg_offset[func] + i];
      if (want != router::kVariableSize) {
        ASSERT_EQ(blobs[i].remaining(), want);
      }
      ASSERT_TRUE(blobs[i].ok());
    }
    // What the router does next with an accepted call.
    router::CallAccounting acct;
    module_->account_call(func, blobs.data(), &acct);
    ASSERT_LE(acct.count, router::kMaxDeltas);
    for (uint32_t d = 0; d < acct.count; ++d) {
      ASSERT_LT(acct.deltas[d].resource, module_->resource_count);
    }
    // Touch every accepted byte (a bad blob would point past the guard).
    for (Reader b : blobs) {
      volatile uint8_t sink = 0;
      while (b.remaining() > 0) sink = sink ^ b.get_u8();
    }
  }
  EXPECT_GT(iterations, 10000);
  EXPECT_GT(rejected[static_cast<int>(router::CheckResult::BadShape)], 0u);
  EXPECT_GT(rejected[static_cast<int>(router::CheckResult::UnknownFunction)], 0u);
  EXPECT_GT(rejected[static_cast<int>(router::CheckResult::WrongAsyncFlag)], 0u);
  (void)accepted_mutants;
}

// The router also decodes API server replies with the module's helpers
// (allocated_handle, reply_succeeded): random replies must be harmless.
TEST_F(CheckCall, RandomizedRepliesNeverMisbehave) {
  std::mt19937_64 rng(0xbadc0de);
  for (int i = 0; i < 50000; ++i) {
    std::vector<uint8_t> bytes(rng() % 96);
    for (auto &b : bytes) b = static_cast<uint8_t>(rng());
    for (size_t k = 0; k + 4 <= bytes.size(); k += 4) {
      if (rng() % 2 == 0) {
        const uint32_t v = static_cast<uint32_t>(rng() % 20);
        std::memcpy(&bytes[k], &v, 4);
      }
    }
    const uint32_t func = static_cast<uint32_t>(rng() % (module_->function_count + 2));
    const uint8_t *p = guard_.place(bytes);
    (void)module_->allocated_handle(func, Reader(p, bytes.size()));
    (void)module_->reply_succeeded(func, Reader(p, bytes.size()));
  }
}

}  // namespace
}  // namespace hira

namespace hira {
namespace {

TEST(WindowArena, HandsOutAlignedRunsAndMergesThemBack) {
  WindowArena a(4096, 4096 + (1 << 20));
  const auto small = a.take(100);
  ASSERT_TRUE(small.has_value());
  EXPECT_EQ(*small % 64, 0u);
  EXPECT_GE(*small, 4096u);
  const auto big = a.take(256 << 10);
  ASSERT_TRUE(big.has_value());
  EXPECT_EQ(*big % 4096, 0u);  // large runs are page-aligned
  EXPECT_GE(*big, *small + 100);
  // No run overlaps another, and none leaves [begin, end).
  const auto rest = a.take((1 << 20) - (256 << 10) - 8192);
  ASSERT_TRUE(rest.has_value());
  EXPECT_TRUE(*rest >= *big + (256 << 10) || *rest + ((1 << 20) - (256 << 10) - 8192) <= *small);
  EXPECT_FALSE(a.take(1 << 20).has_value());  // full: the caller sends inline
  a.give(*small);
  a.give(*big);
  a.give(*rest);
  a.give(12345);  // never handed out: ignored
  EXPECT_EQ(a.in_use(), 0u);
  // Everything merged back into one run.
  const auto all = a.take(1 << 20);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(*all, 4096u);
}

TEST(WindowArena, KeptSpaceComesFromTheTopAndCallsFromTheBottom) {
  const uint64_t begin = 4096, end = 4096 + (1 << 20);
  WindowArena a(begin, end);
  const auto kept = a.take_last(100 << 10);
  ASSERT_TRUE(kept.has_value());
  EXPECT_EQ(*kept % 4096, 0u);
  EXPECT_LE(*kept + (100 << 10), end);
  EXPECT_GE(*kept, end - (100 << 10) - 4096);  // the top run, at most a page below its end
  const auto call = a.take(64 << 10);
  ASSERT_TRUE(call.has_value());
  EXPECT_EQ(*call, begin);
  // A second kept block goes below the first; what is left between them is
  // still handed out, and never overlaps either.
  const auto kept2 = a.take_last(200 << 10);
  ASSERT_TRUE(kept2.has_value());
  EXPECT_LE(*kept2 + (200 << 10), *kept);
  EXPECT_GE(*kept2, *call + (64 << 10));
  const auto between = *kept2 - (*call + (64 << 10));
  const auto fill = a.take_last(between);
  ASSERT_TRUE(fill.has_value());
  EXPECT_GE(*fill, *call + (64 << 10));
  EXPECT_LE(*fill + between, *kept2);
  EXPECT_FALSE(a.take_last(between + 64 * 1024 * 1024).has_value());
  for (const auto o : {*kept, *call, *kept2, *fill}) a.give(o);
  EXPECT_EQ(a.in_use(), 0u);
  const auto all = a.take(end - begin);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(*all, begin);
}

TEST(WindowArena, ReferencesAreCheckedAgainstTheWindow) {
  // A tagged payload naming bytes [offset, offset + length) of a 4 KiB window.
  auto payload = [](uint64_t offset, uint64_t length, uint32_t kind) {
    std::vector<uint8_t> p(4 + sizeof(RefEntry) + kRefTrailer);
    const uint32_t tag = 1, count = 1;
    std::memcpy(p.data(), &tag, 4);
    const RefEntry e{offset, length, kind, 0};
    std::memcpy(p.data() + 4, &e, sizeof(e));
    std::memcpy(p.data() + 4 + sizeof(e), &count, 4);
    return p;
  };
  std::vector<uint8_t> window(4096);
  const WindowView w{window.data(), window.size()};
  for (const auto &[offset, length, ok] :
       std::vector<std::tuple<uint64_t, uint64_t, bool>>{{0, 4096, true},
                                                         {4000, 96, true},
                                                         {4000, 97, false},
                                                         {4097, 0, false},
                                                         {~0ull, 2, false},
                                                         {8, ~0ull - 4, false}}) {
    const auto p = payload(offset, length, kRefData);
    Reader r = Reader::tagged(p.data(), p.size(), w);
    EXPECT_EQ(r.ok(), ok) << offset << "+" << length;
    if (ok) {
      EXPECT_EQ(r.bulk(length), window.data() + offset);
      EXPECT_TRUE(r.done());
    }
  }
  // A data tag naming an out entry, or asking for another length, fails.
  const auto out = payload(0, 64, kRefOut);
  Reader r1 = Reader::tagged(out.data(), out.size(), w);
  EXPECT_EQ(r1.bulk(64), nullptr);
  const auto data = payload(0, 64, kRefData);
  Reader r2 = Reader::tagged(data.data(), data.size(), w);
  EXPECT_EQ(r2.bulk(63), nullptr);
  // The router's view (no mapping) checks the table but yields no bytes.
  Reader r3 = Reader::tagged(data.data(), data.size(), {nullptr, 4096});
  EXPECT_TRUE(r3.ok());
  EXPECT_EQ(r3.bulk(64), nullptr);
}

}  // namespace
}  // namespace hira

namespace hira {
namespace {

TEST(CopyBulk, ParallelPartsCopyEveryByteOnce) {
  // Set before the first copy of this process: three threads even on a
  // small machine, so that the parallel path runs here.
  ::setenv("HIRA_COPY_THREADS", "3", 1);
  for (const size_t n :
       {size_t{100}, (size_t{4} << 20) - 1, (size_t{4} << 20) + 12345, (size_t{9} << 20) + 7}) {
    std::vector<uint8_t> src(n), dst(n + 64, 0xee);
    std::mt19937 rng(static_cast<unsigned>(n));
    for (auto &b : src) b = static_cast<uint8_t>(rng());
    copy_bulk(dst.data(), src.data(), n);
    EXPECT_EQ(std::memcmp(dst.data(), src.data(), n), 0) << n;
    EXPECT_EQ(dst[n], 0xee) << n;  // nothing past the end
    EXPECT_EQ(dst[n + 63], 0xee) << n;
  }
}

}  // namespace
}  // namespace hira
