// The shared-memory window, played by hand against the real router and acc
// API server: a guest passes a sealed memfd with its hello, then names bulk
// data by (offset, length) references that the router checks against the
// window's size. Hostile references, tables, windows and descriptors are
// refused without harming the router, the server or the guest's own data.
#include "hira/window.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <set>
#include <thread>

#include "acc_protocol.h"  // generated: kApiName, kApiSignature, FN_*
#include "raw_guest.h"

namespace hira::test {
namespace {

constexpr uint64_t kWindow = 1 << 20;

// Puts every bulk array and out buffer at offsets the test chooses (right
// or deliberately wrong): the real Writer encodes the references.
class ChosenPlacer : public WindowPlacer {
 public:
  explicit ChosenPlacer(uint64_t offset) : offset_(offset) {}
  bool place(const void *, size_t, uint64_t *offset) override {
    *offset = offset_;
    return true;
  }
  bool reserve(size_t, uint64_t *offset) override {
    *offset = offset_;
    return true;
  }

 private:
  uint64_t offset_;
};

// Sends a frame with `fd` attached, as the guest library does (the real
// Channel, on a duplicate of the raw guest's socket).
bool send_with_fd(int sock, wire::FrameHeader h, const std::vector<uint8_t> &payload, int fd) {
  Channel c(::dup(sock));
  const iovec iov{const_cast<uint8_t *>(payload.data()), payload.size()};
  return c.send(h, &iov, payload.empty() ? 0 : 1, std::span<const int>(&fd, 1));
}

// Sends a Hello with `fd` attached; returns the HelloAck (or nothing).
std::optional<RawFrame> hello_with_fd(int sock, int fd) {
  const auto h = make_header(wire::Kind::Hello, 0, 0, 0, wire::kFlagWindow);
  if (!send_with_fd(sock, h, hello_payload(kApiName, kApiSignature), fd)) return {};
  RawFrame f;
  if (recv_frame(sock, &f) != Got::Frame || f.kind() != wire::Kind::HelloAck) return {};
  return f;
}

bool window_granted(const std::optional<RawFrame> &ack) {
  return ack && ack->h.func == 0 && (ack->h.flags & wire::kFlagWindow) != 0;
}

// A hello from a guest in a VM naming its slice of the VM's region.
std::optional<RawFrame> hello_with_slice(int sock, uint64_t offset, uint64_t bytes) {
  auto payload = hello_payload(kApiName, kApiSignature);
  for (const uint64_t v : {offset, bytes}) {
    const auto *b = reinterpret_cast<const uint8_t *>(&v);
    payload.insert(payload.end(), b, b + 8);
  }
  if (!send_frame(sock, make_header(wire::Kind::Hello, 0, 0, 0, wire::kFlagVmWindow), payload)) {
    return {};
  }
  RawFrame f;
  if (recv_frame(sock, &f) != Got::Frame || f.kind() != wire::Kind::HelloAck) return {};
  return f;
}

// Where a guest in a VM finds its window: a slice of the VM's region.
struct VmSlice {
  int region_fd;
  uint64_t offset, bytes;
};

// A guest with a window: the memfd (or its VM's slice), the test's mapping
// of it, a context and a 64 KiB device buffer.
class WindowGuest {
 public:
  explicit WindowGuest(const Router &router, uint64_t bytes = kWindow) : g_(router.endpoint()) {
    std::string error;
    fd_ = create_window_fd(bytes, &error);
    map_ = std::make_unique<MappedWindow>(fd_, bytes);
    ack_ = hello_with_fd(g_.fd(), fd_);
  }
  WindowGuest(const Router &router, VmSlice slice) : g_(router.endpoint()) {
    map_ = std::make_unique<MappedWindow>(slice.region_fd, slice.bytes, slice.offset);
    ack_ = hello_with_slice(g_.fd(), slice.offset, slice.bytes);
  }
  ~WindowGuest() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool served() const { return ack_ && ack_->h.func == 0; }

