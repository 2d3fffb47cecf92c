/* Contexts: the primary context (retain, state, set current, release), an
 * explicit context (create, push/pop, current, device, synchronize, destroy),
 * and 4 threads each with its own context, module, allocation and launches;
 * their results are printed in thread order after the joins. */
#include "cu_common.h" /* first: it sets _POSIX_C_SOURCE */

#include <pthread.h>
#include "ops_fatbin.h"

enum { THREADS = 4, N = 1000 };

struct job {
  int index;
  CUdevice dev;
  int had_context; /* whether the fresh thread had a current context */
  int last;
  uint32_t checksum;
};

static void *worker(void *arg) {
  struct job *job = arg;
  CUcontext before, ctx, current;
  CHECK(cuCtxGetCurrent(&before));
  job->had_context = before != NULL;
  CHECK(cuCtxCreate(&ctx, NULL, 0, job->dev)); /* cuCtxCreate_v4: no params */
  CHECK(cuCtxGetCurrent(&current));
  cu_expect(current == ctx, "a created context is current on its thread");
  CUmodule mod;
  CUfunction iota, add;
  CHECK(cuModuleLoadData(&mod, ops_fatbin));
  CHECK(cuModuleGetFunction(&iota, mod, "iota_i32"));
  CHECK(cuModuleGetFunction(&add, mod, "add_i32"));
  CUdeviceptr d;
  CHECK(cuMemAlloc(&d, N * sizeof(int)));
  int n = N, base = 1000 * job->index, mul = job->index + 1, v = job->index;
  void *iota_params[] = {&d, &n, &base, &mul};
  void *add_params[] = {&d, &n, &v};
  CHECK(cuLaunchKernel(iota, cu_blocks(N), 1, 1, 128, 1, 1, 0, NULL, iota_params, NULL));
  for (int i = 0; i < 10; ++i) CHECK(cuLaunchKernel(add, cu_blocks(N), 1, 1, 128, 1, 1, 0, NULL, add_params, NULL));
  int host[N];
  CHECK(cuMemcpyDtoH(host, d, sizeof host));
  for (int i = 0; i < N; ++i) cu_expect(host[i] == base + i * mul + 10 * v, "worker result");
  job->last = host[N - 1];
  job->checksum = cu_fnv1a(host, sizeof host);
  CHECK(cuMemFree(d));
  CHECK(cuModuleUnload(mod));
  CHECK(cuCtxDestroy(ctx));
  return NULL;
}

int main(void) {
  CHECK(cuInit(0));
  CUdevice dev, got;
  CHECK(cuDeviceGet(&dev, 0));

  /* Primary context. */
  CUcontext primary, current;
  unsigned flags;
  int active;
  CHECK(cuDevicePrimaryCtxRetain(&primary, dev));
  CHECK(cuDevicePrimaryCtxGetState(dev, &flags, &active));
  printf("primary context active: %d\n", active);
  CHECK(cuCtxSetCurrent(primary));
  CHECK(cuCtxGetCurrent(&current));
  printf("primary is current: %d\n", current == primary);

  /* An explicit context goes on top of the stack: [primary, created]. */
  CUcontext created, popped;
  unsigned api;
  CHECK(cuCtxCreate(&created, NULL, 0, dev));
  CHECK(cuCtxGetCurrent(&current));
  CHECK(cuCtxGetDevice(&got));
  CHECK(cuCtxGetApiVersion(created, &api));
  printf("created is current: %d, its device: %d, api version: %u\n", current == created, (int)got, api);
  CHECK(cuCtxSynchronize());
  CHECK(cuCtxPopCurrent(&popped));
  CHECK(cuCtxGetCurrent(&current));
  printf("popped the created one: %d, primary current again: %d\n", popped == created, current == primary);
  CHECK(cuCtxPushCurrent(created));
  CHECK(cuCtxGetCurrent(&current));
  printf("pushed back: %d\n", current == created);
  CHECK(cuCtxPopCurrent(&popped));
  CHECK(cuCtxDestroy(created));

  /* Threads, each with its own context. */
  pthread_t threads[THREADS];
  struct job jobs[THREADS];
  for (int i = 0; i < THREADS; ++i) {
    jobs[i] = (struct job){.index = i, .dev = dev};
    cu_expect(pthread_create(&threads[i], NULL, worker, &jobs[i]) == 0, "pthread_create");
  }
  for (int i = 0; i < THREADS; ++i) pthread_join(threads[i], NULL);
  for (int i = 0; i < THREADS; ++i)
    printf("thread %d: context on entry %d, last %d, checksum 0x%08x\n", i, jobs[i].had_context, jobs[i].last,
           jobs[i].checksum);

  CHECK(cuCtxGetCurrent(&current));
  printf("main thread still on primary: %d\n", current == primary);
  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("contexts_threads: ok\n");
  return 0;
}
