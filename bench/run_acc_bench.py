#!/usr/bin/env python3
"""Runs acc_bench natively and through `hira run` in the same session and
prints native vs hira side by side, as ratios; writes the numbers as JSON."""
import argparse
import json
import os
import subprocess
import sys


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default="build")
    ap.add_argument("--calls", default="20000")
    ap.add_argument("--max-bytes", default=str(64 << 20))
    ap.add_argument("--json", default="bench/results/acc_bench.json")
    a = ap.parse_args()
    bench = [os.path.join(a.build, "bin", "acc_bench"), a.calls, a.max_bytes]
    native = run(bench)
    hira = run([os.path.join(a.build, "bin", "hira"), "run", "--quiet", "--"] + bench)
    rows = []
    print(f"{'measurement':<28} {'native':>12} {'hira':>12} {'hira/native':>12}")
    for n, h in zip(native, hira):
        if n["bench"] == "transfer":
            for key in ("write_gbps", "read_gbps"):
                name = f"{key[:-5]} {n['bytes'] // 1024} KiB (GB/s)"
                ratio = n[key] / h[key] if h[key] else float("inf")
                rows.append({"name": name, "native": n[key], "hira": h[key], "slowdown": ratio})
        else:
            name = f"{n['bench']} (us/call)"
            rows.append({"name": name, "native": n["us_per_call"], "hira": h["us_per_call"],
                         "slowdown": h["us_per_call"] / n["us_per_call"]})
    for r in rows:
        print(f"{r['name']:<28} {r['native']:>12.3f} {r['hira']:>12.3f} {r['slowdown']:>11.1f}x")
    os.makedirs(os.path.dirname(a.json) or ".", exist_ok=True)
    with open(a.json, "w") as f:
        json.dump({"native": native, "hira": hira, "rows": rows}, f, indent=2)
    print(f"(slowdown = hira time / native time; JSON in {a.json})", file=sys.stderr)


if __name__ == "__main__":
    main()
