// A hostile OpenCL guest, speaking the wire protocol by hand against the
// real router and API server (PoCL): the paths that decide on the server
// what a guest's bytes mean (handles inside structs, deferred out buffers,
// Data frames) refuse what they must and keep serving.
#include <gtest/gtest.h>

#include <cstring>

#include "call_builder.h"
#include "hira/wire.h"
#include "opencl_protocol.h"  // generated: kApiName, kApiSignature, FN_*
#include "raw_guest.h"
#include "test_support.h"

namespace hira::test {
namespace {

// CL constants, spelled here so that this test needs no OpenCL header.
constexpr uint64_t kDeviceTypeAll = 0xFFFFFFFF;
constexpr uint64_t kMemReadWrite = 1;
constexpr uint32_t kImage1DBuffer = 0x10F6;
constexpr uint32_t kRgba = 0x10B5, kUnsignedInt8 = 0x10DA;

// A blob of raw bytes built from u8/u64 pieces.
class Bytes {
 public:
  Bytes &u8(uint8_t v) { return put(&v, 1); }
  Bytes &u32(uint32_t v) { return put(&v, 4); }
  Bytes &u64(uint64_t v) { return put(&v, 8); }
  std::vector<uint8_t> take() { return std::move(b_); }

 private:
  Bytes &put(const void *p, size_t n) {
    const auto *c = static_cast<const uint8_t *>(p);
    b_.insert(b_.end(), c, c + n);
    return *this;
  }
  std::vector<uint8_t> b_;
};

// The handle a call returned as its value (blob 0).
uint64_t returned_object(const RawFrame &f) {
  Reader r = reply_blobs(f);
  Reader b = r.blob();
  return b.get_u64();
}

class HostileOpenCl : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(guest_.connected());
    ASSERT_EQ(guest_.hello(kApiName, kApiSignature), 0);
    auto r = guest_.call(FN_clGetPlatformIDs, {scalar(1, 4), out_ptr(8, 1), out_ptr(4, 1)});
    EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
    platform_ = returned_handle(*r, 2);
    r = guest_.call(FN_clGetDeviceIDs, {handle(platform_), scalar(kDeviceTypeAll, 8), scalar(1, 4),
                                        out_ptr(8, 1), out_ptr(4, 1)});
    EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
    device_ = returned_handle(*r, 4);
    // clCreateContext(NULL, 1, &device, NULL, NULL, &err)
    r = guest_.call(FN_clCreateContext,
                    {absent(), scalar(1, 4), handles({device_}), u64(0), raw(), out_ptr(4, 1)});
    EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
    context_ = returned_object(*r);
    r = guest_.call(FN_clCreateCommandQueue,
                    {handle(context_), handle(device_), scalar(0, 8), out_ptr(4, 1)});
    EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
    queue_ = returned_object(*r);
    // clCreateBuffer(ctx, READ_WRITE, 4096, NULL, &err)
    r = guest_.call(FN_clCreateBuffer, {handle(context_), scalar(kMemReadWrite, 8), size_arg(4096),
                                        absent(), out_ptr(4, 1)});
    EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
    buffer_ = returned_object(*r);
    ASSERT_NE(platform_ * device_ * context_ * queue_ * buffer_, 0u);
  }

  // clEnqueueReadBuffer(queue, buffer, CL_FALSE, 0, size, <deferred ptr>, 0, NULL, NULL)
  std::vector<Arg> nonblocking_read(uint64_t size, uint64_t token) {
    return {handle(queue_), handle(buffer_), scalar(0, 4),
            size_arg(0),    size_arg(size),  raw(Bytes().u8(1).u64(size).u64(token).take()),
            scalar(0, 4),   absent(),        absent()};
  }

  // clCreateImage(ctx, READ_WRITE, {RGBA, UNSIGNED_INT8}, 1D image of 64
  // pixels from buffer id `buffer`, NULL, &err)
  std::vector<Arg> image_from_buffer(uint64_t buffer) {
    Bytes format;
    format.u32(kRgba).u32(kUnsignedInt8);
    Bytes desc;  // struct hira_image_desc: type, 6 sizes, 2 uints, buffer id
    desc.u32(kImage1DBuffer).u32(0).u64(64);
    for (int i = 0; i < 5; ++i) desc.u64(0);
    desc.u32(0).u32(0).u64(buffer);
    return {handle(context_),
            scalar(kMemReadWrite, 8),
            in_ptr(8, 1, format.take()),
            in_ptr(72, 1, desc.take()),
            absent(),
            out_ptr(4, 1)};
  }

  Router router_;
  RawGuest guest_{router_.endpoint()};
  uint64_t platform_ = 0, device_ = 0, context_ = 0, queue_ = 0, buffer_ = 0;
};

