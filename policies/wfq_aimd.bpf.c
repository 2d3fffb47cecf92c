/* WFQ with feedback control: each VM's delay grows by a = 1 ms each time it
 * is found over its share and halves (b = 1/2) each time it is not
 * (additive increase, multiplicative decrease; AvA's a and b). */
#include "wfq.bpf.h"

#define AIMD_A_NS 1000000ull
#define AIMD_MAX_NS 100000000ull

SEC("syscall")
int schedule_device_work(struct hira_cmd *ctx) {
  struct wfq_vm *self;
  int turn = wfq_before_share(ctx, &self);
  if (turn >= 0) return turn;
  if (!wfq_over_share(ctx, self)) {
    self->delay_ns /= 2;
    return wfq_run_in_turn(ctx, self);
  }
  self->delay_ns += AIMD_A_NS;
  if (self->delay_ns > AIMD_MAX_NS) self->delay_ns = AIMD_MAX_NS;
  return wfq_hold(ctx, self, self->delay_ns);
}
