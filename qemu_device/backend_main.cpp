// hira-vsock: the host side of one VM's virtio-vsock device. QEMU's
// vhost-user-vsock-pci connects to --vhost-socket; guest streams to the
// hira port become connections to --router, the router's listener for this
// VM, so the VM's identity is whatever the operator gave that listener and
// this backend, never anything the guest sends.
#include <fcntl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>

#include "hira/channel.h"
#include "hira/stop_signals.h"
#include "vhost_user.h"
#include "vsock_device.h"
#include "vsock_streams.h"

namespace {

using hira::vsock::kRxQueue;
using hira::vsock::kTxQueue;

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

// Log lines about what a guest did wrong, at most 20 per second: a guest
// cannot flood the operator's log.
class RateLimitedLog {
 public:
  explicit RateLimitedLog(std::string name) : name_(std::move(name)) {}
  void operator()(const std::string &line) {
    const auto now = std::chrono::steady_clock::now();
    if (now - window_ > std::chrono::seconds(1)) {
      if (dropped_ > 0)
        std::fprintf(stderr, "hira-vsock %s: (%lu more)\n", name_.c_str(), dropped_);
      window_ = now;
      count_ = 0;
      dropped_ = 0;
    }
    if (++count_ <= 20) {
      std::fprintf(stderr, "hira-vsock %s: %s\n", name_.c_str(), line.c_str());
    } else {
      ++dropped_;
    }
  }

 private:
  std::string name_;
  std::chrono::steady_clock::time_point window_{};
  unsigned count_ = 0;
  unsigned long dropped_ = 0;
};

// epoll tags: what kind of descriptor, and the descriptor.
enum Tag : uint64_t { kVmm = 1, kKick = 2, kHost = 3 };
uint64_t tag(Tag t, int fd) { return (uint64_t{t} << 32) | static_cast<uint32_t>(fd); }

int accept_vmm(const std::string &where, std::string *error) {
  const int listener = hira::listen_endpoint(where, error);
  if (listener < 0) return -1;
  int fd;
  do {
    fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  } while (fd < 0 && errno == EINTR && !g_stop);
  if (fd < 0) *error = std::string("accept: ") + std::strerror(errno);
  ::close(listener);
  if (where.rfind("unix:", 0) == 0) ::unlink(where.substr(5).c_str());
  return fd;
}

}  // namespace

