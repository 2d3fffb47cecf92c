// What an API server may hold. A guest controls memory in its own API server
// (and on a CPU device runs its kernels inside it), so the server is a
// process that holds nothing worth taking: its own user, no network, a
// filtered set of system calls, an environment from an allow-list, no
// descriptors but its channel, resource limits, and a private home folder
// (the vendor library's caches) that no other guest's server can write.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

namespace hira::router {

struct SandboxOptions {
  bool enabled = true;
  // As root: each server runs as its own uid/gid, base + n (never 0).
  uid_t uid_base = 2000000000u;
  bool private_network = true;         // a network namespace of its own (as root)
  std::vector<std::string> extra_env;  // variable names passed beyond the allow-list
  unsigned max_open_files = 4096;
  unsigned max_threads = 4096;  // RLIMIT_NPROC of the server's own uid
  // Non-empty: the servers of one VM (listener label) share a home here,
  // kept across runs (the vendor library's compile caches), and as root a
  // uid derived from the label; servers of other VMs cannot reach it.
  std::string cache_root;
};

// One server's sandbox, prepared before fork (the router is threaded: the
// child may only make system calls).
class SandboxPlan {
 public:
  ~SandboxPlan();
  SandboxPlan(const SandboxPlan &) = delete;
  SandboxPlan &operator=(const SandboxPlan &) = delete;

  // The environment for execve (the allow-list of `environ`, HOME, extras).
  char *const *envp() { return envp_.data(); }
  // In the child, after fork and before exec; returns false (errno set) on
  // failure, and the child must then exit.
  bool enter() const;
  // The private home folder, removed with the plan (after the server ended).
  const std::string &home() const { return home_; }

 private:
  friend class Sandbox;
  SandboxPlan() = default;
  bool enabled_ = false;
  bool owns_home_ = true;  // removed with the plan (not a VM's shared cache home)
  bool as_root_ = false;
  bool private_network_ = false;
  uid_t uid_ = 0;
  unsigned max_open_files_ = 0, max_threads_ = 0;
  const void *filter_ = nullptr;  // struct sock_fprog, owned by the Sandbox
  std::string home_;
  std::vector<std::string> env_storage_;
  std::vector<char *> envp_;
};

// The router's sandbox settings and the system call filter, built once.
class Sandbox {
 public:
  explicit Sandbox(SandboxOptions options);
  ~Sandbox();
  Sandbox(const Sandbox &) = delete;
  Sandbox &operator=(const Sandbox &) = delete;

  // Empty on failure (*error says why). `vm`: the listener label of the
  // guest it will serve, or "" (a warm server, for any VM: private home).
  std::unique_ptr<SandboxPlan> plan(const std::vector<std::string> &set_env, const std::string &vm,
                                    std::string *error);
  // What servers get, for the router's start-up line.
  std::string describe() const;
  // Whether the servers of one VM share a home (--server-cache in use).
  bool homes_per_vm() { return options_.enabled && cache_root_usable(); }

 private:
  // --server-cache is set and safe to use (says once why not).
  bool cache_root_usable();

  SandboxOptions options_;
  bool as_root_;
  std::atomic<bool> cache_warned_{false};
  std::string base_;  // folder of the servers' home folders
  struct Filter;
  std::unique_ptr<Filter> filter_;
  std::atomic<unsigned> next_{0};  // servers planned (their uids and homes)
};

}  // namespace hira::router
