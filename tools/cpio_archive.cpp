#include "cpio_archive.h"

#include <sys/stat.h>

#include <cstdio>
#include <fstream>
#include <iterator>

namespace hira::cli {

void CpioArchive::entry(const std::string &name, uint32_t mode, const uint8_t *data, size_t size) {
  const std::string stored = name.substr(name.find_first_not_of('/'));  // relative
  char header[111];
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor,
  // rdevmajor, rdevminor, namesize, check: 8 hex digits each.
  std::snprintf(header, sizeof(header),
                "070701%08X%08X%08X%08X%08X%08X%08zX%08X%08X%08X%08X%08zX%08X", next_inode_++, mode,
                0u, 0u, (mode & S_IFDIR) != 0 ? 2u : 1u, 0u, size, 0u, 0u, 0u, 0u,
                stored.size() + 1, 0u);
  out_.insert(out_.end(), header, header + 110);
  out_.insert(out_.end(), stored.begin(), stored.end());
  out_.push_back(0);
  while (out_.size() % 4 != 0) out_.push_back(0);
  out_.insert(out_.end(), data, data + size);
  while (out_.size() % 4 != 0) out_.push_back(0);
}

void CpioArchive::add_directories(const std::string &path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    const std::string dir = path.substr(0, slash);
    if (dirs_.insert(dir).second) entry(dir, S_IFDIR | 0755, nullptr, 0);
  }
}

void CpioArchive::add_file(const std::string &guest_path, const std::vector<uint8_t> &content,
                           uint32_t mode) {
  if (!files_.insert(guest_path).second) return;  // a library two programs need
  add_directories(guest_path);
  entry(guest_path, S_IFREG | mode, content.data(), content.size());
}

bool CpioArchive::add_host_file(const std::string &guest_path, const std::string &host_path) {
  std::ifstream in(host_path, std::ios::binary);
  if (!in) return false;
  const std::vector<uint8_t> content((std::istreambuf_iterator<char>(in)),
                                     std::istreambuf_iterator<char>());
  struct stat st {};
  const uint32_t mode = ::stat(host_path.c_str(), &st) == 0 ? (st.st_mode & 0777) : 0755;
  add_file(guest_path, content, mode);
  return true;
}

std::vector<uint8_t> CpioArchive::finish() {
  entry("TRAILER!!!", 0, nullptr, 0);
  return std::move(out_);
}

}  // namespace hira::cli
