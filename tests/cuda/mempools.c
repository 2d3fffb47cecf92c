/* Stream-ordered memory: the device's default pool and a pool of the
 * program's own (attributes, access, trimming, made the device's current
 * pool), allocations from both used by kernels and copies and freed in
 * stream order; a stream capture queried while it runs; a graph node
 * destroyed before the graph is instantiated, and the executable graph
 * updated. Each result is checked on the host. */
#include "cu_common.h" /* first: it sets _POSIX_C_SOURCE */
#include "ops_fatbin.h"

enum { N = 4096 };

static size_t node_count(CUgraph g) {
  size_t count = 0;
  CHECK(cuGraphGetNodes(g, NULL, &count));
  return count;
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
  int n = N, zero = 0, one = 1, seven = 7;

  /* 1. The device's default pool: attributes, an allocation in stream order. */
  CUmemoryPool def, cur;
  CHECK(cuDeviceGetDefaultMemPool(&def, dev));
  CHECK(cuDeviceGetMemPool(&cur, dev));
  printf("the current pool is the default one: %d\n", cur == def);
  cuuint64_t threshold = 64u << 20, back = 0;
  CHECK(cuMemPoolSetAttribute(def, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &threshold));
  CHECK(cuMemPoolGetAttribute(def, CU_MEMPOOL_ATTR_RELEASE_THRESHOLD, &back));
  printf("release threshold: %llu\n", (unsigned long long)back);
  int reuse = -1;
  CHECK(cuMemPoolGetAttribute(def, CU_MEMPOOL_ATTR_REUSE_ALLOW_OPPORTUNISTIC, &reuse));
  printf("opportunistic reuse: %d\n", reuse);
  CUdeviceptr a;
  CHECK(cuMemAllocAsync(&a, N * sizeof(int), s));
  void *iota_a[] = {&a, &n, &zero, &one};
  CHECK(cuLaunchKernel(iota, cu_blocks(N), 1, 1, 128, 1, 1, 0, s, iota_a, NULL));
  CHECK(cuStreamSynchronize(s));
  cu_expect_sequence(a, N, 0, "from the default pool");
  cuuint64_t used = 0;
  CHECK(cuMemPoolGetAttribute(def, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used));
  printf("the default pool's use covers the allocation: %d\n", used >= N * sizeof(int));
  CHECK(cuMemFreeAsync(a, s));
  CHECK(cuStreamSynchronize(s));

  /* 2. A pool of the program's own. */
  CUmemPoolProps props;
  memset(&props, 0, sizeof props);
  props.allocType = CU_MEM_ALLOCATION_TYPE_PINNED;
  props.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  props.location.id = dev;
  CUmemoryPool pool;
  CHECK(cuMemPoolCreate(&pool, &props));
  CUmemLocation here = {CU_MEM_LOCATION_TYPE_DEVICE, dev};
  CUmemAccess_flags flags;
  CHECK(cuMemPoolGetAccess(&flags, pool, &here));
  printf("its device's access: %d\n", (int)flags);
  /* What the driver says to its own device's access being set (printed:
   * the answer itself is compared). */
  CUmemAccessDesc desc = {here, CU_MEM_ACCESS_FLAGS_PROT_READWRITE};
  printf("its device's access set: %d\n", (int)cuMemPoolSetAccess(pool, &desc, 1));
  CUdeviceptr b, c;
  CHECK(cuMemAllocFromPoolAsync(&b, N * sizeof(int), pool, s));
  CHECK(cuMemAllocFromPoolAsync(&c, N * sizeof(int), pool, s));
  void *iota_b[] = {&b, &n, &zero, &one};
  void *add_c[] = {&c, &n, &seven};
  CHECK(cuLaunchKernel(iota, cu_blocks(N), 1, 1, 128, 1, 1, 0, s, iota_b, NULL));
  CHECK(cuMemcpyDtoDAsync(c, b, N * sizeof(int), s));
  CHECK(cuLaunchKernel(add, cu_blocks(N), 1, 1, 128, 1, 1, 0, s, add_c, NULL));
  CHECK(cuStreamSynchronize(s));
  cu_expect_sequence(c, N, 7, "from a pool of its own");
  CHECK(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used));
  printf("its pool's use: %llu\n", (unsigned long long)used);
  CHECK(cuMemFreeAsync(b, s));
  CHECK(cuMemFreeAsync(c, s));
  CHECK(cuStreamSynchronize(s));
  CHECK(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used));
  printf("its pool's use after the frees: %llu\n", (unsigned long long)used);
  CHECK(cuMemPoolTrimTo(pool, 0));
  /* As the device's current pool, cuMemAllocAsync takes from it. */
  CHECK(cuDeviceSetMemPool(dev, pool));
  CHECK(cuDeviceGetMemPool(&cur, dev));
  printf("the current pool is its own: %d\n", cur == pool);
  CHECK(cuMemAllocAsync(&a, N * sizeof(int), s));
  CHECK(cuStreamSynchronize(s));
  CHECK(cuMemPoolGetAttribute(pool, CU_MEMPOOL_ATTR_USED_MEM_CURRENT, &used));
  printf("cuMemAllocAsync took from it: %d\n", used >= N * sizeof(int));
  CHECK(cuMemFreeAsync(a, s));
  CHECK(cuStreamSynchronize(s));
  CHECK(cuDeviceSetMemPool(dev, def));
  CHECK(cuMemPoolDestroy(pool));
  /* A pool whose memory other processes could import is not this test's
   * (through hira it is refused): a pool's bad attribute is. */
  printf("an attribute that does not exist: %d\n",
         (int)cuMemPoolGetAttribute(def, (CUmemPool_attribute)999, &used));

  /* 3. A capture, queried before, at its start and after a kernel. */
  CUdeviceptr d;
  CHECK(cuMemAlloc(&d, N * sizeof(int)));
  CUstreamCaptureStatus status;
  cuuint64_t id = 0;
  CUgraph reported = NULL;
  const CUgraphNode *deps = NULL;
  const CUgraphEdgeData *edges = NULL;
  size_t ndeps = 99;
  CHECK(cuStreamGetCaptureInfo(s, &status, &id, &reported, &deps, &edges, &ndeps));
  printf("capture before: status %d\n", (int)status);
  CHECK(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
  CHECK(cuStreamGetCaptureInfo(s, &status, &id, &reported, &deps, &edges, &ndeps));
  printf("capture started: status %d, an id %d, a graph %d, dependencies %zu\n", (int)status,
         id != 0, reported != NULL, ndeps);
  void *iota_d[] = {&d, &n, &seven, &one};
  CHECK(cuLaunchKernel(iota, cu_blocks(N), 1, 1, 128, 1, 1, 0, s, iota_d, NULL));
  CHECK(cuStreamGetCaptureInfo(s, &status, &id, &reported, &deps, &edges, &ndeps));
  CUgraphNodeType type = CU_GRAPH_NODE_TYPE_EMPTY;
  if (ndeps == 1) CHECK(cuGraphNodeGetType(deps[0], &type));
  printf("after a kernel: dependencies %zu, the first a kernel %d\n", ndeps,
         type == CU_GRAPH_NODE_TYPE_KERNEL);
  CUgraph g;
  CHECK(cuStreamEndCapture(s, &g));
  printf("the captured graph is the one reported: %d, nodes %zu\n", g == reported, node_count(g));

  /* 4. Two empty nodes added, the second destroyed, the graph replayed. */
  CUgraphNode e1, e2;
  CHECK(cuGraphAddEmptyNode(&e1, g, NULL, 0));
  CHECK(cuGraphAddEmptyNode(&e2, g, &e1, 1));
  printf("nodes with two empty ones: %zu\n", node_count(g));
  CHECK(cuGraphDestroyNode(e2));
  printf("nodes after destroying one: %zu\n", node_count(g));
  CUgraphExec exec;
  CHECK(cuGraphInstantiate(&exec, g, 0));
  /* Updated from its own graph (the same shape), then from an empty one. */
  CUgraphExecUpdateResultInfo info;
  CHECK(cuGraphExecUpdate(exec, g, &info));
  printf("updated from its graph: result %d\n", (int)info.result);
  CUgraph empty;
  CHECK(cuGraphCreate(&empty, 0));
  const CUresult update = cuGraphExecUpdate(exec, empty, &info);
  printf("updated from an empty graph: %d, result %d, a node blamed %d\n", (int)update,
         (int)info.result, info.errorNode != NULL);
  CHECK(cuGraphDestroy(empty));
  CHECK(cuMemsetD32(d, 0, N));
  CHECK(cuGraphLaunch(exec, s));
  CHECK(cuStreamSynchronize(s));
  cu_expect_sequence(d, N, 7, "the captured kernel replayed");
  CHECK(cuGraphExecDestroy(exec));
  CHECK(cuGraphDestroy(g));
  CHECK(cuMemFree(d));
  CHECK(cuStreamDestroy(s));
  CHECK(cuModuleUnload(mod));
  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("mempools: ok\n");
  return 0;
}
