// hira: the user-facing command.
//   hira run [OPTIONS] -- PROGRAM [ARGS...]
//     starts a private router (which spawns API servers as guests connect),
//     runs PROGRAM against the generated guest libraries, and prints what it
//     called.
//   hira vm [OPTIONS] -- PROGRAM [ARGS...]
//     the same with PROGRAM inside a QEMU guest, through the virtio-vsock
//     device (vm_command.cpp).
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "launch.h"
#include "top_command.h"
#include "vm_command.h"

namespace {

using namespace hira::cli;

int run(const std::vector<std::string> &program, const RouterOptions &o) {
  ScratchDir dir("hira-run");
  if (!dir.ok()) {
    std::perror("hira: mkdtemp");
    return 1;
  }
  const PrivateRouter router = start_router(dir.path(), o);
  if (router.pid < 0) return 1;
  // The program finds the guest libraries first; the router and servers do not.
  std::string ld = guest_library_path(o.apis_dir) + ":";
  if (const char *old = std::getenv("LD_LIBRARY_PATH")) ld += old;
  ::setenv("LD_LIBRARY_PATH", ld.c_str(), 1);
  ::setenv("HIRA_SOCKET", router.endpoint.c_str(), 1);
  const pid_t app = spawn(program);
  ::unsetenv("HIRA_SOCKET");
  const int status = wait_for(app);
  stop_router(router);
  return status;
}

}  // namespace

int main(int argc, char **argv) {
  CLI::App app{"hira: remote accelerator APIs for guests"};
  app.require_subcommand(1);

  auto *run_cmd = app.add_subcommand("run", "run a program with its API calls going through hira");
  std::vector<std::string> program;
  RouterOptions ro;
  add_router_options(run_cmd, &ro);
  // Warm servers pay off when they start well before a guest arrives (a
  // long-running router); here the program connects at once, so by default
  // a server starts when it does.
  run_cmd->add_option("--warm-servers", ro.warm, "API servers started ahead, per API")
      ->check(CLI::Range(0u, 16u));
  run_cmd->add_option("program", program, "the program and its arguments (after --)")->required();

  auto *vm_cmd = app.add_subcommand(
      "vm", "run a program inside a QEMU guest, its API calls leaving through the vsock device");
  VmOptions vo;
  add_vm_options(vm_cmd, &vo);

  auto *top_cmd = app.add_subcommand("top", "show a router's per-VM usage live (its --metrics)");
  TopOptions to;
  add_top_options(top_cmd, &to);

  CLI11_PARSE(app, argc, argv);
  if (*top_cmd) return run_top(to);
  ::signal(SIGINT, SIG_IGN);  // the program gets Ctrl-C; we clean up after it
  if (*vm_cmd) return run_vm(vo);
  return run(program, ro);
}
