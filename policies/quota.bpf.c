/* Device-memory (and any continuous resource) quota per VM: a command that
 * would take a VM's holdings past its --quota is refused, and the guest gets
 * the API's own out-of-memory error (the spec's quota_error). */
#include "hira_policy.bpf.h"

SEC("syscall")
int schedule(struct hira_cmd *ctx) {
#pragma unroll
  for (__u32 rc = 0; rc < HIRA_MAX_RESOURCES; rc++) {
    if (ctx->amount[rc] <= 0) continue;
    const struct hira_limit *l = hira_limit_of(ctx->vm, rc);
    if (!l || !l->set || !l->continuous) continue;
    if (ctx->held[rc] + ctx->amount[rc] > (__s64)l->amount) {
      ctx->resource = rc;
      return HIRA_OVER_QUOTA;
    }
  }
  return HIRA_RUN;
}
