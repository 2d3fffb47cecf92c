/* host_ptr_churn: 1100 CL_MEM_USE_HOST_PTR buffers of 4 MiB, each over a
 * different host address (4.3 GiB in all), each read back and released
 * before the next. Through hira the API server's copy of a buffer's host
 * memory lives until the implementation destroys the buffer: it once lived
 * for the whole process, and creations failed past 4 GiB of them. */
#include "ocl_common.h"

#define BYTES (4u << 20)
#define BUFFERS 1100u
#define STEP 4096u

int main(void)
{
    cl_platform_id platform;
    cl_device_id dev;
    cl_int err;
    ocl_first_device(&platform, &dev);
    cl_context ctx = ocl_context(platform, dev);
    cl_command_queue q = ocl_queue(ctx, dev, 0);

    const size_t span = BYTES + (size_t)BUFFERS * STEP;
    unsigned char *host = malloc(span);
    if (!host)
        return 1;
    for (size_t i = 0; i < span; i++)
        host[i] = (unsigned char)(i * 13 + i / 4096);

    unsigned failed = 0;
    uint64_t sum = 0;
    for (unsigned b = 0; b < BUFFERS; b++) {
        unsigned char *at = host + (size_t)b * STEP;
        cl_mem m = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_USE_HOST_PTR, BYTES, at, &err);
        if (err != CL_SUCCESS) {
            if (failed++ == 0)
                printf("buffer %u failed: %d\n", b, err);
            continue;
        }
        unsigned char tail[16];
        err = clEnqueueReadBuffer(q, m, CL_TRUE, BYTES - sizeof(tail), sizeof(tail), tail, 0, NULL,
                                  NULL);
        if (err != CL_SUCCESS && failed++ == 0)
            printf("read of buffer %u failed: %d\n", b, err);
        sum = sum * 31 + ocl_fnv1a(tail, sizeof(tail));
        clReleaseMemObject(m);
    }
    CHECK("clFinish", clFinish(q));
    printf("buffers: %u, failed: %u\n", BUFFERS, failed);
    printf("checksum: %016llx\n", (unsigned long long)sum);

    clReleaseCommandQueue(q);
    clReleaseContext(ctx);
    free(host);
    return failed == 0 ? 0 : 1;
}
