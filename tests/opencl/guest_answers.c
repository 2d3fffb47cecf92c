/* Entry points hira answers in the guest, run only through hira: sharing
 * that cannot cross a VM boundary (OpenGL, EGL, shared virtual memory,
 * native kernels, cl_ext_device_fission) fails as an implementation without
 * it must, a bad handle first with its own error; extension names of core
 * functions behave as the core function. */
#define CL_TARGET_OPENCL_VERSION 300
#define CL_USE_DEPRECATED_OPENCL_1_0_APIS
#include <CL/cl_egl.h>
#include <CL/cl_ext.h>
#include <CL/cl_gl.h>

/* Deprecated entry points are called on purpose: applications still do. */
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

#include "ocl_common.h"

/* A call that returns NULL and stores `want` in err. */
#define EXPECT_NULL_WITH(what, call, want)           \
  do {                                               \
    err = CL_SUCCESS;                                \
    const void *got_ = (const void *)(call);         \
    ocl_require(what " returns NULL", got_ == NULL); \
    ocl_expect(what, err, want);                     \
  } while (0)

static void native_noop(void *args) { (void)args; }

int main(void) {
  cl_platform_id platform;
  cl_device_id device;
  cl_int err;
  ocl_first_device(&platform, &device);
  cl_context ctx = ocl_context(platform, device);
  cl_command_queue q = clCreateCommandQueue(ctx, device, 0, &err);
  CHECK("clCreateCommandQueue", err);
  cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 64, NULL, &err);
  CHECK("clCreateBuffer", err);
  const char *src = "__kernel void k(__global int *v) { v[0] = 1; }";
  cl_program prog = clCreateProgramWithSource(ctx, 1, &src, NULL, &err);
  CHECK("clCreateProgramWithSource", err);
  CHECK("clBuildProgram", clBuildProgram(prog, 1, &device, "", NULL, NULL));
  cl_kernel k = clCreateKernel(prog, "k", &err);
  CHECK("clCreateKernel", err);

  const cl_context bad_ctx = (cl_context)(uintptr_t)0x1234;
  const cl_command_queue bad_q = (cl_command_queue)(uintptr_t)0x1234;
  const cl_mem bad_mem = (cl_mem)(uintptr_t)0x1234;
  const cl_kernel bad_k = (cl_kernel)(uintptr_t)0x1234;
  const cl_device_id bad_dev = (cl_device_id)(uintptr_t)0x1234;

  /* OpenGL: no context is GL-shared. */
  EXPECT_NULL_WITH("clCreateFromGLBuffer", clCreateFromGLBuffer(ctx, 0, 1, &err),
                   CL_INVALID_CONTEXT);
  EXPECT_NULL_WITH("clCreateFromGLBuffer(bad context)", clCreateFromGLBuffer(bad_ctx, 0, 1, &err),
                   CL_INVALID_CONTEXT);
  EXPECT_NULL_WITH("clCreateFromGLTexture", clCreateFromGLTexture(ctx, 0, 0, 0, 1, &err),
                   CL_INVALID_CONTEXT);
  EXPECT_NULL_WITH("clCreateFromGLTexture2D", clCreateFromGLTexture2D(ctx, 0, 0, 0, 1, &err),
                   CL_INVALID_CONTEXT);
  EXPECT_NULL_WITH("clCreateFromGLTexture3D", clCreateFromGLTexture3D(ctx, 0, 0, 0, 1, &err),
                   CL_INVALID_CONTEXT);
  EXPECT_NULL_WITH("clCreateFromGLRenderbuffer", clCreateFromGLRenderbuffer(ctx, 0, 1, &err),
                   CL_INVALID_CONTEXT);
  EXPECT_NULL_WITH("clCreateEventFromGLsyncKHR", clCreateEventFromGLsyncKHR(ctx, NULL, &err),
                   CL_INVALID_CONTEXT);
  cl_gl_object_type type;
  cl_GLuint name;
  ocl_expect("clGetGLObjectInfo", clGetGLObjectInfo(buf, &type, &name), CL_INVALID_GL_OBJECT);
  ocl_expect("clGetGLObjectInfo(bad buffer)", clGetGLObjectInfo(bad_mem, &type, &name),
             CL_INVALID_MEM_OBJECT);
  ocl_expect("clGetGLTextureInfo", clGetGLTextureInfo(buf, CL_GL_TEXTURE_TARGET, 0, NULL, NULL),
             CL_INVALID_GL_OBJECT);
  ocl_expect("clGetGLTextureInfo(bad buffer)",
             clGetGLTextureInfo(bad_mem, CL_GL_TEXTURE_TARGET, 0, NULL, NULL),
             CL_INVALID_MEM_OBJECT);
  ocl_expect("clEnqueueAcquireGLObjects", clEnqueueAcquireGLObjects(q, 1, &buf, 0, NULL, NULL),
             CL_INVALID_CONTEXT);
  ocl_expect("clEnqueueAcquireGLObjects(bad queue)",
             clEnqueueAcquireGLObjects(bad_q, 1, &buf, 0, NULL, NULL), CL_INVALID_COMMAND_QUEUE);
  ocl_expect("clEnqueueReleaseGLObjects", clEnqueueReleaseGLObjects(q, 1, &buf, 0, NULL, NULL),
             CL_INVALID_CONTEXT);
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)platform, 0};
  size_t size = 0;
  ocl_expect("clGetGLContextInfoKHR",
             clGetGLContextInfoKHR(props, CL_DEVICES_FOR_GL_CONTEXT_KHR, 0, NULL, &size),
             CL_INVALID_GL_SHAREGROUP_REFERENCE_KHR);

  /* EGL: the same. */
  EXPECT_NULL_WITH("clCreateFromEGLImageKHR",
                   clCreateFromEGLImageKHR(ctx, NULL, NULL, 0, NULL, &err), CL_INVALID_CONTEXT);
  EXPECT_NULL_WITH("clCreateEventFromEGLSyncKHR",
                   clCreateEventFromEGLSyncKHR(ctx, NULL, NULL, &err), CL_INVALID_CONTEXT);
  ocl_expect("clEnqueueAcquireEGLObjectsKHR",
             clEnqueueAcquireEGLObjectsKHR(q, 1, &buf, 0, NULL, NULL), CL_INVALID_CONTEXT);
  ocl_expect("clEnqueueReleaseEGLObjectsKHR(bad queue)",
             clEnqueueReleaseEGLObjectsKHR(bad_q, 1, &buf, 0, NULL, NULL),
             CL_INVALID_COMMAND_QUEUE);

  /* Shared virtual memory: no device has it. */
  ocl_require("clSVMAlloc returns NULL", clSVMAlloc(ctx, CL_MEM_READ_WRITE, 4096, 0) == NULL);
  clSVMFree(ctx, NULL);
  int host[4] = {0};
  void *ptrs[1] = {host};
  ocl_expect("clSetKernelArgSVMPointer", clSetKernelArgSVMPointer(k, 0, host),
             CL_INVALID_OPERATION);
  ocl_expect("clSetKernelArgSVMPointer(bad kernel)", clSetKernelArgSVMPointer(bad_k, 0, host),
             CL_INVALID_KERNEL);
  ocl_expect("clEnqueueSVMFree", clEnqueueSVMFree(q, 1, ptrs, NULL, NULL, 0, NULL, NULL),
             CL_INVALID_OPERATION);
  ocl_expect("clEnqueueSVMMemcpy", clEnqueueSVMMemcpy(q, CL_TRUE, host, host + 2, 8, 0, NULL, NULL),
             CL_INVALID_OPERATION);
  ocl_expect("clEnqueueSVMMemcpy(bad queue)",
             clEnqueueSVMMemcpy(bad_q, CL_TRUE, host, host + 2, 8, 0, NULL, NULL),
             CL_INVALID_COMMAND_QUEUE);
  ocl_expect("clEnqueueSVMMemFill", clEnqueueSVMMemFill(q, host, host, 4, 16, 0, NULL, NULL),
             CL_INVALID_OPERATION);
  ocl_expect("clEnqueueSVMMap", clEnqueueSVMMap(q, CL_TRUE, CL_MAP_READ, host, 16, 0, NULL, NULL),
             CL_INVALID_OPERATION);
  ocl_expect("clEnqueueSVMUnmap", clEnqueueSVMUnmap(q, host, 0, NULL, NULL), CL_INVALID_OPERATION);
  const void *cptrs[1] = {host};
  const size_t sizes[1] = {16};
  ocl_expect("clEnqueueSVMMigrateMem", clEnqueueSVMMigrateMem(q, 1, cptrs, sizes, 0, 0, NULL, NULL),
             CL_INVALID_OPERATION);
  ocl_expect("clSetKernelExecInfo(SVM_PTRS)",
             clSetKernelExecInfo(k, CL_KERNEL_EXEC_INFO_SVM_PTRS, sizeof(ptrs), ptrs),
             CL_INVALID_OPERATION);
  ocl_expect("clSetKernelExecInfo(unknown name)", clSetKernelExecInfo(k, 0x7777, 4, host),
             CL_INVALID_VALUE);
  ocl_expect("clSetKernelExecInfo(bad kernel)",
             clSetKernelExecInfo(bad_k, CL_KERNEL_EXEC_INFO_SVM_PTRS, sizeof(ptrs), ptrs),
             CL_INVALID_KERNEL);

  /* Native kernels would run a guest function on the host. */
  ocl_expect("clEnqueueNativeKernel",
             clEnqueueNativeKernel(q, native_noop, NULL, 0, 0, NULL, NULL, 0, NULL, NULL),
             CL_INVALID_OPERATION);

  /* cl_ext_device_fission: not offered; its retain and release are the core ones. */
  cl_device_partition_property_ext fission[] = {CL_DEVICE_PARTITION_EQUALLY_EXT, 1,
                                                CL_PROPERTIES_LIST_END_EXT};
  cl_uint n = 0;
  ocl_expect("clCreateSubDevicesEXT", clCreateSubDevicesEXT(device, fission, 0, NULL, &n),
             CL_INVALID_OPERATION);
  ocl_expect("clCreateSubDevicesEXT(bad device)",
             clCreateSubDevicesEXT(bad_dev, fission, 0, NULL, &n), CL_INVALID_DEVICE);
  CHECK("clRetainDeviceEXT", clRetainDeviceEXT(device));
  CHECK("clReleaseDeviceEXT", clReleaseDeviceEXT(device));
  ocl_expect("clReleaseDeviceEXT(bad device)", clReleaseDeviceEXT(bad_dev), CL_INVALID_DEVICE);

  /* KHR names of core functions, as applications find them: the core
   * function's answer. */
  typedef cl_command_queue (*queue_khr_fn)(cl_context, cl_device_id, const cl_queue_properties *,
                                           cl_int *);
  typedef cl_program (*il_khr_fn)(cl_context, const void *, size_t, cl_int *);
  const queue_khr_fn clCreateCommandQueueWithPropertiesKHR =
      (queue_khr_fn)clGetExtensionFunctionAddressForPlatform(
          platform, "clCreateCommandQueueWithPropertiesKHR");
  const il_khr_fn clCreateProgramWithILKHR =
      (il_khr_fn)clGetExtensionFunctionAddressForPlatform(platform, "clCreateProgramWithILKHR");
  ocl_require("KHR entry points found",
              clCreateCommandQueueWithPropertiesKHR != NULL && clCreateProgramWithILKHR != NULL);
  cl_command_queue q2 = clCreateCommandQueueWithPropertiesKHR(ctx, device, NULL, &err);
  CHECK("clCreateCommandQueueWithPropertiesKHR", err);
  CHECK("clFinish(KHR queue)", clFinish(q2));
  CHECK("clReleaseCommandQueue(KHR queue)", clReleaseCommandQueue(q2));
  EXPECT_NULL_WITH("clCreateCommandQueueWithPropertiesKHR(bad context)",
                   clCreateCommandQueueWithPropertiesKHR(bad_ctx, device, NULL, &err),
                   CL_INVALID_CONTEXT);
  const unsigned char il[4] = {1, 2, 3, 4};
  cl_int core_err, khr_err;
  cl_program p1 = clCreateProgramWithIL(ctx, il, sizeof(il), &core_err);
  cl_program p2 = clCreateProgramWithILKHR(ctx, il, sizeof(il), &khr_err);
  ocl_expect("clCreateProgramWithILKHR as clCreateProgramWithIL", khr_err, core_err);
  ocl_require("both or neither made a program", (p1 == NULL) == (p2 == NULL));
  size_t sub_core = 0, sub_khr = 0;
  const size_t local = 1;
  core_err = clGetKernelSubGroupInfo(k, device, CL_KERNEL_MAX_SUB_GROUP_SIZE_FOR_NDRANGE,
                                     sizeof(local), &local, sizeof(sub_core), &sub_core, NULL);
  khr_err = clGetKernelSubGroupInfoKHR(k, device, CL_KERNEL_MAX_SUB_GROUP_SIZE_FOR_NDRANGE,
                                       sizeof(local), &local, sizeof(sub_khr), &sub_khr, NULL);
  ocl_expect("clGetKernelSubGroupInfoKHR as clGetKernelSubGroupInfo", khr_err, core_err);
  ocl_require("same sub-group size", sub_core == sub_khr);

  /* The process still computes. */
  CHECK("clSetKernelArg", clSetKernelArg(k, 0, sizeof(buf), &buf));
  size_t one = 1;
  CHECK("clEnqueueNDRangeKernel", clEnqueueNDRangeKernel(q, k, 1, NULL, &one, NULL, 0, NULL, NULL));
  int out = 0;
  CHECK("clEnqueueReadBuffer",
        clEnqueueReadBuffer(q, buf, CL_TRUE, 0, sizeof(out), &out, 0, NULL, NULL));
  ocl_require("kernel wrote 1", out == 1);
  printf("guest answers: all as specified\n");
  return 0;
}
