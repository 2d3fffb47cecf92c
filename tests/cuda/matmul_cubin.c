/* Tiled matrix multiply from the sm_90 cubin: one launch passes its
 * arguments as a packed buffer through `extra`, one as kernelParams; the
 * tiles live in dynamic shared memory (sharedMemBytes); cuFuncGetAttribute
 * and cuFuncSetAttribute on the kernel. */
#include "cu_common.h" /* first: it sets _POSIX_C_SOURCE */

#include <stddef.h>
#include "matmul_cubin.h" /* matmul_cubin */

enum { N = 96, TILE = 16 };

int main(void) {
  CUdevice dev;
  cu_start(&dev);
  CUmodule mod;
  CUfunction f;
  CHECK(cuModuleLoadData(&mod, matmul_cubin));
  CHECK(cuModuleGetFunction(&f, mod, "matmul"));

  static const struct {
    const char *name;
    CUfunction_attribute attr;
  } attributes[] = {
      {"binary version", CU_FUNC_ATTRIBUTE_BINARY_VERSION},
      {"ptx version", CU_FUNC_ATTRIBUTE_PTX_VERSION},
      {"static shared bytes", CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES},
      {"local bytes", CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES},
      {"max threads per block", CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK},
  };
  for (size_t i = 0; i < sizeof attributes / sizeof attributes[0]; ++i) {
    int value;
    CHECK(cuFuncGetAttribute(&value, attributes[i].attr, f));
    printf("matmul %s: %d\n", attributes[i].name, value);
  }
  int regs, dyn;
  CHECK(cuFuncGetAttribute(&regs, CU_FUNC_ATTRIBUTE_NUM_REGS, f));
  printf("matmul uses registers: %d\n", regs > 0);
  CHECK(cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, 64 * 1024));
  CHECK(cuFuncGetAttribute(&dyn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, f));
  printf("matmul max dynamic shared bytes: %d\n", dyn);

  /* Small integers: every product and sum is exact in float. */
  static float A[N * N], B[N * N], C[N * N], ref[N * N];
  for (int i = 0; i < N * N; ++i) A[i] = (float)(i % 7 - 3), B[i] = (float)(i % 5 - 2);
  for (int r = 0; r < N; ++r)
    for (int c = 0; c < N; ++c) {
      float acc = 0.0f;
      for (int k = 0; k < N; ++k) acc += A[r * N + k] * B[k * N + c];
      ref[r * N + c] = acc;
    }

  CUdeviceptr dA, dB, dC1, dC2;
  CHECK(cuMemAlloc(&dA, sizeof A));
  CHECK(cuMemAlloc(&dB, sizeof B));
  CHECK(cuMemAlloc(&dC1, sizeof C));
  CHECK(cuMemAlloc(&dC2, sizeof C));
  CHECK(cuMemcpyHtoD(dA, A, sizeof A));
  CHECK(cuMemcpyHtoD(dB, B, sizeof B));
  const unsigned grid = (N + TILE - 1) / TILE, shared = 2 * TILE * TILE * sizeof(float);

  /* 1: the packed-buffer form; its layout follows the kernel's parameters. */
  struct matmul_args {
    CUdeviceptr a, b, c;
    int n;
  } args = {dA, dB, dC1, N};
  size_t args_size = offsetof(struct matmul_args, n) + sizeof args.n; /* no tail padding */
  void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &args, CU_LAUNCH_PARAM_BUFFER_SIZE, &args_size,
                   CU_LAUNCH_PARAM_END};
  CHECK(cuLaunchKernel(f, grid, grid, 1, TILE, TILE, 1, shared, NULL, NULL, extra));

  /* 2: kernelParams. */
  int n = N;
  void *params[] = {&dA, &dB, &dC2, &n};
  CHECK(cuLaunchKernel(f, grid, grid, 1, TILE, TILE, 1, shared, NULL, params, NULL));
  CHECK(cuCtxSynchronize());

  CHECK(cuMemcpyDtoH(C, dC1, sizeof C));
  cu_expect(memcmp(C, ref, sizeof C) == 0, "matmul through extra");
  printf("extra launch: C[0]=%.0f C[%d]=%.0f checksum 0x%08x\n", C[0], N * N - 1, C[N * N - 1],
         cu_fnv1a(C, sizeof C));
  CHECK(cuMemcpyDtoH(C, dC2, sizeof C));
  cu_expect(memcmp(C, ref, sizeof C) == 0, "matmul through kernelParams");
  printf("kernelParams launch: C[1]=%.0f C[%d]=%.0f checksum 0x%08x\n", C[1], N + 5, C[N + 5],
         cu_fnv1a(C, sizeof C));

  CHECK(cuMemFree(dA));
  CHECK(cuMemFree(dB));
  CHECK(cuMemFree(dC1));
  CHECK(cuMemFree(dC2));
  CHECK(cuModuleUnload(mod));
  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("matmul_cubin: ok\n");
  return 0;
}
