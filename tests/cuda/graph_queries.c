/* Graphs taken apart: the edges, dependencies and dependents of a graph
 * built node by node (two kernels, a child graph, event record and wait
 * nodes), the child graph node's own graph, event nodes' events, a node found
 * in a clone, kernel-node attributes, instantiation with parameters (uploaded
 * on a stream), an executable graph's event and child graph changed,
 * memcpy nodes between device memory and pinned host memory, and a capture
 * into a graph of the program's own. The graphs' results are checked on the
 * host. */
#include "cu_common.h" /* first: it sets _POSIX_C_SOURCE */
#include "ops_fatbin.h"

enum { N = 2048 };

/* The nodes the program made, by name, so that what the driver returns can
 * be printed as names. */
static CUgraphNode known[5];
static const char *const known_names[5] = {"iota", "child", "record", "wait", "accumulate"};

/* Host nodes count their calls here. */
static int calls[2];
static void CUDA_CB count_call(void *counter) { ++*(int *)counter; }

static const char *name_of(CUgraphNode node) {
  for (int i = 0; i < 5; ++i) {
    if (node == known[i]) return known_names[i];
  }
  return node == NULL ? "NULL" : "unknown";
}

static void print_nodes(const char *what, const CUgraphNode *nodes, size_t count) {
  printf("%s (%zu):", what, count);
  for (size_t i = 0; i < count; ++i) printf(" %s", name_of(nodes[i]));
  printf("\n");
}

static CUDA_KERNEL_NODE_PARAMS kernel_node(CUfunction f, void **params) {
  CUDA_KERNEL_NODE_PARAMS kp;
  memset(&kp, 0, sizeof kp);
  kp.func = f;
  kp.gridDimX = cu_blocks(N);
  kp.gridDimY = kp.gridDimZ = 1;
  kp.blockDimX = 128;
  kp.blockDimY = kp.blockDimZ = 1;
  kp.kernelParams = params;
  return kp;
}

/* A graph of one memset of the N ints at y to `value`. */
static CUgraph memset_graph(CUcontext ctx, CUdeviceptr y, unsigned value) {
  CUgraph g;
  CUgraphNode node;
  CUDA_MEMSET_NODE_PARAMS ms;
  memset(&ms, 0, sizeof ms);
  ms.dst = y;
  ms.value = value;
  ms.elementSize = 4;
  ms.width = N;
  ms.height = 1;
  CHECK(cuGraphCreate(&g, 0));
  CHECK(cuGraphAddMemsetNode(&node, g, NULL, 0, &ms, ctx));
  return g;
}

