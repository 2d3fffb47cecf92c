/* Device memory under a quota (hira run --quota device_memory=2560K):
 * allocations that fit, one that does not, a free that makes room; the same
 * with virtual memory management, arrays and contexts. Each call's result is
 * printed and the program goes on, so that against the toolkit's stub (every
 * call answers 34) it still reaches the allocations: a quota refusal comes
 * from hira's router before any call reaches the driver, as
 * CUDA_ERROR_OUT_OF_MEMORY (2). Exits 1 if any call failed.
 *
 * The primary context counts as well (what the driver reserves for it: a
 * stack for every thread the device holds, the heap, the printf buffer), so
 * the quota these numbers assume is 2.5 MiB over that:
 * `cu_quota_probe context-bytes` prints it. */
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

/* What a context holds by its limits, as hira counts it. */
static unsigned long long context_bytes(void) {
  CUdevice dev = 0;
  CUcontext ctx = NULL;
  size_t stack = 0, heap = 0, fifo = 0;
  int sms = 0, threads = 0;
  if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
      cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS || cuCtxSetCurrent(ctx) != CUDA_SUCCESS ||
      cuCtxGetLimit(&stack, CU_LIMIT_STACK_SIZE) != CUDA_SUCCESS ||
      cuCtxGetLimit(&heap, CU_LIMIT_MALLOC_HEAP_SIZE) != CUDA_SUCCESS ||
      cuCtxGetLimit(&fifo, CU_LIMIT_PRINTF_FIFO_SIZE) != CUDA_SUCCESS ||
      cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev) != CUDA_SUCCESS ||
      cuDeviceGetAttribute(&threads, CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_MULTIPROCESSOR, dev) !=
          CUDA_SUCCESS) {
    return 0;
  }
  return (unsigned long long)stack * (unsigned long long)threads * (unsigned long long)sms + heap +
         fifo;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "context-bytes") == 0) {
    printf("%llu\n", context_bytes());
    return 0;
  }
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
  /* Virtual memory management: a physical allocation counts from cuMemCreate
   * until it is released and unmapped. 4 MiB do not fit; 2 MiB do; mapped
   * and released they still count, so 2 MiB more do not; unmapped they are
   * gone. */
  const CUmemAllocationProp prop = cu_device_allocation(dev);
  CUmemGenericAllocationHandle h = 0, h2 = 0;
  CUdeviceptr va = 0;
  report("cuMemCreate 4 MiB", cuMemCreate(&h2, 4 << 20, &prop, 0));
  report("cuMemCreate 2 MiB", cuMemCreate(&h, 2 << 20, &prop, 0));
  report("cuMemAddressReserve", cuMemAddressReserve(&va, 2 << 20, 0, 0, 0));
  report("cuMemMap", cuMemMap(va, 2 << 20, 0, h, 0));
  report("cuMemRelease while mapped", cuMemRelease(h));
  report("cuMemCreate 2 MiB more", cuMemCreate(&h2, 2 << 20, &prop, 0));
  report("cuMemUnmap", cuMemUnmap(va, 2 << 20));
  report("cuMemCreate 2 MiB after the unmap", cuMemCreate(&h2, 2 << 20, &prop, 0));
  if (h2 != 0) cuMemRelease(h2);
  if (va != 0) cuMemAddressFree(va, 2 << 20);
  /* Arrays: 4 MiB of floats do not fit, 1 MiB does. */
  CUDA_ARRAY3D_DESCRIPTOR big = {1024, 1024, 0, CU_AD_FORMAT_FLOAT, 1, 0};
  CUDA_ARRAY3D_DESCRIPTOR small = {512, 512, 0, CU_AD_FORMAT_FLOAT, 1, 0};
  CUarray array = NULL;
  report("cuArray3DCreate 4 MiB", cuArray3DCreate(&array, &big));
  report("cuArray3DCreate 1 MiB", cuArray3DCreate(&array, &small));
  if (array != NULL) cuArrayDestroy(array);
  /* Contexts: the memory the driver reserves for one (stacks, heap) is past
   * the quota, so the first goes past it and a second is refused until the
   * first is destroyed. */
  CUcontext first = NULL, second = NULL;
  report("cuCtxCreate", cuCtxCreate(&first, NULL, 0, dev));
  report("cuCtxCreate a second", cuCtxCreate(&second, NULL, 0, dev));
  if (first != NULL) report("cuCtxDestroy the first", cuCtxDestroy(first));
  report("cuCtxCreate after the destroy", cuCtxCreate(&second, NULL, 0, dev));
  /* A bigger device heap is more device memory for the context. */
  if (second != NULL) {
    report("cuCtxSetLimit heap 64 MiB", cuCtxSetLimit(CU_LIMIT_MALLOC_HEAP_SIZE, 64 << 20));
  }
  if (second != NULL) cuCtxDestroy(second);
  if (ctx != NULL) cuDevicePrimaryCtxRelease(dev);
  return failed;
}
