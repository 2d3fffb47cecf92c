#include "vhost_user.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace hira::vsock {

namespace {

// Reads exactly len bytes (the VMM writes whole messages).
bool read_all(int fd, void *buf, size_t len) {
  auto *p = static_cast<uint8_t *>(buf);
  while (len > 0) {
    const ssize_t n = ::recv(fd, p, len, MSG_WAITALL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

template <typename T>
bool payload_as(const VhostUserMessage &m, T *out) {
  if (m.payload.size() < sizeof(T)) return false;
  std::memcpy(out, m.payload.data(), sizeof(T));
  return true;
}

void close_fds(std::vector<int> *fds) {
  for (const int f : *fds) ::close(f);
  fds->clear();
}

}  // namespace

bool read_vhost_user_message(int fd, VhostUserMessage *m, std::string *error) {
  m->fds.clear();
  m->payload.clear();
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * vu::kMaxFds)];
  iovec iov{&m->header, sizeof(m->header)};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = control;
  msg.msg_controllen = sizeof(control);
  ssize_t n;
  do {
    n = ::recvmsg(fd, &msg, MSG_WAITALL | MSG_CMSG_CLOEXEC);
  } while (n < 0 && errno == EINTR);
  if (n == 0) {
    *error = kVmmClosed;
    return false;
  }
  for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    const size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int f;
      std::memcpy(&f, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      m->fds.push_back(f);
    }
  }
  if (n != static_cast<ssize_t>(sizeof(m->header)) || (msg.msg_flags & MSG_CTRUNC) != 0) {
    *error = n < 0 ? std::string("reading a message: ") + std::strerror(errno)
                   : "a truncated message header or too many descriptors";
    close_fds(&m->fds);
    return false;
  }
  if ((m->header.flags & vu::kFlagVersionMask) != vu::kVersion ||
      m->header.size > vu::kMaxPayload) {
    *error = "message " + std::to_string(m->header.request) + ": unknown version or " +
             std::to_string(m->header.size) + "-byte payload";
    close_fds(&m->fds);
    return false;
  }
  m->payload.resize(m->header.size);
  if (!read_all(fd, m->payload.data(), m->payload.size())) {
    *error = "the VMM closed the connection inside a message";
    close_fds(&m->fds);
    return false;
  }
  return true;
}

VhostUserBackend::~VhostUserBackend() {
  // Only descriptors: the device may already be gone (it is told nothing).
  for (auto &q : queues_) {
    for (const int fd : {q.kick, q.call}) {
      if (fd >= 0) ::close(fd);
    }
  }
}

void VhostUserBackend::stop(size_t i) {
  Queue &q = queues_[i];
  const bool was = q.started;
  q.started = false;
  if (q.kick >= 0) ::close(q.kick);
  q.kick = -1;
  if (was) device_.queue_stopped(i);
}

void VhostUserBackend::notify(size_t i) {
  const Queue &q = queues_[i];
  if (q.call < 0 || !q.vq.should_notify()) return;
  const uint64_t one = 1;
  [[maybe_unused]] const ssize_t n = ::write(q.call, &one, sizeof(one));
}

bool VhostUserBackend::reply(int fd, const VhostUserMessage &m, const void *data, uint32_t size) {
  vu::Header h{m.header.request, vu::kVersion | vu::kFlagReply, size};
  iovec iov[2] = {{&h, sizeof(h)}, {const_cast<void *>(data), size}};
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = 2;
  const ssize_t want = static_cast<ssize_t>(sizeof(h) + size);
  ssize_t n;
  do {
    n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
  } while (n < 0 && errno == EINTR);
  return n == want;
}

bool VhostUserBackend::handle_one(int fd, std::string *error) {
  VhostUserMessage m;
  if (!read_vhost_user_message(fd, &m, error)) return false;
  const bool ok = dispatch(fd, m, error);
  close_fds(&m.fds);  // the handlers took what they keep
  return ok;
}

