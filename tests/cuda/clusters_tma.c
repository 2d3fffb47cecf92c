/* Hopper features beside cuLaunchKernelEx (launch_ex): cluster occupancy
 * (the largest cluster a launch may use, and how many clusters of two fit
 * at once), and TMA descriptors for convolutions (cuTensorMapEncodeIm2col,
 * a good one and one the driver refuses) pointed at another address
 * (cuTensorMapReplaceAddress). The driver encodes the maps: their bytes are
 * compared as a checksum, the address field aside. */
#include "cu_common.h" /* first: it sets _POSIX_C_SOURCE */
#include "ops_fatbin.h"

int main(void) {
  CUdevice dev;
  cu_start(&dev);
  CUmodule mod;
  CUfunction iota = cu_load_function(&mod, ops_fatbin, "iota_i32");

  /* 1. Cluster occupancy. */
  CUlaunchConfig c;
  memset(&c, 0, sizeof c);
  c.gridDimX = 64;
  c.gridDimY = c.gridDimZ = 1;
  c.blockDimX = 128;
  c.blockDimY = c.blockDimZ = 1;
  int size = 0, clusters = 0;
  CHECK(cuOccupancyMaxPotentialClusterSize(&size, iota, &c));
  CUlaunchAttribute pair;
  memset(&pair, 0, sizeof pair);
  pair.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
  pair.value.clusterDim.x = 2;
  pair.value.clusterDim.y = pair.value.clusterDim.z = 1;
  c.attrs = &pair;
  c.numAttrs = 1;
  CHECK(cuOccupancyMaxActiveClusters(&clusters, iota, &c));
  printf("largest cluster: %d blocks; clusters of two at once: %d\n", size, clusters);

  /* 2. An im2col map of an NHWC tensor of floats (8 x 16 x 16 x 32), then
   * pointed at the second half of the same allocation. */
  CUdeviceptr d;
  const size_t bytes = (size_t)8 * 16 * 16 * 32 * sizeof(float);
  CHECK(cuMemAlloc(&d, 2 * bytes));
  CUtensorMap map;
  memset(&map, 0, sizeof map);
  cuuint64_t dims[4] = {32, 16, 16, 8};
  cuuint64_t strides[3] = {32 * sizeof(float), 32 * 16 * sizeof(float),
                           32 * 16 * 16 * sizeof(float)};
  int lower[2] = {-1, -1}, upper[2] = {-1, -1};
  cuuint32_t elem[4] = {1, 1, 1, 1};
  CUresult r = cuTensorMapEncodeIm2col(
      &map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 4, (void *)(uintptr_t)d, dims, strides, lower, upper,
      32, 64, elem, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
      CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  int written = 0;
  for (int i = 0; i < CU_TENSOR_MAP_NUM_QWORDS; ++i) written |= map.opaque[i] != 0;
  printf("im2col map: error %d, written %d\n", (int)r, written);
  CUtensorMap moved = map;
  CHECK(cuTensorMapReplaceAddress(&moved, (void *)(uintptr_t)(d + bytes)));
  int changed = 0;
  for (int i = 0; i < CU_TENSOR_MAP_NUM_QWORDS; ++i) changed += moved.opaque[i] != map.opaque[i];
  printf("pointed elsewhere: %d of %d words changed\n", changed, CU_TENSOR_MAP_NUM_QWORDS);
  printf("im2col map of rank 2: error %d\n",
         (int)cuTensorMapEncodeIm2col(
             &map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, (void *)(uintptr_t)d, dims, strides, lower,
             upper, 32, 64, elem, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_NONE,
             CU_TENSOR_MAP_L2_PROMOTION_NONE, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));

  CHECK(cuMemFree(d));
  CHECK(cuModuleUnload(mod));
  printf("clusters_tma: ok\n");
  return 0;
}
