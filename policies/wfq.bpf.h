/* Weighted fair sharing of device time between VMs (dissertation 4.5.2.2):
 * each VM's device time over a sliding window is compared with its share
 * of what the active VMs used; a VM over its share has its commands
 * postponed, by a fixed delay (wfq_fixed) or by an AIMD-adapted one
 * (wfq_aimd). Device time is what the API servers measure and report. */
#ifndef HIRA_WFQ_BPF_H
#define HIRA_WFQ_BPF_H

#include "hira_policy.bpf.h"

#define WINDOW_NS 500000000ull  /* AvA's scheduling window */
#define ACTIVE_NS (2 * WINDOW_NS) /* a VM that asked this recently competes */
#define IDLE_NS (WINDOW_NS / 50) /* below this much device time, nobody waits */
#define SLACK_PERCENT 1

struct wfq_vm {
  __u64 window_start;
  __u64 used;      /* device time in the current window */
  __u64 prev_used; /* ... and in the one before */
  __u64 last_ns;   /* when it last asked to run or consumed */
  __u64 delay_ns;  /* AIMD: its current delay */
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, HIRA_MAX_VMS);
  __type(key, __u32);
  __type(value, struct wfq_vm);
} wfq_vms SEC(".maps");

static __always_inline void wfq_roll(struct wfq_vm *s, __u64 now) {
  if (now < s->window_start) return;
  __u64 age = now - s->window_start;
  if (age < WINDOW_NS) return;
  s->prev_used = age >= 2 * WINDOW_NS ? 0 : s->used;
  s->used = 0;
  s->window_start = now;
}

/* Device time over the last window: the current one plus the unexpired
 * part of the previous one. */
static __always_inline __u64 wfq_usage(struct wfq_vm *s, __u64 now) {
  wfq_roll(s, now);
  __u64 age = now > s->window_start ? now - s->window_start : 0;
  if (age > WINDOW_NS) age = WINDOW_NS;
  return s->prev_used * (WINDOW_NS - age) / WINDOW_NS + s->used;
}

SEC("syscall")
int consume(struct hira_cmd *ctx) {
  __u32 vm = ctx->vm;
  struct wfq_vm *s = bpf_map_lookup_elem(&wfq_vms, &vm);
  if (!s || ctx->amount[HIRA_RC_DEVICE_TIME] <= 0) return 0;
  wfq_roll(s, ctx->now_ns);
  s->used += (__u64)ctx->amount[HIRA_RC_DEVICE_TIME];
  s->last_ns = ctx->now_ns;
  return 0;
}

/* The asking VM's state, marked active now (null if out of range). */
static __always_inline struct wfq_vm *wfq_asking(struct hira_cmd *ctx) {
  __u32 vm = ctx->vm;
  struct wfq_vm *self = bpf_map_lookup_elem(&wfq_vms, &vm);
  if (self) self->last_ns = ctx->now_ns;
  return self;
}

/* Is this VM over its share of what the active VMs used? */
static __always_inline int wfq_over_share(struct hira_cmd *ctx, struct wfq_vm *self) {
  __u64 now = ctx->now_ns;
  __u64 mine = wfq_usage(self, now);
  __u64 my_weight = hira_share_of(ctx->vm);
  __u64 total = 0, weights = 0;
  for (__u32 i = 0; i < HIRA_MAX_VMS; i++) {
    if (i >= ctx->vm_count) break;
    __u32 key = i;
    struct wfq_vm *s = bpf_map_lookup_elem(&wfq_vms, &key);
    if (!s || s->last_ns == 0 || now - s->last_ns > ACTIVE_NS) continue;
    total += wfq_usage(s, now);
    weights += hira_share_of(i);
  }
  if (total < IDLE_NS || weights <= my_weight) return 0;
  return mine * weights * 100 > my_weight * total * (100 + SLACK_PERCENT);
}

#endif