int main(int argc, char **argv) {
  CLI::App app{"hira-vsock: the host side of a VM's virtio-vsock device (vhost-user backend)"};
  std::string vhost_socket, router, name;
  hira::vsock::StreamsConfig config;
  config.port = hira::kVsockPort;
  app.add_option("--vhost-socket", vhost_socket,
                 "where QEMU's vhost-user-vsock-pci chardev connects: unix:/path, or fd:N "
                 "(a listening socket inherited)")
      ->required();
  app.add_option("--cid", config.guest_cid, "the guest's context id (3 or more)")
      ->required()
      ->check(CLI::Range(uint64_t{3}, uint64_t{0xfffffffe}));
  app.add_option("--name", name, "the VM's name, for logs (its identity is the router listener)")
      ->required();
  app.add_option("--router", router,
                 "the router's listener for this VM (unix:/path); each guest stream to the hira "
                 "port becomes one connection there")
      ->required();
  app.add_option("--port", config.port, "the vsock port guests connect to");
  app.add_option("--max-streams", config.max_streams,
                 "streams (guest processes) open at once; more are reset")
      ->check(CLI::Range(size_t{1}, size_t{4096}));
  bool quiet = false;
  app.add_flag("--quiet", quiet, "no informational lines (warnings and errors only)");
  CLI11_PARSE(app, argc, argv);

  ::signal(SIGPIPE, SIG_IGN);
  hira::on_stop_signals(on_signal);

  RateLimitedLog log(name);
  std::string error;
  const int vmm = accept_vmm(vhost_socket, &error);
  if (vmm < 0) {
    std::fprintf(stderr, "hira-vsock %s: %s: %s\n", name.c_str(), vhost_socket.c_str(),
                 error.c_str());
    return 1;
  }

  hira::vsock::VsockDevice device(config.guest_cid);
  hira::vsock::VhostUserBackend backend(device);
  const auto connect = [&router](std::string *why) {
    const int fd = hira::connect_endpoint(router, why);
    if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    return fd;
  };
  int ep = -1;
  // Edge-triggered: the streams keep what each edge said until a read or a
  // write finds the socket empty or full, so no interest ever changes.
  const auto watch = [&ep](int fd) {
    epoll_event e{EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, {.u64 = tag(kHost, fd)}};
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e);
  };
  hira::vsock::VsockStreams streams(config, backend, connect, watch,
                                    [&log](const std::string &l) { log(l); });
  device.attach(&streams);

  ep = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{EPOLLIN, {.u64 = tag(kVmm, vmm)}};
  ::epoll_ctl(ep, EPOLL_CTL_ADD, vmm, &ev);
  int kicks[3] = {-1, -1, -1};

  const auto sync_kicks = [&] {
    for (size_t i = 0; i < 3; ++i) {
      const int k = backend.kick_fd(i);
      if (kicks[i] >= 0) ::epoll_ctl(ep, EPOLL_CTL_DEL, kicks[i], nullptr);  // may be gone
      kicks[i] = k;
      if (k < 0) continue;
      epoll_event e{EPOLLIN, {.u64 = tag(kKick, static_cast<int>(i))}};
      ::epoll_ctl(ep, EPOLL_CTL_ADD, k, &e);
    }
  };
  if (!quiet) {
    std::fprintf(stderr, "hira-vsock %s: serving guest CID %lu, port %u, streams to %s\n",
                 name.c_str(), static_cast<unsigned long>(config.guest_cid), config.port,
                 router.c_str());
  }
  while (!g_stop) {
    epoll_event events[32];
    const int n = ::epoll_wait(ep, events, 32, streams.pending() ? 0 : 1000);
    if (n < 0 && errno != EINTR) break;
    if (n == 0 && streams.pending()) streams.tx_kicked();
    bool vmm_gone = false;
    for (int e = 0; e < n; ++e) {
      const Tag t = static_cast<Tag>(events[e].data.u64 >> 32);
      const int what = static_cast<int>(events[e].data.u64 & 0xffffffff);
      if (t == kVmm) {
        std::string why;
        if (!backend.handle_one(vmm, &why)) {
          // QEMU exiting closes the connection: news only when asked for.
          if (!quiet || why != hira::vsock::kVmmClosed) {
            std::fprintf(stderr, "hira-vsock %s: %s\n", name.c_str(), why.c_str());
          }
          vmm_gone = true;
          break;
        }
        if (!why.empty()) log(why);
        sync_kicks();
      } else if (t == kKick) {
        uint64_t count;
        [[maybe_unused]] const ssize_t r = ::read(kicks[what], &count, sizeof(count));
        if (static_cast<size_t>(what) == kTxQueue && backend.running(kTxQueue)) streams.tx_kicked();
        if (static_cast<size_t>(what) == kRxQueue && backend.running(kRxQueue)) streams.rx_kicked();
        // The event queue's buffers stay with us: we never reset the transport.
      } else {
        streams.host_ready(what,
                           (events[e].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0,
                           (events[e].events & EPOLLOUT) != 0);
      }
    }
    if (vmm_gone) break;
  }
  const auto &s = streams.stats();
  if (!quiet || s.bad_packets > 0 || s.credit_violations > 0) {
    std::fprintf(
        stderr,
        "hira-vsock %s: done: %lu streams, %lu refused, %lu bad packets, %lu credit "
        "violations, %lu bytes to the router, %lu to the guest\n",
        name.c_str(), static_cast<unsigned long>(s.streams_opened),
        static_cast<unsigned long>(s.streams_refused), static_cast<unsigned long>(s.bad_packets),
        static_cast<unsigned long>(s.credit_violations),
        static_cast<unsigned long>(s.bytes_to_host), static_cast<unsigned long>(s.bytes_to_guest));
  }
  streams.reset();
  ::close(ep);
  ::close(vmm);
  return 0;
}
