// Small integer kernels shared by most programs. Integer arithmetic only,
// so the host can check every result exactly.

// x[i] = base + i * mul
extern "C" __global__ void iota_i32(int *x, int n, int base, int mul) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = base + i * mul;
}

// x[i] += v
extern "C" __global__ void add_i32(int *x, int n, int v) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] += v;
}

// dst[i] += src[i]
extern "C" __global__ void accumulate_i32(int *dst, const int *src, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) dst[i] += src[i];
}

// One step of a linear congruential recurrence: launch_heavy runs it
// thousands of times with a different `iter` each launch.
extern "C" __global__ void lcg_step(unsigned *x, int n, unsigned iter) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) x[i] = x[i] * 1664525u + 1013904223u + iter;
}

// Reverses each block of blockDim.x ints through dynamic shared memory (n a
// multiple of the block): launched with more dynamic shared memory than a
// kernel may use without asking (cuKernelSetAttribute).
extern "C" __global__ void reverse_blocks(int *x, int n) {
  extern __shared__ int buf[];
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) buf[threadIdx.x] = x[i];
  __syncthreads();
  if (i < n) x[i] = buf[blockDim.x - 1 - threadIdx.x];
}
