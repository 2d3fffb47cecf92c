/* Blocking writes of 16 MiB and more, which hira sends in parts (the copy of
 * one overlaps the device's transfer of the one before): on an in-order and
 * an out-of-order queue, into a sub-buffer, after a wait list, with an event
 * (complete when the call returns, a write command); and one that reaches
 * past the buffer's end, which must fail whole and change nothing. Every
 * result is read back and compared with what was written. */
#include "ocl_common.h"

#define BYTES ((size_t)48 << 20)

static void fill(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n / 8; i++) {
    const unsigned long long w = (i + seed) * 0x9e3779b97f4a7c15ull;
    memcpy(p + i * 8, &w, 8);
  }
}

static void check(cl_command_queue q, cl_mem buf, size_t at, const unsigned char *want, size_t n,
                  unsigned char *back, const char *what) {
  memset(back, 0, n);
  CHECK("clEnqueueReadBuffer", clEnqueueReadBuffer(q, buf, CL_TRUE, at, n, back, 0, NULL, NULL));
  printf("%s: %s\n", what, memcmp(back, want, n) == 0 ? "as written" : "DIFFERENT");
}

int main(void) {
  cl_platform_id platform;
  cl_device_id dev;
  cl_int err;
  ocl_first_device(&platform, &dev);
  cl_context ctx = ocl_context(platform, dev);
  unsigned char *data = malloc(BYTES), *back = malloc(BYTES);
  if (!data || !back) return 1;

  for (int ooo = 0; ooo < 2; ooo++) {
    cl_command_queue q =
        clCreateCommandQueue(ctx, dev, ooo ? CL_QUEUE_OUT_OF_ORDER_EXEC_MODE_ENABLE : 0, &err);
    if (err != CL_SUCCESS) { /* an out-of-order queue is optional */
      printf("queue %d: not supported\n", ooo);
      continue;
    }
    cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE, BYTES, NULL, &err);
    CHECK("clCreateBuffer", err);
    fill(data, BYTES, 1 + ooo);
    CHECK("clEnqueueWriteBuffer (whole)",
          clEnqueueWriteBuffer(q, buf, CL_TRUE, 0, BYTES, data, 0, NULL, NULL));
    check(q, buf, 0, data, BYTES, back, ooo ? "out of order, whole" : "in order, whole");

    /* After two non-blocking writes, waiting for them, with an event. */
    unsigned char small[4096];
    memset(small, 0x5a, sizeof(small));
    cl_event before[2], ev;
    CHECK("clEnqueueWriteBuffer (small 1)",
          clEnqueueWriteBuffer(q, buf, CL_FALSE, 0, sizeof(small), small, 0, NULL, &before[0]));
    CHECK("clEnqueueWriteBuffer (small 2)",
          clEnqueueWriteBuffer(q, buf, CL_FALSE, BYTES - sizeof(small), sizeof(small), small, 0,
                               NULL, &before[1]));
    fill(data, BYTES - (1 << 20), 7 + ooo);
    CHECK("clEnqueueWriteBuffer (after a wait list)",
          clEnqueueWriteBuffer(q, buf, CL_TRUE, 1 << 20, BYTES - (1 << 20), data, 2, before, &ev));
    cl_int status = 0;
    cl_command_type type = 0;
    CHECK("clGetEventInfo (status)",
          clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof(status), &status, NULL));
    CHECK("clGetEventInfo (type)",
          clGetEventInfo(ev, CL_EVENT_COMMAND_TYPE, sizeof(type), &type, NULL));
    printf("its event: %s, %s\n", status == CL_COMPLETE ? "complete" : "NOT complete",
           type == CL_COMMAND_WRITE_BUFFER ? "a write" : "NOT a write");
    clReleaseEvent(ev);
    clReleaseEvent(before[0]);
    clReleaseEvent(before[1]);
    check(q, buf, 1 << 20, data, BYTES - (1 << 20), back, "after a wait list");

    /* Past the end: refused whole, nothing changes. */
    fill(back, BYTES, 99);
    ocl_expect("clEnqueueWriteBuffer (past the end)",
               clEnqueueWriteBuffer(q, buf, CL_TRUE, 4096, BYTES, back, 0, NULL, NULL),
               CL_INVALID_VALUE);
    check(q, buf, 1 << 20, data, BYTES - (1 << 20), back, "after the refused write");

    /* Into a sub-buffer (its own size decides). */
    const cl_buffer_region region = {16 << 20, 24 << 20};
    cl_mem part =
        clCreateSubBuffer(buf, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, &err);
    CHECK("clCreateSubBuffer", err);
    fill(data, region.size, 11 + ooo);
    CHECK("clEnqueueWriteBuffer (sub-buffer)",
          clEnqueueWriteBuffer(q, part, CL_TRUE, 0, region.size, data, 0, NULL, NULL));
    check(q, buf, region.origin, data, region.size, back, "through the sub-buffer");
    ocl_expect("clEnqueueWriteBuffer (past the sub-buffer)",
               clEnqueueWriteBuffer(q, part, CL_TRUE, 1 << 20, region.size, data, 0, NULL, NULL),
               CL_INVALID_VALUE);
    clReleaseMemObject(part);
    clReleaseMemObject(buf);
    clReleaseCommandQueue(q);
  }
  clReleaseContext(ctx);
  free(data);
  free(back);
  printf("OK\n");
  return 0;
}
