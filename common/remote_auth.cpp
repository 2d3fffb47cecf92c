#include "hira/remote_auth.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>

namespace hira {

namespace {

using Block = std::array<unsigned char, 32>;
// Each side's proof names its role, so that a proof cannot be sent back.
constexpr const char *kRouterRole = "hira-remote-v1 router";
constexpr const char *kServerRole = "hira-remote-v1 server";

Block mac(const std::string &key, const char *role, const Block &challenge) {
  std::string msg(role);
  msg.append(reinterpret_cast<const char *>(challenge.data()), challenge.size());
  Block out{};
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char *>(msg.data()), msg.size(), out.data(), &len);
  return out;
}

bool random_block(Block *b, std::string *error) {
  if (::getrandom(b->data(), b->size(), 0) != static_cast<ssize_t>(b->size())) {
    *error = std::string("getrandom: ") + std::strerror(errno);
    return false;
  }
  return true;
}

bool send_all(int fd, const void *p, size_t n, std::string *error) {
  const auto *c = static_cast<const unsigned char *>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, c, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      *error = "the connection closed during authentication";
      return false;
    }
    c += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

bool recv_all(int fd, void *p, size_t n, std::chrono::steady_clock::time_point deadline,
              std::string *error) {
  auto *c = static_cast<unsigned char *>(p);
  while (n > 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    pollfd pf{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pf, 1, static_cast<int>(left.count())) == 0) {
      *error = "no answer to the authentication in time";
      return false;
    }
    const ssize_t r = ::read(fd, c, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      *error = "the connection closed during authentication (wrong key?)";
      return false;
    }
    c += r;
    n -= static_cast<size_t>(r);
  }
  return true;
}

std::chrono::steady_clock::time_point after(int seconds) {
  return std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
}

}  // namespace

std::optional<std::string> load_shared_key(const std::string &path, std::string *error) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    *error = path + ": " + std::strerror(errno);
    return std::nullopt;
  }
  if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
    *error = path + " is readable by others: chmod 600 it";
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  std::string key((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) key.pop_back();
  if (key.size() < 16) {
    *error = path +
             " holds fewer than 16 bytes of key (make one with: head -c 32 /dev/urandom "
             "| base64 > FILE)";
    return std::nullopt;
  }
  return key;
}

bool authenticate_router(int fd, const std::string &key, int timeout_s, std::string *error) {
  const auto deadline = after(timeout_s);
  Block challenge{}, proof{}, their_challenge{};
  if (!random_block(&challenge, error) ||
      !send_all(fd, challenge.data(), challenge.size(), error) ||
      !recv_all(fd, proof.data(), proof.size(), deadline, error) ||
      !recv_all(fd, their_challenge.data(), their_challenge.size(), deadline, error)) {
    return false;
  }
  const Block want = mac(key, kRouterRole, challenge);
  if (CRYPTO_memcmp(want.data(), proof.data(), want.size()) != 0) {
    *error = "the peer does not hold the key";
    return false;
  }
  const Block mine = mac(key, kServerRole, their_challenge);
  return send_all(fd, mine.data(), mine.size(), error);
}

bool authenticate_server(int fd, const std::string &key, int timeout_s, std::string *error) {
  const auto deadline = after(timeout_s);
  Block challenge{}, my_challenge{}, proof{};
  if (!recv_all(fd, challenge.data(), challenge.size(), deadline, error)) {
    *error += " (is the remote server started with --key-file?)";
    return false;
  }
  const Block mine = mac(key, kRouterRole, challenge);
  if (!random_block(&my_challenge, error) || !send_all(fd, mine.data(), mine.size(), error) ||
      !send_all(fd, my_challenge.data(), my_challenge.size(), error) ||
      !recv_all(fd, proof.data(), proof.size(), deadline, error)) {
    return false;
  }
  const Block want = mac(key, kServerRole, my_challenge);
  if (CRYPTO_memcmp(want.data(), proof.data(), want.size()) != 0) {
    *error = "the remote server does not hold the key";
    return false;
  }
  return true;
}

}  // namespace hira
