// hira vm: boots a QEMU guest whose virtio-vsock device is served by
// hira-vsock, runs a program in it against hira, and exits with its status.
#pragma once

#include <CLI/CLI.hpp>
#include <map>
#include <string>
#include <vector>

#include "launch.h"

namespace hira::cli {

struct VmOptions {
  RouterOptions router;
  std::string name = "vm1";
  uint64_t cid = 3;
  unsigned cpus = 1;
  std::string memory = "512M";
  std::string accel = "auto";
  std::string guest_dir;         // vmlinuz and base.cpio.gz (qemu_device/build-guest-image)
  std::vector<std::string> add;  // more programs to copy in, with their libraries
  std::vector<std::string> env;  // NAME=VALUE for the program inside
  std::string shared_router;  // an operator's router listener for this VM, or "" for a private one
  std::string qemu = "qemu-system-x86_64";
  std::string qemu_firmware;  // -L: where QEMU finds its BIOS (a bundled QEMU)
  unsigned timeout_s = 0;
  unsigned window_mb = 256;  // the VM's shared region for data (ivshmem); 0: none
  bool shell = false;
  std::vector<std::string> program;
};

void add_vm_options(CLI::App *cmd, VmOptions *o);
int run_vm(const VmOptions &o);

}  // namespace hira::cli
