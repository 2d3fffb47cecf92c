// What the hira command's subcommands share: starting processes, and a
// private router whose socket is bound before it starts.
#pragma once

#include <sys/types.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <string>
#include <vector>

namespace hira::cli {

namespace fs = std::filesystem;

fs::path self_dir();
// keep_fd, if set, is handed to the child as descriptor 3 (and SIGTERM
// starts blocked there: the router unblocks it once it can act on it).
// stderr_path, if given, receives the child's stderr.
pid_t spawn(const std::vector<std::string> &args, int keep_fd = -1,
            const char *stderr_path = nullptr);
int exit_code(int status);
int wait_for(pid_t pid);  // its exit code

// A directory under /tmp removed when this goes.
class ScratchDir {
 public:
  explicit ScratchDir(const char *prefix);
  ~ScratchDir();
  bool ok() const { return !path_.empty(); }
  const fs::path &path() const { return path_; }

 private:
  fs::path path_;
};

struct RouterOptions {
  std::string apis_dir, json;
  std::string vm_label;  // listener label: the VM's identity ("" = local)
  bool quiet = false;
  bool no_sandbox = false;
  unsigned warm = 0;
  // Enforcement for the one VM: --policy, --quota RESOURCE=AMOUNT, --metrics.
  std::vector<std::string> policies, quotas;
  std::string metrics;
  std::vector<std::string> extra_args;  // more hira-router options
};

struct PrivateRouter {
  pid_t pid = -1;
  std::string endpoint;  // unix:...
  // It ended before it served (a policy it could not load): it said why.
  bool failed = false;
};

// The options both `hira run` and `hira vm` give their private router.
void add_router_options(CLI::App *cmd, RouterOptions *o);

// Binds the router's socket in dir and starts the router on it; callers may
// connect at once (the backlog holds them until it serves).
PrivateRouter start_router(const fs::path &dir, const RouterOptions &o);
// Ends it (it prints its summary) and says if it had ended on its own.
void stop_router(const PrivateRouter &r);

// Binds a listening Unix socket at path (for a child to inherit), or -1.
int bind_listener(const fs::path &path);

// Where each generated API's guest library lives, ':'-joined.
std::string guest_library_path(const std::string &apis_dir);

}  // namespace hira::cli
