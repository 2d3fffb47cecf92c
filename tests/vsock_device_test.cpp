// hira-vsock, the VM's virtio-vsock device backend, driven without QEMU:
// the test is the VMM (vhost-user messages, guest memory in a memfd it maps
// itself) and the guest's driver (virtqueues in that memory), and listens
// where the router would. The backend is the real process.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "hira/channel.h"
#include "test_support.h"
#include "vhost_user.h"
#include "vhost_user_frontend.h"
#include "vsock_packet.h"

namespace hira::test {
namespace {

namespace vu = hira::vsock::vu;
using hira::vsock::PacketHeader;

constexpr uint64_t kMemSize = 4 << 20;
constexpr uint32_t kRingSize = 64;
constexpr uint64_t kCid = 3;
constexpr uint32_t kPort = hira::kVsockPort;
constexpr uint64_t kTxBuffers = 0x100000, kTxSlot = 0x11000;
constexpr uint64_t kRxBuffers = 0x300000, kRxSlot = 0x1000;

uint64_t ring_base(size_t q) { return q * 0x10000; }

// The guest's side of one split virtqueue, in the test's mapping.
struct DriverQueue {
  uint8_t *mem = nullptr;
  size_t index = 0;
  uint16_t avail_idx = 0, used_seen = 0;
  int kick = -1, call = -1;

  uint8_t *desc(uint16_t i) const { return mem + ring_base(index) + 16ull * i; }
  uint8_t *avail() const { return mem + ring_base(index) + 0x1000; }
  uint8_t *used() const { return mem + ring_base(index) + 0x2000; }
  void set_desc(uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    std::memcpy(desc(i), &addr, 8);
    std::memcpy(desc(i) + 8, &len, 4);
    std::memcpy(desc(i) + 12, &flags, 2);
    std::memcpy(desc(i) + 14, &next, 2);
  }
  void offer(uint16_t head) {
    std::memcpy(avail() + 4 + 2 * (avail_idx % kRingSize), &head, 2);
    __atomic_store_n(reinterpret_cast<uint16_t *>(avail() + 2), ++avail_idx, __ATOMIC_RELEASE);
    const uint64_t one = 1;
    EXPECT_EQ(::write(kick, &one, 8), 8);
  }
  uint16_t used_idx() const {
    return __atomic_load_n(reinterpret_cast<const uint16_t *>(used() + 2), __ATOMIC_ACQUIRE);
  }
  // The next used element (id, len), waiting for it.
  std::optional<std::pair<uint32_t, uint32_t>> next_used(
      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (used_idx() == used_seen) {
      if (std::chrono::steady_clock::now() > until) return std::nullopt;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    uint32_t id, len;
    std::memcpy(&id, used() + 4 + 8 * (used_seen % kRingSize), 4);
    std::memcpy(&len, used() + 8 + 8 * (used_seen % kRingSize), 4);
    ++used_seen;
    return std::make_pair(id, len);
  }
};

// Listens where the router would; accepts the backend's streams.
class RouterPeer {
 public:
  explicit RouterPeer(const std::string &path) {
    std::string error;
    fd_ = hira::listen_endpoint("unix:" + path, &error);
    EXPECT_GE(fd_, 0) << error;
  }
  ~RouterPeer() { ::close(fd_); }
  int accept(std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return -1;
    return ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
  }

