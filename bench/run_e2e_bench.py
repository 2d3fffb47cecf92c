#!/usr/bin/env python3
"""End-to-end wall time of every OpenCL test program (BUILD/bin/opencl/ocl_*)
natively and through `hira run --quiet`: median of N runs each, ratio
hira / native. The whole process is timed, so hira's numbers include starting
a private router and API server. Writes the numbers as JSON."""
import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import time


def timed(cmd):
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    return time.perf_counter() - t0, p.returncode, p.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", default="build", help="build directory (default: build)")
    ap.add_argument("-n", "--repeat", type=int, default=3, help="timed runs per program and side")
    ap.add_argument("--json", default="bench/results/e2e.json")
    a = ap.parse_args()
    hira = os.path.join(a.build, "bin", "hira")
    programs = sorted(p for p in glob.glob(os.path.join(a.build, "bin", "opencl", "ocl_*"))
                      if os.access(p, os.X_OK))
    if not programs:
        sys.exit(f"run_e2e_bench: no programs in {a.build}/bin/opencl")
    rows, skipped = [], []
    print(f"{'program':<22} {'native s':>9} {'hira s':>9} {'ratio':>7}")
    for prog in programs:
        name = os.path.basename(prog)
        # Untimed: warms PoCL's kernel cache, and tells which programs run natively
        # at all (some exist only to be run through hira).
        _, rc, native_out = timed([prog])
        if rc != 0:
            skipped.append({"program": name, "native_exit": rc})
            print(f"{name:<22} {'skipped: exits ' + str(rc) + ' natively':>27}")
            continue
        native, remoted, problems = [], [], []
        for _ in range(a.repeat):  # alternate, so that drift hits both sides alike
            t, rc, _ = timed([prog])
            native.append(t)
            t, rc, out = timed([hira, "run", "--quiet", "--", prog])
            remoted.append(t)
            if rc != 0:
                problems.append(f"hira exit {rc}")
            elif out != native_out:
                problems.append("output differs from native")
        n, h = statistics.median(native), statistics.median(remoted)
        rows.append({"program": name, "native_s": n, "hira_s": h, "ratio": h / n,
                     "native_runs": native, "hira_runs": remoted,
                     "problems": sorted(set(problems))})
        note = f"  ({'; '.join(sorted(set(problems)))})" if problems else ""
        print(f"{name:<22} {n:>9.3f} {h:>9.3f} {h / n:>6.1f}x{note}")
    total_n = sum(r["native_s"] for r in rows)
    total_h = sum(r["hira_s"] for r in rows)
    print(f"{'total':<22} {total_n:>9.3f} {total_h:>9.3f} {total_h / total_n:>6.1f}x")
    # The fixed cost of `hira run` itself: a program that loads no API.
    true = [timed([hira, "run", "--quiet", "--", "true"])[0] for _ in range(a.repeat)]
    print(f"{'(hira run -- true)':<22} {'':>9} {statistics.median(true):>9.3f}")
    os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
    with open(a.json, "w") as f:
        json.dump({"repeat": a.repeat, "cpus": os.cpu_count(), "rows": rows,
                   "skipped": skipped,
                   "hira_run_true_s": statistics.median(true)}, f, indent=2)
    print(f"(median of {a.repeat} runs; ratio = hira / native; JSON in {a.json})",
          file=sys.stderr)


if __name__ == "__main__":
    main()
