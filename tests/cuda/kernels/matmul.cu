// C = A * B for n x n row-major matrices, tiled through dynamic shared
// memory: the launch passes 2 * blockDim.x * blockDim.x floats as
// sharedMemBytes (blockDim.x == blockDim.y is the tile size).
extern "C" __global__ void matmul(const float *A, const float *B, float *C, int n) {
  extern __shared__ float tiles[];
  const int t = blockDim.x;
  float *As = tiles, *Bs = tiles + t * t;
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int row = blockIdx.y * t + ty, col = blockIdx.x * t + tx;
  float acc = 0.0f;
  for (int k0 = 0; k0 < n; k0 += t) {
    As[ty * t + tx] = (row < n && k0 + tx < n) ? A[row * n + k0 + tx] : 0.0f;
    Bs[ty * t + tx] = (col < n && k0 + ty < n) ? B[(k0 + ty) * n + col] : 0.0f;
    __syncthreads();
    for (int k = 0; k < t; ++k) acc += As[ty * t + k] * Bs[k * t + tx];
    __syncthreads();
  }
  if (row < n && col < n) C[row * n + col] = acc;
}
