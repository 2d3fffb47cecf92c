/* Contexts and streams beyond the basics: the device queries old programs
 * make, a stream's device and context, stream memory operations ordering two
 * streams (each waits for a value the other writes), stream attributes set,
 * read and copied, events recorded and waited for on a whole context, copies
 * between two contexts, and pointer attributes one at a time and several at
 * once. Each result is checked on the host. */
#include "cu_common.h" /* first: it sets _POSIX_C_SOURCE */
#include "ops_fatbin.h"

enum { N = 4096 };

static void launch(CUfunction f, CUstream s, void **params) {
  CHECK(cuLaunchKernel(f, cu_blocks(N), 1, 1, 128, 1, 1, 0, s, params, NULL));
}

int main(void) {
  CUdevice dev;
  CUcontext ctx = cu_start(&dev);
  CUmodule mod;
  CUfunction iota = cu_load_function(&mod, ops_fatbin, "iota_i32");
  CUfunction add;
  CHECK(cuModuleGetFunction(&add, mod, "add_i32"));

  /* 1. Deprecated device queries agree with the attributes. */
  int major = 0, minor = 0, attr_major = 0, attr_minor = 0, warp = 0;
  CUdevprop prop;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  CHECK(cuDeviceComputeCapability(&major, &minor, dev));
  CHECK(cuDeviceGetProperties(&prop, dev));
#pragma GCC diagnostic pop
  CHECK(cuDeviceGetAttribute(&attr_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev));
  CHECK(cuDeviceGetAttribute(&attr_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev));
  CHECK(cuDeviceGetAttribute(&warp, CU_DEVICE_ATTRIBUTE_WARP_SIZE, dev));
  printf("compute capability %d.%d, as the attributes say: %d\n", major, minor,
         major == attr_major && minor == attr_minor);
  printf("properties: %d threads a block, SIMD width %d (warp %d)\n", prop.maxThreadsPerBlock,
         prop.SIMDWidth, warp);
  size_t linear = 0;
  CHECK(cuDeviceGetTexture1DLinearMaxWidth(&linear, CU_AD_FORMAT_FLOAT, 1, dev));
  printf("1D linear texture of floats: up to %zu elements\n", linear);
  int affinity = -1;
  CHECK(cuDeviceGetExecAffinitySupport(&affinity, CU_EXEC_AFFINITY_TYPE_SM_COUNT, dev));
  CUexecAffinityParam sms;
  memset(&sms, 0, sizeof sms);
  CHECK(cuCtxGetExecAffinity(&sms, CU_EXEC_AFFINITY_TYPE_SM_COUNT));
  int all_sms = 0;
  CHECK(cuDeviceGetAttribute(&all_sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, dev));
  printf("execution affinity: supported %d, the context has every multiprocessor %d\n", affinity,
         sms.param.smCount.val == (unsigned)all_sms);
  CUatomicOperation ops[2] = {CU_ATOMIC_OPERATION_INTEGER_ADD, CU_ATOMIC_OPERATION_CAS};
  unsigned caps[2] = {0, 0};
  printf("host atomic capabilities: %d", (int)cuDeviceGetHostAtomicCapabilities(caps, ops, 2, dev));
  printf(" (%u %u)\n", caps[0], caps[1]);
  cuuint64_t graph_mem = 1;
  CHECK(cuDeviceGetGraphMemAttribute(dev, CU_GRAPH_MEM_ATTR_USED_MEM_CURRENT, &graph_mem));
  printf("graph memory in use: %llu\n", (unsigned long long)graph_mem);
  CHECK(cuDeviceGraphMemTrim(dev));

  /* 2. A stream's device and context (no green context). */
  CUstream a, b;
  CHECK(cuStreamCreate(&a, CU_STREAM_NON_BLOCKING));
  CHECK(cuStreamCreate(&b, CU_STREAM_NON_BLOCKING));
  CUdevice stream_dev = -1;
  CUcontext stream_ctx = NULL;
  CUgreenCtx green = (CUgreenCtx)&stream_ctx;
  CHECK(cuStreamGetDevice(a, &stream_dev));
  CHECK(cuStreamGetCtx_v2(a, &stream_ctx, &green));
  printf("stream a: on the device %d, in the current context %d, green context %d\n",
         stream_dev == dev, stream_ctx == ctx, green != NULL);

  /* 3. Stream memory operations: b's kernel waits for the flag a writes
   * after its own kernel; a then waits for the word b writes after it. */
  CUdeviceptr x, flags;
  CHECK(cuMemAlloc(&x, N * sizeof(int)));
  CHECK(cuMemAlloc(&flags, 16));
  CHECK(cuMemsetD8(flags, 0, 16));
  int n = N, zero = 0, one = 1, five = 5;
  void *iota_params[] = {&x, &n, &zero, &one};
  void *add_params[] = {&x, &n, &five};
  const cuuint64_t word = 0x100000002ull;
  CHECK(cuStreamWaitValue32(b, flags, 1, CU_STREAM_WAIT_VALUE_GEQ));
  launch(add, b, add_params);
  CHECK(cuStreamWriteValue64(b, flags + 8, word, CU_STREAM_WRITE_VALUE_DEFAULT));
  launch(iota, a, iota_params);
  CHECK(cuStreamWriteValue32(a, flags, 1, CU_STREAM_WRITE_VALUE_DEFAULT));
  CHECK(cuStreamWaitValue64(a, flags + 8, word, CU_STREAM_WAIT_VALUE_EQ));
  CHECK(cuStreamSynchronize(a));
  cu_expect_sequence(x, N, 5, "ordered by stream memory operations");
  /* The same in batches: a writes a word and a barrier, b waits for it. */
  CUstreamBatchMemOpParams write_ops[2], wait_op;
  memset(write_ops, 0, sizeof write_ops);
  memset(&wait_op, 0, sizeof wait_op);
  write_ops[0].writeValue.operation = CU_STREAM_MEM_OP_WRITE_VALUE_32;
  write_ops[0].writeValue.address = flags + 4;
  write_ops[0].writeValue.value = 3;
  write_ops[1].memoryBarrier.operation = CU_STREAM_MEM_OP_BARRIER;
  write_ops[1].memoryBarrier.flags = CU_STREAM_MEMORY_BARRIER_TYPE_SYS;
  wait_op.waitValue.operation = CU_STREAM_MEM_OP_WAIT_VALUE_32;
  wait_op.waitValue.address = flags + 4;
  wait_op.waitValue.value = 3;
  wait_op.waitValue.flags = CU_STREAM_WAIT_VALUE_EQ;
  CHECK(cuStreamBatchMemOp(b, 1, &wait_op, 0));
  CHECK(cuStreamBatchMemOp(a, 2, write_ops, 0));
  CHECK(cuStreamSynchronize(b));
  unsigned words[2] = {0, 0};
  CHECK(cuMemcpyDtoH(words, flags, sizeof words));
  printf("after the batches: %u %u\n", words[0], words[1]);

  /* 4. Stream attributes: set on a, read back, copied to b. */
  CUstreamAttrValue value, back;
  memset(&value, 0, sizeof value);
  value.syncPolicy = CU_SYNC_POLICY_BLOCKING_SYNC;
  CHECK(cuStreamSetAttribute(a, CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY, &value));
  memset(&back, 0, sizeof back);
  CHECK(cuStreamGetAttribute(a, CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY, &back));
  printf("stream a's synchronization policy: %d\n", (int)back.syncPolicy);
  CHECK(cuStreamCopyAttributes(b, a));
  memset(&back, 0, sizeof back);
  CHECK(cuStreamGetAttribute(b, CU_LAUNCH_ATTRIBUTE_SYNCHRONIZATION_POLICY, &back));
  printf("copied to stream b: %d\n", (int)back.syncPolicy);
  memset(&back, 0, sizeof back);
  CHECK(cuStreamGetAttribute(b, CU_LAUNCH_ATTRIBUTE_PRIORITY, &back));
  printf("stream b's priority: %d\n", back.priority);

  /* 5. Events on the whole context (the answers printed: compared). */
  CUevent done;
  CHECK(cuEventCreate(&done, CU_EVENT_DISABLE_TIMING));
  launch(add, a, add_params);
  printf("cuCtxRecordEvent: %d\n", (int)cuCtxRecordEvent(ctx, done));
  CHECK(cuEventSynchronize(done));
  printf("cuCtxWaitEvent: %d\n", (int)cuCtxWaitEvent(ctx, done));
  CHECK(cuCtxSynchronize_v2(ctx));
  cu_expect_sequence(x, N, 10, "after the context's synchronization");
  printf("cuCtxResetPersistingL2Cache: %d\n", (int)cuCtxResetPersistingL2Cache());
  /* The driver's logs (their text depends on the calls before: only the
   * answers are compared). */
  CUlogIterator log_at = 0;
  char logs[1024];
  size_t log_size = sizeof logs;
  printf("cuLogsCurrent: %d\n", (int)cuLogsCurrent(&log_at, 0));
  printf("cuLogsDumpToMemory: %d\n", (int)cuLogsDumpToMemory(&log_at, logs, &log_size, 0));
  CUsharedconfig bank;
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  CHECK(cuCtxGetSharedMemConfig(&bank));
  printf("shared memory banks: %d, set again: %d\n", (int)bank, (int)cuCtxSetSharedMemConfig(bank));
#pragma GCC diagnostic pop

  /* 6. Copies between two contexts of the device. */
  CUcontext other;
  CUdeviceptr y;
  CHECK(cuCtxCreate(&other, NULL, 0, dev));
  CHECK(cuMemAlloc(&y, N * sizeof(int)));
  CHECK(cuMemcpyPeer(y, other, x, ctx, N * sizeof(int)));
  cu_expect_sequence(y, N, 10, "copied to the second context");
  CHECK(cuCtxSetCurrent(ctx));
  CHECK(cuMemsetD32(x, 0, N));
  CHECK(cuMemcpyPeerAsync(x, ctx, y, other, N * sizeof(int), a));
  CHECK(cuStreamSynchronize(a));
  cu_expect_sequence(x, N, 10, "copied back asynchronously");
  CUDA_MEMCPY3D_PEER peer;
  memset(&peer, 0, sizeof peer);
  peer.srcMemoryType = peer.dstMemoryType = CU_MEMORYTYPE_DEVICE;
  peer.srcDevice = x + 16 * sizeof(int);
  peer.srcContext = ctx;
  peer.dstDevice = y;
  peer.dstContext = other;
  peer.WidthInBytes = 64 * sizeof(int);
  peer.Height = peer.Depth = 1;
  CHECK(cuMemcpy3DPeer(&peer));
  int moved[64];
  CHECK(cuMemcpyDtoH(moved, y, sizeof moved));
  printf("a 3D copy between contexts: [0] = %d, [63] = %d\n", moved[0], moved[63]);

  /* 7. Pointer attributes: the context of memory, several at once, and
   * memory the driver does not know (no error: values read as zero). */
  CUcontext owner = NULL;
  CHECK(cuPointerGetAttribute(&owner, CU_POINTER_ATTRIBUTE_CONTEXT, y));
  printf("y belongs to the second context: %d\n", owner == other);
  CUpointer_attribute which[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE, CU_POINTER_ATTRIBUTE_CONTEXT,
                                 CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                                 CU_POINTER_ATTRIBUTE_RANGE_SIZE};
  unsigned type = 0;
  CUcontext of_x = NULL;
  int ordinal = -1;
  size_t range = 0;
  void *data[] = {&type, &of_x, &ordinal, &range};
  CHECK(cuPointerGetAttributes(4, which, data, x + 64));
  printf("x + 64: memory type %u, the first context %d, device %d, range %zu bytes\n", type,
         of_x == ctx, ordinal, range);
  unsigned sync_memops = 1;
  CHECK(cuPointerSetAttribute(&sync_memops, CU_POINTER_ATTRIBUTE_SYNC_MEMOPS, x));
  sync_memops = 0;
  CHECK(cuPointerGetAttribute(&sync_memops, CU_POINTER_ATTRIBUTE_SYNC_MEMOPS, x));
  printf("x's synchronous memory operations: %u\n", sync_memops);
  int local = 0;
  type = 77;
  of_x = (CUcontext)&local;
  CHECK(cuPointerGetAttributes(2, which, data, (CUdeviceptr)(uintptr_t)&local));
  printf("host memory of its own: memory type %u, context %d\n", type, of_x != NULL);

  CHECK(cuCtxSetCurrent(other));
  CHECK(cuMemFree(y));
  CHECK(cuCtxDestroy(other));
  CHECK(cuCtxSetCurrent(ctx));
  CHECK(cuEventDestroy(done));
  CHECK(cuMemFree(x));
  CHECK(cuMemFree(flags));
  CHECK(cuStreamDestroy(a));
  CHECK(cuStreamDestroy(b));
  CHECK(cuModuleUnload(mod));
  printf("stream_ops: ok\n");
  return 0;
}
