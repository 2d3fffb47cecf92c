/* Virtual memory management: an address range reserved, two physical
 * allocations mapped into it side by side and made accessible, their
 * handles released while mapped (the memory stays), a kernel, a memset and
 * copies across the whole range, the allocation found again from an address
 * inside it, its properties and access read back, then unmapped and the
 * range freed. Each result is checked on the host. */
#include "cu_common.h" /* first: it sets _POSIX_C_SOURCE */

#include "ops_fatbin.h"

int main(void) {
  CUdevice dev;
  cu_start(&dev);
  CUmodule mod;
  CUfunction iota = cu_load_function(&mod, ops_fatbin, "iota_i32");

  const CUmemAllocationProp prop = cu_device_allocation(dev);
  size_t granularity = 0, recommended = 0;
  CHECK(cuMemGetAllocationGranularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_MINIMUM));
  CHECK(cuMemGetAllocationGranularity(&recommended, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED));
  printf("granularity: %zu, recommended %zu\n", granularity, recommended);
  const size_t chunk = granularity, total = 2 * granularity;

  /* 1. Two allocations mapped side by side, accessible, handles released. */
  CUdeviceptr va = 0;
  CUmemGenericAllocationHandle h[2];
  CHECK(cuMemAddressReserve(&va, total, 0, 0, 0));
  for (int i = 0; i < 2; ++i) {
    CHECK(cuMemCreate(&h[i], chunk, &prop, 0));
    CHECK(cuMemMap(va + i * chunk, chunk, 0, h[i], 0));
  }
  CUmemAllocationProp back;
  memset(&back, 0, sizeof back);
  CHECK(cuMemGetAllocationPropertiesFromHandle(&back, h[1]));
  printf("properties: type %d, on a device %d, this one %d\n", (int)back.type,
         back.location.type == CU_MEM_LOCATION_TYPE_DEVICE, back.location.id == dev);
  CUmemAccessDesc access = {{CU_MEM_LOCATION_TYPE_DEVICE, dev}, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
  CHECK(cuMemSetAccess(va, total, &access, 1));
  unsigned long long flags = 0;
  CUmemLocation here = {CU_MEM_LOCATION_TYPE_DEVICE, dev};
  CHECK(cuMemGetAccess(&flags, &here, va + chunk));
  printf("access from the device: %llu\n", flags);
  for (int i = 0; i < 2; ++i) CHECK(cuMemRelease(h[i])); /* mapped: the memory stays */

  /* 2. A kernel, a memset and copies across the range. */
  int n = (int)(total / sizeof(int)), zero = 0, one = 1;
  void *params[] = {&va, &n, &zero, &one};
  CHECK(cuLaunchKernel(iota, cu_blocks(n), 1, 1, 128, 1, 1, 0, NULL, params, NULL));
  cu_expect_sequence(va, n, 0, "across both allocations");
  CHECK(cuMemsetD32(va + chunk, 7, chunk / sizeof(int)));
  int edge[2] = {0, 0};
  CHECK(cuMemcpyDtoH(edge, va + chunk - sizeof(int), sizeof edge));
  printf("around the seam after the memset: %d %d\n", edge[0], edge[1]);
  printf("memory type: %u\n", cu_memory_type(va + chunk));

  /* 3. The allocation found again from an address inside it. */
  CUmemGenericAllocationHandle again = 0;
  CHECK(cuMemRetainAllocationHandle(&again, (void *)(uintptr_t)(va + chunk + 64)));
  memset(&back, 0, sizeof back);
  CHECK(cuMemGetAllocationPropertiesFromHandle(&back, again));
  printf("found again: type %d, this device %d\n", (int)back.type, back.location.id == dev);
  CHECK(cuMemRelease(again));

  CHECK(cuMemUnmap(va, total));
  CHECK(cuMemAddressFree(va, total));
  CHECK(cuModuleUnload(mod));
  printf("vmm: ok\n");
  return 0;
}
