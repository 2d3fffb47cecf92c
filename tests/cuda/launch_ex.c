/* cuLaunchKernelEx (what CUDA 12+ launchers such as Triton's call): without
 * attributes, with thread-block clusters, cooperative and priority
 * attributes, with an argument block, a cluster that does not divide the
 * grid; and TMA descriptors from cuTensorMapEncodeTiled (encoded by the
 * driver from numbers: a good one, and ones it refuses). */
#include "cu_common.h" /* first: it sets _POSIX_C_SOURCE */

#include "ops_fatbin.h"

enum { N = 1024 };

static CUlaunchConfig config(unsigned grid, CUstream s, CUlaunchAttribute *attrs, unsigned n) {
  CUlaunchConfig c;
  memset(&c, 0, sizeof c);
  c.gridDimX = grid;
  c.gridDimY = c.gridDimZ = 1;
  c.blockDimX = 128;
  c.blockDimY = c.blockDimZ = 1;
  c.hStream = s;
  c.attrs = attrs;
  c.numAttrs = n;
  return c;
}

int main(void) {
  CUdevice dev;
  cu_start(&dev);
  CUmodule mod;
  CUfunction iota = cu_load_function(&mod, ops_fatbin, "iota_i32");
  CUfunction add;
  CHECK(cuModuleGetFunction(&add, mod, "add_i32"));
  CUstream s;
  CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  CUdeviceptr d;
  CHECK(cuMemAlloc(&d, N * sizeof(int)));
  int n = N, zero = 0, one = 1, two = 2;

  void *iota_params[] = {&d, &n, &zero, &one};
  CUlaunchConfig c = config(N / 128, s, NULL, 0);
  CHECK(cuLaunchKernelEx(&c, iota, iota_params, NULL));
  CHECK(cuStreamSynchronize(s));
  cu_expect_sequence(d, N, 0, "no attributes");

  CUlaunchAttribute cluster;
  memset(&cluster, 0, sizeof cluster);
  cluster.id = CU_LAUNCH_ATTRIBUTE_CLUSTER_DIMENSION;
  cluster.value.clusterDim.x = 2;
  cluster.value.clusterDim.y = 1;
  cluster.value.clusterDim.z = 1;
  void *add1[] = {&d, &n, &one};
  c = config(N / 128, s, &cluster, 1);
  CHECK(cuLaunchKernelEx(&c, add, add1, NULL));
  CHECK(cuStreamSynchronize(s));
  cu_expect_sequence(d, N, 1, "clusters of 2 blocks");

  CUlaunchAttribute two_attrs[2];
  memset(two_attrs, 0, sizeof two_attrs);
  two_attrs[0].id = CU_LAUNCH_ATTRIBUTE_COOPERATIVE;
  two_attrs[0].value.cooperative = 1;
  two_attrs[1].id = CU_LAUNCH_ATTRIBUTE_PRIORITY;
  two_attrs[1].value.priority = 0;
  void *add2[] = {&d, &n, &two};
  c = config(N / 128, s, two_attrs, 2);
  CHECK(cuLaunchKernelEx(&c, add, add2, NULL));
  CHECK(cuStreamSynchronize(s));
  cu_expect_sequence(d, N, 3, "cooperative, with a priority");

  struct {
    CUdeviceptr x;
    int n, v;
  } block = {d, N, 3};
  size_t block_size = sizeof block;
  void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &block, CU_LAUNCH_PARAM_BUFFER_SIZE,
                   &block_size, CU_LAUNCH_PARAM_END};
  c = config(N / 128, NULL, NULL, 0);
  CHECK(cuLaunchKernelEx(&c, add, NULL, extra));
  CHECK(cuCtxSynchronize());
  cu_expect_sequence(d, N, 6, "an argument block, the NULL stream");

  /* Errors the driver gives from the call. */
  c = config(7, s, &cluster, 1);
  printf("a cluster that does not divide the grid: error %d\n",
         (int)cuLaunchKernelEx(&c, add, add1, NULL));
  c = config(N / 128, s, NULL, 0);
  c.blockDimX = 4096;
  printf("a block too large: error %d\n", (int)cuLaunchKernelEx(&c, add, add1, NULL));
  printf("no configuration: error %d\n", (int)cuLaunchKernelEx(NULL, add, add1, NULL));
  CHECK(cuStreamSynchronize(s));
  cu_expect_sequence(d, N, 6, "after the refused launches");

  /* A 2D float tensor of 64 x 32 in d's memory (8 KiB), tiles of 16 x 8. */
  CUtensorMap map;
  memset(&map, 0, sizeof map);
  cuuint64_t dims[2] = {64, 32}, strides[1] = {64 * sizeof(float)};
  cuuint32_t box[2] = {16, 8}, elem[2] = {1, 1};
  CUresult r = cuTensorMapEncodeTiled(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, (void *)(uintptr_t)d,
                                      dims, strides, box, elem, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                      CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_NONE,
                                      CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  int written = 0;
  for (int i = 0; i < CU_TENSOR_MAP_NUM_QWORDS; ++i) written |= map.opaque[i] != 0;
  printf("tensor map: error %d, written %d\n", (int)r, written);
  box[0] = 512; /* more than 256 elements a side */
  printf("tensor map with a box of 512: error %d\n",
         (int)cuTensorMapEncodeTiled(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 2, (void *)(uintptr_t)d,
                                     dims, strides, box, elem, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                     CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_NONE,
                                     CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));
  cuuint64_t dims6[6] = {2, 2, 2, 2, 2, 2}, strides6[5] = {16, 32, 64, 128, 256};
  cuuint32_t box6[6] = {2, 2, 2, 2, 2, 2}, elem6[6] = {1, 1, 1, 1, 1, 1};
  printf("tensor map of rank 6: error %d\n",
         (int)cuTensorMapEncodeTiled(&map, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 6, (void *)(uintptr_t)d,
                                     dims6, strides6, box6, elem6, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                     CU_TENSOR_MAP_SWIZZLE_NONE, CU_TENSOR_MAP_L2_PROMOTION_NONE,
                                     CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE));

  CHECK(cuMemFree(d));
  CHECK(cuStreamDestroy(s));
  CHECK(cuModuleUnload(mod));
  printf("OK\n");
  return 0;
}
