// Spawning API servers: one process per guest process, started from a
// pool of warm ones where the operator asks for it, so that a guest's first
// call does not wait for a process to start and the real library to load
// and initialize.
#pragma once

#include <sys/types.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "api_registry.h"
#include "server_sandbox.h"

namespace hira::router {

struct SpawnedServer {
  int fd = -1;                           // the router's end of the server's channel
  pid_t pid = -1;                        // -1: nothing was started
  std::shared_ptr<SandboxPlan> sandbox;  // kept until the server has ended
};

class ServerPool {
 public:
  // `warm`: idle servers kept ready per API (0: spawn on demand only).
  // `server_args`: options every server is started with (its limits).
  ServerPool(const ApiRegistry &apis, unsigned warm, Sandbox &sandbox,
             std::vector<std::string> server_args = {});
  ~ServerPool();  // ends the idle servers
  ServerPool(const ServerPool &) = delete;
  ServerPool &operator=(const ServerPool &) = delete;

  // Starts the warm servers (call once the registry is complete): for any
  // VM, or where the servers of a VM share a home, for each of `vms` (the
  // listeners' labels) in its home.
  void fill(const std::vector<std::string> &vms);
  // A server for a new guest of `api` in VM `vm`: a warm one if there is one
  // alive (that VM's own first, then one for any VM), else a fresh one.
  SpawnedServer take(const ApiEntry &api, const std::string &vm);
  // Starts a replacement for what take() handed out (call it once the guest
  // is served, so that its start-up is not on that guest's path). Where the
  // servers of a VM share a home (--server-cache: the vendor's compile
  // caches), the replacement is that VM's, started in its home: a server
  // warmed for any VM has a private home and would compile every program
  // again (PoCL: 0.75 s instead of 0.09 s for a small test program).
  void refill(const ApiEntry &api, const std::string &vm);

  // Starts `hira-server-NAME --fd 3` on a new socket pair, in its sandbox
  // (for the guests of VM `vm`, or any VM when "").
  SpawnedServer spawn(const ApiEntry &api, const std::string &vm = "");

 private:
  const ApiRegistry &apis_;
  Sandbox &sandbox_;
  std::vector<std::string> server_args_;
  unsigned warm_;
  std::mutex mu_;
  // Idle servers by (API name, VM; "" for any VM).
  std::map<std::pair<std::string, std::string>, std::vector<SpawnedServer>> idle_;
};

}  // namespace hira::router
