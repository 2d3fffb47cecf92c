/* occupancy: the occupancy calculator (a block size without and with the
 * application's dynamic shared memory callback, and with flags), a kernel's
 * attribute through the library API, peer attributes and peer access on one
 * device (refused alike), and 2D memsets on a stream. */
#include "cu_common.h"
#include "vector_add_ptx.h" /* vector_add_ptx: NUL-terminated PTX */

enum { WIDTH = 100, HEIGHT = 20 };

static size_t smem_per_thread(int block) { return (size_t)block * 48; }
static size_t smem_large_blocks(int block) { return block >= 512 ? 40 * 1024 : 1024; }

int main(void) {
  CUdevice dev;
  const CUcontext ctx = cu_start(&dev);
  CUmodule module;
  const CUfunction f = cu_load_function(&module, vector_add_ptx, "vector_add");

  const int sizes[] = {32, 128, 256, 1024};
  for (int i = 0; i < 4; ++i) {
    int blocks = 0;
    CHECK(cuOccupancyMaxActiveBlocksPerMultiprocessorWithFlags(&blocks, f, sizes[i], 4096,
                                                               CU_OCCUPANCY_DEFAULT));
    printf("blocks of %d threads (4 KiB shared) per multiprocessor: %d\n", sizes[i], blocks);
  }
  int grid = 0, block = 0;
  CHECK(cuOccupancyMaxPotentialBlockSize(&grid, &block, f, NULL, 0, 0));
  printf("best block, no shared memory: %d (grid %d)\n", block, grid);
  CHECK(cuOccupancyMaxPotentialBlockSize(&grid, &block, f, smem_per_thread, 0, 0));
  printf("best block, 48 bytes per thread: %d (grid %d)\n", block, grid);
  CHECK(cuOccupancyMaxPotentialBlockSizeWithFlags(&grid, &block, f, smem_large_blocks, 0, 768,
                                                  CU_OCCUPANCY_DISABLE_CACHING_OVERRIDE));
  printf("best block up to 768, 40 KiB from 512: %d (grid %d)\n", block, grid);

  CUlibrary library;
  CUkernel kernel;
  int max_threads = 0;
  CHECK(cuLibraryLoadData(&library, vector_add_ptx, NULL, NULL, 0, NULL, NULL, 0));
  CHECK(cuLibraryGetKernel(&kernel, library, "vector_add"));
  CHECK(cuKernelGetAttribute(&max_threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, kernel, dev));
  printf("library kernel: at most %d threads per block\n", max_threads);

  int value = -1;
  printf("P2P attribute of a device with itself: error %d\n",
         (int)cuDeviceGetP2PAttribute(&value, CU_DEVICE_P2P_ATTRIBUTE_ACCESS_SUPPORTED, dev, dev));
  printf("peer access to its own context: error %d\n", (int)cuCtxEnablePeerAccess(ctx, 0));
  printf("peer access it never had, disabled: error %d\n", (int)cuCtxDisablePeerAccess(ctx));

  CUdeviceptr d;
  size_t pitch;
  CUstream stream;
  CHECK(cuMemAllocPitch(&d, &pitch, WIDTH * 4, HEIGHT, 4));
  CHECK(cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING));
  CHECK(cuMemsetD2D32Async(d, pitch, 0x01020304u, WIDTH, HEIGHT, stream));
  CHECK(cuMemsetD2D16Async(d, pitch, 0xabcd, 10, 5, stream));
  CHECK(cuMemsetD2D8Async(d + 8, pitch, 0x7f, 3, 2, stream));
  CHECK(cuStreamSynchronize(stream));
  static unsigned char rows[HEIGHT][WIDTH * 4];
  for (int y = 0; y < HEIGHT; ++y) CHECK(cuMemcpyDtoH(rows[y], d + y * pitch, WIDTH * 4));
  printf("2D memsets on a stream: row 0 starts %02x %02x %02x %02x, checksum 0x%08x\n", rows[0][0],
         rows[0][1], rows[0][8], rows[0][12], cu_fnv1a(rows, sizeof rows));

  CHECK(cuStreamDestroy(stream));
  CHECK(cuMemFree(d));
  CHECK(cuLibraryUnload(library));
  CHECK(cuModuleUnload(module));
  CHECK(cuDevicePrimaryCtxRelease(dev));
  printf("occupancy: ok\n");
  return 0;
}
