/* A program as an older cuda.h builds it (CUDA 12.0-12.7; 11.x for the
 * graph calls): compiled in the configuration that declares every entry
 * point under its own name (__CUDA_API_VERSION_INTERNAL), it links the names
 * those headers mapped to: cuCtxCreate_v2, cuEventElapsedTime,
 * cuStreamGetCaptureInfo_v2, a kernel node of CUDA_KERNEL_NODE_PARAMS_v1,
 * graph edges without edge data, cuGraphInstantiate_v2 with its log, and
 * cuGetProcAddress without a status. Bound at load (-z now): through hira it
 * must load, and run, as natively. The newer names it calls are spelled out
 * (cuMemAlloc_v2), as those headers' macros spelled them. */
#define __CUDA_API_VERSION_INTERNAL 1
#include "cu_common.h" /* first: it sets _POSIX_C_SOURCE */
#include "ops_fatbin.h"

enum { N = 1024 };

static void expect_sequence(CUdeviceptr d, int base, const char *what) {
  int host[N];
  CHECK(cuMemcpyDtoH_v2(host, d, sizeof host));
  for (int i = 0; i < N; ++i) {
    if (host[i] != base + i) {
      printf("FAIL: %s: [%d] = %d, expected %d\n", what, i, host[i], base + i);
      exit(1);
    }
  }
  printf("%s: checksum %08x\n", what, cu_fnv1a(host, sizeof host));
}

int main(void) {
  CUdevice dev;
  CUcontext ctx;
  CHECK(cuInit(0));
  CHECK(cuDeviceGet(&dev, 0));
  CUuuid uuid, uuid2;
  CHECK(cuDeviceGetUuid(&uuid, dev));
  CHECK(cuDeviceGetUuid_v2(&uuid2, dev));
  printf("the device's UUID twice: %d\n", memcmp(&uuid, &uuid2, sizeof uuid) == 0);
  CHECK(cuCtxCreate_v2(&ctx, 0, dev));
  CUmodule mod;
  CUfunction iota, add;
  CHECK(cuModuleLoadData(&mod, ops_fatbin));
  CHECK(cuModuleGetFunction(&iota, mod, "iota_i32"));
  CHECK(cuModuleGetFunction(&add, mod, "add_i32"));
  CUdeviceptr x;
  CHECK(cuMemAlloc_v2(&x, N * sizeof(int)));
  CUstream s;
  CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  int n = N, zero = 0, one = 1, two = 2;
  void *iota_params[] = {&x, &n, &zero, &one};
  void *add_params[] = {&x, &n, &two};

  /* 1. A kernel timed with events (cuEventElapsedTime before 12.8). */
  CUevent start, stop;
  CHECK(cuEventCreate(&start, 0));
  CHECK(cuEventCreate(&stop, 0));
  CHECK(cuEventRecord(start, s));
  CHECK(cuLaunchKernel(iota, cu_blocks(N), 1, 1, 128, 1, 1, 0, s, iota_params, NULL));
  CHECK(cuEventRecord(stop, s));
  CHECK(cuEventSynchronize(stop));
  float ms = -1.0f;
  CHECK(cuEventElapsedTime(&ms, start, stop));
  printf("elapsed time measured: %d\n", ms >= 0.0f);
  expect_sequence(x, 0, "iota");

  /* 2. A capture, queried as 12.0-12.2 and 11.x programs did. */
  CHECK(cuStreamBeginCapture_v2(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
  CHECK(cuLaunchKernel(add, cu_blocks(N), 1, 1, 128, 1, 1, 0, s, add_params, NULL));
  CUstreamCaptureStatus status, status_v1;
  cuuint64_t id = 0, id_v1 = 1;
  CUgraph capturing = NULL;
  const CUgraphNode *deps = NULL;
  size_t num_deps = 0;
  CHECK(cuStreamGetCaptureInfo_v2(s, &status, &id, &capturing, &deps, &num_deps));
  CHECK(cuStreamGetCaptureInfo(s, &status_v1, &id_v1));
  printf("capturing: status %d, %zu dependency, a graph %d, the same capture twice %d\n",
         (int)status, num_deps, capturing != NULL, status == status_v1 && id == id_v1);
  CUgraph g;
  CHECK(cuStreamEndCapture(s, &g));

  /* 3. A kernel node as 11.x described it, an edge to it, and the graph
   * queried without edge data. */
  CUgraphNode first, second, from = NULL, to = NULL, other = NULL;
  size_t count = 1;
  CHECK(cuGraphGetRootNodes(g, &first, &count));
  CUDA_KERNEL_NODE_PARAMS_v1 kp;
  memset(&kp, 0, sizeof kp);
  kp.func = add;
  kp.gridDimX = cu_blocks(N);
  kp.gridDimY = kp.gridDimZ = 1;
  kp.blockDimX = 128;
  kp.blockDimY = kp.blockDimZ = 1;
  kp.kernelParams = add_params;
  CHECK(cuGraphAddKernelNode(&second, g, NULL, 0, &kp));
  CHECK(cuGraphAddDependencies(g, &first, &second, 1));
  count = 0;
  CHECK(cuGraphGetEdges(g, NULL, NULL, &count));
  printf("edges: %zu\n", count);
  count = 1;
  CHECK(cuGraphGetEdges(g, &from, &to, &count));
  printf("the edge: from the captured node %d, to the added one %d\n", from == first, to == second);
  count = 1;
  CHECK(cuGraphNodeGetDependencies(second, &other, &count));
  printf("the added node depends on the captured one: %d\n", count == 1 && other == first);
  count = 1;
  CHECK(cuGraphNodeGetDependentNodes(first, &other, &count));
  printf("the captured node comes before the added one: %d\n", count == 1 && other == second);
  CUgraphExec exec;
  CUgraphNode failed = NULL;
  char log[256] = {0};
  CHECK(cuGraphInstantiate_v2(&exec, g, &failed, log, sizeof log));
  printf("instantiated: a failing node %d\n", failed != NULL);
  CHECK(cuGraphLaunch(exec, s));
  CHECK(cuStreamSynchronize(s));
  expect_sequence(x, 4, "the graph");

  /* 4. Looked up as 11.3-11.8 programs do, and called. */
  void *fn = NULL;
  CHECK(cuGetProcAddress("cuEventElapsedTime", &fn, 12000, 0));
  cu_expect(fn != NULL, "cuGetProcAddress found cuEventElapsedTime for 12.0");
  ms = -1.0f;
  CHECK(((CUresult(*)(float *, CUevent, CUevent))fn)(&ms, start, stop));
  printf("through cuGetProcAddress: measured %d\n", ms >= 0.0f);

  CHECK(cuGraphExecDestroy(exec));
  CHECK(cuGraphDestroy(g));
  CHECK(cuEventDestroy_v2(start));
  CHECK(cuEventDestroy_v2(stop));
  CHECK(cuStreamDestroy_v2(s));
  CHECK(cuMemFree_v2(x));
  CHECK(cuModuleUnload(mod));
  CHECK(cuCtxDestroy_v2(ctx));
  printf("legacy_abi: ok\n");
  return 0;
}