 private:
  int fd_ = -1;
};

std::string read_some(int fd, size_t want,
                      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  std::string got;
  const auto until = std::chrono::steady_clock::now() + timeout;
  while (got.size() < want && std::chrono::steady_clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) != 1) continue;
    char buf[65536];
    const ssize_t n = ::read(fd, buf, std::min(sizeof(buf), want - got.size()));
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  return got;
}

class VsockDevice : public ::testing::Test {
 protected:
  void SetUp() override {
    peer_ = std::make_unique<RouterPeer>(dir_.path() + "/router.sock");
    backend_ = std::make_unique<Process>(std::vector<std::string>{
        build_dir() + "/bin/hira-vsock", "--vhost-socket", "unix:" + dir_.path() + "/vhost.sock",
        "--cid", std::to_string(kCid), "--name", "testvm", "--router",
        "unix:" + dir_.path() + "/router.sock"});
    for (int i = 0; i < 500 && vmm_ < 0; ++i) {
      vmm_ = connect_to("unix:" + dir_.path() + "/vhost.sock");
      if (vmm_ < 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    ASSERT_GE(vmm_, 0) << backend_->err();
    memfd_ = ::memfd_create("guest-ram", MFD_CLOEXEC);
    ASSERT_EQ(::ftruncate(memfd_, kMemSize), 0);
    mem_ = static_cast<uint8_t *>(
        ::mmap(nullptr, kMemSize, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_, 0));
    ASSERT_NE(mem_, MAP_FAILED);
    for (size_t q = 0; q < 3; ++q) {
      queues_[q].mem = mem_;
      queues_[q].index = q;
    }
  }
  void TearDown() override {
    if (vmm_ >= 0) ::close(vmm_);
    for (auto &q : queues_) {
      if (q.kick >= 0) ::close(q.kick);
      if (q.call >= 0) ::close(q.call);
    }
    if (mem_ != nullptr) ::munmap(mem_, kMemSize);
    if (memfd_ >= 0) ::close(memfd_);
  }

  uint64_t vmm_addr(uint64_t gpa) const { return reinterpret_cast<uint64_t>(mem_) + gpa; }

  bool send(uint32_t request, const void *payload, uint32_t size, std::vector<int> fds = {},
            bool need_reply = false) {
    return send_vhost_user(vmm_, request, payload, size, fds, need_reply);
  }
  // A request and its reply payload.
  std::vector<uint8_t> ask(uint32_t request, const void *payload, uint32_t size,
                           bool need_reply = false) {
    EXPECT_TRUE(send(request, payload, size, {}, need_reply));
    const std::string head = read_some(vmm_, sizeof(vu::Header));
    if (head.size() != sizeof(vu::Header)) return {};
    vu::Header h;
    std::memcpy(&h, head.data(), sizeof(h));
    EXPECT_EQ(h.request, request);
    EXPECT_EQ(h.flags, vu::kVersion | vu::kFlagReply);
    const std::string body = read_some(vmm_, h.size);
    return {body.begin(), body.end()};
  }
  uint64_t ask_u64(uint32_t request) {
    const auto r = ask(request, nullptr, 0);
    uint64_t v = 0;
    if (r.size() == 8) std::memcpy(&v, r.data(), 8);
    return v;
  }

  // Feature negotiation and the memory table, as QEMU starts.
  void negotiate() {
    const uint64_t features = ask_u64(vu::kGetFeatures);
    ASSERT_NE(features & vu::kFeatureVersion1, 0u);
    ASSERT_TRUE(send(vu::kSetFeatures, &features, 8));
    const uint64_t protocol = ask_u64(vu::kGetProtocolFeatures);
    ASSERT_NE(protocol & vu::kProtocolConfig, 0u);
    ASSERT_TRUE(send(vu::kSetProtocolFeatures, &protocol, 8));
    ASSERT_TRUE(send(vu::kSetOwner, nullptr, 0));
    struct {
      uint32_t nregions, padding;
      vu::MemRegion r;
    } table{1, 0, {0, kMemSize, vmm_addr(0), 0}};
    ASSERT_TRUE(send(vu::kSetMemTable, &table, sizeof(table), {memfd_}, true));
    ASSERT_EQ(ask_ack(), 0u);
  }

  // What QEMU does to start a vhost-user-vsock device.
  void start_device() {
    negotiate();
    for (uint32_t q = 0; q < 3; ++q) {
      vu::VringState num{q, kRingSize};
      ASSERT_TRUE(send(vu::kSetVringNum, &num, sizeof(num)));
      vu::VringState base{q, 0};
      ASSERT_TRUE(send(vu::kSetVringBase, &base, sizeof(base)));
      vu::VringAddr addr{q,
                         0,
                         vmm_addr(ring_base(q)),
                         vmm_addr(ring_base(q) + 0x2000),
                         vmm_addr(ring_base(q) + 0x1000),
                         0};
      ASSERT_TRUE(send(vu::kSetVringAddr, &addr, sizeof(addr), {}, true));
      ASSERT_EQ(ask_ack(), 0u);
      queues_[q].kick = ::eventfd(0, EFD_CLOEXEC);
      queues_[q].call = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      const uint64_t index = q;
      ASSERT_TRUE(send(vu::kSetVringKick, &index, 8, {queues_[q].kick}));
      ASSERT_TRUE(send(vu::kSetVringCall, &index, 8, {queues_[q].call}));
      vu::VringState on{q, 1};
      ASSERT_TRUE(send(vu::kSetVringEnable, &on, sizeof(on), {}, true));
      ASSERT_EQ(ask_ack(), 0u);
    }
  }
  uint64_t ask_ack() {
    const std::string head = read_some(vmm_, sizeof(vu::Header));
    if (head.size() != sizeof(vu::Header)) return ~0ull;
    const std::string body = read_some(vmm_, 8);
    uint64_t v = ~0ull;
    if (body.size() == 8) std::memcpy(&v, body.data(), 8);
    return v;
  }

  // Receive buffers for the device, 4 KiB each, as Linux posts them.
  void post_rx(uint16_t count) {
    for (uint16_t i = 0; i < count; ++i) {
      const uint16_t d = rx_posted_++ % kRingSize;
      queues_[0].set_desc(d, kRxBuffers + kRxSlot * d, kRxSlot, 2 /* WRITE */, 0);
      queues_[0].offer(d);
    }
  }
  // The next packet the device put in a receive buffer (which is re-posted).
  std::optional<std::pair<PacketHeader, std::string>> receive(
      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    const auto used = queues_[0].next_used(timeout);
    if (!used) return std::nullopt;
    const uint8_t *buf = mem_ + kRxBuffers + kRxSlot * used->first;
    PacketHeader h;
    std::memcpy(&h, buf, sizeof(h));
    EXPECT_EQ(used->second, sizeof(h) + h.len);
    std::string payload(reinterpret_cast<const char *>(buf) + sizeof(h), h.len);
    queues_[0].offer(static_cast<uint16_t>(used->first));
    return std::make_pair(h, payload);
  }

  PacketHeader header(uint16_t op, uint32_t guest_port = 1000, uint32_t len = 0) {
    PacketHeader h{};
    h.src_cid = kCid;
    h.dst_cid = hira::vsock::kHostCid;
    h.src_port = guest_port;
    h.dst_port = kPort;
    h.len = len;
    h.type = hira::vsock::kTypeStream;
    h.op = op;
    h.buf_alloc = 256 * 1024;
    h.fwd_cnt = fwd_cnt_;
    return h;
  }
  // Sends one packet (one descriptor) and waits for the device to use it.
  void transmit(const PacketHeader &h, const std::string &payload = "") {
    const uint16_t slot = tx_sent_++ % 16;
    uint8_t *buf = mem_ + kTxBuffers + kTxSlot * slot;
    std::memcpy(buf, &h, sizeof(h));
    std::memcpy(buf + sizeof(h), payload.data(), payload.size());
    queues_[1].set_desc(slot, kTxBuffers + kTxSlot * slot,
                        static_cast<uint32_t>(sizeof(h) + payload.size()), 0, 0);
    queues_[1].offer(slot);
    ASSERT_TRUE(queues_[1].next_used().has_value()) << backend_->err();
  }
  // A connected stream: the guest's REQUEST answered, the router's side accepted.
  int connect_stream(uint32_t guest_port = 1000) {
    transmit(header(hira::vsock::kOpRequest, guest_port));
    const auto r = receive();
    EXPECT_TRUE(r.has_value());
    if (!r) return -1;
    EXPECT_EQ(r->first.op, hira::vsock::kOpResponse);
    EXPECT_EQ(r->first.dst_port, guest_port);
    EXPECT_EQ(r->first.dst_cid, kCid);
    return peer_->accept();
  }

  // The device tells the guest RST, and the router's side sees the end.
  void expect_reset(int host) {
    const auto r = receive();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->first.op, hira::vsock::kOpRst);
    char c;
    EXPECT_EQ(::read(host, &c, 1), 0);
    ::close(host);
  }

  TempDir dir_;
  std::unique_ptr<RouterPeer> peer_;
  std::unique_ptr<Process> backend_;
  int vmm_ = -1, memfd_ = -1;
  uint8_t *mem_ = nullptr;
  DriverQueue queues_[3];
  uint16_t rx_posted_ = 0, tx_sent_ = 0;
  uint32_t fwd_cnt_ = 0;
};

TEST_F(VsockDevice, ReportsTheOperatorsGuestCid) {
  vu::ConfigHeader c{0, 8, 0};
  std::vector<uint8_t> req(sizeof(c) + 8, 0);
  std::memcpy(req.data(), &c, sizeof(c));
  const auto r = ask(vu::kGetConfig, req.data(), static_cast<uint32_t>(req.size()));
  ASSERT_EQ(r.size(), sizeof(c) + 8);
  uint64_t cid;
  std::memcpy(&cid, r.data() + sizeof(c), 8);
  EXPECT_EQ(cid, kCid);
}

TEST_F(VsockDevice, RelaysAStreamBothWaysAndClosesIt) {
  start_device();
  post_rx(32);
  const int host = connect_stream();
  ASSERT_GE(host, 0);
  transmit(header(hira::vsock::kOpRw, 1000, 5), "hello");
  EXPECT_EQ(read_some(host, 5), "hello");
  // Larger than one receive buffer: it arrives in order, split.
  std::string big(10000, 0);
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  ASSERT_EQ(::write(host, big.data(), big.size()), static_cast<ssize_t>(big.size()));
  std::string got;
  while (got.size() < big.size()) {
    const auto r = receive();
    ASSERT_TRUE(r.has_value()) << got.size();
    EXPECT_EQ(r->first.op, hira::vsock::kOpRw);
    EXPECT_EQ(r->first.src_cid, hira::vsock::kHostCid);
    got += r->second;
  }
  EXPECT_EQ(got, big);
  // The guest closes: the device answers RST and the router sees the end.
  auto bye = header(hira::vsock::kOpShutdown);
  bye.flags = hira::vsock::kShutdownSend | hira::vsock::kShutdownReceive;
  transmit(bye);
  expect_reset(host);
}

TEST_F(VsockDevice, RouterHangingUpShutsTheGuestStreamDown) {
  start_device();
  post_rx(8);
  const int host = connect_stream();
  ASSERT_GE(host, 0);
  ASSERT_EQ(::write(host, "last", 4), 4);
  ::close(host);
  const auto data = receive();
  ASSERT_TRUE(data.has_value());
  EXPECT_EQ(data->second, "last");
  const auto shut = receive();
  ASSERT_TRUE(shut.has_value());
  EXPECT_EQ(shut->first.op, hira::vsock::kOpShutdown);
  EXPECT_EQ(shut->first.flags, hira::vsock::kShutdownSend | hira::vsock::kShutdownReceive);
}

TEST_F(VsockDevice, RefusesOtherPortsAndDropsForgedSources) {
  start_device();
  post_rx(8);
  auto other = header(hira::vsock::kOpRequest, 1001);
  other.dst_port = kPort + 1;
  transmit(other);
  auto r = receive();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first.op, hira::vsock::kOpRst);
  // Another guest's CID: dropped without a word (no RST to a CID it claims).
  auto forged = header(hira::vsock::kOpRequest, 1002);
  forged.src_cid = kCid + 1;
  transmit(forged);
  EXPECT_FALSE(receive(std::chrono::milliseconds(300)).has_value());
  EXPECT_LT(peer_->accept(std::chrono::milliseconds(100)), 0);
  // Data on a stream that was never opened: RST.
  transmit(header(hira::vsock::kOpRw, 1003, 3), "abc");
  r = receive();
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first.op, hira::vsock::kOpRst);
  // And the device still serves a proper stream.
  const int host = connect_stream(1004);
  EXPECT_GE(host, 0);
  ::close(host);
}

TEST_F(VsockDevice, BadDescriptorsAreReturnedUnusedAndTheQueueGoesOn) {
  start_device();
  post_rx(8);
  DriverQueue &tx = queues_[1];
  // Outside guest memory.
  tx.set_desc(20, kMemSize - 8, 4096, 0, 0);
  tx.offer(20);
  auto used = tx.next_used();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->first, 20u);
  EXPECT_EQ(used->second, 0u);
  // A chain that loops on itself.
  tx.set_desc(21, kTxBuffers, 64, 1 /* NEXT */, 21);
  tx.offer(21);
  used = tx.next_used();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->first, 21u);
  // A head index past the ring, and a header cut short.
  tx.offer(500);
  tx.set_desc(22, kTxBuffers, 10, 0, 0);
  tx.offer(22);
  used = tx.next_used();
  ASSERT_TRUE(used.has_value());
  EXPECT_EQ(used->first, 22u);
  // A data packet that claims more than it carries resets its stream.
  const int host = connect_stream(1010);
  ASSERT_GE(host, 0);
  transmit(header(hira::vsock::kOpRw, 1010, 60000), "short");
  expect_reset(host);
  // Still serving.
  const int again = connect_stream(1011);
  EXPECT_GE(again, 0);
  ::close(again);
  EXPECT_NE(backend_->err().find("descriptor outside guest memory"), std::string::npos)
      << backend_->err();
}

