/* cuGetProcAddress (the CUDA 12 form with symbolStatus; cuda.h maps the name
 * to cuGetProcAddress_v2): entry points resolved by name and CUDA version,
 * called through the pointers; symbols that are missing or too new. */
#include "cu_common.h"
#include "ops_fatbin.h"

/* The signatures of the versions asked for (cudaTypedefs.h's PFN_* types). */
typedef CUresult (*mem_alloc_fn)(CUdeviceptr *, size_t);                                 /* cuMemAlloc_v2 */
typedef CUresult (*launch_fn)(CUfunction, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned, unsigned,
                              CUstream, void **, void **);                               /* cuLaunchKernel */
typedef CUresult (*ctx_get_device_fn)(CUdevice *);                                        /* CUDA 2.0 */
typedef CUresult (*ctx_get_device_v2_fn)(CUdevice *, CUcontext);                          /* CUDA 13.0 */
typedef CUresult (*driver_version_fn)(int *);

static void *resolve(const char *symbol, int version) {
  void *fn = NULL;
  CUdriverProcAddressQueryResult status = (CUdriverProcAddressQueryResult)-1;
  CUresult rc = cuGetProcAddress(symbol, &fn, version, CU_GET_PROC_ADDRESS_DEFAULT, &status);
  printf("%s for CUDA %d.%d: rc %d, status %d, pointer %s\n", symbol, version / 1000, version % 1000 / 10, (int)rc,
         (int)status, fn ? "set" : "NULL");
  return rc == CUDA_SUCCESS ? fn : NULL;
}

int main(void) {
  CUdevice dev;
  CUcontext ctx = cu_start(&dev);
  CUmodule mod;
  CUfunction iota;
  CHECK(cuModuleLoadData(&mod, ops_fatbin));
  CHECK(cuModuleGetFunction(&iota, mod, "iota_i32"));

  mem_alloc_fn mem_alloc;
  launch_fn launch;
  ctx_get_device_fn get_device;
  ctx_get_device_v2_fn get_device_v2;
  driver_version_fn driver_version;
  /* Object pointers to function pointers, through memcpy (ISO C has no cast). */
  void *p;
  p = resolve("cuMemAlloc", 12000), memcpy(&mem_alloc, &p, sizeof p);
  p = resolve("cuLaunchKernel", 12000), memcpy(&launch, &p, sizeof p);
  p = resolve("cuCtxGetDevice", 12000), memcpy(&get_device, &p, sizeof p);
  p = resolve("cuCtxGetDevice", 13000), memcpy(&get_device_v2, &p, sizeof p);
  p = resolve("cuDriverGetVersion", 12000), memcpy(&driver_version, &p, sizeof p);
  cu_expect(mem_alloc && launch && get_device && get_device_v2 && driver_version, "resolved every entry point");
  resolve("cuNoSuchFunction", 12000);
  resolve("cuMemAllocAsync", 11000); /* introduced in CUDA 11.2 */

  /* Calls through the pointers. */
  CUdevice got = -1, got_v2 = -1;
  CHECK(get_device(&got));
  CHECK(get_device_v2(&got_v2, ctx));
  printf("cuCtxGetDevice through its pointers: %d and %d\n", (int)got, (int)got_v2);
  int v1, v2;
  CHECK(driver_version(&v1));
  CHECK(cuDriverGetVersion(&v2));
  printf("cuDriverGetVersion through its pointer matches: %d\n", v1 == v2);

  enum { N = 500 };
  CUdeviceptr d;
  int host[N], n = N, base = 11, mul = -2;
  CHECK(mem_alloc(&d, sizeof host));
  void *params[] = {&d, &n, &base, &mul};
  CHECK(launch(iota, cu_blocks(N), 1, 1, 128, 1, 1, 0, NULL, params, NULL));
  CHECK(cuMemcpyDtoH(host, d, sizeof host));
  for (int i = 0; i < N; ++i) cu_expect(host[i] == 11 - 2 * i, "iota through the resolved pointers");
  printf("iota through the pointers: host[%d]=%d checksum 0x%08x\n", N - 1, host[N - 1], cu_fnv1a(host, sizeof host));

  CHECK(cuMemFree(d));
  CHECK(cuModuleUnload(mod));
  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("proc_address: ok\n");
  return 0;
}
