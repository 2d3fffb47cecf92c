/* Host memory a kernel reaches directly: registered host memory written
 * through its device pointer (CU_MEMHOSTREGISTER_DEVICEMAP), and managed
 * memory the host reads after a kernel wrote it. Natively both work. Through
 * hira they cannot (the device would reach the API server's memory, not the
 * program's): the device attributes that announce them (and the other
 * capabilities hira leaves out) read 0, and the first such call answers
 * CUDA_ERROR_NOT_SUPPORTED (801); scripts/gpu-check cuda expects both. */
#include "cu_common.h" /* first: it sets _POSIX_C_SOURCE */

#include <unistd.h>
#include "ops_fatbin.h"

int main(void) {
  CUdevice dev;
  cu_start(&dev);
  CUmodule mod;
  CUfunction iota;
  CHECK(cuModuleLoadData(&mod, ops_fatbin));
  CHECK(cuModuleGetFunction(&iota, mod, "iota_i32"));

  /* What the device says it offers of what hira leaves out. */
  static const CUdevice_attribute left_out[] = {
      CU_DEVICE_ATTRIBUTE_CAN_MAP_HOST_MEMORY,
      CU_DEVICE_ATTRIBUTE_MANAGED_MEMORY,
      CU_DEVICE_ATTRIBUTE_CONCURRENT_MANAGED_ACCESS,
      CU_DEVICE_ATTRIBUTE_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR_SUPPORTED,
      CU_DEVICE_ATTRIBUTE_MEMPOOL_SUPPORTED_HANDLE_TYPES,
      CU_DEVICE_ATTRIBUTE_IPC_EVENT_SUPPORTED};
  int offered = 0;
  for (size_t i = 0; i < sizeof left_out / sizeof left_out[0]; ++i) {
    int value = 0;
    CHECK(cuDeviceGetAttribute(&value, left_out[i], dev));
    offered += value != 0;
  }
  printf("capabilities hira leaves out that the device offers: %d\n", offered);

  /* Registered host memory, written by a kernel through its device pointer. */
  long page = sysconf(_SC_PAGESIZE);
  int *reg = NULL;
  cu_expect(posix_memalign((void **)&reg, (size_t)page, 1 << 20) == 0, "posix_memalign");
  memset(reg, 0, 1 << 20);
  CHECK(cuMemHostRegister(reg, 1 << 20, CU_MEMHOSTREGISTER_DEVICEMAP));
  CUdeviceptr reg_dev;
  CHECK(cuMemHostGetDevicePointer(&reg_dev, reg, 0));
  printf("memory type of registered host memory: %u\n", cu_memory_type(reg_dev));
  int n = (1 << 20) / (int)sizeof(int), base7 = 7, mul3 = 3;
  void *reg_params[] = {&reg_dev, &n, &base7, &mul3};
  CHECK(cuLaunchKernel(iota, cu_blocks(n), 1, 1, 128, 1, 1, 0, NULL, reg_params, NULL));
  CHECK(cuCtxSynchronize());
  for (int i = 0; i < n; ++i) cu_expect(reg[i] == 7 + 3 * i, "kernel wrote registered memory");
  printf("registered: reg[1]=%d reg[%d]=%d checksum 0x%08x\n", reg[1], n - 1, reg[n - 1],
         cu_fnv1a(reg, 1 << 20));
  CHECK(cuMemHostUnregister(reg));
  free(reg);

  /* Managed memory: a kernel writes, the host reads after synchronizing. */
  CUdeviceptr managed;
  int mn = 4096, base0 = -5, mul2 = 2;
  unsigned is_managed = 0;
  CHECK(cuMemAllocManaged(&managed, mn * sizeof(int), CU_MEM_ATTACH_GLOBAL));
  CHECK(cuPointerGetAttribute(&is_managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, managed));
  void *managed_params[] = {&managed, &mn, &base0, &mul2};
  CHECK(cuLaunchKernel(iota, cu_blocks(mn), 1, 1, 128, 1, 1, 0, NULL, managed_params, NULL));
  CHECK(cuCtxSynchronize());
  const int *mh = (const int *)(uintptr_t)managed;
  for (int i = 0; i < mn; ++i) cu_expect(mh[i] == -5 + 2 * i, "kernel wrote managed memory");
  printf("managed: is managed %u, [0]=%d [%d]=%d\n", is_managed, mh[0], mn - 1, mh[mn - 1]);
  CHECK(cuMemFree(managed));

  CHECK(cuModuleUnload(mod));
  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("host_mapped: ok\n");
  return 0;
}
