/* WFQ in finish-time order: as wfq_fixed, and a VM within its share gives
 * the free device to a waiting VM whose next turn would end before its own
 * (its device time per unit of weight after a turn as long as its last).
 * Fairer with three or more VMs, or kernels of very different lengths, at
 * the cost of more handoffs between VMs: H200, three VMs of 7.8 / 0.8 / 2.0
 * ms kernels, 1.1-1.3% median unfairness at 0.89-0.92 of the unscheduled
 * throughput (wfq_fixed: 1.8-2.4%); two VMs 1.1% at 1.02 (wfq_fixed 1.0% at
 * 1.05). */
#define WFQ_FINISH_ORDER 1
#include "wfq_fixed.bpf.c"
