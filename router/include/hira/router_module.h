// What a generated router module (one per API) gives the API-agnostic router:
// the shape of every command, for validation, and the resource amounts each
// call consumes, computed from its arguments.
#pragma once

#include <cstdint>

#include "hira/codec.h"

namespace hira::router {

inline constexpr uint32_t kVariableSize = 0xffffffffu;

struct ResourceDelta {
  uint32_t resource;
  int64_t amount;       // > 0 consumes/allocates; < 0 releases
  uint64_t handle = 0;  // Deallocate-by-handle: the handle to release
  bool by_handle = false;
  // The API server measures what the call's object holds (server_allocates_rc):
  // `amount` (1) only asks the policies whether the VM has room at all, so a
  // VM at its quota cannot go on creating such objects; never booked.
  bool probe = false;
};

// Filled by account_call(); at most kMaxDeltas entries.
inline constexpr uint32_t kMaxDeltas = 8;
struct CallAccounting {
  uint32_t count = 0;
  ResourceDelta deltas[kMaxDeltas];
};

struct RouterModule {
  uint32_t abi;  // kRouterModuleAbi
  const char *name;
  const char *version;
  uint64_t signature;
  uint32_t function_count;
  const char *const *function_names;
  const uint8_t *function_async;  // 0 sync, 1 async, 2 the guest decides per call
  // Per function: index of its first argument in arg_sizes, and arg count.
  const uint32_t *arg_offset;
  const uint32_t *arg_count;
  const uint32_t *arg_sizes;  // exact blob size, or kVariableSize
  uint32_t resource_count;
  const char *const *resource_names;
  const uint8_t *resource_continuous;
  // Computes the resources a call uses from its (shape-checked) arguments.
  void (*account_call)(uint32_t func, const Reader *arg_blobs, CallAccounting *out);
  // After a successful reply: the handle the call allocated (0 if none).
  uint64_t (*allocated_handle)(uint32_t func, Reader reply_after_prefix);
  // Did the real function succeed (per the spec's success value)?
  bool (*reply_succeeded)(uint32_t func, Reader reply_after_prefix);
  // Per function: the handle argument a call adds a reference to (a retain:
  // `allocate` on a handle argument), or -1. Resources a handle holds are
  // released when its last reference goes, not at the first release call.
  const int32_t *retained_arg;
  // Per function (rc_until_destroyed): what the handle it allocates holds is
  // released when its API server reports the object destroyed (an Account
  // frame), not by release calls.
  const uint8_t *held_until_destroyed;
  // Per function: the API server measures its device time (consumes_rc
  // with lapis_call_ns()): it submits work to the device or waits for it.
  const uint8_t *device_work;
};

inline constexpr uint32_t kRouterModuleAbi = 4;

}  // namespace hira::router

extern "C" const hira::router::RouterModule hira_router_module;
