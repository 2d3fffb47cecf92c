/* libacc: a small "accelerator" library used to demonstrate and test hira.
 *
 * Each context owns one worker thread that drains a FIFO queue of work items,
 * the way a device drains a command queue. Every enqueued item gets a ticket
 * (a sequence number); callers that must wait for work simply wait until the
 * worker's completed count reaches their ticket, which works for "wait for
 * this item" and "wait for everything queued so far" alike. */
#define _POSIX_C_SOURCE 200809L

#include "acc.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ACC_VERSION_MAJOR 1
#define ACC_VERSION_MINOR 2

/* Magic numbers catch stale or foreign handles where that is cheap. They are
 * cleared on destroy/release, but reading freed memory is still undefined, so
 * this is a debugging aid, not a guarantee. */
#define CTX_MAGIC 0x41434343u /* "ACCC" */
#define BUF_MAGIC 0x41434342u /* "ACCB" */

#define NAME_MAX_LEN 63
#define BUFFER_MAX_SIZE ((size_t)1 << 30) /* 1 GiB */

typedef enum work_kind { WORK_SAXPY, WORK_RUN, WORK_SLEEP } work_kind;

typedef struct work_item {
  struct work_item *next;
  work_kind kind;
  /* Items of blocking calls live on the caller's stack (the caller waits for
   * them); only asynchronous ones are heap-allocated and freed by the worker. */
  bool heap;
  union {
    struct {
      float a;
      acc_buffer x, y;
      size_t n;
    } saxpy;
    struct {
      int steps;
      acc_progress_fn progress;
      void *user_data;
    } run;
    struct {
      unsigned ms;
    } sleep;
  } u;
} work_item;

struct acc_buffer_s {
  uint32_t magic;
  acc_context ctx;
  struct acc_buffer_s *next; /* in ctx->buffers */
  size_t size;
  unsigned char *data;
};

struct acc_context_s {
  uint32_t magic;
  char name[NAME_MAX_LEN + 1];
  size_t name_len;

  pthread_t worker;
  pthread_mutex_t lock;   /* guards everything below */
  pthread_cond_t work_cv; /* worker waits here for items or stop */
  pthread_cond_t done_cv; /* callers wait here for completed to advance */
  work_item *head, *tail; /* FIFO queue */
  uint64_t submitted;     /* tickets handed out */
  uint64_t completed;     /* items finished by the worker */
  bool stopping;
  acc_status pending; /* first deferred error since the last acc_finish */

  acc_buffer buffers; /* owned buffers, freed by acc_context_destroy */
  acc_stats stats;
};

static atomic_int live_contexts;

static bool ctx_ok(acc_context ctx) { return ctx != NULL && ctx->magic == CTX_MAGIC; }
static bool buf_ok(acc_buffer buf) { return buf != NULL && buf->magic == BUF_MAGIC; }

/* --- queue -------------------------------------------------------------- */

/* Appends item and returns its ticket. Caller must hold ctx->lock. */
static uint64_t enqueue_locked(acc_context ctx, work_item *item) {
  item->next = NULL;
  if (ctx->tail != NULL) {
    ctx->tail->next = item;
  } else {
    ctx->head = item;
  }
  ctx->tail = item;
  pthread_cond_signal(&ctx->work_cv);
  return ++ctx->submitted;
}

/* Waits until the item with this ticket (and, the queue being FIFO, all items
 * before it) has completed. Caller must hold ctx->lock. */
static void wait_ticket_locked(acc_context ctx, uint64_t ticket) {
  while (ctx->completed < ticket) pthread_cond_wait(&ctx->done_cv, &ctx->lock);
}

/* Enqueues a caller-owned item and waits for it to finish. */
static void run_blocking(acc_context ctx, work_item *item) {
  pthread_mutex_lock(&ctx->lock);
  wait_ticket_locked(ctx, enqueue_locked(ctx, item));
  pthread_mutex_unlock(&ctx->lock);
}

/* Waits for all work queued so far; used by calls that touch buffer memory
 * from the host so they observe (and don't race with) queued kernels. */
static void drain(acc_context ctx) {
  pthread_mutex_lock(&ctx->lock);
  wait_ticket_locked(ctx, ctx->submitted);
  pthread_mutex_unlock(&ctx->lock);
}

/* Records a deferred error; only the first one since acc_finish is kept.
 * Caller must hold ctx->lock. */
static void set_pending_locked(acc_context ctx, acc_status st) {
  if (ctx->pending == ACC_SUCCESS) ctx->pending = st;
}