TEST_F(VsockDevice, AGuestPastItsCreditIsReset) {
  start_device();
  post_rx(8);
  const int host = connect_stream(1020);
  ASSERT_GE(host, 0);
  // The router does not read; the guest ignores the 256 KiB it was granted.
  const std::string chunk(60000, 'x');
  std::optional<std::pair<PacketHeader, std::string>> r;
  for (int i = 0; i < 40 && !r; ++i) {
    transmit(header(hira::vsock::kOpRw, 1020, static_cast<uint32_t>(chunk.size())), chunk);
    r = receive(std::chrono::milliseconds(20));
    while (r && r->first.op == hira::vsock::kOpCreditUpdate)
      r = receive(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(r->first.op, hira::vsock::kOpRst);
  ::close(host);
}

TEST_F(VsockDevice, AGuestThatStopsTakingDataStallsOnlyItsStream) {
  start_device();
  post_rx(2);
  const int host = connect_stream(1030);
  ASSERT_GE(host, 0);
  // The router has 1 MiB for a guest that takes none: the device reads only
  // what it can deliver, so the rest waits in the socket.
  std::thread writer([host] {
    std::string data(1 << 20, 'y');
    size_t off = 0;
    while (off < data.size()) {
      const ssize_t n = ::write(host, data.data() + off, data.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
  });
  const auto first = receive();
  ASSERT_TRUE(first.has_value());
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const long rss = status_kb(backend_->pid(), "VmRSS");
  EXPECT_LT(rss, 32 * 1024) << "the backend buffered what the guest did not take";
  // Another stream of the same guest still opens: the device is not stuck.
  post_rx(4);
  size_t got = first->second.size();
  // Take the data until the whole megabyte has arrived, reposting buffers.
  while (got < (1u << 20)) {
    auto r = receive();
    ASSERT_TRUE(r.has_value()) << got;
    if (r->first.op != hira::vsock::kOpRw) continue;
    got += r->second.size();
    if (got % (128 * 1024) < 4096) {  // tell it what we consumed now and then
      fwd_cnt_ = static_cast<uint32_t>(got);
      transmit(header(hira::vsock::kOpCreditUpdate, 1030));
    }
  }
  writer.join();
  ::close(host);
}

TEST_F(VsockDevice, TheVmmGoingAwayEndsEveryStream) {
  start_device();
  post_rx(8);
  const int host = connect_stream(1040);
  ASSERT_GE(host, 0);
  transmit(header(hira::vsock::kOpRw, 1040, 3), "abc");
  EXPECT_EQ(read_some(host, 3), "abc");
  ::close(vmm_);  // QEMU killed mid-call
  vmm_ = -1;
  EXPECT_EQ(backend_->wait(std::chrono::seconds(10)), 0) << backend_->err();
  char c;
  EXPECT_EQ(::read(host, &c, 1), 0);
  ::close(host);
}

TEST_F(VsockDevice, AVmmBreakingTheProtocolEndsOnlyItsConnection) {
  // A payload larger than any message has.
  vu::Header h{vu::kGetFeatures, vu::kVersion, 1u << 20};
  ASSERT_EQ(::write(vmm_, &h, sizeof(h)), static_cast<ssize_t>(sizeof(h)));
  EXPECT_EQ(backend_->wait(std::chrono::seconds(10)), 0);
  EXPECT_NE(backend_->err().find("payload"), std::string::npos) << backend_->err();
}

TEST_F(VsockDevice, RingsOutsideGuestMemoryAreRefused) {
  negotiate();
  const uint64_t features = ask_u64(vu::kGetFeatures);
  vu::VringState num{1, kRingSize};
  ASSERT_TRUE(send(vu::kSetVringNum, &num, sizeof(num)));
  vu::VringAddr addr{1, 0, vmm_addr(kMemSize - 16), vmm_addr(0x2000), vmm_addr(0x1000), 0};
  ASSERT_TRUE(send(vu::kSetVringAddr, &addr, sizeof(addr), {}, true));
  EXPECT_EQ(ask_ack(), 1u);
  // A ring size that is no power of two is refused the same way.
  vu::VringState odd{1, 100};
  ASSERT_TRUE(send(vu::kSetVringNum, &odd, sizeof(odd), {}, true));
  EXPECT_EQ(ask_ack(), 1u);
  EXPECT_EQ(ask_u64(vu::kGetFeatures), features);  // still talking
}

}  // namespace
}  // namespace hira::test
