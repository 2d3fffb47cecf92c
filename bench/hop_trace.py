#!/usr/bin/env python3
"""Joins the records HIRA_HOP_TRACE=PREFIX left (PREFIX.<pid>, one file per
process: common/include/hira/hop_trace.h) into the median time of each hop of
a synchronous call.

    HIRA_HOP_TRACE=/tmp/hop hira run -- ocl_bench latency 20000 info
    bench/hop_trace.py /tmp/hop

Only calls that passed every stage count (synchronous ones); the first
--skip of them (warm-up) are left out. Call ids are one guest process's:
trace one guest process (and its router and server) at a time."""
import argparse
import glob
import statistics
import struct
import sys

STAGES = [
    "guest send", "router got call", "router sent call", "server got call",
    "server runs call", "server ran call", "server sent reply", "router got reply",
    "router sent reply", "guest got reply", "guest returns",
]
# Finer marks inside a hop (hop_trace.h), printed as its parts when present.
DETAILS = {100: "router checked", 101: "router admitted", 102: "router recorded",
           110: "router matched reply"}
SPLITS = {1: [100, 101, 102], 7: [110]}  # hop from STAGES[i]: the marks inside it
RECORD = struct.Struct("<QIIQ")  # call id, stage, thread id, ns


def read_records(prefix):
    calls = {}
    for path in sorted(glob.glob(prefix + ".*")):
        data = open(path, "rb").read()
        for off in range(0, len(data) - RECORD.size + 1, RECORD.size):
            call_id, stage, _tid, ns = RECORD.unpack_from(data, off)
            if ns == 0:
                continue  # not written (each thread fills blocks of its own)
            if stage < len(STAGES) or stage in DETAILS:
                calls.setdefault(call_id, {})[stage] = ns
    return calls


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("prefix")
    ap.add_argument("--skip", type=int, default=1000)
    a = ap.parse_args()
    calls = read_records(a.prefix)
    complete = [s for _, s in sorted(calls.items()) if all(i in s for i in range(len(STAGES)))]
    complete = complete[a.skip:]
    if not complete:
        print("no call passed every stage (was HIRA_HOP_TRACE set for every process?)")
        return 1
    print(f"{len(complete)} synchronous calls; median us per hop")
    for i in range(1, len(STAGES)):
        d = statistics.median((s[i] - s[i - 1]) / 1000 for s in complete)
        print(f"  {STAGES[i - 1]:>18} -> {STAGES[i]:<18} {d:8.3f}")
        inside = SPLITS.get(i - 1, [])
        if inside and all(all(m in s for m in inside) for s in complete):
            marks = [i - 1] + inside + [i]
            names = [STAGES[i - 1]] + [DETAILS[m] for m in inside] + [STAGES[i]]
            for a_, b_, na, nb in zip(marks, marks[1:], names, names[1:]):
                part = statistics.median((s[b_] - s[a_]) / 1000 for s in complete)
                print(f"      {na:>20} -> {nb:<20} {part:8.3f}")
    total = statistics.median((s[len(STAGES) - 1] - s[0]) / 1000 for s in complete)
    print(f"  {'whole call':>18}    {'':<18} {total:8.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
