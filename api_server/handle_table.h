// Maps the opaque ids a guest sees to the real objects of the API, per guest
// process. Ids are typed: an id is only valid where its type is expected, so
// a guest cannot pass a buffer where a context belongs, nor guess another
// guest's objects (each guest process has its own table in its own server).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace hira::server {

class HandleTable {
 public:
  // 0 <-> NULL. Returns false for unknown ids and ids of another type.
  bool lookup(uint64_t id, uint32_t type, void **out) const;
  // The id of obj, creating one if needed; the app holds no counted reference.
  // A dead entry keeps its id here (callbacks about an object's end name it).
  uint64_t export_handle(void *obj, uint32_t type);
  // The same for an object the real library returned just now (a call's out
  // value): it exists, so a dead entry at its address was an earlier object's
  // (libraries reuse addresses) and obj gets a new id.
  uint64_t export_live(void *obj, uint32_t type);
  // The app gained a reference (a create or retain call): +1. A new object
  // gets `guest_id` when that is an unused id of the guest's half
  // (wire::kGuestIdBit), else one of the server's.
  uint64_t retain(void *obj, uint32_t type, uint64_t guest_id = 0);
  // The app retained a handle it already holds (a retain call): +1 on a
  // counted handle. One the app never created (a root device from a query)
  // stays uncounted, as the implementation's retain and release leave it.
  void add_reference(void *obj, uint32_t type);
  // The app dropped a reference (a release or destroy call). A handle the app
  // created dies when its count reaches zero: using it afterwards is an
  // invalid handle, not a use-after-free in the real library.
  void release(void *obj, uint32_t type);
  // obj (of type) lives inside parent (any live handle of that object).
  void depends_on(void *obj, uint32_t type, const void *parent);

 private:
  struct Entry {
    void *obj;
    uint32_t type;
    uint64_t refs = 0;               // 0: not counted (e.g. a device returned by a query)
    bool dead = false;               // counted, and the app released its last reference
    // Objects that live inside this one (a set: queries that return the
    // same node again must not grow it).
    std::unordered_set<uint64_t> children;
  };
  void kill_locked(uint64_t id);
  uint64_t export_locked(void *obj, uint32_t type, bool creating, uint64_t guest_id = 0);
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Entry> by_id_;
  std::map<std::pair<void *, uint32_t>, uint64_t> by_obj_;
  uint64_t next_id_ = 1;
};

}  // namespace hira::server
