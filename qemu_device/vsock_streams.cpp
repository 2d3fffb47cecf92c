#include "vsock_streams.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace hira::vsock {

namespace {
// Packets taken from the transmit queue per kick before the loop serves
// others (a guest that floods it only delays itself).
constexpr int kTxBatch = 512;
}  // namespace

VsockStreams::VsockStreams(StreamsConfig config, VhostUserBackend &device, Connect connect,
                           Watch watch, Log log)
    : config_(config),
      device_(device),
      connect_(std::move(connect)),
      watch_(std::move(watch)),
      log_(std::move(log)),
      scratch_(kMaxPacketPayload) {}

VsockStreams::~VsockStreams() {
  for (auto &[k, s] : streams_) ::close(s.fd);
}

void VsockStreams::bad(const std::string &why) {
  ++stats_.bad_packets;
  log_(why);
}

void VsockStreams::reset() {
  for (auto &[k, s] : streams_) ::close(s.fd);
  streams_.clear();
  by_fd_.clear();
  control_.clear();
  held_rx_.reset();  // its ring is gone
  rx_starved_ = false;
  tx_left_ = false;
}

uint32_t VsockStreams::peer_credit(const Stream &s) const {
  // Wrapping counters, as the spec defines them.
  const uint32_t in_flight = s.tx_cnt - s.peer_fwd_cnt;
  return in_flight >= s.peer_buf_alloc ? 0 : s.peer_buf_alloc - in_flight;
}

PacketHeader VsockStreams::host_header(uint32_t host_port, uint32_t guest_port, uint16_t op,
                                       uint32_t len, uint32_t flags, uint32_t fwd_cnt) const {
  PacketHeader h{};
  h.src_cid = kHostCid;
  h.dst_cid = config_.guest_cid;
  h.src_port = host_port;
  h.dst_port = guest_port;
  h.len = len;
  h.type = kTypeStream;
  h.op = op;
  h.flags = flags;
  h.buf_alloc = config_.buf_alloc;
  h.fwd_cnt = fwd_cnt;
  return h;
}

PacketHeader VsockStreams::header_for(const Stream &s, uint16_t op, uint32_t len, uint32_t flags) {
  return host_header(s.host_port, s.guest_port, op, len, flags, s.fwd_cnt);
}

void VsockStreams::queue_control(const PacketHeader &h) {
  if (control_.size() >= config_.max_control) {
    ++stats_.control_dropped;
    return;
  }
  control_.push_back(h);
}

void VsockStreams::reply(const PacketHeader &to, uint16_t op, uint32_t flags) {
  queue_control(host_header(to.dst_port, to.src_port, op, 0, flags, 0));
}

void VsockStreams::control(const Stream &s, uint16_t op, uint32_t flags) {
  queue_control(header_for(s, op, 0, flags));
}

void VsockStreams::reset_stream(Key k, bool tell_guest) {
  auto it = streams_.find(k);
  if (it == streams_.end()) return;
  if (tell_guest) control(it->second, kOpRst);
  by_fd_.erase(it->second.fd);
  ::close(it->second.fd);
  streams_.erase(it);
}

void VsockStreams::tx_kicked() {
  Virtqueue &tx = device_.queue(kTxQueue);
  const GuestMemory &mem = device_.memory();
  const uint64_t bad_before = tx.bad_chains();
  bool pushed = false;
  int n = 0;
  for (; n < kTxBatch; ++n) {
    std::optional<Chain> c = tx.pop(mem);
    if (!c) break;
    PacketHeader h;
    if (c->read(0, &h, sizeof(h)) != sizeof(h)) {
      bad("a packet shorter than its header");
    } else {
      handle_packet(h, *c);
    }
    tx.push(*c, 0);
    pushed = true;
  }
  tx_left_ = n == kTxBatch;
  if (tx.bad_chains() != bad_before) {
    stats_.bad_packets += tx.bad_chains() - bad_before;
    log_("transmit queue: " + tx.last_error());
  }
  if (tx.broken()) log_("transmit queue: " + tx.last_error() + "; it is no longer served");
  if (pushed || tx.bad_chains() != bad_before) device_.notify(kTxQueue);
  flush_rx();
}

