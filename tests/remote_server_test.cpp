// A remote API server host (`hira-server-NAME --listen tcp:...`): routers
// prove a pre-shared key before any frame is served, a TCP listener never
// runs without one unless told to, and connections beyond a limit are
// closed at once instead of each costing a process for ever.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <thread>

#include "raw_guest.h"
#include "test_support.h"

namespace hira::test {
namespace {

const std::string kDemo = build_dir() + "/bin/acc_demo";
const std::string kServer = build_dir() + "/apis/acc/hira-server-acc";

std::string write_key(const TempDir &dir, const std::string &name, const std::string &key,
                      mode_t mode = 0600) {
  const std::string path = dir.path() + "/" + name;
  std::ofstream(path) << key << "\n";
  ::chmod(path.c_str(), mode);
  return path;
}

// hira-server-acc listening on 127.0.0.1:port with `args`; waits until it listens.
std::unique_ptr<Process> start_server(int port, const std::vector<std::string> &args) {
  std::vector<std::string> argv = {kServer, "--listen", "tcp:127.0.0.1:" + std::to_string(port)};
  argv.insert(argv.end(), args.begin(), args.end());
  auto p = std::make_unique<Process>(
      argv,
      std::map<std::string, std::string>{{"HIRA_SERVER_LIBRARY_DIR", build_dir() + "/native"}});
  for (int i = 0; i < 500 && p->running() && p->err().find("listening on") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return p;
}

TEST(RemoteServer, RoutersThatHoldTheKeyAreServed) {
  TempDir dir;
  const std::string key = write_key(dir, "key", "correct horse battery staple 42");
  auto server = start_server(47621, {"--key-file", key});
  ASSERT_TRUE(server->running()) << server->err();
  Router router({"--remote", "acc=tcp:127.0.0.1:47621", "--remote-key-file", key});
  const RunResult n = run({kDemo, "2", "512"});
  const RunResult h = run({kDemo, "2", "512"}, router.guest_env());
  ASSERT_EQ(h.exit_code, 0) << h.err << router.process().err() << server->err();
  EXPECT_EQ(h.out, n.out);
  EXPECT_EQ(server->err().find("refused"), std::string::npos) << server->err();
}

TEST(RemoteServer, RoutersWithAnotherKeyOrNoneAreRefused) {
  TempDir dir;
  const std::string key = write_key(dir, "key", "the server's key, 32 bytes long.");
  const std::string other = write_key(dir, "other", "another key that is long enough");
  auto server = start_server(47622, {"--key-file", key});
  ASSERT_TRUE(server->running()) << server->err();
  {
    Router router({"--remote", "acc=tcp:127.0.0.1:47622", "--remote-key-file", other});
    const RunResult h = run({kDemo, "1", "16"}, router.guest_env(), std::chrono::seconds(30));
    EXPECT_FALSE(h.timed_out);
    EXPECT_NE(h.exit_code, 0);
    router.stop();
    EXPECT_NE(router.process().err().find("closed during authentication (wrong key?)"),
              std::string::npos)
        << router.process().err();
  }
  {  // A router without a key never gets a frame served either.
    Router router({"--remote", "acc=tcp:127.0.0.1:47622"});
    const RunResult h = run({kDemo, "1", "16"}, router.guest_env(), std::chrono::seconds(30));
    EXPECT_FALSE(h.timed_out);
    EXPECT_NE(h.exit_code, 0);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  EXPECT_NE(server->err().find("refused a connection: the peer does not hold the key"),
            std::string::npos)
      << server->err();
  EXPECT_TRUE(server->running());
}

TEST(RemoteServer, ATcpListenerNeedsAKeyThatOnlyItsOwnerCanRead) {
  TempDir dir;
  {
    auto server = start_server(47623, {});
    EXPECT_EQ(server->wait(std::chrono::seconds(10)), 1);
    EXPECT_NE(server->err().find("needs --key-file"), std::string::npos) << server->err();
  }
  {
    const std::string key = write_key(dir, "open", "a key that everyone can read!!", 0644);
    auto server = start_server(47623, {"--key-file", key});
    EXPECT_EQ(server->wait(std::chrono::seconds(10)), 1);
    EXPECT_NE(server->err().find("readable by others"), std::string::npos) << server->err();
  }
  {
    const std::string key = write_key(dir, "short", "short");
    auto server = start_server(47623, {"--key-file", key});
    EXPECT_EQ(server->wait(std::chrono::seconds(10)), 1);
    EXPECT_NE(server->err().find("fewer than 16 bytes"), std::string::npos) << server->err();
  }
}

TEST(RemoteServer, ConnectionsBeyondTheLimitAreClosedAtOnce) {
  auto server = start_server(47624, {"--no-key", "--max-connections", "2"});
  ASSERT_TRUE(server->running()) << server->err();
  RawGuest a("tcp:127.0.0.1:47624"), b("tcp:127.0.0.1:47624");
  ASSERT_TRUE(a.connected() && b.connected());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // both forked
  {
    RawGuest c("tcp:127.0.0.1:47624");
    EXPECT_TRUE(wait_closed(c.fd(), std::chrono::seconds(5))) << "a third connection was served";
  }
  EXPECT_FALSE(wait_closed(a.fd(), std::chrono::milliseconds(200)));
  EXPECT_FALSE(wait_closed(b.fd(), std::chrono::milliseconds(200)));
  // One leaves: its place is free for the next.
  a.close();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  RawGuest d("tcp:127.0.0.1:47624");
  EXPECT_FALSE(wait_closed(d.fd(), std::chrono::milliseconds(300)));
  EXPECT_NE(server->err().find("refusing connections beyond 2"), std::string::npos)
      << server->err();
}

}  // namespace
}  // namespace hira::test
