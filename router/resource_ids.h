// One namespace of resources for the whole router, as policies see them:
// calls, bytes and device_time first (every router has them), then each
// spec's resources by name (two APIs' device_memory are one resource).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "hira/router_module.h"
#include "hira_policy.h"

namespace hira::router {

inline constexpr uint32_t kMaxResources = HIRA_MAX_RESOURCES;
inline constexpr uint32_t kNoResource = ~0u;

class ResourceIds {
 public:
  ResourceIds();
  // Gives the module's resources ids (reports on stderr those past kMaxResources).
  void add_api(const RouterModule &m);
  // The router-wide id of the module's resource r, or kNoResource.
  uint32_t id(const RouterModule &m, uint32_t r) const;
  std::optional<uint32_t> find(std::string_view name) const;
  const std::string &name(uint32_t id) const { return names_[id]; }
  bool continuous(uint32_t id) const { return continuous_[id]; }
  uint32_t count() const { return static_cast<uint32_t>(names_.size()); }

 private:
  uint32_t add(const std::string &name, bool continuous);
  std::vector<std::string> names_;
  std::vector<bool> continuous_;
  std::map<const RouterModule *, std::vector<uint32_t>> by_module_;
};

}  // namespace hira::router
