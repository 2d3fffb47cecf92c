/* Memory objects that outlive the application's last release: a buffer
 * whose sub-buffer keeps it alive, and an image. Through hira the router's
 * device_memory account follows the objects as the implementation destroys
 * them, and images count with the size the implementation gives them
 * (tests/opencl_e2e_test.cpp reads the account). */
#include "ocl_common.h"

int main(void) {
  cl_platform_id platform;
  cl_device_id device;
  ocl_first_device(&platform, &device);
  cl_context ctx = ocl_context(platform, device);
  cl_command_queue q = ocl_queue(ctx, device, 0);
  cl_int err = CL_SUCCESS;
  enum { PARENT = 1 << 20, PART = 1 << 16, TEMP = 1 << 18, SIDE = 64 };

  /* The parent's last release leaves it alive: its sub-buffer holds it. */
  cl_mem parent = clCreateBuffer(ctx, CL_MEM_READ_WRITE, PARENT, NULL, &err);
  CHECK("clCreateBuffer(parent)", err);
  const cl_buffer_region region = {0, PART};
  cl_mem part =
      clCreateSubBuffer(parent, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, &err);
  CHECK("clCreateSubBuffer", err);
  CHECK("clReleaseMemObject(parent)", clReleaseMemObject(parent));
  unsigned char bytes[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, back[16] = {0};
  CHECK("clEnqueueWriteBuffer(part)",
        clEnqueueWriteBuffer(q, part, CL_TRUE, 100, sizeof(bytes), bytes, 0, NULL, NULL));
  CHECK("clEnqueueReadBuffer(part)",
        clEnqueueReadBuffer(q, part, CL_TRUE, 100, sizeof(back), back, 0, NULL, NULL));
  ocl_require("the sub-buffer still works", memcmp(bytes, back, sizeof(bytes)) == 0);

  /* An image, kept; and a buffer that comes and goes. */
  const cl_image_format format = {CL_RGBA, CL_UNSIGNED_INT8};
  cl_mem image = clCreateImage2D(ctx, CL_MEM_READ_WRITE, &format, SIDE, SIDE, 0, NULL, &err);
  CHECK("clCreateImage2D", err);
  size_t image_bytes = 0;
  CHECK("clGetMemObjectInfo(CL_MEM_SIZE)",
        clGetMemObjectInfo(image, CL_MEM_SIZE, sizeof(image_bytes), &image_bytes, NULL));
  ocl_require("the image takes at least its pixels", image_bytes >= SIDE * SIDE * 4);
  cl_mem temp = clCreateBuffer(ctx, CL_MEM_READ_WRITE, TEMP, NULL, &err);
  CHECK("clCreateBuffer(temp)", err);
  CHECK("clReleaseMemObject(temp)", clReleaseMemObject(temp));
  CHECK("clFinish", clFinish(q));
  /* Ends holding the sub-buffer (and so its parent) and the image. */
  clReleaseCommandQueue(q);
  fprintf(stderr, "image bytes: %zu\n", image_bytes);
  printf("done\n");
  return 0;
}
