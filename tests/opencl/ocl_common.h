/* Shared helpers for the hira OpenCL conformance-style programs.
 *
 * Every program prints only deterministic, implementation-portable values to
 * stdout, so that a native run (ocl-icd + PoCL) and a run through hira's
 * remoted libOpenCL can be compared byte for byte.  Diagnostics that could
 * differ between runs (build logs, pointers, ...) go to stderr, and only when
 * something already failed.
 */
#ifndef HIRA_OCL_COMMON_H
#define HIRA_OCL_COMMON_H

#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#ifndef CL_TARGET_OPENCL_VERSION
#define CL_TARGET_OPENCL_VERSION 120
#endif
#define CL_USE_DEPRECATED_OPENCL_1_1_APIS
#define CL_USE_DEPRECATED_OPENCL_1_2_APIS
#define CL_USE_DEPRECATED_OPENCL_2_0_APIS
#include <CL/cl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__GNUC__)
#define OCL_UNUSED __attribute__((unused))
#else
#define OCL_UNUSED
#endif

#if defined(__GNUC__)
/* Line-buffer stdout so that everything printed before a crash inside the
 * implementation still reaches the output being compared. */
__attribute__((constructor)) static void ocl_line_buffer_stdout(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
}
#endif

/* Print "what: code" and exit(1) unless code == want. */
static OCL_UNUSED void ocl_expect(const char *what, cl_int got, cl_int want) {
  printf("%s: %d\n", what, (int)got);
  if (got != want) {
    printf("FAIL: %s returned %d, expected %d\n", what, (int)got, (int)want);
    fflush(stdout);
    exit(1);
  }
}

#define CHECK(what, err) ocl_expect((what), (err), CL_SUCCESS)

/* Print "what: value" and exit(1) unless cond holds. */
static OCL_UNUSED void ocl_require(const char *what, int cond) {
  printf("%s: %d\n", what, cond ? 1 : 0);
  if (!cond) {
    printf("FAIL: %s\n", what);
    fflush(stdout);
    exit(1);
  }
}

/* FNV-1a 64-bit over raw bytes; stable across runs and hosts of the same
 * endianness. */
static OCL_UNUSED uint64_t ocl_fnv1a(const void *data, size_t len) {
  const unsigned char *p = (const unsigned char *)data;
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < len; i++) {
    h ^= p[i];
    h *= 1099511628211ULL;
  }
  return h;
}

/* First platform, first device of any type. */
static OCL_UNUSED void ocl_first_device(cl_platform_id *platform, cl_device_id *device) {
  cl_uint n = 0;
  cl_int err = clGetPlatformIDs(1, platform, &n);
  CHECK("clGetPlatformIDs", err);
  ocl_require("platforms >= 1", n >= 1);
  err = clGetDeviceIDs(*platform, CL_DEVICE_TYPE_ALL, 1, device, &n);
  CHECK("clGetDeviceIDs", err);
  ocl_require("devices >= 1", n >= 1);
}

static OCL_UNUSED cl_context ocl_context(cl_platform_id platform, cl_device_id device) {
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM, (cl_context_properties)platform, 0};
  cl_int err = CL_SUCCESS;
  cl_context ctx = clCreateContext(props, 1, &device, NULL, NULL, &err);
  CHECK("clCreateContext", err);
  return ctx;
}

static OCL_UNUSED cl_command_queue ocl_queue(cl_context ctx, cl_device_id device,
                                             cl_command_queue_properties props) {
  cl_int err = CL_SUCCESS;
  cl_command_queue q = clCreateCommandQueue(ctx, device, props, &err);
  CHECK("clCreateCommandQueue", err);
  return q;
}

/* Dump the build log to stderr (only used after a failure). */
static OCL_UNUSED void ocl_dump_log(cl_program prog, cl_device_id device) {
  size_t len = 0;
  if (clGetProgramBuildInfo(prog, device, CL_PROGRAM_BUILD_LOG, 0, NULL, &len) != CL_SUCCESS)
    return;
  char *log = (char *)calloc(len + 1, 1);
  if (!log) return;
  if (clGetProgramBuildInfo(prog, device, CL_PROGRAM_BUILD_LOG, len, log, NULL) == CL_SUCCESS)
    fprintf(stderr, "build log:\n%s\n", log);
  free(log);
}

static OCL_UNUSED cl_program ocl_build(cl_context ctx, cl_device_id device, const char *src,
                                       const char *options) {
  cl_int err = CL_SUCCESS;
  cl_program prog = clCreateProgramWithSource(ctx, 1, &src, NULL, &err);
  CHECK("clCreateProgramWithSource", err);
  err = clBuildProgram(prog, 1, &device, options, NULL, NULL);
  if (err != CL_SUCCESS) ocl_dump_log(prog, device);
  CHECK("clBuildProgram", err);
  return prog;
}

static OCL_UNUSED cl_kernel ocl_kernel(cl_program prog, const char *name) {
  cl_int err = CL_SUCCESS;
  cl_kernel k = clCreateKernel(prog, name, &err);
  CHECK("clCreateKernel", err);
  return k;
}

#endif /* HIRA_OCL_COMMON_H */