  bool granted() const { return window_granted(ack_); }
  const std::optional<RawFrame> &ack() const { return ack_; }
  RawGuest &raw() { return g_; }
  uint8_t *mem() { return map_->base(); }
  int fd() const { return fd_; }

  uint64_t make_buffer() {
    const auto c =
        g_.call(FN_acc_context_create, {in_ptr(1, 4, {'w', 'i', 'n', 0}), out_ptr(8, 1)});
    if (!c) return 0;
    const uint64_t ctx = returned_handle(*c, 2);
    ctx_ = ctx;
    const auto b = g_.call(FN_acc_buffer_create, {u64(ctx), size_arg(kBuffer), out_ptr(8, 1)});
    return b ? returned_handle(*b, 3) : 0;
  }

  // acc_buffer_write(buf, 0, <window bytes at `offset`>, n) as the guest
  // library encodes it, tagged; `table` rewrites the reference table.
  std::optional<RawFrame> write(uint64_t buf, uint64_t offset, uint64_t n,
                                void (*table)(std::vector<uint8_t> &) = nullptr) {
    auto payload = write_payload(buf, offset, n);
    if (table != nullptr) table(payload);
    return g_.call_raw(FN_acc_buffer_write, payload, wire::kFlagTagged);
  }
  std::vector<uint8_t> write_payload(uint64_t buf, uint64_t offset, uint64_t n) {
    return transfer_payload(buf, offset, n, false);
  }

  // acc_buffer_read(buf, 0, <window space at `offset`>, n), tagged.
  std::optional<RawFrame> read(uint64_t buf, uint64_t offset, uint64_t n) {
    return g_.call_raw(FN_acc_buffer_read, read_payload(buf, offset, n), wire::kFlagTagged);
  }
  std::vector<uint8_t> read_payload(uint64_t buf, uint64_t offset, uint64_t n) {
    return transfer_payload(buf, offset, n, true);
  }
  uint64_t context() const { return ctx_; }

  static constexpr uint64_t kBuffer = 64 << 10;

 private:
  // acc_buffer_write/read(buf, 0, data, n): the data are n window bytes at
  // `offset` (write), or window space there for the server to fill (read).
  std::vector<uint8_t> transfer_payload(uint64_t buf, uint64_t offset, uint64_t n, bool read) {
    ChosenPlacer placer(offset);
    Writer w;
    w.set_window(&placer);
    blob(w, [&] { w.put_u64(buf); });
    blob(w, [&] { w.put<size_t>(0); });
    blob(w, [&] {
      w.put_u8(1);
      w.put_u64(n);
      if (read) {
        w.put_out_space(n);
      } else {
        w.put_bulk(mem(), n);  // placed at `offset` by reference
      }
    });
    blob(w, [&] { w.put<size_t>(n); });
    return flatten(w);
  }

  template <class F>
  static void blob(Writer &w, F put) {
    const auto m = w.begin_blob();
    put();
    w.end_blob(m);
  }

  RawGuest g_;
  uint64_t ctx_ = 0;
  int fd_ = -1;
  std::unique_ptr<MappedWindow> map_;
  std::optional<RawFrame> ack_;
};

// The data a tagged reply names: the blob of argument `arg` holds a count
// and a bulk array, here a reference into the guest's window.
const uint8_t *reply_data(const RawFrame &f, const WindowView &w, int arg, uint64_t n) {
  Reader r = Reader::tagged(f.payload.data(), f.payload.size(), w);
  r.get<wire::ReplyPrefix>();
  for (int i = 0; i <= arg; ++i) r.blob();
  Reader b = r.blob();
  if (b.get_u64() != n) return nullptr;
  return b.bulk(n);
}

// A guest with a window, a context and a 64 KiB device buffer.
class WindowBuffer : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(g.granted());
    buf = g.make_buffer();
    ASSERT_NE(buf, 0u);
  }
  Router router;
  WindowGuest g{router};
  uint64_t buf = 0;
};

