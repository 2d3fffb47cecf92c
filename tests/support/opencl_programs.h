// The OpenCL test programs (tests/opencl) that every transport runs and
// compares with native runs.
#pragma once

#include <string>

#include "test_support.h"

namespace hira::test {

inline constexpr const char *kOpenClPrograms[] = {
    "vector_add",
    "matrix_multiply",
    "reduction",
    "scan",
    "image_copy",
    "sub_buffers",
    "map_unmap",
    "events",
    "callbacks",
    "multithread",
    "build_failure",
    "error_paths",
    "info_queries",
    "cross_thread_args",
    "program_binaries",
    "use_host_ptr",
    "image_from_buffer",
    "opencl30",
    "nonblocking_reads",
    "retained_buffers",
    "jacobi",
    "nonblocking_writes",
    "object_lifetimes",
    "large_writes",
};

inline std::string program(const std::string &name) {
  return build_dir() + "/bin/opencl/ocl_" + name;
}

}  // namespace hira::test
