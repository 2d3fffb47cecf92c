/* The OpenCL 2.0 - 3.0 entry points, as a 3.0 application calls them:
 * queues with properties, buffers/images/samplers with properties, pipes,
 * IL programs, specialization constants, kernel cloning, sub-group info,
 * timers, default device queues, release/destructor callbacks, and SVM.
 *
 * Results and error codes are printed and compared with a native run. SVM is
 * the exception a remoted implementation legitimately differs in (it cannot
 * cross a VM boundary): what is compared is that the SVM entry points agree
 * with the SVM capabilities the device reports. */
#define CL_TARGET_OPENCL_VERSION 300
#define CL_USE_DEPRECATED_OPENCL_2_2_APIS
#include "ocl_common.h"

#include <pthread.h>
#include <time.h>

#define CHECK_QUIET(call)                                        \
  do {                                                           \
    cl_int e_ = (call);                                          \
    if (e_ != CL_SUCCESS) ocl_expect(#call, e_, CL_SUCCESS);     \
  } while (0)

static const char *kSource =
    "__kernel void add(__global int *v, int k) { v[get_global_id(0)] += k; }\n";

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int destructor_calls, release_calls;

static void CL_CALLBACK on_context_destroyed(cl_context c, void *user_data) {
  (void)c;
  pthread_mutex_lock(&mu);
  destructor_calls += user_data == (void *)&destructor_calls;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static void CL_CALLBACK on_program_released(cl_program p, void *user_data) {
  (void)p;
  pthread_mutex_lock(&mu);
  release_calls += user_data == (void *)&release_calls;
  pthread_cond_broadcast(&cv);
  pthread_mutex_unlock(&mu);
}

static int wait_count(int *counter) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 5;
  pthread_mutex_lock(&mu);
  while (*counter == 0 && pthread_cond_timedwait(&cv, &mu, &deadline) == 0) {
  }
  const int n = *counter;
  pthread_mutex_unlock(&mu);
  return n;
}

static void svm_checks(cl_context ctx, cl_command_queue q, cl_kernel k, cl_device_id device) {
  cl_device_svm_capabilities caps = 0;
  CHECK("clGetDeviceInfo(SVM_CAPABILITIES)",
        clGetDeviceInfo(device, CL_DEVICE_SVM_CAPABILITIES, sizeof caps, &caps, NULL));
  const int has_svm = (caps & CL_DEVICE_SVM_COARSE_GRAIN_BUFFER) != 0;
  void *p = clSVMAlloc(ctx, CL_MEM_READ_WRITE, 4096, 0);
  int consistent = has_svm ? p != NULL : p == NULL;
  if (p != NULL) {
    cl_int err = clEnqueueSVMMap(q, CL_TRUE, CL_MAP_WRITE, p, 4096, 0, NULL, NULL);
    if (err == CL_SUCCESS) {
      memset(p, 0, 4096);
      err = clEnqueueSVMUnmap(q, p, 0, NULL, NULL);
    }
    consistent &= err == CL_SUCCESS && clSetKernelArgSVMPointer(k, 0, p) == CL_SUCCESS;
    clFinish(q);
    clSVMFree(ctx, p);
  } else {
    char a[16], b[16];
    consistent &= clSetKernelArgSVMPointer(k, 0, a) == CL_INVALID_OPERATION;
    consistent &= clEnqueueSVMMemcpy(q, CL_TRUE, a, b, 16, 0, NULL, NULL) == CL_INVALID_OPERATION;
    consistent &= clEnqueueSVMMap(q, CL_TRUE, CL_MAP_READ, a, 16, 0, NULL, NULL) ==
                  CL_INVALID_OPERATION;
    clSVMFree(ctx, NULL); /* must do nothing */
  }
  printf("SVM entry points agree with the reported capabilities: %d\n", consistent);
}

int main(void) {
  cl_platform_id platform;
  cl_device_id device;
  ocl_first_device(&platform, &device);
  char version[256] = {0};
  CHECK("clGetPlatformInfo(VERSION)",
        clGetPlatformInfo(platform, CL_PLATFORM_VERSION, sizeof version - 1, version, NULL));
  printf("platform version: %.10s\n", version);
  cl_int err = CL_SUCCESS;
  cl_context ctx = clCreateContext(NULL, 1, &device, NULL, NULL, &err);
  CHECK("clCreateContext", err);
  CHECK("clSetContextDestructorCallback",
        clSetContextDestructorCallback(ctx, on_context_destroyed, &destructor_calls));

  /* Queues with properties. */
  cl_queue_properties qprops[] = {CL_QUEUE_PROPERTIES, CL_QUEUE_PROFILING_ENABLE, 0};
  cl_command_queue q = clCreateCommandQueueWithProperties(ctx, device, qprops, &err);
  CHECK("clCreateCommandQueueWithProperties", err);
  cl_command_queue_properties got = 0;
  CHECK("clGetCommandQueueInfo(PROPERTIES)",
        clGetCommandQueueInfo(q, CL_QUEUE_PROPERTIES, sizeof got, &got, NULL));
  printf("queue properties: %llu\n", (unsigned long long)got);
  size_t props_size = 0;
  err = clGetCommandQueueInfo(q, CL_QUEUE_PROPERTIES_ARRAY, 0, NULL, &props_size);
  printf("clGetCommandQueueInfo(PROPERTIES_ARRAY): %d, size %zu\n", (int)err, props_size);
  cl_queue_properties bad_props[] = {CL_QUEUE_PROPERTIES, (cl_queue_properties)1 << 40, 0};
  cl_command_queue bad = clCreateCommandQueueWithProperties(ctx, device, bad_props, &err);
  printf("queue with bad properties: err %d, queue %s\n", (int)err, bad ? "non-NULL" : "NULL");
  if (bad) clReleaseCommandQueue(bad);
  /* (No on-device queue: PoCL aborts the process on CL_QUEUE_ON_DEVICE.) */
  printf("clSetDefaultDeviceCommandQueue(host queue): %d\n",
         (int)clSetDefaultDeviceCommandQueue(ctx, device, q));

  /* Memory objects with properties. */
  int init[64];
  for (int i = 0; i < 64; i++) init[i] = i;
  cl_mem buf = clCreateBufferWithProperties(ctx, NULL, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR,
                                            sizeof init, init, &err);
  CHECK("clCreateBufferWithProperties", err);
  cl_mem_properties no_props[] = {0};
  cl_mem buf2 = clCreateBufferWithProperties(ctx, no_props, CL_MEM_READ_WRITE, 256, NULL, &err);
  CHECK("clCreateBufferWithProperties(empty list)", err);
  /* Immutable properties may be answered by the guest; counts must not be. */
  size_t size_sum = 0;
  for (int i = 0; i < 1000; i++) {
    size_t sz = 0;
    CHECK_QUIET(clGetMemObjectInfo(buf2, CL_MEM_SIZE, sizeof sz, &sz, NULL));
    size_sum += sz;
  }
  printf("1000 size queries: %zu\n", size_sum);
  cl_uint refs[3] = {0, 0, 0}, maps[2] = {0, 0};
  clGetMemObjectInfo(buf2, CL_MEM_REFERENCE_COUNT, sizeof refs[0], &refs[0], NULL);
  CHECK("clRetainMemObject", clRetainMemObject(buf2));
  clGetMemObjectInfo(buf2, CL_MEM_REFERENCE_COUNT, sizeof refs[1], &refs[1], NULL);
  CHECK("clReleaseMemObject", clReleaseMemObject(buf2));
  clGetMemObjectInfo(buf2, CL_MEM_REFERENCE_COUNT, sizeof refs[2], &refs[2], NULL);
  printf("reference counts: %u %u %u\n", refs[0], refs[1], refs[2]);
  clGetMemObjectInfo(buf2, CL_MEM_MAP_COUNT, sizeof maps[0], &maps[0], NULL);
  void *mapped = clEnqueueMapBuffer(q, buf2, CL_TRUE, CL_MAP_READ, 0, 64, 0, NULL, NULL, &err);
  CHECK("clEnqueueMapBuffer", err);
  clGetMemObjectInfo(buf2, CL_MEM_MAP_COUNT, sizeof maps[1], &maps[1], NULL);
  CHECK("clEnqueueUnmapMemObject", clEnqueueUnmapMemObject(q, buf2, mapped, 0, NULL, NULL));
  CHECK("clFinish", clFinish(q));
  printf("map counts: %u then %u\n", maps[0], maps[1]);
  size_t mprops = 99;
  CHECK("clGetMemObjectInfo(PROPERTIES)",
        clGetMemObjectInfo(buf2, CL_MEM_PROPERTIES, 0, NULL, &mprops));
  printf("memory properties size: %zu\n", mprops);
  cl_bool images = CL_FALSE;
  clGetDeviceInfo(device, CL_DEVICE_IMAGE_SUPPORT, sizeof images, &images, NULL);
  if (images) {
    cl_image_format fmt = {CL_RGBA, CL_UNORM_INT8};
    cl_image_desc desc;
    memset(&desc, 0, sizeof desc);
    desc.image_type = CL_MEM_OBJECT_IMAGE2D;
    desc.image_width = 16;
    desc.image_height = 4;
    cl_mem img = clCreateImageWithProperties(ctx, NULL, CL_MEM_READ_ONLY, &fmt, &desc, NULL, &err);
    CHECK("clCreateImageWithProperties", err);
    clReleaseMemObject(img);
    cl_sampler_properties sprops[] = {CL_SAMPLER_NORMALIZED_COORDS, CL_TRUE,
                                      CL_SAMPLER_ADDRESSING_MODE, CL_ADDRESS_CLAMP,
                                      CL_SAMPLER_FILTER_MODE, CL_FILTER_LINEAR, 0};
    cl_sampler s = clCreateSamplerWithProperties(ctx, sprops, &err);
    CHECK("clCreateSamplerWithProperties", err);
    cl_addressing_mode mode = 0;
    CHECK("clGetSamplerInfo(ADDRESSING_MODE)",
          clGetSamplerInfo(s, CL_SAMPLER_ADDRESSING_MODE, sizeof mode, &mode, NULL));
    printf("sampler addressing mode: %u\n", (unsigned)mode);
    clReleaseSampler(s);
  }

  /* Pipes. */
  cl_mem pipe = clCreatePipe(ctx, CL_MEM_READ_WRITE, 16, 32, NULL, &err);
  printf("clCreatePipe: err %d\n", (int)err);
  if (pipe != NULL) {
    cl_uint packets = 0;
    printf("clGetPipeInfo(MAX_PACKETS): %d\n",
           (int)clGetPipeInfo(pipe, CL_PIPE_MAX_PACKETS, sizeof packets, &packets, NULL));
    printf("max packets: %u\n", packets);
    clReleaseMemObject(pipe);
  }

  /* Programs: IL, specialization constants, release callbacks. */
  const unsigned char not_spirv[16] = {1, 2, 3, 4};
  cl_program il = clCreateProgramWithIL(ctx, not_spirv, sizeof not_spirv, &err);
  printf("clCreateProgramWithIL(not SPIR-V): err %d\n", (int)err);
  if (il) clReleaseProgram(il);
  cl_program prog = ocl_build(ctx, device, kSource, "");
  int spec_value = 7;
  printf("clSetProgramSpecializationConstant(built from source): %d\n",
         (int)clSetProgramSpecializationConstant(prog, 0, sizeof spec_value, &spec_value));
  err = clSetProgramReleaseCallback(prog, on_program_released, &release_calls);
  printf("clSetProgramReleaseCallback: %d\n", (int)err);
  const int release_registered = err == CL_SUCCESS;

  /* Kernels: clones keep their arguments; sub-group info. */
  cl_kernel k = ocl_kernel(prog, "add");
  int three = 3;
  CHECK("clSetKernelArg(0)", clSetKernelArg(k, 0, sizeof buf, &buf));
  CHECK("clSetKernelArg(1)", clSetKernelArg(k, 1, sizeof three, &three));
  cl_kernel clone = clCloneKernel(k, &err);
  CHECK("clCloneKernel", err);
  size_t global = 64;
  CHECK("clEnqueueNDRangeKernel(clone)",
        clEnqueueNDRangeKernel(q, clone, 1, NULL, &global, NULL, 0, NULL, NULL));
  int four = 4;
  CHECK("clSetKernelArg(clone, 1)", clSetKernelArg(clone, 1, sizeof four, &four));
  cl_event done;
  CHECK("clEnqueueNDRangeKernel(original)",
        clEnqueueNDRangeKernel(q, k, 1, NULL, &global, NULL, 0, NULL, &done));
  CHECK("clEnqueueNDRangeKernel(clone again)",
        clEnqueueNDRangeKernel(q, clone, 1, NULL, &global, NULL, 0, NULL, NULL));
  int out[64];
  CHECK("clEnqueueReadBuffer",
        clEnqueueReadBuffer(q, buf, CL_TRUE, 0, sizeof out, out, 0, NULL, NULL));
  int ok = 1;
  for (int i = 0; i < 64; i++) ok &= out[i] == i + 10;
  ocl_require("clone kept the arguments and has its own", ok);
  cl_ulong start = 0, end = 0;
  CHECK("clGetEventProfilingInfo(START)",
        clGetEventProfilingInfo(done, CL_PROFILING_COMMAND_START, sizeof start, &start, NULL));
  CHECK("clGetEventProfilingInfo(END)",
        clGetEventProfilingInfo(done, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL));
  printf("profiled: %d\n", end >= start && start != 0);
  clReleaseEvent(done);
  size_t local = 1, subgroups = 0;
  err = clGetKernelSubGroupInfo(k, device, CL_KERNEL_MAX_NUM_SUB_GROUPS, 0, NULL,
                                sizeof subgroups, &subgroups, NULL);
  printf("clGetKernelSubGroupInfo(MAX_NUM_SUB_GROUPS): %d\n", (int)err);
  err = clGetKernelSubGroupInfo(k, device, CL_KERNEL_SUB_GROUP_COUNT_FOR_NDRANGE, sizeof local,
                                &local, sizeof subgroups, &subgroups, NULL);
  printf("clGetKernelSubGroupInfo(COUNT_FOR_NDRANGE): %d\n", (int)err);

  /* Timers. */
  cl_ulong dev_t = 0, host_t = 0, host_only = 0;
  err = clGetDeviceAndHostTimer(device, &dev_t, &host_t);
  printf("clGetDeviceAndHostTimer: %d\n", (int)err);
  err = clGetHostTimer(device, &host_only);
  printf("clGetHostTimer: %d, after the pair: %d\n", (int)err,
         err != CL_SUCCESS || host_only >= host_t);

  /* SVM: whatever the device says, the entry points must agree with it. */
  svm_checks(ctx, q, clone, device);
  cl_bool exec_native = CL_FALSE;
  cl_device_exec_capabilities exec = 0;
  CHECK("clGetDeviceInfo(EXECUTION_CAPABILITIES)",
        clGetDeviceInfo(device, CL_DEVICE_EXECUTION_CAPABILITIES, sizeof exec, &exec, NULL));
  exec_native = (exec & CL_EXEC_NATIVE_KERNEL) != 0;
  printf("kernel execution: %d\n", (exec & CL_EXEC_KERNEL) != 0);
  (void)exec_native; /* native kernels: hira reports none (a guest pointer cannot run on the host) */

  clReleaseKernel(clone);
  clReleaseKernel(k);
  clReleaseProgram(prog);
  if (release_registered) printf("program release callback: %d\n", wait_count(&release_calls));
  clReleaseMemObject(buf);
  clReleaseMemObject(buf2);
  clReleaseCommandQueue(q);
  clReleaseContext(ctx);
  printf("context destructor callback: %d\n", wait_count(&destructor_calls));
  printf("done\n");
  return 0;
}
