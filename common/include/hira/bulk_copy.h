// Copies of bulk data into and out of the shared-memory window. A single
// thread copies at a fraction of what the memory system moves, and a
// blocking transfer through hira adds one such copy to the device's: where
// cores are free, large copies are split across a few helper threads.
#pragma once

#include <cstddef>

namespace hira {

// memcpy(dst, src, n); from 4 MiB on, in parallel parts when the machine
// has 8 or more CPUs ($HIRA_COPY_THREADS sets how many threads, 1 for none;
// $HIRA_COPY_PARALLEL_MIN_KB where splitting starts).
void copy_bulk(void *dst, const void *src, size_t n);

}  // namespace hira
