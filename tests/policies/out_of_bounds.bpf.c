/* A policy the verifier must refuse: it dereferences a map value without
 * checking the lookup found one (it could crash the kernel's caller). */
#include "hira_policy.bpf.h"

SEC("syscall")
int schedule(struct hira_cmd *ctx) {
  __u32 key = ctx->vm;
  const __u32 *w = bpf_map_lookup_elem(&hira_shares, &key);
  return *w > 1 ? HIRA_WAIT : HIRA_RUN;
}
