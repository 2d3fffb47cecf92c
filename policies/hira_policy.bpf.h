/* What every hira policy program includes: the contract, libbpf's helpers
 * and the configuration maps the router fills. */
#ifndef HIRA_POLICY_BPF_H
#define HIRA_POLICY_BPF_H

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#include "hira_policy.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, HIRA_MAX_VMS);
  __type(key, __u32);
  __type(value, __u32);
} hira_shares SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, HIRA_MAX_VMS * HIRA_MAX_RESOURCES);
  __type(key, __u32);
  __type(value, struct hira_limit);
} hira_limits SEC(".maps");

static __always_inline const struct hira_limit *hira_limit_of(__u32 vm, __u32 rc) {
  __u32 key = vm * HIRA_MAX_RESOURCES + rc;
  return bpf_map_lookup_elem(&hira_limits, &key);
}

static __always_inline __u32 hira_share_of(__u32 vm) {
  const __u32 *w = bpf_map_lookup_elem(&hira_shares, &vm);
  return w && *w ? *w : 1;
}

char LICENSE[] SEC("license") = "GPL";

#endif
