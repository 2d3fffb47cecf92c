// The API server process: loads the real library and serves one guest
// process per connection, either on an inherited fd (spawned by the router)
// or on a TCP listener (a remote API server host), forking per connection.
#include <dlfcn.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <cstdlib>

#include "connection.h"
#include "hira/server.h"

namespace hira::server {

namespace {

void *load_library(const ServerApi &api, const std::string &library) {
  std::string path = library.empty() ? api.default_library : library;
  // The router passes where the real library lives when it is not a system one.
  if (const char *dir = std::getenv("HIRA_SERVER_LIBRARY_DIR");
      dir != nullptr && *dir != '\0' && path.find('/') == std::string::npos) {
    const std::string candidate = std::string(dir) + "/" + path;
    if (::access(candidate.c_str(), R_OK) == 0) path = candidate;
  }
  void *h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (h == nullptr) {
    std::fprintf(stderr, "hira-server(%s): cannot load %s: %s\n", api.name, path.c_str(),
                 ::dlerror());
    return nullptr;
  }
  const uint32_t n = api.bind(h);
  if (n < api.remote_function_count) {
    std::fprintf(stderr,
                 "hira-server(%s): %s provides %u of %u functions; calls to the others "
                 "fail with 'unsupported function'\n",
                 api.name, path.c_str(), n, api.remote_function_count);
  }
  return h;
}

int listen_loop(const ServerApi &api, const std::string &endpoint) {
  std::string error;
  const int lfd = listen_endpoint(endpoint, &error);
  if (lfd < 0) {
    std::fprintf(stderr, "hira-server(%s): cannot listen on %s: %s\n", api.name, endpoint.c_str(),
                 error.c_str());
    return 1;
  }
  std::fprintf(stderr, "hira-server(%s): listening on %s\n", api.name, endpoint.c_str());
  ::signal(SIGCHLD, SIG_IGN);  // children are reaped by the kernel
  for (;;) {
    const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    // One process per guest process: a crash takes down only its own guest.
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(lfd);
      Connection conn(api, fd);
      ::_exit(conn.run());
    }
    ::close(fd);
  }
}

}  // namespace

int serve_channel(const ServerApi &api, int fd, const std::string &library) {
  if (load_library(api, library) == nullptr) return 1;
  // Before the guest's hello: a server from the router's warm pool has done
  // this by the time a guest arrives. (Not in --listen mode: a GPU driver
  // initialized before fork does not survive in the children.)
  if (api.warm_up != nullptr) api.warm_up();
  Connection conn(api, fd);
  const int rc = conn.run();
  // Shadow threads may be inside the real library; do not wait for them.
  std::fflush(stderr);
  ::_exit(rc);
}

int server_main(const ServerApi &api, int argc, char **argv) {
  // The real library may load hira's own guest library (an ICD loader that
  // finds hira's vendor file beside the native ones): it must never reach
  // hira from here, or a server would call itself through the router.
  ::unsetenv("HIRA_SOCKET");
  ::setenv(wire::kInsideApiServerEnv, "1", 1);
  CLI::App app{std::string("hira API server for ") + api.name};
  int fd = -1;
  std::string listen, library;
  app.add_option("--fd", fd, "serve the guest connected on this inherited fd");
  app.add_option("--listen", listen, "serve guests connecting to tcp:HOST:PORT or unix:PATH");
  app.add_option("--library", library,
                 std::string("the real library (default ") + api.default_library + ")");
  CLI11_PARSE(app, argc, argv);
  ::signal(SIGPIPE, SIG_IGN);
  if (fd >= 0) return serve_channel(api, fd, library);
  if (!listen.empty()) {
    if (load_library(api, library) == nullptr) return 1;
    return listen_loop(api, listen);
  }
  std::fprintf(stderr, "hira-server(%s): give --fd N or --listen ENDPOINT\n", api.name);
  return 1;
}

}  // namespace hira::server
