/* vector_add from PTX text: cuModuleLoadData, and cuModuleLoadDataEx with JIT
 * options (an info log buffer among them); kernel arguments as kernelParams;
 * device pointers at offsets inside one allocation. */
#include "cu_common.h"
#include "vector_add_ptx.h" /* vector_add_ptx: NUL-terminated PTX */

enum { N = 1000 }; /* not a multiple of the block size */

static void run(CUfunction f, CUdeviceptr a, CUdeviceptr b, CUdeviceptr c) {
  int n = N;
  void *params[] = {&a, &b, &c, &n};
  CHECK(cuLaunchKernel(f, cu_blocks(N), 1, 1, 128, 1, 1, 0, NULL, params, NULL));
  CHECK(cuCtxSynchronize());
}

int main(void) {
  CUdevice dev;
  cu_start(&dev);
  static float a[N], b[N], c[N];
  for (int i = 0; i < N; ++i) a[i] = i * 0.5f, b[i] = (N - i) * 0.25f; /* exact sums */

  CUmodule plain, jit;
  CHECK(cuModuleLoadData(&plain, vector_add_ptx));
  /* JIT options: the out-values (log size, wall time) come back in `values`. */
  char info[4096] = {0};
  CUjit_option options[] = {CU_JIT_INFO_LOG_BUFFER, CU_JIT_INFO_LOG_BUFFER_SIZE_BYTES, CU_JIT_OPTIMIZATION_LEVEL,
                            CU_JIT_WALL_TIME};
  void *values[] = {info, (void *)(uintptr_t)sizeof info, (void *)(uintptr_t)3, NULL};
  CHECK(cuModuleLoadDataEx(&jit, vector_add_ptx, 4, options, values));
  float wall;
  memcpy(&wall, &values[3], sizeof wall); /* a float in the pointer's slot */
  printf("JIT info log fits its buffer: %d, wall time >= 0: %d\n",
         (size_t)(uintptr_t)values[1] <= sizeof info && strlen(info) < sizeof info, wall >= 0.0f);

  CUfunction f_plain, f_jit;
  CHECK(cuModuleGetFunction(&f_plain, plain, "vector_add"));
  CHECK(cuModuleGetFunction(&f_jit, jit, "vector_add"));

  /* Separate buffers, the module from cuModuleLoadData. */
  CUdeviceptr da, db, dc;
  CHECK(cuMemAlloc(&da, sizeof a));
  CHECK(cuMemAlloc(&db, sizeof b));
  CHECK(cuMemAlloc(&dc, sizeof c));
  CHECK(cuMemcpyHtoD(da, a, sizeof a));
  CHECK(cuMemcpyHtoD(db, b, sizeof b));
  run(f_plain, da, db, dc);
  CHECK(cuMemcpyDtoH(c, dc, sizeof c));
  for (int i = 0; i < N; ++i) cu_expect(c[i] == a[i] + b[i], "c = a + b (cuModuleLoadData)");
  printf("separate buffers: c[0]=%.2f c[999]=%.2f checksum 0x%08x\n", c[0], c[N - 1], cu_fnv1a(c, sizeof c));

  /* One allocation holding a, b and c at offsets, the JIT-option module. */
  CUdeviceptr big;
  CHECK(cuMemAlloc(&big, 3 * sizeof a));
  CUdeviceptr pa = big, pb = big + sizeof a, pc = big + 2 * sizeof a;
  CHECK(cuMemcpyHtoD(pa, a, sizeof a));
  CHECK(cuMemcpyHtoD(pb, b, sizeof b));
  CHECK(cuMemsetD32(pc, 0, N));
  run(f_jit, pa, pb, pc);
  float part[10];
  CHECK(cuMemcpyDtoH(part, pc + 500 * sizeof(float), sizeof part)); /* elements 500..509 */
  for (int i = 0; i < 10; ++i) cu_expect(part[i] == c[500 + i], "slice of c at an offset");
  memset(c, 0, sizeof c);
  CHECK(cuMemcpyDtoH(c, pc, sizeof c));
  printf("offsets in one allocation: c[500]=%.2f c[509]=%.2f checksum 0x%08x\n", part[0], part[9],
         cu_fnv1a(c, sizeof c));

  CHECK(cuMemFree(big));
  CHECK(cuMemFree(da));
  CHECK(cuMemFree(db));
  CHECK(cuMemFree(dc));
  CHECK(cuModuleUnload(jit));
  CHECK(cuModuleUnload(plain));
  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("vector_add_ptx: ok\n");
  return 0;
}