// cl_image_desc.buffer travels as a wire id: one the guest does not hold is
// refused as that argument's bad handle, before the implementation sees it.
TEST_F(HostileOpenCl, ImageDescWithAForeignBufferIdIsRefused) {
  const auto r = guest_.call(FN_clCreateImage, image_from_buffer(0xdeadbeef));
  EXPECT_STATUS(r, guest_, ReplyStatus::BadHandle);
  EXPECT_EQ(prefix_of(*r).detail, 3u);  // image_desc
  // With the guest's own buffer it works.
  const auto ok = guest_.call(FN_clCreateImage, image_from_buffer(buffer_));
  EXPECT_STATUS(ok, guest_, ReplyStatus::Ok);
  EXPECT_NE(returned_object(*ok), 0u);  // the image
}

// A deferred out buffer larger than the per-guest cap is refused; a normal
// one comes back as a Data frame naming the guest's token, before the reply
// of the call that shows the read complete.
TEST_F(HostileOpenCl, DeferredReadsAreBoundedAndComeBeforeTheirSyncPoint) {
  const auto huge = guest_.call(FN_clEnqueueReadBuffer, nonblocking_read(uint64_t{1} << 39, 7));
  EXPECT_STATUS(huge, guest_, ReplyStatus::OutOfMemory);

  // The data may come as soon as the read is done (even before the read's
  // own reply); it must come before the reply that shows it complete.
  const uint64_t read =
      guest_.send_call(FN_clEnqueueReadBuffer, encode(nonblocking_read(4096, 0x5eed)));
  size_t data_frames = 0;
  RawFrame f;
  auto next = [&]() {
    for (;;) {
      if (recv_frame(guest_.fd(), &f) != Got::Frame) return false;
      if (f.kind() != wire::Kind::Data) return true;
      EXPECT_EQ(f.h.call_id, 0x5eedu);
      EXPECT_EQ(f.payload.size(), 4096u);
      ++data_frames;
    }
  };
  ASSERT_TRUE(next());
  EXPECT_EQ(f.kind(), wire::Kind::Reply);
  EXPECT_EQ(f.h.call_id, read);
  EXPECT_EQ(prefix_of(f).status, 0u);
  const uint64_t finish = guest_.send_call(FN_clFinish, encode({handle(queue_)}));
  ASSERT_TRUE(next());
  EXPECT_EQ(f.kind(), wire::Kind::Reply);
  EXPECT_EQ(f.h.call_id, finish);
  EXPECT_EQ(data_frames, 1u);  // exactly once, and before clFinish's reply
}

// A reply that no frame can carry (over 16 MiB for a guest whose calls are
// not tagged, so that nothing can follow the frame) is an error the guest
// gets at once; it used to wait forever. (Tagged calls get any size: see
// OpenClLargeTransfers.)
TEST_F(HostileOpenCl, AReplyTooLargeForAFrameFailsInsteadOfHanging) {
  const uint64_t bytes = uint64_t{wire::kMaxPayload} + (1u << 20);
  auto r = guest_.call(FN_clCreateBuffer, {handle(context_), scalar(kMemReadWrite, 8),
                                           size_arg(bytes), absent(), out_ptr(4, 1)});
  EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
  const uint64_t big = returned_object(*r);
  ASSERT_NE(big, 0u);
  // clEnqueueReadBuffer(queue, big, CL_TRUE, 0, bytes, ptr, 0, NULL, NULL)
  const uint64_t id = guest_.send_call(
      FN_clEnqueueReadBuffer,
      encode({handle(queue_), handle(big), scalar(1, 4), size_arg(0), size_arg(bytes),
              out_ptr(1, bytes), scalar(0, 4), absent(), absent()}));
  std::string why;
  const auto reply = guest_.wait_reply(id, &why, 60s);
  ASSERT_TRUE(reply.has_value()) << why;
  EXPECT_EQ(prefix_of(*reply).status, static_cast<uint32_t>(ReplyStatus::OutOfMemory));
  r = guest_.call(FN_clFinish, {handle(queue_)});
  EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
}

// Data frames go from servers to guests only: a guest that sends one is cut
// off, and the router serves the next guest.
TEST_F(HostileOpenCl, AGuestSendingDataIsDisconnected) {
  ASSERT_TRUE(send_frame(guest_.fd(), make_header(wire::Kind::Data, 0, 1), {1, 2, 3, 4}));
  EXPECT_TRUE(wait_closed(guest_.fd()));
  RawGuest next(router_.endpoint());
  EXPECT_EQ(next.hello(kApiName, kApiSignature), 0);
  const auto r = next.call(FN_clGetPlatformIDs, {scalar(0, 4), absent(), out_ptr(4, 1)});
  EXPECT_STATUS(r, next, ReplyStatus::Ok);
}

}  // namespace
}  // namespace hira::test

