/* Weighted fair sharing of device time between VMs (dissertation 4.5.2.2):
 * each VM's device time over a sliding window is compared with its share
 * of what the active VMs used; a VM over its share has its device work
 * postponed, by a fixed delay (wfq_fixed) or by an AIMD-adapted one
 * (wfq_aimd); wfq_ordered also orders the VMs waiting for a free device
 * by finish time. Device time is what the API servers measure and report: the
 * wall time of the calls that wait for the device.
 *
 * That measure is only true while one VM's work is on the device: two VMs
 * waiting at once would both be charged for the time. So the device goes to
 * one VM at a time, in turns: a VM's first device work takes the device,
 * and its turn ends when its wait for the device returns (clFinish, a
 * blocking read), or after QUANTUM_NS if it never waits; other VMs' device
 * work waits for the turn (and is woken when it ends). Commands that are
 * not device work always run. A GPU time-slices between processes anyway,
 * so turns cost little; the share check runs when a VM takes a turn, and
 * holds a VM over its share only while another VM waits for the device:
 * otherwise the device would idle (work-conserving; with three VMs on the
 * H200 the policies cost 15% of throughput before). */
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
  __u64 waiting_ns; /* when its device work was last told to wait; 0: it runs */
  __u64 turn_end_ns; /* when its last turn ended (its wait returned) */
  __u64 turn_used;   /* device time reported in its current turn */
  __u64 last_turn;   /* ... and in its last whole turn: what its next will likely take */
  __u64 held;        /* it waits because it is over its share (not for a turn) */
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, HIRA_MAX_VMS);
  __type(key, __u32);
  __type(value, struct wfq_vm);
} wfq_vms SEC(".maps");

#define QUANTUM_NS 20000000ull /* a turn that never waits ends after this */
#define TURN_WAIT_NS 2000000ull /* ask again (woken sooner when the turn ends) */
/* A VM told to wait asks again within its delay (AIMD: up to 100 ms). */
#define WAITING_NS 110000000ull
/* A VM whose turn just ended sends its next device work at once (the guest
 * only has to hear that its wait returned): it still competes. (2 ms let a
 * VM over its share in too often: two VMs on the H200 split 1.2-1.7% apart
 * per window instead of 0.6-1.0%.) */
#define NEXT_WORK_NS 10000000ull

struct wfq_turn {
  __u32 holder; /* VM index + 1; 0: the device is free */
  __u32 pad;
  __u64 since_ns;
};

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct wfq_turn);
} wfq_turn SEC(".maps");

static __always_inline struct wfq_turn *wfq_the_turn(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&wfq_turn, &zero);
}

/* Another VM has the device now. */
static __always_inline int wfq_turn_of_other(struct hira_cmd *ctx, struct wfq_turn *t) {
  return t && t->holder != 0 && t->holder != ctx->vm + 1 &&
         ctx->now_ns - t->since_ns < QUANTUM_NS;
}

static __always_inline void wfq_take_turn(struct hira_cmd *ctx, struct wfq_turn *t) {
  if (!t) return;
  t->holder = ctx->vm + 1;
  t->since_ns = ctx->now_ns;
}

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
int consume_device_work(struct hira_cmd *ctx) {
  __u32 vm = ctx->vm;
  struct wfq_vm *s = bpf_map_lookup_elem(&wfq_vms, &vm);
  if (!s || ctx->amount[HIRA_RC_DEVICE_TIME] <= 0) return 0;
  wfq_roll(s, ctx->now_ns);
  s->used += (__u64)ctx->amount[HIRA_RC_DEVICE_TIME];
  s->turn_used += (__u64)ctx->amount[HIRA_RC_DEVICE_TIME];
  s->last_ns = ctx->now_ns;
  /* Its wait for the device returned: its turn is over. */
  struct wfq_turn *t = wfq_the_turn();
  if (t && ctx->device_work && !ctx->async && t->holder == vm + 1) {
    t->holder = 0;
    s->turn_end_ns = ctx->now_ns;
    s->last_turn = s->turn_used;
  }
  return 0;
}

/* What a schedule hook decides before the share: HIRA_RUN for what is not
 * device work or is the turn holder's, HIRA_WAIT while another VM has the
 * turn, -1 when the VM may take the turn if it is within its share. */
static __always_inline int wfq_turn_verdict(struct hira_cmd *ctx) {
  if (!ctx->device_work) return HIRA_RUN;
  struct wfq_turn *t = wfq_the_turn();
  if (!t) return HIRA_RUN;
  if (wfq_turn_of_other(ctx, t)) {
    ctx->delay_ns = TURN_WAIT_NS;
    return HIRA_WAIT;
  }
  if (t->holder == ctx->vm + 1 && ctx->now_ns - t->since_ns < QUANTUM_NS) return HIRA_RUN;
  return -1;
}

