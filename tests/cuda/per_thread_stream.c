/* per_thread_stream: a program built for the per-thread default stream
 * (CUDA_API_PER_THREAD_DEFAULT_STREAM, what nvcc --default-stream per-thread
 * defines), so its calls are cuda.h's _ptsz and _ptds variants: vector add
 * on stream 0 in two threads at once, with synchronous and asynchronous
 * copies, a memset, an event and stream queries on it. Each thread's stream
 * 0 is its own (their ids differ); cuGetProcAddress (which cuda.h then asks
 * for per-thread variants, as the runtime does) gives a working copy.
 * Linked with -z now: a variant a libcuda.so.1 lacks fails at load. */
#include <pthread.h>

#include "cu_common.h"
#include "vector_add_ptx.h" /* vector_add_ptx: NUL-terminated PTX */

enum { N = 4096, THREADS = 2 };

struct job {
  CUcontext ctx;
  CUfunction add;
  int seed;
  unsigned long long stream_id;
  uint32_t checksum;
};

static void *worker(void *arg) {
  struct job *j = arg;
  CHECK(cuCtxSetCurrent(j->ctx));
  static float a[THREADS][N], b[THREADS][N], c[THREADS][N];
  float *ha = a[j->seed], *hb = b[j->seed], *hc = c[j->seed];
  for (int i = 0; i < N; ++i) ha[i] = (float)(i + j->seed), hb[i] = (float)(2 * i);
  CUdeviceptr da, db, dc;
  CHECK(cuMemAlloc(&da, N * sizeof(float)));
  CHECK(cuMemAlloc(&db, N * sizeof(float)));
  CHECK(cuMemAlloc(&dc, N * sizeof(float)));
  CHECK(cuMemcpyHtoD(da, ha, N * sizeof(float)));            /* _ptds */
  CHECK(cuMemcpyHtoDAsync(db, hb, N * sizeof(float), NULL)); /* _ptsz */
  CHECK(cuMemsetD32(dc, 0, N));                              /* _ptds */
  int n = N;
  void *params[] = {&da, &db, &dc, &n};
  CHECK(cuLaunchKernel(j->add, cu_blocks(N), 1, 1, 128, 1, 1, 0, NULL, params, NULL));
  CUevent done;
  CHECK(cuEventCreate(&done, CU_EVENT_DEFAULT));
  CHECK(cuEventRecord(done, NULL));
  CHECK(cuMemcpyDtoHAsync(hc, dc, N * sizeof(float), NULL));
  CHECK(cuStreamSynchronize(NULL));
  CHECK(cuEventSynchronize(done));
  CHECK(cuStreamQuery(NULL)); /* idle once synchronized */
  CHECK(cuStreamGetId(NULL, &j->stream_id));
  for (int i = 0; i < N; ++i) cu_expect(hc[i] == ha[i] + hb[i], "c = a + b on stream 0");
  j->checksum = cu_fnv1a(hc, N * sizeof(float));
  CHECK(cuEventDestroy(done));
  CHECK(cuMemFree(da));
  CHECK(cuMemFree(db));
  CHECK(cuMemFree(dc));
  return NULL;
}

int main(void) {
  CUdevice dev;
  const CUcontext ctx = cu_start(&dev);
  CUmodule module;
  const CUfunction add = cu_load_function(&module, vector_add_ptx, "vector_add");

  struct job jobs[THREADS];
  pthread_t threads[THREADS];
  for (int i = 0; i < THREADS; ++i) {
    jobs[i] = (struct job){ctx, add, i, 0, 0};
    cu_expect(pthread_create(&threads[i], NULL, worker, &jobs[i]) == 0, "pthread_create");
  }
  for (int i = 0; i < THREADS; ++i) pthread_join(threads[i], NULL);
  for (int i = 0; i < THREADS; ++i) printf("thread %d: checksum 0x%08x\n", i, jobs[i].checksum);
  printf("each thread's stream 0 is its own: %d\n", jobs[0].stream_id != jobs[1].stream_id);

  /* As the runtime resolves the driver: per-thread variants where there are. */
  void *fn = NULL;
  CUdriverProcAddressQueryResult status;
  CHECK(cuGetProcAddress("cuMemcpyHtoD", &fn, 12000, CU_GET_PROC_ADDRESS_DEFAULT, &status));
  cu_expect(fn != NULL && status == CU_GET_PROC_ADDRESS_SUCCESS, "cuMemcpyHtoD resolved");
  CUresult (*htod)(CUdeviceptr, const void *, size_t) =
      (CUresult(*)(CUdeviceptr, const void *, size_t))fn;
  const uint32_t word = 0x5eed;
  uint32_t back = 0;
  CUdeviceptr d;
  CHECK(cuMemAlloc(&d, sizeof word));
  CHECK(htod(d, &word, sizeof word));
  CHECK(cuMemcpyDtoH(&back, d, sizeof back));
  printf("cuMemcpyHtoD from cuGetProcAddress copies: %d\n", back == word);
  CHECK(cuMemFree(d));
  CHECK(cuModuleUnload(module));
  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("per_thread_stream: ok\n");
  return 0;
}
