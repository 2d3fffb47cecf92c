// Module-scope variables the host finds with cuModuleGetGlobal (plain C++
// names at namespace scope are not mangled).
__device__ int g_scale;
__constant__ int c_coeffs[16];

// out[i] = c_coeffs[i % 16] * g_scale
extern "C" __global__ void apply_coeffs(int *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = c_coeffs[i % 16] * g_scale;
}

// g_scale += by (launched with one thread)
extern "C" __global__ void bump_scale(int by) { g_scale += by; }