namespace hira::test {
namespace {

Arg sizes3(uint64_t a, uint64_t b, uint64_t c) {
  Bytes v;
  v.u64(a).u64(b).u64(c);
  return in_ptr(8, 3, v.take());
}

// clEnqueueReadBufferRect/WriteBufferRect with a host_origin whose byte
// offset wraps 2^64: the size the spec computes saturates instead of
// wrapping to a few bytes, so no host buffer size passes for it and the
// implementation never reads or writes outside the server's copy.
TEST_F(HostileOpenCl, RectTransfersWhoseHostOffsetWrapsAreRefused) {
  const uint64_t wraps = ~uint64_t{0} - 63;  // + a 64-byte region = 2^64
  for (const uint32_t func : {FN_clEnqueueReadBufferRect, FN_clEnqueueWriteBufferRect}) {
    for (const uint64_t claimed : {uint64_t{0}, uint64_t{64}, uint64_t{4096}}) {
      SCOPED_TRACE(std::to_string(func) + "/" + std::to_string(claimed));
      const auto r = guest_.call(
          func, {handle(queue_), handle(buffer_), scalar(1, 4), sizes3(0, 0, 0),
                 sizes3(wraps, 0, 0), sizes3(64, 1, 1), size_arg(0), size_arg(0), size_arg(0),
                 size_arg(0), in_ptr(1, claimed), scalar(0, 4), absent(), absent()});
      EXPECT_STATUS(r, guest_, ReplyStatus::BadArgument);
      EXPECT_EQ(prefix_of(*r).detail, 10u);  // ptr
    }
  }
  // The same transfer at a sane origin works: the server is intact.
  const auto ok =
      guest_.call(FN_clEnqueueReadBufferRect,
                  {handle(queue_), handle(buffer_), scalar(1, 4), sizes3(0, 0, 0), sizes3(0, 0, 0),
                   sizes3(64, 1, 1), size_arg(0), size_arg(0), size_arg(0), size_arg(0),
                   in_ptr(1, 64), scalar(0, 4), absent(), absent()});
  EXPECT_STATUS(ok, guest_, ReplyStatus::Ok);
  EXPECT_EQ(return_value(*ok), 0);
}

// clCreateImage2D with row_pitch * height wrapping to a few bytes.
TEST_F(HostileOpenCl, ImageSizesThatWrapAreRefused) {
  Bytes format;
  format.u32(kRgba).u32(kUnsignedInt8);
  constexpr uint64_t kCopyHostPtr = 1 << 5;
  const auto fmt = format.take();
  const uint64_t pitch = uint64_t{1} << 62;  // * 4 rows = 2^64: 0
  // 0 bytes is what the wrapped size claims; 64 what a guest might send.
  for (const uint64_t claimed : {uint64_t{0}, uint64_t{64}}) {
    const auto r =
        guest_.call(FN_clCreateImage2D, {handle(context_), scalar(kMemReadWrite | kCopyHostPtr, 8),
                                         in_ptr(8, 1, fmt), size_arg(16), size_arg(4),
                                         size_arg(pitch), in_ptr(1, claimed), out_ptr(4, 1)});
    EXPECT_STATUS(r, guest_, ReplyStatus::BadArgument);
    EXPECT_EQ(prefix_of(*r).detail, 6u);  // host_ptr
  }
}

}  // namespace
}  // namespace hira::test

namespace hira::test {
namespace {

// CL_MEM_HOST_PTR asked by hand: the server never answers with an address of
// its own (its copy of the guest's memory); the guest library answers the
// application with the application's pointer.
TEST_F(HostileOpenCl, HostPtrQueriesNeverRevealServerAddresses) {
  constexpr uint64_t kUseHostPtr = 1 << 3, kMemHostPtr = 0x1103;
  auto r =
      guest_.call(FN_clCreateBuffer, {handle(context_), scalar(kMemReadWrite | kUseHostPtr, 8),
                                      size_arg(4096), manual_ptr(1, 4096, 0x7000), out_ptr(4, 1)});
  EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
  const uint64_t buf = returned_object(*r);
  ASSERT_NE(buf, 0u);
  r = guest_.call(FN_clGetMemObjectInfo,
                  {handle(buf), scalar(kMemHostPtr, 4), size_arg(8), out_ptr(1, 8), absent()});
  EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
  EXPECT_EQ(return_value(*r), 0);
  Reader blobs = reply_blobs(*r);
  for (int i = 0; i < 4; ++i) blobs.blob();  // the return value, memobj, param_name, size
  Reader value = blobs.blob();
  ASSERT_EQ(value.get_u64(), 8u);
  const uint8_t *bytes = value.bulk(8);
  ASSERT_NE(bytes, nullptr);
  uint64_t reported = ~0ull;
  std::memcpy(&reported, bytes, 8);
  EXPECT_EQ(reported, 0u);
}

}  // namespace
}  // namespace hira::test
