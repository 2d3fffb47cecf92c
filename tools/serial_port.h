// A serial port of the guest, as QEMU's `-serial unix:PATH` sees it: a
// listening socket here that QEMU connects to, its bytes copied to a sink
// (stdout, stderr) and kept (the console, for the exit status).
#pragma once

#include <atomic>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>

namespace hira::cli {

class SerialPort {
 public:
  // sink: a descriptor the bytes are copied to, or -1 to only keep them.
  SerialPort(const std::filesystem::path &path, int sink);
  ~SerialPort();
  SerialPort(const SerialPort &) = delete;
  SerialPort &operator=(const SerialPort &) = delete;
  bool ok() const { return fd_ >= 0; }
  // Serves one connection until QEMU closes it.
  void start();
  // Waits for QEMU's side to close (it has exited), or gives up waiting for
  // a connection that never came.
  void finish();
  // The last MiB or so of what came.
  std::string captured();

 private:
  int fd_ = -1, sink_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  std::mutex mu_;
  std::string captured_;
};

}  // namespace hira::cli
