// Texture reads through texture objects (CUtexObject == cudaTextureObject_t).

// out[y * w + x] = texel (x - shift, y) of a 2D float texture with point
// filtering and clamped addressing: the first `shift` columns repeat column 0.
extern "C" __global__ void tex2d_read(cudaTextureObject_t tex, float *out, int w, int h, int shift) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x < w && y < h) out[y * w + x] = tex2D<float>(tex, x - shift + 0.5f, y + 0.5f);
}

// out[i] = 2 * element i of a texture over linear memory of int
extern "C" __global__ void tex1d_fetch(cudaTextureObject_t tex, int *out, int n) {
  int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = 2 * tex1Dfetch<int>(tex, i);
}

// Each texel of a 2D float surface (w x h) times k, read and written in place.
extern "C" __global__ void surf2d_scale(cudaSurfaceObject_t s, int w, int h, float k) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x < w && y < h) {
    float v;
    surf2Dread(&v, s, x * (int)sizeof(float), y);
    surf2Dwrite(v * k, s, x * (int)sizeof(float), y);
  }
}

// out[y * w + x] = texel (x, y) of mipmap level `lod` (w x h texels) of a
// texture with normalized coordinates and point filtering.
extern "C" __global__ void tex2d_lod_read(cudaTextureObject_t tex, float *out, int w, int h,
                                          float lod) {
  int x = blockIdx.x * blockDim.x + threadIdx.x;
  int y = blockIdx.y * blockDim.y + threadIdx.y;
  if (x < w && y < h) out[y * w + x] = tex2DLod<float>(tex, (x + 0.5f) / w, (y + 0.5f) / h, lod);
}
