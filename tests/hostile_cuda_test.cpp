// A hostile CUDA guest, speaking the wire protocol by hand against the real
// router and API server (the toolkit's stub libcuda behind it: every call
// that reaches the driver answers CUDA_ERROR_STUB_LIBRARY, 34). What the
// server decides from a guest's numbers before the driver sees them:
// 2D/3D copies whose rows reach past the host bytes that arrived, launch,
// stream and kernel-node attributes that would hand the driver a guest's
// bytes as a pointer, and attribute queries whose value has no buffer.
#include <gtest/gtest.h>

#include <cuda.h>

#include <cstddef>
#include <cstring>

#include "call_builder.h"
#include "cuda_protocol.h"  // generated: kApiName, kApiSignature, FN_*
#include "hira/wire.h"
#include "raw_guest.h"
#include "test_support.h"

namespace hira::test {
namespace {

constexpr int32_t kInvalidValue = 1, kNotSupported = 801, kStub = 34;
constexpr int kHost = 1, kDevice = 2;  // CU_MEMORYTYPE_*

// struct hira_copy of lapis_specs/cuda.lapis, as it travels.
struct Copy {
  uint64_t srcXInBytes, srcY, srcZ, srcPitch, srcHeight;
  uint64_t dstXInBytes, dstY, dstZ, dstPitch, dstHeight;
  uint64_t WidthInBytes, Height, Depth;
  uint64_t srcDevice, dstDevice;
  int32_t srcMemoryType, dstMemoryType, kind;
};
static_assert(sizeof(Copy) == 136);

std::vector<uint8_t> bytes_of(const Copy &c) {
  std::vector<uint8_t> b(sizeof(c));
  std::memcpy(b.data(), &c, sizeof(c));
  return b;
}

class HostileCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(guest_.connected());
    ASSERT_EQ(guest_.hello(kApiName, kApiSignature), 0);
  }
  // hira_cu_copy(c, NULL, NULL, src[src_bytes], src_bytes, dst[dst_bytes],
  // dst_bytes, NULL stream, 0): the CUresult it returns.
  int32_t copy(const Copy &c, size_t src_bytes, size_t dst_bytes) {
    const auto r = guest_.call(
        FN_hira_cu_copy, {in_ptr(sizeof(Copy), 1, bytes_of(c)), handle(0), handle(0),
                          src_bytes != 0 ? in_ptr(1, src_bytes) : absent(), size_arg(src_bytes),
                          dst_bytes != 0 ? in_ptr(1, dst_bytes) : absent(), size_arg(dst_bytes),
                          handle(0), scalar(0, 4)});
    if (!r) {
      ADD_FAILURE() << guest_.last_error();
      return INT32_MIN;
    }
    return return_value(*r);
  }
  // A host-to-device copy of `rows` rows of 64 bytes, 64 apart.
  static Copy upload(uint64_t rows, uint64_t depth, int kind) {
    Copy c{};
    c.srcPitch = 64;
    c.srcHeight = rows;
    c.dstPitch = 64;
    c.dstHeight = rows;
    c.WidthInBytes = 64;
    c.Height = rows;
    c.Depth = depth;
    c.dstDevice = 0x100000;
    c.srcMemoryType = kHost;
    c.dstMemoryType = kDevice;
    c.kind = kind;
    return c;
  }

  Router router_;
  RawGuest guest_{router_.endpoint()};
};

// Rows past the host bytes that arrived would have the driver read past
// them (the server's memory): refused with CUDA_ERROR_INVALID_VALUE. A copy
// whose rows fit goes to the driver (the stub's answer).
TEST_F(HostileCuda, CopiesWhoseRowsPassTheBytesThatArrivedAreRefused) {
  EXPECT_EQ(copy(upload(1000, 1, 0), 64, 0), kInvalidValue);                 // 2D
  EXPECT_EQ(copy(upload(1000, 1, 1), 64, 0), kInvalidValue);                 // 2D unaligned
  EXPECT_EQ(copy(upload(2, 1u << 20, 2), 2 * 64, 0), kInvalidValue);         // 3D, deep
  EXPECT_EQ(copy(upload(1ull << 62, 1ull << 62, 2), 64, 0), kInvalidValue);  // overflowing
  Copy down = upload(1000, 1, 0);
  std::swap(down.srcMemoryType, down.dstMemoryType);
  down.srcDevice = down.dstDevice;
  EXPECT_EQ(copy(down, 0, 64), kInvalidValue);  // device to host, short destination
  EXPECT_EQ(copy(upload(1, 1, 0), 64, 0), kStub);
  EXPECT_EQ(copy(upload(4, 1, 2), 4 * 64, 0), kStub);
  // ... and the server keeps serving.
  const auto r = guest_.call(FN_cuInit, {scalar(0, 4)});
  EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
  EXPECT_EQ(return_value(*r), kStub);
}

