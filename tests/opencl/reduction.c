/* reduction: sum of 1<<18 uints via per-work-group tree reduction in local
 * memory; the host adds up the per-group partial sums. */
#include "ocl_common.h"

#define N (1u << 18)
#define WG 256u

static const char *src =
    "__kernel void reduce(__global const uint *in, __global uint *partial,\n"
    "                     __local uint *scratch) {\n"
    "    uint lid = get_local_id(0);\n"
    "    uint lsz = get_local_size(0);\n"
    "    /* each work-item first adds two elements */\n"
    "    size_t base = get_group_id(0) * lsz * 2;\n"
    "    scratch[lid] = in[base + lid] + in[base + lid + lsz];\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    for (uint s = lsz / 2; s > 0; s >>= 1) {\n"
    "        if (lid < s) scratch[lid] += scratch[lid + s];\n"
    "        barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    }\n"
    "    if (lid == 0) partial[get_group_id(0)] = scratch[0];\n"
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
    cl_kernel k = ocl_kernel(prog, "reduce");

    size_t kwg = 0;
    CHECK("clGetKernelWorkGroupInfo(WORK_GROUP_SIZE)",
          clGetKernelWorkGroupInfo(k, dev, CL_KERNEL_WORK_GROUP_SIZE, sizeof(kwg), &kwg, NULL));
    ocl_require("kernel work-group size >= 256", kwg >= WG);

    cl_uint *in = malloc(N * sizeof(cl_uint));
    if (!in)
        return 1;
    uint64_t expect = 0;
    for (cl_uint i = 0; i < N; i++) {
        in[i] = (i * 2654435761u) >> 22; /* 0..1023 */
        expect += in[i];
    }
    const cl_uint groups = N / (2 * WG);
    cl_uint *partial = calloc(groups, sizeof(cl_uint));
    if (!partial)
        return 1;

    cl_mem din = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR,
                                N * sizeof(cl_uint), in, &err);
    CHECK("clCreateBuffer(in)", err);
    cl_mem dpart = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, groups * sizeof(cl_uint), NULL, &err);
    CHECK("clCreateBuffer(partial)", err);

    CHECK("clSetKernelArg(0)", clSetKernelArg(k, 0, sizeof(cl_mem), &din));
    CHECK("clSetKernelArg(1)", clSetKernelArg(k, 1, sizeof(cl_mem), &dpart));
    CHECK("clSetKernelArg(2, local)", clSetKernelArg(k, 2, WG * sizeof(cl_uint), NULL));
    size_t gws = groups * WG, lws = WG;
    CHECK("clEnqueueNDRangeKernel",
          clEnqueueNDRangeKernel(q, k, 1, NULL, &gws, &lws, 0, NULL, NULL));
    CHECK("clEnqueueReadBuffer(partial)",
          clEnqueueReadBuffer(q, dpart, CL_TRUE, 0, groups * sizeof(cl_uint), partial,
                              0, NULL, NULL));

    uint64_t sum = 0;
    for (cl_uint g = 0; g < groups; g++)
        sum += partial[g];
    printf("groups: %u\n", groups);
    printf("partial[0] = %u\n", partial[0]);
    printf("partial[%u] = %u\n", groups - 1, partial[groups - 1]);
    printf("partials checksum = %016llx\n",
           (unsigned long long)ocl_fnv1a(partial, groups * sizeof(cl_uint)));
    printf("sum = %llu\n", (unsigned long long)sum);
    printf("expected = %llu\n", (unsigned long long)expect);

    CHECK("clReleaseMemObject(in)", clReleaseMemObject(din));
    CHECK("clReleaseMemObject(partial)", clReleaseMemObject(dpart));
    CHECK("clReleaseKernel", clReleaseKernel(k));
    CHECK("clReleaseProgram", clReleaseProgram(prog));
    CHECK("clReleaseCommandQueue", clReleaseCommandQueue(q));
    CHECK("clReleaseContext", clReleaseContext(ctx));
    free(in);
    free(partial);
    if (sum != expect)
        return 1;
    printf("OK\n");
    return 0;
}