/* True if buf is one of ctx's live buffers. Checked by list membership rather
 * than by reading buf->ctx, so a buffer of another context (or a released one)
 * is rejected without dereferencing it. Caller must hold ctx->lock. */
static bool owns_buffer_locked(acc_context ctx, acc_buffer buf) {
  for (acc_buffer b = ctx->buffers; b != NULL; b = b->next) {
    if (b == buf) return true;
  }
  return false;
}

/* --- work on the worker thread ------------------------------------------ */

static void do_saxpy(acc_context ctx, const work_item *item) {
  acc_buffer x = item->u.saxpy.x, y = item->u.saxpy.y;
  size_t n = item->u.saxpy.n;
  acc_status st = ACC_SUCCESS;

  pthread_mutex_lock(&ctx->lock);
  if (x == NULL || y == NULL || !owns_buffer_locked(ctx, x) || !owns_buffer_locked(ctx, y)) {
    st = ACC_ERR_INVALID_BUFFER;
  } else if (n > x->size / sizeof(float) || n > y->size / sizeof(float)) {
    /* Division instead of n * sizeof(float) so a huge n cannot overflow. */
    st = ACC_ERR_INVALID_VALUE;
  }
  if (st != ACC_SUCCESS) set_pending_locked(ctx, st);
  pthread_mutex_unlock(&ctx->lock);
  if (st != ACC_SUCCESS) return;

  /* Compute without the lock: host-side buffer access drains the queue first,
   * so nobody else touches these bytes while the kernel runs. memcpy keeps
   * the access well-defined regardless of the allocation's alignment. */
  float a = item->u.saxpy.a;
  for (size_t i = 0; i < n; i++) {
    float xv, yv;
    memcpy(&xv, x->data + i * sizeof(float), sizeof xv);
    memcpy(&yv, y->data + i * sizeof(float), sizeof yv);
    yv = a * xv + yv;
    memcpy(y->data + i * sizeof(float), &yv, sizeof yv);
  }

  pthread_mutex_lock(&ctx->lock);
  ctx->stats.kernels_run++;
  pthread_mutex_unlock(&ctx->lock);
}

static void do_run(acc_context ctx, const work_item *item) {
  int steps = item->u.run.steps;
  for (int step = 1; step <= steps; step++) {
    pthread_mutex_lock(&ctx->lock);
    ctx->stats.kernels_run++;
    pthread_mutex_unlock(&ctx->lock);
    /* Called without the lock so the callback may use other contexts; it
     * must not wait on this one (acc_finish etc.), which would deadlock. */
    if (item->u.run.progress != NULL) item->u.run.progress(step, steps, item->u.run.user_data);
  }
}

static void do_sleep(acc_context ctx, const work_item *item) {
  struct timespec ts = {.tv_sec = item->u.sleep.ms / 1000,
                        .tv_nsec = (long)(item->u.sleep.ms % 1000) * 1000000L};
  /* nanosleep leaves the remaining time in ts when a signal interrupts it. */
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  pthread_mutex_lock(&ctx->lock);
  ctx->stats.kernels_run++;
  pthread_mutex_unlock(&ctx->lock);
}

static void *worker_main(void *arg) {
  acc_context ctx = arg;
  pthread_mutex_lock(&ctx->lock);
  for (;;) {
    while (ctx->head == NULL && !ctx->stopping) pthread_cond_wait(&ctx->work_cv, &ctx->lock);
    if (ctx->head == NULL) break; /* stopping, and the queue is drained */
    work_item *item = ctx->head;
    ctx->head = item->next;
    if (ctx->head == NULL) ctx->tail = NULL;
    pthread_mutex_unlock(&ctx->lock);

    switch (item->kind) {
      case WORK_SAXPY:
        do_saxpy(ctx, item);
        break;
      case WORK_RUN:
        do_run(ctx, item);
        break;
      case WORK_SLEEP:
        do_sleep(ctx, item);
        break;
    }
    /* A stack item may vanish as soon as completed advances, so this is the
     * last point the worker may touch it. */
    if (item->heap) free(item);

    pthread_mutex_lock(&ctx->lock);
    ctx->completed++;
    pthread_cond_broadcast(&ctx->done_cv);
  }
  pthread_mutex_unlock(&ctx->lock);
  return NULL;
}

/* --- public API ---------------------------------------------------------- */

acc_status acc_get_version(int *major, int *minor) {
  if (major != NULL) *major = ACC_VERSION_MAJOR;
  if (minor != NULL) *minor = ACC_VERSION_MINOR;
  return ACC_SUCCESS;
}

