/* CL_MEM_USE_HOST_PTR buffers and images, as conformance-style programs use
 * them:
 * - page-aligned host memory used by a kernel with 64-byte vector loads
 *   (implementations rely on CL_DEVICE_MEM_BASE_ADDR_ALIGN for such memory);
 * - fills, non-blocking writes, reads and maps of such a buffer; a map lands
 *   in the application's memory and CL_MEM_HOST_PTR is the application's;
 * - a second, larger buffer on the same host memory leaves the first usable;
 * - a USE_HOST_PTR image: its map lands in the application's memory too. */
#include "ocl_common.h"

static const char *kSource =
    "__kernel void scale16(__global float16 *v, float k) {\n"
    "  size_t i = get_global_id(0);\n"
    "  v[i] = v[i] * k + (float16)(1.0f);\n"
    "}\n"
    "__kernel void sum(__global const float *v, __global float *out, int n) {\n"
    "  float s = 0.0f;\n"
    "  for (int i = 0; i < n; i++) s += v[i];\n"
    "  out[0] = s;\n"
    "}\n";

enum { N = 4096 }; /* floats */

int main(void) {
  cl_platform_id platform;
  cl_device_id device;
  ocl_first_device(&platform, &device);
  cl_context ctx = ocl_context(platform, device);
  cl_command_queue q = ocl_queue(ctx, device, 0);
  cl_program prog = ocl_build(ctx, device, kSource, NULL);
  cl_kernel scale = ocl_kernel(prog, "scale16");
  cl_kernel sum = ocl_kernel(prog, "sum");
  cl_int err = CL_SUCCESS;

  float *host = NULL;
  if (posix_memalign((void **)&host, 4096, N * sizeof(float)) != 0) return 1;
  for (int i = 0; i < N; i++) host[i] = (float)(i % 97);
  cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR, N * sizeof(float),
                              host, &err);
  CHECK("clCreateBuffer(USE_HOST_PTR)", err);
  void *reported = NULL;
  CHECK("clGetMemObjectInfo(HOST_PTR)",
        clGetMemObjectInfo(buf, CL_MEM_HOST_PTR, sizeof reported, &reported, NULL));
  printf("CL_MEM_HOST_PTR is the application's: %d\n", reported == (void *)host);

  float k = 0.5f;
  CHECK("clSetKernelArg(scale, 0)", clSetKernelArg(scale, 0, sizeof buf, &buf));
  CHECK("clSetKernelArg(scale, 1)", clSetKernelArg(scale, 1, sizeof k, &k));
  size_t global = N / 16;
  for (int round = 0; round < 3; round++) {
    CHECK("clEnqueueNDRangeKernel(scale16)",
          clEnqueueNDRangeKernel(q, scale, 1, NULL, &global, NULL, 0, NULL, NULL));
  }
  float *result = (float *)malloc(N * sizeof(float));
  CHECK("clEnqueueReadBuffer", clEnqueueReadBuffer(q, buf, CL_TRUE, 0, N * sizeof(float), result,
                                                   0, NULL, NULL));
  printf("after scale16 x3: %016llx\n",
         (unsigned long long)ocl_fnv1a(result, N * sizeof(float)));

  /* A map lands in the application's memory, at the offset asked for. */
  float *mapped = (float *)clEnqueueMapBuffer(q, buf, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE,
                                              256 * sizeof(float), 64 * sizeof(float), 0, NULL,
                                              NULL, &err);
  CHECK("clEnqueueMapBuffer", err);
  printf("map lands at host_ptr + offset: %d\n", mapped == host + 256);
  printf("mapped[0..2]: %g %g %g\n", mapped[0], mapped[1], mapped[2]);
  for (int i = 0; i < 64; i++) mapped[i] = -1.0f;
  CHECK("clEnqueueUnmapMemObject", clEnqueueUnmapMemObject(q, buf, mapped, 0, NULL, NULL));

  float pattern = 2.0f;
  CHECK("clEnqueueFillBuffer", clEnqueueFillBuffer(q, buf, &pattern, sizeof pattern,
                                                   1024 * sizeof(float), 512 * sizeof(float), 0,
                                                   NULL, NULL));
  float update[128];
  for (int i = 0; i < 128; i++) update[i] = (float)i;
  CHECK("clEnqueueWriteBuffer(non-blocking)",
        clEnqueueWriteBuffer(q, buf, CL_FALSE, 2048 * sizeof(float), sizeof update, update, 0,
                             NULL, NULL));
  CHECK("clFinish", clFinish(q));
  CHECK("clEnqueueReadBuffer", clEnqueueReadBuffer(q, buf, CL_TRUE, 0, N * sizeof(float), result,
                                                   0, NULL, NULL));
  printf("after map, fill, write: %016llx\n",
         (unsigned long long)ocl_fnv1a(result, N * sizeof(float)));

  /* A second, larger buffer on the same host memory: the first still works.
   * (Fresh memory: what `host` holds while `buf` is in use is undefined.) */
  float *shared = NULL;
  if (posix_memalign((void **)&shared, 4096, N * sizeof(float)) != 0) return 1;
  for (int i = 0; i < N; i++) shared[i] = (float)(i % 13) * 0.25f;
  cl_mem small = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_USE_HOST_PTR, 256 * sizeof(float),
                                shared, &err);
  CHECK("clCreateBuffer(small)", err);
  cl_mem large = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_USE_HOST_PTR, N * sizeof(float),
                                shared, &err);
  CHECK("clCreateBuffer(large, same host memory)", err);
  cl_mem out = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, sizeof(float), NULL, &err);
  CHECK("clCreateBuffer(out)", err);
  int n = 256;
  CHECK("clSetKernelArg(sum, 0)", clSetKernelArg(sum, 0, sizeof small, &small));
  CHECK("clSetKernelArg(sum, 1)", clSetKernelArg(sum, 1, sizeof out, &out));
  CHECK("clSetKernelArg(sum, 2)", clSetKernelArg(sum, 2, sizeof n, &n));
  size_t one = 1;
  CHECK("clEnqueueNDRangeKernel(sum small)",
        clEnqueueNDRangeKernel(q, sum, 1, NULL, &one, NULL, 0, NULL, NULL));
  float total = 0;
  CHECK("clEnqueueReadBuffer(sum)",
        clEnqueueReadBuffer(q, out, CL_TRUE, 0, sizeof total, &total, 0, NULL, NULL));
  printf("sum of the small buffer: %g\n", total);
  clReleaseMemObject(small);
  clReleaseMemObject(large);
  clReleaseMemObject(out);
  free(shared);

  /* A USE_HOST_PTR image. */
  cl_bool images = CL_FALSE;
  clGetDeviceInfo(device, CL_DEVICE_IMAGE_SUPPORT, sizeof images, &images, NULL);
  if (images) {
    enum { W = 64, H = 16 };
    unsigned char *pixels = NULL;
    if (posix_memalign((void **)&pixels, 4096, W * H * 4) != 0) return 1;
    for (int i = 0; i < W * H * 4; i++) pixels[i] = (unsigned char)(i * 7);
    cl_image_format fmt = {CL_RGBA, CL_UNSIGNED_INT8};
    cl_image_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.image_type = CL_MEM_OBJECT_IMAGE2D;
    desc.image_width = W;
    desc.image_height = H;
    cl_mem img = clCreateImage(ctx, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR, &fmt, &desc, pixels,
                               &err);
    CHECK("clCreateImage(USE_HOST_PTR)", err);
    reported = NULL;
    CHECK("clGetMemObjectInfo(image HOST_PTR)",
          clGetMemObjectInfo(img, CL_MEM_HOST_PTR, sizeof reported, &reported, NULL));
    printf("image CL_MEM_HOST_PTR is the application's: %d\n", reported == (void *)pixels);
    size_t origin[3] = {8, 4, 0}, region[3] = {16, 8, 1}, row = 0;
    unsigned char *p = (unsigned char *)clEnqueueMapImage(
        q, img, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, origin, region, &row, NULL, 0, NULL, NULL,
        &err);
    CHECK("clEnqueueMapImage", err);
    printf("image map lands in host memory: %d, row pitch %zu\n",
           p == pixels + 4 * W * 4 + 8 * 4, row);
    printf("first mapped pixel: %u %u %u %u\n", p[0], p[1], p[2], p[3]);
    for (int y = 0; y < 8; y++) memset(p + y * row, 0x5a, 16 * 4);
    CHECK("clEnqueueUnmapMemObject(image)", clEnqueueUnmapMemObject(q, img, p, 0, NULL, NULL));
    unsigned char back[W * H * 4];
    size_t all_origin[3] = {0, 0, 0}, all[3] = {W, H, 1};
    CHECK("clEnqueueReadImage", clEnqueueReadImage(q, img, CL_TRUE, all_origin, all, 0, 0, back,
                                                   0, NULL, NULL));
    printf("image after map write: %016llx\n", (unsigned long long)ocl_fnv1a(back, sizeof back));
    clReleaseMemObject(img);
    free(pixels);
  } else {
    printf("no image support\n");
  }

  free(result);
  clReleaseMemObject(buf);
  clReleaseKernel(scale);
  clReleaseKernel(sum);
  clReleaseProgram(prog);
  clReleaseCommandQueue(q);
  clReleaseContext(ctx);
  free(host);
  printf("done\n");
  return 0;
}
