// c = a + b, one thread per element (vector_add_ptx loads this as PTX).
// extern "C": the programs look kernels up by their plain names.
extern "C" __global__ void vector_add(const float *a, const float *b, float *c, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) c[i] = a[i] + b[i];
}
