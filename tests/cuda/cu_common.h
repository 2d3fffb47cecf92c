/* Shared helpers for hira's CUDA driver API test programs.
 *
 * Each program is run natively and through hira's drop-in libcuda.so.1, and
 * the two stdout streams (and exit codes) are compared byte for byte. So
 * stdout carries only values that are the same on every run: results as
 * checksums and sample values, never pointers, timings or file paths.
 *
 * CHECK(cuCall(...)) prints "cuCall: error N" and exits 1 unless the call
 * returns CUDA_SUCCESS. Against the toolkit's stub libcuda (every call
 * returns CUDA_ERROR_STUB_LIBRARY) every program stops at its first call,
 * cuInit, with "cuInit: error 34".
 */
#ifndef HIRA_CU_COMMON_H
#define HIRA_CU_COMMON_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <cuda.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define CU_UNUSED __attribute__((unused))
/* Line-buffer stdout: what was printed before a crash still gets compared. */
__attribute__((constructor)) static void cu_line_buffer_stdout(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
}
#else
#define CU_UNUSED
#endif

/* `call` is the stringified call: print only the function's name, so the
 * line does not depend on argument spellings. */
static CU_UNUSED void cu_check(const char *call, CUresult rc) {
  if (rc == CUDA_SUCCESS) return;
  printf("%.*s: error %d\n", (int)strcspn(call, " ("), call, (int)rc);
  fflush(stdout);
  exit(1);
}
#define CHECK(call) cu_check(#call, (call))

/* Print "FAIL: what" and exit 1 unless cond holds. */
static CU_UNUSED void cu_expect(int cond, const char *what) {
  if (cond) return;
  printf("FAIL: %s\n", what);
  fflush(stdout);
  exit(1);
}

/* FNV-1a over bytes: results are printed as this checksum. */
static CU_UNUSED uint32_t cu_fnv1a(const void *data, size_t size) {
  const unsigned char *p = data;
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < size; ++i) h = (h ^ p[i]) * 16777619u;
  return h;
}

/* cuInit, device 0 and its primary context made current: the common start. */
static CU_UNUSED CUcontext cu_start(CUdevice *dev) {
  CUcontext ctx;
  CHECK(cuInit(0));
  CHECK(cuDeviceGet(dev, 0));
  CHECK(cuDevicePrimaryCtxRetain(&ctx, *dev));
  CHECK(cuCtxSetCurrent(ctx));
  return ctx;
}

/* Function `name` of a module loaded from `image` (PTX, cubin or fatbin). */
static CU_UNUSED CUfunction cu_load_function(CUmodule *module, const void *image,
                                             const char *name) {
  CUfunction f;
  CHECK(cuModuleLoadData(module, image));
  CHECK(cuModuleGetFunction(&f, *module, name));
  return f;
}

/* Blocks of 128 threads covering n elements. */
static CU_UNUSED unsigned cu_blocks(int n) { return (unsigned)((n + 127) / 128); }

/* Checks that the n ints at d are base, base + 1, ... and prints "what:
 * [0] = .., checksum ..", or "FAIL: ..." and exits 1. */
static CU_UNUSED void cu_expect_sequence(CUdeviceptr d, int n, int base, const char *what) {
  int *host = malloc((size_t)n * sizeof(int));
  cu_expect(host != NULL, "malloc");
  CHECK(cuMemcpyDtoH(host, d, (size_t)n * sizeof(int)));
  for (int i = 0; i < n; ++i) {
    if (host[i] != base + i) {
      printf("FAIL: %s: [%d] = %d, expected %d\n", what, i, host[i], base + i);
      exit(1);
    }
  }
  printf("%s: [0] = %d, [%d] = %d, checksum %08x\n", what, host[0], n - 1, host[n - 1],
         cu_fnv1a(host, (size_t)n * sizeof(int)));
  free(host);
}

/* Properties of a physical allocation on device dev (cuMemCreate). */
static CU_UNUSED CUmemAllocationProp cu_device_allocation(CUdevice dev) {
  CUmemAllocationProp prop;
  memset(&prop, 0, sizeof prop);
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = dev;
  return prop;
}

/* CU_POINTER_ATTRIBUTE_MEMORY_TYPE of p (CU_MEMORYTYPE_DEVICE, ...). */
static CU_UNUSED unsigned cu_memory_type(CUdeviceptr p) {
  unsigned type = 0;
  CHECK(cuPointerGetAttribute(&type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p));
  return type;
}

#endif
