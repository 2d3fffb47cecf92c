/* large_transfers: one buffer of 1.06 GiB written and read back in a single
 * blocking call each, then read again without blocking (completed by
 * clFinish), and a 64 MiB region rewritten and read with offsets. More than
 * one frame of hira's wire protocol can carry: the bytes travel after their
 * command in chunks, and the router passes them on a chunk at a time. A read
 * over 1 GiB once never returned. */
#include "ocl_common.h"

#define BYTES ((size_t)1088 << 20)
#define REGION ((size_t)64 << 20)
#define REGION_AT ((size_t)700 << 20)

int main(void)
{
    cl_platform_id platform;
    cl_device_id dev;
    cl_int err;
    ocl_first_device(&platform, &dev);
    cl_context ctx = ocl_context(platform, dev);
    cl_command_queue q = ocl_queue(ctx, dev, 0);

    unsigned char *host = malloc(BYTES);
    unsigned char *back = malloc(BYTES);
    if (!host || !back)
        return 1;
    for (size_t i = 0; i < BYTES / 8; i++) {
        const unsigned long long word = i * 0x9e3779b97f4a7c15ull;
        memcpy(host + i * 8, &word, 8);
    }

    cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE, BYTES, NULL, &err);
    CHECK("clCreateBuffer", err);
    CHECK("clEnqueueWriteBuffer",
          clEnqueueWriteBuffer(q, buf, CL_TRUE, 0, BYTES, host, 0, NULL, NULL));
    memset(back, 0, BYTES);
    CHECK("clEnqueueReadBuffer",
          clEnqueueReadBuffer(q, buf, CL_TRUE, 0, BYTES, back, 0, NULL, NULL));
    printf("blocking read equals the write: %s\n", memcmp(back, host, BYTES) == 0 ? "yes" : "no");
    /* Both ends, where a chunking error would show first. */
    printf("checksum of the first and last 8 MiB: %016llx %016llx\n",
           (unsigned long long)ocl_fnv1a(back, 8 << 20),
           (unsigned long long)ocl_fnv1a(back + BYTES - (8 << 20), 8 << 20));

    memset(back, 0, BYTES);
    CHECK("clEnqueueReadBuffer (non-blocking)",
          clEnqueueReadBuffer(q, buf, CL_FALSE, 0, BYTES, back, 0, NULL, NULL));
    CHECK("clFinish", clFinish(q));
    printf("non-blocking read equals the write: %s\n",
           memcmp(back, host, BYTES) == 0 ? "yes" : "no");

    /* A region in the middle, written from elsewhere in the host array. */
    CHECK("clEnqueueWriteBuffer (region)",
          clEnqueueWriteBuffer(q, buf, CL_TRUE, REGION_AT, REGION, host + 12345, 0, NULL, NULL));
    unsigned char *region = malloc(REGION);
    if (!region)
        return 1;
    CHECK("clEnqueueReadBuffer (region)",
          clEnqueueReadBuffer(q, buf, CL_TRUE, REGION_AT - 4096, REGION, region, 0, NULL, NULL));
    printf("region read: %s\n",
           memcmp(region, host + REGION_AT - 4096, 4096) == 0 &&
                   memcmp(region + 4096, host + 12345, REGION - 4096) == 0
               ? "yes"
               : "no");
    printf("region checksum: %016llx\n", (unsigned long long)ocl_fnv1a(region, 8 << 20));

    free(region);
    clReleaseMemObject(buf);
    clReleaseCommandQueue(q);
    clReleaseContext(ctx);
    free(host);
    free(back);
    printf("OK\n");
    return 0;
}