bool VhostUserBackend::dispatch(int fd, VhostUserMessage &m, std::string *error) {
  // Requests with an answer of their own reply here; the others may be
  // asked for an acknowledgement (REPLY_ACK): 0 done, 1 refused.
  uint64_t status = 0;
  const auto bad = [&](const std::string &why) {
    *error = "message " + std::to_string(m.header.request) + ": " + why;
    return false;
  };
  const auto queue_index = [&](uint32_t index, size_t *out) {
    if (index >= kQueues) return false;
    *out = index;
    return true;
  };
  switch (m.header.request) {
    case vu::kGetFeatures: {
      const uint64_t f =
          device_.device_features() | vu::kFeatureVersion1 | vu::kFeatureProtocolFeatures;
      return reply(fd, m, &f, sizeof(f));
    }
    case vu::kSetFeatures:
      if (!payload_as(m, &features_)) return bad("short payload");
      break;
    case vu::kGetProtocolFeatures: {
      const uint64_t f = vu::kProtocolReplyAck | vu::kProtocolConfig;
      return reply(fd, m, &f, sizeof(f));
    }
    case vu::kSetProtocolFeatures:
      if (!payload_as(m, &protocol_features_)) return bad("short payload");
      protocol_features_ &= vu::kProtocolReplyAck | vu::kProtocolConfig;
      break;
    case vu::kGetQueueNum: {
      const uint64_t n = kQueues;
      return reply(fd, m, &n, sizeof(n));
    }
    case vu::kSetOwner:
    case vu::kResetOwner:
      break;
    case vu::kSetMemTable: {
      uint32_t count = 0;
      if (!payload_as(m, &count) || count > GuestMemory::kMaxRegions ||
          m.payload.size() < 8 + count * sizeof(vu::MemRegion) || m.fds.size() != count) {
        return bad("a memory table that does not match its descriptors");
      }
      std::vector<MemoryRegionSpec> regions;
      for (uint32_t i = 0; i < count; ++i) {
        vu::MemRegion r;
        std::memcpy(&r, m.payload.data() + 8 + i * sizeof(r), sizeof(r));
        regions.push_back(
            {r.guest_phys_addr, r.memory_size, r.userspace_addr, r.mmap_offset, m.fds[i]});
      }
      m.fds.clear();  // GuestMemory::set closes them
      std::string why;
      if (!memory_.set(regions, &why)) return bad(why);
      // The rings keep their addresses; they now resolve in the new table.
      for (auto &q : queues_) q.vq.remap(memory_);
      break;
    }
    case vu::kSetVringNum: {
      vu::VringState s;
      size_t i;
      if (!payload_as(m, &s) || !queue_index(s.index, &i)) return bad("bad ring");
      if (!queues_[i].vq.set_size(s.num)) status = 1;
      break;
    }
    case vu::kSetVringAddr: {
      vu::VringAddr a;
      size_t i;
      if (!payload_as(m, &a) || !queue_index(a.index, &i)) return bad("bad ring");
      std::string why;
      if (!queues_[i].vq.set_addresses(memory_, a.desc, a.avail, a.used, &why)) {
        *error = "ring " + std::to_string(i) + ": " + why;  // reported, not fatal
        status = 1;
      }
      break;
    }
    case vu::kSetVringBase: {
      vu::VringState s;
      size_t i;
      if (!payload_as(m, &s) || !queue_index(s.index, &i)) return bad("bad ring");
      queues_[i].vq.set_base(static_cast<uint16_t>(s.num));
      break;
    }
    case vu::kGetVringBase: {
      vu::VringState s;
      size_t i;
      if (!payload_as(m, &s) || !queue_index(s.index, &i)) return bad("bad ring");
      stop(i);
      s.num = queues_[i].vq.base();
      queues_[i].vq.detach();
      return reply(fd, m, &s, sizeof(s));
    }
    case vu::kSetVringKick:
    case vu::kSetVringCall:
    case vu::kSetVringErr: {
      uint64_t v;
      size_t i;
      if (!payload_as(m, &v) || !queue_index(static_cast<uint32_t>(v & vu::kVringIndexMask), &i)) {
        return bad("bad ring");
      }
      const bool has_fd = (v & vu::kVringNoFd) == 0;
      if (has_fd != (m.fds.size() == 1)) return bad("descriptor missing or unexpected");
      const int f = has_fd ? m.fds[0] : -1;
      m.fds.clear();
      Queue &q = queues_[i];
      if (m.header.request == vu::kSetVringErr) {
        if (f >= 0) ::close(f);
      } else if (m.header.request == vu::kSetVringCall) {
        if (q.call >= 0) ::close(q.call);
        q.call = f;
      } else {
        stop(i);
        q.kick = f;
        // Without protocol features a ring runs once it has a kick.
        if ((features_ & vu::kFeatureProtocolFeatures) == 0) q.enabled = true;
        q.started = f >= 0 && q.vq.ready();
        if (q.started && q.enabled) device_.queue_started(i);
      }
      break;
    }
    case vu::kSetVringEnable: {
      vu::VringState s;
      size_t i;
      if (!payload_as(m, &s) || !queue_index(s.index, &i)) return bad("bad ring");
      Queue &q = queues_[i];
      const bool was = q.started && q.enabled;
      q.enabled = s.num != 0;
      if (!was && q.started && q.enabled) device_.queue_started(i);
      if (was && !q.enabled) device_.queue_stopped(i);
      break;
    }
    case vu::kGetConfig: {
      vu::ConfigHeader c;
      if (!payload_as(m, &c) || c.size > 256 || m.payload.size() < sizeof(c) + c.size) {
        return bad("bad configuration request");
      }
      const std::vector<uint8_t> space = device_.config();
      std::vector<uint8_t> out(sizeof(c) + c.size, 0);
      std::memcpy(out.data(), &c, sizeof(c));
      for (uint32_t k = 0; k < c.size; ++k) {
        const uint64_t at = uint64_t{c.offset} + k;
        if (at < space.size()) out[sizeof(c) + k] = space[at];
      }
      return reply(fd, m, out.data(), static_cast<uint32_t>(out.size()));
    }
    case vu::kSetConfig:
      status = 1;  // the guest CID is the operator's, not the VMM's
      break;
    default:
      // Nothing we offered asks for it; an acknowledged request is refused.
      status = 1;
      *error = "message " + std::to_string(m.header.request) + " not supported";
      break;
  }
  if ((m.header.flags & vu::kFlagNeedReply) != 0 && protocol(vu::kProtocolReplyAck)) {
    return reply(fd, m, &status, sizeof(status));
  }
  return true;
}

}  // namespace hira::vsock