acc_status acc_context_create(const char *name, acc_context *ctx_out) {
  if (name == NULL || ctx_out == NULL) return ACC_ERR_INVALID_VALUE;
  acc_context ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL) return ACC_ERR_OUT_OF_MEMORY;

  size_t len = strnlen(name, NAME_MAX_LEN);
  memcpy(ctx->name, name, len);
  ctx->name[len] = '\0';
  ctx->name_len = len;
  ctx->pending = ACC_SUCCESS;

  pthread_mutex_init(&ctx->lock, NULL);
  pthread_cond_init(&ctx->work_cv, NULL);
  pthread_cond_init(&ctx->done_cv, NULL);
  if (pthread_create(&ctx->worker, NULL, worker_main, ctx) != 0) {
    pthread_cond_destroy(&ctx->done_cv);
    pthread_cond_destroy(&ctx->work_cv);
    pthread_mutex_destroy(&ctx->lock);
    free(ctx);
    return ACC_ERR_OUT_OF_MEMORY;
  }
  ctx->magic = CTX_MAGIC;
  atomic_fetch_add(&live_contexts, 1);
  *ctx_out = ctx;
  return ACC_SUCCESS;
}

acc_status acc_context_destroy(acc_context ctx) {
  if (!ctx_ok(ctx)) return ACC_ERR_INVALID_CONTEXT;
  pthread_mutex_lock(&ctx->lock);
  ctx->stopping = true;
  pthread_cond_signal(&ctx->work_cv);
  pthread_mutex_unlock(&ctx->lock);
  /* The worker finishes everything still queued before it exits. */
  pthread_join(ctx->worker, NULL);

  acc_buffer b = ctx->buffers;
  while (b != NULL) {
    acc_buffer next = b->next;
    b->magic = 0;
    free(b->data);
    free(b);
    b = next;
  }
  ctx->magic = 0;
  pthread_cond_destroy(&ctx->done_cv);
  pthread_cond_destroy(&ctx->work_cv);
  pthread_mutex_destroy(&ctx->lock);
  free(ctx);
  atomic_fetch_sub(&live_contexts, 1);
  return ACC_SUCCESS;
}

acc_status acc_context_name(acc_context ctx, char *name, size_t cap, size_t *len_ret) {
  if (!ctx_ok(ctx)) return ACC_ERR_INVALID_CONTEXT;
  /* The name is immutable after create, so no lock is needed. Truncation
   * follows snprintf: at most cap - 1 characters plus NUL; cap 0 writes
   * nothing. */
  if (name != NULL && cap > 0) {
    size_t n = ctx->name_len < cap - 1 ? ctx->name_len : cap - 1;
    memcpy(name, ctx->name, n);
    name[n] = '\0';
  }
  if (len_ret != NULL) *len_ret = ctx->name_len;
  return ACC_SUCCESS;
}

acc_status acc_context_stats(acc_context ctx, acc_stats *stats) {
  if (!ctx_ok(ctx)) return ACC_ERR_INVALID_CONTEXT;
  if (stats == NULL) return ACC_ERR_INVALID_VALUE;
  /* Drain first so kernels_run counts everything queued before this call;
   * otherwise the answer would depend on the worker's timing. */
  pthread_mutex_lock(&ctx->lock);
  wait_ticket_locked(ctx, ctx->submitted);
  *stats = ctx->stats;
  pthread_mutex_unlock(&ctx->lock);
  return ACC_SUCCESS;
}

acc_status acc_buffer_create(acc_context ctx, size_t size, acc_buffer *buf_out) {
  if (!ctx_ok(ctx)) return ACC_ERR_INVALID_CONTEXT;
  if (buf_out == NULL || size == 0 || size > BUFFER_MAX_SIZE) return ACC_ERR_INVALID_VALUE;
  acc_buffer buf = calloc(1, sizeof *buf);
  unsigned char *data = calloc(1, size);
  if (buf == NULL || data == NULL) {
    free(buf);
    free(data);
    return ACC_ERR_OUT_OF_MEMORY;
  }
  buf->magic = BUF_MAGIC;
  buf->ctx = ctx;
  buf->size = size;
  buf->data = data;

  pthread_mutex_lock(&ctx->lock);
  buf->next = ctx->buffers;
  ctx->buffers = buf;
  ctx->stats.bytes_allocated += size;
  ctx->stats.buffers++;
  pthread_mutex_unlock(&ctx->lock);
  *buf_out = buf;
  return ACC_SUCCESS;
}

