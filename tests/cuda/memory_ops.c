/* Memory: cuMemGetInfo, pitched allocations with 2D and 3D copies and memsets,
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

  /* The same image read back unaligned, from column 1, row 1. */
  static int part[H - 1][W - 1];
  CUDA_MEMCPY2D unaligned = {.srcMemoryType = CU_MEMORYTYPE_DEVICE, .srcDevice = img, .srcPitch = pitch,
                             .srcXInBytes = sizeof(int), .srcY = 1, .dstMemoryType = CU_MEMORYTYPE_HOST,
                             .dstHost = part, .dstPitch = sizeof part[0], .WidthInBytes = sizeof part[0],
                             .Height = H - 1};
  CHECK(cuMemcpy2DUnaligned(&unaligned));
  cu_expect(part[1][2] == out[2][3] && part[H - 2][W - 2] == out[H - 1][W - 1], "2D unaligned copy");
  printf("2D unaligned: checksum 0x%08x\n", cu_fnv1a(part, sizeof part));

  /* 3D: a 7 x 5 x 6 int volume, pitched on the device (slices of 5 rows);
   * a 3 x 2 x 4 host box copied in at (2, 1, 1), the volume read back on a
   * stream, then through a 3D array and back. */
  enum { VW = 7, VH = 5, VD = 6 };
  CUdeviceptr vol;
  size_t vpitch;
  CHECK(cuMemAllocPitch(&vol, &vpitch, VW * sizeof(int), VH * VD, sizeof(int)));
  CHECK(cuMemsetD2D32(vol, vpitch, 7, VW, VH * VD));
  int box[4][2][3], back3[VD][VH][VW], again3[VD][VH][VW];
  for (int z = 0; z < 4; ++z)
    for (int y = 0; y < 2; ++y)
      for (int x = 0; x < 3; ++x) box[z][y][x] = 1000 * z + 100 * y + x;
  CUDA_MEMCPY3D in3 = {.srcMemoryType = CU_MEMORYTYPE_HOST, .srcHost = box, .srcPitch = sizeof box[0][0],
                       .srcHeight = 2, .dstMemoryType = CU_MEMORYTYPE_DEVICE, .dstDevice = vol,
                       .dstPitch = vpitch, .dstHeight = VH, .dstXInBytes = 2 * sizeof(int), .dstY = 1,
                       .dstZ = 1, .WidthInBytes = sizeof box[0][0], .Height = 2, .Depth = 4};
  CHECK(cuMemcpy3D(&in3));
  CUstream s;
  CHECK(cuStreamCreate(&s, CU_STREAM_NON_BLOCKING));
  CUDA_MEMCPY3D out3 = {.srcMemoryType = CU_MEMORYTYPE_DEVICE, .srcDevice = vol, .srcPitch = vpitch,
                        .srcHeight = VH, .dstMemoryType = CU_MEMORYTYPE_HOST, .dstHost = back3,
                        .dstPitch = sizeof back3[0][0], .dstHeight = VH, .WidthInBytes = sizeof back3[0][0],
                        .Height = VH, .Depth = VD};
  CHECK(cuMemcpy3DAsync(&out3, s));
  CHECK(cuStreamSynchronize(s));
  for (int z = 0; z < VD; ++z)
    for (int y = 0; y < VH; ++y)
      for (int x = 0; x < VW; ++x) {
        int inside = z >= 1 && z < 5 && y >= 1 && y < 3 && x >= 2 && x < 5;
        cu_expect(back3[z][y][x] == (inside ? box[z - 1][y - 1][x - 2] : 7), "3D copy");
      }
  printf("3D: back[1][1][2]=%d back[4][2][4]=%d checksum 0x%08x\n", back3[1][1][2], back3[4][2][4],
         cu_fnv1a(back3, sizeof back3));
  CUarray arr3;
  CUDA_ARRAY3D_DESCRIPTOR ad3 = {.Width = VW, .Height = VH, .Depth = VD, .Format = CU_AD_FORMAT_SIGNED_INT32,
                                 .NumChannels = 1};
  CHECK(cuArray3DCreate(&arr3, &ad3));
  CUDA_MEMCPY3D to_array = {.srcMemoryType = CU_MEMORYTYPE_HOST, .srcHost = back3, .srcPitch = sizeof back3[0][0],
                            .srcHeight = VH, .dstMemoryType = CU_MEMORYTYPE_ARRAY, .dstArray = arr3,
                            .WidthInBytes = sizeof back3[0][0], .Height = VH, .Depth = VD};
  CHECK(cuMemcpy3D(&to_array));
  CUDA_MEMCPY3D from_array = {.srcMemoryType = CU_MEMORYTYPE_ARRAY, .srcArray = arr3,
                              .dstMemoryType = CU_MEMORYTYPE_HOST, .dstHost = again3,
                              .dstPitch = sizeof again3[0][0], .dstHeight = VH,
                              .WidthInBytes = sizeof again3[0][0], .Height = VH, .Depth = VD};
  CHECK(cuMemcpy3D(&from_array));
  cu_expect(memcmp(back3, again3, sizeof back3) == 0, "3D array round trip");
  printf("3D array round trip: checksum 0x%08x\n", cu_fnv1a(again3, sizeof again3));
  CHECK(cuArrayDestroy(arr3));
  CHECK(cuStreamDestroy(s));
  CHECK(cuMemFree(vol));

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

  /* 1.25 GiB more of blocking copies while a pinned block is alive (through
   * hira the server pins the copies' part of its window on the way, around
   * the block), then the block and a new one still copy right. */
  const size_t small = 1u << 20;
  uint32_t *pinned;
  CHECK(cuMemAllocHost((void **)&pinned, small));
  for (size_t i = 0; i < small / 4; ++i) pinned[i] = (uint32_t)i ^ 0x5a5a5a5au;
  uint32_t sum = 0;
  for (uint32_t round = 0; round < 10; ++round) {
    for (size_t i = 0; i < big / 4; i += 1024) src[i] = (uint32_t)i + round;
    CHECK(cuMemcpyHtoD(d1, src, big));
    CHECK(cuMemcpyDtoH(dst, d1, big));
    cu_expect(memcmp(src, dst, big) == 0, "64 MiB round trips");
    sum ^= cu_fnv1a(dst, big);
  }
  CHECK(cuMemcpyHtoD(d2, pinned, small));
  CHECK(cuMemsetD8(d1, 0, small));
  CHECK(cuMemcpyDtoD(d1, d2, small));
  uint32_t *pinned2;
  CHECK(cuMemAllocHost((void **)&pinned2, small));
  CHECK(cuMemcpyDtoH(pinned2, d1, small));
  cu_expect(memcmp(pinned, pinned2, small) == 0, "pinned blocks after 1.25 GiB of copies");
  CHECK(cuMemFreeHost(pinned));
  CHECK(cuMemAllocHost((void **)&pinned, small));
  memset(pinned, 0, small);
  CHECK(cuMemcpyDtoHAsync(pinned, d1, small, NULL));
  CHECK(cuStreamSynchronize(NULL));
  cu_expect(memcmp(pinned, pinned2, small) == 0, "a pinned block freed and allocated again");
  printf("10 more 64 MiB round trips beside pinned blocks: checksum 0x%08x, pinned 0x%08x\n",
         sum, cu_fnv1a(pinned, small));
  CHECK(cuMemFreeHost(pinned));
  CHECK(cuMemFreeHost(pinned2));
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
