/* events: wait lists chaining non-blocking write -> kernel -> read, event
 * info, user events gating a kernel, markers/barriers with wait lists,
 * cross-queue dependencies, profiling. */
#include "ocl_common.h"

#include <time.h>

#define N 8192

static const char *src =
    "__kernel void add_one(__global int *p) {\n"
    "    size_t i = get_global_id(0);\n"
    "    p[i] = p[i] + 1;\n"
    "}\n";

static unsigned fails;

static void event_info(const char *name, cl_event ev, cl_command_queue q, cl_context ctx)
{
    char label[128];
    cl_command_type ct = 0;
    cl_int st = 1;
    cl_command_queue eq = NULL;
    cl_context ec = NULL;
    snprintf(label, sizeof(label), "clGetEventInfo(%s, COMMAND_TYPE)", name);
    CHECK(label, clGetEventInfo(ev, CL_EVENT_COMMAND_TYPE, sizeof(ct), &ct, NULL));
    snprintf(label, sizeof(label), "clGetEventInfo(%s, EXECUTION_STATUS)", name);
    CHECK(label, clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof(st), &st, NULL));
    snprintf(label, sizeof(label), "clGetEventInfo(%s, COMMAND_QUEUE)", name);
    CHECK(label, clGetEventInfo(ev, CL_EVENT_COMMAND_QUEUE, sizeof(eq), &eq, NULL));
    snprintf(label, sizeof(label), "clGetEventInfo(%s, CONTEXT)", name);
    CHECK(label, clGetEventInfo(ev, CL_EVENT_CONTEXT, sizeof(ec), &ec, NULL));
    printf("%s: command type 0x%04x, status %d, queue matches %d, context matches %d\n", name,
           (unsigned)ct, st, eq == q, ec == ctx);
    if (st != CL_COMPLETE || eq != q || ec != ctx)
        fails++;
}

static void profiling(const char *name, cl_event ev)
{
    cl_ulong queued = 0, submit = 0, start = 0, end = 0;
    char label[128];
    snprintf(label, sizeof(label), "clGetEventProfilingInfo(%s, QUEUED)", name);
    CHECK(label, clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_QUEUED, sizeof(queued), &queued, NULL));
    snprintf(label, sizeof(label), "clGetEventProfilingInfo(%s, SUBMIT)", name);
    CHECK(label, clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_SUBMIT, sizeof(submit), &submit, NULL));
    snprintf(label, sizeof(label), "clGetEventProfilingInfo(%s, START)", name);
    CHECK(label, clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof(start), &start, NULL));
    snprintf(label, sizeof(label), "clGetEventProfilingInfo(%s, END)", name);
    CHECK(label, clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof(end), &end, NULL));
    if (end >= start) {
        printf("%s profiling ok\n", name);
    } else {
        printf("%s profiling BAD\n", name);
        fails++;
    }
}

