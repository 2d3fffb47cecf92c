// The virtio-vsock stream layer of the device: connection setup and reset,
// credit-based flow control, and the bytes of each guest stream relayed to
// a host socket (the router's listener for this VM). Single-threaded: the
// backend's event loop calls in when a queue is kicked or a host socket is
// ready, and asks which host sockets to watch.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vhost_user.h"
#include "vsock_packet.h"

namespace hira::vsock {

struct StreamsConfig {
  uint64_t guest_cid = 3;
  uint32_t port = 0;                // the only host port guests may connect to
  uint32_t buf_alloc = 256 * 1024;  // what each stream may have in flight to the host
  size_t max_streams = 64;          // streams open at once (guest processes)
  size_t max_control = 1024;        // control packets waiting for rx buffers
};

struct StreamsStats {
  uint64_t streams_opened = 0, streams_refused = 0;
  uint64_t bad_packets = 0;        // malformed or forged packets dropped
  uint64_t credit_violations = 0;  // streams reset for sending past their credit
  uint64_t control_dropped = 0;    // the guest stopped taking rx buffers
  uint64_t bytes_to_host = 0, bytes_to_guest = 0;
};

class VsockStreams {
 public:
  // Opens a host socket for a new stream (non-blocking), or -1.
  using Connect = std::function<int(std::string *error)>;
  // Log lines about guests' misbehaviour (rate-limited by the caller).
  using Log = std::function<void(const std::string &)>;
  // A new host socket to watch, edge-triggered, for reading and writing
  // (host_ready() says which edge came); closing it stops the watch.
  using Watch = std::function<void(int fd)>;

  VsockStreams(StreamsConfig config, VhostUserBackend &device, Connect connect, Watch watch,
               Log log);
  ~VsockStreams();

  void tx_kicked();  // the guest queued packets
  void rx_kicked();  // the guest queued receive buffers
  void host_ready(int fd, bool readable, bool writable);
  // The device stopped (reset, reboot, VMM gone): every stream ends.
  void reset();

  // Work left that no event will announce (a flood cut short).
  bool pending() const;
  const StreamsStats &stats() const { return stats_; }
  size_t open_streams() const { return streams_.size(); }

 private:
  struct Stream {
    uint32_t guest_port = 0, host_port = 0;
    int fd = -1;
    std::vector<uint8_t> to_host;  // from the guest, not yet written
    size_t to_host_at = 0;
    uint32_t rx_cnt = 0;        // bytes received from the guest
    uint32_t fwd_cnt = 0;       // ... of which written to the host
    uint32_t fwd_reported = 0;  // fwd_cnt as the guest last heard it
    uint32_t peer_buf_alloc = 0, peer_fwd_cnt = 0, tx_cnt = 0;
    bool host_readable = false;  // an edge said so, and no read since found it empty
    bool host_eof = false;
    bool guest_shut_send = false, guest_closed = false;
  };
  using Key = uint64_t;
  static Key key(uint32_t guest_port, uint32_t host_port) {
    return (uint64_t{guest_port} << 32) | host_port;
  }

  void handle_packet(const PacketHeader &h, const Chain &c);
  void open_stream(const PacketHeader &h);
  // Control packets wait for receive buffers, at most max_control of them.
  void queue_control(const PacketHeader &h);
  void reply(const PacketHeader &to, uint16_t op, uint32_t flags = 0);
  void control(const Stream &s, uint16_t op, uint32_t flags = 0);
  void reset_stream(Key k, bool tell_guest);
  void write_to_host(Key k);
  void maybe_credit_update(Stream &s);
  void flush_rx();
  bool send_control();        // true: some went out
  bool send_data(Stream &s);  // false: out of rx buffers
  std::optional<Chain> take_rx();
  PacketHeader host_header(uint32_t host_port, uint32_t guest_port, uint16_t op, uint32_t len,
                           uint32_t flags, uint32_t fwd_cnt) const;
  PacketHeader header_for(const Stream &s, uint16_t op, uint32_t len, uint32_t flags);
  uint32_t peer_credit(const Stream &s) const;
  void bad(const std::string &why);

  StreamsConfig config_;
  VhostUserBackend &device_;
  Connect connect_;
  Watch watch_;
  Log log_;
  std::map<Key, Stream> streams_;
  std::map<int, Key> by_fd_;
  std::deque<PacketHeader> control_;  // waiting for rx buffers
  std::optional<Chain> held_rx_;      // taken, not yet written
  bool rx_starved_ = false;
  bool tx_left_ = false;
  std::vector<uint8_t> scratch_;
  StreamsStats stats_;
};

}  // namespace hira::vsock
