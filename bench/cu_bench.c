/* CUDA driver-API micro-benchmarks, run natively and through hira
 * (scripts/gpu-check cuda): call latency, kernel launch rate, host<->device
 * bandwidth (pageable and pinned, 4 KiB - 1 GiB), and launches that do real
 * work on the device, and an iterative step as kernels or as one graph. One
 * JSON object per line.
 *
 *   cu_bench [all|latency|launch|bandwidth|work|graph] */
#include <cuda.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHECK(call)                                      \
  do {                                                   \
    CUresult r_ = (call);                                \
    if (r_ != CUDA_SUCCESS) {                            \
      fprintf(stderr, "%s: error %d\n", #call, (int)r_); \
      exit(1);                                           \
    }                                                    \
  } while (0)

/* noop(): nothing; spin(ns): each thread waits ns on the device's clock. */
static const char kPtx[] =
    ".version 8.0\n"
    ".target sm_90\n"
    ".address_size 64\n"
    ".visible .entry noop() { ret; }\n"
    ".visible .entry spin(.param .u64 p_ns) {\n"
    "  .reg .u64 %ns, %t0, %t;\n"
    "  .reg .pred %p;\n"
    "  ld.param.u64 %ns, [p_ns];\n"
    "  mov.u64 %t0, %globaltimer;\n"
    "WAIT:\n"
    "  mov.u64 %t, %globaltimer;\n"
    "  sub.u64 %t, %t, %t0;\n"
    "  setp.lt.u64 %p, %t, %ns;\n"
    "  @%p bra WAIT;\n"
    "  ret;\n"
    "}\n";

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static CUfunction g_noop, g_spin;

static void latency(void) {
  CUdevice dev;
  const int n = 20000;
  CHECK(cuCtxGetDevice(&dev));
  double t0 = now_s();
  for (int i = 0; i < n; ++i) CHECK(cuCtxGetDevice(&dev));
  double dt = now_s() - t0;
  printf("{\"bench\":\"latency\",\"call\":\"cuCtxGetDevice\",\"calls\":%d,\"us_per_call\":%.3f}\n",
         n, dt / n * 1e6);
  int v = 0;
  t0 = now_s();
  for (int i = 0; i < n; ++i) {
    CHECK(cuDeviceGetAttribute(&v, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
  }
  dt = now_s() - t0;
  printf(
      "{\"bench\":\"latency\",\"call\":\"cuDeviceGetAttribute\",\"calls\":%d,"
      "\"us_per_call\":%.3f}\n",
      n, dt / n * 1e6);
}

static void launch(void) {
  const int n = 20000;
  CHECK(cuLaunchKernel(g_noop, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL));
  CHECK(cuCtxSynchronize());
  double t0 = now_s();
  for (int i = 0; i < n; ++i) CHECK(cuLaunchKernel(g_noop, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL));
  CHECK(cuCtxSynchronize());
  double dt = now_s() - t0;
  printf(
      "{\"bench\":\"launch\",\"mode\":\"back_to_back\",\"launches\":%d,\"us_per_launch\":%.3f}\n",
      n, dt / n * 1e6);
  const int m = 5000;
  t0 = now_s();
  for (int i = 0; i < m; ++i) {
    CHECK(cuLaunchKernel(g_noop, 1, 1, 1, 32, 1, 1, 0, NULL, NULL, NULL));
    CHECK(cuStreamSynchronize(NULL));
  }
  dt = now_s() - t0;
  printf(
      "{\"bench\":\"launch\",\"mode\":\"launch_and_sync\",\"launches\":%d,"
      "\"us_per_launch\":%.3f}\n",
      m, dt / m * 1e6);
}

/* An iterative solver's step: 20 small kernels, then a synchronization,
 * 1000 times; launched one by one, and as a captured graph (one launch per
 * step). Through hira the graph is one call instead of 20. */
static void graph(void) {
  enum { KERNELS = 20, STEPS = 1000 };
  CUstream s;
  CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  double t0 = now_s();
  for (int i = 0; i < STEPS; ++i) {
    for (int k = 0; k < KERNELS; ++k) {
      CHECK(cuLaunchKernel(g_noop, 1, 1, 1, 32, 1, 1, 0, s, NULL, NULL));
    }
    CHECK(cuStreamSynchronize(s));
  }
  double dt = now_s() - t0;
  printf("{\"bench\":\"graph\",\"mode\":\"kernels\",\"kernels_per_step\":%d,\"steps\":%d,"
         "\"us_per_step\":%.3f}\n",
         KERNELS, STEPS, dt / STEPS * 1e6);
  CUgraph g;
  CUgraphExec exec;
  CHECK(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
  for (int k = 0; k < KERNELS; ++k) {
    CHECK(cuLaunchKernel(g_noop, 1, 1, 1, 32, 1, 1, 0, s, NULL, NULL));
  }
  CHECK(cuStreamEndCapture(s, &g));
  CHECK(cuGraphInstantiate(&exec, g, 0));
  CHECK(cuGraphLaunch(exec, s));
  CHECK(cuStreamSynchronize(s));
  t0 = now_s();
  for (int i = 0; i < STEPS; ++i) {
    CHECK(cuGraphLaunch(exec, s));
    CHECK(cuStreamSynchronize(s));
  }
  dt = now_s() - t0;
  printf("{\"bench\":\"graph\",\"mode\":\"graph\",\"kernels_per_step\":%d,\"steps\":%d,"
         "\"us_per_step\":%.3f}\n",
         KERNELS, STEPS, dt / STEPS * 1e6);
  CHECK(cuGraphExecDestroy(exec));
  CHECK(cuGraphDestroy(g));
  CHECK(cuStreamDestroy(s));
}

static void bandwidth_one(const char *kind, void *host, CUdeviceptr dev, size_t size) {
  /* About 1 GiB moved per direction, at least 3 and at most 2000 copies. */
  int reps = (int)((1ull << 30) / size);
  if (reps < 3) reps = 3;
  if (reps > 2000) reps = 2000;
  CHECK(cuMemcpyHtoD(dev, host, size));
  double t0 = now_s();
  for (int i = 0; i < reps; ++i) CHECK(cuMemcpyHtoD(dev, host, size));
  const double h2d = now_s() - t0;
  CHECK(cuMemcpyDtoH(host, dev, size));
  t0 = now_s();
  for (int i = 0; i < reps; ++i) CHECK(cuMemcpyDtoH(host, dev, size));
  const double d2h = now_s() - t0;
  printf(
      "{\"bench\":\"bandwidth\",\"host\":\"%s\",\"bytes\":%zu,\"h2d_gbps\":%.3f,"
      "\"d2h_gbps\":%.3f}\n",
      kind, size, (double)size * reps / h2d / 1e9, (double)size * reps / d2h / 1e9);
  fflush(stdout);
}

/* Pinned memory is allocated for each size, as a program allocates what it
 * copies (through hira, pinned memory that fits half the guest's window
 * lives there). */
static void bandwidth(void) {
  const size_t max = (size_t)1 << 30;
  CUdeviceptr dev;
  CHECK(cuMemAlloc(&dev, max));
  char *pageable = malloc(max);
  if (pageable == NULL) exit(1);
  memset(pageable, 1, max);
  for (size_t size = 4096; size <= max; size *= 16) {
    void *pinned = NULL;
    bandwidth_one("pageable", pageable, dev, size);
    CHECK(cuMemAllocHost(&pinned, size));
    memset(pinned, 1, size);
    bandwidth_one("pinned", pinned, dev, size);
    CHECK(cuMemFreeHost(pinned));
    if (size == ((size_t)1 << 28)) size = max / 16; /* 256 MiB, then 1 GiB */
  }
  free(pageable);
  CHECK(cuMemFree(dev));
}

/* Launches that each keep the device busy for `us`, synchronized every 10:
 * the overhead a program that does real work per call sees. */
static void work(void) {
  const unsigned long long durations_us[] = {10, 100, 1000};
  for (size_t d = 0; d < sizeof(durations_us) / sizeof(durations_us[0]); ++d) {
    unsigned long long ns = durations_us[d] * 1000;
    void *params[] = {&ns};
    const int n = durations_us[d] >= 1000 ? 500 : 2000;
    double t0 = now_s();
    for (int i = 0; i < n; ++i) {
      CHECK(cuLaunchKernel(g_spin, 1, 1, 1, 32, 1, 1, 0, NULL, params, NULL));
      if (i % 10 == 9) CHECK(cuStreamSynchronize(NULL));
    }
    CHECK(cuCtxSynchronize());
    const double dt = now_s() - t0;
    printf("{\"bench\":\"work\",\"kernel_us\":%llu,\"launches\":%d,\"us_per_launch\":%.3f}\n",
           durations_us[d], n, dt / n * 1e6);
  }
}

int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "all";
  CUdevice dev;
  CUcontext ctx;
  CUmodule mod;
  CHECK(cuInit(0));
  CHECK(cuDeviceGet(&dev, 0));
  CHECK(cuDevicePrimaryCtxRetain(&ctx, dev));
  CHECK(cuCtxSetCurrent(ctx));
  CHECK(cuModuleLoadData(&mod, kPtx));
  CHECK(cuModuleGetFunction(&g_noop, mod, "noop"));
  CHECK(cuModuleGetFunction(&g_spin, mod, "spin"));
  const int all = strcmp(mode, "all") == 0;
  if (all || strcmp(mode, "latency") == 0) latency();
  if (all || strcmp(mode, "launch") == 0) launch();
  if (all || strcmp(mode, "work") == 0) work();
  if (all || strcmp(mode, "graph") == 0) graph();
  if (all || strcmp(mode, "bandwidth") == 0) bandwidth();
  CHECK(cuModuleUnload(mod));
  CHECK(cuDevicePrimaryCtxRelease(dev));
  return 0;
}
