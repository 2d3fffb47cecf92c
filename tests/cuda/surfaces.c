/* Surface objects: a 2D CUDA array made for surface loads and stores, filled
 * with cuMemcpy2D, scaled in place by a kernel through a surface object, read
 * back; the resource descriptors of the surface and of a texture over the
 * same array give the array back, with the texture's own descriptors. And a
 * mipmapped array, its levels filled apart and one read through a texture. */
#include "cu_common.h" /* first: it sets _POSIX_C_SOURCE */
#include "texture_fatbin.h"

enum { W = 32, H = 16 };

int main(void) {
  CUdevice dev;
  cu_start(&dev);
  CUmodule mod;
  CUfunction scale = cu_load_function(&mod, texture_fatbin, "surf2d_scale");

  float img[H][W], out[H][W];
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x) img[y][x] = (float)(64 * y + x);
  CUarray array;
  CUDA_ARRAY3D_DESCRIPTOR ad = {.Width = W,
                                .Height = H,
                                .Depth = 0,
                                .Format = CU_AD_FORMAT_FLOAT,
                                .NumChannels = 1,
                                .Flags = CUDA_ARRAY3D_SURFACE_LDST};
  CHECK(cuArray3DCreate(&array, &ad));
  CUDA_MEMCPY2D up = {.srcMemoryType = CU_MEMORYTYPE_HOST,
                      .srcHost = img,
                      .srcPitch = sizeof img[0],
                      .dstMemoryType = CU_MEMORYTYPE_ARRAY,
                      .dstArray = array,
                      .WidthInBytes = sizeof img[0],
                      .Height = H};
  CHECK(cuMemcpy2D(&up));

  CUDA_RESOURCE_DESC rd;
  memset(&rd, 0, sizeof rd);
  rd.resType = CU_RESOURCE_TYPE_ARRAY;
  rd.res.array.hArray = array;
  CUDA_ARRAY_MEMORY_REQUIREMENTS req;
  memset(&req, 0, sizeof req);
  printf("memory requirements of an array mapped at creation: %d\n",
         (int)cuArrayGetMemoryRequirements(&req, array, dev));
  CUsurfObject surf;
  CHECK(cuSurfObjectCreate(&surf, &rd));
  int w = W, h = H;
  float k = 3.0f;
  void *params[] = {&surf, &w, &h, &k};
  CHECK(cuLaunchKernel(scale, 2, 2, 1, 16, 8, 1, 0, NULL, params, NULL));
  CUDA_MEMCPY2D down = {.srcMemoryType = CU_MEMORYTYPE_ARRAY,
                        .srcArray = array,
                        .dstMemoryType = CU_MEMORYTYPE_HOST,
                        .dstHost = out,
                        .dstPitch = sizeof out[0],
                        .WidthInBytes = sizeof out[0],
                        .Height = H};
  CHECK(cuMemcpy2D(&down));
  for (int y = 0; y < H; ++y)
    for (int x = 0; x < W; ++x)
      cu_expect(out[y][x] == 3.0f * img[y][x], "scaled through the surface");
  printf("scaled through the surface: [1][2] = %.1f, checksum %08x\n", out[1][2],
         cu_fnv1a(out, sizeof out));

  CUDA_RESOURCE_DESC got;
  memset(&got, 0xff, sizeof got);
  CHECK(cuSurfObjectGetResourceDesc(&got, surf));
  printf("the surface's resource: an array %d, the same one %d\n",
         got.resType == CU_RESOURCE_TYPE_ARRAY, got.res.array.hArray == array);

  CUDA_TEXTURE_DESC td;
  memset(&td, 0, sizeof td);
  td.addressMode[0] = td.addressMode[1] = CU_TR_ADDRESS_MODE_BORDER;
  td.filterMode = CU_TR_FILTER_MODE_LINEAR;
  CUtexObject tex;
  CHECK(cuTexObjectCreate(&tex, &rd, &td, NULL));
  memset(&got, 0xff, sizeof got);
  CHECK(cuTexObjectGetResourceDesc(&got, tex));
  printf("the texture's resource: an array %d, the same one %d\n",
         got.resType == CU_RESOURCE_TYPE_ARRAY, got.res.array.hArray == array);
  CUDA_TEXTURE_DESC td_back;
  memset(&td_back, 0, sizeof td_back);
  CHECK(cuTexObjectGetTextureDesc(&td_back, tex));
  printf("the texture's descriptor: address mode %d, filter mode %d\n", (int)td_back.addressMode[0],
         (int)td_back.filterMode);
  CUDA_RESOURCE_VIEW_DESC view;
  memset(&view, 0, sizeof view);
  printf("its resource view (none was given): %d\n",
         (int)cuTexObjectGetResourceViewDesc(&view, tex));

  /* A mipmapped array of three levels (16, 8, 4 texels a side), each level
   * filled apart, read at level 1 through a texture over all of them. */
  enum { M = 16 };
  CUmipmappedArray mip;
  CUDA_ARRAY3D_DESCRIPTOR md = {
      .Width = M, .Height = M, .Format = CU_AD_FORMAT_FLOAT, .NumChannels = 1};
  CHECK(cuMipmappedArrayCreate(&mip, &md, 3));
  float level_img[M * M], level_out[M * M];
  for (unsigned level = 0; level < 3; ++level) {
    const int side = M >> level;
    CUarray level_array;
    CHECK(cuMipmappedArrayGetLevel(&level_array, mip, level));
    for (int i = 0; i < side * side; ++i) level_img[i] = (float)(1000 * (level + 1) + i);
    CUDA_MEMCPY2D fill = {.srcMemoryType = CU_MEMORYTYPE_HOST,
                          .srcHost = level_img,
                          .srcPitch = side * sizeof(float),
                          .dstMemoryType = CU_MEMORYTYPE_ARRAY,
                          .dstArray = level_array,
                          .WidthInBytes = side * sizeof(float),
                          .Height = (size_t)side};
    CHECK(cuMemcpy2D(&fill));
  }
  CUDA_RESOURCE_DESC mrd;
  memset(&mrd, 0, sizeof mrd);
  mrd.resType = CU_RESOURCE_TYPE_MIPMAPPED_ARRAY;
  mrd.res.mipmap.hMipmappedArray = mip;
  CUDA_TEXTURE_DESC mtd;
  memset(&mtd, 0, sizeof mtd);
  mtd.addressMode[0] = mtd.addressMode[1] = CU_TR_ADDRESS_MODE_CLAMP;
  mtd.filterMode = mtd.mipmapFilterMode = CU_TR_FILTER_MODE_POINT;
  mtd.flags = CU_TRSF_NORMALIZED_COORDINATES;
  mtd.maxMipmapLevelClamp = 2.0f;
  CUtexObject mtex;
  CHECK(cuTexObjectCreate(&mtex, &mrd, &mtd, NULL));
  memset(&got, 0xff, sizeof got);
  CHECK(cuTexObjectGetResourceDesc(&got, mtex));
  printf("the mipmapped texture's resource: mipmapped %d, the same one %d\n",
         got.resType == CU_RESOURCE_TYPE_MIPMAPPED_ARRAY, got.res.mipmap.hMipmappedArray == mip);
  CUfunction lod_read;
  CHECK(cuModuleGetFunction(&lod_read, mod, "tex2d_lod_read"));
  CUdeviceptr dlevel;
  CHECK(cuMemAlloc(&dlevel, sizeof level_out));
  int side1 = M / 2;
  float lod = 1.0f;
  void *lod_params[] = {&mtex, &dlevel, &side1, &side1, &lod};
  CHECK(cuLaunchKernel(lod_read, 1, 1, 1, 8, 8, 1, 0, NULL, lod_params, NULL));
  CHECK(cuMemcpyDtoH(level_out, dlevel, (size_t)side1 * side1 * sizeof(float)));
  for (int i = 0; i < side1 * side1; ++i) cu_expect(level_out[i] == (float)(2000 + i), "level 1");
  printf("read at level 1: [9] = %.1f\n", level_out[9]);
  CHECK(cuMemFree(dlevel));
  CHECK(cuTexObjectDestroy(mtex));
  CHECK(cuMipmappedArrayDestroy(mip));

  CHECK(cuTexObjectDestroy(tex));
  CHECK(cuSurfObjectDestroy(surf));
  CHECK(cuArrayDestroy(array));
  CHECK(cuModuleUnload(mod));
  printf("surfaces: ok\n");
  return 0;
}
