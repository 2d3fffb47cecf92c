// hira: the user-facing command.
//   hira run [--json FILE] [--quiet] -- PROGRAM [ARGS...]
// starts a private router (which spawns API servers as guests connect), runs
// PROGRAM against the generated guest libraries, and prints what it called.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "hira/channel.h"

namespace fs = std::filesystem;

namespace {

fs::path self_dir() { return fs::canonical("/proc/self/exe").parent_path(); }

// keep_fd, if set, is handed to the child as descriptor 3.
pid_t spawn(const std::vector<std::string> &args, int keep_fd = -1) {
  std::vector<char *> argv;
  for (const auto &a : args) argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (keep_fd >= 0) {
      // The router unblocks SIGTERM once it can act on it, so a program that
      // ends at once still gets its summary and statistics file.
      sigset_t term;
      sigemptyset(&term);
      sigaddset(&term, SIGTERM);
      ::sigprocmask(SIG_BLOCK, &term, nullptr);
    }
    // dup2 clears close-on-exec on the copy, but does nothing if it is 3 already.
    if (keep_fd == 3) ::fcntl(3, F_SETFD, 0);
    if (keep_fd >= 0 && keep_fd != 3) ::dup2(keep_fd, 3);
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

struct RunOptions {
  std::string apis_dir, json;
  bool quiet = false;
  bool no_sandbox = false;
  unsigned warm = 0;
};

int run(const std::vector<std::string> &program, const RunOptions &o) {
  char tmpl[] = "/tmp/hira-run-XXXXXX";
  if (::mkdtemp(tmpl) == nullptr) {
    std::perror("hira: mkdtemp");
    return 1;
  }
  const fs::path tmp(tmpl);
  const std::string endpoint = "unix:" + (tmp / "router.sock").string();
  // The socket is bound here and handed to the router, so the program starts
  // while the router does: its connect waits in the backlog, and if the
  // router cannot start, the socket closes and the program's calls fail.
  std::string error;
  const int listener = hira::listen_endpoint(endpoint, &error);
  if (listener < 0) {
    std::fprintf(stderr, "hira: cannot listen on %s: %s\n", endpoint.c_str(), error.c_str());
    fs::remove_all(tmp);
    return 1;
  }
  std::vector<std::string> router_args = {(self_dir() / "hira-router").string(),
                                          "--listen",
                                          "fd:3",
                                          "--apis",
                                          o.apis_dir,
                                          "--warm-servers",
                                          std::to_string(o.warm)};
  router_args.push_back(o.quiet ? "--quiet" : "--summary");
  if (o.no_sandbox) router_args.push_back("--no-sandbox");
  // One user's runs share their servers' compile caches (the program is
  // that user's own); nobody else's runs can reach them.
  router_args.insert(router_args.end(),
                     {"--server-cache", "/var/tmp/hira-cache-" + std::to_string(::getuid())});
  if (!o.json.empty()) router_args.insert(router_args.end(), {"--stats-json", o.json});
  const pid_t router = spawn(router_args, listener);
  ::close(listener);
  if (router < 0) {
    std::perror("hira: fork");
    fs::remove_all(tmp);
    return 1;
  }
  // The program finds the guest libraries first; the router and servers do not.
  std::string ld;
  for (const auto &entry : fs::directory_iterator(o.apis_dir)) {
    if (fs::exists(entry.path() / "guest")) ld += (entry.path() / "guest").string() + ":";
  }
  if (const char *old = std::getenv("LD_LIBRARY_PATH")) ld += old;
  ::setenv("LD_LIBRARY_PATH", ld.c_str(), 1);
  ::setenv("HIRA_SOCKET", endpoint.c_str(), 1);
  const pid_t app = spawn(program);
  ::unsetenv("HIRA_SOCKET");
  int status = 0;
  while (::waitpid(app, &status, 0) < 0 && errno == EINTR) {
  }
  int rstatus = 0;
  if (::waitpid(router, &rstatus, WNOHANG) == router) {
    // It ended before the program did: whatever it said is on stderr.
    std::fprintf(stderr, "hira: the router exited early (status %d)\n", exit_code(rstatus));
  } else {
    ::kill(router, SIGTERM);
    ::waitpid(router, &rstatus, 0);
  }
  fs::remove_all(tmp);
  return exit_code(status);
}

}  // namespace

int main(int argc, char **argv) {
  CLI::App app{"hira: remote accelerator APIs for guests"};
  app.require_subcommand(1);
  auto *run_cmd = app.add_subcommand("run", "run a program with its API calls going through hira");
  std::vector<std::string> program;
  RunOptions o;
  o.apis_dir = (self_dir().parent_path() / "apis").string();
  run_cmd->add_option("--apis", o.apis_dir, "directory of generated APIs")
      ->check(CLI::ExistingDirectory);
  run_cmd->add_option("--json", o.json, "write call statistics as JSON to this file");
  run_cmd->add_flag("--quiet", o.quiet, "do not print the call summary");
  run_cmd->add_flag("--no-sandbox", o.no_sandbox,
                    "run the API server unconfined (see hira-router --no-sandbox)");
  // Warm servers pay off when they start well before a guest arrives (a
  // long-running router); here the program connects at once, so by default
  // a server starts when it does.
  run_cmd->add_option("--warm-servers", o.warm, "API servers started ahead, per API")
      ->check(CLI::Range(0u, 16u));
  run_cmd->add_option("program", program, "the program and its arguments (after --)")->required();
  CLI11_PARSE(app, argc, argv);
  ::signal(SIGINT, SIG_IGN);  // the program gets Ctrl-C; we clean up after it
  return run(program, o);
}
