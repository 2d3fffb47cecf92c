/* CUDA graphs: a stream captured into a graph and replayed, a graph built
 * node by node (memset, kernels with kernelParams and with an argument block,
 * a host function, a child graph), a kernel node's parameters changed in the
 * executable graph, clones and node queries, copies of pinned memory
 * captured and replayed. Each result is checked on the
 * host and printed as a checksum. */
#include "cu_common.h" /* first: it sets _POSIX_C_SOURCE */

#include "ops_fatbin.h"

enum { N = 1000, CAPTURED_ADDS = 10, REPLAYS = 5 };

static int host_calls;
static void CUDA_CB count_call(void *user_data) { ++*(int *)user_data; }

/* How many nodes of each type a graph holds. */
static void print_node_types(CUgraph g, const char *what) {
  CUgraphNode nodes[64];
  size_t count = 0;
  CHECK(cuGraphGetNodes(g, NULL, &count));
  cu_expect(count <= 64, "at most 64 nodes");
  CHECK(cuGraphGetNodes(g, nodes, &count));
  int by_type[32] = {0};
  for (size_t i = 0; i < count; ++i) {
    CUgraphNodeType type;
    CHECK(cuGraphNodeGetType(nodes[i], &type));
    if ((unsigned)type < 32) ++by_type[type];
  }
  printf("%s: %zu nodes (kernel %d, memcpy %d, memset %d, host %d, graph %d, empty %d)\n", what,
         count, by_type[CU_GRAPH_NODE_TYPE_KERNEL], by_type[CU_GRAPH_NODE_TYPE_MEMCPY],
         by_type[CU_GRAPH_NODE_TYPE_MEMSET],
         by_type[CU_GRAPH_NODE_TYPE_HOST], by_type[CU_GRAPH_NODE_TYPE_GRAPH],
         by_type[CU_GRAPH_NODE_TYPE_EMPTY]);
}