int main(void)
{
    cl_platform_id platform;
    cl_device_id dev;
    cl_int err;
    ocl_first_device(&platform, &dev);
    cl_context ctx = ocl_context(platform, dev);
    cl_command_queue q = ocl_queue(ctx, dev, CL_QUEUE_PROFILING_ENABLE);
    cl_command_queue q2 = ocl_queue(ctx, dev, 0);
    cl_program prog = ocl_build(ctx, dev, src, NULL);
    cl_kernel k = ocl_kernel(prog, "add_one");

    static cl_int host[N], out[N];
    for (int i = 0; i < N; i++)
        host[i] = i * 3;
    const size_t bytes = sizeof(host);
    cl_mem buf = clCreateBuffer(ctx, CL_MEM_READ_WRITE, bytes, NULL, &err);
    CHECK("clCreateBuffer", err);
    CHECK("clSetKernelArg(0)", clSetKernelArg(k, 0, sizeof(cl_mem), &buf));

    /* 1. non-blocking chain write -> kernel -> read linked by wait lists */
    cl_event ew, ek, er;
    size_t gws = N;
    CHECK("clEnqueueWriteBuffer(non-blocking)",
          clEnqueueWriteBuffer(q, buf, CL_FALSE, 0, bytes, host, 0, NULL, &ew));
    CHECK("clEnqueueNDRangeKernel(wait write)",
          clEnqueueNDRangeKernel(q, k, 1, NULL, &gws, NULL, 1, &ew, &ek));
    CHECK("clEnqueueReadBuffer(non-blocking, wait kernel)",
          clEnqueueReadBuffer(q, buf, CL_FALSE, 0, bytes, out, 1, &ek, &er));
    CHECK("clWaitForEvents(read)", clWaitForEvents(1, &er));
    CHECK("clFinish", clFinish(q));
    unsigned bad = 0;
    for (int i = 0; i < N; i++)
        if (out[i] != i * 3 + 1)
            bad++;
    printf("chain mismatches: %u\n", bad);
    printf("chain checksum = %016llx\n", (unsigned long long)ocl_fnv1a(out, bytes));
    fails += bad;
    event_info("write", ew, q, ctx);
    event_info("kernel", ek, q, ctx);
    event_info("read", er, q, ctx);
    profiling("write", ew);
    profiling("kernel", ek);
    profiling("read", er);
    cl_event three[3] = {ew, ek, er};
    CHECK("clWaitForEvents(3 complete events)", clWaitForEvents(3, three));
    CHECK("clReleaseEvent(write)", clReleaseEvent(ew));
    CHECK("clReleaseEvent(kernel)", clReleaseEvent(ek));
    CHECK("clReleaseEvent(read)", clReleaseEvent(er));

    /* 2. user event gating a kernel */
    cl_event ue = clCreateUserEvent(ctx, &err);
    CHECK("clCreateUserEvent", err);
    cl_int st = 1;
    CHECK("clGetEventInfo(user, EXECUTION_STATUS)",
          clGetEventInfo(ue, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof(st), &st, NULL));
    printf("user event initial status is CL_SUBMITTED: %d\n", st == CL_SUBMITTED);
    cl_command_type ct = 0;
    CHECK("clGetEventInfo(user, COMMAND_TYPE)",
          clGetEventInfo(ue, CL_EVENT_COMMAND_TYPE, sizeof(ct), &ct, NULL));
    printf("user event command type is CL_COMMAND_USER: %d\n", ct == CL_COMMAND_USER);
    cl_command_queue uq = (cl_command_queue)&uq;
    CHECK("clGetEventInfo(user, COMMAND_QUEUE)",
          clGetEventInfo(ue, CL_EVENT_COMMAND_QUEUE, sizeof(uq), &uq, NULL));
    printf("user event queue is NULL: %d\n", uq == NULL);

    cl_event gated;
    CHECK("clEnqueueNDRangeKernel(wait user event)",
          clEnqueueNDRangeKernel(q, k, 1, NULL, &gws, NULL, 1, &ue, &gated));
    CHECK("clFlush", clFlush(q));
    /* give the device a moment; the kernel must still be blocked */
    struct timespec ts = {0, 50 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK("clGetEventInfo(gated, EXECUTION_STATUS)",
          clGetEventInfo(gated, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof(st), &st, NULL));
    printf("gated kernel complete before user event: %d\n", st == CL_COMPLETE);
    if (st == CL_COMPLETE || st < 0)
        fails++;
    CHECK("clSetUserEventStatus(CL_COMPLETE)", clSetUserEventStatus(ue, CL_COMPLETE));
    CHECK("clWaitForEvents(gated)", clWaitForEvents(1, &gated));
    CHECK("clGetEventInfo(gated, EXECUTION_STATUS)",
          clGetEventInfo(gated, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof(st), &st, NULL));
    printf("gated kernel status after user event: %d\n", st);
    CHECK("clGetEventInfo(user, EXECUTION_STATUS)",
          clGetEventInfo(ue, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof(st), &st, NULL));
    printf("user event status: %d\n", st);
    ocl_expect("clSetUserEventStatus(again)", clSetUserEventStatus(ue, CL_COMPLETE),
               CL_INVALID_OPERATION);
    CHECK("clEnqueueReadBuffer(blocking)",
          clEnqueueReadBuffer(q, buf, CL_TRUE, 0, bytes, out, 0, NULL, NULL));
    bad = 0;
    for (int i = 0; i < N; i++)
        if (out[i] != i * 3 + 2)
            bad++;
    printf("gated mismatches: %u\n", bad);
    fails += bad;
    CHECK("clReleaseEvent(gated)", clReleaseEvent(gated));
    CHECK("clReleaseEvent(user)", clReleaseEvent(ue));

    /* 3. cross-queue: kernel on q waits for a write on q2; marker and barrier */
    for (int i = 0; i < N; i++)
        host[i] = 1000 - i;
    cl_event ew2, ek2, em, eb, em2;
    CHECK("clEnqueueWriteBuffer(q2, non-blocking)",
          clEnqueueWriteBuffer(q2, buf, CL_FALSE, 0, bytes, host, 0, NULL, &ew2));
    CHECK("clFlush(q2)", clFlush(q2));
    CHECK("clEnqueueNDRangeKernel(q, wait q2 write)",
          clEnqueueNDRangeKernel(q, k, 1, NULL, &gws, NULL, 1, &ew2, &ek2));
    CHECK("clEnqueueMarkerWithWaitList(empty)", clEnqueueMarkerWithWaitList(q, 0, NULL, &em));
    CHECK("clEnqueueBarrierWithWaitList(kernel)", clEnqueueBarrierWithWaitList(q, 1, &ek2, &eb));
    CHECK("clEnqueueNDRangeKernel(after barrier)",
          clEnqueueNDRangeKernel(q, k, 1, NULL, &gws, NULL, 0, NULL, NULL));
    CHECK("clEnqueueMarkerWithWaitList(kernel)", clEnqueueMarkerWithWaitList(q, 1, &ek2, &em2));
    CHECK("clEnqueueBarrierWithWaitList(empty)", clEnqueueBarrierWithWaitList(q, 0, NULL, NULL));
    cl_event waits[4] = {em, eb, em2, ek2};
    CHECK("clWaitForEvents(marker, barrier, marker, kernel)", clWaitForEvents(4, waits));
    CHECK("clEnqueueReadBuffer(blocking, after barrier)",
          clEnqueueReadBuffer(q, buf, CL_TRUE, 0, bytes, out, 0, NULL, NULL));
    bad = 0;
    for (int i = 0; i < N; i++)
        if (out[i] != 1000 - i + 2)
            bad++;
    printf("cross-queue mismatches: %u\n", bad);
    fails += bad;
    CHECK("clFinish(q)", clFinish(q));
    CHECK("clFinish(q2)", clFinish(q2));
    event_info("write(q2)", ew2, q2, ctx);
    event_info("kernel(q)", ek2, q, ctx);
    event_info("marker", em, q, ctx);
    event_info("barrier", eb, q, ctx);
    event_info("marker2", em2, q, ctx);
    cl_event all[5] = {ew2, ek2, em, eb, em2};
    for (int i = 0; i < 5; i++)
        CHECK("clReleaseEvent", clReleaseEvent(all[i]));

    /* 4. deprecated 1.1 marker/barrier API still works */
    cl_event m11;
    CHECK("clEnqueueMarker", clEnqueueMarker(q, &m11));
    CHECK("clEnqueueBarrier", clEnqueueBarrier(q));
    /* clEnqueueWaitForEvents is deliberately not used: PoCL 3.1 aborts the
     * process in it ("The entire clEnqueueWaitForEvents call is
     * unimplemented"). */
    CHECK("clFinish", clFinish(q));
    event_info("marker(1.1)", m11, q, ctx);
    CHECK("clReleaseEvent(marker 1.1)", clReleaseEvent(m11));

    /* 5. event reference counting */
    cl_event ue2 = clCreateUserEvent(ctx, &err);
    CHECK("clCreateUserEvent", err);
    cl_uint rc0 = 0, rc1 = 0, rc2 = 0;
    CHECK("clGetEventInfo(REFERENCE_COUNT)",
          clGetEventInfo(ue2, CL_EVENT_REFERENCE_COUNT, sizeof(rc0), &rc0, NULL));
    CHECK("clRetainEvent", clRetainEvent(ue2));
    CHECK("clGetEventInfo(REFERENCE_COUNT)",
          clGetEventInfo(ue2, CL_EVENT_REFERENCE_COUNT, sizeof(rc1), &rc1, NULL));
    CHECK("clReleaseEvent", clReleaseEvent(ue2));
    CHECK("clGetEventInfo(REFERENCE_COUNT)",
          clGetEventInfo(ue2, CL_EVENT_REFERENCE_COUNT, sizeof(rc2), &rc2, NULL));
    printf("user event refcount: %u -> %u -> %u\n", rc0, rc1, rc2);
    CHECK("clSetUserEventStatus(CL_COMPLETE)", clSetUserEventStatus(ue2, CL_COMPLETE));
    CHECK("clReleaseEvent", clReleaseEvent(ue2));

    CHECK("clReleaseMemObject", clReleaseMemObject(buf));
    CHECK("clReleaseKernel", clReleaseKernel(k));
    CHECK("clReleaseProgram", clReleaseProgram(prog));
    CHECK("clReleaseCommandQueue(q)", clReleaseCommandQueue(q));
    CHECK("clReleaseCommandQueue(q2)", clReleaseCommandQueue(q2));
    CHECK("clReleaseContext", clReleaseContext(ctx));
    if (fails)
        return 1;
    printf("OK\n");
    return 0;
}
