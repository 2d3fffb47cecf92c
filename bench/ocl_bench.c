/* Micro-benchmarks of OpenCL 1.2: the same binary runs natively (ocl-icd +
 * PoCL) and under `hira run`; bench/run_ocl_bench.py runs both and reports
 * the ratio. Prints one JSON object per measurement on stdout.
 *
 *   ocl_bench latency [N] [WHICH]  per-call time of small calls; WHICH is all
 *                                  (default), info, finish, setarg or retain
 *   ocl_bench transfer [MAX_BYTES] blocking write/read bandwidth, 4 KiB..MAX
 *   ocl_bench grid [SECONDS]       data per call x work per call (fig. 4.10)
 *   ocl_bench map [BYTES] [N]      map + unmap of a buffer for each kind of map
 *
 * OCL_BENCH_HOST=shared: transfers use host memory of a shared memfd mapping
 * (as hira's API server does with its window) instead of malloc's, which
 * tells the implementation's cost for such memory apart from hira's.
 * OCL_BENCH_HOST=shared-cuda: the same, pinned by the CUDA driver
 * (cuMemHostRegister, where libcuda.so.1 is present): does the vendor's
 * OpenCL move memory its CUDA driver pinned faster?
 *
 * Repetition counts adapt to a time budget per measurement, so a slow path
 * (hira) does fewer repetitions instead of taking proportionally longer. */
#define _GNU_SOURCE /* memfd_create */
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void check(cl_int err, const char *what) {
  if (err != CL_SUCCESS) {
    fprintf(stderr, "ocl_bench: %s failed: %d\n", what, (int)err);
    exit(1);
  }
}

/* Each work item runs K dependent multiply-adds, then adds its result to
 * its own contiguous slice of the buffer, so every byte written by the host
 * is also touched by the device. The conditional store keeps the loop alive
 * in work items that own no element (when the buffer has fewer elements than
 * there are work items). */
static const char *kSource =
    "__kernel void work(__global float *buf, uint n, uint k) {\n"
    "  uint i = (uint)get_global_id(0);\n"
    "  uint g = (uint)get_global_size(0);\n"
    "  uint per = (n + g - 1) / g;\n"
    "  uint lo = min(i * per, n), hi = min(lo + per, n);\n"
    "  float x = (float)i;\n"
    "  for (uint j = 0; j < k; ++j) x = mad(x, 0.9999f, 0.5f);\n"
    "  for (uint e = lo; e < hi; ++e) buf[e] += x;\n"
    "  if (x == -1.0f) buf[0] = x;\n"
    "}\n";

typedef struct {
  cl_context ctx;
  cl_command_queue queue;
  cl_program program;
  cl_kernel kernel;
} Env;

static Env setup(void) {
  Env e;
  cl_platform_id platform;
  cl_device_id device;
  cl_int err;
  check(clGetPlatformIDs(1, &platform, NULL), "clGetPlatformIDs");
  check(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL), "clGetDeviceIDs");
  e.ctx = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
  check(err, "clCreateContext");
  e.queue = clCreateCommandQueue(e.ctx, device, 0, &err);
  check(err, "clCreateCommandQueue");
  e.program = clCreateProgramWithSource(e.ctx, 1, &kSource, NULL, &err);
  check(err, "clCreateProgramWithSource");
  check(clBuildProgram(e.program, 1, &device, "", NULL, NULL), "clBuildProgram");
  e.kernel = clCreateKernel(e.program, "work", &err);
  check(err, "clCreateKernel");
  return e;
}

static void teardown(Env *e) {
  clReleaseKernel(e->kernel);
  clReleaseProgram(e->program);
  clReleaseCommandQueue(e->queue);
  clReleaseContext(e->ctx);
}

static void print_latency(const char *call, int calls, double seconds) {
  printf("{\"bench\":\"latency\",\"call\":\"%s\",\"calls\":%d,\"us_per_call\":%.3f}\n", call, calls,
         seconds / calls * 1e6);
}

