/* Module globals: a __device__ int and a __constant__ array found with
 * cuModuleGetGlobal (their sizes come back too), written with cuMemcpyHtoD,
 * read by one kernel, changed by another, read back with cuMemcpyDtoH. */
#include "cu_common.h"
#include "globals_fatbin.h" /* globals_fatbin */

enum { N = 64 };

int main(void) {
  CUdevice dev;
  cu_start(&dev);
  CUmodule mod;
  CUfunction apply, bump;
  CHECK(cuModuleLoadData(&mod, globals_fatbin));
  CHECK(cuModuleGetFunction(&apply, mod, "apply_coeffs"));
  CHECK(cuModuleGetFunction(&bump, mod, "bump_scale"));

  CUdeviceptr scale, coeffs, coeffs_again;
  size_t scale_size, coeffs_size;
  CHECK(cuModuleGetGlobal(&scale, &scale_size, mod, "g_scale"));
  CHECK(cuModuleGetGlobal(&coeffs, &coeffs_size, mod, "c_coeffs"));
  CHECK(cuModuleGetGlobal(&coeffs_again, NULL, mod, "c_coeffs")); /* the size is optional */
  printf("g_scale: %zu bytes, c_coeffs: %zu bytes, same address twice: %d\n", scale_size, coeffs_size,
         coeffs == coeffs_again);

  int host_coeffs[16], three = 3;
  for (int i = 0; i < 16; ++i) host_coeffs[i] = i * i - 7;
  CHECK(cuMemcpyHtoD(coeffs, host_coeffs, sizeof host_coeffs));
  CHECK(cuMemcpyHtoD(scale, &three, sizeof three));

  CUdeviceptr dout;
  int out[N], n = N, by = 10;
  CHECK(cuMemAlloc(&dout, sizeof out));
  void *apply_params[] = {&dout, &n};
  void *bump_params[] = {&by};
  for (int round = 0; round < 2; ++round) {
    CHECK(cuLaunchKernel(apply, 1, 1, 1, N, 1, 1, 0, NULL, apply_params, NULL));
    CHECK(cuMemcpyDtoH(out, dout, sizeof out));
    int scale_now;
    CHECK(cuMemcpyDtoH(&scale_now, scale, sizeof scale_now));
    for (int i = 0; i < N; ++i) cu_expect(out[i] == host_coeffs[i % 16] * scale_now, "apply_coeffs result");
    printf("round %d: g_scale %d, out[0]=%d out[15]=%d checksum 0x%08x\n", round, scale_now, out[0], out[15],
           cu_fnv1a(out, sizeof out));
    CHECK(cuLaunchKernel(bump, 1, 1, 1, 1, 1, 1, 0, NULL, bump_params, NULL)); /* g_scale += 10 */
  }
  int final_scale;
  CHECK(cuMemcpyDtoH(&final_scale, scale, sizeof final_scale));
  printf("g_scale after two bumps: %d\n", final_scale);

  CHECK(cuMemFree(dout));
  CHECK(cuModuleUnload(mod));
  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("module_globals: ok\n");
  return 0;
}