int main(void) {
  CUdevice dev;
  CUcontext ctx = cu_start(&dev);
  CUmodule mod;
  CUfunction iota = cu_load_function(&mod, ops_fatbin, "iota_i32");
  CUfunction accumulate;
  CHECK(cuModuleGetFunction(&accumulate, mod, "accumulate_i32"));
  CUdeviceptr x, y;
  CHECK(cuMemAlloc(&x, N * sizeof(int)));
  CHECK(cuMemAlloc(&y, N * sizeof(int)));
  int n = N, zero = 0, one = 1;
  CUevent recorded, other;
  CHECK(cuEventCreate(&recorded, CU_EVENT_DISABLE_TIMING));
  CHECK(cuEventCreate(&other, CU_EVENT_DISABLE_TIMING));

  /* x = i; y = 7 (a child graph); an event recorded after the iota; a wait
   * for an event never recorded; then x += y. */
  CUgraph g, sub = memset_graph(ctx, y, 7);
  CHECK(cuGraphCreate(&g, 0));
  void *iota_params[] = {&x, &n, &zero, &one};
  void *acc_params[] = {&x, &y, &n};
  CUDA_KERNEL_NODE_PARAMS kp = kernel_node(iota, iota_params);
  CHECK(cuGraphAddKernelNode(&known[0], g, NULL, 0, &kp));
  CHECK(cuGraphAddChildGraphNode(&known[1], g, NULL, 0, sub));
  CHECK(cuGraphAddEventRecordNode(&known[2], g, &known[0], 1, recorded));
  CHECK(cuGraphAddEventWaitNode(&known[3], g, NULL, 0, other));
  CUgraphNode before_acc[] = {known[0], known[1], known[3]};
  kp = kernel_node(accumulate, acc_params);
  CHECK(cuGraphAddKernelNode(&known[4], g, before_acc, 3, &kp));

  /* 1. Edges, dependencies, dependents: as the driver orders them. */
  size_t count = 0;
  CHECK(cuGraphGetEdges(g, NULL, NULL, NULL, &count));
  printf("edges: %zu\n", count);
  CUgraphNode from[8], to[8];
  CUgraphEdgeData edge_data[8];
  count = 8;
  CHECK(cuGraphGetEdges(g, from, to, edge_data, &count));
  for (size_t i = 0; i < count; ++i) {
    printf("edge %s -> %s (type %d)\n", name_of(from[i]), name_of(to[i]), (int)edge_data[i].type);
  }
  CUgraphNode nodes[8];
  count = 8;
  CHECK(cuGraphNodeGetDependencies(known[4], nodes, NULL, &count));
  print_nodes("accumulate depends on", nodes, count);
  count = 8;
  CHECK(cuGraphNodeGetDependentNodes(known[0], nodes, NULL, &count));
  print_nodes("iota comes before", nodes, count);

  /* 2. The child graph node's graph, and the event nodes' events. */
  CUgraph inner;
  CUgraphNodeType type;
  CHECK(cuGraphChildGraphNodeGetGraph(known[1], &inner));
  count = 8;
  CHECK(cuGraphGetNodes(inner, nodes, &count));
  CHECK(cuGraphNodeGetType(nodes[0], &type));
  printf("the child graph: %zu node(s), the first a memset: %d\n", count,
         type == CU_GRAPH_NODE_TYPE_MEMSET);
  CUevent ev = NULL;
  CHECK(cuGraphEventRecordNodeGetEvent(known[2], &ev));
  printf("the record node's event: %d\n", ev == recorded);
  CHECK(cuGraphEventRecordNodeSetEvent(known[2], other));
  CHECK(cuGraphEventRecordNodeGetEvent(known[2], &ev));
  printf("set to the other: %d\n", ev == other);
  CHECK(cuGraphEventRecordNodeSetEvent(known[2], recorded));
  CHECK(cuGraphEventWaitNodeGetEvent(known[3], &ev));
  printf("the wait node's event: %d\n", ev == other);
  CHECK(cuGraphEventWaitNodeSetEvent(known[3], other));

  /* 3. A node found in a clone. */
  CUgraph clone;
  CUgraphNode in_clone = NULL;
  CHECK(cuGraphClone(&clone, g));
  CHECK(cuGraphNodeFindInClone(&in_clone, known[4], clone));
  CHECK(cuGraphNodeGetType(in_clone, &type));
  printf("accumulate in the clone: a kernel %d, another node %d\n",
         type == CU_GRAPH_NODE_TYPE_KERNEL, in_clone != known[4] && in_clone != NULL);
  count = 8;
  CHECK(cuGraphNodeGetDependencies(in_clone, nodes, NULL, &count));
  printf("its dependencies in the clone: %zu\n", count);
  CHECK(cuGraphDestroy(clone));

  /* 4. Kernel-node attributes: a priority set, read and copied. */
  int least = 0, greatest = 0;
  CHECK(cuCtxGetStreamPriorityRange(&least, &greatest));
  CUkernelNodeAttrValue value, back;
  memset(&value, 0, sizeof value);
  value.priority = greatest;
  CHECK(cuGraphKernelNodeSetAttribute(known[0], CU_LAUNCH_ATTRIBUTE_PRIORITY, &value));
  memset(&back, 0, sizeof back);
  CHECK(cuGraphKernelNodeGetAttribute(known[0], CU_LAUNCH_ATTRIBUTE_PRIORITY, &back));
  printf("iota's priority is the greatest: %d\n", back.priority == greatest);
  CHECK(cuGraphKernelNodeCopyAttributes(known[4], known[0]));
  memset(&back, 0, sizeof back);
  CHECK(cuGraphKernelNodeGetAttribute(known[4], CU_LAUNCH_ATTRIBUTE_PRIORITY, &back));
  printf("copied to accumulate: %d\n", back.priority == greatest);

  /* A kernel node's parameters read back, one changed, read again, and
   * set back. */
  CUDA_KERNEL_NODE_PARAMS got;
  CHECK(cuGraphKernelNodeGetParams(known[0], &got));
  printf("iota's node: the function %d, %u blocks of %u, x %d, n %d, base %d, step %d\n",
         got.func == iota, got.gridDimX, got.blockDimX, *(CUdeviceptr *)got.kernelParams[0] == x,
         *(int *)got.kernelParams[1], *(int *)got.kernelParams[2], *(int *)got.kernelParams[3]);
  int two = 2;
  void *changed[] = {&x, &n, &two, &one};
  got.kernelParams = changed;
  CHECK(cuGraphKernelNodeSetParams(known[0], &got));
  CHECK(cuGraphKernelNodeGetParams(known[0], &got));
  printf("its base after a change: %d\n", *(int *)got.kernelParams[2]);
  got.kernelParams = iota_params;
  CHECK(cuGraphKernelNodeSetParams(known[0], &got));

  /* 5. Instantiated with parameters (uploaded on a stream), launched; then
   * its record node's event and its child graph changed, launched again. */
  CUstream s;
  CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  CUDA_GRAPH_INSTANTIATE_PARAMS ip;
  memset(&ip, 0, sizeof ip);
  ip.flags = CUDA_GRAPH_INSTANTIATE_FLAG_UPLOAD;
  ip.hUploadStream = s;
  ip.hErrNode_out = known[0];
  CUgraphExec exec;
  CHECK(cuGraphInstantiateWithParams(&exec, g, &ip));
  printf("instantiated: result %d, a failing node %d\n", (int)ip.result_out,
         ip.hErrNode_out != NULL);
  CHECK(cuGraphLaunch(exec, s));
  CHECK(cuStreamSynchronize(s));
  cu_expect_sequence(x, N, 7, "the graph");
  printf("its event completed: %d\n", cuEventQuery(recorded) == CUDA_SUCCESS);
  CUgraph nine = memset_graph(ctx, y, 9);
  CHECK(cuGraphExecChildGraphNodeSetParams(exec, known[1], nine));
  CHECK(cuGraphExecEventRecordNodeSetEvent(exec, known[2], other));
  CHECK(cuGraphExecEventWaitNodeSetEvent(exec, known[3], recorded));
  CHECK(cuGraphLaunch(exec, s));
  CHECK(cuStreamSynchronize(s));
  cu_expect_sequence(x, N, 9, "the graph with another child");
  printf("the other event completed: %d\n", cuEventQuery(other) == CUDA_SUCCESS);

  /* 6. Memcpy nodes: device to device, then device to pinned host memory;
   * every launch copies again, and the executable graph's second node is
   * pointed at another source. */
  CUgraph copies;
  CUgraphNode to_y, to_host;
  int *pinned = NULL;
  CHECK(cuGraphCreate(&copies, 0));
  CHECK(cuMemAllocHost((void **)&pinned, N * sizeof(int)));
  CUDA_MEMCPY3D cp;
  memset(&cp, 0, sizeof cp);
  cp.srcMemoryType = cp.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  cp.srcDevice = x;
  cp.dstDevice = y;
  cp.WidthInBytes = N * sizeof(int);
  cp.Height = cp.Depth = 1;
  CHECK(cuGraphAddMemcpyNode(&to_y, copies, NULL, 0, &cp, ctx));
  cp.srcDevice = y;
  cp.dstMemoryType = CU_MEMORYTYPE_HOST;
  cp.dstHost = pinned;
  CHECK(cuGraphAddMemcpyNode(&to_host, copies, &to_y, 1, &cp, ctx));
  /* A host node after them, pointed at the second counter before
   * instantiation and back at the first in the executable graph. */
  CUgraphNode counter;
  CUDA_HOST_NODE_PARAMS hp = {count_call, &calls[0]};
  CHECK(cuGraphAddHostNode(&counter, copies, &to_host, 1, &hp));
  hp.userData = &calls[1];
  CHECK(cuGraphHostNodeSetParams(counter, &hp));
  CUgraphExec copy_exec;
  CHECK(cuGraphInstantiate(&copy_exec, copies, 0));
  memset(pinned, 0, N * sizeof(int));
  CHECK(cuGraphLaunch(copy_exec, s));
  CHECK(cuStreamSynchronize(s));
  for (int i = 0; i < N; ++i) cu_expect(pinned[i] == 9 + i, "copied by the memcpy nodes");
  printf("memcpy nodes: pinned[1] = %d, checksum %08x\n", pinned[1],
         cu_fnv1a(pinned, N * sizeof(int)));
  int hundred = 100;
  void *iota100[] = {&x, &n, &hundred, &one};
  CHECK(cuLaunchKernel(iota, cu_blocks(N), 1, 1, 128, 1, 1, 0, s, iota100, NULL));
  cp.srcDevice = x; /* straight from x now */
  CHECK(cuGraphExecMemcpyNodeSetParams(copy_exec, to_host, &cp, ctx));
  hp.userData = &calls[0];
  CHECK(cuGraphExecHostNodeSetParams(copy_exec, counter, &hp));
  CHECK(cuGraphLaunch(copy_exec, s));
  CHECK(cuStreamSynchronize(s));
  for (int i = 0; i < N; ++i) cu_expect(pinned[i] == 100 + i, "copied from the new source");
  printf("after the source changed: pinned[1] = %d; host node calls %d and %d\n", pinned[1],
         calls[0], calls[1]);
  CHECK(cuGraphExecDestroy(copy_exec));
  CHECK(cuGraphDestroy(copies));
  CHECK(cuMemFreeHost(pinned));

  /* 7. A capture into a graph of the program's own, after one of its
   * nodes; the capture's dependencies set again to what they are. */
  CUfunction add;
  CHECK(cuModuleGetFunction(&add, mod, "add_i32"));
  int five = 5;
  void *add_params[] = {&x, &n, &five};
  CUgraph own, captured = NULL;
  CUgraphNode own_first;
  CHECK(cuGraphCreate(&own, 0));
  kp = kernel_node(iota, iota_params);
  CHECK(cuGraphAddKernelNode(&own_first, own, NULL, 0, &kp));
  CHECK(cuStreamBeginCaptureToGraph(s, own, &own_first, NULL, 1, CU_STREAM_CAPTURE_MODE_GLOBAL));
  CHECK(cuLaunchKernel(add, cu_blocks(N), 1, 1, 128, 1, 1, 0, s, add_params, NULL));
  CUstreamCaptureStatus capture_status;
  const CUgraphNode *deps = NULL;
  size_t num_deps = 0;
  CHECK(cuStreamGetCaptureInfo(s, &capture_status, NULL, NULL, &deps, NULL, &num_deps));
  CUgraphNodeType last_type = CU_GRAPH_NODE_TYPE_EMPTY;
  if (num_deps == 1) CHECK(cuGraphNodeGetType(deps[0], &last_type));
  printf("capturing into its own graph: status %d, %zu dependency, a kernel %d\n",
         (int)capture_status, num_deps, last_type == CU_GRAPH_NODE_TYPE_KERNEL);
  CUgraphNode last = num_deps == 1 ? deps[0] : NULL;
  CHECK(cuStreamUpdateCaptureDependencies(s, &last, NULL, 1, CU_STREAM_SET_CAPTURE_DEPENDENCIES));
  CHECK(cuLaunchKernel(add, cu_blocks(N), 1, 1, 128, 1, 1, 0, s, add_params, NULL));
  CHECK(cuStreamEndCapture(s, &captured));
  count = 0;
  CHECK(cuGraphGetNodes(own, NULL, &count));
  printf("captured into its own graph %d: %zu nodes\n", captured == own, count);
  CUgraphExec own_exec;
  CHECK(cuGraphInstantiate(&own_exec, own, 0));
  CHECK(cuGraphLaunch(own_exec, s));
  CHECK(cuStreamSynchronize(s));
  cu_expect_sequence(x, N, 10, "the graph captured into");
  CHECK(cuGraphExecDestroy(own_exec));
  CHECK(cuGraphDestroy(own));

  CHECK(cuGraphExecDestroy(exec));
  CHECK(cuGraphDestroy(nine));
  CHECK(cuGraphDestroy(g));
  CHECK(cuGraphDestroy(sub));
  CHECK(cuStreamDestroy(s));
  CHECK(cuEventDestroy(recorded));
  CHECK(cuEventDestroy(other));
  CHECK(cuMemFree(x));
  CHECK(cuMemFree(y));
  CHECK(cuModuleUnload(mod));
  printf("graph_queries: ok\n");
  return 0;
}
