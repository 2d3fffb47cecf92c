#include "launch.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "hira/channel.h"

namespace hira::cli {

fs::path self_dir() { return fs::canonical("/proc/self/exe").parent_path(); }

pid_t spawn(const std::vector<std::string> &args, int keep_fd, const char *stderr_path) {
  std::vector<char *> argv;
  for (const auto &a : args) argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    // hira ignores SIGINT while its children run; they get Ctrl-C.
    ::signal(SIGINT, SIG_DFL);
    if (keep_fd >= 0) {
      sigset_t term;
      sigemptyset(&term);
      sigaddset(&term, SIGTERM);
      ::sigprocmask(SIG_BLOCK, &term, nullptr);
    }
    // dup2 clears close-on-exec on the copy, but does nothing if it is 3 already.
    if (keep_fd == 3) ::fcntl(3, F_SETFD, 0);
    if (keep_fd >= 0 && keep_fd != 3) ::dup2(keep_fd, 3);
    if (stderr_path != nullptr) {
      const int err = ::open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
      if (err >= 0) ::dup2(err, 2);
    }
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "hira: cannot run %s: %s\n", argv[0], std::strerror(errno));
    ::_exit(127);
  }
  return pid;
}

int exit_code(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

int wait_for(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 1;
  }
  return exit_code(status);
}

ScratchDir::ScratchDir(const char *prefix) {
  std::string tmpl = std::string("/tmp/") + prefix + "-XXXXXX";
  if (::mkdtemp(tmpl.data()) != nullptr) path_ = tmpl;
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  if (!path_.empty()) fs::remove_all(path_, ec);
}

int bind_listener(const fs::path &path) {
  std::string error;
  const int fd = hira::listen_endpoint("unix:" + path.string(), &error);
  if (fd < 0) std::fprintf(stderr, "hira: cannot listen on %s: %s\n", path.c_str(), error.c_str());
  return fd;
}

void add_router_options(CLI::App *cmd, RouterOptions *o) {
  o->apis_dir = (self_dir().parent_path() / "apis").string();
  cmd->add_option("--apis", o->apis_dir, "directory of generated APIs")
      ->check(CLI::ExistingDirectory);
  cmd->add_option("--json", o->json, "write call statistics as JSON to this file");
  cmd->add_flag("--quiet", o->quiet, "do not print the call summary");
  cmd->add_flag("--no-sandbox", o->no_sandbox,
                "run the API server unconfined (see hira-router --no-sandbox)");
  cmd->add_option("--policy", o->policies,
                  "eBPF policy for the router to enforce (see hira-router --policy)")
      ->group("Enforcement");
  cmd->add_option("--quota", o->quotas,
                  "RESOURCE=AMOUNT: the program's quota (device_memory=80M) or rate "
                  "(calls=1000, per second); see hira-router --quota")
      ->group("Enforcement");
  cmd->add_option("--metrics", o->metrics,
                  "HOST:PORT: serve live usage in the Prometheus text format at /metrics")
      ->group("Enforcement");
}

PrivateRouter start_router(const fs::path &dir, const RouterOptions &o) {
  PrivateRouter r;
  // The socket is bound here and handed to the router, so a guest starts
  // while the router does: its connect waits in the backlog, and if the
  // router cannot start, the socket closes and the guest's calls fail.
  const int listener = bind_listener(dir / "router.sock");
  if (listener < 0) return r;
  r.endpoint = "unix:" + (dir / "router.sock").string();
  std::vector<std::string> args = {(self_dir() / "hira-router").string(),
                                   "--listen",
                                   o.vm_label.empty() ? "fd:3" : o.vm_label + "=fd:3",
                                   "--apis",
                                   o.apis_dir,
                                   "--warm-servers",
                                   std::to_string(o.warm)};
  args.push_back(o.quiet ? "--quiet" : "--summary");
  if (o.no_sandbox) args.push_back("--no-sandbox");
  // One user's runs share their servers' compile caches (the program is
  // that user's own); nobody else's runs can reach them.
  args.insert(args.end(), {"--server-cache", "/var/tmp/hira-cache-" + std::to_string(::getuid())});
  if (!o.json.empty()) args.insert(args.end(), {"--stats-json", o.json});
  const std::string label = o.vm_label.empty() ? "local" : o.vm_label;
  for (const auto &p : o.policies) args.insert(args.end(), {"--policy", p});
  for (const auto &q : o.quotas) args.insert(args.end(), {"--quota", label + ":" + q});
  if (!o.metrics.empty()) args.insert(args.end(), {"--metrics", o.metrics});
  // Enforcement that cannot start must stop the run before the program does.
  const bool wait_ready = !o.policies.empty() || !o.quotas.empty() || !o.metrics.empty();
  const fs::path ready = dir / "router.ready";
  if (wait_ready) args.insert(args.end(), {"--ready-file", ready.string()});
  args.insert(args.end(), o.extra_args.begin(), o.extra_args.end());
  r.pid = spawn(args, listener);
  ::close(listener);
  if (r.pid < 0) {
    std::perror("hira: fork");
    return r;
  }
  while (wait_ready && !fs::exists(ready)) {
    int status = 0;
    if (::waitpid(r.pid, &status, WNOHANG) == r.pid) {
      r.pid = -1;
      r.failed = true;
      break;
    }
    ::usleep(2000);
  }
  return r;
}

void stop_router(const PrivateRouter &r) {
  if (r.pid < 0) return;
  int status = 0;
  if (::waitpid(r.pid, &status, WNOHANG) == r.pid) {
    // It ended before the guest did: whatever it said is on stderr.
    std::fprintf(stderr, "hira: the router exited early (status %d)\n", exit_code(status));
    return;
  }
  ::kill(r.pid, SIGTERM);
  // A router that failed on its own may still have been on its way out
  // (the guest, refused, can end first): its own failure status says so.
  if (const int code = wait_for(r.pid); code != 0 && code != 128 + SIGTERM) {
    std::fprintf(stderr, "hira: the router exited early (status %d)\n", code);
  }
}

std::string guest_library_path(const std::string &apis_dir) {
  std::string ld;
  std::error_code ec;
  for (const auto &entry : fs::directory_iterator(apis_dir, ec)) {
    if (fs::exists(entry.path() / "guest")) {
      if (!ld.empty()) ld += ":";
      ld += (entry.path() / "guest").string();
    }
  }
  return ld;
}

}  // namespace hira::cli
