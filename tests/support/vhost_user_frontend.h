// The VMM's side of one vhost-user message, for the tests and the fuzzer
// that stand where QEMU does (the backend never sends requests).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <cstring>
#include <vector>

#include "vhost_user.h"

namespace hira::test {

// Sends request with its payload and descriptors (SCM_RIGHTS) on fd.
inline bool send_vhost_user(int fd, uint32_t request, const void *payload, uint32_t size,
                            const std::vector<int> &fds = {}, bool need_reply = false) {
  namespace vu = hira::vsock::vu;
  const vu::Header h{request, vu::kVersion | (need_reply ? vu::kFlagNeedReply : 0u), size};
  std::vector<uint8_t> buf(sizeof(h) + size);
  std::memcpy(buf.data(), &h, sizeof(h));
  if (size > 0) std::memcpy(buf.data() + sizeof(h), payload, size);
  iovec iov{buf.data(), buf.size()};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * vu::kMaxFds)];
  if (!fds.empty() && fds.size() <= vu::kMaxFds) {
    msg.msg_control = control;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    std::memcpy(CMSG_DATA(c), fds.data(), sizeof(int) * fds.size());
  }
  return ::sendmsg(fd, &msg, MSG_NOSIGNAL) == static_cast<ssize_t>(buf.size());
}

}  // namespace hira::test
