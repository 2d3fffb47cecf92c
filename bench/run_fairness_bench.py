#!/usr/bin/env python3
"""Fairness of device time between VMs under hira's router (issue 10).

Two to four VMs (each a router listener, so a separate router identity) run
ocl_kernel_loop at once, each with kernels of a different length, for
--seconds. Each kernel's device time is its length when it runs alone (measured
first, natively), so a VM's device time in a 1 s
window is the sum of the solo lengths of the kernels it finished in it - a
measure taken from the guests, not from the router's own accounting. Reported
per policy (none, wfq_fixed, wfq_aimd, wfq_ordered): the median and 90th percentile of the
per-window unfairness |t1 - t2| / (t1 + t2) (for more VMs: the largest
|t_i - share_i * T| / T), and the device work done per second against the run
without a policy (the throughput cost of scheduling). Also the cost of the
policy hooks per command, from the router's statistics.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def router_cmd(build, tmp, vms, policy, stats):
    cmd = [os.path.join(build, "bin", "hira-router"), "--apis", os.path.join(build, "apis"),
           "--quiet", "--stats-json", stats, "--ready-file", os.path.join(tmp, "ready")]
    for vm in vms:
        cmd += ["--listen", f"{vm}=unix:{tmp}/{vm}.sock"]
    if policy != "none":
        cmd += ["--policy", policy]
        for vm in vms:
            cmd += ["--share", f"{vm}=1"]
    return cmd


def run_vms(build, vms, iterations, items, seconds, policy):
    """Runs one kernel_loop per VM at once; returns their (finish_ns, took_ns) lists."""
    with tempfile.TemporaryDirectory(prefix="hira-fair-") as tmp:
        os.chmod(tmp, 0o755)
        stats = os.path.join(tmp, "stats.json")
        router = subprocess.Popen(router_cmd(build, tmp, vms, policy, stats),
                                  env={**os.environ, "TMPDIR": tmp})
        while not os.path.exists(os.path.join(tmp, "ready")):
            if router.poll() is not None:
                sys.exit("run_fairness_bench: the router did not start")
            time.sleep(0.01)
        loop = os.path.join(build, "bin", "opencl", "ocl_kernel_loop")
        procs, logs = [], []
        for vm, iters in zip(vms, iterations):
            env = {**os.environ, "HIRA_SOCKET": f"unix:{tmp}/{vm}.sock",
                   "LD_LIBRARY_PATH": ":".join(
                       [os.path.join(build, "apis", "opencl", "guest")] +
                       ([os.environ["LD_LIBRARY_PATH"]] if os.environ.get("LD_LIBRARY_PATH") else []))}
            # Into a file, not a pipe: a VM that fills a pipe nobody reads
            # yet (they were read one after the other) stops until it is
            # read - a stall that looked like unfairness.
            logs.append(open(os.path.join(tmp, f"{vm}.out"), "w+"))
            procs.append(subprocess.Popen([loop, str(iters), str(items), str(seconds)], env=env,
                                          stdout=logs[-1], text=True))
        for p in procs:
            p.wait()
        outs = []
        for log in logs:
            log.seek(0)
            outs.append(log.read())
            log.close()
        router.terminate()
        router.wait()
        with open(stats) as f:
            st = json.load(f)
    runs = []
    for out, p in zip(outs, procs):
        if p.returncode != 0:
            sys.exit(f"run_fairness_bench: kernel_loop failed ({p.returncode})")
        # The set-up's checks print "name: code"; each kernel prints two numbers.
        runs.append([tuple(int(x) for x in line.split()) for line in out.splitlines()
                     if line[:1].isdigit()])
    return runs, st


def windows(runs, solo, window_ns, skip_s):
    """Per window: each VM's device time. A kernel counts its solo length,
    spread over the solo length before it finished, so that a window holds
    the part of it that ran there (no quantization by whole kernels)."""
    # Only while every VM runs (their set-up, a kernel build, takes each a
    # different time), past a first second of settling.
    start = max(r[0][0] for r in runs if r) + int(skip_s * 1e9)
    end = min(r[-1][0] for r in runs if r)
    out = []
    t = start
    while t + window_ns <= end:
        row = []
        for r, s in zip(runs, solo):
            used = 0
            for done, _ in r:
                lo, hi = max(done - s, t), min(done, t + window_ns)
                if hi > lo:
                    used += hi - lo
            row.append(used)
        out.append(row)
        t += window_ns
    return out


def unfairness(w):
    total = sum(w)
    if total == 0:
        return 0.0
    if len(w) == 2:
        return abs(w[0] - w[1]) / total
    share = total / len(w)
    return max(abs(x - share) for x in w) / total


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", default="build")
    ap.add_argument("--vms", type=int, default=2, choices=[2, 3, 4])
    ap.add_argument("--iterations", default="20000,2000,8000,500",
                    help="kernel loop iterations per VM (the kernels' lengths)")
    ap.add_argument("--items", type=int, default=4096, help="work items per kernel")
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--policies", default="none,wfq_fixed,wfq_aimd,wfq_ordered")
    ap.add_argument("--json", default="bench/results/fairness.json")
    ap.add_argument("--plot", default="", help="PNG of the per-window shares")
    a = ap.parse_args()
    vms = [f"vm{i + 1}" for i in range(a.vms)]
    iterations = [int(x) for x in a.iterations.split(",")][: a.vms]

    # Each kernel's length alone, natively (through hira each would carry
    # the round trips of its launch and its clFinish, and the short kernels
    # would look longer than the device worked on them).
    solo = []
    loop = os.path.join(a.build, "bin", "opencl", "ocl_kernel_loop")
    for iters in iterations:
        out = subprocess.run([loop, str(iters), str(a.items), "1.5"], capture_output=True,
                             text=True, check=True).stdout
        took = [int(line.split()[1]) for line in out.splitlines() if line[:1].isdigit()]
        solo.append(statistics.median(took[3:]))
    print("solo kernel lengths: " + ", ".join(f"{s / 1e6:.2f} ms" for s in solo))

    results = {"vms": vms, "iterations": iterations, "items": a.items, "solo_ns": solo,
               "seconds": a.seconds, "policies": {}}
    print(f"{'policy':<10} {'windows':>7} {'median unfair':>14} {'p90 unfair':>11} "
          f"{'work/s':>8} {'vs none':>8} {'hook us/cmd':>11} {'shares':>20}")
    base = None
    series = {}
    for policy in a.policies.split(","):
        runs, st = run_vms(a.build, vms, iterations, a.items, a.seconds, policy)
        ws = windows(runs, solo, 1_000_000_000, 1.0)
        u = sorted(unfairness(w) for w in ws)
        work = statistics.mean(sum(w) for w in ws) / 1e9 if ws else 0
        base = base or work
        totals = [sum(w[i] for w in ws) for i in range(len(vms))]
        shares = [t / sum(totals) for t in totals] if sum(totals) else totals
        p = st.get("policies", {})
        commands = sum(v["calls"] for v in st["vms"].values())
        hook_us = p.get("run_ns", 0) / 1e3 / commands if commands else 0
        row = {"windows": len(ws), "unfairness_median": statistics.median(u) if u else None,
               "unfairness_p90": u[int(0.9 * (len(u) - 1))] if u else None,
               "work_per_s": work, "throughput_vs_none": work / base if base else None,
               "hook_us_per_command": hook_us, "shares": shares,
               "router_device_ns": {vm: st["vms"][vm]["device_ns"] for vm in vms},
               "queue_delay_ns": {vm: st["vms"][vm]["queue_delay_ns"] for vm in vms},
               # What each window held (device ns per VM), and each VM's
               # longest time without finishing a kernel: a stalled VM shows.
               "windows_ns": ws,
               "first_last_finish_s": {vm: [r[0][0] / 1e9, r[-1][0] / 1e9] if r else None
                                       for vm, r in zip(vms, runs)},
               "longest_stall_ms": {vm: max((b[0] - a_[0] for a_, b in zip(r, r[1:])),
                                            default=0) / 1e6 for vm, r in zip(vms, runs)},
               "waits": {vm: st["vms"][vm].get("waits", 0) for vm in vms},
               # The longest call from the router's forward to its reply (any VM).
               "max_call_ms": {fn: f.get("max_ns", 0) / 1e6
                               for fn, f in st.get("opencl", {}).get("functions", {}).items()
                               if fn in ("clFinish", "clEnqueueNDRangeKernel")}}
        results["policies"][policy] = row
        series[policy] = [[x / sum(w) if sum(w) else 0 for x in w] for w in ws]
        if not ws:  # the VMs never ran together past the first second
            print(f"{policy:<10} {0:>7} (no window: the VMs did not run together)")
            continue
        print(f"{policy:<10} {len(ws):>7} {row['unfairness_median'] * 100:>13.1f}% "
              f"{row['unfairness_p90'] * 100:>10.1f}% {work:>8.3f} {work / base:>8.3f} "
              f"{hook_us:>11.2f} {' '.join(f'{s * 100:.0f}%' for s in shares):>20}")
    os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
    with open(a.json, "w") as f:
        json.dump(results, f, indent=2)
    if a.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, axes = plt.subplots(1, len(series), figsize=(5 * len(series), 3.5), sharey=True)
        for ax, (policy, s) in zip(axes if len(series) > 1 else [axes], series.items()):
            for i, vm in enumerate(vms):
                ax.plot([w[i] for w in s], marker="o", label=f"{vm} ({solo[i] / 1e6:.1f} ms)")
            ax.axhline(1 / len(vms), color="gray", linestyle=":")
            ax.set_title(policy)
            ax.set_xlabel("1 s window")
        axes[0].set_ylabel("device-time share") if len(series) > 1 else None
        axes[0].legend() if len(series) > 1 else None
        fig.tight_layout()
        fig.savefig(a.plot)
    print(f"(work/s: device seconds of kernels finished per second; JSON in {a.json})")


if __name__ == "__main__":
    main()