TEST_F(WindowBuffer, DataTravelsThroughTheWindowBothWays) {
  const auto data = pattern_bytes(WindowGuest::kBuffer);
  std::memcpy(g.mem() + 8192, data.data(), data.size());
  const auto w = g.write(buf, 8192, data.size());
  EXPECT_STATUS(w, g.raw(), ReplyStatus::Ok);
  EXPECT_EQ(return_value(*w), 0);

  // The server reads into the space the guest set aside, and the reply
  // names it instead of carrying the bytes.
  std::memset(g.mem() + 262144, 0, data.size());
  const auto r = g.read(buf, 262144, data.size());
  EXPECT_STATUS(r, g.raw(), ReplyStatus::Ok);
  EXPECT_EQ(return_value(*r), 0);
  EXPECT_NE(r->h.flags & wire::kFlagTagged, 0u);
  EXPECT_LT(r->payload.size(), 1024u);  // the 64 KiB stayed in the window
  const uint8_t *got = reply_data(*r, {g.mem(), kWindow}, 2, data.size());
  ASSERT_EQ(got, g.mem() + 262144);
  EXPECT_EQ(std::memcmp(got, data.data(), data.size()), 0);
}

TEST_F(WindowBuffer, ReferencesOutsideTheWindowAreRefused) {
  // Past the end, straddling the end, and wrapping 2^64.
  for (const uint64_t offset : {kWindow, kWindow - 100, ~uint64_t{0} - 10}) {
    SCOPED_TRACE(offset);
    EXPECT_STATUS(g.write(buf, offset, 4096), g.raw(), ReplyStatus::BadFrame);
    EXPECT_STATUS(g.read(buf, offset, 4096), g.raw(), ReplyStatus::BadFrame);
  }
  // The session goes on: the same call inside the window works.
  const auto ok = g.write(buf, kWindow - 4096, 4096);
  EXPECT_STATUS(ok, g.raw(), ReplyStatus::Ok);
  EXPECT_EQ(return_value(*ok), 0);
}

TEST_F(WindowBuffer, MalformedReferenceTablesAreRefused) {
  using Edit = void (*)(std::vector<uint8_t> &);
  const Edit edits[] = {
      // A count larger than the payload.
      [](std::vector<uint8_t> &p) { p[p.size() - 8] = 0xff; },
      // A non-zero trailer word.
      [](std::vector<uint8_t> &p) { p[p.size() - 1] = 1; },
      // An unknown entry kind.
      [](std::vector<uint8_t> &p) { p[p.size() - 8 - 8] = 7; },
      // The data named by an out entry (the server must not read it as data).
      [](std::vector<uint8_t> &p) { p[p.size() - 8 - 8] = kRefOut; },
      // A tag past the table.
      [](std::vector<uint8_t> &p) {
        // The tag sits right before the last blob (u32 length + size_t).
        p[p.size() - 8 - sizeof(RefEntry) - 12 - 4] = 9;
      },
  };
  for (size_t i = 0; i < std::size(edits); ++i) {
    SCOPED_TRACE(i);
    EXPECT_STATUS(g.write(buf, 0, 4096, edits[i]), g.raw(), ReplyStatus::BadFrame);
  }
  const auto ok = g.write(buf, 0, 4096);
  EXPECT_STATUS(ok, g.raw(), ReplyStatus::Ok);
}

