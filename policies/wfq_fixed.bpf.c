/* WFQ with fixed-rate polling: a VM over its share asks again after a fixed
 * delay (AvA's p = 5 ms). */
#include "wfq.bpf.h"

#define FIXED_DELAY_NS 5000000ull

SEC("syscall")
int schedule(struct hira_cmd *ctx) {
  __u32 vm = ctx->vm;
  struct wfq_vm *self = bpf_map_lookup_elem(&wfq_vms, &vm);
  if (!self) return HIRA_RUN;
  self->last_ns = ctx->now_ns;
  if (!wfq_over_share(ctx, self)) return HIRA_RUN;
  ctx->delay_ns = FIXED_DELAY_NS;
  return HIRA_WAIT;
}
