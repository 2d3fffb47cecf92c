/* WFQ with fixed-rate polling: a VM over its share asks again after a fixed
 * delay (AvA's p = 5 ms). With WFQ_FINISH_ORDER (wfq_ordered.bpf.c), a VM
 * within its share also gives the free device to a waiting VM whose next
 * turn would end first. */
#include "wfq.bpf.h"

#ifndef WFQ_FINISH_ORDER
#define WFQ_FINISH_ORDER 0
#endif
#define FIXED_DELAY_NS 5000000ull

SEC("syscall")
int schedule_device_work(struct hira_cmd *ctx) {
  struct wfq_vm *self;
  int turn = wfq_before_share(ctx, &self);
  if (turn >= 0) return turn;
  if (!wfq_over_share(ctx, self)) {
    return WFQ_FINISH_ORDER ? wfq_run_unless_behind(ctx, self, 0) : wfq_run_in_turn(ctx, self);
  }
  return wfq_hold(ctx, self, FIXED_DELAY_NS);
}
