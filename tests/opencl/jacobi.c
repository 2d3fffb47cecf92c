/* jacobi: an iterative solver as such programs are written: thousands of
 * small kernels (one Jacobi sweep of a 1-D Poisson problem each, the two
 * vectors swapped by clSetKernelArg), a residual reduced on the device every
 * few sweeps and read back with a small blocking read to test convergence,
 * and an event on every sweep kept for profiling-style bookkeeping. The
 * result is printed from integer-scaled values, so that native and remoted
 * runs on one device compare byte for byte. */
#include "ocl_common.h"

#define N 256u
#define SWEEPS 4000u
#define CHECK_EVERY 8u

static const char *src =
    "__kernel void sweep(__global const float *x, __global float *y,\n"
    "                    __global const float *b, uint n) {\n"
    "    uint i = get_global_id(0);\n"
    "    if (i >= n) return;\n"
    "    float l = i > 0 ? x[i - 1] : 0.0f;\n"
    "    float r = i + 1 < n ? x[i + 1] : 0.0f;\n"
    "    y[i] = 0.5f * (b[i] + l + r);\n"
    "}\n"
    "__kernel void residual(__global const float *x, __global const float *b,\n"
    "                       __global float *out, uint n) {\n"
    "    /* one work-item: the problem is small, and the order is fixed */\n"
    "    if (get_global_id(0) != 0) return;\n"
    "    float s = 0.0f;\n"
    "    for (uint i = 0; i < n; ++i) {\n"
    "        float l = i > 0 ? x[i - 1] : 0.0f;\n"
    "        float r = i + 1 < n ? x[i + 1] : 0.0f;\n"
    "        float d = b[i] - (2.0f * x[i] - l - r);\n"
    "        s += d * d;\n"
    "    }\n"
    "    out[0] = s;\n"
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
    cl_kernel sweep = ocl_kernel(prog, "sweep");
    cl_kernel resid = ocl_kernel(prog, "residual");

    float b[N], x0[N];
    for (cl_uint i = 0; i < N; ++i) {
        b[i] = (float)((i * 37u) % 11u) / 11.0f;
        x0[i] = 0.0f;
    }
    cl_mem db = clCreateBuffer(ctx, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, sizeof b, b, &err);
    CHECK("clCreateBuffer(b)", err);
    cl_mem dx[2];
    for (int v = 0; v < 2; ++v) {
        dx[v] = clCreateBuffer(ctx, CL_MEM_READ_WRITE | CL_MEM_COPY_HOST_PTR, sizeof x0, x0, &err);
        CHECK("clCreateBuffer(x)", err);
    }
    cl_mem dres = clCreateBuffer(ctx, CL_MEM_WRITE_ONLY, sizeof(float), NULL, &err);
    CHECK("clCreateBuffer(residual)", err);

    const cl_uint n = N;
    CHECK("clSetKernelArg(sweep, b)", clSetKernelArg(sweep, 2, sizeof(cl_mem), &db));
    CHECK("clSetKernelArg(sweep, n)", clSetKernelArg(sweep, 3, sizeof n, &n));
    CHECK("clSetKernelArg(residual, b)", clSetKernelArg(resid, 1, sizeof(cl_mem), &db));
    CHECK("clSetKernelArg(residual, out)", clSetKernelArg(resid, 2, sizeof(cl_mem), &dres));
    CHECK("clSetKernelArg(residual, n)", clSetKernelArg(resid, 3, sizeof n, &n));

    const size_t global = N, one = 1;
    unsigned failures = 0, checks = 0, events_complete = 0;
    uint64_t trace = 1469598103934665603ULL; /* the residual history */
    float res = 0.0f;
    for (cl_uint s = 0; s < SWEEPS; ++s) {
        const int from = (int)(s & 1u);
        failures += clSetKernelArg(sweep, 0, sizeof(cl_mem), &dx[from]) != CL_SUCCESS;
        failures += clSetKernelArg(sweep, 1, sizeof(cl_mem), &dx[!from]) != CL_SUCCESS;
        cl_event ev;
        failures += clEnqueueNDRangeKernel(q, sweep, 1, NULL, &global, NULL, 0, NULL, &ev) !=
                    CL_SUCCESS;
        if ((s + 1) % CHECK_EVERY == 0) {
            failures += clSetKernelArg(resid, 0, sizeof(cl_mem), &dx[!from]) != CL_SUCCESS;
            failures += clEnqueueNDRangeKernel(q, resid, 1, NULL, &one, NULL, 1, &ev, NULL) !=
                        CL_SUCCESS;
            failures += clEnqueueReadBuffer(q, dres, CL_TRUE, 0, sizeof res, &res, 0, NULL,
                                            NULL) != CL_SUCCESS;
            cl_int status = -1;
            failures += clGetEventInfo(ev, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status,
                                       &status, NULL) != CL_SUCCESS;
            events_complete += status == CL_COMPLETE;
            ++checks;
            const int32_t scaled = (int32_t)(res * 1e4f);
            trace = (trace ^ (uint64_t)(uint32_t)scaled) * 1099511628211ULL;
        }
        failures += clReleaseEvent(ev) != CL_SUCCESS;
    }
    CHECK("clFinish", clFinish(q));
    float x[N];
    CHECK("clEnqueueReadBuffer(x)",
          clEnqueueReadBuffer(q, dx[SWEEPS & 1u], CL_TRUE, 0, sizeof x, x, 0, NULL, NULL));
    int32_t scaled[N];
    for (cl_uint i = 0; i < N; ++i) scaled[i] = (int32_t)(x[i] * 1e3f);

    printf("sweeps: %u, residual checks: %u\n", SWEEPS, checks);
    printf("failed calls: %u\n", failures);
    printf("sweep events complete at their check: %u\n", events_complete);
    printf("final residual (x1e4): %d\n", (int)(res * 1e4f));
    printf("residual history = %016llx\n", (unsigned long long)trace);
    printf("x[0] x[%u] x[%u] (x1e3) = %d %d %d\n", N / 2, N - 1, scaled[0], scaled[N / 2],
           scaled[N - 1]);
    printf("solution checksum = %016llx\n", (unsigned long long)ocl_fnv1a(scaled, sizeof scaled));

    for (int v = 0; v < 2; ++v) CHECK("clReleaseMemObject(x)", clReleaseMemObject(dx[v]));
    CHECK("clReleaseMemObject(b)", clReleaseMemObject(db));
    CHECK("clReleaseMemObject(residual)", clReleaseMemObject(dres));
    CHECK("clReleaseKernel(sweep)", clReleaseKernel(sweep));
    CHECK("clReleaseKernel(residual)", clReleaseKernel(resid));
    CHECK("clReleaseProgram", clReleaseProgram(prog));
    CHECK("clReleaseCommandQueue", clReleaseCommandQueue(q));
    CHECK("clReleaseContext", clReleaseContext(ctx));
    if (failures != 0 || events_complete != checks) return 1;
    printf("OK\n");
    return 0;
}
