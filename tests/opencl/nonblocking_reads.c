/* Non-blocking reads: the call returns at once, the data is in the
 * application's memory by the time the API says the read is complete
 * (clWaitForEvents, clFinish, a blocking call on the queue, the event's
 * CL_COMPLETE callback), and a read gated by a user event that the same
 * thread sets afterwards completes (it once waited forever). */
#include "ocl_common.h"

#include <pthread.h>
#include <time.h>

enum { N = 4096 };

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int callback_saw_data = -1;
static const int *callback_target;

static void CL_CALLBACK on_read_complete(cl_event ev, cl_int status, void *user_data) {
  (void)ev;
  const int *expect = (const int *)user_data;
  int ok = status == CL_COMPLETE;
  for (int i = 0; i < N && ok; i++) ok = callback_target[i] == expect[i];
  pthread_mutex_lock(&mu);
  callback_saw_data = ok;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static int wait_callback(void) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 10;
  pthread_mutex_lock(&mu);
  while (callback_saw_data < 0 && pthread_cond_timedwait(&cv, &mu, &deadline) == 0) {
  }
  const int r = callback_saw_data;
  pthread_mutex_unlock(&mu);
  return r;
}

static int same(const int *a, const int *b, int n) { return memcmp(a, b, n * sizeof(int)) == 0; }

int main(void) {
  cl_platform_id platform;
  cl_device_id device;
  ocl_first_device(&platform, &device);
  cl_context ctx = ocl_context(platform, device);
  cl_command_queue q = ocl_queue(ctx, device, 0);
  cl_int err = CL_SUCCESS;

  static int src[N], dst[N], dst2[N], dst3[N];
  for (int i = 0; i < N; i++) src[i] = i * 3 + 1;
  cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof src, src, &err);
  CHECK("clCreateBuffer", err);

  /* 1. Gated by a user event this thread sets after the read returned. */
  cl_event gate = clCreateUserEvent(ctx, &err);
  CHECK("clCreateUserEvent", err);
  cl_event read_ev = NULL;
  CHECK("clEnqueueReadBuffer(non-blocking, gated)",
        clEnqueueReadBuffer(q, buf, CL_FALSE, 0, sizeof dst, dst, 1, &gate, &read_ev));
  cl_int status = 99;
  CHECK("clGetEventInfo(status before the gate opens)",
        clGetEventInfo(read_ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL));
  printf("read complete before the gate opened: %d\n", status == CL_COMPLETE);
  CHECK("clSetUserEventStatus(gate)", clSetUserEventStatus(gate, CL_COMPLETE));
  CHECK("clWaitForEvents(read)", clWaitForEvents(1, &read_ev));
  printf("gated read data: %d\n", same(dst, src, N));
  clReleaseEvent(read_ev);
  clReleaseEvent(gate);

  /* 2. No event; clFinish makes it visible. Several at once. */
  memset(dst, 0, sizeof dst);
  CHECK("clEnqueueReadBuffer(non-blocking, first half)",
        clEnqueueReadBuffer(q, buf, CL_FALSE, 0, sizeof dst / 2, dst, 0, NULL, NULL));
  CHECK("clEnqueueReadBuffer(non-blocking, second half)",
        clEnqueueReadBuffer(q, buf, CL_FALSE, sizeof dst / 2, sizeof dst / 2, dst + N / 2, 0,
                            NULL, NULL));
  CHECK("clEnqueueReadBuffer(non-blocking, whole)",
        clEnqueueReadBuffer(q, buf, CL_FALSE, 0, sizeof dst2, dst2, 0, NULL, NULL));
  CHECK("clFinish", clFinish(q));
  printf("reads visible after clFinish: %d %d\n", same(dst, src, N), same(dst2, src, N));

  /* 3. A blocking call on the same in-order queue. */
  memset(dst, 0, sizeof dst);
  CHECK("clEnqueueReadBuffer(non-blocking)",
        clEnqueueReadBuffer(q, buf, CL_FALSE, 0, sizeof dst, dst, 0, NULL, NULL));
  int one = 0;
  CHECK("clEnqueueReadBuffer(blocking, after)",
        clEnqueueReadBuffer(q, buf, CL_TRUE, 0, sizeof one, &one, 0, NULL, NULL));
  printf("earlier read visible after a blocking one: %d\n", same(dst, src, N));

  /* 4. The read's CL_COMPLETE callback sees the data. */
  memset(dst3, 0, sizeof dst3);
  callback_target = dst3;
  cl_event gate2 = clCreateUserEvent(ctx, &err);
  CHECK("clCreateUserEvent(2)", err);
  cl_event ev = NULL;
  CHECK("clEnqueueReadBuffer(non-blocking, callback)",
        clEnqueueReadBuffer(q, buf, CL_FALSE, 0, sizeof dst3, dst3, 1, &gate2, &ev));
  CHECK("clSetEventCallback", clSetEventCallback(ev, CL_COMPLETE, on_read_complete, src));
  CHECK("clSetUserEventStatus(gate2)", clSetUserEventStatus(gate2, CL_COMPLETE));
  printf("callback saw the data: %d\n", wait_callback());
  CHECK("clWaitForEvents(callback read)", clWaitForEvents(1, &ev));
  clReleaseEvent(ev);
  clReleaseEvent(gate2);

  /* 5. A rectangular read gated by a user event: bytes between rows stay. */
  static int rect[64 * 64];
  for (int i = 0; i < 64 * 64; i++) rect[i] = -1;
  cl_event gate3 = clCreateUserEvent(ctx, &err);
  CHECK("clCreateUserEvent(3)", err);
  size_t borigin[3] = {16, 2, 0}, horigin[3] = {8, 1, 0}, region[3] = {64, 16, 1};
  cl_event rev = NULL;
  CHECK("clEnqueueReadBufferRect(non-blocking, gated)",
        clEnqueueReadBufferRect(q, buf, CL_FALSE, borigin, horigin, region, 256, 0, 256, 0, rect,
                                1, &gate3, &rev));
  CHECK("clSetUserEventStatus(gate3)", clSetUserEventStatus(gate3, CL_COMPLETE));
  CHECK("clWaitForEvents(rect)", clWaitForEvents(1, &rev));
  printf("rect read: %016llx\n", (unsigned long long)ocl_fnv1a(rect, sizeof rect));
  clReleaseEvent(rev);
  clReleaseEvent(gate3);

  /* 6. Errors still come from the call. */
  printf("out of range: %d\n",
         (int)clEnqueueReadBuffer(q, buf, CL_FALSE, sizeof src, 4, dst, 0, NULL, NULL));
  printf("NULL pointer: %d\n",
         (int)clEnqueueReadBuffer(q, buf, CL_FALSE, 0, 4, NULL, 0, NULL, NULL));
  CHECK("clFinish", clFinish(q));

  clReleaseMemObject(buf);
  clReleaseCommandQueue(q);
  clReleaseContext(ctx);
  printf("done\n");
  return 0;
}