TEST(Window, ReferencesWithoutAWindowAreRefused) {
  Router router;
  RawGuest g(router.endpoint());
  ASSERT_EQ(g.hello(kApiName, kApiSignature), 0);
  ChosenPlacer placer(0);
  Writer w;
  w.set_window(&placer);
  const auto m = w.begin_blob();
  std::vector<uint8_t> name(4096, 'x');
  name.back() = 0;
  w.put_u8(1);
  w.put_u64(name.size());
  w.put_bulk(name.data(), name.size());
  w.end_blob(m);
  const auto m2 = w.begin_blob();
  w.put_u8(1);
  w.put_u64(1);
  w.end_blob(m2);
  EXPECT_STATUS(g.call_raw(FN_acc_context_create, flatten(w), wire::kFlagTagged), g,
                ReplyStatus::BadFrame);
  EXPECT_STATUS(g.call(FN_acc_get_version, {out_ptr(4, 1), out_ptr(4, 1)}), g, ReplyStatus::Ok);
}

TEST(Window, UnsealedWindowsAreRefusedAndDataGoesInline) {
  Router router({"--max-window-mb", "1"});
  {  // A plain memfd: it could shrink under the server's mapping.
    const int fd = ::memfd_create("unsealed", MFD_CLOEXEC);
    ASSERT_EQ(::ftruncate(fd, kWindow), 0);
    RawGuest g(router.endpoint());
    const auto ack = hello_with_fd(g.fd(), fd);
    ::close(fd);
    ASSERT_TRUE(ack.has_value());
    EXPECT_EQ(ack->h.func, 0u);  // the guest is served, without a window
    EXPECT_FALSE(window_granted(ack));
    EXPECT_STATUS(g.call(FN_acc_get_version, {out_ptr(4, 1), out_ptr(4, 1)}), g, ReplyStatus::Ok);
  }
  {  // Not a memory file at all.
    const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    RawGuest g(router.endpoint());
    EXPECT_FALSE(window_granted(hello_with_fd(g.fd(), fd)));
    ::close(fd);
  }
  {  // Within the limit: granted.
    WindowGuest g(router, kWindow);
    EXPECT_TRUE(g.granted());
  }
  router.stop();
  EXPECT_NE(router.process().err().find("not a memfd sealed"), std::string::npos)
      << router.process().err();
}

// A window larger than the operator allows is granted up to the limit: the
// HelloAck says how much, the server maps only that much, and a reference
// past it is refused although the guest's memfd holds those bytes.
TEST(Window, AWindowOverTheLimitIsGrantedUpToIt) {
  Router router({"--max-window-mb", "1"});
  WindowGuest g(router, 4 * kWindow);
  ASSERT_TRUE(g.granted());
  ASSERT_TRUE(g.ack().has_value());
  ASSERT_EQ(g.ack()->payload.size(), 8u);
  uint64_t granted = 0;
  std::memcpy(&granted, g.ack()->payload.data(), 8);
  EXPECT_EQ(granted, kWindow);
  const uint64_t buf = g.make_buffer();
  ASSERT_NE(buf, 0u);
  // Inside the granted part, the data goes by reference and comes back.
  for (uint64_t i = 0; i < 4096; ++i) g.mem()[i] = static_cast<uint8_t>(i * 7);
  EXPECT_STATUS(g.write(buf, 0, 4096), g.raw(), ReplyStatus::Ok);
  // Past it: refused by the router, never read by the server.
  EXPECT_STATUS(g.write(buf, kWindow, 4096), g.raw(), ReplyStatus::BadFrame);
  EXPECT_STATUS(g.write(buf, kWindow - 2048, 4096), g.raw(), ReplyStatus::BadFrame);
  EXPECT_STATUS(g.raw().call(FN_acc_get_version, {out_ptr(4, 1), out_ptr(4, 1)}), g.raw(),
                ReplyStatus::Ok);
}

TEST_F(WindowBuffer, TheGuestCannotShrinkItsWindowUnderTheServer) {
  EXPECT_NE(::ftruncate(g.fd(), 4096), 0);
  EXPECT_EQ(errno, EPERM);
  EXPECT_STATUS(g.read(buf, kWindow - 65536, 65536), g.raw(), ReplyStatus::Ok);
}