static void bench_latency(Env *e, int calls, const char *which) {
  const int all = strcmp(which, "all") == 0;
  char profile[64];
  double t0;
  /* Warm-up: first calls of each kind may allocate on either side. */
  for (int i = 0; i < 100; ++i) {
    cl_platform_id p;
    check(clGetPlatformIDs(1, &p, NULL), "clGetPlatformIDs");
    check(clGetPlatformInfo(p, CL_PLATFORM_PROFILE, sizeof profile, profile, NULL), "info");
    check(clFinish(e->queue), "clFinish");
  }
  cl_platform_id platform;
  check(clGetPlatformIDs(1, &platform, NULL), "clGetPlatformIDs");

  if (all || strcmp(which, "info") == 0) {
    /* A synchronous call that moves no data: a count that changes, so the
     * guest must ask (immutable properties are answered in the guest). */
    cl_uint refs = 0;
    t0 = now_s();
    for (int i = 0; i < calls; ++i)
      check(clGetContextInfo(e->ctx, CL_CONTEXT_REFERENCE_COUNT, sizeof refs, &refs, NULL),
            "clGetContextInfo");
    print_latency("clGetContextInfo (REFERENCE_COUNT)", calls, now_s() - t0);
    t0 = now_s();
    for (int i = 0; i < calls; ++i)
      check(clGetPlatformInfo(platform, CL_PLATFORM_PROFILE, sizeof profile, profile, NULL),
            "clGetPlatformInfo");
    print_latency("clGetPlatformInfo (immutable)", calls, now_s() - t0);
  }

  if (all || strcmp(which, "finish") == 0) {
    t0 = now_s();
    for (int i = 0; i < calls; ++i) check(clFinish(e->queue), "clFinish");
    print_latency("clFinish (idle queue)", calls, now_s() - t0);
  }

  if (all || strcmp(which, "setarg") == 0) {
    t0 = now_s();
    for (int i = 0; i < calls; ++i) {
      const cl_uint k = (cl_uint)i;
      check(clSetKernelArg(e->kernel, 2, sizeof k, &k), "clSetKernelArg");
    }
    print_latency("clSetKernelArg (scalar)", calls, now_s() - t0);
  }

  if (all || strcmp(which, "enqueue") == 0) {
    /* A tiny kernel enqueued with an event that is released at once, as
     * programs that profile or chain their kernels do; then one clFinish,
     * so that the time includes running every kernel. */
    cl_int err;
    cl_mem buf = clCreateBuffer(e->ctx, CL_MEM_READ_WRITE, 64, NULL, &err);
    check(err, "clCreateBuffer");
    const cl_uint n = 16, k = 0;
    check(clSetKernelArg(e->kernel, 0, sizeof buf, &buf), "clSetKernelArg");
    check(clSetKernelArg(e->kernel, 1, sizeof n, &n), "clSetKernelArg");
    check(clSetKernelArg(e->kernel, 2, sizeof k, &k), "clSetKernelArg");
    const size_t global = 16;
    const int launches = calls < 5000 ? calls : 5000;
    t0 = now_s();
    for (int i = 0; i < launches; ++i) {
      cl_event ev;
      check(clEnqueueNDRangeKernel(e->queue, e->kernel, 1, NULL, &global, NULL, 0, NULL, &ev),
            "clEnqueueNDRangeKernel");
      check(clReleaseEvent(ev), "clReleaseEvent");
    }
    check(clFinish(e->queue), "clFinish");
    print_latency("clEnqueueNDRangeKernel+event (16 items, incl. final clFinish)", launches,
                  now_s() - t0);
    clReleaseMemObject(buf);
  }

  if (!all && strcmp(which, "retain") != 0) return;
  cl_int err;
  cl_event ev = clCreateUserEvent(e->ctx, &err);
  check(err, "clCreateUserEvent");
  t0 = now_s();
  for (int i = 0; i < calls; ++i) {
    check(clRetainEvent(ev), "clRetainEvent");
    check(clReleaseEvent(ev), "clReleaseEvent");
  }
  print_latency("clRetainEvent+clReleaseEvent (pair)", calls, now_s() - t0);
  /* A synchronous call after the loop: the time until every queued
   * (asynchronous) call before it has been run by the server. */
  t0 = now_s();
  check(clSetUserEventStatus(ev, CL_COMPLETE), "clSetUserEventStatus");
  print_latency("clSetUserEventStatus (after the pairs)", 1, now_s() - t0);
  check(clReleaseEvent(ev), "clReleaseEvent");
}

/* Runs fn until at least `budget` seconds and `min_reps` repetitions have
 * passed; returns seconds per repetition. */
typedef void (*RepFn)(Env *, cl_mem, void *, size_t, cl_uint);
static double timed(double budget, int min_reps, RepFn fn, Env *e, cl_mem buf, void *host,
                    size_t bytes, cl_uint k, int *reps_out) {
  int reps = 0;
  const double t0 = now_s();
  double t;
  do {
    fn(e, buf, host, bytes, k);
    ++reps;
    t = now_s() - t0;
  } while (t < budget || reps < min_reps);
  *reps_out = reps;
  return t / reps;
}