// A launch attribute whose value the driver reads as a pointer (an event)
// is refused by the server even when the guest library would not send it.
TEST_F(HostileCuda, LaunchAttributesThatNamePointersAreRefused) {
  // hira_cu_launch_ex(f = NULL, dims, NULL stream, attrs[1], 1, NULL): one
  // CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT (7) whose value is garbage.
  std::vector<uint8_t> attr(72, 0xab);
  const uint32_t id = 7;
  std::memcpy(attr.data(), &id, sizeof(id));
  const uint32_t dims[7] = {1, 1, 1, 32, 1, 1, 0};
  std::vector<uint8_t> d(sizeof(dims));
  std::memcpy(d.data(), dims, sizeof(dims));
  const auto r =
      guest_.call(FN_hira_cu_launch_ex, {handle(0), in_ptr(sizeof(dims), 1, d), handle(0),
                                         in_ptr(1, attr.size(), attr), scalar(1, 4), absent()});
  EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
  EXPECT_EQ(return_value(*r), kNotSupported);
}

// Stream and kernel-node attributes are the same union: one whose value the
// driver reads as a pointer (CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_EVENT, 7) is
// refused by the server; a number (SYNCHRONIZATION_POLICY, 3) reaches the
// driver.
TEST_F(HostileCuda, StreamAndNodeAttributesThatNamePointersAreRefused) {
  std::vector<uint8_t> value(64, 0xab);
  for (const uint32_t fn : {FN_cuStreamSetAttribute, FN_cuGraphKernelNodeSetAttribute}) {
    auto r = guest_.call(fn, {handle(0), scalar(7, 4), in_ptr(1, value.size(), value)});
    EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
    EXPECT_EQ(return_value(*r), kNotSupported) << fn;
    r = guest_.call(fn, {handle(0), scalar(3, 4), in_ptr(1, value.size(), value)});
    EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
    EXPECT_EQ(return_value(*r), kStub) << fn;
  }
  // Reading one back would hand the guest the server's pointer: refused too.
  const auto r = guest_.call(FN_cuStreamGetAttribute, {handle(0), scalar(7, 4), out_ptr(1, 64)});
  EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
  EXPECT_EQ(return_value(*r), kNotSupported);
}

// Allocation properties (cuMemCreate) hold a pointer, the Windows handle
// metadata: one that is not NULL would be a guest's address in the server,
// and is refused before the driver reads it. The guest gets the error in
// the call's result, and no allocation.
TEST_F(HostileCuda, AllocationPropertiesWithAPointerAreRefused) {
  std::vector<uint8_t> props(sizeof(CUmemAllocationProp), 0);
  const uint64_t guest_address = 0x7fff0000ull;
  std::memcpy(props.data() + offsetof(CUmemAllocationProp, win32HandleMetaData), &guest_address,
              sizeof(guest_address));
  const auto result_of = [&](const std::vector<uint8_t> &p) {
    // hira_cu_mem_create(size, props, flags, &result): the handle, then result.
    const auto r = guest_.call(FN_hira_cu_mem_create,
                               {size_arg(2 << 20), in_ptr(p.size(), 1, p), scalar(0, 8), out_ptr(4, 1)});
    EXPECT_TRUE(r.has_value()) << guest_.last_error();
    if (!r) return std::make_pair(uint64_t{1}, INT32_MIN);
    Reader blobs = reply_blobs(*r);
    Reader ret = blobs.blob();
    const uint64_t handle = ret.get_u64();
    for (int i = 0; i < 3; ++i) blobs.blob();
    Reader out = blobs.blob();
    int32_t result = INT32_MIN;
    if (out.get_u64() == 1) std::memcpy(&result, out.bulk(sizeof(result)), sizeof(result));
    return std::make_pair(handle, result);
  };
  EXPECT_EQ(result_of(props), std::make_pair(uint64_t{0}, kInvalidValue));
  // Without it, the call reaches the driver (the stub's answer).
  std::fill(props.begin(), props.end(), 0);
  EXPECT_EQ(result_of(props), std::make_pair(uint64_t{0}, kStub));
}

// A memcpy node's host side is an offset into the guest's window (pinned
// memory the server reaches at every replay): one past the window is
// refused before the driver would read or write there. A node of device
// memory only goes to the driver (the stub's answer).
TEST_F(HostileCuda, MemcpyNodesReachOnlyTheGuestsWindow) {
  const auto node = [&](const Copy &c, uint64_t src_offset) {
    // hira_cu_memcpy_node(ADD, &node, graph, NULL, 0, NULL, NULL, c, NULL, NULL, src, 0, NULL)
    const auto r = guest_.call(
        FN_hira_cu_memcpy_node,
        {scalar(0, 4), out_ptr(8, 1), handle(0), absent(), size_arg(0), handle(0), handle(0),
         in_ptr(sizeof(Copy), 1, bytes_of(c)), handle(0), handle(0), scalar(src_offset, 8),
         scalar(0, 8), handle(0)});
    if (!r) {
      ADD_FAILURE() << guest_.last_error();
      return INT32_MIN;
    }
    return return_value(*r);
  };
  Copy from_host = upload(4, 1, 2);
  EXPECT_EQ(node(from_host, 1ull << 60), kInvalidValue);
  EXPECT_EQ(node(from_host, 0), kInvalidValue);  // this guest has no window at all
  Copy on_device = from_host;
  on_device.srcMemoryType = kDevice;
  on_device.srcDevice = 0x200000;
  EXPECT_EQ(node(on_device, 1ull << 60), kStub);
}

