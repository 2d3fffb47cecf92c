#include "api_registry.h"

#include <dlfcn.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace hira::router {

size_t ApiRegistry::load(const std::string &dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const auto &entry : fs::directory_iterator(dir, ec)) {
    const fs::path module = entry.path() / "router_module.so";
    if (!fs::exists(module)) continue;
    void *h = ::dlopen(module.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (h == nullptr) {
      std::fprintf(stderr, "hira-router: skipping %s: %s\n", module.c_str(), ::dlerror());
      continue;
    }
    const auto *m = static_cast<const RouterModule *>(::dlsym(h, "hira_router_module"));
    if (m == nullptr || m->abi != kRouterModuleAbi) {
      std::fprintf(stderr, "hira-router: skipping %s: not a router module of this version\n",
                   module.c_str());
      continue;
    }
    ApiEntry e;
    e.module = m;
    // Absolute: a server starts in its own (sandbox) folder.
    e.server_path = fs::absolute(entry.path() / (std::string("hira-server-") + m->name)).string();
    std::ifstream env(entry.path() / "server.env");
    for (std::string line; std::getline(env, line);) {
      if (line.rfind("LIBRARY_DIR=", 0) == 0) e.library_dir = line.substr(12);
    }
    apis_[m->name] = e;
  }
  if (ec)
    std::fprintf(stderr, "hira-router: cannot read %s: %s\n", dir.c_str(), ec.message().c_str());
  return apis_.size();
}

const ApiEntry *ApiRegistry::find(const std::string &name) const {
  const auto it = apis_.find(name);
  return it == apis_.end() ? nullptr : &it->second;
}

bool ApiRegistry::set_remote(const std::string &name, const std::string &endpoint) {
  const auto it = apis_.find(name);
  if (it == apis_.end()) return false;
  it->second.remote_endpoint = endpoint;
  return true;
}

void ApiRegistry::set_remote_key(const std::string &key) {
  for (auto &[name, e] : apis_) {
    if (!e.remote_endpoint.empty()) e.remote_key = key;
  }
}

}  // namespace hira::router