static void do_write(Env *e, cl_mem buf, void *host, size_t bytes, cl_uint k) {
  (void)k;
  check(clEnqueueWriteBuffer(e->queue, buf, CL_TRUE, 0, bytes, host, 0, NULL, NULL), "write");
}

static void do_read(Env *e, cl_mem buf, void *host, size_t bytes, cl_uint k) {
  (void)k;
  check(clEnqueueReadBuffer(e->queue, buf, CL_TRUE, 0, bytes, host, 0, NULL, NULL), "read");
}

/* Pins [p, p + bytes) with the CUDA driver; 0 on success. */
static int cuda_pin(void *p, size_t bytes) {
  void *cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (cuda == NULL) return -1;
  int (*init)(unsigned) = (int (*)(unsigned))dlsym(cuda, "cuInit");
  int (*retain)(void **, int) = (int (*)(void **, int))dlsym(cuda, "cuDevicePrimaryCtxRetain");
  int (*set_current)(void *) = (int (*)(void *))dlsym(cuda, "cuCtxSetCurrent");
  int (*reg)(void *, size_t, unsigned) =
      (int (*)(void *, size_t, unsigned))dlsym(cuda, "cuMemHostRegister_v2");
  void *ctx = NULL;
  if (init == NULL || retain == NULL || set_current == NULL || reg == NULL) return -1;
  if (init(0) != 0 || retain(&ctx, 0) != 0 || set_current(ctx) != 0) return -1;
  return reg(p, bytes, 1 /* PORTABLE */);
}

static int host_is_shared(void) {
  const char *kind = getenv("OCL_BENCH_HOST");
  return kind != NULL && strncmp(kind, "shared", 6) == 0;
}

/* The transfers' host memory: malloc's, or a shared memfd mapping. */
static unsigned char *host_memory(size_t bytes) {
  if (!host_is_shared()) return malloc(bytes);
  const int fd = memfd_create("ocl_bench", MFD_CLOEXEC);
  if (fd < 0 || ftruncate(fd, (off_t)bytes) != 0) return NULL;
  void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) return NULL;
  if (strcmp(getenv("OCL_BENCH_HOST"), "shared-cuda") == 0 && cuda_pin(p, bytes) != 0) {
    fprintf(stderr, "ocl_bench: cannot pin host memory with the CUDA driver\n");
    exit(1);
  }
  return p;
}

static void bench_transfer(Env *e, size_t max_bytes, double budget) {
  unsigned char *host = host_memory(max_bytes);
  if (host == NULL) {
    fprintf(stderr, "ocl_bench: cannot allocate %zu bytes\n", max_bytes);
    exit(1);
  }
  memset(host, 7, max_bytes);
  cl_int err;
  cl_mem buf = clCreateBuffer(e->ctx, CL_MEM_READ_WRITE, max_bytes, NULL, &err);
  check(err, "clCreateBuffer");
  do_write(e, buf, host, max_bytes, 0); /* first touch of the device memory */
  for (size_t bytes = 4096; bytes <= max_bytes; bytes *= 4) {
    int rw, rr;
    do_write(e, buf, host, bytes, 0);
    const double tw = timed(budget, 3, do_write, e, buf, host, bytes, 0, &rw);
    do_read(e, buf, host, bytes, 0);
    const double tr = timed(budget, 3, do_read, e, buf, host, bytes, 0, &rr);
    printf(
        "{\"bench\":\"transfer\",\"bytes\":%zu,\"write_reps\":%d,\"read_reps\":%d,"
        "\"write_gbps\":%.4f,\"read_gbps\":%.4f,\"write_us\":%.3f,\"read_us\":%.3f}\n",
        bytes, rw, rr, bytes / tw / 1e9, bytes / tr / 1e9, tw * 1e6, tr * 1e6);
    fflush(stdout);
  }
  clReleaseMemObject(buf);
  /* The shared mapping stays until exit. */
  if (!host_is_shared()) free(host);
}

enum { kGridItems = 1 << 16 };

/* One "call" of figure 4.10: data in, kernel, data out, finish (four API
 * calls; the kernel arguments are set once per grid cell, outside). */
static void do_grid_call(Env *e, cl_mem buf, void *host, size_t bytes, cl_uint k) {
  (void)k;
  const size_t global = kGridItems;
  check(clEnqueueWriteBuffer(e->queue, buf, CL_FALSE, 0, bytes, host, 0, NULL, NULL), "write");
  check(clEnqueueNDRangeKernel(e->queue, e->kernel, 1, NULL, &global, NULL, 0, NULL, NULL),
        "clEnqueueNDRangeKernel");
  check(clEnqueueReadBuffer(e->queue, buf, CL_FALSE, 0, bytes, host, 0, NULL, NULL), "read");
  check(clFinish(e->queue), "clFinish");
}

