/* Host functions on a stream: cuLaunchHostFunc and cuStreamAddCallback run in
 * stream order between kernels and copies; each appends to a host-side log
 * through its userData and reads what the stream's earlier copy delivered. */
#include "cu_common.h" /* first: it sets _POSIX_C_SOURCE */

#include <pthread.h>
#include "ops_fatbin.h"

enum { N = 256, STEPS = 3 };

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char log_lines[16][80];
static int log_count;

static void log_line(const char *kind, const char *label, const int *host) {
  long sum = 0;
  for (int i = 0; i < N; ++i) sum += host[i];
  pthread_mutex_lock(&log_lock);
  if (log_count < 16) snprintf(log_lines[log_count++], sizeof log_lines[0], "%s %s: sum %ld", kind, label, sum);
  pthread_mutex_unlock(&log_lock);
}

struct tag {
  const char *label;
  const int *host; /* the pinned buffer the stream copies into */
};

static void CUDA_CB host_fn(void *user_data) {
  const struct tag *t = user_data;
  log_line("host fn", t->label, t->host);
}

static void CUDA_CB stream_callback(CUstream stream, CUresult status, void *user_data) {
  (void)stream;
  const struct tag *t = user_data;
  char label[48];
  snprintf(label, sizeof label, "%s (status %d)", t->label, (int)status);
  log_line("callback", label, t->host);
}

int main(void) {
  CUdevice dev;
  cu_start(&dev);
  CUmodule mod;
  CUfunction iota, add;
  CHECK(cuModuleLoadData(&mod, ops_fatbin));
  CHECK(cuModuleGetFunction(&iota, mod, "iota_i32"));
  CHECK(cuModuleGetFunction(&add, mod, "add_i32"));

  CUstream s;
  int *host;
  CUdeviceptr d;
  CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  CHECK(cuMemAllocHost((void **)&host, N * sizeof(int)));
  memset(host, 0, N * sizeof(int));
  CHECK(cuMemAlloc(&d, N * sizeof(int)));

  /* d = i; then per step: d += 10, copy back, host fn, callback. Each log
   * line sees the copy queued before it. */
  static struct tag tags[1 + 2 * STEPS];
  static char labels[STEPS][16];
  int n = N, zero = 0, one = 1, ten = 10;
  void *iota_params[] = {&d, &n, &zero, &one};
  void *add_params[] = {&d, &n, &ten};
  tags[0] = (struct tag){"before any copy", host};
  CHECK(cuLaunchHostFunc(s, host_fn, &tags[0]));
  CHECK(cuLaunchKernel(iota, cu_blocks(N), 1, 1, 128, 1, 1, 0, s, iota_params, NULL));
  for (int step = 0; step < STEPS; ++step) {
    CHECK(cuLaunchKernel(add, cu_blocks(N), 1, 1, 128, 1, 1, 0, s, add_params, NULL));
    CHECK(cuMemcpyDtoHAsync(host, d, N * sizeof(int), s));
    struct tag *a = &tags[1 + 2 * step], *b = a + 1;
    snprintf(labels[step], sizeof labels[0], "step %d", step);
    *a = (struct tag){labels[step], host};
    *b = (struct tag){labels[step], host};
    CHECK(cuLaunchHostFunc(s, host_fn, a));
    CHECK(cuStreamAddCallback(s, stream_callback, b, 0));
  }
  CHECK(cuStreamSynchronize(s));

  pthread_mutex_lock(&log_lock);
  printf("log (%d lines):\n", log_count);
  for (int i = 0; i < log_count; ++i) printf("  %s\n", log_lines[i]);
  pthread_mutex_unlock(&log_lock);
  cu_expect(log_count == 1 + 2 * STEPS, "every host function ran");
  cu_expect(host[N - 1] == N - 1 + 10 * STEPS, "final copy");

  CHECK(cuMemFree(d));
  CHECK(cuMemFreeHost(host));
  CHECK(cuStreamDestroy(s));
  CHECK(cuModuleUnload(mod));
  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("host_callbacks: ok\n");
  return 0;
}
