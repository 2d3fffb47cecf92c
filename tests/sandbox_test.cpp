// API servers spawned by the router hold nothing worth taking: each its own
// uid (as root), no network of the router's, a system call filter, no new
// privileges, an environment from an allow-list, no inherited descriptors,
// a private home. Checked on the real router and acc API server through
// /proc, while a guest is connected.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "acc_protocol.h"  // generated: kApiName, kApiSignature, FN_*
#include "raw_guest.h"

namespace hira::test {
namespace {

std::string proc(pid_t pid, const std::string &what) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/" + what);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The value of "Name:\t..." in /proc/PID/status (first field).
std::string status_field(pid_t pid, const std::string &name) {
  std::istringstream in(proc(pid, "status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name + ":", 0) == 0) {
      std::istringstream v(line.substr(name.size() + 1));
      std::string first;
      v >> first;
      return first;
    }
  }
  return "";
}

std::vector<std::string> environment(pid_t pid) {
  const std::string raw = proc(pid, "environ");
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\0') continue;
    out.push_back(raw.substr(start, i - start));
    start = i + 1;
  }
  return out;
}

// A router whose environment holds a secret, and one guest served by it.
struct Served {
  explicit Served(const std::vector<std::string> &args = {}) : router(with_secret(args)) {
    guest = std::make_unique<RawGuest>(router.endpoint());
    EXPECT_EQ(guest->hello(kApiName, kApiSignature), 0);
    EXPECT_TRUE(guest->call(FN_acc_context_count, {}).has_value()) << guest->last_error();
    const auto servers = router.servers();
    EXPECT_EQ(servers.size(), 1u);
    server = servers.empty() ? -1 : servers.front();
  }
  static std::vector<std::string> with_secret(const std::vector<std::string> &args) {
    ::setenv("ROUTER_SECRET_FOR_TEST", "do-not-leak", 1);
    return args;
  }
  ~Served() { ::unsetenv("ROUTER_SECRET_FOR_TEST"); }
  Router router;
  std::unique_ptr<RawGuest> guest;
  pid_t server = -1;
};

TEST(Sandbox, ServersGetNoSecretsNoPrivilegesAndAFilter) {
  Served s;
  ASSERT_GT(s.server, 0);
  EXPECT_EQ(status_field(s.server, "NoNewPrivs"), "1");
  EXPECT_EQ(status_field(s.server, "Seccomp"), "2");  // a filter is installed
  bool home_private = false;
  for (const auto &e : environment(s.server)) {
    EXPECT_EQ(e.find("ROUTER_SECRET_FOR_TEST"), std::string::npos) << e;
    EXPECT_NE(e.rfind("HIRA_SOCKET=", 0), 0u) << e;
    if (e.rfind("HOME=", 0) == 0) {
      home_private = e.find("/hira-servers-") != std::string::npos;
      struct stat st {};
      ASSERT_EQ(::stat(e.substr(5).c_str(), &st), 0) << e;
      EXPECT_EQ(st.st_mode & 077, 0u) << e;  // nobody else's
    }
  }
  EXPECT_TRUE(home_private);
  // Only stdio and its channel (the vendor library may open its own later).
  size_t fds = 0;
  for ([[maybe_unused]] const auto &f :
       std::filesystem::directory_iterator("/proc/" + std::to_string(s.server) + "/fd")) {
    ++fds;
  }
  EXPECT_LE(fds, 6u);
  // The server still serves.
  EXPECT_STATUS(s.guest->call(FN_acc_get_version, {out_ptr(4, 1), out_ptr(4, 1)}), *s.guest,
                ReplyStatus::Ok);
}

TEST(Sandbox, AsRootEachServerIsItsOwnUserWithoutTheRoutersNetwork) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root: a router started by a user keeps its uid";
  Served s;
  ASSERT_GT(s.server, 0);
  const std::string uid = status_field(s.server, "Uid");
  EXPECT_NE(uid, "0");
  EXPECT_EQ(status_field(s.server, "Gid"), uid);
  char mine[64] = {}, theirs[64] = {};
  ASSERT_GT(::readlink("/proc/self/ns/net", mine, sizeof mine - 1), 0);
  ASSERT_GT(::readlink(("/proc/" + std::to_string(s.server) + "/ns/net").c_str(), theirs,
                       sizeof theirs - 1),
            0);
  EXPECT_STRNE(mine, theirs);
  // A second guest's server is another user: neither can signal nor trace the other.
  RawGuest second(s.router.endpoint());
  ASSERT_EQ(second.hello(kApiName, kApiSignature), 0);
  ASSERT_TRUE(second.call(FN_acc_context_count, {}).has_value());
  std::set<std::string> uids;
  for (const pid_t p : s.router.servers()) uids.insert(status_field(p, "Uid"));
  EXPECT_EQ(uids.size(), 2u);
}