static void bench_grid(Env *e, double budget) {
  static const size_t sizes[] = {4096, 65536, 1 << 20, 16 << 20};
  static const cl_uint works[] = {1, 16, 256, 4096};
  for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; ++s) {
    const size_t bytes = sizes[s];
    float *host = malloc(bytes);
    if (host == NULL) exit(1);
    for (size_t i = 0; i < bytes / sizeof(float); ++i) host[i] = (float)(i % 97);
    cl_int err;
    cl_mem buf = clCreateBuffer(e->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    check(err, "clCreateBuffer");
    for (size_t w = 0; w < sizeof works / sizeof works[0]; ++w) {
      int reps;
      const cl_uint n = (cl_uint)(bytes / sizeof(float));
      check(clSetKernelArg(e->kernel, 0, sizeof buf, &buf), "arg 0");
      check(clSetKernelArg(e->kernel, 1, sizeof n, &n), "arg 1");
      check(clSetKernelArg(e->kernel, 2, sizeof works[w], &works[w]), "arg 2");
      do_grid_call(e, buf, host, bytes, works[w]); /* warm-up */
      const double t = timed(budget, 3, do_grid_call, e, buf, host, bytes, works[w], &reps);
      printf(
          "{\"bench\":\"grid\",\"bytes\":%zu,\"work\":%u,\"items\":%d,\"reps\":%d,"
          "\"ms_per_call\":%.4f}\n",
          bytes, (unsigned)works[w], kGridItems, reps, t * 1e3);
      fflush(stdout);
    }
    clReleaseMemObject(buf);
    free(host);
  }
}

/* Map + unmap of a whole buffer, for each kind of map: the bytes need to
 * travel only one way for reading and for invalidating writes. */
static void bench_map(Env *e, size_t bytes, int calls) {
  static const struct {
    const char *name;
    cl_map_flags flags;
  } kinds[] = {{"READ", CL_MAP_READ},
               {"WRITE", CL_MAP_WRITE},
               {"READ|WRITE", CL_MAP_READ | CL_MAP_WRITE},
               {"WRITE_INVALIDATE_REGION", CL_MAP_WRITE_INVALIDATE_REGION}};
  cl_int err;
  cl_mem buf = clCreateBuffer(e->ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
  check(err, "clCreateBuffer");
  for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; ++k) {
    const double t0 = now_s();
    for (int i = 0; i < calls; ++i) {
      void *p =
          clEnqueueMapBuffer(e->queue, buf, CL_TRUE, kinds[k].flags, 0, bytes, 0, NULL, NULL, &err);
      check(err, "clEnqueueMapBuffer");
      check(clEnqueueUnmapMemObject(e->queue, buf, p, 0, NULL, NULL), "clEnqueueUnmapMemObject");
    }
    check(clFinish(e->queue), "clFinish");
    printf(
        "{\"bench\":\"map\",\"flags\":\"%s\",\"bytes\":%zu,\"calls\":%d,"
        "\"us_per_map_unmap\":%.1f}\n",
        kinds[k].name, bytes, calls, (now_s() - t0) / calls * 1e6);
  }
  clReleaseMemObject(buf);
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "";
  if (strcmp(mode, "latency") != 0 && strcmp(mode, "transfer") != 0 && strcmp(mode, "grid") != 0 &&
      strcmp(mode, "map") != 0) {
    fprintf(stderr,
            "usage: %s latency [N=20000] [all|info|finish|setarg|enqueue|retain] | transfer "
            "[MAX_BYTES=268435456] [SECONDS=0.2] |"
            " grid [SECONDS=0.3] | map [BYTES=4194304] [N=200]\n",
            argv[0]);
    return 2;
  }
  Env e = setup();
  if (strcmp(mode, "map") == 0) {
    bench_map(&e, argc > 2 ? (size_t)atoll(argv[2]) : (size_t)4 << 20,
              argc > 3 ? atoi(argv[3]) : 200);
  } else if (strcmp(mode, "latency") == 0) {
    bench_latency(&e, argc > 2 ? atoi(argv[2]) : 20000, argc > 3 ? argv[3] : "all");
  } else if (strcmp(mode, "transfer") == 0) {
    const size_t max_bytes = argc > 2 ? (size_t)atoll(argv[2]) : (size_t)256 << 20;
    bench_transfer(&e, max_bytes, argc > 3 ? atof(argv[3]) : 0.2);
  } else {
    bench_grid(&e, argc > 2 ? atof(argv[2]) : 0.3);
  }
  teardown(&e);
  return 0;
}
