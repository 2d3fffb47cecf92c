#include "handle_table.h"

#include <vector>

#include "hira/wire.h"

namespace hira::server {

bool HandleTable::lookup(uint64_t id, uint32_t type, void **out) const {
  if (id == 0) {
    *out = nullptr;
    return true;
  }
  std::lock_guard lock(mu_);
  const auto it = by_id_.find(id);
  if (it == by_id_.end() || it->second.type != type || it->second.dead) return false;
  *out = it->second.obj;
  return true;
}

uint64_t HandleTable::export_handle(void *obj, uint32_t type) {
  if (obj == nullptr) return 0;
  std::lock_guard lock(mu_);
  return export_locked(obj, type, false);
}

uint64_t HandleTable::export_live(void *obj, uint32_t type) {
  if (obj == nullptr) return 0;
  std::lock_guard lock(mu_);
  return export_locked(obj, type, true);
}

uint64_t HandleTable::retain(void *obj, uint32_t type, uint64_t guest_id) {
  if (obj == nullptr) return 0;
  std::lock_guard lock(mu_);
  const uint64_t id = export_locked(obj, type, true, guest_id);
  ++by_id_[id].refs;
  return id;
}

uint64_t HandleTable::export_locked(void *obj, uint32_t type, bool creating, uint64_t guest_id) {
  const auto key = std::make_pair(obj, type);
  if (const auto it = by_obj_.find(key); it != by_obj_.end()) {
    // A dead entry still names its object for callbacks about its end
    // (destructor callbacks); a new object at the same address gets a new id.
    if (!(creating && by_id_[it->second].dead)) return it->second;
  }
  // Ids are never reused, so a stale id cannot name a newer object.
  const bool guest_chose = (guest_id & wire::kGuestIdBit) != 0 && guest_id != wire::kGuestIdBit &&
                           guest_id != ~0ull && by_id_.count(guest_id) == 0;
  const uint64_t id = guest_chose ? guest_id : next_id_++;
  by_id_[id] = Entry{obj, type, 0, false, {}};
  by_obj_[key] = id;
  return id;
}

void HandleTable::add_reference(void *obj, uint32_t type) {
  std::lock_guard lock(mu_);
  const auto it = by_obj_.find({obj, type});
  if (it == by_obj_.end()) return;
  Entry &e = by_id_[it->second];
  if (e.refs != 0) ++e.refs;
}

void HandleTable::release(void *obj, uint32_t type) {
  std::lock_guard lock(mu_);
  const auto it = by_obj_.find({obj, type});
  if (it == by_obj_.end()) return;
  Entry &e = by_id_[it->second];
  if (e.refs == 0 || --e.refs != 0) return;
  kill_locked(it->second);  // the app holds no reference: using the id is an error now
}

void HandleTable::kill_locked(uint64_t id) {
  const auto it = by_id_.find(id);
  if (it == by_id_.end() || it->second.dead) return;
  it->second.dead = true;
  // What lived inside it is gone with it (the real library freed it).
  const std::vector<uint64_t> children(it->second.children.begin(), it->second.children.end());
  for (const uint64_t child : children) kill_locked(child);
}

void HandleTable::depends_on(void *obj, uint32_t type, const void *parent) {
  std::lock_guard lock(mu_);
  const auto child = by_obj_.find({obj, type});
  if (child == by_obj_.end()) return;
  for (auto it = by_obj_.lower_bound({const_cast<void *>(parent), 0});
       it != by_obj_.end() && it->first.first == parent; ++it) {
    Entry &p = by_id_[it->second];
    if (!p.dead) p.children.insert(child->second);
  }
}

}  // namespace hira::server
