// The API server process: loads the real library and serves one guest
// process per connection, either on an inherited fd (spawned by the router)
// or on a TCP listener (a remote API server host), forking per connection.
#include <dlfcn.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <set>
#include <string>

#include "connection.h"
#include "hira/hop_trace.h"
#include "hira/remote_auth.h"
#include "hira/server.h"

namespace hira::server {

namespace {

// Seconds a connecting router has to prove the key.
constexpr int kAuthTimeoutSec = 10;

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

struct ListenOptions {
  std::string endpoint;
  std::optional<std::string> key;  // routers must prove it (remote_auth.h)
  unsigned max_connections = 64;
};

// Reaps the children that ended; returns how many still run.
size_t reap(std::set<pid_t> &children) {
  for (pid_t pid; (pid = ::waitpid(-1, nullptr, WNOHANG)) > 0;) children.erase(pid);
  return children.size();
}

int listen_loop(const ServerApi &api, const ListenOptions &o) {
  std::string error;
  const int lfd = listen_endpoint(o.endpoint, &error);
  if (lfd < 0) {
    std::fprintf(stderr, "hira-server(%s): cannot listen on %s: %s\n", api.name, o.endpoint.c_str(),
                 error.c_str());
    return 1;
  }
  std::fprintf(stderr, "hira-server(%s): listening on %s (%s, at most %u guests at once)\n",
               api.name, o.endpoint.c_str(),
               o.key ? "routers must prove the key" : "no key: anyone who connects is served",
               o.max_connections);
  std::set<pid_t> children;
  uint64_t refused = 0;
  for (;;) {
    const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      // Out of descriptors or memory: wait instead of spinning on accept.
      if (errno != EINTR) ::usleep(10000);
      continue;
    }
    if (reap(children) >= o.max_connections) {
      if (refused++ % 100 == 0) {
        std::fprintf(stderr,
                     "hira-server(%s): refusing connections beyond %u at once (--max-connections; "
                     "%llu refused so far)\n",
                     api.name, o.max_connections, static_cast<unsigned long long>(refused));
      }
      ::close(fd);
      continue;
    }
    // One process per guest process: a crash takes down only its own guest.
    const pid_t pid = ::fork();
    if (pid == 0) {
      ::close(lfd);
      std::string why;
      if (o.key && !authenticate_router(fd, *o.key, kAuthTimeoutSec, &why)) {
        std::fprintf(stderr, "hira-server(%s): refused a connection: %s\n", api.name, why.c_str());
        ::_exit(2);
      }
      Connection conn(api, fd);
      ::_exit(conn.run());
    }
    if (pid > 0) children.insert(pid);
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
  hop_trace::init();
  // The real library may load hira's own guest library (an ICD loader that
  // finds hira's vendor file beside the native ones): it must never reach
  // hira from here, or a server would call itself through the router.
  ::unsetenv("HIRA_SOCKET");
  ::setenv(wire::kInsideApiServerEnv, "1", 1);
  CLI::App app{std::string("hira API server for ") + api.name};
  int fd = -1;
  std::string library, key_file;
  ListenOptions listen;
  bool no_key = false;
  app.add_option("--fd", fd, "serve the guest connected on this inherited fd");
  app.add_option("--listen", listen.endpoint,
                 "serve guests connecting to tcp:HOST:PORT or unix:PATH");
  app.add_option("--key-file", key_file,
                 "FILE: routers must prove they hold this key (the router's --remote-key-file)");
  app.add_flag("--no-key", no_key,
               "serve a TCP listener without a key: anyone who can connect runs calls here");
  uint64_t max_backlog_mb = 256;
  app.add_option("--max-backlog-mb", max_backlog_mb,
                 "MiB of a guest's calls read ahead of the ones running; beyond it the "
                 "server stops reading until they drain")
      ->check(CLI::Range(uint64_t{1}, uint64_t{65536}));
  app.add_option("--max-connections", listen.max_connections,
                 "guest connections (server processes) at once; more are closed at once")
      ->check(CLI::Range(1u, 100000u));
  app.add_option("--library", library,
                 std::string("the real library (default ") + api.default_library + ")");
  CLI11_PARSE(app, argc, argv);
  set_max_backlog_bytes(max_backlog_mb << 20);
  ::signal(SIGPIPE, SIG_IGN);
  if (fd >= 0) return serve_channel(api, fd, library);
  if (!listen.endpoint.empty()) {
    if (!key_file.empty()) {
      std::string error;
      listen.key = load_shared_key(key_file, &error);
      if (!listen.key) {
        std::fprintf(stderr, "hira-server(%s): --key-file: %s\n", api.name, error.c_str());
        return 1;
      }
    } else if (listen.endpoint.rfind("tcp:", 0) == 0 && !no_key) {
      std::fprintf(stderr,
                   "hira-server(%s): a TCP listener needs --key-file FILE (the routers' "
                   "--remote-key-file), or --no-key to serve anyone who can connect\n",
                   api.name);
      return 1;
    }
    if (load_library(api, library) == nullptr) return 1;
    return listen_loop(api, listen);
  }
  std::fprintf(stderr, "hira-server(%s): give --fd N or --listen ENDPOINT\n", api.name);
  return 1;
}

}  // namespace hira::server