void VsockStreams::handle_packet(const PacketHeader &h, const Chain &c) {
  // Identity is the operator's: a packet claiming another CID is dropped.
  if (h.src_cid != config_.guest_cid) {
    bad("a packet from CID " + std::to_string(h.src_cid) + " (this guest is CID " +
        std::to_string(config_.guest_cid) + ")");
    return;
  }
  if (h.op == kOpRst) {  // never answered, whatever it names
    reset_stream(key(h.src_port, h.dst_port), false);
    return;
  }
  if (h.dst_cid != kHostCid || h.type != kTypeStream) {
    bad("a packet for CID " + std::to_string(h.dst_cid) + " or of type " + std::to_string(h.type));
    reply(h, kOpRst);
    return;
  }
  const Key k = key(h.src_port, h.dst_port);
  if (h.op == kOpRequest) {
    open_stream(h);
    return;
  }
  auto it = streams_.find(k);
  if (it == streams_.end()) {
    reply(h, kOpRst);  // nothing by that name: tell the guest
    return;
  }
  Stream &s = it->second;
  s.peer_buf_alloc = h.buf_alloc;
  s.peer_fwd_cnt = h.fwd_cnt;
  switch (h.op) {
    case kOpRw: {
      if (h.len > kMaxPacketPayload || h.len > c.readable_bytes() - sizeof(h)) {
        bad("a data packet whose length (" + std::to_string(h.len) + ") is not what it carries");
        reset_stream(k, true);
        return;
      }
      if (s.guest_shut_send || s.guest_closed) {
        bad("data after the guest shut its side down");
        reset_stream(k, true);
        return;
      }
      // In flight to the host may never exceed what we granted.
      const uint32_t in_flight = s.rx_cnt - s.fwd_cnt;
      if (uint64_t{in_flight} + h.len > config_.buf_alloc) {
        ++stats_.credit_violations;
        log_("a stream sent past its credit; reset");
        reset_stream(k, true);
        return;
      }
      const size_t at = s.to_host.size();
      s.to_host.resize(at + h.len);
      c.read(sizeof(h), s.to_host.data() + at, h.len);
      s.rx_cnt += h.len;
      write_to_host(k);
      return;
    }
    case kOpCreditUpdate:
      return;  // its counters were taken above
    case kOpCreditRequest:
      control(s, kOpCreditUpdate);
      s.fwd_reported = s.fwd_cnt;
      return;
    case kOpShutdown:
      if ((h.flags & kShutdownSend) != 0) s.guest_shut_send = true;
      if ((h.flags & (kShutdownSend | kShutdownReceive)) == (kShutdownSend | kShutdownReceive)) {
        s.guest_closed = true;
      }
      write_to_host(k);  // finishes the stream once its bytes are out
      return;
    default:
      bad("operation " + std::to_string(h.op) + " on an open stream");
      reset_stream(k, true);
      return;
  }
}

void VsockStreams::open_stream(const PacketHeader &h) {
  const Key k = key(h.src_port, h.dst_port);
  if (streams_.count(k) != 0) {
    bad("a second connection request for an open stream");
    reset_stream(k, true);
    return;
  }
  if (h.dst_port != config_.port) {
    ++stats_.streams_refused;
    reply(h, kOpRst);  // nothing listens there
    return;
  }
  if (streams_.size() >= config_.max_streams) {
    ++stats_.streams_refused;
    log_("refusing a stream: " + std::to_string(config_.max_streams) + " open already");
    reply(h, kOpRst);
    return;
  }
  std::string error;
  const int fd = connect_(&error);
  if (fd < 0) {
    ++stats_.streams_refused;
    log_("cannot reach the router for a new stream: " + error);
    reply(h, kOpRst);
    return;
  }
  Stream s;
  s.guest_port = h.src_port;
  s.host_port = h.dst_port;
  s.fd = fd;
  s.peer_buf_alloc = h.buf_alloc;
  s.peer_fwd_cnt = h.fwd_cnt;
  by_fd_[fd] = k;
  watch_(fd);
  auto &stored = streams_[k] = std::move(s);
  ++stats_.streams_opened;
  control(stored, kOpResponse);
}

