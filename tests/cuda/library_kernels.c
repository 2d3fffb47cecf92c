/* Functions and kernels found by enumeration: a module's functions (their
 * names, loading state, one launched with the parameters the enumeration
 * taught), a library's kernels (names, library, parameter layout), a
 * library's global, a kernel given more dynamic shared memory than a kernel
 * may use without asking, and a kernel launched, queried and sized as a
 * function (cast to CUfunction). Each result is checked on the host. */
#include "cu_common.h" /* first: it sets _POSIX_C_SOURCE */

#include <stddef.h>
#include <unistd.h>
#include "globals_fatbin.h"
#include "ops_fatbin.h"

enum { N = 4096, MAX_FUNCTIONS = 16, BIG_BLOCK = 1024 };

int main(void) {
  CUdevice dev;
  cu_start(&dev);

  /* 1. A module's functions, as the driver lists them. */
  CUmodule mod;
  CHECK(cuModuleLoadData(&mod, ops_fatbin));
  unsigned count = 0;
  CHECK(cuModuleGetFunctionCount(&count, mod));
  cu_expect(count <= MAX_FUNCTIONS, "at most 16 functions");
  CUfunction functions[MAX_FUNCTIONS], iota = NULL;
  CHECK(cuModuleEnumerateFunctions(functions, count, mod));
  for (unsigned i = 0; i < count; ++i) {
    const char *name = NULL;
    CUfunctionLoadingState before, after;
    CHECK(cuFuncGetName(&name, functions[i]));
    CHECK(cuFuncIsLoaded(&before, functions[i]));
    CHECK(cuFuncLoad(functions[i]));
    CHECK(cuFuncIsLoaded(&after, functions[i]));
    printf("function %u: %s, loaded %d then %d\n", i, name, (int)before, (int)after);
    if (strcmp(name, "iota_i32") == 0) iota = functions[i];
  }
  cu_expect(iota != NULL, "iota_i32 enumerated");
  CUdeviceptr x;
  CHECK(cuMemAlloc(&x, N * sizeof(int)));
  int n = N, base = 3, one = 1;
  void *iota_params[] = {&x, &n, &base, &one};
  CHECK(cuLaunchKernel(iota, cu_blocks(N), 1, 1, 128, 1, 1, 0, NULL, iota_params, NULL));
  cu_expect_sequence(x, N, 3, "an enumerated function");

  /* 2. A library's kernels and their parameters. */
  CUlibrary lib, owner = NULL;
  CHECK(cuLibraryLoadData(&lib, ops_fatbin, NULL, NULL, 0, NULL, NULL, 0));
  CHECK(cuLibraryGetKernelCount(&count, lib));
  cu_expect(count <= MAX_FUNCTIONS, "at most 16 kernels");
  CUkernel kernels[MAX_FUNCTIONS], reverse = NULL;
  CHECK(cuLibraryEnumerateKernels(kernels, count, lib));
  for (unsigned i = 0; i < count; ++i) {
    const char *name = NULL;
    size_t offset = 0, size = 0;
    CHECK(cuKernelGetName(&name, kernels[i]));
    CHECK(cuKernelGetLibrary(&owner, kernels[i]));
    CHECK(cuKernelGetParamInfo(kernels[i], 1, &offset, &size));
    printf("kernel %u: %s, of the library %d, parameter 1 at %zu (%zu bytes)\n", i, name,
           owner == lib, offset, size);
    if (strcmp(name, "reverse_blocks") == 0) reverse = kernels[i];
  }
  cu_expect(reverse != NULL, "reverse_blocks enumerated");

  /* From a file (the image written to a temporary one). */
  char path[] = "/tmp/hira-library-XXXXXX";
  const int fd = mkstemp(path);
  cu_expect(fd >= 0, "mkstemp");
  cu_expect(write(fd, ops_fatbin, sizeof ops_fatbin) == (ssize_t)sizeof ops_fatbin, "write");
  close(fd);
  CUlibrary from_file;
  unsigned file_count = 0;
  CHECK(cuLibraryLoadFromFile(&from_file, path, NULL, NULL, 0, NULL, NULL, 0));
  unlink(path);
  CHECK(cuLibraryGetKernelCount(&file_count, from_file));
  printf("the library from a file: %u kernels, as from memory %d\n", file_count,
         file_count == count);
  CHECK(cuLibraryUnload(from_file));

  /* 3. A library's global. */
  CUlibrary globals;
  CUdeviceptr scale;
  size_t scale_size = 0;
  int forty_two = 42, read_back = 0;
  CHECK(cuLibraryLoadData(&globals, globals_fatbin, NULL, NULL, 0, NULL, NULL, 0));
  CHECK(cuLibraryGetGlobal(&scale, &scale_size, globals, "g_scale"));
  CHECK(cuMemcpyHtoD(scale, &forty_two, sizeof forty_two));
  CHECK(cuMemcpyDtoH(&read_back, scale, sizeof read_back));
  printf("g_scale: %zu bytes, holds %d\n", scale_size, read_back);

  /* 4. More dynamic shared memory than the default 48 KiB: a block of 1024
   * ints reversed through 64 KiB, after the kernel is allowed that much. */
  const int shared = 64 << 10;
  CUfunction early, late;
  CHECK(cuKernelGetFunction(&early, reverse));
  int limit = 0;
  CHECK(cuFuncGetAttribute(&limit, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, early));
  printf("dynamic shared memory allowed before: %d\n", limit);
  printf("cuKernelSetCacheConfig: %d\n",
         (int)cuKernelSetCacheConfig(reverse, CU_FUNC_CACHE_PREFER_SHARED, dev));
  CHECK(
      cuKernelSetAttribute(CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, shared, reverse, dev));
  CHECK(cuKernelGetFunction(&late, reverse));
  CHECK(cuFuncGetAttribute(&limit, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, late));
  printf("dynamic shared memory allowed after: %d, the same function %d\n", limit, early == late);
  size_t available = 0;
  CHECK(cuOccupancyAvailableDynamicSMemPerBlock(&available, late, 1, BIG_BLOCK));
  printf("available to one block of %d: at least 64 KiB %d\n", BIG_BLOCK,
         available >= (size_t)shared);
  void *reverse_params[] = {&x, &n};
  CHECK(cuLaunchKernel(late, N / BIG_BLOCK, 1, 1, BIG_BLOCK, 1, 1, shared, NULL, reverse_params,
                       NULL));
  int host[N];
  CHECK(cuMemcpyDtoH(host, x, sizeof host));
  for (int i = 0; i < N; ++i) {
    const int block = i / BIG_BLOCK, within = i % BIG_BLOCK;
    cu_expect(host[i] == 3 + block * BIG_BLOCK + (BIG_BLOCK - 1 - within), "reversed blocks");
  }
  printf("reversed blocks: [0] = %d, checksum %08x\n", host[0], cu_fnv1a(host, sizeof host));

  /* 5. A kernel launched as a function (cast to CUfunction, as the driver
   * allows), with its parameters as a block; its attributes and occupancy
   * asked the same way. */
  CUkernel iota_k;
  CHECK(cuLibraryGetKernel(&iota_k, lib, "iota_i32"));
  struct iota_block {
    CUdeviceptr x;
    int n, base, mul;
  } block = {x, N, 7, 1};
  /* The block as the compiler lays it out is 4 bytes longer than the
   * parameters (padding after mul): the driver takes that for too many
   * arguments. */
  size_t block_size = sizeof block;
  void *extra[] = {CU_LAUNCH_PARAM_BUFFER_POINTER, &block, CU_LAUNCH_PARAM_BUFFER_SIZE, &block_size,
                   CU_LAUNCH_PARAM_END};
  printf(
      "a block %zu bytes past the parameters: %d\n",
      sizeof block - offsetof(struct iota_block, mul) - sizeof(int),
      (int)cuLaunchKernel((CUfunction)iota_k, cu_blocks(N), 1, 1, 128, 1, 1, 0, NULL, NULL, extra));
  block_size = offsetof(struct iota_block, mul) + sizeof(int);
  CHECK(cuLaunchKernel((CUfunction)iota_k, cu_blocks(N), 1, 1, 128, 1, 1, 0, NULL, NULL, extra));
  cu_expect_sequence(x, N, 7, "a kernel launched as a function");
  int threads = 0, blocks = 0;
  /* cuFuncGetAttribute does not list kernels among what it takes: whatever
   * the driver answers, through hira too. */
  printf("cuFuncGetAttribute of a kernel: %d\n",
         (int)cuFuncGetAttribute(&threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK,
                                 (CUfunction)iota_k));
  CHECK(cuKernelGetAttribute(&threads, CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK, iota_k, dev));
  CHECK(cuOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, (CUfunction)iota_k, 128, 0));
  printf("as a function: %d threads a block, %d blocks of 128 a multiprocessor\n", threads, blocks);

  CHECK(cuLibraryUnload(globals));
  CHECK(cuLibraryUnload(lib));
  CHECK(cuMemFree(x));
  CHECK(cuModuleUnload(mod));
  printf("library_kernels: ok\n");
  return 0;
}
