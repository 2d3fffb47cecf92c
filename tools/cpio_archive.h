// Writes a "newc" cpio archive: the format the Linux kernel unpacks as an
// initramfs. `hira vm` appends one to the guest image per run, holding the
// program, its shared libraries and the script that runs it.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

namespace hira::cli {

class CpioArchive {
 public:
  // Entries are absolute guest paths; their parent directories are added
  // on the way.
  void add_file(const std::string &guest_path, const std::vector<uint8_t> &content,
                uint32_t mode = 0755);
  // False if host_path cannot be read.
  bool add_host_file(const std::string &guest_path, const std::string &host_path);
  // The archive, with its trailer.
  std::vector<uint8_t> finish();

 private:
  void add_directories(const std::string &path);
  void entry(const std::string &name, uint32_t mode, const uint8_t *data, size_t size);

  std::vector<uint8_t> out_;
  std::set<std::string> dirs_, files_;
  uint32_t next_inode_ = 1000;
};

}  // namespace hira::cli
