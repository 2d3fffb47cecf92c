/* build_failure: a program with a syntax error; build status, build log
 * (size query then fetch; only whether it mentions "error" is printed),
 * clCreateKernel on the failed program, then a successful rebuild. */
#include "ocl_common.h"

#include <ctype.h>

static const char *bad_src =
    "__kernel void broken(__global int *p) {\n"
    "    p[get_global_id(0)] = 1 +;\n"
    "}\n";

static const char *good_src =
    "__kernel void fine(__global int *p) {\n"
    "    p[get_global_id(0)] = 42 + FOO;\n"
    "}\n";

static int mentions_error(const char *log)
{
    for (const char *p = log; *p; p++) {
        if (tolower((unsigned char)p[0]) == 'e' && tolower((unsigned char)p[1]) == 'r' &&
            tolower((unsigned char)p[2]) == 'r' && tolower((unsigned char)p[3]) == 'o' &&
            tolower((unsigned char)p[4]) == 'r')
            return 1;
    }
    return 0;
}

int main(void)
{
    cl_platform_id platform;
    cl_device_id dev;
    cl_int err;
    ocl_first_device(&platform, &dev);
    cl_context ctx = ocl_context(platform, dev);
    cl_command_queue q = ocl_queue(ctx, dev, 0);

    cl_program prog = clCreateProgramWithSource(ctx, 1, &bad_src, NULL, &err);
    CHECK("clCreateProgramWithSource(bad)", err);
    err = clBuildProgram(prog, 1, &dev, "-DBAD=1", NULL, NULL);
    ocl_expect("clBuildProgram(bad)", err, CL_BUILD_PROGRAM_FAILURE);

    cl_build_status bst = CL_BUILD_NONE;
    CHECK("clGetProgramBuildInfo(BUILD_STATUS)",
          clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_STATUS, sizeof(bst), &bst, NULL));
    printf("build status: %d (CL_BUILD_ERROR = %d)\n", (int)bst, CL_BUILD_ERROR);
    if (bst != CL_BUILD_ERROR)
        return 1;

    size_t optlen = 0;
    CHECK("clGetProgramBuildInfo(BUILD_OPTIONS, size)",
          clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_OPTIONS, 0, NULL, &optlen));
    char opts[64] = {0};
    if (optlen > sizeof(opts))
        return 1;
    CHECK("clGetProgramBuildInfo(BUILD_OPTIONS)",
          clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_OPTIONS, optlen, opts, NULL));
    printf("build options: \"%s\" (size %zu)\n", opts, optlen);

    size_t loglen = 0;
    CHECK("clGetProgramBuildInfo(BUILD_LOG, size)",
          clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, 0, NULL, &loglen));
    printf("log size > 1: %d\n", loglen > 1);
    char *log = calloc(loglen + 1, 1);
    if (!log)
        return 1;
    size_t loglen2 = 0;
    CHECK("clGetProgramBuildInfo(BUILD_LOG)",
          clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, loglen, log, &loglen2));
    printf("log size stable: %d\n", loglen2 == loglen);
    printf("log NUL-terminated at size-1: %d\n", loglen > 0 && log[loglen - 1] == '\0' &&
                                                      strlen(log) == loglen - 1);
    printf("log non-empty: %d\n", log[0] != '\0');
    printf("log mentions error: %d\n", mentions_error(log));
    /* a too-small buffer must be rejected */
    char tiny[1];
    ocl_expect("clGetProgramBuildInfo(BUILD_LOG, too small)",
               clGetProgramBuildInfo(prog, dev, CL_PROGRAM_BUILD_LOG, sizeof(tiny), tiny, NULL),
               CL_INVALID_VALUE);
    free(log);

    cl_kernel k = clCreateKernel(prog, "broken", &err);
    ocl_expect("clCreateKernel(failed program)", err, CL_INVALID_PROGRAM_EXECUTABLE);
    printf("kernel is NULL: %d\n", k == NULL);
    cl_uint nk = 0;
    ocl_expect("clCreateKernelsInProgram(failed program)",
               clCreateKernelsInProgram(prog, 0, NULL, &nk), CL_INVALID_PROGRAM_EXECUTABLE);
    size_t nkern = 0;
    ocl_expect("clGetProgramInfo(NUM_KERNELS, failed program)",
               clGetProgramInfo(prog, CL_PROGRAM_NUM_KERNELS, sizeof(nkern), &nkern, NULL),
               CL_INVALID_PROGRAM_EXECUTABLE);
    CHECK("clReleaseProgram(bad)", clReleaseProgram(prog));

    /* the context is still usable: a correct program builds and runs */
    cl_program good = clCreateProgramWithSource(ctx, 1, &good_src, NULL, &err);
    CHECK("clCreateProgramWithSource(good)", err);
    /* without -DFOO the good source does not compile either */
    ocl_expect("clBuildProgram(good, missing define)", clBuildProgram(good, 1, &dev, NULL, NULL, NULL),
               CL_BUILD_PROGRAM_FAILURE);
    CHECK("clBuildProgram(good, -DFOO=8)", clBuildProgram(good, 1, &dev, "-DFOO=8", NULL, NULL));
    CHECK("clGetProgramBuildInfo(BUILD_STATUS)",
          clGetProgramBuildInfo(good, dev, CL_PROGRAM_BUILD_STATUS, sizeof(bst), &bst, NULL));
    printf("build status after rebuild: %d\n", (int)bst);
    k = ocl_kernel(good, "fine");
    cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 16 * sizeof(cl_int), NULL, &err);
    CHECK("clCreateBuffer", err);
    CHECK("clSetKernelArg", clSetKernelArg(k, 0, sizeof(cl_mem), &buf));
    size_t gws = 16;
    CHECK("clEnqueueNDRangeKernel", clEnqueueNDRangeKernel(q, k, 1, NULL, &gws, NULL, 0, NULL, NULL));
    cl_int out[16];
    CHECK("clEnqueueReadBuffer", clEnqueueReadBuffer(q, buf, CL_TRUE, 0, sizeof(out), out, 0, NULL, NULL));
    printf("out[0] = %d, out[15] = %d\n", out[0], out[15]);

    CHECK("clReleaseMemObject", clReleaseMemObject(buf));
    CHECK("clReleaseKernel", clReleaseKernel(k));
    CHECK("clReleaseProgram(good)", clReleaseProgram(good));
    CHECK("clReleaseCommandQueue", clReleaseCommandQueue(q));
    CHECK("clReleaseContext", clReleaseContext(ctx));
    if (out[0] != 50 || out[15] != 50)
        return 1;
    printf("OK\n");
    return 0;
}
