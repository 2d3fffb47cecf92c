#include "handle_table.h"

namespace hira::server {

bool HandleTable::lookup(uint64_t id, uint32_t type, void **out) const {
  if (id == 0) {
    *out = nullptr;
    return true;
  }
  std::lock_guard lock(mu_);
  const auto it = by_id_.find(id);
  if (it == by_id_.end() || it->second.type != type) return false;
  *out = it->second.obj;
  return true;
}

uint64_t HandleTable::export_handle(void *obj, uint32_t type) {
  if (obj == nullptr) return 0;
  std::lock_guard lock(mu_);
  return export_locked(obj, type);
}

uint64_t HandleTable::retain(void *obj, uint32_t type) {
  if (obj == nullptr) return 0;
  std::lock_guard lock(mu_);
  const uint64_t id = export_locked(obj, type);
  ++by_id_[id].refs;
  return id;
}

uint64_t HandleTable::export_locked(void *obj, uint32_t type) {
  const auto key = std::make_pair(obj, type);
  if (const auto it = by_obj_.find(key); it != by_obj_.end()) return it->second;
  // Ids are never reused, so a stale id cannot name a newer object.
  const uint64_t id = next_id_++;
  by_id_[id] = {obj, type};
  by_obj_[key] = id;
  return id;
}

void HandleTable::release(void *obj, uint32_t type) {
  std::lock_guard lock(mu_);
  const auto it = by_obj_.find({obj, type});
  if (it == by_obj_.end()) return;
  Entry &e = by_id_[it->second];
  if (e.refs == 0 || --e.refs != 0) return;
  by_id_.erase(it->second);
  by_obj_.erase(it);
}

size_t HandleTable::size() const {
  std::lock_guard lock(mu_);
  return by_id_.size();
}

}  // namespace hira::server
