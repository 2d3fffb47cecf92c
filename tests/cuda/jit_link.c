/* jit_link: PTX linked at run time (cuLink*, as Numba links its kernels with
 * libraries): the vector_add PTX added as data, and again from a file, is
 * linked into an image that cuModuleLoadData loads and runs; the log
 * buffers given to cuLinkCreate are filled; PTX that does not compile fails
 * cuLinkAddData with the driver's code and an error log; a missing file
 * fails cuLinkAddFile. */
#define _POSIX_C_SOURCE 200809L /* mkstemp */
#include <unistd.h>

#include "cu_common.h"
#include "vector_add_ptx.h" /* vector_add_ptx: NUL-terminated PTX */

enum { N = 1000, LOG = 8192 };

static char info[LOG], error[LOG];

/* A link whose logs go to info and error. */
static CUlinkState link_with_logs(void) {
  memset(info, 0, sizeof info);
  memset(error, 0, sizeof error);
  /* The driver reads them until the link is destroyed (and writes the
   * logs' sizes back): set again for each link. */
  static CUjit_option options[5];
  static void *values[5];
  options[0] = CU_JIT_INFO_LOG_BUFFER, values[0] = info;
  options[1] = CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, values[1] = (void *)(uintptr_t)LOG;
  options[2] = CU_JIT_ERROR_LOG_BUFFER, values[2] = error;
  options[3] = CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES, values[3] = (void *)(uintptr_t)LOG;
  options[4] = CU_JIT_LOG_VERBOSE, values[4] = (void *)(uintptr_t)1;
  CUlinkState state;
  CHECK(cuLinkCreate(5, options, values, &state));
  return state;
}

/* Loads a linked image, runs vector_add and returns the result's checksum. */
static uint32_t run_image(const void *image) {
  static float a[N], b[N], c[N];
  for (int i = 0; i < N; ++i) a[i] = i * 0.5f, b[i] = (N - i) * 0.25f;
  CUmodule module;
  CUfunction f;
  CHECK(cuModuleLoadData(&module, image));
  CHECK(cuModuleGetFunction(&f, module, "vector_add"));
  /* a, b and c side by side in one allocation, copied in with one call. */
  static float ab[2 * N];
  memcpy(ab, a, sizeof a);
  memcpy(ab + N, b, sizeof b);
  CUdeviceptr d;
  CHECK(cuMemAlloc(&d, 3 * sizeof a));
  CHECK(cuMemcpyHtoD(d, ab, sizeof ab));
  CUdeviceptr da = d, db = d + sizeof a, dc = d + 2 * sizeof a;
  int n = N;
  void *params[] = {&da, &db, &dc, &n};
  CHECK(cuLaunchKernel(f, cu_blocks(N), 1, 1, 128, 1, 1, 0, NULL, params, NULL));
  CHECK(cuMemcpyDtoH(c, dc, sizeof c));
  for (int i = 0; i < N; ++i) cu_expect(c[i] == a[i] + b[i], "c = a + b from the linked image");
  CHECK(cuMemFree(d));
  CHECK(cuModuleUnload(module));
  return cu_fnv1a(c, sizeof c);
}

int main(void) {
  CUdevice dev;
  cu_start(&dev);
  void *image;
  size_t size;

  CUlinkState state = link_with_logs();
  CHECK(cuLinkAddData(state, CU_JIT_INPUT_PTX, (void *)vector_add_ptx,
                      strlen((const char *)vector_add_ptx) + 1, "vector_add.ptx", 0, NULL, NULL));
  CHECK(cuLinkComplete(state, &image, &size));
  printf("from data: an ELF image: %d, info log written: %d, error log empty: %d\n",
         size > 4 && memcmp(image, "\177ELF", 4) == 0, info[0] != 0, error[0] == 0);
  printf("from data: checksum 0x%08x\n", run_image(image));
  CHECK(cuLinkDestroy(state));

  char path[] = "/tmp/hira-jit-link-XXXXXX";
  const int fd = mkstemp(path);
  cu_expect(fd >= 0, "mkstemp");
  const size_t len = strlen((const char *)vector_add_ptx);
  cu_expect(write(fd, vector_add_ptx, len) == (ssize_t)len, "write the PTX file");
  close(fd);
  CHECK(cuLinkCreate(0, NULL, NULL, &state));
  CHECK(cuLinkAddFile(state, CU_JIT_INPUT_PTX, path, 0, NULL, NULL));
  CHECK(cuLinkComplete(state, &image, &size));
  printf("from a file: checksum 0x%08x\n", run_image(image));
  CHECK(cuLinkDestroy(state));
  unlink(path);
  printf("a missing file: error %d\n",
         (int)cuLinkAddFile(state = link_with_logs(), CU_JIT_INPUT_PTX, path, 0, NULL, NULL));
  CHECK(cuLinkDestroy(state));

  static const char bad[] = ".version 8.0\n.target sm_90\n.address_size 64\nnot ptx at all\n";
  state = link_with_logs();
  const CUresult r =
      cuLinkAddData(state, CU_JIT_INPUT_PTX, (void *)bad, sizeof bad, "bad.ptx", 0, NULL, NULL);
  printf("PTX that does not compile: error %d, error log written: %d\n", (int)r, error[0] != 0);
  CHECK(cuLinkDestroy(state));

  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("jit_link: ok\n");
  return 0;
}
