// The virtio-vsock device as the vhost-user layer sees it: no feature bits
// of its own, the guest's CID in its configuration space, and queue starts
// and stops passed to the stream layer.
#pragma once

#include <cstring>
#include <vector>

#include "vhost_user.h"
#include "vsock_streams.h"

namespace hira::vsock {

class VsockDevice : public VirtioDevice {
 public:
  explicit VsockDevice(uint64_t cid) : cid_(cid) {}
  void attach(VsockStreams *streams) { streams_ = streams; }
  uint64_t device_features() const override { return 0; }
  std::vector<uint8_t> config() const override {
    std::vector<uint8_t> c(8);
    std::memcpy(c.data(), &cid_, 8);  // guest_cid, little-endian
    return c;
  }
  void queue_started(size_t i) override {
    if (streams_ == nullptr) return;
    if (i == kRxQueue) streams_->rx_kicked();
    if (i == kTxQueue) streams_->tx_kicked();
  }
  void queue_stopped(size_t i) override {
    if (streams_ != nullptr && (i == kRxQueue || i == kTxQueue)) streams_->reset();
  }

 private:
  uint64_t cid_;
  VsockStreams *streams_ = nullptr;
};

}  // namespace hira::vsock
