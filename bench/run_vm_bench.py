#!/usr/bin/env python3
"""The VM path measured: ocl_bench inside a `hira vm` guest, through `hira run`
on the host, and natively, in one session.

TCG (no KVM here) makes the guest's own CPU time meaningless, so besides the
times the guest sees, this reports what a call costs the host outside QEMU:
the CPU time of hira-vsock (the device backend), the router and the API
server, sampled from /proc while the guest runs, per call (the difference
between two runs with different call counts, so start-up cancels out).

  bench/run_vm_bench.py [--build build] [--json out.json]
"""
import argparse
import json
import os
import subprocess
import threading
import time

HOST_SIDE = ("hira-vsock", "hira-router", "hira-server-ope")  # comm is 15 chars
TICK = os.sysconf("SC_CLK_TCK")


def descendants(root):
    """pid -> (comm, cpu seconds) of root's descendants."""
    parent, info = {}, {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                s = f.read()
        except OSError:
            continue
        comm = s[s.index("(") + 1:s.rindex(")")]
        rest = s[s.rindex(")") + 2:].split()
        parent[int(d)] = int(rest[1])
        info[int(d)] = (comm, (int(rest[11]) + int(rest[12])) / TICK)
    out = {}
    for pid in info:
        p = pid
        while p in parent and p != root and p > 1:
            p = parent[p]
        if p == root and pid != root:
            out[pid] = info[pid]
    return out


def run_sampled(cmd, per_process=None):
    """Runs cmd; returns (stdout JSON lines, host-side CPU seconds); CPU
    seconds per process name go to per_process if given."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen, comm_of = {}, {}
    done = threading.Event()

    def sample():
        while not done.is_set():
            for pid, (comm, cpu) in descendants(proc.pid).items():
                if comm in HOST_SIDE:
                    seen[pid] = max(seen.get(pid, 0.0), cpu)
                    comm_of[pid] = comm
            time.sleep(0.01)

    t = threading.Thread(target=sample)
    t.start()
    out, _ = proc.communicate()
    done.set()
    t.join()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode})")
    if per_process is not None:
        for pid, cpu in seen.items():
            name = comm_of.get(pid, "?")
            per_process[name] = per_process.get(name, 0.0) + cpu
    return [json.loads(l) for l in out.splitlines() if l.startswith("{")], sum(seen.values())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default="build")
    ap.add_argument("--json")
    ap.add_argument("--calls", type=int, nargs=2, default=[1000, 6000])
    args = ap.parse_args()
    b = os.path.abspath(args.build)
    bench = f"{b}/bin/ocl_bench"
    hira = f"{b}/bin/hira"
    results = {}

    lo, hi = args.calls
    per_call, guest_us, parts = {}, {}, {}
    for where, prefix in (("vm", [hira, "vm", "--quiet", "--"]), ("run", [hira, "run", "--quiet", "--"])):
        p_lo, p_hi = {}, {}
        r_lo, cpu_lo = run_sampled(prefix + [bench, "latency", str(lo), "info"], p_lo)
        r_hi, cpu_hi = run_sampled(prefix + [bench, "latency", str(hi), "info"], p_hi)
        per_call[where] = (cpu_hi - cpu_lo) / (2 * (hi - lo)) * 1e6  # "info" makes 2 calls per N
        parts[where] = {k: (p_hi.get(k, 0) - p_lo.get(k, 0)) / (2 * (hi - lo)) * 1e6 for k in p_hi}
        guest_us[where] = r_hi[0]["us_per_call"]
    native, _ = run_sampled([bench, "latency", str(hi), "info"])
    results["sync_call"] = {"native_us": native[0]["us_per_call"], "hira_run_us": guest_us["run"],
                            "vm_guest_us": guest_us["vm"],
                            "host_cpu_us_per_call_vm": per_call["vm"],
                            "host_cpu_us_per_call_run": per_call["run"], "parts": parts}
    print(f"synchronous call (clGetContextInfo): native {native[0]['us_per_call']:.3f} us, "
          f"hira run {guest_us['run']:.1f} us, in the TCG guest {guest_us['vm']:.1f} us")
    print(f"host CPU per call outside QEMU (backend + router + server): VM {per_call['vm']:.1f} us, "
          f"hira run (router + server) {per_call['run']:.1f} us")
    for where, p in parts.items():
        print(f"  {where}: " + ", ".join(f"{k} {v:.1f} us" for k, v in sorted(p.items())))

    size = 16 << 20
    vm, _ = run_sampled([hira, "vm", "--quiet", "--", bench, "transfer", str(size)])
    run_, _ = run_sampled([hira, "run", "--quiet", "--", bench, "transfer", str(size)])
    nat, _ = run_sampled([bench, "transfer", str(size)])
    results["transfer"] = []
    print(f"{'bytes':>10} {'native w/r GB/s':>18} {'hira run w/r':>16} {'VM (TCG) w/r':>16}")
    for v, r, n in zip(vm, run_, nat):
        results["transfer"].append({"bytes": n["bytes"], "native": [n["write_gbps"], n["read_gbps"]],
                                    "run": [r["write_gbps"], r["read_gbps"]],
                                    "vm": [v["write_gbps"], v["read_gbps"]]})
        print(f"{n['bytes']:>10} {n['write_gbps']:>8.2f}/{n['read_gbps']:<8.2f} "
              f"{r['write_gbps']:>7.2f}/{r['read_gbps']:<7.2f} {v['write_gbps']:>7.3f}/{v['read_gbps']:<7.3f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
