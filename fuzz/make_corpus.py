#!/usr/bin/env python3
"""Writes the seed corpus of fuzz/router_frames.cpp: a few well-formed guest
byte streams (a hello, sync and async calls, an allocating call, a tagged
call with a reference table), so that the fuzzer starts from frames the
router accepts. Function ids are read from the generated protocol header.
Usage: fuzz/make_corpus.py BUILD_DIR OUT_DIR [opencl|cuda]"""
import re
import struct
import sys

build, out = sys.argv[1], sys.argv[2]
api = sys.argv[3] if len(sys.argv) > 3 else "opencl"
ids = dict((m.group(1), int(m.group(2))) for m in re.finditer(
    r"FN_(\w+) = (\d+)", open(f"{build}/generated/{api}/{api}_protocol.h").read()))
MAGIC, VERSION = 0x41524948, 2
HELLO, CALL = 1, 3
ASYNC, TAGGED = 1, 2


def frame(kind, payload, func=0, call_id=1, flags=0):
    return struct.pack("<IHHIIQII", MAGIC, VERSION, kind, len(payload), func, call_id, 1,
                       flags) + payload


def blob(b):
    return struct.pack("<I", len(b)) + b


def u64(v):
    return blob(struct.pack("<Q", v))


def scalar(v, n):
    return blob(v.to_bytes(n, "little"))


def out_ptr(count):
    return blob(b"\x01" + struct.pack("<Q", count))


hello = frame(HELLO, struct.pack("<I", len(api)) + api.encode() + b"\0" * (16 - len(api)) +
              struct.pack("<QI", 0, 1))


def write_seeds(seeds):
    for name, b in seeds.items():
        with open(f"{out}/{name}", "wb") as f:
            f.write(b)


if api == "cuda":
    # cuInit(0), cuDeviceGet(&d, 0), cuMemAlloc_v2(&p, 4096) (allocates),
    # cuMemFree_v2(p), cuCtxGetDevice(&d), cuLaunchKernel with a parameter.
    init = frame(CALL, scalar(0, 4), ids["cuInit"])
    device = frame(CALL, out_ptr(1) + scalar(0, 4), ids["cuDeviceGet"], 2)
    alloc = frame(CALL, out_ptr(1) + scalar(4096, 8), ids["cuMemAlloc_v2"], 3)
    free = frame(CALL, scalar(1 << 20, 8), ids["cuMemFree_v2"], 4)
    ctx = frame(CALL, out_ptr(1), ids["cuCtxGetDevice"], 5)
    launch = frame(CALL, u64(1) + b"".join(scalar(1, 4) for _ in range(6)) + scalar(0, 4) +
                   u64(0) + blob(b"\x01" + struct.pack("<Q", 1) + struct.pack("<Q", 8)) +
                   blob(b"\0"), ids["cuLaunchKernel"], 6, ASYNC)
    write_seeds({
        "hello": hello,
        "sync_call": init,
        "allocating_call": alloc,
        "launch": launch,
        "session": hello + init + device + ctx + alloc + launch + free,
    })
    sys.exit(0)

platforms = frame(CALL, scalar(1, 4) + out_ptr(1) + out_ptr(1), ids["clGetPlatformIDs"])
create = frame(CALL, u64(1) + scalar(1, 8) + scalar(4096, 8) + blob(b"\0") + out_ptr(1),
               ids["clCreateBuffer"], 2)
release = frame(CALL, u64(5), ids["clReleaseMemObject"], 3, ASYNC)
setarg = frame(CALL, u64(7) + scalar(0, 4) + scalar(4, 8) +
               blob(b"\x01" + struct.pack("<Q", 4) + b"\0" * 4 + b"abcd"),
               ids["clSetKernelArg"], 4, ASYNC)
# clEnqueueWriteBuffer(q, buf, CL_TRUE, 0, 4096, <window offset 0>, 0, NULL, NULL), tagged
data = b"\x01" + struct.pack("<Q", 4096) + struct.pack("<I", 1)
tagged_body = (u64(1) + u64(2) + scalar(1, 4) + scalar(0, 8) + scalar(4096, 8) + blob(data) +
               scalar(0, 4) + blob(b"\0") + blob(b"\0"))
table = struct.pack("<QQII", 0, 4096, 0, 0) + struct.pack("<II", 1, 0)
write = frame(CALL, tagged_body + table, ids["clEnqueueWriteBuffer"], 5, TAGGED)


seeds = {
    "hello": hello,
    "sync_call": platforms,
    "allocating_call": create,
    "async_calls": release + setarg,
    "tagged_call": write,
    "session": hello + platforms + create + setarg + release,
}
write_seeds(seeds)
