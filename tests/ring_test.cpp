// Shared-memory command rings: the real Channel over a socketpair with the
// rings attached (frames of every size, the end of the stream, wake-ups,
// positions a hostile peer scribbles), then guests offering rings to the
// real router and acc API server, well-formed or not.
#include "hira/ring.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <future>
#include <thread>

#include "acc_protocol.h"  // generated: kApiName, kApiSignature, FN_*
#include "hira/channel.h"
#include "hira/window.h"
#include "raw_guest.h"

namespace hira::test {
namespace {

// The first two 64-bit words of a ring's control page are its positions:
// what a hostile peer would overwrite (ring.cpp keeps them there).
struct RawPositions {
  uint64_t head, pad0[7], tail;
};

// Two channels joined by a socketpair, the rings attached as the router and
// a guest attach them; `creator` wrote the memfd.
struct RingedPair {
  std::unique_ptr<Channel> creator, attacher;
  int memfd = -1;
  uint8_t *raw = nullptr;  // a third mapping, for scribbling

  RingedPair() {
    int sv[2];
    EXPECT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    creator = std::make_unique<Channel>(sv[0]);
    attacher = std::make_unique<Channel>(sv[1]);
    std::string error;
    auto mine = RingPair::create(&memfd, &error);
    EXPECT_TRUE(mine) << error;
    auto theirs = RingPair::attach(memfd, &error);
    EXPECT_TRUE(theirs) << error;
    raw = theirs->data(0) - 2 * 4096;  // the pair's first page
    creator->attach_rings(std::move(mine), true);
    attacher->attach_rings(std::move(theirs), false);
  }
  ~RingedPair() { ::close(memfd); }
  // Ring 0 runs creator -> attacher; ring 1 the other way.
  RawPositions *positions(int ring) {
    return reinterpret_cast<RawPositions *>(raw + static_cast<size_t>(ring) * 4096);
  }
};

std::vector<uint8_t> frame_bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 31 + seed);
  return b;
}

bool send_bytes(Channel &c, const std::vector<uint8_t> &b, uint64_t id) {
  const iovec iov{const_cast<uint8_t *>(b.data()), b.size()};
  return c.send(make_header(wire::Kind::Call, 1, id), &iov, b.empty() ? 0 : 1);
}

TEST(Rings, FramesOfEverySizeCrossInOrderBothWays) {
  RingedPair p;
  const std::vector<size_t> sizes = {
      0, 1, 100, 4095, kRingBytes - 32, kRingBytes, 3 * kRingBytes + 7, 17};
  for (int direction = 0; direction < 2; ++direction) {
    Channel &from = direction == 0 ? *p.creator : *p.attacher;
    Channel &to = direction == 0 ? *p.attacher : *p.creator;
    // The writer streams while the reader drains: frames larger than the
    // ring wait for space.
    auto writer = std::async(std::launch::async, [&] {
      for (size_t i = 0; i < sizes.size(); ++i) {
        if (!send_bytes(from, frame_bytes(sizes[i], static_cast<uint8_t>(i)), i)) return false;
      }
      return true;
    });
    for (size_t i = 0; i < sizes.size(); ++i) {
      Frame f;
      ASSERT_EQ(to.recv(f), RecvResult::Ok) << "frame " << i;
      EXPECT_EQ(f.header.call_id, i);
      ASSERT_EQ(f.size, sizes[i]);
      EXPECT_EQ(std::memcmp(f.data.get(), frame_bytes(sizes[i], static_cast<uint8_t>(i)).data(),
                            sizes[i]),
                0)
          << "frame " << i;
    }
    EXPECT_TRUE(writer.get());
  }
}

TEST(Rings, QueuedFramesLeaveThroughTheRingsInOrder) {
  RingedPair p;
  for (uint64_t id = 0; id < 100; ++id) {
    Writer w;
    w.put_u64(id);
    ASSERT_TRUE(p.creator->queue(make_header(wire::Kind::Call, 2, id, 0, wire::kFlagAsync), &w));
  }
  ASSERT_TRUE(send_bytes(*p.creator, {1, 2, 3}, 100));
  for (uint64_t id = 0; id <= 100; ++id) {
    Frame f;
    ASSERT_EQ(p.attacher->recv(f), RecvResult::Ok);
    EXPECT_EQ(f.header.call_id, id);
  }
}

