#include "server_sandbox.h"

#include <fcntl.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>

extern char **environ;

namespace hira::router {

namespace {

// System calls no vendor library needs and a hostile guest would like:
// reaching other processes, the kernel's configuration, new kernel
// attack surface, or a way out of the namespaces. They fail with EPERM.
const char *const kDenied[] = {
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "swapon",
    "swapoff",
    "reboot",
    "setns",
    "unshare",
    "bpf",
    "perf_event_open",
    "keyctl",
    "add_key",
    "request_key",
    "userfaultfd",
    "open_by_handle_at",
    "name_to_handle_at",
    "iopl",
    "ioperm",
    "quotactl",
    "acct",
    "settimeofday",
    "clock_settime",
    "adjtimex",
    "clock_adjtime",
    "syslog",
    "vhangup",
    "fanotify_init",
    "lookup_dcookie",
    "mknod",
    "mknodat",
    "move_mount",
    "fsopen",
    "fsmount",
    "open_tree",
    "pidfd_getfd",
};

// Names passed from the router's environment (and prefixes of names):
// what loaders and vendor libraries read. Everything else stays behind.
const char *const kAllowedNames[] = {"PATH",
                                     "LANG",
                                     "LANGUAGE",
                                     "TZ",
                                     "LD_LIBRARY_PATH",
                                     "OCL_ICD_VENDORS",
                                     "OCL_ICD_FILENAMES",
                                     "OPENCL_VENDOR_PATH"};
const char *const kAllowedPrefixes[] = {"LC_", "POCL_", "CUDA_", "NVIDIA_", "__GL_", "HIRA_"};
// Set by the router for each server, never inherited.
const char *const kPerServer[] = {"HOME", "TMPDIR", "XDG_CACHE_HOME", "HIRA_SOCKET"};

std::string env_name(const char *entry) {
  const char *eq = std::strchr(entry, '=');
  return eq == nullptr ? std::string(entry) : std::string(entry, eq);
}

bool allowed(const std::string &name, const std::vector<std::string> &extra) {
  for (const char *p : kPerServer) {
    if (name == p) return false;
  }
  for (const char *n : kAllowedNames) {
    if (name == n) return true;
  }
  for (const char *p : kAllowedPrefixes) {
    if (name.rfind(p, 0) == 0) return true;
  }
  for (const auto &e : extra) {
    if (name == e) return true;
  }
  return false;
}

}  // namespace

// The seccomp program, exported by libseccomp once (the child only installs it).
struct Sandbox::Filter {
  std::vector<sock_filter> code;
  sock_fprog prog{};
};

Sandbox::Sandbox(SandboxOptions options)
    : options_(std::move(options)), as_root_(::geteuid() == 0) {
  if (!options_.enabled) return;
  const char *tmp = std::getenv("TMPDIR");
  std::string templ =
      std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/hira-servers-XXXXXX";
  if (::mkdtemp(templ.data()) != nullptr) {
    base_ = templ;
    ::chmod(base_.c_str(), 0711);  // servers reach their own folder, list none
  }
  scmp_filter_ctx ctx = ::seccomp_init(SCMP_ACT_ALLOW);
  if (ctx == nullptr) return;
  bool ok = true;
  for (const char *name : kDenied) {
    const int nr = ::seccomp_syscall_resolve_name(name);
    if (nr == __NR_SCMP_ERROR) continue;  // not on this architecture
    ok &= ::seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0) == 0;
  }
  // No IP or raw sockets: a server talks to its router over its channel.
  for (const int domain : {AF_INET, AF_INET6, AF_PACKET}) {
    ok &= ::seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socket), 1,
                             SCMP_A0(SCMP_CMP_EQ, static_cast<scmp_datum_t>(domain))) == 0;
  }
  // Exported through a memory file: the child installs it without libseccomp.
  const int fd = ::memfd_create("hira-seccomp", MFD_CLOEXEC);
  if (ok && fd >= 0 && ::seccomp_export_bpf(ctx, fd) == 0) {
    const off_t size = ::lseek(fd, 0, SEEK_END);
    auto f = std::make_unique<Filter>();
    f->code.resize(static_cast<size_t>(size) / sizeof(sock_filter));
    if (size > 0 && ::pread(fd, f->code.data(), static_cast<size_t>(size), 0) == size) {
      f->prog.len = static_cast<unsigned short>(f->code.size());
      f->prog.filter = f->code.data();
      filter_ = std::move(f);
    }
  }
  if (fd >= 0) ::close(fd);
  ::seccomp_release(ctx);
}

Sandbox::~Sandbox() {
  if (base_.empty()) return;
  std::error_code ec;
  std::filesystem::remove_all(base_, ec);
}

std::string Sandbox::describe() const {
  if (!options_.enabled) return "API servers run unconfined (--no-sandbox)";
  std::string s = "API servers run sandboxed: ";
  s += as_root_ ? "each as its own uid from " + std::to_string(options_.uid_base) : "as this user";
  if (as_root_ && options_.private_network) s += ", without network";
  s += filter_ ? ", system calls filtered" : ", WITHOUT a system call filter";
  s += ", environment from an allow-list, ";
  s += options_.cache_root.empty() ? "a private home under " + base_
                                   : "a home per VM under " + options_.cache_root;
  return s;
}

