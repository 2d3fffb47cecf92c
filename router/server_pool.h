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

  // Starts the warm servers (call once the registry is complete).
  void fill();
  // A server for a new guest of `api`: a warm one if there is one alive,
  // else a fresh one.
  SpawnedServer take(const ApiEntry &api, const std::string &vm);
  // Starts a replacement for what take() handed out (call it once the guest
  // is served, so that its start-up is not on that guest's path).
  void refill(const ApiEntry &api);

  // Starts `hira-server-NAME --fd 3` on a new socket pair, in its sandbox
  // (for the guests of VM `vm`, or any VM when "").
  SpawnedServer spawn(const ApiEntry &api, const std::string &vm = "");

 private:
  const ApiRegistry &apis_;
  Sandbox &sandbox_;
  std::vector<std::string> server_args_;
  unsigned warm_;
  std::mutex mu_;
  std::map<std::string, std::vector<SpawnedServer>> idle_;  // by API name
};

}  // namespace hira::router
