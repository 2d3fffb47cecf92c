#!/usr/bin/env python3
"""Runs ocl_bench (latency, transfer, grid) natively and through `hira run`
in the same session, prints native vs hira side by side with the ratio
(hira time / native time), writes all numbers as JSON, and plots the grid
(overhead vs work per call, one line per data size, as in figure 4.10)."""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def size_name(n):
    for unit, div in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= div and n % div == 0:
            return f"{n // div} {unit}"
    return f"{n} B"


def cpu_idle(seconds=1.0):
    """Fraction of CPU time idle over the next `seconds` (Linux /proc/stat)."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[3] + v[4], sum(v)
    try:
        i0, t0 = sample()
        time.sleep(seconds)
        i1, t1 = sample()
        return (i1 - i0) / max(1, t1 - t0)
    except OSError:
        return None


def router_view(stats_path):
    """Per-function call counts and mean time as the router saw it (from the
    router's forwarding of a call to the arrival of its reply)."""
    with open(stats_path) as f:
        fns = json.load(f).get("opencl", {}).get("functions", {})
    return {name: {"calls": s["calls"], "async": s.get("async", 0),
                   "router_mean_us": s["total_ns"] / (s["calls"] - s.get("async", 0)) / 1e3}
            for name, s in fns.items() if s.get("calls", 0) > s.get("async", 0)}


# Per mode: the fields that identify a row, and the measured fields where
# lower (times) or higher (bandwidths) is better, for --repeat's best-of.
KEYS = {"latency": ("call",), "transfer": ("bytes",), "grid": ("bytes", "work")}
LOWER = ("us_per_call", "ms_per_call", "write_us", "read_us")
HIGHER = ("write_gbps", "read_gbps")


def best_of(runs, key):
    """Merges repeated runs row by row, keeping the best value of each field."""
    best = {}
    for rows in runs:
        for row in rows:
            k = tuple(row[f] for f in key)
            if k not in best:
                best[k] = dict(row)
                continue
            for f in LOWER:
                if f in row:
                    best[k][f] = min(best[k][f], row[f])
            for f in HIGHER:
                if f in row:
                    best[k][f] = max(best[k][f], row[f])
    return list(best.values())


def both(a, mode_args, results):
    """Runs ocl_bench MODE natively and through hira, alternating, --repeat
    times; returns the best of the runs for each row."""
    bench = [os.path.join(a.build, "bin", "ocl_bench")] + mode_args
    pin = ["taskset", "-c", a.pin] if a.pin else []
    native_runs, hira_runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        stats = os.path.join(tmp, "stats.json")
        for _ in range(a.repeat):
            native_runs.append(run(pin + bench))
            hira_runs.append(run(pin + [os.path.join(a.build, "bin", "hira"), "run", "--quiet",
                                        "--json", stats, "--"] + bench))
        results["router"] = router_view(stats)  # of the last hira run
    native = best_of(native_runs, KEYS[mode_args[0]])
    hira = best_of(hira_runs, KEYS[mode_args[0]])
    if len(native) != len(hira):
        sys.exit(f"run_ocl_bench: {mode_args[0]}: {len(native)} native rows, {len(hira)} hira")
    results["native"], results["hira"] = native, hira
    results["runs"] = {"native": native_runs, "hira": hira_runs}
    return native, hira


def latency(a):
    res = {}
    native, hira = both(a, ["latency", str(a.calls)], res)
    rows = []
    print(f"\nlatency ({a.calls} calls each)")
    print(f"{'call':<38} {'native us':>10} {'hira us':>10} {'hira/native':>12} "
          f"{'router us':>10}")
    for n, h in zip(native, hira):
        r = {"call": n["call"], "native_us": n["us_per_call"], "hira_us": h["us_per_call"],
             "ratio": h["us_per_call"] / n["us_per_call"] if n["us_per_call"] else float("inf")}
        # The router's view: forward to the server -> reply back (mean, last hira run).
        fns = [f.strip() for f in n["call"].split("(")[0].split("+")]
        if all(f in res["router"] for f in fns):
            r["router_us"] = sum(res["router"][f]["router_mean_us"] for f in fns)
        rows.append(r)
        router = f"{r['router_us']:>10.1f}" if "router_us" in r else f"{'-':>10}"
        print(f"{r['call']:<38} {r['native_us']:>10.3f} {r['hira_us']:>10.1f} "
              f"{r['ratio']:>11.0f}x {router}")
    print("(router us: mean time from the router forwarding a call to the server to the reply "
          "reaching the router, over all synchronous calls of that name; '-': asynchronous, "
          "no reply)")
    res["rows"] = rows
    return res


def transfer(a):
    res = {}
    native, hira = both(a, ["transfer", str(a.max_bytes), str(a.transfer_seconds)], res)
    rows = []
    print(f"\ntransfer (blocking clEnqueueWriteBuffer / clEnqueueReadBuffer, GB/s)")
    print(f"{'size':>9} | {'write native':>12} {'write hira':>10} {'ratio':>6} | "
          f"{'read native':>11} {'read hira':>9} {'ratio':>6}")
    for n, h in zip(native, hira):
        r = {"bytes": n["bytes"]}
        for d in ("write", "read"):
            r[f"{d}_native_gbps"] = n[f"{d}_gbps"]
            r[f"{d}_hira_gbps"] = h[f"{d}_gbps"]
            r[f"{d}_ratio"] = n[f"{d}_gbps"] / h[f"{d}_gbps"]  # = hira time / native time
        rows.append(r)
        print(f"{size_name(r['bytes']):>9} | {r['write_native_gbps']:>12.3f} "
              f"{r['write_hira_gbps']:>10.3f} {r['write_ratio']:>5.1f}x | "
              f"{r['read_native_gbps']:>11.3f} {r['read_hira_gbps']:>9.3f} "
              f"{r['read_ratio']:>5.1f}x")
    res["rows"] = rows
    return res


def grid(a):
    res = {}
    native, hira = both(a, ["grid", str(a.grid_seconds)], res)
    rows = []
    print("\ngrid (one call = write D bytes + kernel (K iterations x 65536 items) "
          "+ read D bytes + clFinish; ms per call)")
    print(f"{'data':>9} {'work K':>7} | {'native ms':>10} {'hira ms':>10} {'hira/native':>12}")
    for n, h in zip(native, hira):
        r = {"bytes": n["bytes"], "work": n["work"], "native_ms": n["ms_per_call"],
             "hira_ms": h["ms_per_call"], "ratio": h["ms_per_call"] / n["ms_per_call"]}
        rows.append(r)
        print(f"{size_name(r['bytes']):>9} {r['work']:>7} | {r['native_ms']:>10.3f} "
              f"{r['hira_ms']:>10.3f} {r['ratio']:>11.2f}x")
    res["rows"] = rows
    return res


def plot_grid(rows, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        print(f"run_ocl_bench: matplotlib is missing for {sys.executable}; not writing {path} "
              "(install python3-matplotlib and run with the system python3)", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(7, 4.8), dpi=120)
    for size in sorted({r["bytes"] for r in rows}):
        pts = sorted((r["work"], r["ratio"]) for r in rows if r["bytes"] == size)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o",
                label=f"{size_name(size)} per call")
    ax.set_xscale("log")
    ax.set_yscale("log")
    works = sorted({r["work"] for r in rows})
    ax.set_xticks(works, [str(w) for w in works])
    top = max(r["ratio"] for r in rows)
    ticks = [t for t in (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if t <= top * 1.5]
    ax.set_yticks(ticks, [f"{t:g}x" for t in ticks])
    ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle="--")
    ax.set_xlabel("work per call (kernel loop iterations per work item, 65536 items)")
    ax.set_ylabel("overhead (hira time / native time)")
    ax.set_title("Overhead vs. data and work per call (cf. figure 4.10)\n"
                 "OpenCL through hira, PoCL CPU device")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    print(f"(grid plot in {path})", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", default="build", help="build directory (default: build)")
    ap.add_argument("--modes", default="latency,transfer,grid",
                    help="comma-separated subset of latency,transfer,grid")
    ap.add_argument("--calls", type=int, default=20000, help="calls per latency measurement")
    ap.add_argument("--max-bytes", type=int, default=256 << 20, help="largest transfer")
    ap.add_argument("--transfer-seconds", type=float, default=0.2,
                    help="time budget per transfer size and direction")
    ap.add_argument("--grid-seconds", type=float, default=0.3,
                    help="time budget per grid cell (at least 3 calls)")
    ap.add_argument("--repeat", type=int, default=1,
                    help="run native and hira alternately this many times; keep the best")
    ap.add_argument("--pin", default="",
                    help="CPU list for taskset: run everything (program, router, server) there")
    ap.add_argument("--json", default="bench/results/ocl_bench.json")
    ap.add_argument("--png", default="bench/results/grid.png")
    ap.add_argument("--replot", action="store_true",
                    help="measure nothing: redraw the PNG from the grid rows in --json")
    a = ap.parse_args()
    if a.replot:
        with open(a.json) as f:
            plot_grid(json.load(f)["grid"]["rows"], a.png)
        return
    os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
    idle = cpu_idle()
    result = {"machine": {"cpus": os.cpu_count(), "cpu_idle_at_start": idle,
                          "repeat": a.repeat, "pin": a.pin or None}}
    if idle is not None and idle < 0.8:
        print(f"run_ocl_bench: warning: the CPUs were only {idle:.0%} idle at start; "
              "other work on the machine skews the numbers", file=sys.stderr)
    for mode in a.modes.split(","):
        if mode not in ("latency", "transfer", "grid"):
            sys.exit(f"run_ocl_bench: unknown mode {mode!r}")
        result[mode] = globals()[mode](a)
    if "grid" in result:
        plot_grid(result["grid"]["rows"], a.png)
    with open(a.json, "w") as f:
        json.dump(result, f, indent=2)
    print(f"(ratio = hira time / native time; JSON in {a.json})", file=sys.stderr)


if __name__ == "__main__":
    main()
