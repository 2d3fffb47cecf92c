#include "serial_port.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "launch.h"

namespace hira::cli {

SerialPort::SerialPort(const std::filesystem::path &path, int sink) : sink_(sink) {
  fd_ = bind_listener(path);
}

SerialPort::~SerialPort() {
  finish();
  if (fd_ >= 0) ::close(fd_);
}

void SerialPort::start() {
  thread_ = std::thread([this] {
    pollfd p{fd_, POLLIN, 0};
    while (!stop_ && ::poll(&p, 1, 100) == 0) {
    }
    if (stop_ && (p.revents & POLLIN) == 0) return;
    const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (c < 0) return;
    char buf[4096];
    ssize_t n;
    while ((n = ::read(c, buf, sizeof(buf))) > 0) {
      if (sink_ >= 0) {
        [[maybe_unused]] const ssize_t w = ::write(sink_, buf, static_cast<size_t>(n));
      }
      std::lock_guard lock(mu_);
      captured_.append(buf, static_cast<size_t>(n));
      if (captured_.size() > (1u << 20)) captured_.erase(0, captured_.size() - (1u << 19));
    }
    ::close(c);
  });
}

void SerialPort::finish() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

std::string SerialPort::captured() {
  std::lock_guard lock(mu_);
  return captured_;
}

}  // namespace hira::cli
