/* Memory: cuMemGetInfo, pitched allocations with 2D copies and memsets,
 * address ranges, pointer attributes, and a 64 MiB round trip. (Host memory
 * a kernel reaches directly is in host_mapped.c.) */
#include "cu_common.h" /* first: it sets _POSIX_C_SOURCE */

#include "ops_fatbin.h"

enum { W = 50, H = 20 }; /* a 50 x 20 int image: rows shorter than the pitch */

int main(void) {
  CUdevice dev;
  cu_start(&dev);
  CUmodule mod;
  CUfunction iota;
  CHECK(cuModuleLoadData(&mod, ops_fatbin));
  CHECK(cuModuleGetFunction(&iota, mod, "iota_i32"));

  size_t free_bytes, total_bytes;
  CHECK(cuMemGetInfo(&free_bytes, &total_bytes));
  printf("free <= total: %d\n", free_bytes <= total_bytes);

  /* Pitched: fill with 0x11111111, copy a 8 x 4 block of host values to
   * column 3, row 2, read the whole image back through a 2D copy. */
  CUdeviceptr img;
  size_t pitch;
  CHECK(cuMemAllocPitch(&img, &pitch, W * sizeof(int), H, sizeof(int)));
  printf("pitch >= row, a multiple of 4: %d\n", pitch >= W * sizeof(int) && pitch % 4 == 0);
  CHECK(cuMemsetD2D32(img, pitch, 0x11111111u, W, H));
  int block[4][8], out[H][W];
  for (int r = 0; r < 4; ++r)
    for (int c = 0; c < 8; ++c) block[r][c] = 100 * r + c + 1;
  CUDA_MEMCPY2D up = {.srcMemoryType = CU_MEMORYTYPE_HOST, .srcHost = block, .srcPitch = sizeof block[0],
                      .dstMemoryType = CU_MEMORYTYPE_DEVICE, .dstDevice = img, .dstPitch = pitch,
                      .dstXInBytes = 3 * sizeof(int), .dstY = 2, .WidthInBytes = sizeof block[0], .Height = 4};
  CHECK(cuMemcpy2D(&up));
  CUDA_MEMCPY2D down = {.srcMemoryType = CU_MEMORYTYPE_DEVICE, .srcDevice = img, .srcPitch = pitch,
                        .dstMemoryType = CU_MEMORYTYPE_HOST, .dstHost = out, .dstPitch = sizeof out[0],
                        .WidthInBytes = sizeof out[0], .Height = H};
  CHECK(cuMemcpy2D(&down));
  for (int r = 0; r < H; ++r)
    for (int c = 0; c < W; ++c) {
      int inside = r >= 2 && r < 6 && c >= 3 && c < 11;
      cu_expect(out[r][c] == (inside ? block[r - 2][c - 3] : 0x11111111), "2D copy and memset");
    }
  printf("2D: out[2][3]=%d out[5][10]=%d out[0][0]=0x%08x checksum 0x%08x\n", out[2][3], out[5][10],
         (unsigned)out[0][0], cu_fnv1a(out, sizeof out));

  /* The allocation a pointer inside it belongs to, and its memory type. */
  CUdeviceptr base;
  size_t size;
  CHECK(cuMemGetAddressRange(&base, &size, img + 100));
  printf("address range: base is the allocation %d, size covers it %d\n", base == img, size >= pitch * H);
  printf("memory type of a device allocation: %u\n", cu_memory_type(img));

  /* 64 MiB: host -> device -> device -> host. */
  const size_t big = 64u << 20;
  uint32_t *src = malloc(big), *dst = malloc(big);
  cu_expect(src && dst, "malloc 64 MiB");
  for (size_t i = 0; i < big / 4; ++i) src[i] = (uint32_t)i * 2654435761u;
  memset(dst, 0, big);
  CUdeviceptr d1, d2;
  CHECK(cuMemAlloc(&d1, big));
  CHECK(cuMemAlloc(&d2, big));
  CHECK(cuMemcpyHtoD(d1, src, big));
  CHECK(cuMemcpyDtoD(d2, d1, big));
  CHECK(cuMemcpyDtoH(dst, d2, big));
  cu_expect(memcmp(src, dst, big) == 0, "64 MiB round trip");
  printf("64 MiB round trip: checksum 0x%08x\n", cu_fnv1a(dst, big));
  free(src);
  free(dst);

  CHECK(cuMemFree(d1));
  CHECK(cuMemFree(d2));
  CHECK(cuMemFree(img));
  CHECK(cuModuleUnload(mod));
  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("memory_ops: ok\n");
  return 0;
}
