/* Two streams (one with the greatest priority) ordered by an event, pinned
 * host memory from cuMemAllocHost and cuMemHostAlloc, async copies and
 * memsets, kernels on streams; then the synchronous memsets and DtoD copy. */
#include "cu_common.h"
#include "ops_fatbin.h"

enum { N = 4096 };

static void launch(CUfunction f, CUstream s, void **params) {
  CHECK(cuLaunchKernel(f, cu_blocks(N), 1, 1, 128, 1, 1, 0, s, params, NULL));
}

int main(void) {
  CUdevice dev;
  cu_start(&dev);
  CUmodule mod;
  CUfunction add, accumulate;
  CHECK(cuModuleLoadData(&mod, ops_fatbin));
  CHECK(cuModuleGetFunction(&add, mod, "add_i32"));
  CHECK(cuModuleGetFunction(&accumulate, mod, "accumulate_i32"));

  int least, greatest, prio;
  CUstream s1, s2;
  CHECK(cuCtxGetStreamPriorityRange(&least, &greatest));
  CHECK(cuStreamCreate(&s1, CU_STREAM_NON_BLOCKING));
  CHECK(cuStreamCreateWithPriority(&s2, CU_STREAM_NON_BLOCKING, greatest));
  CHECK(cuStreamGetPriority(s2, &prio));
  printf("priorities: least %d greatest %d, s2 has %d\n", least, greatest, prio);

  int *h1, *h2;
  CHECK(cuMemAllocHost((void **)&h1, N * sizeof(int)));
  CHECK(cuMemHostAlloc((void **)&h2, N * sizeof(int), CU_MEMHOSTALLOC_PORTABLE));
  for (int i = 0; i < N; ++i) h1[i] = i, h2[i] = -1;
  CUdeviceptr d1, d2;
  CHECK(cuMemAlloc(&d1, N * sizeof(int)));
  CHECK(cuMemAlloc(&d2, N * sizeof(int)));

  CUevent start, e1, e2;
  CHECK(cuEventCreate(&start, CU_EVENT_DEFAULT));
  CHECK(cuEventCreate(&e1, CU_EVENT_DEFAULT));
  CHECK(cuEventCreate(&e2, CU_EVENT_DEFAULT));

  /* s1: d1 = i + 5, then e1. s2 meanwhile sets d2's bytes to 1, waits for
   * e1, adds d1: d2 = 0x01010101 + i + 5, copies back, records e2. */
  int n = N, five = 5;
  void *add_params[] = {&d1, &n, &five};
  void *acc_params[] = {&d2, &d1, &n};
  CHECK(cuEventRecord(start, s1));
  CHECK(cuMemcpyHtoDAsync(d1, h1, N * sizeof(int), s1));
  launch(add, s1, add_params);
  CHECK(cuEventRecord(e1, s1));
  CHECK(cuMemsetD8Async(d2, 0x01, N * sizeof(int), s2));
  CHECK(cuStreamWaitEvent(s2, e1, 0));
  launch(accumulate, s2, acc_params);
  CHECK(cuMemcpyDtoHAsync(h2, d2, N * sizeof(int), s2));
  CHECK(cuEventRecord(e2, s2));
  CHECK(cuEventSynchronize(e2));
  CHECK(cuStreamSynchronize(s1));
  printf("after sync: cuEventQuery(e2) %d, cuStreamQuery(s1) %d, cuStreamQuery(s2) %d\n", (int)cuEventQuery(e2),
         (int)cuStreamQuery(s1), (int)cuStreamQuery(s2));
  float ms = -1.0f;
  CHECK(cuEventElapsedTime(&ms, start, e2));
  printf("elapsed time >= 0: %d\n", ms >= 0.0f);
  for (int i = 0; i < N; ++i) cu_expect(h2[i] == 0x01010101 + i + 5, "two-stream result");
  printf("streams: h2[0]=0x%08x h2[%d]=0x%08x checksum 0x%08x\n", (unsigned)h2[0], N - 1, (unsigned)h2[N - 1],
         cu_fnv1a(h2, N * sizeof(int)));

  /* Synchronous: d1 = 0xdeadbeef with its first 16 bytes 0xab, copied to d2. */
  CHECK(cuMemsetD32(d1, 0xdeadbeefu, N));
  CHECK(cuMemsetD8(d1, 0xab, 16));
  CHECK(cuMemcpyDtoD(d2, d1, N * sizeof(int)));
  CHECK(cuMemcpyDtoH(h1, d2, N * sizeof(int)));
  for (int i = 0; i < N; ++i) cu_expect((unsigned)h1[i] == (i < 4 ? 0xababababu : 0xdeadbeefu), "memset pattern");
  /* Async D32 memset on s1, then the copy on the legacy stream. */
  CHECK(cuMemsetD32Async(d2, 42, N / 2, s1));
  CHECK(cuStreamSynchronize(s1));
  CHECK(cuMemcpyDtoH(h1, d2, N * sizeof(int)));
  printf("memsets: h1[0]=%d h1[%d]=0x%08x checksum 0x%08x\n", h1[0], N - 1, (unsigned)h1[N - 1],
         cu_fnv1a(h1, N * sizeof(int)));

  CHECK(cuEventDestroy(start));
  CHECK(cuEventDestroy(e1));
  CHECK(cuEventDestroy(e2));
  CHECK(cuStreamDestroy(s1));
  CHECK(cuStreamDestroy(s2));
  CHECK(cuMemFree(d1));
  CHECK(cuMemFree(d2));
  CHECK(cuMemFreeHost(h1));
  CHECK(cuMemFreeHost(h2));
  CHECK(cuModuleUnload(mod));
  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("streams_events: ok\n");
  return 0;
}
