/* Images made from buffers (cl_image_desc.buffer): a 1D image buffer and,
 * where the device offers it, a 2D image from a buffer. Data written to the
 * buffer is read through the image and the other way round; a missing or
 * wrong buffer gets the implementation's error. */
#include "ocl_common.h"

enum { W = 256, H = 8 };

static void show(const char *what, cl_int err, cl_mem m) {
  printf("%s: err %d, object %s\n", what, (int)err, m ? "non-NULL" : "NULL");
}

int main(void) {
  cl_platform_id platform;
  cl_device_id device;
  ocl_first_device(&platform, &device);
  cl_bool images = CL_FALSE;
  CHECK("clGetDeviceInfo(IMAGE_SUPPORT)",
        clGetDeviceInfo(device, CL_DEVICE_IMAGE_SUPPORT, sizeof images, &images, NULL));
  if (!images) {
    printf("no image support\n");
    return 0;
  }
  cl_context ctx = ocl_context(platform, device);
  cl_command_queue q = ocl_queue(ctx, device, 0);
  cl_int err = CL_SUCCESS;

  unsigned int pixels[W * H];
  for (int i = 0; i < W * H; i++) pixels[i] = 0x01020304u * (unsigned)(i + 1);
  cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof pixels,
                              pixels, &err);
  CHECK("clCreateBuffer", err);

  cl_image_format fmt = {CL_RGBA, CL_UNSIGNED_INT8};
  cl_image_desc desc;
  memset(&desc, 0, sizeof desc);
  desc.image_type = CL_MEM_OBJECT_IMAGE1D_BUFFER;
  desc.image_width = W;
  desc.buffer = buf;
  cl_mem img1d = clCreateImage(ctx, CL_MEM_READ_WRITE, &fmt, &desc, NULL, &err);
  show("clCreateImage(1D buffer)", err, img1d);
  if (img1d != NULL) {
    cl_mem back = NULL;
    CHECK("clGetImageInfo(IMAGE_BUFFER)",
          clGetImageInfo(img1d, CL_IMAGE_BUFFER, sizeof back, &back, NULL));
    printf("CL_IMAGE_BUFFER is the buffer: %d\n", back == buf);
    unsigned int row[W];
    size_t origin[3] = {0, 0, 0}, region[3] = {W, 1, 1};
    CHECK("clEnqueueReadImage(1D buffer)",
          clEnqueueReadImage(q, img1d, CL_TRUE, origin, region, 0, 0, row, 0, NULL, NULL));
    printf("image reads the buffer: %d\n", memcmp(row, pixels, sizeof row) == 0);
    for (int i = 0; i < W; i++) row[i] = ~row[i];
    CHECK("clEnqueueWriteImage(1D buffer)",
          clEnqueueWriteImage(q, img1d, CL_TRUE, origin, region, 0, 0, row, 0, NULL, NULL));
    unsigned int check[W];
    CHECK("clEnqueueReadBuffer", clEnqueueReadBuffer(q, buf, CL_TRUE, 0, sizeof check, check, 0,
                                                     NULL, NULL));
    printf("buffer sees the image's writes: %d\n", memcmp(row, check, sizeof row) == 0);
    clReleaseMemObject(img1d);
  }

  /* No buffer where one is required. */
  desc.buffer = NULL;
  cl_mem none = clCreateImage(ctx, CL_MEM_READ_WRITE, &fmt, &desc, NULL, &err);
  show("clCreateImage(1D buffer, no buffer)", err, none);
  if (none) clReleaseMemObject(none);

  /* A buffer where none is allowed (a plain 2D image). */
  desc.image_type = CL_MEM_OBJECT_IMAGE2D;
  desc.image_height = H;
  desc.buffer = buf;
  desc.image_row_pitch = 0;
  cl_mem img2d = clCreateImage(ctx, CL_MEM_READ_ONLY, &fmt, &desc, NULL, &err);
  show("clCreateImage(2D from buffer)", err, img2d);
  if (img2d != NULL) {
    unsigned int all[W * H];
    size_t origin[3] = {0, 0, 0}, region[3] = {W, H, 1};
    CHECK("clEnqueueReadImage(2D from buffer)",
          clEnqueueReadImage(q, img2d, CL_TRUE, origin, region, 0, 0, all, 0, NULL, NULL));
    printf("2D image checksum: %016llx\n", (unsigned long long)ocl_fnv1a(all, sizeof all));
    clReleaseMemObject(img2d);
  }

  clReleaseMemObject(buf);
  clReleaseCommandQueue(q);
  clReleaseContext(ctx);
  printf("done\n");
  return 0;
}
