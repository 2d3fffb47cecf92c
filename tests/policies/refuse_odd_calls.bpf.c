/* A test policy: refuses every command of a VM whose function id is odd
 * and counts what it saw in `seen` (for swapping under load). */
#include "hira_policy.bpf.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} seen SEC(".maps");

SEC("syscall")
int schedule(struct hira_cmd *ctx) {
  __u32 zero = 0;
  __u64 *n = bpf_map_lookup_elem(&seen, &zero);
  if (n) __sync_fetch_and_add(n, 1);
  return (ctx->func & 1) ? HIRA_REFUSE : HIRA_RUN;
}