TEST(Rings, APeerThatGoesAwayEndsTheStreamAfterWhatItWrote) {
  RingedPair p;
  ASSERT_TRUE(send_bytes(*p.creator, frame_bytes(1000, 1), 1));
  ASSERT_TRUE(send_bytes(*p.creator, frame_bytes(10, 2), 2));
  p.creator.reset();  // its socket closes; what it wrote stays readable
  Frame f;
  ASSERT_EQ(p.attacher->recv(f), RecvResult::Ok);
  EXPECT_EQ(f.size, 1000u);
  ASSERT_EQ(p.attacher->recv(f), RecvResult::Ok);
  EXPECT_EQ(f.size, 10u);
  EXPECT_EQ(p.attacher->recv(f), RecvResult::Closed);
  // And a writer learns it too, once the ring it fills is full.
  EXPECT_FALSE(send_bytes(*p.attacher, frame_bytes(4 * kRingBytes, 3), 3));
}

TEST(Rings, ShutdownWakesABlockedReaderAndWriter) {
  RingedPair p;
  auto reader = std::async(std::launch::async, [&] {
    Frame f;
    return p.attacher->recv(f);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  p.attacher->shutdown();
  ASSERT_EQ(reader.wait_for(std::chrono::seconds(2)), std::future_status::ready);
  EXPECT_NE(reader.get(), RecvResult::Ok);
  // A writer stuck on a full ring nobody drains.
  auto writer = std::async(std::launch::async, [&] {
    return send_bytes(*p.creator, frame_bytes(3 * kRingBytes, 0), 1);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  p.creator->shutdown();
  ASSERT_EQ(writer.wait_for(std::chrono::seconds(2)), std::future_status::ready);
  EXPECT_FALSE(writer.get());
}

TEST(Rings, WaitReadableSeesDataAndTimesOut) {
  RingedPair p;
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.attacher->wait_readable(std::chrono::milliseconds(30)));
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(30));
  auto later = std::async(std::launch::async, [&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return send_bytes(*p.creator, {9}, 1);
  });
  EXPECT_TRUE(p.attacher->wait_readable(std::chrono::seconds(5)));
  EXPECT_TRUE(later.get());
  Frame f;
  EXPECT_EQ(p.attacher->recv(f), RecvResult::Ok);
}

TEST(Rings, PositionsAPeerScribbledBreakTheStreamInsteadOfReadingOutside) {
  {  // A head further ahead than the ring holds.
    RingedPair p;
    p.positions(0)->head = 5 * kRingBytes;
    Frame f;
    EXPECT_NE(p.attacher->recv(f), RecvResult::Ok);
  }
  {  // A head behind what was read (a huge unsigned distance).
    RingedPair p;
    ASSERT_TRUE(send_bytes(*p.creator, {1, 2, 3}, 1));
    Frame f;
    ASSERT_EQ(p.attacher->recv(f), RecvResult::Ok);
    p.positions(0)->head = 1;
    EXPECT_NE(p.attacher->recv(f), RecvResult::Ok);
  }
  {  // A frame's header, then a head that claims far more than the ring
     // holds while the reader copies the frame's body (a copy that trusted
     // it would read past the mapping).
    RingedPair p;
    auto header = make_header(wire::Kind::Call, 1, 1);
    header.magic = wire::kMagic;
    header.version = wire::kVersion;
    header.length = 4 * kRingBytes;
    std::memcpy(p.raw + 2 * 4096, &header, sizeof(header));
    p.positions(0)->head = sizeof(header);
    auto reader = std::async(std::launch::async, [&] {
      Frame f;
      return p.attacher->recv(f);
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    p.positions(0)->head = sizeof(header) + 10 * kRingBytes;
    ASSERT_EQ(reader.wait_for(std::chrono::seconds(5)), std::future_status::ready);
    EXPECT_EQ(reader.get(), RecvResult::Malformed);
  }
  {  // A tail the reader never reached: the writer stops (it reads the
     // reader's position when it needs room, and every 32nd frame).
    RingedPair p;
    p.positions(0)->tail = 12345;
    int sent = 0;
    while (sent < 40 && send_bytes(*p.creator, {1}, 1)) ++sent;
    EXPECT_LT(sent, 32);
  }
}

TEST(Rings, OnlyASealedMemfdOfARingPairsSizeIsAttached) {
  std::string error;
  {
    const int fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    EXPECT_FALSE(RingPair::attach(fd, &error));
    EXPECT_NE(error.find("not a memory file"), std::string::npos) << error;
    ::close(fd);
  }
  {  // Unsealed: it could shrink under the mapping.
    const int fd = ::memfd_create("unsealed", MFD_CLOEXEC);
    ASSERT_EQ(::ftruncate(fd, 2 * 4096 + 2 * kRingBytes), 0);
    EXPECT_FALSE(RingPair::attach(fd, &error));
    EXPECT_NE(error.find("sealed"), std::string::npos) << error;
    ::close(fd);
  }
  {  // Sealed, but not a pair's size.
    const int fd = create_sealed_memfd("small", 4096, &error);
    ASSERT_GE(fd, 0);
    EXPECT_FALSE(RingPair::attach(fd, &error));
    EXPECT_NE(error.find("expected"), std::string::npos) << error;
    ::close(fd);
  }
}

// A guest of the real router that offers command rings.
class RingGuest {
 public:
  explicit RingGuest(const Router &router, int rings_fd = -1) {
    channel_ = std::make_unique<Channel>(connect_to(router.endpoint()));
    std::string error;
    int fd = rings_fd;
    if (fd < 0) rings_ = RingPair::create(&fd, &error);
    Writer w;
    const auto hello = hello_payload(kApiName, kApiSignature);
    w.put_bulk(hello.data(), hello.size());
    channel_->send(make_header(wire::Kind::Hello, 0, 0, 0, wire::kFlagRings), &w,
                   std::span<const int>(&fd, 1));
    if (rings_fd < 0) ::close(fd);
    Frame ack;
    if (channel_->recv(ack) != RecvResult::Ok || ack.kind() != wire::Kind::HelloAck) return;
    served_ = ack.header.func == 0;
    granted_ = (ack.header.flags & wire::kFlagRings) != 0;
    if (granted_ && rings_) {
      raw_ = rings_->data(0) - 2 * 4096;
      channel_->attach_rings(std::move(rings_), true);
    }
  }

  bool served() const { return served_; }
  bool granted() const { return granted_; }
  int fd() const { return channel_->fd(); }
  RawPositions *positions(int ring) {
    return reinterpret_cast<RawPositions *>(raw_ + static_cast<size_t>(ring) * 4096);
  }

  // acc_get_version through the channel: the reply's status, or -1 if none came.
  int64_t get_version() {
    const auto payload = encode({out_ptr(4, 1), out_ptr(4, 1)});
    const iovec iov{const_cast<uint8_t *>(payload.data()), payload.size()};
    if (!channel_->send(make_header(wire::Kind::Call, FN_acc_get_version, ++id_, 1), &iov, 1)) {
      return -1;
    }
    Frame f;
    if (channel_->recv(f) != RecvResult::Ok || f.kind() != wire::Kind::Reply) return -1;
    Reader r = f.reader();
    return r.get<wire::ReplyPrefix>().status;
  }

 private:
  std::unique_ptr<Channel> channel_;
  std::unique_ptr<RingPair> rings_;
  uint8_t *raw_ = nullptr;
  bool served_ = false, granted_ = false;
  uint64_t id_ = 0;
};

TEST(RingsThroughTheRouter, CallsTravelThroughGrantedRings) {
  Router router;
  RingGuest g(router);
  ASSERT_TRUE(g.served());
  ASSERT_TRUE(g.granted());
  for (int i = 0; i < 100; ++i) ASSERT_EQ(g.get_version(), 0) << "call " << i;
  // Nothing crossed the socket after the hello: the router's reads and
  // writes went through shared memory.
  char byte;
  EXPECT_EQ(::recv(g.fd(), &byte, 1, MSG_DONTWAIT), -1);
  EXPECT_EQ(errno, EAGAIN);
}

TEST(RingsThroughTheRouter, RefusedRingsLeaveTheGuestOnItsSocket) {
  Router router;
  std::string error;
  const int small = create_sealed_memfd("small", 4096, &error);
  {
    RingGuest g(router, small);
    ASSERT_TRUE(g.served());
    EXPECT_FALSE(g.granted());
    EXPECT_EQ(g.get_version(), 0);  // through the socket
  }
  ::close(small);
  router.stop();
  EXPECT_NE(router.process().err().find("command rings refused"), std::string::npos)
      << router.process().err();
}

TEST(RingsThroughTheRouter, AGuestThatScribblesOnItsRingsIsCutOffAlone) {
  Router router;
  RingGuest bystander(router);
  ASSERT_TRUE(bystander.granted());
  ASSERT_EQ(bystander.get_version(), 0);
  {
    RingGuest g(router);
    ASSERT_TRUE(g.granted());
    ASSERT_EQ(g.get_version(), 0);
    g.positions(0)->head += 10 * kRingBytes;  // "this much more to read"
    EXPECT_TRUE(wait_closed(g.fd())) << "the router kept a guest with broken rings";
  }
  {  // The same with the ring the router writes: a tail it never reached
     // (the router reads it when it needs room, and every 32nd frame).
    RingGuest g(router);
    ASSERT_TRUE(g.granted());
    // (Each read of the guest's own puts its true position back: the
    // scribble is made again before every call.)
    int answered = 0;
    for (; answered < 40; ++answered) {
      g.positions(1)->tail = 99 * kRingBytes;
      if (g.get_version() != 0) break;
    }
    EXPECT_LT(answered, 32);
    EXPECT_TRUE(wait_closed(g.fd()));
  }
  EXPECT_EQ(bystander.get_version(), 0);
  RingGuest next(router);
  EXPECT_EQ(next.get_version(), 0);
}

}  // namespace
}  // namespace hira::test
