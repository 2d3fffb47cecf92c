/* acc_demo: exercises every libacc function from several threads at once and
 * prints a deterministic report, so two runs (native or remoted) can be
 * compared byte for byte.
 *
 * Usage: acc_demo [THREADS] [N]   (defaults: 4 threads, N = 4096) */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acc.h"

#define MAX_THREADS 64
#define RUN_STEPS 5

/* Growable text buffer: each thread writes its report here, and main prints
 * the reports in thread order so the output doesn't depend on scheduling. */
typedef struct text {
  char *data;
  size_t len, cap;
} text;

static void text_printf(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void text_printf(text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if (t->len + (size_t)n + 1 > t->cap) {
    size_t cap = t->cap ? t->cap : 256;
    while (t->len + (size_t)n + 1 > cap) cap *= 2;
    char *p = realloc(t->data, cap);
    if (p == NULL) abort(); /* a demo; nothing sensible to do */
    t->data = p;
    t->cap = cap;
  }
  va_start(ap, fmt);
  vsnprintf(t->data + t->len, t->cap - t->len, fmt, ap);
  va_end(ap);
  t->len += (size_t)n;
}

typedef struct worker_arg {
  int t;
  size_t n;
  text out;
  bool failed;
} worker_arg;

/* Filled in by the progress callback on the context's worker thread; read by
 * our thread only after acc_run has returned. */
typedef struct run_state {
  int seen[RUN_STEPS];
  int count;
  bool bad_total;
} run_state;

static void on_progress(int step, int total, void *user_data) {
  run_state *s = user_data;
  if (total != RUN_STEPS) s->bad_total = true;
  if (s->count < RUN_STEPS) s->seen[s->count] = step;
  s->count++;
}

/* Logs a call's status and flags the thread as failed if it is not the one
 * expected. Evaluates to true when the status matched. */
#define CHECK(w, call, expected) check((w), #call, (call), (expected))

static bool check(worker_arg *w, const char *what, acc_status got, acc_status expected) {
  if (got == expected) return true;
  text_printf(&w->out, "  UNEXPECTED: %s returned %d, expected %d\n", what, (int)got,
              (int)expected);
  w->failed = true;
  return false;
}

static void *worker_main(void *arg) {
  worker_arg *w = arg;
  const int t = w->t;
  const size_t n = w->n;
  const size_t bytes = n * sizeof(float);
  text *out = &w->out;
  acc_context ctx = NULL;
  acc_buffer x = NULL, y = NULL;
  acc_stats stats;
  float *hx = malloc(bytes), *hy = malloc(bytes);

  text_printf(out, "thread %d:\n", t);
  if (hx == NULL || hy == NULL) {
    text_printf(out, "  out of host memory\n");
    w->failed = true;
    goto out;
  }

  char want_name[32];
  snprintf(want_name, sizeof want_name, "ctx-%d", t);
  if (!CHECK(w, acc_context_create(want_name, &ctx), ACC_SUCCESS)) goto out;

  /* Size query first, then the copy: the usual two-call pattern. */
  size_t name_len = 0;
  CHECK(w, acc_context_name(ctx, NULL, 0, &name_len), ACC_SUCCESS);
  char *name = malloc(name_len + 1);
  if (name != NULL && CHECK(w, acc_context_name(ctx, name, name_len + 1, NULL), ACC_SUCCESS)) {
    text_printf(out, "  name: %s (len %zu)\n", name, name_len);
    if (strcmp(name, want_name) != 0) check(w, "name matches", ACC_ERR_INVALID_VALUE, ACC_SUCCESS);
  }
  free(name);

  if (!CHECK(w, acc_buffer_create(ctx, bytes, &x), ACC_SUCCESS)) goto out;
  if (!CHECK(w, acc_buffer_create(ctx, bytes, &y), ACC_SUCCESS)) goto out;
  for (size_t i = 0; i < n; i++) {
    hx[i] = (float)i * 0.5f + (float)t;
    hy[i] = (float)t - (float)i * 0.25f;
  }
  CHECK(w, acc_buffer_write(x, 0, hx, bytes), ACC_SUCCESS);
  CHECK(w, acc_buffer_write(y, 0, hy, bytes), ACC_SUCCESS);

  /* y = a*x + y on the device, then read it back. */
  const float a = 2.0f + (float)t;
  CHECK(w, acc_saxpy(ctx, a, x, y, n), ACC_SUCCESS);
  CHECK(w, acc_finish(ctx), ACC_SUCCESS);
  memset(hy, 0, bytes);
  CHECK(w, acc_buffer_read(y, 0, hy, bytes), ACC_SUCCESS);
  double checksum = 0.0;
  for (size_t i = 0; i < n; i++) checksum += hy[i];
  text_printf(out, "  saxpy a=%.1f checksum=%.6f\n", a, checksum);
  text_printf(out, "  y[0]=%.6f y[%zu]=%.6f y[%zu]=%.6f\n", hy[0], n / 2, hy[n / 2], n - 1,
              hy[n - 1]);
  for (size_t i = 0; i < n; i++) {
    /* Same float arithmetic as the library, so the match is exact. */
    float expect = a * hx[i] + ((float)t - (float)i * 0.25f);
    if (hy[i] != expect) {
      text_printf(out, "  UNEXPECTED: y[%zu]=%.6f, expected %.6f\n", i, hy[i], expect);
      w->failed = true;
      break;
    }
  }

  double sum = 0.0;
  CHECK(w, acc_sum(ctx, hy, n, &sum), ACC_SUCCESS);
  text_printf(out, "  acc_sum=%.6f\n", sum);
  if (sum != checksum) check(w, "acc_sum matches checksum", ACC_ERR_INVALID_VALUE, ACC_SUCCESS);

  run_state state = {.count = 0};
  CHECK(w, acc_run(ctx, RUN_STEPS, on_progress, &state), ACC_SUCCESS);
  text_printf(out, "  steps:");
  for (int i = 0; i < state.count && i < RUN_STEPS; i++) text_printf(out, " %d", state.seen[i]);
  text_printf(out, "\n");
  if (state.count != RUN_STEPS || state.bad_total) {
    check(w, "progress callback count", ACC_ERR_INVALID_VALUE, ACC_SUCCESS);
  }
  CHECK(w, acc_sleep(ctx, 1), ACC_SUCCESS);

  /* Deferred error: n runs past the end, but saxpy only queues the work; the
   * error surfaces at acc_finish. */
  CHECK(w, acc_saxpy(ctx, 1.0f, x, y, n * 2), ACC_SUCCESS);
  acc_status st = acc_finish(ctx);
  text_printf(out, "  deferred error: acc_finish=%d\n", (int)st);
  check(w, "acc_finish after bad saxpy", st, ACC_ERR_INVALID_VALUE);
  CHECK(w, acc_finish(ctx), ACC_SUCCESS); /* the error was cleared */

  /* Immediate error: a read starting past the end is rejected at once. */
  float scratch = 0.0f;
  st = acc_buffer_read(y, bytes + sizeof(float), &scratch, sizeof scratch);
  text_printf(out, "  immediate error: acc_buffer_read=%d\n", (int)st);
  check(w, "acc_buffer_read past end", st, ACC_ERR_INVALID_VALUE);

  if (CHECK(w, acc_context_stats(ctx, &stats), ACC_SUCCESS)) {
    text_printf(out, "  stats: bytes_allocated=%llu buffers=%u kernels_run=%u\n",
                (unsigned long long)stats.bytes_allocated, (unsigned)stats.buffers,
                (unsigned)stats.kernels_run);
  }

out:
  if (x != NULL) CHECK(w, acc_buffer_release(x), ACC_SUCCESS);
  if (y != NULL) CHECK(w, acc_buffer_release(y), ACC_SUCCESS);
  if (ctx != NULL && CHECK(w, acc_context_stats(ctx, &stats), ACC_SUCCESS)) {
    text_printf(out, "  after release: bytes_allocated=%llu buffers=%u\n",
                (unsigned long long)stats.bytes_allocated, (unsigned)stats.buffers);
  }
  if (ctx != NULL) CHECK(w, acc_context_destroy(ctx), ACC_SUCCESS);
  free(hx);
  free(hy);
  return NULL;
}

/* Parses a positive decimal argument no larger than max; 0 on error. */
static size_t parse_arg(const char *s, size_t max) {
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v == 0 || v > max) return 0;
  return (size_t)v;
}

