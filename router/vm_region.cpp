#include "vm_region.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hira::router {

std::unique_ptr<VmRegion> VmRegion::open(const std::string &path, std::string *error) {
  const int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) {
    *error = path + ": " + std::strerror(errno);
    return nullptr;
  }
  return std::unique_ptr<VmRegion>(new VmRegion(fd));
}

VmRegion::~VmRegion() { ::close(fd_); }

bool VmRegion::claim(uint64_t offset, uint64_t bytes) {
  std::lock_guard lock(mu_);
  // The slice held at or before offset, and the one after it.
  auto next = held_.lower_bound(offset);
  if (next != held_.end() && next->first < offset + bytes) return false;
  if (next != held_.begin()) {
    const auto prev = std::prev(next);
    if (prev->first + prev->second > offset) return false;
  }
  held_[offset] = bytes;
  return true;
}

void VmRegion::release(uint64_t offset) {
  std::lock_guard lock(mu_);
  held_.erase(offset);
}

}  // namespace hira::router
