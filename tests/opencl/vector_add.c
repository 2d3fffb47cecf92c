/* vector_add: float c = a + b over N = 1<<16 elements. */
#include "ocl_common.h"

#define N (1u << 16)

static const char *src =
    "__kernel void vadd(__global const float *a, __global const float *b,\n"
    "                   __global float *c, uint n) {\n"
    "    size_t i = get_global_id(0);\n"
    "    if (i < n) c[i] = a[i] + b[i];\n"
    "}\n";

int main(void)
{
    cl_platform_id platform;
    cl_device_id dev;
    cl_int err;
    ocl_first_device(&platform, &dev);
    cl_context ctx = ocl_context(platform, dev);
    cl_command_queue q = ocl_queue(ctx, dev, 0);
    cl_program prog = ocl_build(ctx, dev, src, NULL);
    cl_kernel k = ocl_kernel(prog, "vadd");

    float *a = malloc(N * sizeof(float));
    float *b = malloc(N * sizeof(float));
    float *c = malloc(N * sizeof(float));
    if (!a || !b || !c)
        return 1;
    for (cl_uint i = 0; i < N; i++) {
        /* Exactly representable inputs and sums. */
        a[i] = (float)i * 0.25f;
        b[i] = (float)(N - i) * 0.5f;
        c[i] = -1.0f;
    }

    cl_mem da = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                               N * sizeof(float), a, &err);
    CHECK("clCreateBuffer(a)", err);
    cl_mem db = clCreateBuffer(ctx, CL_MEM_READ_ONLY, N * sizeof(float), NULL, &err);
    CHECK("clCreateBuffer(b)", err);
    cl_mem dc = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, N * sizeof(float), NULL, &err);
    CHECK("clCreateBuffer(c)", err);
    CHECK("clEnqueueWriteBuffer(b)",
          clEnqueueWriteBuffer(q, db, CL_TRUE, 0, N * sizeof(float), b, 0, NULL, NULL));

    cl_uint n = N;
    CHECK("clSetKernelArg(0)", clSetKernelArg(k, 0, sizeof(cl_mem), &da));
    CHECK("clSetKernelArg(1)", clSetKernelArg(k, 1, sizeof(cl_mem), &db));
    CHECK("clSetKernelArg(2)", clSetKernelArg(k, 2, sizeof(cl_mem), &dc));
    CHECK("clSetKernelArg(3)", clSetKernelArg(k, 3, sizeof(cl_uint), &n));
    size_t gws = N, lws = 256;
    CHECK("clEnqueueNDRangeKernel",
          clEnqueueNDRangeKernel(q, k, 1, NULL, &gws, &lws, 0, NULL, NULL));
    CHECK("clEnqueueReadBuffer(c)",
          clEnqueueReadBuffer(q, dc, CL_TRUE, 0, N * sizeof(float), c, 0, NULL, NULL));
    CHECK("clFinish", clFinish(q));

    unsigned mismatches = 0;
    double sum = 0.0;
    for (cl_uint i = 0; i < N; i++) {
        if (c[i] != a[i] + b[i])
            mismatches++;
        sum += c[i];
    }
    printf("mismatches: %u\n", mismatches);
    printf("c[0] = %.2f\n", c[0]);
    printf("c[1] = %.2f\n", c[1]);
    printf("c[12345] = %.2f\n", c[12345]);
    printf("c[%u] = %.2f\n", N - 1, c[N - 1]);
    printf("sum = %.2f\n", sum);
    printf("checksum = %016llx\n", (unsigned long long)ocl_fnv1a(c, N * sizeof(float)));

    CHECK("clReleaseMemObject(a)", clReleaseMemObject(da));
    CHECK("clReleaseMemObject(b)", clReleaseMemObject(db));
    CHECK("clReleaseMemObject(c)", clReleaseMemObject(dc));
    CHECK("clReleaseKernel", clReleaseKernel(k));
    CHECK("clReleaseProgram", clReleaseProgram(prog));
    CHECK("clReleaseCommandQueue", clReleaseCommandQueue(q));
    CHECK("clReleaseContext", clReleaseContext(ctx));
    free(a);
    free(b);
    free(c);
    if (mismatches)
        return 1;
    printf("OK\n");
    return 0;
}