// Window bytes a call in flight is filling cannot be named by another call
// until its reply: the guest would read or write them while the server does.
TEST_F(WindowBuffer, ReferencesToBytesBeingFilledAreRefused) {
  // Thread 1's server thread sleeps; its read (into [0, 64 KiB)) waits behind it.
  const uint64_t sleeping =
      g.raw().send_call(FN_acc_sleep, encode({u64(g.context()), scalar(500, 4)}), 0, 1);
  const uint64_t reading =
      g.raw().send_call(FN_acc_buffer_read, g.read_payload(buf, 0, 65536), wire::kFlagTagged, 1);
  // Thread 2 names those bytes as data, then as its own out buffer: refused at once.
  std::string why;
  const uint64_t w1 = g.raw().send_call(FN_acc_buffer_write, g.write_payload(buf, 4096, 4096),
                                        wire::kFlagTagged, 2);
  auto r = g.raw().wait_reply(w1, &why);
  ASSERT_TRUE(r.has_value()) << why;
  EXPECT_EQ(prefix_of(*r).status, static_cast<uint32_t>(ReplyStatus::BadArgument));
  const uint64_t r1 = g.raw().send_call(FN_acc_buffer_read, g.read_payload(buf, 32768, 65536),
                                        wire::kFlagTagged, 2);
  r = g.raw().wait_reply(r1, &why);
  ASSERT_TRUE(r.has_value()) << why;
  EXPECT_EQ(prefix_of(*r).status, static_cast<uint32_t>(ReplyStatus::BadArgument));
  // Elsewhere in the window: not refused, even now (it runs once the
  // sleeping context is free again, so its reply comes in any order).
  const uint64_t w2 = g.raw().send_call(FN_acc_buffer_write, g.write_payload(buf, 131072, 4096),
                                        wire::kFlagTagged, 2);
  std::set<uint64_t> waiting = {sleeping, reading, w2};
  while (!waiting.empty()) {
    RawFrame f;
    ASSERT_EQ(recv_frame(g.raw().fd(), &f, 10s), Got::Frame);
    ASSERT_EQ(f.kind(), wire::Kind::Reply);
    EXPECT_EQ(waiting.erase(f.h.call_id), 1u) << f.h.call_id;
    EXPECT_EQ(prefix_of(f).status, 0u) << f.h.call_id;
  }
  // Once the read has been answered, its bytes are the guest's again.
  EXPECT_STATUS(g.write(buf, 4096, 4096), g.raw(), ReplyStatus::Ok);
}

size_t open_fds(pid_t pid) {
  size_t n = 0;
  if (DIR *d = ::opendir(("/proc/" + std::to_string(pid) + "/fd").c_str())) {
    while (::readdir(d) != nullptr) ++n;
    ::closedir(d);
  }
  return n;
}

TEST(Window, DescriptorsSentWithCallsAreClosedAtOnce) {
  Router router;
  WindowGuest g(router);
  ASSERT_TRUE(g.granted());
  ASSERT_EQ(g.raw().call(FN_acc_context_count, {})->h.func, FN_acc_context_count);
  const size_t before = open_fds(router.process().pid());
  const auto payload = encode({});
  for (int i = 0; i < 300; ++i) {
    const auto h = make_header(wire::Kind::Call, FN_acc_context_count, 1000 + i, 1);
    ASSERT_TRUE(send_with_fd(g.raw().fd(), h, payload, g.fd()));
    std::string why;
    ASSERT_TRUE(g.raw().wait_reply(1000 + i, &why).has_value()) << why;
  }
  EXPECT_LE(open_fds(router.process().pid()), before + 2);
}

