/* Buffers kept alive by an extra reference: retain + release of a buffer
 * leaves it alive (and in use), the second release frees it. The router's
 * device_memory account follows the object, not the release calls
 * (tests/opencl_e2e_test.cpp reads it). */
#include "ocl_common.h"

int main(void) {
  cl_platform_id platform;
  cl_device_id device;
  ocl_first_device(&platform, &device);
  cl_context ctx = ocl_context(platform, device);
  cl_command_queue q = ocl_queue(ctx, device, 0);
  cl_int err = CL_SUCCESS;
  enum { KEPT = 1 << 20, FREED = 1 << 16 };
  cl_mem kept = clCreateBuffer(ctx, CL_MEM_READ_WRITE, KEPT, NULL, &err);
  CHECK("clCreateBuffer(kept)", err);
  cl_mem freed = clCreateBuffer(ctx, CL_MEM_READ_WRITE, FREED, NULL, &err);
  CHECK("clCreateBuffer(freed)", err);
  CHECK("clRetainMemObject(kept)", clRetainMemObject(kept));
  CHECK("clReleaseMemObject(kept)", clReleaseMemObject(kept));
  CHECK("clRetainMemObject(freed)", clRetainMemObject(freed));
  CHECK("clReleaseMemObject(freed)", clReleaseMemObject(freed));
  CHECK("clReleaseMemObject(freed, last)", clReleaseMemObject(freed));
  /* kept is still a buffer the application uses. */
  unsigned char byte = 0x5a, back = 0;
  CHECK("clEnqueueWriteBuffer(kept)",
        clEnqueueWriteBuffer(q, kept, CL_TRUE, KEPT - 1, 1, &byte, 0, NULL, NULL));
  CHECK("clEnqueueReadBuffer(kept)",
        clEnqueueReadBuffer(q, kept, CL_TRUE, KEPT - 1, 1, &back, 0, NULL, NULL));
  ocl_require("kept buffer still works", back == byte);
  /* Ends holding `kept` (one reference left), as programs that exit do. */
  clReleaseCommandQueue(q);
  printf("done\n");
  return 0;
}
