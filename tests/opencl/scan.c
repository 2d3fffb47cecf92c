/* scan: exclusive prefix sum of 4096 ints.
 *   pass 1: Blelloch scan of each 256-element block (128 work-items), block
 *           totals written to a second buffer;
 *   pass 2: the same kernel scans the 16 block totals in one work-group;
 *   pass 3: add the scanned block totals back to every element.
 * The result is compared to a host reference. */
#include "ocl_common.h"

#define N 4096
#define BLOCK 256              /* elements per work-group in pass 1 */
#define NBLOCKS (N / BLOCK)    /* 16 */

static const char *src =
    "__kernel void scan_block(__global const int *in, __global int *out,\n"
    "                         __global int *block_sums, __local int *tmp) {\n"
    "    int lid = get_local_id(0);\n"
    "    int n = get_local_size(0) * 2;\n"
    "    int grp = get_group_id(0);\n"
    "    int base = grp * n;\n"
    "    tmp[2 * lid] = in[base + 2 * lid];\n"
    "    tmp[2 * lid + 1] = in[base + 2 * lid + 1];\n"
    "    int offset = 1;\n"
    "    for (int d = n >> 1; d > 0; d >>= 1) {\n"
    "        barrier(CLK_LOCAL_MEM_FENCE);\n"
    "        if (lid < d) {\n"
    "            int ai = offset * (2 * lid + 1) - 1;\n"
    "            int bi = offset * (2 * lid + 2) - 1;\n"
    "            tmp[bi] += tmp[ai];\n"
    "        }\n"
    "        offset <<= 1;\n"
    "    }\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    if (lid == 0) {\n"
    "        block_sums[grp] = tmp[n - 1];\n"
    "        tmp[n - 1] = 0;\n"
    "    }\n"
    "    for (int d = 1; d < n; d <<= 1) {\n"
    "        offset >>= 1;\n"
    "        barrier(CLK_LOCAL_MEM_FENCE);\n"
    "        if (lid < d) {\n"
    "            int ai = offset * (2 * lid + 1) - 1;\n"
    "            int bi = offset * (2 * lid + 2) - 1;\n"
    "            int t = tmp[ai];\n"
    "            tmp[ai] = tmp[bi];\n"
    "            tmp[bi] += t;\n"
    "        }\n"
    "    }\n"
    "    barrier(CLK_LOCAL_MEM_FENCE);\n"
    "    out[base + 2 * lid] = tmp[2 * lid];\n"
    "    out[base + 2 * lid + 1] = tmp[2 * lid + 1];\n"
    "}\n"
    "__kernel void add_block(__global int *data, __global const int *sums) {\n"
    "    data[get_global_id(0)] += sums[get_group_id(0)];\n"
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
    cl_kernel kscan = ocl_kernel(prog, "scan_block");
    cl_kernel kadd = ocl_kernel(prog, "add_block");

    static int in[N], out[N], ref[N];
    for (int i = 0; i < N; i++)
        in[i] = (i * 37) % 101 - 50;
    int run = 0;
    for (int i = 0; i < N; i++) {
        ref[i] = run;
        run += in[i];
    }

    cl_mem din = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof(in), in, &err);
    CHECK("clCreateBuffer(in)", err);
    cl_mem dout = clCreateBuffer(ctx, CL_MEM_READ_WRITE, sizeof(out), NULL, &err);
    CHECK("clCreateBuffer(out)", err);
    cl_mem dsums = clCreateBuffer(ctx, CL_MEM_READ_WRITE, NBLOCKS * sizeof(int), NULL, &err);
    CHECK("clCreateBuffer(block_sums)", err);
    cl_mem dscanned = clCreateBuffer(ctx, CL_MEM_READ_WRITE, NBLOCKS * sizeof(int), NULL, &err);
    CHECK("clCreateBuffer(scanned_sums)", err);
    cl_mem dtotal = clCreateBuffer(ctx, CL_MEM_READ_WRITE, sizeof(int), NULL, &err);
    CHECK("clCreateBuffer(total)", err);

    /* pass 1 */
    CHECK("clSetKernelArg(scan,0)", clSetKernelArg(kscan, 0, sizeof(cl_mem), &din));
    CHECK("clSetKernelArg(scan,1)", clSetKernelArg(kscan, 1, sizeof(cl_mem), &dout));
    CHECK("clSetKernelArg(scan,2)", clSetKernelArg(kscan, 2, sizeof(cl_mem), &dsums));
    CHECK("clSetKernelArg(scan,3,local)", clSetKernelArg(kscan, 3, BLOCK * sizeof(int), NULL));
    size_t gws = N / 2, lws = BLOCK / 2;
    CHECK("clEnqueueNDRangeKernel(pass1)",
          clEnqueueNDRangeKernel(q, kscan, 1, NULL, &gws, &lws, 0, NULL, NULL));

    /* pass 2: scan block sums with the same kernel, one work-group */
    CHECK("clSetKernelArg(scan,0)", clSetKernelArg(kscan, 0, sizeof(cl_mem), &dsums));
    CHECK("clSetKernelArg(scan,1)", clSetKernelArg(kscan, 1, sizeof(cl_mem), &dscanned));
    CHECK("clSetKernelArg(scan,2)", clSetKernelArg(kscan, 2, sizeof(cl_mem), &dtotal));
    CHECK("clSetKernelArg(scan,3,local)", clSetKernelArg(kscan, 3, NBLOCKS * sizeof(int), NULL));
    gws = NBLOCKS / 2;
    lws = NBLOCKS / 2;
    CHECK("clEnqueueNDRangeKernel(pass2)",
          clEnqueueNDRangeKernel(q, kscan, 1, NULL, &gws, &lws, 0, NULL, NULL));

    /* pass 3 */
    CHECK("clSetKernelArg(add,0)", clSetKernelArg(kadd, 0, sizeof(cl_mem), &dout));
    CHECK("clSetKernelArg(add,1)", clSetKernelArg(kadd, 1, sizeof(cl_mem), &dscanned));
    gws = N;
    lws = BLOCK;
    CHECK("clEnqueueNDRangeKernel(pass3)",
          clEnqueueNDRangeKernel(q, kadd, 1, NULL, &gws, &lws, 0, NULL, NULL));

    int total = 0;
    int sums[NBLOCKS];
    CHECK("clEnqueueReadBuffer(out)",
          clEnqueueReadBuffer(q, dout, CL_FALSE, 0, sizeof(out), out, 0, NULL, NULL));
    CHECK("clEnqueueReadBuffer(scanned_sums)",
          clEnqueueReadBuffer(q, dscanned, CL_FALSE, 0, sizeof(sums), sums, 0, NULL, NULL));
    CHECK("clEnqueueReadBuffer(total)",
          clEnqueueReadBuffer(q, dtotal, CL_FALSE, 0, sizeof(int), &total, 0, NULL, NULL));
    CHECK("clFinish", clFinish(q));

    unsigned mismatches = 0;
    for (int i = 0; i < N; i++)
        if (out[i] != ref[i])
            mismatches++;
    printf("mismatches: %u\n", mismatches);
    printf("out[0] = %d\n", out[0]);
    printf("out[1] = %d\n", out[1]);
    printf("out[255] = %d\n", out[255]);
    printf("out[256] = %d\n", out[256]);
    printf("out[2049] = %d\n", out[2049]);
    printf("out[4095] = %d\n", out[4095]);
    printf("scanned block sums[15] = %d\n", sums[NBLOCKS - 1]);
    printf("total = %d (expected %d)\n", total, run);
    printf("checksum = %016llx\n", (unsigned long long)ocl_fnv1a(out, sizeof(out)));

    CHECK("clReleaseMemObject(in)", clReleaseMemObject(din));
    CHECK("clReleaseMemObject(out)", clReleaseMemObject(dout));
    CHECK("clReleaseMemObject(block_sums)", clReleaseMemObject(dsums));
    CHECK("clReleaseMemObject(scanned_sums)", clReleaseMemObject(dscanned));
    CHECK("clReleaseMemObject(total)", clReleaseMemObject(dtotal));
    CHECK("clReleaseKernel(scan)", clReleaseKernel(kscan));
    CHECK("clReleaseKernel(add)", clReleaseKernel(kadd));
    CHECK("clReleaseProgram", clReleaseProgram(prog));
    CHECK("clReleaseCommandQueue", clReleaseCommandQueue(q));
    CHECK("clReleaseContext", clReleaseContext(ctx));
    if (mismatches || total != run)
        return 1;
    printf("OK\n");
    return 0;
}