TEST(Sandbox, NoSandboxRunsServersAsTheRouter) {
  Served s({"--no-sandbox"});
  ASSERT_GT(s.server, 0);
  EXPECT_EQ(status_field(s.server, "Uid"), std::to_string(::geteuid()));
  EXPECT_EQ(status_field(s.server, "Seccomp"), "0");
  bool secret = false;
  for (const auto &e : environment(s.server)) secret |= e.rfind("ROUTER_SECRET_FOR_TEST=", 0) == 0;
  EXPECT_TRUE(secret);
}

}  // namespace
}  // namespace hira::test

namespace hira::test {
namespace {

std::string home_of(pid_t pid) {
  for (const auto &e : environment(pid)) {
    if (e.rfind("HOME=", 0) == 0) return e.substr(5);
  }
  return "";
}

// With --server-cache the servers of one VM share a home kept across runs
// (compile caches survive); as root they share that VM's uid.
TEST(Sandbox, ServersOfOneVmShareAPersistentCacheHome) {
  TempDir cache_parent;
  const std::string cache = cache_parent.path() + "/cache";
  std::filesystem::permissions(
      cache_parent.path(), std::filesystem::perms::owner_all | std::filesystem::perms::others_exec);
  std::string home;
  {
    Router router({"--server-cache", cache});
    RawGuest a(router.endpoint()), b(router.endpoint());
    ASSERT_EQ(a.hello(kApiName, kApiSignature), 0);
    ASSERT_EQ(b.hello(kApiName, kApiSignature), 0);
    ASSERT_TRUE(a.call(FN_acc_context_count, {}).has_value());
    ASSERT_TRUE(b.call(FN_acc_context_count, {}).has_value());
    const auto servers = router.servers();
    ASSERT_EQ(servers.size(), 2u);
    home = home_of(servers[0]);
    EXPECT_EQ(home, cache + "/local");
    EXPECT_EQ(home_of(servers[1]), home);
    EXPECT_EQ(status_field(servers[0], "Uid"), status_field(servers[1], "Uid"));
    router.stop();
  }
  struct stat st {};
  ASSERT_EQ(::stat(home.c_str(), &st), 0) << "the VM's home is kept after the router ends";
  EXPECT_EQ(st.st_mode & 077, 0u);
}

// A cache root that someone else could write (made first in a shared
// folder) is not used: nothing is created or chowned there, and the guest is
// served from a private home, with one line saying why.
TEST(Sandbox, ACacheRootOthersCanWriteIsNotUsed) {
  TempDir cache_parent;
  const std::string cache = cache_parent.path() + "/cache";
  ASSERT_EQ(::mkdir(cache.c_str(), 0777), 0);
  ASSERT_EQ(::chmod(cache.c_str(), 0777), 0);
  Router router({"--server-cache", cache});
  RawGuest g(router.endpoint());
  ASSERT_EQ(g.hello(kApiName, kApiSignature), 0);
  ASSERT_TRUE(g.call(FN_acc_context_count, {}).has_value());
  const auto servers = router.servers();
  ASSERT_EQ(servers.size(), 1u);
  EXPECT_EQ(home_of(servers[0]).find(cache), std::string::npos) << home_of(servers[0]);
  EXPECT_TRUE(std::filesystem::is_empty(cache));
  router.stop();
  EXPECT_NE(router.process().err().find("private homes instead"), std::string::npos)
      << router.process().err();
}

}  // namespace
}  // namespace hira::test
