/* The ops kernels from a fatbin (sm_90 SASS + compute_90 PTX), loaded three
 * ways: cuModuleLoadFatBinary, cuModuleLoadData, and as a library
 * (cuLibraryLoadData, cuLibraryGetKernel, cuKernelGetFunction). */
#include "cu_common.h"
#include "ops_fatbin.h" /* ops_fatbin */

enum { N = 777 };

/* iota_i32 into a fresh buffer; returns the checksum of the result. */
static uint32_t iota(CUfunction f, int base, int mul) {
  static int host[N];
  CUdeviceptr d;
  int n = N;
  void *params[] = {&d, &n, &base, &mul};
  CHECK(cuMemAlloc(&d, sizeof host));
  CHECK(cuLaunchKernel(f, cu_blocks(N), 1, 1, 128, 1, 1, 0, NULL, params, NULL));
  CHECK(cuMemcpyDtoH(host, d, sizeof host));
  CHECK(cuMemFree(d));
  for (int i = 0; i < N; ++i) cu_expect(host[i] == base + i * mul, "iota_i32 result");
  return cu_fnv1a(host, sizeof host);
}

int main(void) {
  CUdevice dev;
  cu_start(&dev);

  CUmodule fat, data;
  CUfunction f_fat, f_data;
  CHECK(cuModuleLoadFatBinary(&fat, ops_fatbin));
  CHECK(cuModuleLoadData(&data, ops_fatbin));
  CHECK(cuModuleGetFunction(&f_fat, fat, "iota_i32"));
  CHECK(cuModuleGetFunction(&f_data, data, "iota_i32"));
  printf("cuModuleLoadFatBinary: iota(5, 3) checksum 0x%08x\n", iota(f_fat, 5, 3));
  printf("cuModuleLoadData: iota(5, 3) checksum 0x%08x\n", iota(f_data, 5, 3));
  printf("cuModuleLoadData: iota(-100, 7) checksum 0x%08x\n", iota(f_data, -100, 7));

  /* The kernel's attributes are the same whichever way it was loaded. */
  int v_fat, v_data;
  CHECK(cuFuncGetAttribute(&v_fat, CU_FUNC_ATTRIBUTE_BINARY_VERSION, f_fat));
  CHECK(cuFuncGetAttribute(&v_data, CU_FUNC_ATTRIBUTE_BINARY_VERSION, f_data));
  printf("binary version: %d and %d\n", v_fat, v_data);

  /* Context-independent loading: a library, its kernel, the kernel's function
   * in the current context. */
  CUlibrary lib;
  CUkernel kernel;
  CUfunction f_lib;
  CHECK(cuLibraryLoadData(&lib, ops_fatbin, NULL, NULL, 0, NULL, NULL, 0));
  CHECK(cuLibraryGetKernel(&kernel, lib, "iota_i32"));
  CHECK(cuKernelGetFunction(&f_lib, kernel));
  printf("cuLibraryLoadData: iota(5, 3) checksum 0x%08x\n", iota(f_lib, 5, 3));
  unsigned count;
  CHECK(cuLibraryGetKernelCount(&count, lib));
  printf("library kernels: %u\n", count);
  CHECK(cuLibraryUnload(lib));

  CHECK(cuModuleUnload(fat));
  CHECK(cuModuleUnload(data));
  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("fatbin_module: ok\n");
  return 0;
}
