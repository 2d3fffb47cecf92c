/* Micro-benchmarks of the acc API: the same binary runs natively and under
 * `hira run`; bench/run_acc_bench.py runs both and reports the ratio.
 * Prints one JSON object per measurement on stdout. */
#define _POSIX_C_SOURCE 200809L
#include <acc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void check(acc_status s, const char *what) {
  if (s != ACC_SUCCESS) {
    fprintf(stderr, "acc_bench: %s failed: %d\n", what, (int)s);
    exit(1);
  }
}

int main(int argc, char **argv) {
  const int calls = argc > 1 ? atoi(argv[1]) : 20000;
  const size_t max_bytes = argc > 2 ? (size_t)atoll(argv[2]) : (size_t)64 << 20;
  acc_context ctx;
  check(acc_context_create("bench", &ctx), "context");

  /* A synchronous call that moves no data. */
  double t0 = now_s();
  for (int i = 0; i < calls; ++i) {
    if (acc_context_count() != 1) exit(1);
  }
  double t = now_s() - t0;
  printf("{\"bench\":\"sync_call\",\"calls\":%d,\"us_per_call\":%.3f}\n", calls, t / calls * 1e6);

  /* An asynchronous call (queued work), then one finish. */
  acc_buffer x, y;
  check(acc_buffer_create(ctx, 64, &x), "buffer");
  check(acc_buffer_create(ctx, 64, &y), "buffer");
  t0 = now_s();
  for (int i = 0; i < calls; ++i) acc_saxpy(ctx, 1.0f, x, y, 1);
  check(acc_finish(ctx), "finish");
  t = now_s() - t0;
  printf("{\"bench\":\"async_call\",\"calls\":%d,\"us_per_call\":%.3f}\n", calls, t / calls * 1e6);
  acc_buffer_release(x);
  acc_buffer_release(y);

  /* Transfers: write then read back, GB/s each way. */
  unsigned char *host = malloc(max_bytes);
  memset(host, 7, max_bytes);
  acc_buffer b;
  check(acc_buffer_create(ctx, max_bytes, &b), "big buffer");
  for (size_t bytes = 4096; bytes <= max_bytes; bytes *= 4) {
    const int reps = bytes <= (1 << 20) ? 200 : 10;
    t0 = now_s();
    for (int i = 0; i < reps; ++i) check(acc_buffer_write(b, 0, host, bytes), "write");
    const double tw = (now_s() - t0) / reps;
    t0 = now_s();
    for (int i = 0; i < reps; ++i) check(acc_buffer_read(b, 0, host, bytes), "read");
    const double tr = (now_s() - t0) / reps;
    printf("{\"bench\":\"transfer\",\"bytes\":%zu,\"write_gbps\":%.4f,\"read_gbps\":%.4f}\n",
           bytes, bytes / tw / 1e9, bytes / tr / 1e9);
  }
  acc_buffer_release(b);
  free(host);
  acc_context_destroy(ctx);
  return 0;
}