// A VM's shared region (hira-router --vm-window): guests name slices of it.
class VmRegionTest : public ::testing::Test {
 protected:
  static constexpr uint64_t kRegion = 8 << 20;
  static int make_region() {
    std::string error;
    return create_sealed_memfd("test-vm-region", kRegion, &error);
  }
  static std::string region_path(int fd) {
    return "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(fd);
  }
  int region = make_region();
  Router router{{"--vm-window", "local=" + region_path(region)}};
  void TearDown() override { ::close(region); }
};

TEST_F(VmRegionTest, ASliceCarriesDataBothWays) {
  WindowGuest g(router, VmSlice{region, 2 << 20, 1 << 20});
  ASSERT_TRUE(g.granted());
  const uint64_t buf = g.make_buffer();
  ASSERT_NE(buf, 0u);
  const auto data = pattern_bytes(WindowGuest::kBuffer);
  std::memcpy(g.mem() + 4096, data.data(), data.size());
  EXPECT_STATUS(g.write(buf, 4096, data.size()), g.raw(), ReplyStatus::Ok);
  std::memset(g.mem() + 131072, 0, data.size());
  const auto r = g.read(buf, 131072, data.size());
  EXPECT_STATUS(r, g.raw(), ReplyStatus::Ok);
  EXPECT_LT(r->payload.size(), 1024u);
  // The server wrote into the slice, at the slice's offset in the region.
  EXPECT_EQ(std::memcmp(g.mem() + 131072, data.data(), data.size()), 0);
  // References past the slice are refused even though the region goes on.
  EXPECT_STATUS(g.write(buf, 1 << 20, 4096), g.raw(), ReplyStatus::BadFrame);
}

TEST_F(VmRegionTest, SlicesOutsideTheRegionOrTakenAreRefusedButTheGuestIsServed) {
  WindowGuest first(router, VmSlice{region, 2 << 20, 2 << 20});
  ASSERT_TRUE(first.granted());
  // Overlapping a slice another guest process holds (from below, from
  // inside), past the region's end, misaligned, too small, wrapping: no
  // window, but the guest is served.
  for (const auto &[offset, bytes] :
       std::vector<std::pair<uint64_t, uint64_t>>{{1 << 20, 2 << 20},
                                                  {3 << 20, 2 << 20},
                                                  {7 << 20, 2 << 20},
                                                  {(4 << 20) + 100, 1 << 20},
                                                  {4 << 20, 4096},
                                                  {~uint64_t{0} - 4095, 1 << 20}}) {
    SCOPED_TRACE(offset);
    RawGuest g(router.endpoint());
    const auto ack = hello_with_slice(g.fd(), offset, bytes);
    ASSERT_TRUE(ack.has_value());
    EXPECT_EQ(ack->h.func, 0u);
    EXPECT_FALSE(window_granted(ack));
  }
  EXPECT_NE(router.process().err().find("holds that slice"), std::string::npos)
      << router.process().err();
  EXPECT_NE(router.process().err().find("not inside the VM's"), std::string::npos);
}

TEST_F(VmRegionTest, ASliceIsFreeAgainWhenItsGuestLeaves) {
  {
    WindowGuest first(router, VmSlice{region, 0, 1 << 20});
    ASSERT_TRUE(first.granted());
  }
  // Its session ends asynchronously: the slice comes free soon after.
  bool granted = false;
  for (int i = 0; i < 200 && !granted; ++i) {
    WindowGuest again(router, VmSlice{region, 0, 1 << 20});
    granted = again.granted();
    if (!granted) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(granted);
}

TEST(VmRegion, AGuestOfAVmWithoutARegionSendsDataInline) {
  Router router;
  RawGuest g(router.endpoint());
  const auto ack = hello_with_slice(g.fd(), 0, 1 << 20);
  ASSERT_TRUE(ack.has_value());
  EXPECT_EQ(ack->h.func, 0u);
  EXPECT_FALSE(window_granted(ack));
  EXPECT_NE(router.process().err().find("has no shared region"), std::string::npos)
      << router.process().err();
}

}  // namespace
}  // namespace hira::test
