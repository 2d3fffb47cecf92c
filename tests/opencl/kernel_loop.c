/* kernel_loop: runs one compute kernel over and over (enqueue, clFinish)
 * for SECONDS and prints, per kernel, when it finished (CLOCK_MONOTONIC, ns)
 * and how long the enqueue-to-finish took. The fairness benchmark runs
 * several at once, each in its own VM, with kernels of different lengths.
 * Usage: ocl_kernel_loop ITERATIONS WORK_ITEMS SECONDS */
#include "ocl_common.h"

#include <time.h>

static const char *src =
    "__kernel void spin(__global float *x, uint iterations) {\n"
    "    size_t i = get_global_id(0);\n"
    "    float v = x[i];\n"
    "    for (uint k = 0; k < iterations; k++) v = v * 0.999999f + 0.5f;\n"
    "    x[i] = v;\n"
    "}\n";

static unsigned long long now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: ocl_kernel_loop ITERATIONS WORK_ITEMS SECONDS\n");
        return 2;
    }
    cl_uint iterations = (cl_uint)strtoul(argv[1], NULL, 10);
    size_t items = (size_t)strtoull(argv[2], NULL, 10);
    double seconds = atof(argv[3]);
    cl_platform_id platform;
    cl_device_id dev;
    cl_int err;
    ocl_first_device(&platform, &dev);
    cl_context ctx = ocl_context(platform, dev);
    cl_command_queue q = ocl_queue(ctx, dev, 0);
    cl_program prog = ocl_build(ctx, dev, src, NULL);
    cl_kernel k = ocl_kernel(prog, "spin");
    cl_mem x = clCreateBuffer(ctx, CL_MEM_READ_WRITE, items * sizeof(float), NULL, &err);
    CHECK("clCreateBuffer", err);
    const float zero = 0.0f;
    CHECK("clEnqueueFillBuffer",
          clEnqueueFillBuffer(q, x, &zero, sizeof(zero), 0, items * sizeof(float), 0, NULL, NULL));
    CHECK("clSetKernelArg(0)", clSetKernelArg(k, 0, sizeof(cl_mem), &x));
    CHECK("clSetKernelArg(1)", clSetKernelArg(k, 1, sizeof(cl_uint), &iterations));
    CHECK("clFinish", clFinish(q));
    const unsigned long long end = now_ns() + (unsigned long long)(seconds * 1e9);
    unsigned long long t;
    while ((t = now_ns()) < end) {
        /* Only the timings on stdout: failures end the run. */
        if ((err = clEnqueueNDRangeKernel(q, k, 1, NULL, &items, NULL, 0, NULL, NULL)) != CL_SUCCESS ||
            (err = clFinish(q)) != CL_SUCCESS) {
            fprintf(stderr, "kernel_loop: %d\n", err);
            return 1;
        }
        const unsigned long long done = now_ns();
        printf("%llu %llu\n", done, done - t);
    }
    clReleaseMemObject(x);
    clReleaseKernel(k);
    clReleaseProgram(prog);
    clReleaseCommandQueue(q);
    clReleaseContext(ctx);
    return 0;
}
