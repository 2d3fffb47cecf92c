// The APIs a router serves: one directory per API under the apis dir, each
// holding router_module.so (generated), hira-server-NAME and server.env.
#pragma once

#include <map>
#include <string>

#include "hira/router_module.h"

namespace hira::router {

struct ApiEntry {
  const RouterModule *module = nullptr;
  std::string server_path;      // executable to spawn
  std::string library_dir;      // where the server finds the real library
  std::string remote_endpoint;  // set: connect here instead of spawning
  std::string remote_key;       // set: prove it to the remote server (remote_auth.h)
};

class ApiRegistry {
 public:
  // Loads every API under dir; returns how many, and reports problems to stderr.
  size_t load(const std::string &dir);
  const ApiEntry *find(const std::string &name) const;
  bool set_remote(const std::string &name, const std::string &endpoint);
  // The key every remote server of this router is reached with.
  void set_remote_key(const std::string &key);
  const std::map<std::string, ApiEntry> &all() const { return apis_; }

 private:
  std::map<std::string, ApiEntry> apis_;
};

}  // namespace hira::router
