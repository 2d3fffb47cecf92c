// A VM's shared region (hira-router --vm-window NAME=PATH): the memory file
// behind the VM's ivshmem device, which the guest's hira_window module hands
// out in slices, one per guest process. The router checks a slice a guest
// names and gives the region to that guest's API server, which maps only
// the slice; no two guest processes of the VM may use overlapping slices at
// once, whatever they claim.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace hira::router {

class VmRegion {
 public:
  static std::unique_ptr<VmRegion> open(const std::string &path, std::string *error);
  ~VmRegion();
  int fd() const { return fd_; }
  // Reserves [offset, offset + bytes) for one guest process; false if a
  // slice another one holds overlaps it.
  bool claim(uint64_t offset, uint64_t bytes);
  void release(uint64_t offset);

 private:
  explicit VmRegion(int fd) : fd_(fd) {}
  int fd_;
  std::mutex mu_;
  std::map<uint64_t, uint64_t> held_;  // offset -> bytes
};

}  // namespace hira::router
