/* map_unmap: clEnqueueMapBuffer / clEnqueueUnmapMemObject with the various
 * buffer allocation flags. */
#include "ocl_common.h"

#define N 4096

static const char *src =
    "__kernel void twice(__global int *p) {\n"
    "    size_t i = get_global_id(0);\n"
    "    p[i] = p[i] * 2;\n"
    "}\n";

static cl_command_queue q;
static cl_kernel k;
static unsigned fails;

static void run_twice(cl_mem buf, const char *what)
{
    char label[96];
    snprintf(label, sizeof(label), "clSetKernelArg(%s)", what);
    CHECK(label, clSetKernelArg(k, 0, sizeof(cl_mem), &buf));
    size_t gws = N;
    snprintf(label, sizeof(label), "clEnqueueNDRangeKernel(%s)", what);
    CHECK(label, clEnqueueNDRangeKernel(q, k, 1, NULL, &gws, NULL, 0, NULL, NULL));
}

static void verify(const char *what, const cl_int *p, cl_int mul, cl_int add)
{
    unsigned bad = 0;
    for (int i = 0; i < N; i++)
        if (p[i] != (i + add) * mul)
            bad++;
    printf("%s mismatches: %u\n", what, bad);
    printf("%s checksum = %016llx\n", what, (unsigned long long)ocl_fnv1a(p, N * sizeof(cl_int)));
    fails += bad;
}

