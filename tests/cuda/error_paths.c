/* Calls that fail in a fixed way: each prints its CUresult and its name, and
 * the program carries on (the context stays usable, which the last launch
 * shows). Only the setup calls go through CHECK. */
#include "cu_common.h" /* first: it sets _POSIX_C_SOURCE */

#include <pthread.h>
#include "ops_fatbin.h"

static void report(const char *what, CUresult rc) {
  const char *name = NULL;
  if (cuGetErrorName(rc, &name) != CUDA_SUCCESS || !name) name = "(no name)";
  printf("%s: %d %s\n", what, (int)rc, name);
}

/* A fresh thread has no current context. */
static void *no_context_thread(void *arg) {
  CUresult *rc = arg;
  CUdevice dev;
  rc[0] = cuCtxGetDevice(&dev);
  CUcontext ctx = (CUcontext)1;
  rc[1] = cuCtxGetCurrent(&ctx);
  rc[2] = ctx == NULL ? CUDA_SUCCESS : CUDA_ERROR_UNKNOWN;
  return NULL;
}

int main(void) {
  CUdevice dev;
  cu_start(&dev);
  CUmodule mod;
  CUfunction iota, f;
  CHECK(cuModuleLoadData(&mod, ops_fatbin));
  CHECK(cuModuleGetFunction(&iota, mod, "iota_i32"));

  CUdeviceptr p;
  report("cuMemAlloc of 1 EiB", cuMemAlloc(&p, (size_t)1 << 60));
  report("cuModuleGetFunction of an unknown name", cuModuleGetFunction(&f, mod, "no_such_kernel"));
  CUdeviceptr g;
  size_t gsize;
  report("cuModuleGetGlobal of an unknown name", cuModuleGetGlobal(&g, &gsize, mod, "no_such_global"));
  /* Neither ELF nor fatbin magic (a broken ELF header could send the driver
   * reading past the buffer): binary bytes, NUL-terminated. */
  static const unsigned char garbage[] = {0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04, 0xff, 0xfe, 0x00};
  CUmodule bad;
  report("cuModuleLoadData of binary garbage", cuModuleLoadData(&bad, garbage));
  report("cuModuleLoadData of text that is not PTX", cuModuleLoadData(&bad, "this is not a module"));

  pthread_t thread;
  CUresult rc[3];
  cu_expect(pthread_create(&thread, NULL, no_context_thread, rc) == 0, "pthread_create");
  pthread_join(thread, NULL);
  report("cuCtxGetDevice on a fresh thread", rc[0]);
  report("cuCtxGetCurrent on a fresh thread", rc[1]);
  printf("the fresh thread's current context is NULL: %d\n", rc[2] == CUDA_SUCCESS);

  const char *s = "untouched";
  report("cuGetErrorString of code 99999", cuGetErrorString((CUresult)99999, &s));
  printf("its string: %s\n", s ? s : "NULL");
  CUdevice nodev;
  report("cuDeviceGet of device 9999", cuDeviceGet(&nodev, 9999));
  int value;
  report("cuDeviceGetAttribute of attribute 99999", cuDeviceGetAttribute(&value, (CUdevice_attribute)99999, dev));

  /* Events without timing have no elapsed time. */
  CUevent a, b;
  float ms;
  CHECK(cuEventCreate(&a, CU_EVENT_DISABLE_TIMING));
  CHECK(cuEventCreate(&b, CU_EVENT_DISABLE_TIMING));
  CHECK(cuEventRecord(a, NULL));
  CHECK(cuEventRecord(b, NULL));
  CHECK(cuEventSynchronize(b));
  report("cuEventElapsedTime of events without timing", cuEventElapsedTime(&ms, a, b));
  CHECK(cuEventDestroy(a));
  CHECK(cuEventDestroy(b));

  /* Too many threads per block, then a valid launch in the same context. */
  CUdeviceptr d;
  int host[64], n = 64, base = 1, mul = 1;
  CHECK(cuMemAlloc(&d, sizeof host));
  void *params[] = {&d, &n, &base, &mul};
  report("cuLaunchKernel with 2048 threads per block",
         cuLaunchKernel(iota, 1, 1, 1, 2048, 1, 1, 0, NULL, params, NULL));
  report("cuLaunchKernel with 1 MiB of dynamic shared memory",
         cuLaunchKernel(iota, 1, 1, 1, 64, 1, 1, 1 << 20, NULL, params, NULL));
  CHECK(cuLaunchKernel(iota, 1, 1, 1, 64, 1, 1, 0, NULL, params, NULL));
  CHECK(cuMemcpyDtoH(host, d, sizeof host));
  cu_expect(host[0] == 1 && host[63] == 64, "launch after the failed ones");
  printf("a valid launch afterwards: host[63]=%d\n", host[63]);
  report("cuCtxSynchronize at the end", cuCtxSynchronize());

  CHECK(cuMemFree(d));
  CHECK(cuModuleUnload(mod));
  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("error_paths: ok\n");
  return 0;
}