std::unique_ptr<SandboxPlan> Sandbox::plan(const std::vector<std::string> &set_env,
                                           const std::string &vm, std::string *error) {
  std::unique_ptr<SandboxPlan> p(new SandboxPlan);
  for (char **e = environ; *e != nullptr; ++e) {
    if (!options_.enabled || allowed(env_name(*e), options_.extra_env)) {
      bool overridden = false;
      for (const auto &s : set_env) overridden |= env_name(s.c_str()) == env_name(*e);
      if (!overridden) p->env_storage_.emplace_back(*e);
    }
  }
  for (const auto &s : set_env) p->env_storage_.push_back(s);
  if (options_.enabled) {
    if (base_.empty() || !filter_) {
      *error = base_.empty() ? "cannot create the servers' home folders"
                             : "cannot build the system call filter";
      return nullptr;
    }
    p->enabled_ = true;
    p->as_root_ = as_root_;
    p->private_network_ = as_root_ && options_.private_network;
    p->max_open_files_ = options_.max_open_files;
    p->max_threads_ = options_.max_threads;
    p->filter_ = &filter_->prog;
    if (!vm.empty() && cache_root_usable()) {
      // One VM's servers share a uid (stable across runs: from its label)
      // and a home kept in the cache root.
      std::string safe;
      uint64_t h = 1469598103934665603ull;
      for (const char c : vm) {
        safe.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c
                                                                                           : '_');
        h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ull;
      }
      p->uid_ = as_root_ ? options_.uid_base + static_cast<uid_t>(h % 1000000u) : ::getuid();
      p->home_ = options_.cache_root + "/" + safe;
      p->owns_home_ = false;
      ::mkdir(p->home_.c_str(), 0700);
      struct stat st {};
      if (::lstat(p->home_.c_str(), &st) != 0 || !S_ISDIR(st.st_mode) ||
          (as_root_ && st.st_uid != p->uid_ && ::chown(p->home_.c_str(), p->uid_, p->uid_) != 0)) {
        *error = "cannot use " + p->home_ + ": " + std::strerror(errno);
        return nullptr;
      }
    } else {
      // One number per server: sessions plan servers from their own threads.
      const unsigned n = next_.fetch_add(1, std::memory_order_relaxed);
      p->uid_ = as_root_ ? options_.uid_base + (n % 1000000u) : ::getuid();
      p->home_ = base_ + "/server-" + std::to_string(p->uid_) + "-" + std::to_string(n + 1);
      if (::mkdir(p->home_.c_str(), 0700) != 0 ||
          (as_root_ && ::chown(p->home_.c_str(), p->uid_, p->uid_) != 0)) {
        *error = "cannot create " + p->home_ + ": " + std::strerror(errno);
        return nullptr;
      }
    }
    // The vendor library's caches (PoCL's kernels, NVIDIA's compute cache)
    // live here: no other guest's server can plant anything in them.
    p->env_storage_.push_back("HOME=" + p->home_);
    p->env_storage_.push_back("TMPDIR=" + p->home_);
    p->env_storage_.push_back("XDG_CACHE_HOME=" + p->home_ + "/.cache");
  }
  for (auto &s : p->env_storage_) p->envp_.push_back(s.data());
  p->envp_.push_back(nullptr);
  return p;
}

bool Sandbox::cache_root_usable() {
  if (options_.cache_root.empty()) return false;
  // The root must be the router's and writable by nobody else (in a shared
  // /var/tmp someone could have made it first, with a symbolic link inside
  // it waiting for a chown). If it is not, servers get private homes.
  ::mkdir(options_.cache_root.c_str(), 0711);
  struct stat root {};
  if (::lstat(options_.cache_root.c_str(), &root) == 0 && S_ISDIR(root.st_mode) &&
      root.st_uid == ::geteuid() && (root.st_mode & 022) == 0) {
    return true;
  }
  if (!cache_warned_.exchange(true)) {
    std::fprintf(stderr,
                 "hira-router: %s is not a folder of this user that only it can write: API "
                 "servers get private homes instead (no compile cache kept)\n",
                 options_.cache_root.c_str());
  }
  return false;
}

SandboxPlan::~SandboxPlan() {
  if (home_.empty() || !owns_home_) return;
  std::error_code ec;
  try {
    std::filesystem::remove_all(home_, ec);
  } catch (const std::exception &) {
    // Out of memory (remove_all allocates): the home stays behind, the
    // router does not abort in a destructor.
  }
}

bool SandboxPlan::enter() const {
  // Only the channel (fd 3) and stdio stay open.
  ::syscall(SYS_close_range, 4u, ~0u, 0u);
  if (!enabled_) return true;
  if (as_root_) {
    if (private_network_ && ::unshare(CLONE_NEWNET) != 0) return false;
    if (::setgroups(0, nullptr) != 0 || ::setresgid(uid_, uid_, uid_) != 0 ||
        ::setresuid(uid_, uid_, uid_) != 0) {
      return false;
    }
    const rlimit threads{max_threads_, max_threads_};
    if (::setrlimit(RLIMIT_NPROC, &threads) != 0) return false;
  }
  if (::chdir(home_.c_str()) != 0) return false;
  rlimit files{};
  ::getrlimit(RLIMIT_NOFILE, &files);  // never above what the router may give
  files.rlim_cur = files.rlim_max = std::min<rlim_t>(files.rlim_max, max_open_files_);
  const rlimit no_core{0, 0};
  if (::setrlimit(RLIMIT_CORE, &no_core) != 0 || ::setrlimit(RLIMIT_NOFILE, &files) != 0) {
    return false;
  }
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  // SPEC_ALLOW: without it the kernel also forces speculation mitigations on
  // every filtered process (store-bypass disable, branch-predictor barriers
  // on each context switch), which made a synchronous call 3-4x slower on
  // the GPU machine; they isolate nothing these separate users do not.
  if (::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_SPEC_ALLOW, filter_) ==
      0) {
    return true;
  }
  return ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, filter_) == 0;  // older kernels
}

}  // namespace hira::router
