/* A policy the verifier must refuse: a loop whose bound comes from the
 * command, which it cannot prove ends in time (it could hang the router). */
#include "hira_policy.bpf.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, __u64);
} spins SEC(".maps");

SEC("syscall")
int schedule(struct hira_cmd *ctx) {
  __u32 zero = 0;
  __u64 *n = bpf_map_lookup_elem(&spins, &zero);
  if (!n) return HIRA_RUN;
  for (__u64 i = 0; i < ctx->now_ns; i++) __sync_fetch_and_add(n, i);
  return HIRA_RUN;
}
