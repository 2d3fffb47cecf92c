/* Device and driver queries: version, device count, device 0's name, memory,
 * attributes, UUID and PCI bus id, and the error-name tables. Everything
 * printed is fixed for a given machine and driver. */
#include "cu_common.h"

static const struct {
  const char *name;
  CUdevice_attribute attr;
} attributes[] = {
    {"compute capability major", CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR},
    {"compute capability minor", CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR},
    {"multiprocessors", CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT},
    {"warp size", CU_DEVICE_ATTRIBUTE_WARP_SIZE},
    {"max threads per block", CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK},
    {"max block dim x", CU_DEVICE_ATTRIBUTE_MAX_BLOCK_DIM_X},
    {"max grid dim x", CU_DEVICE_ATTRIBUTE_MAX_GRID_DIM_X},
    {"shared memory per block", CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK},
    {"shared memory per block (opt-in)", CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN},
    {"registers per block", CU_DEVICE_ATTRIBUTE_MAX_REGISTERS_PER_BLOCK},
    {"total constant memory", CU_DEVICE_ATTRIBUTE_TOTAL_CONSTANT_MEMORY},
    {"L2 cache size", CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE},
    {"memory bus width", CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH},
    {"unified addressing", CU_DEVICE_ATTRIBUTE_UNIFIED_ADDRESSING},
    {"memory pools", CU_DEVICE_ATTRIBUTE_MEMORY_POOLS_SUPPORTED},
    {"concurrent kernels", CU_DEVICE_ATTRIBUTE_CONCURRENT_KERNELS},
    {"async engines", CU_DEVICE_ATTRIBUTE_ASYNC_ENGINE_COUNT},
};

int main(void) {
  CHECK(cuInit(0));
  int version, count;
  CHECK(cuDriverGetVersion(&version));
  printf("driver version: %d.%d\n", version / 1000, version % 1000 / 10);
  CHECK(cuDeviceGetCount(&count));
  cu_expect(count >= 1, "at least one device");
  printf("devices: %d\n", count);

  CUdevice dev;
  char name[256];
  size_t total;
  CHECK(cuDeviceGet(&dev, 0));
  CHECK(cuDeviceGetName(name, sizeof name, dev));
  CHECK(cuDeviceTotalMem(&total, dev));
  printf("device 0: %s, %zu MiB\n", name, total >> 20);
  for (size_t i = 0; i < sizeof attributes / sizeof attributes[0]; ++i) {
    int value;
    CHECK(cuDeviceGetAttribute(&value, attributes[i].attr, dev));
    printf("  %s: %d\n", attributes[i].name, value);
  }

  CUuuid uuid; /* cuDeviceGetUuid is cuDeviceGetUuid_v2 through cuda.h */
  CHECK(cuDeviceGetUuid(&uuid, dev));
  printf("  uuid: ");
  for (int i = 0; i < 16; ++i) printf("%02x%s", (unsigned char)uuid.bytes[i], i == 3 || i == 5 || i == 7 || i == 9 ? "-" : "");
  printf("\n");

  /* The bus id names the device back. */
  char bus[32];
  CUdevice again;
  CHECK(cuDeviceGetPCIBusId(bus, sizeof bus, dev));
  CHECK(cuDeviceGetByPCIBusId(&again, bus));
  printf("  pci bus id: %s (names device %d)\n", bus, (int)again);

  static const CUresult codes[] = {CUDA_SUCCESS, CUDA_ERROR_INVALID_VALUE, CUDA_ERROR_OUT_OF_MEMORY,
                                   CUDA_ERROR_STUB_LIBRARY, CUDA_ERROR_NO_DEVICE, CUDA_ERROR_INVALID_IMAGE,
                                   CUDA_ERROR_INVALID_HANDLE, CUDA_ERROR_NOT_FOUND, CUDA_ERROR_ILLEGAL_ADDRESS,
                                   CUDA_ERROR_UNKNOWN};
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; ++i) {
    const char *ename, *estr;
    CHECK(cuGetErrorName(codes[i], &ename));
    CHECK(cuGetErrorString(codes[i], &estr));
    printf("error %d: %s: %s\n", (int)codes[i], ename, estr);
  }
  printf("device_query: ok\n");
  return 0;
}