int main(int argc, char **argv) {
  size_t threads = 4, n = 4096;
  if (argc > 3 || (argc > 1 && (threads = parse_arg(argv[1], MAX_THREADS)) == 0) ||
      (argc > 2 && (n = parse_arg(argv[2], (1u << 30) / sizeof(float) / 2)) == 0)) {
    fprintf(stderr, "usage: %s [THREADS (1..%d)] [N (>= 1)]\n", argv[0], MAX_THREADS);
    return 1;
  }

  int major = 0, minor = 0;
  bool failed = acc_get_version(&major, &minor) != ACC_SUCCESS;

  worker_arg args[MAX_THREADS];
  pthread_t tids[MAX_THREADS];
  for (size_t i = 0; i < threads; i++) {
    args[i] = (worker_arg){.t = (int)i, .n = n};
    if (pthread_create(&tids[i], NULL, worker_main, &args[i]) != 0) {
      fprintf(stderr, "pthread_create failed\n");
      return 1;
    }
  }
  for (size_t i = 0; i < threads; i++) pthread_join(tids[i], NULL);

  for (size_t i = 0; i < threads; i++) {
    fwrite(args[i].out.data, 1, args[i].out.len, stdout);
    failed |= args[i].failed;
    free(args[i].out.data);
  }
  int live = acc_context_count();
  printf("contexts alive: %d\n", live);
  printf("version: %d.%d\n", major, minor);
  if (live != 0) failed = true;
  printf("%s\n", failed ? "FAILED" : "OK");
  return failed ? 1 : 0;
}
