#include "vm_command.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include "guest_payload.h"
#include "hira/window.h"
#include "serial_port.h"

namespace hira::cli {

namespace {

// What the guest's init prints on the console (its third serial port) last.
constexpr const char *kStatusLine = "hira-guest-status: ";

std::string first_line(const fs::path &p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  return line;
}

// KVM needs /dev/kvm and the CPU's virtualization extensions: a /dev/kvm
// on a CPU without them (a VM that does not pass them through) can hang
// QEMU in the kernel with the guest never starting.
bool kvm_usable() {
  if (::access("/dev/kvm", R_OK | W_OK) != 0) return false;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    return line.find(" vmx") != std::string::npos || line.find(" svm") != std::string::npos;
  }
  return false;
}

struct Boot {
  int qemu_status = 1;
  std::string console;
};

// One boot of the guest: its device backend, its serial ports and QEMU,
// all in dir; returns when QEMU has exited and the backend with it.
// An attempt that may fail for want of a usable KVM keeps QEMU's complaint
// in qemu_log rather than showing it.
Boot boot_guest(const VmOptions &o, const fs::path &guest, const fs::path &dir,
                const std::string &router_endpoint, const std::string &region, bool kvm,
                const char *qemu_log = nullptr) {
  Boot result;
  fs::create_directories(dir);
  // The device backend, on a socket bound here so QEMU can connect at once.
  const int vhost = bind_listener(dir / "vhost.sock");
  if (vhost < 0) return result;
  std::vector<std::string> backend_args = {(self_dir() / "hira-vsock").string(),
                                           "--vhost-socket",
                                           "fd:3",
                                           "--cid",
                                           std::to_string(o.cid),
                                           "--name",
                                           o.name,
                                           "--router",
                                           router_endpoint};
  if (o.router.quiet) backend_args.push_back("--quiet");
  const pid_t backend = spawn(backend_args, vhost);
  ::close(vhost);

  SerialPort out(dir / "stdout.sock", 1), err(dir / "stderr.sock", 2),
      console(dir / "console.sock", -1);
  if (out.ok() && err.ok() && console.ok()) {
    if (!o.shell) out.start();
    err.start();
    console.start();
    std::vector<std::string> a = {
        o.qemu, "-machine", std::string("q35,memory-backend=mem,accel=") + (kvm ? "kvm" : "tcg"),
        "-cpu", kvm ? "host" : "max", "-smp", std::to_string(o.cpus), "-m", o.memory,
        // Shared, so the backend can map the guest's RAM.
        "-object", "memory-backend-memfd,id=mem,size=" + o.memory + ",share=on", "-kernel",
        (guest / "vmlinuz").string(), "-initrd", (dir.parent_path() / "initrd").string(), "-append",
        "console=ttyS2 quiet loglevel=3 panic=-1", "-chardev",
        "socket,id=vsock,path=" + (dir / "vhost.sock").string(), "-device",
        "vhost-user-vsock-pci,chardev=vsock", "-display", "none", "-nodefaults", "-no-user-config",
        "-no-reboot", "-serial", o.shell ? "mon:stdio" : "unix:" + (dir / "stdout.sock").string(),
        "-serial", "unix:" + (dir / "stderr.sock").string(), "-serial",
        "unix:" + (dir / "console.sock").string()};
    if (!o.qemu_firmware.empty()) a.insert(a.end(), {"-L", o.qemu_firmware});
    if (!region.empty()) {
      // The data path: host memory the VM sees as a PCI BAR and the API
      // servers map (the guest's hira_window module slices it).
      a.insert(a.end(), {"-object",
                         "memory-backend-file,id=hira-window,share=on,mem-path=" + region +
                             ",size=" + std::to_string(o.window_mb) + "M",
                         "-device", "ivshmem-plain,memdev=hira-window"});
    }
    const pid_t qemu = spawn(a, -1, qemu_log);
    std::atomic<bool> done{false};
    std::thread watchdog;
    if (o.timeout_s > 0) {
      watchdog = std::thread([&] {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(o.timeout_s);
        while (!done && std::chrono::steady_clock::now() < until) {
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        if (!done) {
          std::fprintf(stderr, "hira vm: stopping the VM after %u s\n", o.timeout_s);
          ::kill(qemu, SIGKILL);
        }
      });
    }
    result.qemu_status = wait_for(qemu);
    done = true;
    if (watchdog.joinable()) watchdog.join();
  }
  out.finish();
  err.finish();
  console.finish();
  result.console = console.captured();
  // The backend ends when QEMU goes; it is told to if it has not.
  for (int i = 0; i < 100 && ::waitpid(backend, nullptr, WNOHANG) == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(backend, SIGTERM);
  ::waitpid(backend, nullptr, 0);
  return result;
}

}  // namespace

void add_vm_options(CLI::App *cmd, VmOptions *o) {
  cmd->add_option("--name", o->name, "the VM's name: its identity in the router's accounting");
  cmd->add_option("--cid", o->cid, "the guest's vsock context id")
      ->check(CLI::Range(uint64_t{3}, uint64_t{0xfffffffe}));
  cmd->add_option("--cpus", o->cpus, "virtual CPUs")->check(CLI::Range(1u, 64u));
  cmd->add_option("--memory", o->memory, "guest RAM (QEMU syntax: 512M, 2G)");
  cmd->add_option("--accel", o->accel, "auto (KVM where it works, else TCG), kvm or tcg")
      ->check(CLI::IsMember({"auto", "kvm", "tcg"}));
  cmd->add_option("--guest", o->guest_dir,
                  "directory with vmlinuz and base.cpio.gz (qemu_device/build-guest-image)");
  cmd->add_option("--add", o->add, "another program to copy into the guest, with its libraries");
  cmd->add_option("--env", o->env, "NAME=VALUE for the program in the guest (repeatable)");
  cmd->add_option("--window-mb", o->window_mb,
                  "the VM's shared region for its processes' data (an ivshmem device; each "
                  "process gets a 64 MiB slice), in MiB; 0: data through the vsock stream")
      ->check(CLI::Range(0u, 16384u));
  cmd->add_option("--qemu", o->qemu, "the QEMU binary (default: qemu-system-x86_64 on PATH)");
  cmd->add_option("--qemu-firmware", o->qemu_firmware,
                  "DIR with QEMU's BIOS files, for a QEMU not installed from a package (-L)");
  cmd->add_option("--timeout", o->timeout_s, "stop the VM after this many seconds (0: never)");
  cmd->add_flag("--shell", o->shell, "an interactive shell in the guest instead of a program");
  cmd->add_option("--router", o->shared_router,
                  "unix:PATH: a running router's listener for this VM (hira-router --listen "
                  "NAME=unix:PATH) instead of a private router; its accounting is the router's");
  add_router_options(cmd, &o->router);
  cmd->add_option("program", o->program, "the program and its arguments (after --)");
}

int run_vm(const VmOptions &o) {
  if (o.program.empty() && !o.shell) {
    std::fprintf(stderr, "hira vm: give a program (after --) or --shell\n");
    return 2;
  }
  const fs::path guest =
      o.guest_dir.empty() ? self_dir().parent_path() / "guest" : fs::path(o.guest_dir);
  if (!fs::exists(guest / "vmlinuz") || !fs::exists(guest / "base.cpio.gz")) {
    std::fprintf(stderr,
                 "hira vm: no guest image in %s; build it with qemu_device/build-guest-image %s\n",
                 guest.c_str(), guest.c_str());
    return 2;
  }
  ScratchDir dir("hira-vm");
  if (!dir.ok()) {
    std::perror("hira vm: mkdtemp");
    return 1;
  }
  // The guest libraries first, then whatever the caller's programs need.
  std::string guest_ld = guest_library_path(o.router.apis_dir);
  if (const char *ld = std::getenv("LD_LIBRARY_PATH"); ld != nullptr && *ld != '\0') {
    guest_ld += std::string(":") + ld;
  }

  // The initramfs: the base image, then this run's files (the kernel reads
  // an uncompressed archive appended at a 4-byte boundary).
  std::vector<uint8_t> run_archive;
  if (!build_run_archive(o, guest_ld, &run_archive)) return 2;
  {
    std::ifstream base(guest / "base.cpio.gz", std::ios::binary);
    std::ofstream initrd(dir.path() / "initrd", std::ios::binary);
    initrd << base.rdbuf();
    initrd.write(reinterpret_cast<const char *>(run_archive.data()),
                 static_cast<std::streamsize>(run_archive.size()));
    if (!initrd) {
      std::fprintf(stderr, "hira vm: cannot write the initramfs\n");
      return 1;
    }
  }

  // The VM's shared region: a sealed memfd (nobody can shrink it under a
  // server's mapping), which QEMU and the router open through /proc.
  std::string region;
  int region_fd = -1;
  if (o.window_mb > 0) {
    std::string error;
    region_fd = create_sealed_memfd("hira-vm-window", uint64_t{o.window_mb} << 20, &error);
    if (region_fd < 0) {
      std::fprintf(stderr, "hira vm: no shared region (%s); data through the vsock stream\n",
                   error.c_str());
    } else {
      region = "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(region_fd);
    }
  }
  struct CloseRegion {
    int fd;
    ~CloseRegion() {
      if (fd >= 0) ::close(fd);
    }
  } close_region{region_fd};

  RouterOptions ro = o.router;
  ro.vm_label = o.name;
  if (!region.empty()) ro.extra_args = {"--vm-window", o.name + "=" + region};
  PrivateRouter router;
  if (o.shared_router.empty()) {
    router = start_router(dir.path(), ro);
    if (router.pid < 0) return 1;
  } else {
    router.endpoint = o.shared_router;
  }

  bool kvm = o.accel == "kvm" || (o.accel == "auto" && kvm_usable());
  const bool may_fall_back = kvm && o.accel == "auto";
  const fs::path kvm_log = dir.path() / "qemu-kvm.log";
  // A shared router was given its VM's region by the operator, if any.
  const std::string vm_region = o.shared_router.empty() ? region : "";
  Boot boot = boot_guest(o, guest, dir.path() / "first", router.endpoint, vm_region, kvm,
                         may_fall_back ? kvm_log.c_str() : nullptr);
  if (may_fall_back && boot.qemu_status != 0 && boot.console.empty()) {
    // /dev/kvm is there but cannot run this guest (nested, say): TCG then.
    std::fprintf(stderr, "hira vm: KVM could not start the guest here (%s); using TCG\n",
                 first_line(kvm_log).c_str());
    boot = boot_guest(o, guest, dir.path() / "tcg", router.endpoint, vm_region, false);
  } else if (may_fall_back) {
    std::ifstream log(kvm_log);
    std::fputs(std::string(std::istreambuf_iterator<char>(log), {}).c_str(), stderr);
  }
  stop_router(router);

  const auto at = boot.console.rfind(kStatusLine);
  if (at == std::string::npos) {
    std::fprintf(stderr,
                 "hira vm: the guest did not report an exit status (QEMU exit %d); its "
                 "console:\n%s\n",
                 boot.qemu_status, boot.console.c_str());
    return 125;
  }
  return std::atoi(boot.console.c_str() + at + std::strlen(kStatusLine));
}

}  // namespace hira::cli
