/* The call-heavy case: an iterative-solver-like loop of 2,000 small kernel
 * launches (different arguments each time) with a small cuMemcpyDtoH every
 * 100 launches, checked against the same recurrence on the host. */
#include "cu_common.h"
#include "ops_fatbin.h"

enum { N = 4096, LAUNCHES = 2000, EVERY = 100, SAMPLE = 4 };

int main(void) {
  CUdevice dev;
  cu_start(&dev);
  CUmodule mod;
  CUfunction step;
  CHECK(cuModuleLoadData(&mod, ops_fatbin));
  CHECK(cuModuleGetFunction(&step, mod, "lcg_step"));

  static unsigned ref[N], got[N];
  for (int i = 0; i < N; ++i) ref[i] = (unsigned)i;
  CUdeviceptr d;
  CHECK(cuMemAlloc(&d, sizeof ref));
  CHECK(cuMemcpyHtoD(d, ref, sizeof ref));

  /* Every EVERY launches, SAMPLE values from the middle of the vector; their
   * running checksum stands for the solver's convergence checks. */
  uint32_t samples = 2166136261u;
  int n = N;
  unsigned iter;
  void *params[] = {&d, &n, &iter};
  for (iter = 0; iter < LAUNCHES; ++iter) {
    CHECK(cuLaunchKernel(step, cu_blocks(N), 1, 1, 128, 1, 1, 0, NULL, params, NULL));
    for (int i = 0; i < N; ++i) ref[i] = ref[i] * 1664525u + 1013904223u + iter;
    if ((iter + 1) % EVERY == 0) {
      unsigned part[SAMPLE];
      CHECK(cuMemcpyDtoH(part, d + (N / 2) * sizeof(unsigned), sizeof part));
      cu_expect(memcmp(part, ref + N / 2, sizeof part) == 0, "periodic sample");
      samples = (samples ^ cu_fnv1a(part, sizeof part)) * 16777619u;
    }
  }
  CHECK(cuMemcpyDtoH(got, d, sizeof got));
  cu_expect(memcmp(got, ref, sizeof got) == 0, "final vector");
  printf("%d launches, %d samples: samples checksum 0x%08x\n", LAUNCHES, LAUNCHES / EVERY, samples);
  printf("final: x[0]=%u x[%d]=%u checksum 0x%08x\n", got[0], N - 1, got[N - 1], cu_fnv1a(got, sizeof got));

  CHECK(cuMemFree(d));
  CHECK(cuModuleUnload(mod));
  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("launch_heavy: ok\n");
  return 0;
}
