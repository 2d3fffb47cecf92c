#include "resource_ids.h"

#include <algorithm>
#include <cstdio>

namespace hira::router {

ResourceIds::ResourceIds() {
  add("calls", false);
  add("bytes", false);
  add("device_time", false);
}

uint32_t ResourceIds::add(const std::string &name, bool continuous) {
  const auto it = std::find(names_.begin(), names_.end(), name);
  if (it != names_.end()) return static_cast<uint32_t>(it - names_.begin());
  if (names_.size() >= kMaxResources) return kNoResource;
  names_.push_back(name);
  continuous_.push_back(continuous);
  return static_cast<uint32_t>(names_.size() - 1);
}

void ResourceIds::add_api(const RouterModule &m) {
  auto &ids = by_module_[&m];
  for (uint32_t r = 0; r < m.resource_count; ++r) {
    const bool continuous = m.resource_continuous[r] != 0;
    const uint32_t id = add(m.resource_names[r], continuous);
    if (id == kNoResource) {
      std::fprintf(stderr,
                   "hira-router: API %s: resource %s is past the %u policies can see; "
                   "it is counted but no policy sees it\n",
                   m.name, m.resource_names[r], kMaxResources);
    } else if (continuous_[id] != continuous) {
      std::fprintf(stderr,
                   "hira-router: API %s: resource %s is %s here and %s in another API; "
                   "policies treat it as the first said\n",
                   m.name, m.resource_names[r], continuous ? "continuous" : "instantaneous",
                   continuous ? "instantaneous" : "continuous");
    }
    ids.push_back(id);
  }
}

uint32_t ResourceIds::id(const RouterModule &m, uint32_t r) const {
  const auto it = by_module_.find(&m);
  if (it == by_module_.end() || r >= it->second.size()) return kNoResource;
  return it->second[r];
}

std::optional<uint32_t> ResourceIds::find(std::string_view name) const {
  const auto it = std::find(names_.begin(), names_.end(), name);
  if (it == names_.end()) return std::nullopt;
  return static_cast<uint32_t>(it - names_.begin());
}

}  // namespace hira::router
