// The backend side of the vhost-user protocol (QEMU docs/interop/vhost-user.rst):
// one connection from the VMM, messages that describe guest memory and the
// virtqueues. The VMM is trusted no more than it must be: every message is
// bounded and checked, and a message that breaks the protocol ends the
// connection rather than corrupting the backend.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "guest_memory.h"
#include "virtqueue.h"

namespace hira::vsock {

namespace vu {
enum Request : uint32_t {
  kGetFeatures = 1,
  kSetFeatures = 2,
  kSetOwner = 3,
  kResetOwner = 4,
  kSetMemTable = 5,
  kSetLogBase = 6,
  kSetLogFd = 7,
  kSetVringNum = 8,
  kSetVringAddr = 9,
  kSetVringBase = 10,
  kGetVringBase = 11,
  kSetVringKick = 12,
  kSetVringCall = 13,
  kSetVringErr = 14,
  kGetProtocolFeatures = 15,
  kSetProtocolFeatures = 16,
  kGetQueueNum = 17,
  kSetVringEnable = 18,
  kGetConfig = 24,
  kSetConfig = 25,
};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kFlagVersionMask = 0x3;
constexpr uint32_t kFlagReply = 0x4;
constexpr uint32_t kFlagNeedReply = 0x8;
constexpr uint64_t kVringNoFd = 1u << 8;
constexpr uint64_t kVringIndexMask = 0xff;

constexpr uint64_t kFeatureProtocolFeatures = 1ull << 30;
constexpr uint64_t kFeatureVersion1 = 1ull << 32;
constexpr uint64_t kProtocolReplyAck = 1ull << 3;
constexpr uint64_t kProtocolConfig = 1ull << 9;

constexpr uint32_t kMaxPayload = 4096;
constexpr size_t kMaxFds = 8;

struct Header {
  uint32_t request;
  uint32_t flags;
  uint32_t size;
};
struct VringState {
  uint32_t index;
  uint32_t num;
};
struct VringAddr {
  uint32_t index;
  uint32_t flags;
  uint64_t desc, used, avail, log;
};
struct MemRegion {
  uint64_t guest_phys_addr, memory_size, userspace_addr, mmap_offset;
};
struct ConfigHeader {
  uint32_t offset, size, flags;
};
}  // namespace vu

// One message as received: header, payload, and the descriptors it carried.
struct VhostUserMessage {
  vu::Header header{};
  std::vector<uint8_t> payload;
  std::vector<int> fds;
};

// What a device is, for the protocol layer: its queues, feature bits and
// configuration space, and what to do when a queue starts or stops.
class VirtioDevice {
 public:
  virtual ~VirtioDevice() = default;
  virtual uint64_t device_features() const = 0;
  virtual std::vector<uint8_t> config() const = 0;
  virtual void queue_started(size_t index) = 0;
  virtual void queue_stopped(size_t index) = 0;
};

class VhostUserBackend {
 public:
  static constexpr size_t kQueues = 3;  // virtio-vsock: rx, tx, event

  explicit VhostUserBackend(VirtioDevice &device) : device_(device) {}
  ~VhostUserBackend();

  // Reads one message from fd and handles it. False: the connection is
  // over (closed or broke the protocol; *error says which).
  bool handle_one(int fd, std::string *error);

  const GuestMemory &memory() const { return memory_; }
  Virtqueue &queue(size_t i) { return queues_[i].vq; }
  int kick_fd(size_t i) const { return queues_[i].kick; }
  // Interrupts the guest for queue i if it wants one.
  void notify(size_t i);
  bool running(size_t i) const { return queues_[i].started && queues_[i].enabled; }

 private:
  struct Queue {
    Virtqueue vq;
    int kick = -1, call = -1;
    bool started = false, enabled = false;
  };
  bool dispatch(int fd, VhostUserMessage &m, std::string *error);
  bool reply(int fd, const VhostUserMessage &m, const void *data, uint32_t size);
  void stop(size_t i);
  bool protocol(uint64_t bit) const { return (protocol_features_ & bit) != 0; }

  VirtioDevice &device_;
  GuestMemory memory_;
  std::array<Queue, kQueues> queues_;
  uint64_t features_ = 0, protocol_features_ = 0;
};

// What handle_one() says when the VMM hung up between messages (QEMU exits).
inline constexpr const char *kVmmClosed = "the VMM closed the connection";

// Reads one vhost-user message (header, payload, SCM_RIGHTS descriptors).
bool read_vhost_user_message(int fd, VhostUserMessage *m, std::string *error);

}  // namespace hira::vsock