int main(void) {
  CUdevice dev;
  CUcontext ctx = cu_start(&dev);
  CUmodule mod;
  CUfunction iota = cu_load_function(&mod, ops_fatbin, "iota_i32");
  CUfunction add, accumulate;
  CHECK(cuModuleGetFunction(&add, mod, "add_i32"));
  CHECK(cuModuleGetFunction(&accumulate, mod, "accumulate_i32"));
  CUstream s;
  CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  CUdeviceptr d, d2;
  CHECK(cuMemAlloc(&d, N * sizeof(int)));
  CHECK(cuMemAlloc(&d2, N * sizeof(int)));
  int n = N, zero = 0, one = 1, v = 1;

  /* 1. Captured: d = i, then ten kernels each adding 1. */
  CUstreamCaptureStatus status;
  CHECK(cuStreamIsCapturing(s, &status));
  printf("capturing before: %d\n", (int)status);
  CHECK(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
  CHECK(cuStreamIsCapturing(s, &status));
  printf("capturing during: %d\n", (int)status);
  void *iota_params[] = {&d, &n, &zero, &one};
  void *add_params[] = {&d, &n, &v};
  CHECK(cuLaunchKernel(iota, cu_blocks(N), 1, 1, 128, 1, 1, 0, s, iota_params, NULL));
  for (int i = 0; i < CAPTURED_ADDS; ++i) {
    CHECK(cuLaunchKernel(add, cu_blocks(N), 1, 1, 128, 1, 1, 0, s, add_params, NULL));
  }
  CUgraph captured;
  CHECK(cuStreamEndCapture(s, &captured));
  CHECK(cuStreamIsCapturing(s, &status));
  printf("capturing after: %d\n", (int)status);
  print_node_types(captured, "captured graph");
  CUgraphExec captured_exec;
  CHECK(cuGraphInstantiate(&captured_exec, captured, 0));
  CHECK(cuGraphUpload(captured_exec, s));
  for (int r = 0; r < REPLAYS; ++r) CHECK(cuGraphLaunch(captured_exec, s));
  CHECK(cuStreamSynchronize(s));
  cu_expect_sequence(d, N, CAPTURED_ADDS, "captured, replayed 5 times");

  /* 2. Built: d2 = 7 (memset); d2 += 3 (kernel, an argument block); d += d2
   * (kernel); a host function; each launch adds 10 to d. */
  CUgraph built;
  CHECK(cuGraphCreate(&built, 0));
  CUDA_MEMSET_NODE_PARAMS ms;
  memset(&ms, 0, sizeof ms);
  ms.dst = d2;
  ms.value = 7;
  ms.elementSize = 4;
  ms.width = N;
  ms.height = 1;
  CUgraphNode set_node, add_node, acc_node, host_node;
  CHECK(cuGraphAddMemsetNode(&set_node, built, NULL, 0, &ms, ctx));
  struct {
    CUdeviceptr x;
    int n, v;
  } block = {d2, N, 3};
  size_t block_size = sizeof block;
  void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &block, CU_LAUNCH_PARAM_BUFFER_SIZE,
                   &block_size, CU_LAUNCH_PARAM_END};
  CUDA_KERNEL_NODE_PARAMS kp;
  memset(&kp, 0, sizeof kp);
  kp.func = add;
  kp.gridDimX = cu_blocks(N);
  kp.gridDimY = kp.gridDimZ = 1;
  kp.blockDimX = 128;
  kp.blockDimY = kp.blockDimZ = 1;
  kp.extra = extra;
  CHECK(cuGraphAddKernelNode(&add_node, built, &set_node, 1, &kp));
  void *acc_params[] = {&d, &d2, &n};
  kp.func = accumulate;
  kp.extra = NULL;
  kp.kernelParams = acc_params;
  CHECK(cuGraphAddKernelNode(&acc_node, built, &add_node, 1, &kp));
  CUDA_HOST_NODE_PARAMS hp = {count_call, &host_calls};
  CHECK(cuGraphAddHostNode(&host_node, built, &acc_node, 1, &hp));
  size_t roots = 0;
  CHECK(cuGraphGetRootNodes(built, NULL, &roots));
  printf("built graph roots: %zu\n", roots);
  print_node_types(built, "built graph");
  CUgraphExec built_exec;
  CHECK(cuGraphInstantiate(&built_exec, built, 0));
  for (int r = 0; r < 3; ++r) CHECK(cuGraphLaunch(built_exec, s));
  CHECK(cuStreamSynchronize(s));
  printf("host node calls: %d\n", host_calls);
  cu_expect_sequence(d, N, CAPTURED_ADDS + 30, "built, launched 3 times");

  /* Queries: the memset node's parameters, the kernels' names, flags. */
  CUDA_MEMSET_NODE_PARAMS got;
  CHECK(cuGraphMemsetNodeGetParams(set_node, &got));
  printf("memset node: value %u, element size %u, width %zu, same buffer %d\n", got.value,
         got.elementSize, got.width, got.dst == d2);
  const char *name = NULL;
  CHECK(cuFuncGetName(&name, accumulate));
  printf("kernel node function: %s\n", name);
  CUmodule owner;
  CHECK(cuFuncGetModule(&owner, accumulate));
  printf("its module is the one loaded: %d\n", owner == mod);
  cuuint64_t flags = 1;
  CHECK(cuGraphExecGetFlags(built_exec, &flags));
  printf("exec flags: %llu\n", (unsigned long long)flags);

  /* Disabled, the accumulate node does nothing: d stays. */
  unsigned enabled = 0;
  CHECK(cuGraphNodeSetEnabled(built_exec, acc_node, 0));
  CHECK(cuGraphNodeGetEnabled(built_exec, acc_node, &enabled));
  printf("accumulate node enabled: %u\n", enabled);
  CHECK(cuGraphLaunch(built_exec, s));
  CHECK(cuGraphNodeSetEnabled(built_exec, acc_node, 1));
  CHECK(cuStreamSynchronize(s));
  cu_expect_sequence(d, N, CAPTURED_ADDS + 30, "with the accumulate node disabled");

  /* 3. The executable graph's add now adds 20: each launch adds 27. */
  int twenty = 20;
  void *add20_params[] = {&d2, &n, &twenty};
  kp.func = add;
  kp.kernelParams = add20_params;
  CHECK(cuGraphExecKernelNodeSetParams(built_exec, add_node, &kp));
  CHECK(cuGraphLaunch(built_exec, s));
  CHECK(cuStreamSynchronize(s));
  cu_expect_sequence(d, N, CAPTURED_ADDS + 57, "after setting the node's parameters");

  /* 4. The graph itself still adds 3 (the executable's change is its own);
   * with the node changed to add 1 before instantiating, a clone adds 8. */
  void *add1_params[] = {&d2, &n, &one};
  kp.kernelParams = add1_params;
  CHECK(cuGraphKernelNodeSetParams(add_node, &kp));
  CUgraph clone;
  CHECK(cuGraphClone(&clone, built));
  CUgraphExec clone_exec;
  CHECK(cuGraphInstantiate(&clone_exec, clone, 0));
  CHECK(cuGraphLaunch(clone_exec, s));
  CHECK(cuStreamSynchronize(s));
  cu_expect_sequence(d, N, CAPTURED_ADDS + 65, "a clone of the changed graph");

  /* 5. A graph of two child graphs: the captured one (d = i + 10), then the
   * built one (+ 8). */
  CUgraph parent;
  CUgraphNode first, second;
  CHECK(cuGraphCreate(&parent, 0));
  CHECK(cuGraphAddChildGraphNode(&first, parent, NULL, 0, captured));
  CHECK(cuGraphAddChildGraphNode(&second, parent, &first, 1, built));
  print_node_types(parent, "parent graph");
  CUgraphExec parent_exec;
  CHECK(cuGraphInstantiate(&parent_exec, parent, 0));
  CHECK(cuGraphLaunch(parent_exec, s));
  CHECK(cuStreamSynchronize(s));
  cu_expect_sequence(d, N, CAPTURED_ADDS + 8, "parent graph");
  printf("host node calls: %d\n", host_calls);

  /* 6. Pinned memory in a captured graph: copied in, 1 added, copied back
   * out at each replay; the graph reads and writes the application's memory
   * as it is at each launch. */
  int *pinned;
  CHECK(cuMemAllocHost((void **)&pinned, N * sizeof(int)));
  for (int i = 0; i < N; ++i) pinned[i] = 3 * i;
  CUgraph copies;
  CHECK(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_GLOBAL));
  CHECK(cuMemcpyHtoDAsync(d2, pinned, N * sizeof(int), s));
  void *bump[] = {&d2, &n, &one};
  CHECK(cuLaunchKernel(add, cu_blocks(N), 1, 1, 128, 1, 1, 0, s, bump, NULL));
  CHECK(cuMemcpyDtoHAsync(pinned, d2, N * sizeof(int), s));
  CHECK(cuStreamEndCapture(s, &copies));
  print_node_types(copies, "graph with copies");
  CUgraphExec copies_exec;
  CHECK(cuGraphInstantiate(&copies_exec, copies, 0));
  for (int r = 0; r < 3; ++r) CHECK(cuGraphLaunch(copies_exec, s));
  CHECK(cuStreamSynchronize(s));
  int pinned_ok = 1;
  for (int i = 0; i < N; ++i) pinned_ok &= pinned[i] == 3 * i + 3;
  printf("pinned memory after 3 replays: [1] = %d, all %d\n", pinned[1], pinned_ok);
  pinned[0] = 100; /* the next replay starts from what the application wrote */
  CHECK(cuGraphLaunch(copies_exec, s));
  CHECK(cuStreamSynchronize(s));
  printf("after one more: [0] = %d, [1] = %d\n", pinned[0], pinned[1]);
  CHECK(cuGraphExecDestroy(copies_exec));
  CHECK(cuGraphDestroy(copies));
  CHECK(cuMemFreeHost(pinned));

  /* 7. Errors and capture modes. */
  CUgraphExec none;
  printf("instantiate NULL graph: error %d\n", (int)cuGraphInstantiate(&none, NULL, 0));
  CUstreamCaptureMode mode = CU_STREAM_CAPTURE_MODE_RELAXED;
  CHECK(cuThreadExchangeStreamCaptureMode(&mode));
  printf("capture mode was %d\n", (int)mode);
  CHECK(cuThreadExchangeStreamCaptureMode(&mode));
  printf("capture mode restored (it was %d)\n", (int)mode);
  CUgraph no_graph;
  printf("end capture when not capturing: error %d\n", (int)cuStreamEndCapture(s, &no_graph));

  CHECK(cuGraphExecDestroy(parent_exec));
  CHECK(cuGraphExecDestroy(clone_exec));
  CHECK(cuGraphExecDestroy(built_exec));
  CHECK(cuGraphExecDestroy(captured_exec));
  CHECK(cuGraphDestroy(parent));
  CHECK(cuGraphDestroy(clone));
  CHECK(cuGraphDestroy(built));
  CHECK(cuGraphDestroy(captured));
  CHECK(cuMemFree(d));
  CHECK(cuMemFree(d2));
  CHECK(cuStreamDestroy(s));
  CHECK(cuModuleUnload(mod));
  printf("OK\n");
  return 0;
}
