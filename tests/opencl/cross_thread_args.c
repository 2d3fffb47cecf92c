/* One thread sets a kernel's arguments, another enqueues it: the enqueue
 * must see the arguments (clSetKernelArg is async through hira, and each
 * guest thread has its own shadow thread in the API server). */
#include <pthread.h>

#include "ocl_common.h"

enum { N = 1024, ROUNDS = 40 };

static const char *kSource =
    "__kernel void fill(__global int *out, int value) {\n"
    "  out[get_global_id(0)] = value + (int)get_global_id(0);\n"
    "}\n";

static cl_command_queue queue;
static cl_kernel kernel;
static cl_mem buffers[2];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int ready_round = -1; /* last round whose arguments are set */
static int done_round = -1;  /* last round the enqueuer finished */

static void *setter(void *unused) {
  (void)unused;
  for (int r = 0; r < ROUNDS; ++r) {
    pthread_mutex_lock(&mu);
    while (done_round != r - 1) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    cl_int value = 1000 * r;
    if (clSetKernelArg(kernel, 0, sizeof(cl_mem), &buffers[r % 2]) != CL_SUCCESS ||
        clSetKernelArg(kernel, 1, sizeof(value), &value) != CL_SUCCESS) {
      printf("FAIL: clSetKernelArg in round %d\n", r);
      exit(1);
    }
    pthread_mutex_lock(&mu);
    ready_round = r;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
  }
  return NULL;
}

int main(void) {
  cl_platform_id platform;
  cl_device_id device;
  ocl_first_device(&platform, &device);
  cl_context ctx = ocl_context(platform, device);
  queue = ocl_queue(ctx, device, 0);
  cl_program prog = ocl_build(ctx, device, kSource, NULL);
  kernel = ocl_kernel(prog, "fill");
  cl_int err;
  for (int i = 0; i < 2; ++i) {
    buffers[i] = clCreateBuffer(ctx, CL_MEM_READ_WRITE, N * sizeof(cl_int), NULL, &err);
    CHECK("clCreateBuffer", err);
  }
  pthread_t t;
  pthread_create(&t, NULL, setter, NULL);
  int wrong = 0;
  uint64_t sum = 0;
  static cl_int host[N];
  for (int r = 0; r < ROUNDS; ++r) {
    pthread_mutex_lock(&mu);
    while (ready_round != r) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    const size_t global = N;
    if (clEnqueueNDRangeKernel(queue, kernel, 1, NULL, &global, NULL, 0, NULL, NULL) !=
            CL_SUCCESS ||
        clEnqueueReadBuffer(queue, buffers[r % 2], CL_TRUE, 0, sizeof(host), host, 0, NULL,
                            NULL) != CL_SUCCESS) {
      printf("FAIL: enqueue in round %d\n", r);
      return 1;
    }
    for (int i = 0; i < N; ++i) {
      wrong += host[i] != 1000 * r + i;
      sum += (uint64_t)host[i];
    }
    pthread_mutex_lock(&mu);
    done_round = r;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
  }
  pthread_join(t, NULL);
  printf("rounds: %d\n", ROUNDS);
  printf("elements set from another thread's arguments, wrong: %d\n", wrong);
  printf("sum: %llu\n", (unsigned long long)sum);
  clReleaseMemObject(buffers[0]);
  clReleaseMemObject(buffers[1]);
  clReleaseKernel(kernel);
  clReleaseProgram(prog);
  clReleaseCommandQueue(queue);
  clReleaseContext(ctx);
  printf("%s\n", wrong == 0 ? "OK" : "FAIL");
  return wrong == 0 ? 0 : 1;
}
