#!/usr/bin/env python3
"""Counts the system calls each thread makes per remoted OpenCL call: runs
`ocl_bench latency N WHICH` through `hira run` under `perf trace -s`
(per-thread syscall summary), divides by the number of calls the router
forwarded, and prints one row per busy thread (guest, router, API server).
WHICH=info is a synchronous call (clGetPlatformInfo); WHICH=retain is
clRetainEvent/clReleaseEvent, which hira sends asynchronously. Needs perf
(Debian: linux-perf) and the permission to trace (root, or a low
kernel.perf_event_paranoid)."""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HEADER = re.compile(r"^ (\S.*?) \((\d+)\), (\d+) events")
ROW = re.compile(r"^\s+([a-z_0-9]+)\s+(\d+)\s+(\d+)\s+([\d.]+)")


def parse(path):
    threads, cur = [], None
    with open(path) as f:
        for line in f:
            m = HEADER.match(line)
            if m:
                cur = {"comm": m.group(1).strip(), "tid": int(m.group(2)), "syscalls": {}}
                threads.append(cur)
                continue
            m = ROW.match(line)
            if m and cur is not None:
                cur["syscalls"][m.group(1)] = {"calls": int(m.group(2)),
                                               "msec": float(m.group(4))}
    return threads


def label(busy, calls):
    """Names the busy threads by what they do. perf trace's thread names are
    unreliable for threads of exec'd processes, so the roles come from the
    syscall mix and the creation order (thread ids grow): the guest's calling
    thread exists before the router forks the server at Hello, the server's
    main thread before the guest's receiver thread (started after HelloAck),
    and that before the server's shadow thread (started at the first call)."""
    def count(t, k):  # true when the thread makes this syscall for most calls
        return t["syscalls"].get(k, {}).get("calls", 0) >= calls / 2
    pumps = [t for t in busy if count(t, "read") and count(t, "sendmsg")]
    readers = sorted((t for t in busy if count(t, "read") and not count(t, "sendmsg")),
                     key=lambda t: t["tid"])
    senders = sorted((t for t in busy if count(t, "sendmsg") and not count(t, "read")),
                     key=lambda t: t["tid"])
    for t in pumps:
        t["role"] = "router pump (read frame, check, forward)"
    # An asynchronous call has no reply: then only the server main thread reads
    # and only the guest's calling thread sends.
    if readers:
        readers[0]["role"] = "server main thread (read, hand to shadow)"
    if len(readers) == 2:
        readers[1]["role"] = "guest receiver thread (read reply, wake caller)"
    if senders:
        senders[0]["role"] = "guest calling thread (send; wait if synchronous)"
    if len(senders) == 2:
        senders[1]["role"] = "server shadow thread (real call, reply)"
    rest = [t for t in busy if "role" not in t and count(t, "futex")]
    if len(rest) == 1 and len(senders) == 1:
        rest[0]["role"] = "server shadow thread (real call, no reply)"
    order = ["guest calling thread", "router pump", "server main", "server shadow",
             "guest receiver"]
    for t in busy:
        t.setdefault("role", f"{t['comm']} (unclassified)")
    return sorted(busy, key=lambda t: next((i for i, o in enumerate(order)
                                            if t["role"].startswith(o)), len(order)))


def profile(a, which):
    with tempfile.TemporaryDirectory() as tmp:
        trace, stats = os.path.join(tmp, "trace.txt"), os.path.join(tmp, "stats.json")
        subprocess.run(["perf", "trace", "-s", "-o", trace, "--",
                        os.path.join(a.build, "bin", "hira"), "run", "--quiet", "--json", stats,
                        "--", os.path.join(a.build, "bin", "ocl_bench"), "latency",
                        str(a.calls), which], check=True, stdout=subprocess.DEVNULL)
        threads = parse(trace)
        with open(stats) as f:
            fns = json.load(f)["opencl"]["functions"]
    calls = sum(v["calls"] for v in fns.values())
    asynchronous = sum(v.get("async", 0) for v in fns.values())
    busy = [t for t in threads
            if sum(v["calls"] for v in t["syscalls"].values()) >= calls / 2]
    names = ("read", "sendmsg", "futex")
    print(f"\nocl_bench latency {a.calls} {which}: {calls} remoted calls "
          f"({asynchronous} asynchronous); system calls per remoted call, per thread:")
    print(f"{'thread':<50} {'read':>6} {'sendmsg':>8} {'futex':>6} {'all':>6}")
    rows, total = [], 0.0
    for t in label(busy, calls):
        per = {k: t["syscalls"].get(k, {}).get("calls", 0) / calls for k in names}
        every = sum(v["calls"] for v in t["syscalls"].values()) / calls
        total += every
        r = {"thread": t["role"], "comm": t["comm"], "tid": t["tid"], "per_call": per,
             "all_per_call": every}
        rows.append(r)
        print(f"{r['thread']:<50} {per['read']:>6.2f} {per['sendmsg']:>8.2f} "
              f"{per['futex']:>6.2f} {every:>6.2f}")
    print(f"{'total (threads above)':<50} {'':>6} {'':>8} {'':>6} {total:>6.2f}")
    return {"which": which, "remoted_calls": calls, "async_calls": asynchronous,
            "threads": rows, "all_threads": threads}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", default="build", help="build directory (default: build)")
    ap.add_argument("--calls", type=int, default=5000, help="N for `ocl_bench latency N`")
    ap.add_argument("--which", default="info,retain", help="comma-separated WHICH values")
    ap.add_argument("--json", default="bench/results/syscalls.json")
    a = ap.parse_args()
    result = [profile(a, w) for w in a.which.split(",")]
    os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(result, f, indent=2)
    print(f"(JSON in {a.json})", file=sys.stderr)


if __name__ == "__main__":
    main()
