/* Texture objects: a 2D CUDA array filled with cuMemcpy2D (host to array),
 * read by a kernel with tex2D (point filtering, clamped addressing); and a
 * texture over linear device memory read with tex1Dfetch. Also a 1D array
 * written with cuMemcpyHtoA and read back with cuMemcpyAtoH. */
#include "cu_common.h"
#include "texture_fatbin.h" /* texture_fatbin */

enum { W = 16, H = 8, SHIFT = 2, N = 300 };

int main(void) {
  CUdevice dev;
  cu_start(&dev);
  CUmodule mod;
  CUfunction read2d, fetch1d;
  CHECK(cuModuleLoadData(&mod, texture_fatbin));
  CHECK(cuModuleGetFunction(&read2d, mod, "tex2d_read"));
  CHECK(cuModuleGetFunction(&fetch1d, mod, "tex1d_fetch"));

  /* 2D: texel (x, y) = 100 y + x + 1. */
  float img[H][W], out[H][W];
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) img[y][x] = (float)(100 * y + x + 1);
  CUarray array;
  CUDA_ARRAY_DESCRIPTOR ad = {.Width = W, .Height = H, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1};
  CHECK(cuArrayCreate(&array, &ad));
  CUDA_MEMCPY2D copy = {.srcMemoryType = CU_MEMORYTYPE_HOST, .srcHost = img, .srcPitch = sizeof img[0],
                        .dstMemoryType = CU_MEMORYTYPE_ARRAY, .dstArray = array,
                        .WidthInBytes = sizeof img[0], .Height = H};
  CHECK(cuMemcpy2D(&copy));

  CUDA_RESOURCE_DESC rd = {.resType = CU_RESOURCE_TYPE_ARRAY};
  rd.res.array.hArray = array;
  CUDA_TEXTURE_DESC td = {.addressMode = {CU_TR_ADDRESS_MODE_CLAMP, CU_TR_ADDRESS_MODE_CLAMP},
                          .filterMode = CU_TR_FILTER_MODE_POINT};
  CUtexObject tex2d;
  CHECK(cuTexObjectCreate(&tex2d, &rd, &td, NULL));

  CUdeviceptr dout;
  int w = W, h = H, shift = SHIFT;
  CHECK(cuMemAlloc(&dout, sizeof out));
  void *params2d[] = {&tex2d, &dout, &w, &h, &shift};
  CHECK(cuLaunchKernel(read2d, 1, 1, 1, W, H, 1, 0, NULL, params2d, NULL));
  CHECK(cuMemcpyDtoH(out, dout, sizeof out));
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) cu_expect(out[y][x] == img[y][x < SHIFT ? 0 : x - SHIFT], "tex2D texel");
  printf("tex2D: out[0][1]=%.0f out[0][3]=%.0f out[7][15]=%.0f checksum 0x%08x\n", out[0][1], out[0][3],
         out[7][15], cu_fnv1a(out, sizeof out));

  /* 1D over linear memory: element i = 3 i - 50. */
  int lin[N], got[N], n = N;
  for (int i = 0; i < N; ++i) lin[i] = 3 * i - 50;
  CUdeviceptr dlin, dgot;
  CHECK(cuMemAlloc(&dlin, sizeof lin));
  CHECK(cuMemAlloc(&dgot, sizeof got));
  CHECK(cuMemcpyHtoD(dlin, lin, sizeof lin));
  CUDA_RESOURCE_DESC rl = {.resType = CU_RESOURCE_TYPE_LINEAR};
  rl.res.linear.devPtr = dlin;
  rl.res.linear.format = CU_AD_FORMAT_SIGNED_INT32;
  rl.res.linear.numChannels = 1;
  rl.res.linear.sizeInBytes = sizeof lin;
  CUDA_TEXTURE_DESC tl = {.flags = CU_TRSF_READ_AS_INTEGER};
  CUtexObject tex1d;
  CHECK(cuTexObjectCreate(&tex1d, &rl, &tl, NULL));
  void *params1d[] = {&tex1d, &dgot, &n};
  CHECK(cuLaunchKernel(fetch1d, cu_blocks(N), 1, 1, 128, 1, 1, 0, NULL, params1d, NULL));
  CHECK(cuMemcpyDtoH(got, dgot, sizeof got));
  for (int i = 0; i < N; ++i) cu_expect(got[i] == 2 * lin[i], "tex1Dfetch element");
  printf("tex1Dfetch: got[0]=%d got[%d]=%d checksum 0x%08x\n", got[0], N - 1, got[N - 1], cu_fnv1a(got, sizeof got));

  /* A 1D array through the host: HtoA at an offset, AtoH of the whole. */
  CUarray array1d;
  CUDA_ARRAY_DESCRIPTOR ad1 = {.Width = N, .Height = 0, .Format = CU_AD_FORMAT_SIGNED_INT32, .NumChannels = 1};
  CHECK(cuArrayCreate(&array1d, &ad1));
  CHECK(cuMemcpyHtoA(array1d, 0, lin, sizeof lin));
  CHECK(cuMemcpyHtoA(array1d, 10 * sizeof(int), got, 5 * sizeof(int)));
  int back[N];
  CHECK(cuMemcpyAtoH(back, array1d, 0, sizeof back));
  cu_expect(back[9] == lin[9] && back[10] == got[0] && back[14] == got[4] && back[15] == lin[15], "HtoA/AtoH");
  printf("array 1D: back[9]=%d back[10]=%d back[14]=%d back[15]=%d\n", back[9], back[10], back[14], back[15]);

  /* Copies that stay on the device: AtoA, DtoA at an offset, AtoD back. */
  CUarray copy1d;
  CHECK(cuArrayCreate(&copy1d, &ad1));
  CHECK(cuMemcpyAtoA(copy1d, 0, array1d, 0, sizeof back));
  CHECK(cuMemcpyDtoA(copy1d, 20 * sizeof(int), dgot, 4 * sizeof(int)));
  CHECK(cuMemcpyAtoD(dlin, copy1d, 0, sizeof lin));
  int trip[N];
  CHECK(cuMemcpyDtoH(trip, dlin, sizeof trip));
  cu_expect(trip[19] == back[19] && trip[20] == got[0] && trip[23] == got[3] && trip[24] == back[24],
            "AtoA/DtoA/AtoD");
  printf("array copies on the device: trip[20]=%d checksum 0x%08x\n", trip[20], cu_fnv1a(trip, sizeof trip));
  CHECK(cuArrayDestroy(copy1d));

  /* The async forms on a stream: HtoA then AtoH of part of the array. */
  CUstream s;
  CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  int part[8], again[8];
  for (int i = 0; i < 8; ++i) part[i] = 1000 + i;
  CHECK(cuMemcpyHtoAAsync(array1d, 30 * sizeof(int), part, sizeof part, s));
  CHECK(cuMemcpyAtoHAsync(again, array1d, 30 * sizeof(int), sizeof again, s));
  CHECK(cuStreamSynchronize(s));
  cu_expect(memcmp(part, again, sizeof part) == 0, "HtoAAsync/AtoHAsync");
  printf("array async copies: again[0]=%d again[7]=%d\n", again[0], again[7]);
  CHECK(cuStreamDestroy(s));

  CHECK(cuTexObjectDestroy(tex2d));
  CHECK(cuTexObjectDestroy(tex1d));
  CHECK(cuArrayDestroy(array));
  CHECK(cuArrayDestroy(array1d));
  CHECK(cuMemFree(dout));
  CHECK(cuMemFree(dlin));
  CHECK(cuMemFree(dgot));
  CHECK(cuModuleUnload(mod));
  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("texture: ok\n");
  return 0;
}
