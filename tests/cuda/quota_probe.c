/* Device memory under a quota (hira run --quota device_memory=2560K):
 * allocations that fit, one that does not, a free that makes room. Each call's result is
 * printed and the program goes on, so that against the toolkit's stub (every
 * call answers 34) it still reaches the allocations: a quota refusal comes
 * from hira's router before any call reaches the driver, as
 * CUDA_ERROR_OUT_OF_MEMORY (2). Exits 1 if any call failed. */
#include "cu_common.h"

static int failed;

static void report(const char *what, CUresult rc) {
  if (rc != CUDA_SUCCESS) {
    printf("%s: error %d\n", what, (int)rc);
    failed = 1;
  } else {
    printf("%s: ok\n", what);
  }
}

int main(void) {
  CUdevice dev = 0;
  CUcontext ctx = NULL;
  report("cuInit", cuInit(0));
  report("cuDeviceGet", cuDeviceGet(&dev, 0));
  report("cuDevicePrimaryCtxRetain", cuDevicePrimaryCtxRetain(&ctx, dev));
  report("cuCtxSetCurrent", cuCtxSetCurrent(ctx));
  CUdeviceptr p[3] = {0, 0, 0};
  /* Under a 2.5 MiB quota: 1 MiB fits, 4 more do not, 1 more does; freeing
   * the first makes room for another. */
  report("cuMemAlloc 1 MiB", cuMemAlloc(&p[0], 1 << 20));
  report("cuMemAlloc 4 MiB", cuMemAlloc(&p[1], 4 << 20));
  report("cuMemAlloc 1 MiB again", cuMemAlloc(&p[2], 1 << 20));
  report("cuMemFree the first", cuMemFree(p[0]));
  p[0] = 0;
  report("cuMemAlloc 1 MiB after the free", cuMemAlloc(&p[0], 1 << 20));
  for (int i = 0; i < 3; ++i) {
    if (p[i] != 0) cuMemFree(p[i]);
  }
  if (ctx != NULL) cuDevicePrimaryCtxRelease(dev);
  return failed;
}