acc_status acc_buffer_release(acc_buffer buf) {
  if (!buf_ok(buf)) return ACC_ERR_INVALID_BUFFER;
  acc_context ctx = buf->ctx;
  pthread_mutex_lock(&ctx->lock);
  /* Queued kernels may still reference this buffer. */
  wait_ticket_locked(ctx, ctx->submitted);
  for (acc_buffer *p = &ctx->buffers; *p != NULL; p = &(*p)->next) {
    if (*p == buf) {
      *p = buf->next;
      break;
    }
  }
  ctx->stats.bytes_allocated -= buf->size;
  ctx->stats.buffers--;
  pthread_mutex_unlock(&ctx->lock);

  buf->magic = 0;
  free(buf->data);
  free(buf);
  return ACC_SUCCESS;
}

/* Range check written so that offset + size cannot overflow. */
static bool range_ok(acc_buffer buf, size_t offset, size_t size) {
  return offset <= buf->size && size <= buf->size - offset;
}

acc_status acc_buffer_write(acc_buffer buf, size_t offset, const void *data, size_t size) {
  if (!buf_ok(buf)) return ACC_ERR_INVALID_BUFFER;
  if (!range_ok(buf, offset, size) || (data == NULL && size > 0)) return ACC_ERR_INVALID_VALUE;
  drain(buf->ctx);
  if (size > 0) memcpy(buf->data + offset, data, size);
  return ACC_SUCCESS;
}

acc_status acc_buffer_read(acc_buffer buf, size_t offset, void *data, size_t size) {
  if (!buf_ok(buf)) return ACC_ERR_INVALID_BUFFER;
  if (!range_ok(buf, offset, size) || (data == NULL && size > 0)) return ACC_ERR_INVALID_VALUE;
  drain(buf->ctx);
  if (size > 0) memcpy(data, buf->data + offset, size);
  return ACC_SUCCESS;
}

acc_status acc_saxpy(acc_context ctx, float a, acc_buffer x, acc_buffer y, size_t n) {
  if (!ctx_ok(ctx)) return ACC_ERR_INVALID_CONTEXT;
  /* Arguments are checked on the worker, like a device reporting a bad
   * launch asynchronously; see do_saxpy. */
  work_item *item = malloc(sizeof *item);
  if (item == NULL) return ACC_ERR_OUT_OF_MEMORY;
  item->kind = WORK_SAXPY;
  item->heap = true;
  item->u.saxpy.a = a;
  item->u.saxpy.x = x;
  item->u.saxpy.y = y;
  item->u.saxpy.n = n;
  pthread_mutex_lock(&ctx->lock);
  enqueue_locked(ctx, item);
  pthread_mutex_unlock(&ctx->lock);
  return ACC_SUCCESS;
}

acc_status acc_finish(acc_context ctx) {
  if (!ctx_ok(ctx)) return ACC_ERR_INVALID_CONTEXT;
  pthread_mutex_lock(&ctx->lock);
  wait_ticket_locked(ctx, ctx->submitted);
  acc_status st = ctx->pending;
  ctx->pending = ACC_SUCCESS;
  pthread_mutex_unlock(&ctx->lock);
  return st;
}

acc_status acc_sum(acc_context ctx, const float *values, size_t n, double *result) {
  if (!ctx_ok(ctx)) return ACC_ERR_INVALID_CONTEXT;
  if ((values == NULL && n > 0) || result == NULL) return ACC_ERR_INVALID_VALUE;
  /* Host memory, so no need for the worker; a fixed order keeps the result
   * reproducible. */
  double sum = 0.0;
  for (size_t i = 0; i < n; i++) sum += values[i];
  *result = sum;
  return ACC_SUCCESS;
}

acc_status acc_run(acc_context ctx, int steps, acc_progress_fn progress, void *user_data) {
  if (!ctx_ok(ctx)) return ACC_ERR_INVALID_CONTEXT;
  if (steps < 0) return ACC_ERR_INVALID_VALUE;
  /* One queue item runs all steps back to back; that is indistinguishable
   * from one item per step, since the caller waits for all of them. */
  work_item item = {.kind = WORK_RUN, .heap = false};
  item.u.run.steps = steps;
  item.u.run.progress = progress;
  item.u.run.user_data = user_data;
  run_blocking(ctx, &item);
  return ACC_SUCCESS;
}

acc_status acc_sleep(acc_context ctx, unsigned ms) {
  if (!ctx_ok(ctx)) return ACC_ERR_INVALID_CONTEXT;
  work_item item = {.kind = WORK_SLEEP, .heap = false};
  item.u.sleep.ms = ms;
  run_blocking(ctx, &item);
  return ACC_SUCCESS;
}

int acc_context_count(void) { return atomic_load(&live_contexts); }
