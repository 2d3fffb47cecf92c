// What hira-vsock does with a guest's virtqueues. The fuzzer's bytes are
// the guest's RAM: descriptor tables, ring indices and packets at the ring
// addresses the VMM gave. The VMM's set-up is real vhost-user messages to
// the real VhostUserBackend, the device is the real VsockDevice and stream
// layer, and each stream's host side is a socket pair whose far end offers
// bytes for the guest, so the receive path runs too. Nothing a guest writes
// may crash the backend or make it read or write outside guest memory
// (ASan sees the mapping's edges: guest RAM is exactly the memfd's size).
#include "vsock_device.h"

#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <vector>

#include "vhost_user.h"
#include "vhost_user_frontend.h"
#include "vsock_streams.h"

namespace {

using namespace hira::vsock;

constexpr uint64_t kRam = 64 * 1024;
constexpr uint64_t kVmmBase = 0x7f0000000000;  // where the "VMM" maps guest RAM
constexpr uint32_t kRing = 64;
constexpr uint64_t kQueueStride = 0x1000;  // desc, then avail at +0x400, used at +0x800

int ram_fd() {
  static const int fd = [] {
    const int f = ::memfd_create("fuzz-guest-ram", MFD_CLOEXEC);
    if (f < 0 || ::ftruncate(f, kRam) != 0) ::abort();
    return f;
  }();
  return fd;
}

struct Session {
  int sv[2] = {-1, -1};
  int kicks[3] = {-1, -1, -1}, calls[3] = {-1, -1, -1};
  std::vector<int> near_ends, far_ends;  // each stream's host socket, and the router's end
  VsockDevice device{3};
  VhostUserBackend backend{device};
  std::unique_ptr<VsockStreams> streams;

  Session() {
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) ::abort();
    StreamsConfig config;
    config.guest_cid = 3;
    config.port = 5723;
    config.max_streams = 8;
    streams = std::make_unique<VsockStreams>(
        config, backend,
        [this](std::string *) {
          int pair[2];
          if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, pair) != 0) {
            return -1;
          }
          // Bytes "from the router" for the guest, more than one buffer holds.
          static const std::vector<char> bytes(10000, 'r');
          [[maybe_unused]] const ssize_t n = ::write(pair[1], bytes.data(), bytes.size());
          far_ends.push_back(pair[1]);
          near_ends.push_back(pair[0]);
          return pair[0];
        },
        [](int) {}, [](const std::string &) {});
    device.attach(streams.get());
  }
  ~Session() {
    streams.reset();
    for (int fd : {sv[0], sv[1]}) ::close(fd);
    for (int i = 0; i < 3; ++i) {
      if (calls[i] >= 0) ::close(calls[i]);
    }
    for (int fd : far_ends) ::close(fd);
  }
  // Writes a message on the VMM's end and has the backend handle it.
  void send(uint32_t request, const void *payload, uint32_t size, int fd = -1) {
    if (!hira::test::send_vhost_user(sv[0], request, payload, size,
                                     fd >= 0 ? std::vector<int>{fd} : std::vector<int>{})) {
      ::abort();
    }
    std::string error;
    backend.handle_one(sv[1], &error);
    char drain[512];  // replies
    while (::recv(sv[0], drain, sizeof(drain), MSG_DONTWAIT) > 0) {
    }
  }
  void start() {
    const uint64_t features = vu::kFeatureVersion1 | vu::kFeatureProtocolFeatures;
    send(vu::kSetFeatures, &features, 8);
    struct {
      uint32_t nregions, padding;
      vu::MemRegion r;
    } table{1, 0, {0, kRam, kVmmBase, 0}};
    send(vu::kSetMemTable, &table, sizeof(table), ::dup(ram_fd()));
    for (uint32_t q = 0; q < 3; ++q) {
      const vu::VringState num{q, kRing}, base{q, 0}, on{q, 1};
      send(vu::kSetVringNum, &num, sizeof(num));
      send(vu::kSetVringBase, &base, sizeof(base));
      const uint64_t ring = kVmmBase + q * kQueueStride;
      const vu::VringAddr addr{q, 0, ring, ring + 0x800, ring + 0x400, 0};
      send(vu::kSetVringAddr, &addr, sizeof(addr));
      kicks[q] = ::eventfd(0, EFD_CLOEXEC);
      calls[q] = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      const uint64_t index = q;
      send(vu::kSetVringKick, &index, 8, kicks[q]);
      ::close(kicks[q]);  // the backend has its own copy
      send(vu::kSetVringCall, &index, 8, calls[q]);
      send(vu::kSetVringEnable, &on, sizeof(on));
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static uint8_t *ram = static_cast<uint8_t *>(
      ::mmap(nullptr, kRam, PROT_READ | PROT_WRITE, MAP_SHARED, ram_fd(), 0));
  std::memset(ram, 0, kRam);
  std::memcpy(ram, data, std::min<size_t>(size, kRam));
  Session s;
  s.start();
  // The guest kicks its queues a few times; the router side has bytes.
  for (int round = 0; round < 3; ++round) {
    s.streams->tx_kicked();
    s.streams->rx_kicked();
    // Streams the guest opened: their router side is readable and writable
    // (a stream reset in the meantime has closed its socket; the backend
    // ignores descriptors it no longer knows).
    const std::vector<int> fds = s.near_ends;
    for (const int fd : fds) s.streams->host_ready(fd, true, true);
  }
  return 0;
}
