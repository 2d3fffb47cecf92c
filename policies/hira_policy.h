/* The contract between hira's router and its eBPF policies: the context a
 * hook runs on, its verdicts, and the configuration maps the router fills.
 * Shared by the policies (C, clang -target bpf) and the router (C++).
 *
 * A policy is an object file with up to two programs, both SEC("syscall"),
 * run by the router with BPF_PROG_TEST_RUN on a struct hira_cmd:
 *   schedule  a command of a VM is at the head of its VM's queue: return
 *             HIRA_RUN, HIRA_WAIT (ask again after delay_ns), HIRA_REFUSE or
 *             HIRA_OVER_QUOTA (naming the resource); every loaded policy
 *             must say HIRA_RUN for the command to go to its API server.
 *   consume   a VM consumed resources: a command it admitted (calls, bytes,
 *             the spec's instantaneous resources) or device time its API
 *             server measured. The return value is ignored.
 * A hook named schedule_device_work / consume_device_work instead runs only
 * for device work (device_work set: the calls whose device time the spec
 * has measured), and costs nothing on every other command.
 * State lives in the policy's own maps. The router fills, where the policy
 * defines them, `hira_shares` (array: VM index -> weight, 1 unless --share
 * says otherwise) and `hira_limits` (array: VM index * HIRA_MAX_RESOURCES +
 * resource -> struct hira_limit, from --quota). */
#ifndef HIRA_POLICY_H
#define HIRA_POLICY_H

#include <linux/types.h>

#define HIRA_MAX_VMS 64
#define HIRA_MAX_RESOURCES 16

/* Resource ids every router has; the specs' resources follow, by name
 * (hira-router --help-resources lists them). */
#define HIRA_RC_CALLS 0       /* one per command */
#define HIRA_RC_BYTES 1       /* the command's payload, guest to server */
#define HIRA_RC_DEVICE_TIME 2 /* nanoseconds, measured by the API server */

enum hira_hook { HIRA_HOOK_SCHEDULE = 1, HIRA_HOOK_CONSUME = 2 };

enum hira_verdict {
  HIRA_RUN = 0,
  HIRA_WAIT = 1,       /* delay_ns: when to ask again */
  HIRA_REFUSE = 2,     /* the guest gets the call's error value */
  HIRA_OVER_QUOTA = 3, /* the guest gets the API's out-of-memory error */
};

struct hira_cmd {
  __u32 hook;     /* enum hira_hook */
  __u32 vm;       /* the VM's index, < vm_count */
  __u32 vm_count; /* VMs the router knows (indices 0 .. vm_count-1) */
  __u32 func;     /* the API's function id */
  /* The function submits work to the device or waits for it (the spec has
   * its API server measure device time); consume: the measured call. */
  __u32 device_work;
  __u32 async;    /* the guest did not wait for this command */
  __u64 now_ns;   /* CLOCK_MONOTONIC */
  /* schedule: what the command asks for; consume: what was consumed. */
  __s64 amount[HIRA_MAX_RESOURCES];
  /* What the VM holds now of each continuous resource. */
  __s64 held[HIRA_MAX_RESOURCES];
  __u64 delay_ns; /* out, HIRA_WAIT */
  __u32 resource; /* out, HIRA_OVER_QUOTA / HIRA_REFUSE: which resource */
  __u32 reserved;
};

struct hira_limit {
  __u64 amount;     /* continuous: most held at once; instantaneous: per second */
  __u32 set;        /* 0: no limit */
  __u32 continuous; /* the resource is held (memory), not consumed (time) */
};

#endif
