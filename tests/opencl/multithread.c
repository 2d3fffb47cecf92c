/* multithread: 4 pthreads sharing one context and one program; each thread
 * has its own command queue, buffers and kernel object, scales a vector a
 * few times and reads it back.  Results (and every status) are recorded per
 * thread and printed in thread order after joining. */
#include "ocl_common.h"

#include <pthread.h>

#define NTHREADS 4
#define N 16384
#define ROUNDS 3

static const char *src =
    "__kernel void scale(__global const int *in, __global int *out, int factor) {\n"
    "    size_t i = get_global_id(0);\n"
    "    out[i] = in[i] * factor + (int)i;\n"
    "}\n";

static cl_context ctx;
static cl_device_id dev;
static cl_program prog;
static pthread_barrier_t start_barrier;

struct thread_result {
    int id;
    char log[2048];
    size_t loglen;
    int failed;
    uint64_t checksum[ROUNDS];
    unsigned mismatches;
    cl_int sample[ROUNDS];
};

static void tlog(struct thread_result *r, const char *what, cl_int err)
{
    int n = snprintf(r->log + r->loglen, sizeof(r->log) - r->loglen, "  %s: %d\n", what, (int)err);
    if (n > 0 && (size_t)n < sizeof(r->log) - r->loglen)
        r->loglen += (size_t)n;
    if (err != CL_SUCCESS)
        r->failed = 1;
}

#define TCHECK(what, call)                         \
    do {                                           \
        cl_int e_ = (call);                        \
        tlog(r, what, e_);                         \
        if (e_ != CL_SUCCESS)                      \
            goto out;                              \
    } while (0)

static void *worker(void *arg)
{
    struct thread_result *r = (struct thread_result *)arg;
    cl_int err;
    cl_command_queue q = NULL;
    cl_kernel k = NULL;
    cl_mem in = NULL, outb = NULL;
    cl_int *host = malloc(N * sizeof(cl_int));
    cl_int *res = malloc(N * sizeof(cl_int));
    pthread_barrier_wait(&start_barrier);
    if (!host || !res) {
        r->failed = 1;
        goto out;
    }
    for (int i = 0; i < N; i++)
        host[i] = i * (r->id + 1) - 5000;

    q = clCreateCommandQueue(ctx, dev, 0, &err);
    TCHECK("clCreateCommandQueue", err);
    k = clCreateKernel(prog, "scale", &err);
    TCHECK("clCreateKernel", err);
    in = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, N * sizeof(cl_int), host, &err);
    TCHECK("clCreateBuffer(in)", err);
    outb = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, N * sizeof(cl_int), NULL, &err);
    TCHECK("clCreateBuffer(out)", err);
    TCHECK("clSetKernelArg(0)", clSetKernelArg(k, 0, sizeof(cl_mem), &in));
    TCHECK("clSetKernelArg(1)", clSetKernelArg(k, 1, sizeof(cl_mem), &outb));
    for (int round = 0; round < ROUNDS; round++) {
        cl_int factor = (cl_int)(r->id + 2 + round * 10);
        TCHECK("clSetKernelArg(2)", clSetKernelArg(k, 2, sizeof(cl_int), &factor));
        size_t gws = N, lws = 64;
        TCHECK("clEnqueueNDRangeKernel", clEnqueueNDRangeKernel(q, k, 1, NULL, &gws, &lws, 0, NULL, NULL));
        TCHECK("clEnqueueReadBuffer",
               clEnqueueReadBuffer(q, outb, CL_TRUE, 0, N * sizeof(cl_int), res, 0, NULL, NULL));
        for (int i = 0; i < N; i++)
            if (res[i] != host[i] * factor + i)
                r->mismatches++;
        r->checksum[round] = ocl_fnv1a(res, N * sizeof(cl_int));
        r->sample[round] = res[N - 1];
    }
    TCHECK("clFinish", clFinish(q));
out:
    if (outb)
        tlog(r, "clReleaseMemObject(out)", clReleaseMemObject(outb));
    if (in)
        tlog(r, "clReleaseMemObject(in)", clReleaseMemObject(in));
    if (k)
        tlog(r, "clReleaseKernel", clReleaseKernel(k));
    if (q)
        tlog(r, "clReleaseCommandQueue", clReleaseCommandQueue(q));
    free(host);
    free(res);
    return NULL;
}

int main(void)
{
    cl_platform_id platform;
    ocl_first_device(&platform, &dev);
    ctx = ocl_context(platform, dev);
    prog = ocl_build(ctx, dev, src, NULL);

    static struct thread_result results[NTHREADS];
    pthread_t th[NTHREADS];
    if (pthread_barrier_init(&start_barrier, NULL, NTHREADS) != 0)
        return 1;
    for (int t = 0; t < NTHREADS; t++) {
        results[t].id = t;
        if (pthread_create(&th[t], NULL, worker, &results[t]) != 0) {
            printf("pthread_create failed\n");
            return 1;
        }
    }
    for (int t = 0; t < NTHREADS; t++)
        pthread_join(th[t], NULL);
    pthread_barrier_destroy(&start_barrier);

    int fails = 0;
    for (int t = 0; t < NTHREADS; t++) {
        struct thread_result *r = &results[t];
        printf("thread %d:\n%s", t, r->log);
        for (int round = 0; round < ROUNDS; round++)
            printf("  round %d: out[%d] = %d, checksum = %016llx\n", round, N - 1, r->sample[round],
                   (unsigned long long)r->checksum[round]);
        printf("  mismatches: %u\n", r->mismatches);
        if (r->failed || r->mismatches)
            fails++;
    }

    CHECK("clReleaseProgram", clReleaseProgram(prog));
    CHECK("clReleaseContext", clReleaseContext(ctx));
    if (fails)
        return 1;
    printf("OK\n");
    return 0;
}
