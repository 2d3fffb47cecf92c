/* Garbage, stale and wrong-type handles, run only through hira: natively
 * PoCL may crash on them. hira validates every handle before the real call
 * and answers with the code the OpenCL 1.2 specification names for that
 * argument; afterwards the same process still computes correctly. */
#include "ocl_common.h"

static const char *kSource =
    "__kernel void twice(__global int *v) { size_t i = get_global_id(0); v[i] = 2 * v[i]; }";

int main(void) {
  cl_platform_id platform;
  cl_device_id device;
  cl_int err;
  CHECK("clGetPlatformIDs", clGetPlatformIDs(1, &platform, NULL));
  CHECK("clGetDeviceIDs", clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 1, &device, NULL));
  cl_context ctx = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
  CHECK("clCreateContext", err);
  cl_command_queue q = clCreateCommandQueue(ctx, device, 0, &err);
  CHECK("clCreateCommandQueue", err);

  /* Made-up handles. */
  cl_context bogus_ctx = (cl_context)(uintptr_t)0x1234;
  size_t size = 0;
  ocl_expect("clGetContextInfo(made-up context)",
             clGetContextInfo(bogus_ctx, CL_CONTEXT_NUM_DEVICES, 0, NULL, &size),
             CL_INVALID_CONTEXT);
  cl_mem m = clCreateBuffer(bogus_ctx, CL_MEM_READ_WRITE, 64, NULL, &err);
  ocl_expect("clCreateBuffer(made-up context)", err, CL_INVALID_CONTEXT);
  ocl_require("clCreateBuffer(made-up context) returns NULL", m == NULL);
  ocl_expect("clFinish(made-up queue)", clFinish((cl_command_queue)(uintptr_t)0xdeadbeef),
             CL_INVALID_COMMAND_QUEUE);
  ocl_expect("clGetDeviceInfo(made-up device)",
             clGetDeviceInfo((cl_device_id)(uintptr_t)8, CL_DEVICE_TYPE, 0, NULL, &size),
             CL_INVALID_DEVICE);

  /* A handle of another type. */
  cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 16 * sizeof(cl_int), NULL, &err);
  CHECK("clCreateBuffer", err);
  ocl_expect("clFinish(a buffer as queue)", clFinish((cl_command_queue)buf),
             CL_INVALID_COMMAND_QUEUE);
  ocl_expect("clRetainContext(a queue as context)", clRetainContext((cl_context)q),
             CL_INVALID_CONTEXT);
  cl_int host[16];
  ocl_expect("clEnqueueReadBuffer(a context as buffer)",
             clEnqueueReadBuffer(q, (cl_mem)ctx, CL_TRUE, 0, sizeof(host), host, 0, NULL, NULL),
             CL_INVALID_MEM_OBJECT);

  /* A released handle. */
  cl_mem gone = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 64, NULL, &err);
  CHECK("clCreateBuffer(gone)", err);
  CHECK("clReleaseMemObject(gone)", clReleaseMemObject(gone));
  ocl_expect("clGetMemObjectInfo(released buffer)",
             clGetMemObjectInfo(gone, CL_MEM_SIZE, sizeof(size), &size, NULL),
             CL_INVALID_MEM_OBJECT);
  ocl_expect("clReleaseMemObject(released buffer)", clReleaseMemObject(gone),
             CL_INVALID_MEM_OBJECT);

  /* Bad handles inside arrays: a wait list and a device list. */
  cl_event bogus_event = (cl_event)(uintptr_t)0x77;
  ocl_expect("clWaitForEvents(made-up event)", clWaitForEvents(1, &bogus_event), CL_INVALID_EVENT);
  cl_device_id devices[2] = {device, (cl_device_id)(uintptr_t)0x99};
  cl_context c2 = clCreateContext(NULL, 2, devices, NULL, NULL, &err);
  ocl_expect("clCreateContext(made-up device in list)", err, CL_INVALID_DEVICE);
  ocl_require("clCreateContext(made-up device in list) returns NULL", c2 == NULL);

  /* Unmapping memory that was never mapped. */
  ocl_expect("clEnqueueUnmapMemObject(never mapped)",
             clEnqueueUnmapMemObject(q, buf, host, 0, NULL, NULL), CL_INVALID_VALUE);

  /* The process still computes correctly. */
  for (int i = 0; i < 16; ++i) host[i] = i;
  CHECK("clEnqueueWriteBuffer",
        clEnqueueWriteBuffer(q, buf, CL_TRUE, 0, sizeof(host), host, 0, NULL, NULL));
  cl_program prog = clCreateProgramWithSource(ctx, 1, &kSource, NULL, &err);
  CHECK("clCreateProgramWithSource", err);
  CHECK("clBuildProgram", clBuildProgram(prog, 1, &device, NULL, NULL, NULL));
  cl_kernel k = clCreateKernel(prog, "twice", &err);
  CHECK("clCreateKernel", err);
  /* Bytes that name no buffer, and a released buffer, for a __global
   * argument: refused (natively PoCL dereferences them as a cl_mem). */
  cl_mem bogus_mem = (cl_mem)(uintptr_t)0x4141414141414141ull;
  ocl_expect("clSetKernelArg(made-up buffer)", clSetKernelArg(k, 0, sizeof(bogus_mem), &bogus_mem),
             CL_INVALID_MEM_OBJECT);
  ocl_expect("clSetKernelArg(released buffer)", clSetKernelArg(k, 0, sizeof(gone), &gone),
             CL_INVALID_MEM_OBJECT);
  CHECK("clSetKernelArg", clSetKernelArg(k, 0, sizeof(buf), &buf));
  const size_t global = 16;
  CHECK("clEnqueueNDRangeKernel",
        clEnqueueNDRangeKernel(q, k, 1, NULL, &global, NULL, 0, NULL, NULL));
  CHECK("clEnqueueReadBuffer",
        clEnqueueReadBuffer(q, buf, CL_TRUE, 0, sizeof(host), host, 0, NULL, NULL));
  int ok = 1;
  for (int i = 0; i < 16; ++i) ok &= host[i] == 2 * i;
  ocl_require("results after hostile calls", ok);

  /* The same kernel from the program's binary: implementations give no
   * argument info for it (NVIDIA's for no program built without
   * -cl-kernel-arg-info), and the server must find out otherwise. */
  size_t binary_size = 0;
  CHECK("clGetProgramInfo(BINARY_SIZES)",
        clGetProgramInfo(prog, CL_PROGRAM_BINARY_SIZES, sizeof(binary_size), &binary_size, NULL));
  unsigned char *binary = malloc(binary_size);
  ocl_require("binary allocated", binary != NULL);
  CHECK("clGetProgramInfo(BINARIES)",
        clGetProgramInfo(prog, CL_PROGRAM_BINARIES, sizeof(binary), &binary, NULL));
  const unsigned char *binaries[] = {binary};
  cl_program from_binary =
      clCreateProgramWithBinary(ctx, 1, &device, &binary_size, binaries, NULL, &err);
  CHECK("clCreateProgramWithBinary", err);
  free(binary);
  CHECK("clBuildProgram(binary)", clBuildProgram(from_binary, 1, &device, NULL, NULL, NULL));
  cl_kernel kb = clCreateKernel(from_binary, "twice", &err);
  CHECK("clCreateKernel(binary)", err);
  ocl_expect("clSetKernelArg(binary kernel, made-up buffer)",
             clSetKernelArg(kb, 0, sizeof(bogus_mem), &bogus_mem), CL_INVALID_MEM_OBJECT);
  ocl_expect("clSetKernelArg(binary kernel, released buffer)",
             clSetKernelArg(kb, 0, sizeof(gone), &gone), CL_INVALID_MEM_OBJECT);
  cl_mem none = NULL;
  CHECK("clSetKernelArg(binary kernel, NULL buffer)", clSetKernelArg(kb, 0, sizeof(none), &none));
  CHECK("clSetKernelArg(binary kernel)", clSetKernelArg(kb, 0, sizeof(buf), &buf));
  CHECK("clEnqueueNDRangeKernel(binary kernel)",
        clEnqueueNDRangeKernel(q, kb, 1, NULL, &global, NULL, 0, NULL, NULL));
  CHECK("clEnqueueReadBuffer",
        clEnqueueReadBuffer(q, buf, CL_TRUE, 0, sizeof(host), host, 0, NULL, NULL));
  ok = 1;
  for (int i = 0; i < 16; ++i) ok &= host[i] == 4 * i;
  ocl_require("results of the binary kernel", ok);
  clReleaseKernel(kb);
  clReleaseProgram(from_binary);
  clReleaseKernel(k);
  clReleaseProgram(prog);
  clReleaseMemObject(buf);
  clReleaseCommandQueue(q);
  clReleaseContext(ctx);
  printf("OK\n");
  return 0;
}
