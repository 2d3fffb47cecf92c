/* libacc: a small "accelerator" library used to demonstrate and test hira.
 * Work runs on a per-context worker thread, like a device queue: some calls
 * are asynchronous and report their errors at the next acc_finish(). */
#ifndef ACC_H
#define ACC_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct acc_context_s *acc_context;
typedef struct acc_buffer_s *acc_buffer;

typedef enum acc_status {
  ACC_SUCCESS = 0,
  ACC_ERR_INVALID_CONTEXT = -1,
  ACC_ERR_INVALID_BUFFER = -2,
  ACC_ERR_INVALID_VALUE = -3,
  ACC_ERR_OUT_OF_MEMORY = -4,
  ACC_ERR_UNAVAILABLE = -5, /* the device (or the remoting layer) is gone */
} acc_status;

typedef struct acc_stats {
  uint64_t bytes_allocated;
  uint32_t buffers;
  uint32_t kernels_run;
} acc_stats;

/* Called once per step of acc_run, from the context's worker thread. */
typedef void (*acc_progress_fn)(int step, int total, void *user_data);

acc_status acc_get_version(int *major, int *minor);

/* name: NUL-terminated, at most 63 characters used. */
acc_status acc_context_create(const char *name, acc_context *ctx_out);
acc_status acc_context_destroy(acc_context ctx);
/* Copies the name (NUL-terminated, truncated to cap) into name if name is
 * not NULL; stores the full length (without NUL) in *len_ret if not NULL. */
acc_status acc_context_name(acc_context ctx, char *name, size_t cap, size_t *len_ret);
acc_status acc_context_stats(acc_context ctx, acc_stats *stats);

acc_status acc_buffer_create(acc_context ctx, size_t size, acc_buffer *buf_out);
acc_status acc_buffer_release(acc_buffer buf);
acc_status acc_buffer_write(acc_buffer buf, size_t offset, const void *data, size_t size);
acc_status acc_buffer_read(acc_buffer buf, size_t offset, void *data, size_t size);

/* Asynchronous: y[i] = a * x[i] + y[i] for i < n (floats), queued on the
 * context's worker. Returns ACC_SUCCESS at once; a bad argument (e.g. n past
 * the end of a buffer) is reported by the next acc_finish(). */
acc_status acc_saxpy(acc_context ctx, float a, acc_buffer x, acc_buffer y, size_t n);
/* Waits for queued work; returns the first error since the last finish. */
acc_status acc_finish(acc_context ctx);

/* Sums n floats given by the caller. */
acc_status acc_sum(acc_context ctx, const float *values, size_t n, double *result);
/* Runs `steps` steps on the worker, calling progress(step, steps, user_data)
 * after each; returns when all steps are done. */
acc_status acc_run(acc_context ctx, int steps, acc_progress_fn progress, void *user_data);
/* Blocks the worker for ms milliseconds (a long-running kernel). */
acc_status acc_sleep(acc_context ctx, unsigned ms);

/* Number of live contexts in this process. */
int acc_context_count(void);

#ifdef __cplusplus
}
#endif

#endif
