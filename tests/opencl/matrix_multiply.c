/* matrix_multiply: 64x64 float C = A * B with an 8x8 local-memory tiled
 * kernel.  Inputs are small integers so every result is exact. */
#include "ocl_common.h"

#define DIM 64
#define TILE 8

static const char *src =
    "#define TILE 8\n"
    "__kernel __attribute__((reqd_work_group_size(TILE, TILE, 1)))\n"
    "void matmul(__global const float *A, __global const float *B,\n"
    "            __global float *C, int n) {\n"
    "    __local float As[TILE][TILE];\n"
    "    __local float Bs[TILE][TILE];\n"
    "    int col = get_global_id(0), row = get_global_id(1);\n"
    "    int lc = get_local_id(0), lr = get_local_id(1);\n"
    "    float acc = 0.0f;\n"
    "    for (int t = 0; t < n / TILE; t++) {\n"
    "        As[lr][lc] = A[row * n + t * TILE + lc];\n"
    "        Bs[lr][lc] = B[(t * TILE + lr) * n + col];\n"
    "        barrier(CLK_LOCAL_MEM_FENCE);\n"
    "        for (int k = 0; k < TILE; k++)\n"
    "            acc += As[lr][k] * Bs[k][lc];\n"
    "        barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    }\n"
    "    C[row * n + col] = acc;\n"
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
    cl_kernel k = ocl_kernel(prog, "matmul");

    static float A[DIM * DIM], B[DIM * DIM], C[DIM * DIM], R[DIM * DIM];
    for (int i = 0; i < DIM; i++)
        for (int j = 0; j < DIM; j++) {
            A[i * DIM + j] = (float)((i * 3 + j * 7) % 11 - 5);
            B[i * DIM + j] = (float)((i * 5 + j * 2) % 13 - 6);
            C[i * DIM + j] = 12345.0f;
        }
    for (int i = 0; i < DIM; i++)
        for (int j = 0; j < DIM; j++) {
            long acc = 0;
            for (int kk = 0; kk < DIM; kk++)
                acc += (long)A[i * DIM + kk] * (long)B[kk * DIM + j];
            R[i * DIM + j] = (float)acc;
        }

    size_t bytes = sizeof(A);
    cl_mem dA = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, A, &err);
    CHECK("clCreateBuffer(A)", err);
    cl_mem dB = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, bytes, B, &err);
    CHECK("clCreateBuffer(B)", err);
    cl_mem dC = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, bytes, NULL, &err);
    CHECK("clCreateBuffer(C)", err);

    size_t cwg[3] = {0, 0, 0};
    CHECK("clGetKernelWorkGroupInfo(COMPILE_WORK_GROUP_SIZE)",
          clGetKernelWorkGroupInfo(k, dev, CL_KERNEL_COMPILE_WORK_GROUP_SIZE,
                                   sizeof(cwg), cwg, NULL));
    printf("compile work-group size: %zu %zu %zu\n", cwg[0], cwg[1], cwg[2]);

    int n = DIM;
    CHECK("clSetKernelArg(0)", clSetKernelArg(k, 0, sizeof(cl_mem), &dA));
    CHECK("clSetKernelArg(1)", clSetKernelArg(k, 1, sizeof(cl_mem), &dB));
    CHECK("clSetKernelArg(2)", clSetKernelArg(k, 2, sizeof(cl_mem), &dC));
    CHECK("clSetKernelArg(3)", clSetKernelArg(k, 3, sizeof(int), &n));
    size_t gws[2] = {DIM, DIM}, lws[2] = {TILE, TILE};
    CHECK("clEnqueueNDRangeKernel",
          clEnqueueNDRangeKernel(q, k, 2, NULL, gws, lws, 0, NULL, NULL));
    CHECK("clEnqueueReadBuffer(C)",
          clEnqueueReadBuffer(q, dC, CL_TRUE, 0, bytes, C, 0, NULL, NULL));

    unsigned mismatches = 0;
    long total = 0;
    for (int i = 0; i < DIM * DIM; i++) {
        if (C[i] != R[i])
            mismatches++;
        total += (long)C[i];
    }
    printf("mismatches: %u\n", mismatches);
    printf("C[0][0] = %.0f\n", C[0]);
    printf("C[1][2] = %.0f\n", C[1 * DIM + 2]);
    printf("C[31][17] = %.0f\n", C[31 * DIM + 17]);
    printf("C[63][63] = %.0f\n", C[DIM * DIM - 1]);
    printf("sum = %ld\n", total);
    printf("checksum = %016llx\n", (unsigned long long)ocl_fnv1a(C, bytes));

    CHECK("clReleaseMemObject(A)", clReleaseMemObject(dA));
    CHECK("clReleaseMemObject(B)", clReleaseMemObject(dB));
    CHECK("clReleaseMemObject(C)", clReleaseMemObject(dC));
    CHECK("clReleaseKernel", clReleaseKernel(k));
    CHECK("clReleaseProgram", clReleaseProgram(prog));
    CHECK("clReleaseCommandQueue", clReleaseCommandQueue(q));
    CHECK("clReleaseContext", clReleaseContext(ctx));
    if (mismatches)
        return 1;
    printf("OK\n");
    return 0;
}