// An array's bytes travel as a number the router counts against the VM's
// quota; a guest that states fewer than its descriptor holds is refused
// before the driver allocates anything.
TEST_F(HostileCuda, ArraysSmallerThanTheirDescriptorAreRefused) {
  CUDA_ARRAY3D_DESCRIPTOR d{};
  d.Width = 1024;
  d.Height = 1024;
  d.Format = CU_AD_FORMAT_FLOAT;
  d.NumChannels = 1;
  std::vector<uint8_t> desc(sizeof(d));
  std::memcpy(desc.data(), &d, sizeof(d));
  const auto create = [&](uint64_t bytes) {
    // hira_cu_array_create(&array, &d, 3D, bytes)
    const auto r = guest_.call(FN_hira_cu_array_create, {out_ptr(8, 1), in_ptr(sizeof(d), 1, desc),
                                                         scalar(0, 4), scalar(bytes, 8)});
    if (!r) {
      ADD_FAILURE() << guest_.last_error();
      return INT32_MIN;
    }
    return return_value(*r);
  };
  EXPECT_EQ(create(0), kInvalidValue);
  EXPECT_EQ(create(4 << 20), kStub);  // the descriptor's 4 MiB: the driver's turn
}

// A batch of stream memory operations is a union per operation: one this
// cuda.h does not name is refused before the driver reads its fields.
TEST_F(HostileCuda, BatchesWithUnknownOperationsAreRefused) {
  std::vector<uint8_t> ops(2 * sizeof(CUstreamBatchMemOpParams), 0);
  CUstreamBatchMemOpParams barrier{};
  barrier.memoryBarrier.operation = CU_STREAM_MEM_OP_BARRIER;
  std::memcpy(ops.data(), &barrier, sizeof(barrier));
  const uint32_t unknown = 99;
  std::memcpy(ops.data() + sizeof(barrier), &unknown, sizeof(unknown));
  auto r = guest_.call(FN_cuStreamBatchMemOp_v2,
                       {handle(0), scalar(2, 4), in_ptr(sizeof(barrier), 2, ops), scalar(0, 4)});
  EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
  EXPECT_EQ(return_value(*r), kInvalidValue);
  ops.resize(sizeof(barrier));
  r = guest_.call(FN_cuStreamBatchMemOp_v2,
                  {handle(0), scalar(1, 4), in_ptr(sizeof(barrier), 1, ops), scalar(0, 4)});
  EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
  EXPECT_EQ(return_value(*r), kStub);  // a barrier alone: the driver's turn
}

// A pointer attribute the guest library never sends (it names an object of
// the server: CU_POINTER_ATTRIBUTE_CONTEXT, 1) arrives with the buffer the
// spec computes for it, none: refused before the driver could write a
// context into it.
TEST_F(HostileCuda, PointerAttributesThatDoNotTravelAreRefused) {
  const uint64_t device_pointer = 0x100000;
  auto r = guest_.call(FN_cuPointerGetAttribute, {in_ptr(1, 0), scalar(1, 4), u64(device_pointer)});
  EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
  EXPECT_EQ(return_value(*r), kNotSupported);
  // One that travels (CU_POINTER_ATTRIBUTE_MEMORY_TYPE, 2: 4 bytes) reaches the driver.
  r = guest_.call(FN_cuPointerGetAttribute, {in_ptr(1, 4), scalar(2, 4), u64(device_pointer)});
  EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
  EXPECT_EQ(return_value(*r), kStub);
}

// hira's own calls that return a handle give their status through an out
// argument the guest library always sends: a guest that sends none gets a
// reply, and its server goes on serving.
TEST_F(HostileCuda, OwnCallsWithoutTheirStatusArgumentAreAnswered) {
  // hira_cu_ctx_create(flags, dev, NULL), hira_cu_primary_ctx_retain(dev, NULL)
  auto r = guest_.call(FN_hira_cu_ctx_create, {scalar(0, 4), scalar(0, 4), absent()});
  EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
  r = guest_.call(FN_hira_cu_primary_ctx_retain, {scalar(0, 4), absent()});
  EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
  r = guest_.call(FN_hira_cu_ctx_create, {scalar(0, 4), scalar(0, 4), out_ptr(4, 1)});
  EXPECT_STATUS(r, guest_, ReplyStatus::Ok);
}

}  // namespace
}  // namespace hira::test
