/* The default streams by name: CU_STREAM_LEGACY and CU_STREAM_PER_THREAD
 * (constants, not objects) in launches, async copies, synchronizations and
 * queries. Each call's result is
 * printed and the program goes on (against the toolkit's stub every call
 * answers 34); it exits 1 if any call failed. */
#include "cu_common.h"
#include "ops_fatbin.h"

static int failed;

static void report(const char *what, CUresult rc) {
  printf("%s: %s %d\n", what, rc == CUDA_SUCCESS ? "ok" : "error", (int)rc);
  failed |= rc != CUDA_SUCCESS;
}

int main(void) {
  CUdevice dev = 0;
  CUcontext ctx = NULL;
  CUmodule mod = NULL;
  CUfunction iota = NULL;
  report("cuInit", cuInit(0));
  report("cuDeviceGet", cuDeviceGet(&dev, 0));
  report("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain(&ctx, dev));
  report("cuCtxSetCurrent", cuCtxSetCurrent(ctx));
  report("cuModuleLoadData", cuModuleLoadData(&mod, ops_fatbin));
  report("cuModuleGetFunction", cuModuleGetFunction(&iota, mod, "iota_i32"));
  enum { N = 256 };
  int host[N] = {0}, n = N, base = 4, mul = 3;
  CUdeviceptr d = 0;
  report("cuMemAlloc", cuMemAlloc(&d, sizeof host));
  void *params[] = {&d, &n, &base, &mul};
  const CUstream streams[] = {CU_STREAM_LEGACY, CU_STREAM_PER_THREAD};
  const char *names[] = {"legacy", "per-thread"};
  for (int s = 0; s < 2; ++s) {
    char what[64];
    snprintf(what, sizeof what, "%s: launch", names[s]);
    report(what, cuLaunchKernel(iota, 1, 1, 1, N, 1, 1, 0, streams[s], params, NULL));
    snprintf(what, sizeof what, "%s: cuMemcpyDtoHAsync", names[s]);
    report(what, cuMemcpyDtoHAsync(host, d, sizeof host, streams[s]));
    snprintf(what, sizeof what, "%s: cuStreamSynchronize", names[s]);
    report(what, cuStreamSynchronize(streams[s]));
    snprintf(what, sizeof what, "%s: cuStreamQuery", names[s]);
    report(what, cuStreamQuery(streams[s]));
  }
  printf("host[1]=%d host[%d]=%d checksum 0x%08x\n", host[1], N - 1, host[N - 1],
         cu_fnv1a(host, sizeof host));
  if (d != 0) cuMemFree(d);
  if (mod != NULL) cuModuleUnload(mod);
  if (ctx != NULL) cuDevicePrimaryCtxRelease(dev);
  return failed;
}