int main(void)
{
    cl_platform_id platform;
    cl_device_id dev;
    cl_int err;
    ocl_first_device(&platform, &dev);
    cl_context ctx = ocl_context(platform, dev);
    q = ocl_queue(ctx, dev, 0);
    cl_program prog = ocl_build(ctx, dev, src, NULL);
    k = ocl_kernel(prog, "twice");
    const size_t bytes = N * sizeof(cl_int);

    /* 1. plain buffer: map for write, fill, unmap, kernel, blocking map for read */
    cl_mem b = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    CHECK("clCreateBuffer(plain)", err);
    cl_int *p = clEnqueueMapBuffer(q, b, CL_TRUE, CL_MAP_WRITE, 0, bytes, 0, NULL, NULL, &err);
    CHECK("clEnqueueMapBuffer(plain, WRITE)", err);
    printf("mapped pointer non-NULL: %d\n", p != NULL);
    cl_uint mapcount = 99;
    CHECK("clGetMemObjectInfo(MAP_COUNT)",
          clGetMemObjectInfo(b, CL_MEM_MAP_COUNT, sizeof(mapcount), &mapcount, NULL));
    printf("map count while mapped: %u\n", mapcount);
    for (int i = 0; i < N; i++)
        p[i] = i;
    CHECK("clEnqueueUnmapMemObject(plain)", clEnqueueUnmapMemObject(q, b, p, 0, NULL, NULL));
    run_twice(b, "plain");
    p = clEnqueueMapBuffer(q, b, CL_TRUE, CL_MAP_READ, 0, bytes, 0, NULL, NULL, &err);
    CHECK("clEnqueueMapBuffer(plain, READ, blocking)", err);
    verify("plain", p, 2, 0);
    CHECK("clEnqueueUnmapMemObject(plain)", clEnqueueUnmapMemObject(q, b, p, 0, NULL, NULL));

    /* 2. non-blocking map of a sub-range + clWaitForEvents */
    run_twice(b, "plain again");
    cl_event ev = NULL;
    const size_t off = 1024 * sizeof(cl_int), len = 512 * sizeof(cl_int);
    cl_int *pr = clEnqueueMapBuffer(q, b, CL_FALSE, CL_MAP_READ, off, len, 0, NULL, &ev, &err);
    CHECK("clEnqueueMapBuffer(plain, READ, non-blocking, range)", err);
    CHECK("clWaitForEvents(map)", clWaitForEvents(1, &ev));
    cl_command_type ct = 0;
    CHECK("clGetEventInfo(COMMAND_TYPE)",
          clGetEventInfo(ev, CL_EVENT_COMMAND_TYPE, sizeof(ct), &ct, NULL));
    printf("map event is CL_COMMAND_MAP_BUFFER: %d\n", ct == CL_COMMAND_MAP_BUFFER);
    cl_int st = 1;
    CHECK("clGetEventInfo(EXECUTION_STATUS)",
          clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof(st), &st, NULL));
    printf("map event status: %d\n", st);
    unsigned bad = 0;
    for (int i = 0; i < 512; i++)
        if (pr[i] != (1024 + i) * 4)
            bad++;
    printf("range map mismatches: %u\n", bad);
    printf("range map first/last: %d %d\n", pr[0], pr[511]);
    fails += bad;
    CHECK("clReleaseEvent(map)", clReleaseEvent(ev));
    cl_event uev = NULL;
    CHECK("clEnqueueUnmapMemObject(range)", clEnqueueUnmapMemObject(q, b, pr, 0, NULL, &uev));
    CHECK("clWaitForEvents(unmap)", clWaitForEvents(1, &uev));
    CHECK("clGetEventInfo(COMMAND_TYPE)",
          clGetEventInfo(uev, CL_EVENT_COMMAND_TYPE, sizeof(ct), &ct, NULL));
    printf("unmap event is CL_COMMAND_UNMAP_MEM_OBJECT: %d\n", ct == CL_COMMAND_UNMAP_MEM_OBJECT);
    CHECK("clReleaseEvent(unmap)", clReleaseEvent(uev));
    CHECK("clGetMemObjectInfo(MAP_COUNT)",
          clGetMemObjectInfo(b, CL_MEM_MAP_COUNT, sizeof(mapcount), &mapcount, NULL));
    /* CL_MEM_MAP_COUNT is for debugging only (OpenCL 3.0 5.5.6): PoCL drops
     * it after the unmap event completes, so natively it may still say 1. */
    if (mapcount > 1)
        printf("map count after unmap: %u\n", mapcount);

    /* 3. CL_MEM_USE_HOST_PTR: kernel modifies, map makes host_ptr up to date */
    cl_int *host = NULL;
    if (posix_memalign((void **)&host, 4096, bytes) != 0)
        return 1;
    for (int i = 0; i < N; i++)
        host[i] = i + 7;
    cl_mem bu = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR, bytes, host, &err);
    CHECK("clCreateBuffer(USE_HOST_PTR)", err);
    void *hp = NULL;
    CHECK("clGetMemObjectInfo(HOST_PTR)", clGetMemObjectInfo(bu, CL_MEM_HOST_PTR, sizeof(hp), &hp, NULL));
    printf("CL_MEM_HOST_PTR == host_ptr: %d\n", hp == (void *)host);
    run_twice(bu, "use_host_ptr");
    CHECK("clFinish", clFinish(q));
    p = clEnqueueMapBuffer(q, bu, CL_TRUE, CL_MAP_READ, 0, bytes, 0, NULL, NULL, &err);
    CHECK("clEnqueueMapBuffer(USE_HOST_PTR, READ)", err);
    printf("mapped pointer == host_ptr: %d\n", (void *)p == (void *)host);
    verify("use_host_ptr host array", host, 2, 7);
    CHECK("clEnqueueUnmapMemObject(USE_HOST_PTR)", clEnqueueUnmapMemObject(q, bu, p, 0, NULL, NULL));
    /* map a range of it too: pointer must be host_ptr + offset */
    p = clEnqueueMapBuffer(q, bu, CL_TRUE, CL_MAP_READ, 256, 256, 0, NULL, NULL, &err);
    CHECK("clEnqueueMapBuffer(USE_HOST_PTR, range)", err);
    printf("range mapped pointer == host_ptr + offset: %d\n", (char *)p == (char *)host + 256);
    CHECK("clEnqueueUnmapMemObject(USE_HOST_PTR, range)", clEnqueueUnmapMemObject(q, bu, p, 0, NULL, NULL));
    CHECK("clFinish", clFinish(q));

    /* 4. CL_MEM_COPY_HOST_PTR: later host changes must not leak into the buffer */
    cl_int *init = malloc(bytes);
    cl_int *back = malloc(bytes);
    if (!init || !back)
        return 1;
    for (int i = 0; i < N; i++)
        init[i] = i + 3;
    cl_mem bc = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, bytes, init, &err);
    CHECK("clCreateBuffer(COPY_HOST_PTR)", err);
    for (int i = 0; i < N; i++)
        init[i] = -1;
    run_twice(bc, "copy_host_ptr");
    CHECK("clEnqueueReadBuffer(COPY_HOST_PTR)",
          clEnqueueReadBuffer(q, bc, CL_TRUE, 0, bytes, back, 0, NULL, NULL));
    verify("copy_host_ptr", back, 2, 3);
    printf("host array untouched: %d\n", init[0] == -1 && init[N - 1] == -1);
    hp = (void *)&hp;
    CHECK("clGetMemObjectInfo(HOST_PTR)", clGetMemObjectInfo(bc, CL_MEM_HOST_PTR, sizeof(hp), &hp, NULL));
    printf("COPY_HOST_PTR buffer CL_MEM_HOST_PTR is NULL: %d\n", hp == NULL);

    /* 5. CL_MEM_ALLOC_HOST_PTR: map write, kernel, read via clEnqueueReadBuffer */
    cl_mem ba = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR, bytes, NULL, &err);
    CHECK("clCreateBuffer(ALLOC_HOST_PTR)", err);
    p = clEnqueueMapBuffer(q, ba, CL_TRUE, CL_MAP_WRITE_INVALIDATE_REGION, 0, bytes, 0, NULL, NULL, &err);
    CHECK("clEnqueueMapBuffer(ALLOC_HOST_PTR, WRITE_INVALIDATE_REGION)", err);
    for (int i = 0; i < N; i++)
        p[i] = i - 100;
    CHECK("clEnqueueUnmapMemObject(ALLOC_HOST_PTR)", clEnqueueUnmapMemObject(q, ba, p, 0, NULL, NULL));
    run_twice(ba, "alloc_host_ptr");
    memset(back, 0, bytes);
    CHECK("clEnqueueReadBuffer(ALLOC_HOST_PTR)",
          clEnqueueReadBuffer(q, ba, CL_TRUE, 0, bytes, back, 0, NULL, NULL));
    verify("alloc_host_ptr", back, 2, -100);

    /* 6. write through a map, read through clEnqueueReadBuffer (ALLOC|COPY) */
    for (int i = 0; i < N; i++)
        init[i] = 2 * i;
    cl_mem bac = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_ALLOC_HOST_PTR | CL_MEM_COPY_HOST_PTR,
                                bytes, init, &err);
    CHECK("clCreateBuffer(ALLOC_HOST_PTR|COPY_HOST_PTR)", err);
    p = clEnqueueMapBuffer(q, bac, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, bytes, 0, NULL, NULL, &err);
    CHECK("clEnqueueMapBuffer(ALLOC|COPY, READ|WRITE)", err);
    printf("ALLOC|COPY initial contents ok: %d\n", p[0] == 0 && p[N - 1] == 2 * (N - 1));
    for (int i = 0; i < N; i++)
        p[i] = p[i] / 2 + 1;
    CHECK("clEnqueueUnmapMemObject(ALLOC|COPY)", clEnqueueUnmapMemObject(q, bac, p, 0, NULL, NULL));
    CHECK("clEnqueueReadBuffer(ALLOC|COPY)",
          clEnqueueReadBuffer(q, bac, CL_TRUE, 0, bytes, back, 0, NULL, NULL));
    verify("alloc_copy", back, 1, 1);

    /* 7. a mapped region as the destination of a read and the source of a
     * write: bc (2 * (i + 3)) read into bac's map, which the unmap writes
     * back; then from the map of bac into ba. */
    p = clEnqueueMapBuffer(q, bac, CL_TRUE, CL_MAP_READ | CL_MAP_WRITE, 0, bytes, 0, NULL, NULL, &err);
    CHECK("clEnqueueMapBuffer(ALLOC|COPY, for a read into it)", err);
    CHECK("clEnqueueReadBuffer(COPY_HOST_PTR into a map)",
          clEnqueueReadBuffer(q, bc, CL_TRUE, 0, bytes, p, 0, NULL, NULL));
    verify("read into a map", p, 2, 3);
    CHECK("clEnqueueWriteBuffer(ALLOC_HOST_PTR from a map)",
          clEnqueueWriteBuffer(q, ba, CL_TRUE, 0, bytes, p, 0, NULL, NULL));
    CHECK("clEnqueueUnmapMemObject(ALLOC|COPY, after the read)", clEnqueueUnmapMemObject(q, bac, p, 0, NULL, NULL));
    memset(back, 0, bytes);
    CHECK("clEnqueueReadBuffer(ALLOC|COPY after the unmap)",
          clEnqueueReadBuffer(q, bac, CL_TRUE, 0, bytes, back, 0, NULL, NULL));
    verify("map written back", back, 2, 3);
    memset(back, 0, bytes);
    CHECK("clEnqueueReadBuffer(ALLOC_HOST_PTR written from a map)",
          clEnqueueReadBuffer(q, ba, CL_TRUE, 0, bytes, back, 0, NULL, NULL));
    verify("written from a map", back, 2, 3);

    CHECK("clReleaseMemObject(plain)", clReleaseMemObject(b));
    CHECK("clReleaseMemObject(USE_HOST_PTR)", clReleaseMemObject(bu));
    CHECK("clReleaseMemObject(COPY_HOST_PTR)", clReleaseMemObject(bc));
    CHECK("clReleaseMemObject(ALLOC_HOST_PTR)", clReleaseMemObject(ba));
    CHECK("clReleaseMemObject(ALLOC|COPY)", clReleaseMemObject(bac));
    CHECK("clReleaseKernel", clReleaseKernel(k));
    CHECK("clReleaseProgram", clReleaseProgram(prog));
    CHECK("clReleaseCommandQueue", clReleaseCommandQueue(q));
    CHECK("clReleaseContext", clReleaseContext(ctx));
    free(host);
    free(init);
    free(back);
    if (fails)
        return 1;
    printf("OK\n");
    return 0;
}
