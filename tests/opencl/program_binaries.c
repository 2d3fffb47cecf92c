/* Program binaries and kernel arguments of a program built with an empty
 * options string (as many applications pass):
 * - clSetKernelArg errors come back from clSetKernelArg itself, never from a
 *   later unrelated call;
 * - CL_PROGRAM_BINARY_SIZES / CL_PROGRAM_BINARIES round-trip through
 *   clCreateProgramWithBinary, and the rebuilt kernel computes the same. */
#include "ocl_common.h"

static const char *kSource =
    "__kernel void twice(__global const int *in, __global int *out) {\n"
    "  size_t i = get_global_id(0);\n"
    "  out[i] = in[i] * 2 + 1;\n"
    "}\n";

enum { N = 256 };

static uint64_t run_twice(cl_context ctx, cl_command_queue q, cl_program prog) {
  cl_int err = CL_SUCCESS;
  cl_kernel k = clCreateKernel(prog, "twice", &err);
  CHECK("clCreateKernel", err);
  int host[N];
  for (int i = 0; i < N; i++) host[i] = i * 7 - 100;
  cl_mem in = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof host, host, &err);
  CHECK("clCreateBuffer(in)", err);
  cl_mem outb = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, sizeof host, NULL, &err);
  CHECK("clCreateBuffer(out)", err);
  CHECK("clSetKernelArg(0)", clSetKernelArg(k, 0, sizeof in, &in));
  CHECK("clSetKernelArg(1)", clSetKernelArg(k, 1, sizeof outb, &outb));
  size_t global = N;
  CHECK("clEnqueueNDRangeKernel",
        clEnqueueNDRangeKernel(q, k, 1, NULL, &global, NULL, 0, NULL, NULL));
  int result[N];
  CHECK("clEnqueueReadBuffer",
        clEnqueueReadBuffer(q, outb, CL_TRUE, 0, sizeof result, result, 0, NULL, NULL));
  int ok = 1;
  for (int i = 0; i < N; i++) ok &= result[i] == host[i] * 2 + 1;
  ocl_require("results", ok);
  clReleaseMemObject(in);
  clReleaseMemObject(outb);
  clReleaseKernel(k);
  return ocl_fnv1a(result, sizeof result);
}

int main(void) {
  cl_platform_id platform;
  cl_device_id device;
  ocl_first_device(&platform, &device);
  cl_context ctx = ocl_context(platform, device);
  cl_command_queue q = ocl_queue(ctx, device, 0);

  /* An empty options string. */
  cl_program prog = ocl_build(ctx, device, kSource, "");
  cl_int err = CL_SUCCESS;
  cl_kernel k = clCreateKernel(prog, "twice", &err);
  CHECK("clCreateKernel", err);
  cl_mem m = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 64, NULL, &err);
  CHECK("clCreateBuffer", err);
  int value = 3;
  printf("clSetKernelArg(index 9): %d\n", (int)clSetKernelArg(k, 9, sizeof m, &m));
  printf("clSetKernelArg(wrong size): %d\n", (int)clSetKernelArg(k, 0, 3, &m));
  printf("clSetKernelArg(int for a pointer): %d\n",
         (int)clSetKernelArg(k, 1, sizeof value, &value));
  /* The next calls report their own results only. */
  size_t num_kernels = 0;
  CHECK("clGetProgramInfo(NUM_KERNELS)",
        clGetProgramInfo(prog, CL_PROGRAM_NUM_KERNELS, sizeof num_kernels, &num_kernels, NULL));
  printf("kernels: %zu\n", num_kernels);
  CHECK("clSetKernelArg(0)", clSetKernelArg(k, 0, sizeof m, &m));
  /* The same kind of value again (hira: async, learnt from the first), then
   * other kinds and sizes (hira: sync, the implementation answers). */
  for (int i = 0; i < 20; i++)
    CHECK("clSetKernelArg(0, again)", clSetKernelArg(k, 0, sizeof m, &m));
  printf("clSetKernelArg(0, short): %d\n", (int)clSetKernelArg(k, 0, 4, &m));
  printf("clSetKernelArg(0, NULL value): %d\n", (int)clSetKernelArg(k, 0, sizeof m, NULL));
  cl_mem none = NULL;
  printf("clSetKernelArg(0, NULL buffer): %d\n", (int)clSetKernelArg(k, 0, sizeof none, &none));
  CHECK("clSetKernelArg(0, back)", clSetKernelArg(k, 0, sizeof m, &m));
  CHECK("clFinish", clFinish(q));
  clReleaseMemObject(m);
  clReleaseKernel(k);

  const uint64_t from_source = run_twice(ctx, q, prog);

  /* Binaries out, and back in. */
  size_t size = 0, ret = 0;
  CHECK("clGetProgramInfo(BINARY_SIZES)",
        clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof size, &size, &ret));
  printf("binary sizes ret: %zu, nonzero: %d\n", ret, size > 0);
  unsigned char *binary = (unsigned char *)malloc(size);
  unsigned char *binaries[1] = {binary};
  CHECK("clGetProgramInfo(BINARIES)",
        clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof binaries, binaries, &ret));
  printf("binaries ret: %zu, pointer kept: %d\n", ret, binaries[0] == binary);
  printf("clGetProgramInfo(BINARIES, too small): %d\n",
         (int)clGetProgramInfo(prog, CL_PROGRAM_BINARIES, 1, binaries, NULL));

  const unsigned char *in_binaries[1] = {binary};
  cl_int status = -1;
  cl_program again = clCreateProgramWithBinary(ctx, 1, &device, &size, in_binaries, &status, &err);
  CHECK("clCreateProgramWithBinary", err);
  printf("binary status: %d\n", (int)status);
  CHECK("clBuildProgram(binary)", clBuildProgram(again, 1, &device, NULL, NULL, NULL));
  const uint64_t from_binary = run_twice(ctx, q, again);
  ocl_require("binary computes as the source", from_binary == from_source);

  /* A corrupt binary is refused by the implementation. */
  unsigned char junk[64];
  memset(junk, 0xA5, sizeof junk);
  const unsigned char *junk_list[1] = {junk};
  size_t junk_size = sizeof junk;
  cl_program bad = clCreateProgramWithBinary(ctx, 1, &device, &junk_size, junk_list, &status, &err);
  printf("corrupt binary: err %d, status %d, program %s\n", (int)err, (int)status,
         bad ? "non-NULL" : "NULL");
  if (bad) clReleaseProgram(bad);

  free(binary);
  clReleaseProgram(again);
  clReleaseProgram(prog);
  clReleaseCommandQueue(q);
  clReleaseContext(ctx);
  printf("done\n");
  return 0;
}
