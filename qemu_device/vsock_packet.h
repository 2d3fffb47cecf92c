// The virtio-vsock packet header and its constants (virtio 1.2, section 5.10).
#pragma once

#include <cstdint>

namespace hira::vsock {

struct [[gnu::packed]] PacketHeader {
  uint64_t src_cid;
  uint64_t dst_cid;
  uint32_t src_port;
  uint32_t dst_port;
  uint32_t len;
  uint16_t type;
  uint16_t op;
  uint32_t flags;
  uint32_t buf_alloc;
  uint32_t fwd_cnt;
};
static_assert(sizeof(PacketHeader) == 44);

enum Op : uint16_t {
  kOpRequest = 1,
  kOpResponse = 2,
  kOpRst = 3,
  kOpShutdown = 4,
  kOpRw = 5,
  kOpCreditUpdate = 6,
  kOpCreditRequest = 7,
};
constexpr uint16_t kTypeStream = 1;
constexpr uint32_t kShutdownReceive = 1, kShutdownSend = 2;
constexpr uint64_t kHostCid = 2;
// What Linux guests send at most per packet (VIRTIO_VSOCK_MAX_PKT_BUF_SIZE).
constexpr uint32_t kMaxPacketPayload = 64 * 1024;
// Queue numbers of a virtio-vsock device.
constexpr size_t kRxQueue = 0, kTxQueue = 1, kEventQueue = 2;

}  // namespace hira::vsock
