// hira: the user-facing command.
//   hira run [--json FILE] [--quiet] -- PROGRAM [ARGS...]
// starts a private router (which spawns API servers as guests connect), runs
// PROGRAM against the generated guest libraries, and prints what it called.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "hira/channel.h"

namespace fs = std::filesystem;

namespace {

fs::path self_dir() { return fs::canonical("/proc/self/exe").parent_path(); }

pid_t spawn(const std::vector<std::string> &args) {
  std::vector<char *> argv;
  for (const auto &a : args) argv.push_back(const_cast<char *>(a.c_str()));
  argv.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
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

// The router creates ready_file once it listens.
bool wait_for_router(const fs::path &ready_file, pid_t router) {
  for (int i = 0; i < 3000; ++i) {
    if (fs::exists(ready_file)) return true;
    int status;
    if (::waitpid(router, &status, WNOHANG) == router) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return false;
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
  std::vector<std::string> router_args = {(self_dir() / "hira-router").string(),
                                          "--listen",
                                          endpoint,
                                          "--apis",
                                          o.apis_dir,
                                          "--ready-file",
                                          (tmp / "ready").string(),
                                          "--warm-servers",
                                          std::to_string(o.warm)};
  router_args.push_back(o.quiet ? "--quiet" : "--summary");
  if (o.no_sandbox) router_args.push_back("--no-sandbox");
  // One user's runs share their servers' compile caches (the program is
  // that user's own); nobody else's runs can reach them.
  router_args.insert(router_args.end(),
                     {"--server-cache", "/var/tmp/hira-cache-" + std::to_string(::getuid())});
  if (!o.json.empty()) router_args.insert(router_args.end(), {"--stats-json", o.json});
  const pid_t router = spawn(router_args);
  if (!wait_for_router(tmp / "ready", router)) {
    std::fprintf(stderr, "hira: the router did not start\n");
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
  ::kill(router, SIGTERM);
  int rstatus = 0;
  ::waitpid(router, &rstatus, 0);
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
