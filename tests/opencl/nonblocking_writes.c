/* nonblocking_writes: 1100 non-blocking writes of 4 MiB, each from a
 * different host address (4.3 GiB in all), half of them with an event the
 * program waits for and half without one (a clFinish every 8 writes), then
 * one read of the device buffer. Through hira the API server keeps each
 * write's data only until its event completes: it once kept a copy per host
 * address for the life of the process and refused writes beyond 4 GiB. */
#include "ocl_common.h"

#define BYTES (4u << 20)
#define WRITES 1100u
#define STEP 4096u

int main(void)
{
    cl_platform_id platform;
    cl_device_id dev;
    cl_int err;
    ocl_first_device(&platform, &dev);
    cl_context ctx = ocl_context(platform, dev);
    cl_command_queue q = ocl_queue(ctx, dev, 0);

    /* Every write reads BYTES starting STEP bytes further on. */
    const size_t span = BYTES + (size_t)WRITES * STEP;
    unsigned char *host = malloc(span);
    unsigned char *back = malloc(BYTES);
    if (!host || !back)
        return 1;
    for (size_t i = 0; i < span; i++)
        host[i] = (unsigned char)(i * 7 + i / 4096);

    cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE, BYTES, NULL, &err);
    CHECK("clCreateBuffer", err);
    unsigned failed = 0;
    for (unsigned w = 0; w < WRITES; w++) {
        const unsigned char *from = host + (size_t)w * STEP;
        if (w % 2 == 0) {
            cl_event ev;
            err = clEnqueueWriteBuffer(q, buf, CL_FALSE, 0, BYTES, from, 0, NULL, &ev);
            if (err == CL_SUCCESS) {
                err = clWaitForEvents(1, &ev);
                clReleaseEvent(ev);
            }
        } else {
            err = clEnqueueWriteBuffer(q, buf, CL_FALSE, 0, BYTES, from, 0, NULL, NULL);
            if (err == CL_SUCCESS && w % 8 == 7)
                err = clFinish(q);
        }
        if (err != CL_SUCCESS && failed++ == 0)
            printf("write %u failed: %d\n", w, err);
    }
    CHECK("clFinish", clFinish(q));
    CHECK("clEnqueueReadBuffer",
          clEnqueueReadBuffer(q, buf, CL_TRUE, 0, BYTES, back, 0, NULL, NULL));
    const unsigned char *last = host + (size_t)(WRITES - 1) * STEP;
    printf("writes: %u, failed: %u\n", WRITES, failed);
    printf("buffer holds the last write: %s\n", memcmp(back, last, BYTES) == 0 ? "yes" : "no");
    printf("checksum: %016llx\n", (unsigned long long)ocl_fnv1a(back, BYTES));

    clReleaseMemObject(buf);
    clReleaseCommandQueue(q);
    clReleaseContext(ctx);
    free(host);
    free(back);
    return failed == 0 ? 0 : 1;
}
