/* WFQ in finish-time order: as wfq_fixed, and a VM within its share gives
 * the free device to a waiting VM whose next turn would end before its own
 * (its device time per unit of weight after a turn as long as its last).
 * Fairer with three or more VMs, or kernels of very different lengths, at
 * the cost of more handoffs between VMs: H200, three VMs of 7.8 / 0.8 / 2.0
 * ms kernels, 1.1% median unfairness at 0.92 of the unscheduled throughput
 * (wfq_fixed: 1.8% at 0.98); two VMs 1.1% at 1.02 (wfq_fixed 1.0% at 1.05). */
#include "wfq.bpf.h"

#define FIXED_DELAY_NS 5000000ull

SEC("syscall")
int schedule_device_work(struct hira_cmd *ctx) {
  struct wfq_vm *self;
  int turn = wfq_before_share(ctx, &self);
  if (turn >= 0) return turn;
  if (!wfq_over_share(ctx, self)) return wfq_run_unless_behind(ctx, self, 0);
  return wfq_hold(ctx, self, FIXED_DELAY_NS);
}
