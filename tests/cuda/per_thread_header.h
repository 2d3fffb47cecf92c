/* cuda.h as a program built for the per-thread default stream sees it: the
 * guest library's guest_export functions (cuda.lapis) are compiled against
 * it, so that each _ptsz/_ptds prototype the spec writes out is the header's
 * (CudaGuestExportsMatchThePerThreadHeader). Never linked. */
#define CUDA_API_PER_THREAD_DEFAULT_STREAM 1
#include <cuda.h>
#define guest_export