/* The asking VM's state, marked active now (null if out of range). */
static __always_inline struct wfq_vm *wfq_asking(struct hira_cmd *ctx) {
  __u32 vm = ctx->vm;
  struct wfq_vm *self = bpf_map_lookup_elem(&wfq_vms, &vm);
  if (self) self->last_ns = ctx->now_ns;
  return self;
}

/* The VM's device work waits: for a turn (held 0: it may be the next one
 * the shares owe) or because it is over its share (held 1). */
static __always_inline void wfq_mark_waiting(struct hira_cmd *ctx, struct wfq_vm *self,
                                             __u64 held) {
  self->waiting_ns = ctx->now_ns;
  self->held = held;
}

/* What both schedule hooks do before the share check: the asking VM's state
 * in *self, and the verdict where the turn decides (-1: the share does). */
static __always_inline int wfq_before_share(struct hira_cmd *ctx, struct wfq_vm **self) {
  *self = wfq_asking(ctx);
  if (!*self) return HIRA_RUN;
  const int verdict = wfq_turn_verdict(ctx);
  if (verdict == HIRA_WAIT) wfq_mark_waiting(ctx, *self, 0);
  if (verdict == HIRA_RUN && ctx->device_work) (*self)->waiting_ns = 0;
  return verdict;
}

/* Within its share (or nobody else waits): the VM's command runs, and the
 * device is its turn. */
static __always_inline int wfq_run_in_turn(struct hira_cmd *ctx, struct wfq_vm *self) {
  self->waiting_ns = 0;
  self->turn_used = 0;
  wfq_take_turn(ctx, wfq_the_turn());
  return HIRA_RUN;
}

/* Held for its share: it waits `delay` (and counts as waiting). */
static __always_inline int wfq_hold(struct hira_cmd *ctx, struct wfq_vm *self, __u64 delay) {
  wfq_mark_waiting(ctx, self, 1);
  ctx->delay_ns = delay;
  return HIRA_WAIT;
}

/* Does another VM wait for the device now, or is about to ask again? */
static __always_inline int wfq_other_waiting(struct hira_cmd *ctx) {
  for (__u32 i = 0; i < HIRA_MAX_VMS; i++) {
    if (i >= ctx->vm_count) break;
    if (i == ctx->vm) continue;
    __u32 key = i;
    struct wfq_vm *s = bpf_map_lookup_elem(&wfq_vms, &key);
    if (!s) continue;
    if (s->waiting_ns != 0 && ctx->now_ns - s->waiting_ns < WAITING_NS) return 1;
    if (s->turn_end_ns != 0 && ctx->now_ns - s->turn_end_ns < NEXT_WORK_NS) return 1;
  }
  return 0;
}

/* Is this VM over its share of what the active VMs used, while another
 * waits for the device? */
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
  return mine * weights * 100 > my_weight * total * (100 + SLACK_PERCENT) &&
         wfq_other_waiting(ctx);
}

/* Does another VM wait for a turn that would end before this one's, by
 * device time per unit of weight after its next turn (as long as its last)?
 * Then the free device should be its, as weighted fair queuing orders by
 * finish time: with three or more VMs the waiting ones are woken together
 * when a turn ends, and the quickest to ask would take it, not the one the
 * shares owe; and a VM of long kernels would overshoot by one each time.
 * VMs held for their share do not count (they would not take it). Only a
 * VM more than margin_ns behind counts: each handoff leaves the device a
 * gap (the other VM's router thread wakes, its server launches) that the
 * VM whose turn just ended does not. */
static __always_inline int wfq_other_behind(struct hira_cmd *ctx, struct wfq_vm *self,
                                            __u64 margin_ns) {
  __u64 now = ctx->now_ns;
  __u64 mine = wfq_usage(self, now) + self->last_turn;
  __u64 my_weight = hira_share_of(ctx->vm);
  for (__u32 i = 0; i < HIRA_MAX_VMS; i++) {
    if (i >= ctx->vm_count) break;
    if (i == ctx->vm) continue;
    __u32 key = i;
    struct wfq_vm *s = bpf_map_lookup_elem(&wfq_vms, &key);
    if (!s || s->held || s->waiting_ns == 0 || now - s->waiting_ns >= WAITING_NS) continue;
    if ((wfq_usage(s, now) + s->last_turn + margin_ns) * my_weight < mine * hira_share_of(i)) {
      return 1;
    }
  }
  return 0;
}

/* Within its share: the VM takes the device, unless a VM further behind
 * waits for it; then it asks again shortly (or when that turn ends). */
static __always_inline int wfq_run_unless_behind(struct hira_cmd *ctx, struct wfq_vm *self,
                                                 __u64 margin_ns) {
  if (wfq_other_behind(ctx, self, margin_ns)) {
    wfq_mark_waiting(ctx, self, 0);
    ctx->delay_ns = TURN_WAIT_NS;
    return HIRA_WAIT;
  }
  return wfq_run_in_turn(ctx, self);
}

#endif