void VsockStreams::write_to_host(Key k) {
  auto it = streams_.find(k);
  if (it == streams_.end()) return;
  Stream &s = it->second;
  while (s.to_host_at < s.to_host.size()) {
    const ssize_t n = ::send(s.fd, s.to_host.data() + s.to_host_at, s.to_host.size() - s.to_host_at,
                             MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    if (n <= 0) {  // the router ended this guest: so does the stream
      reset_stream(k, true);
      return;
    }
    s.to_host_at += static_cast<size_t>(n);
    s.fwd_cnt += static_cast<uint32_t>(n);
    stats_.bytes_to_host += static_cast<uint64_t>(n);
  }
  if (s.to_host_at == s.to_host.size()) {
    s.to_host.clear();
    s.to_host_at = 0;
    if (s.guest_closed) {  // all delivered: the guest waits for our RST
      reset_stream(k, true);
      return;
    }
    if (s.guest_shut_send) ::shutdown(s.fd, SHUT_WR);
  } else if (s.to_host_at > (1u << 16)) {
    s.to_host.erase(s.to_host.begin(), s.to_host.begin() + static_cast<ptrdiff_t>(s.to_host_at));
    s.to_host_at = 0;
  }
  maybe_credit_update(s);
}

void VsockStreams::maybe_credit_update(Stream &s) {
  // The guest stops sending when it thinks its credit is gone; tell it
  // before that happens, not after every packet.
  const uint32_t unreported = s.rx_cnt - s.fwd_reported;
  if (unreported > config_.buf_alloc / 2 && s.fwd_cnt != s.fwd_reported) {
    control(s, kOpCreditUpdate);
    s.fwd_reported = s.fwd_cnt;
  }
}

void VsockStreams::host_ready(int fd, bool readable, bool writable) {
  auto it = by_fd_.find(fd);
  if (it == by_fd_.end()) return;
  const Key k = it->second;
  if (writable) write_to_host(k);
  auto s = streams_.find(k);
  if (s == streams_.end()) return;
  if (readable) s->second.host_readable = true;
  flush_rx();
}

void VsockStreams::rx_kicked() {
  rx_starved_ = false;
  flush_rx();
}

std::optional<Chain> VsockStreams::take_rx() {
  if (held_rx_) {
    std::optional<Chain> c = std::move(held_rx_);
    held_rx_.reset();
    return c;
  }
  Virtqueue &rx = device_.queue(kRxQueue);
  if (!device_.running(kRxQueue)) return std::nullopt;
  const uint64_t bad_before = rx.bad_chains();
  std::optional<Chain> c;
  // A buffer too small for a header is returned unused.
  while ((c = rx.pop(device_.memory())) && c->writable_bytes() <= sizeof(PacketHeader)) {
    rx.push(*c, 0);
    ++stats_.bad_packets;
  }
  if (rx.bad_chains() != bad_before) {
    stats_.bad_packets += rx.bad_chains() - bad_before;
    log_("receive queue: " + rx.last_error());
  }
  if (!c) rx_starved_ = true;
  return c;
}

bool VsockStreams::send_data(Stream &s) {
  const uint32_t credit = peer_credit(s);
  if (credit == 0) return true;
  std::optional<Chain> c = take_rx();
  if (!c) return false;
  const size_t room = std::min<uint64_t>(c->writable_bytes() - sizeof(PacketHeader),
                                         std::min<uint32_t>(credit, kMaxPacketPayload));
  const ssize_t n = ::recv(s.fd, scratch_.data(), room, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
    s.host_readable = false;
    held_rx_ = std::move(c);
    return true;
  }
  if (n <= 0) {
    // The router closed this guest's connection: no more data will come.
    held_rx_ = std::move(c);
    s.host_readable = false;
    s.host_eof = true;
    control(s, kOpShutdown, kShutdownSend | kShutdownReceive);
    return true;
  }
  const PacketHeader h = header_for(s, kOpRw, static_cast<uint32_t>(n), 0);
  c->write(0, &h, sizeof(h));
  c->write(sizeof(h), scratch_.data(), static_cast<size_t>(n));
  device_.queue(kRxQueue).push(*c, static_cast<uint32_t>(sizeof(h) + n));
  s.tx_cnt += static_cast<uint32_t>(n);
  s.fwd_reported = s.fwd_cnt;
  stats_.bytes_to_guest += static_cast<uint64_t>(n);
  return true;
}

bool VsockStreams::send_control() {
  bool pushed = false;
  while (!control_.empty()) {
    std::optional<Chain> c = take_rx();
    if (!c) break;
    c->write(0, &control_.front(), sizeof(PacketHeader));
    device_.queue(kRxQueue).push(*c, sizeof(PacketHeader));
    control_.pop_front();
    pushed = true;
  }
  return pushed;
}

void VsockStreams::flush_rx() {
  bool pushed = send_control();
  // Data only after every control packet is out, so a stream's RESPONSE
  // reaches the guest before its first bytes.
  bool progress = control_.empty();
  while (progress && !rx_starved_) {
    progress = false;
    for (auto &[k, s] : streams_) {
      if (!s.host_readable || s.host_eof || peer_credit(s) == 0) continue;
      const uint64_t before = s.tx_cnt;
      if (!send_data(s)) break;
      if (s.tx_cnt != before) {
        pushed = true;
        progress = true;
      }
    }
    if (send_control()) pushed = true;  // SHUTDOWNs from send_data
  }
  if (pushed) device_.notify(kRxQueue);
}

bool VsockStreams::pending() const { return tx_left_; }

}  // namespace hira::vsock
