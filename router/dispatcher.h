// The per-VM queues: a command that passed its shape check waits at the head
// of its VM's queue until the policies let it go to the device's API server
// (or refuse it). Commands of one VM pass in the order they arrived, whichever
// guest process of the VM sent them; other VMs' queues are not held up.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>

#include "admission.h"
#include "hira/wire.h"
#include "vm.h"

namespace hira::router {

class Dispatcher {
 public:
  explicit Dispatcher(const Admission &admission) : admission_(admission) {}
  // Blocks while the policies say wait; Ok when the command may go, or the
  // status the guest gets instead (OverQuota, Denied).
  // `before_waiting` runs once if the command is held (the session sends
  // what it has queued for its server).
  wire::ReplyStatus pass(Vm &vm, const RouterModule &m, uint32_t func, bool async,
                         const CallAccounting &a, uint64_t bytes,
                         const std::function<void()> &before_waiting);
  // The policies or what they decide on changed (swapped; a VM's wait for
  // the device ended): waiting commands ask again at once.
  void wake_all();

 private:
  const Admission &admission_;
  std::mutex wake_mu_;
  std::condition_variable wake_;
  uint64_t generation_ = 0;
};

}  // namespace hira::router
