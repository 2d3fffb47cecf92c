/* sub_buffers: clCreateSubBuffer regions aligned to CL_DEVICE_MEM_BASE_ADDR_ALIGN,
 * kernels writing through sub-buffers, reading the parent; sub-buffer info;
 * clEnqueueFillBuffer, clEnqueueCopyBuffer, clEnqueue{Read,Write}BufferRect. */
#include "ocl_common.h"

#define CHUNK 4096u /* bytes per region; a multiple of any sane base alignment */
#define CHUNK_INTS (CHUNK / sizeof(cl_int))

static const char *src =
    "__kernel void iota(__global int *p, int base) {\n"
    "    p[get_global_id(0)] = base + (int)get_global_id(0);\n"
    "}\n";

int main(void)
{
    cl_platform_id platform;
    cl_device_id dev;
    cl_int err;
    unsigned fails = 0;
    ocl_first_device(&platform, &dev);
    cl_context ctx = ocl_context(platform, dev);
    cl_command_queue q = ocl_queue(ctx, dev, 0);
    cl_program prog = ocl_build(ctx, dev, src, NULL);
    cl_kernel k = ocl_kernel(prog, "iota");

    cl_uint align_bits = 0;
    CHECK("clGetDeviceInfo(MEM_BASE_ADDR_ALIGN)",
          clGetDeviceInfo(dev, CL_DEVICE_MEM_BASE_ADDR_ALIGN, sizeof(align_bits), &align_bits, NULL));
    size_t align = align_bits / 8;
    ocl_require("CHUNK is a multiple of the base alignment", align > 0 && CHUNK % align == 0);

    /* parent: 4 chunks, filled with -1 */
    cl_mem parent = clCreateBuffer(ctx, CL_MEM_READ_WRITE, 4 * CHUNK, NULL, &err);
    CHECK("clCreateBuffer(parent)", err);
    cl_int minus1 = -1;
    CHECK("clEnqueueFillBuffer(parent)",
          clEnqueueFillBuffer(q, parent, &minus1, sizeof(minus1), 0, 4 * CHUNK, 0, NULL, NULL));

    cl_buffer_region r1 = {1 * CHUNK, CHUNK};
    cl_buffer_region r3 = {3 * CHUNK, CHUNK};
    cl_mem sub1 = clCreateSubBuffer(parent, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &r1, &err);
    CHECK("clCreateSubBuffer(region 1)", err);
    cl_mem sub3 = clCreateSubBuffer(parent, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &r3, &err);
    CHECK("clCreateSubBuffer(region 3)", err);

    /* sub-buffer info */
    cl_mem assoc = NULL;
    size_t off = 0, size = 0;
    CHECK("clGetMemObjectInfo(ASSOCIATED_MEMOBJECT)",
          clGetMemObjectInfo(sub3, CL_MEM_ASSOCIATED_MEMOBJECT, sizeof(assoc), &assoc, NULL));
    printf("sub3 associated memobject == parent: %d\n", assoc == parent);
    CHECK("clGetMemObjectInfo(OFFSET)", clGetMemObjectInfo(sub3, CL_MEM_OFFSET, sizeof(off), &off, NULL));
    printf("sub3 offset: %zu\n", off);
    CHECK("clGetMemObjectInfo(SIZE)", clGetMemObjectInfo(sub3, CL_MEM_SIZE, sizeof(size), &size, NULL));
    printf("sub3 size: %zu\n", size);
    assoc = (cl_mem)&assoc;
    CHECK("clGetMemObjectInfo(parent ASSOCIATED_MEMOBJECT)",
          clGetMemObjectInfo(parent, CL_MEM_ASSOCIATED_MEMOBJECT, sizeof(assoc), &assoc, NULL));
    printf("parent associated memobject is NULL: %d\n", assoc == NULL);
    if (off != 3 * CHUNK || size != CHUNK)
        return 1;

    /* invalid sub-buffer requests */
    cl_buffer_region rbad = {4 * CHUNK - 64, 128}; /* runs past the end */
    cl_mem none = clCreateSubBuffer(parent, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &rbad, &err);
    ocl_expect("clCreateSubBuffer(out of bounds)", err, CL_INVALID_VALUE);
    printf("out of bounds sub-buffer is NULL: %d\n", none == NULL);
    cl_buffer_region rmis = {4, 64}; /* origin not aligned */
    none = clCreateSubBuffer(parent, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &rmis, &err);
    ocl_expect("clCreateSubBuffer(misaligned origin)", err, CL_MISALIGNED_SUB_BUFFER_OFFSET);
    printf("misaligned sub-buffer is NULL: %d\n", none == NULL);
    cl_buffer_region rsub = {0, 64};
    none = clCreateSubBuffer(sub1, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &rsub, &err);
    ocl_expect("clCreateSubBuffer(of a sub-buffer)", err, CL_INVALID_MEM_OBJECT);
    printf("nested sub-buffer is NULL: %d\n", none == NULL);

    /* kernel writes through both sub-buffers */
    size_t gws = CHUNK_INTS;
    cl_int base = 1000;
    CHECK("clSetKernelArg(0, sub1)", clSetKernelArg(k, 0, sizeof(cl_mem), &sub1));
    CHECK("clSetKernelArg(1)", clSetKernelArg(k, 1, sizeof(cl_int), &base));
    CHECK("clEnqueueNDRangeKernel(sub1)", clEnqueueNDRangeKernel(q, k, 1, NULL, &gws, NULL, 0, NULL, NULL));
    base = 5000;
    CHECK("clSetKernelArg(0, sub3)", clSetKernelArg(k, 0, sizeof(cl_mem), &sub3));
    CHECK("clSetKernelArg(1)", clSetKernelArg(k, 1, sizeof(cl_int), &base));
    CHECK("clEnqueueNDRangeKernel(sub3)", clEnqueueNDRangeKernel(q, k, 1, NULL, &gws, NULL, 0, NULL, NULL));

    static cl_int whole[4 * CHUNK_INTS];
    CHECK("clEnqueueReadBuffer(parent)",
          clEnqueueReadBuffer(q, parent, CL_TRUE, 0, sizeof(whole), whole, 0, NULL, NULL));
    unsigned bad = 0;
    for (size_t i = 0; i < 4 * CHUNK_INTS; i++) {
        size_t region = i / CHUNK_INTS, j = i % CHUNK_INTS;
        cl_int want = region == 1 ? 1000 + (cl_int)j : region == 3 ? 5000 + (cl_int)j : -1;
        if (whole[i] != want)
            bad++;
    }
    printf("parent mismatches: %u\n", bad);
    fails += bad;
    printf("parent[0] = %d, parent[%u] = %d, parent[%u] = %d\n", whole[0],
           (unsigned)CHUNK_INTS, whole[CHUNK_INTS], (unsigned)(4 * CHUNK_INTS - 1),
           whole[4 * CHUNK_INTS - 1]);
    printf("parent checksum = %016llx\n", (unsigned long long)ocl_fnv1a(whole, sizeof(whole)));

    /* reading a sub-buffer directly */
    static cl_int part[CHUNK_INTS];
    CHECK("clEnqueueReadBuffer(sub1, offset 16)",
          clEnqueueReadBuffer(q, sub1, CL_TRUE, 16, 16, part, 0, NULL, NULL));
    printf("sub1[4..7] = %d %d %d %d\n", part[0], part[1], part[2], part[3]);

    /* copy sub3 -> standalone buffer with a 2-int offset in the destination */
    cl_mem copy = clCreateBuffer(ctx, CL_MEM_READ_WRITE, CHUNK + 8, NULL, &err);
    CHECK("clCreateBuffer(copy)", err);
    cl_int pattern2[2] = {7, -7};
    CHECK("clEnqueueFillBuffer(copy, 8-byte pattern)",
          clEnqueueFillBuffer(q, copy, pattern2, sizeof(pattern2), 0, CHUNK + 8, 0, NULL, NULL));
    CHECK("clEnqueueCopyBuffer(sub3 -> copy)",
          clEnqueueCopyBuffer(q, sub3, copy, 0, 8, CHUNK, 0, NULL, NULL));
    static cl_int copied[CHUNK_INTS + 2];
    CHECK("clEnqueueReadBuffer(copy)",
          clEnqueueReadBuffer(q, copy, CL_TRUE, 0, sizeof(copied), copied, 0, NULL, NULL));
    bad = 0;
    if (copied[0] != 7 || copied[1] != -7)
        bad++;
    for (size_t j = 0; j < CHUNK_INTS; j++)
        if (copied[j + 2] != 5000 + (cl_int)j)
            bad++;
    printf("copy mismatches: %u\n", bad);
    fails += bad;
    printf("copy checksum = %016llx\n", (unsigned long long)ocl_fnv1a(copied, sizeof(copied)));

    /* partial fill of the parent through an offset, then check */
    cl_short pat16 = 0x1234;
    CHECK("clEnqueueFillBuffer(parent, 2-byte pattern, offset)",
          clEnqueueFillBuffer(q, parent, &pat16, sizeof(pat16), 64, 128, 0, NULL, NULL));
    cl_int win[40];
    CHECK("clEnqueueReadBuffer(parent window)",
          clEnqueueReadBuffer(q, parent, CL_TRUE, 56, sizeof(win), win, 0, NULL, NULL));
    bad = 0;
    for (int i = 0; i < 40; i++)
        if (win[i] != ((i >= 2 && i < 34) ? 0x12341234 : -1))
            bad++;
    printf("fill window mismatches: %u\n", bad);
    fails += bad;
    printf("fill window: %d %d %d ... %d %d %d\n", win[0], win[1], win[2], win[33], win[34], win[35]);
    printf("fill window checksum = %016llx\n", (unsigned long long)ocl_fnv1a(win, sizeof(win)));

    /* rectangular transfers: a 16x16 int matrix, 5 rows x 4 cols at (row 2, col 3) */
    enum { R = 16, C = 16 };
    cl_mem mat = clCreateBuffer(ctx, CL_MEM_READ_WRITE, R * C * sizeof(cl_int), NULL, &err);
    CHECK("clCreateBuffer(mat)", err);
    cl_int zero = 0;
    CHECK("clEnqueueFillBuffer(mat)",
          clEnqueueFillBuffer(q, mat, &zero, sizeof(zero), 0, R * C * sizeof(cl_int), 0, NULL, NULL));
    /* host source: 10x10 ints, the rect starts at (host row 1, host col 2) */
    cl_int hsrc[10][10];
    for (int y = 0; y < 10; y++)
        for (int x = 0; x < 10; x++)
            hsrc[y][x] = 100 * y + x + 1;
    size_t buf_origin[3] = {3 * sizeof(cl_int), 2, 0};
    size_t host_origin[3] = {2 * sizeof(cl_int), 1, 0};
    size_t region[3] = {4 * sizeof(cl_int), 5, 1};
    CHECK("clEnqueueWriteBufferRect",
          clEnqueueWriteBufferRect(q, mat, CL_TRUE, buf_origin, host_origin, region,
                                   C * sizeof(cl_int), 0, 10 * sizeof(cl_int), 0, hsrc,
                                   0, NULL, NULL));
    cl_int full[R][C];
    CHECK("clEnqueueReadBuffer(mat)",
          clEnqueueReadBuffer(q, mat, CL_TRUE, 0, sizeof(full), full, 0, NULL, NULL));
    bad = 0;
    for (int y = 0; y < R; y++)
        for (int x = 0; x < C; x++) {
            cl_int want = 0;
            if (y >= 2 && y < 7 && x >= 3 && x < 7)
                want = hsrc[y - 2 + 1][x - 3 + 2];
            if (full[y][x] != want)
                bad++;
        }
    printf("write rect mismatches: %u\n", bad);
    fails += bad;
    printf("mat checksum = %016llx\n", (unsigned long long)ocl_fnv1a(full, sizeof(full)));

    /* read back a 3x3 rect at (row 3, col 4) into a 6-int-wide host array at (row 1, col 1) */
    cl_int hdst[5][6];
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 6; x++)
            hdst[y][x] = -9;
    size_t rb_origin[3] = {4 * sizeof(cl_int), 3, 0};
    size_t rh_origin[3] = {1 * sizeof(cl_int), 1, 0};
    size_t rregion[3] = {3 * sizeof(cl_int), 3, 1};
    CHECK("clEnqueueReadBufferRect",
          clEnqueueReadBufferRect(q, mat, CL_TRUE, rb_origin, rh_origin, rregion,
                                  C * sizeof(cl_int), 0, 6 * sizeof(cl_int), 0, hdst,
                                  0, NULL, NULL));
    bad = 0;
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 6; x++) {
            cl_int want = -9;
            if (y >= 1 && y < 4 && x >= 1 && x < 4)
                want = full[y - 1 + 3][x - 1 + 4];
            if (hdst[y][x] != want)
                bad++;
        }
    printf("read rect mismatches: %u\n", bad);
    fails += bad;
    for (int y = 1; y < 4; y++)
        printf("read rect row %d: %d %d %d\n", y, hdst[y][1], hdst[y][2], hdst[y][3]);

    CHECK("clReleaseMemObject(sub1)", clReleaseMemObject(sub1));
    CHECK("clReleaseMemObject(sub3)", clReleaseMemObject(sub3));
    CHECK("clReleaseMemObject(parent)", clReleaseMemObject(parent));
    CHECK("clReleaseMemObject(copy)", clReleaseMemObject(copy));
    CHECK("clReleaseMemObject(mat)", clReleaseMemObject(mat));
    CHECK("clReleaseKernel", clReleaseKernel(k));
    CHECK("clReleaseProgram", clReleaseProgram(prog));
    CHECK("clReleaseCommandQueue", clReleaseCommandQueue(q));
    CHECK("clReleaseContext", clReleaseContext(ctx));
    if (fails)
        return 1;
    printf("OK\n");
    return 0;
}
