// What `hira vm` puts into the guest for one run: the programs, the shared
// libraries they need (at their host paths) and the script the guest's init
// runs, as an uncompressed initramfs archive appended to the base image.
#pragma once

#include <cstdint>
#include <vector>

#include "vm_command.h"

namespace hira::cli {

// guest_ld: the library path the programs run with in the guest (and that
// ldd resolves them with here). False, with a line on stderr, on failure.
bool build_run_archive(const VmOptions &o, const std::string &guest_ld, std::vector<uint8_t> *out);

}  // namespace hira::cli
