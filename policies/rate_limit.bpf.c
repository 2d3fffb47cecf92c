/* Rate limits per VM on instantaneous resources (calls, bytes, device time,
 * the spec's own such as kernel launches): --quota VM:RESOURCE=N allows N a
 * second, with a burst of one second's worth. A command that would exceed
 * it waits (token bucket); it is never refused. */
#include "hira_policy.bpf.h"

#define NS_PER_S 1000000000ull
#define MAX_WAIT_NS (NS_PER_S / 4) /* ask again at least this often */

struct bucket {
  __s64 tokens;
  __u64 last_ns;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, HIRA_MAX_VMS * HIRA_MAX_RESOURCES);
  __type(key, __u32);
  __type(value, struct bucket);
} buckets SEC(".maps");

static __always_inline struct bucket *refilled(__u32 vm, __u32 rc, const struct hira_limit *l,
                                               __u64 now) {
  __u32 key = vm * HIRA_MAX_RESOURCES + rc;
  struct bucket *b = bpf_map_lookup_elem(&buckets, &key);
  if (!b) return 0;
  if (b->last_ns == 0) {
    b->tokens = (__s64)l->amount; /* a full second's worth to start */
  } else if (now > b->last_ns) {
    __u64 add = now - b->last_ns >= NS_PER_S ? l->amount
                                             : l->amount * (now - b->last_ns) / NS_PER_S;
    b->tokens += (__s64)add;
    if (b->tokens > (__s64)l->amount) b->tokens = (__s64)l->amount;
  }
  b->last_ns = now;
  return b;
}

SEC("syscall")
int schedule(struct hira_cmd *ctx) {
  __u64 wait = 0;
#pragma unroll
  for (__u32 rc = 0; rc < HIRA_MAX_RESOURCES; rc++) {
    if (ctx->amount[rc] <= 0) continue;
    const struct hira_limit *l = hira_limit_of(ctx->vm, rc);
    if (!l || !l->set || l->continuous || l->amount == 0) continue;
    struct bucket *b = refilled(ctx->vm, rc, l, ctx->now_ns);
    if (!b) continue;
    /* A command larger than a second's worth runs once the bucket is full. */
    __s64 need = ctx->amount[rc] < (__s64)l->amount ? ctx->amount[rc] : (__s64)l->amount;
    if (b->tokens >= need) continue;
    __u64 ns = (__u64)(need - b->tokens) * NS_PER_S / l->amount + 1;
    if (ns > wait) wait = ns;
    ctx->resource = rc;
  }
  if (wait == 0) return HIRA_RUN;
  ctx->delay_ns = wait < MAX_WAIT_NS ? wait : MAX_WAIT_NS;
  return HIRA_WAIT;
}

SEC("syscall")
int consume(struct hira_cmd *ctx) {
#pragma unroll
  for (__u32 rc = 0; rc < HIRA_MAX_RESOURCES; rc++) {
    if (ctx->amount[rc] <= 0) continue;
    const struct hira_limit *l = hira_limit_of(ctx->vm, rc);
    if (!l || !l->set || l->continuous || l->amount == 0) continue;
    struct bucket *b = refilled(ctx->vm, rc, l, ctx->now_ns);
    if (b) b->tokens -= ctx->amount[rc];
  }
  return 0;
}
