// How hira's long-running processes (the router, hira-vsock) learn that they
// should stop: SIGTERM and SIGINT run `handler` (without SA_RESTART, so a
// blocking accept or poll returns), and SIGTERM is unblocked, since `hira
// run` and `hira vm` start them with it blocked until they can act on it.
#pragma once

namespace hira {

void on_stop_signals(void (*handler)(int));

}  // namespace hira
