// The router as the policy point, with real processes: quotas refused with
// the API's own error, policies the verifier refuses, policies swapped under
// load, a rate-limited VM that floods, and the metrics an operator scrapes.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "opencl_programs.h"
#include "test_support.h"

namespace hira::test {
namespace {

std::map<std::string, std::string> dropin(std::map<std::string, std::string> env) {
  env["LD_LIBRARY_PATH"] = build_dir() + "/apis/opencl/guest";
  return env;
}

// Output lines that start with `text`.
std::vector<std::string> lines_with(const std::string &out, const std::string &text) {
  std::vector<std::string> v;
  std::istringstream in(out);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(text, 0) == 0) v.push_back(line);
  }
  return v;
}

int free_port() {
  // The kernel's choice among free ports, released for the router to take
  // (a plain socket: httplib's would share the port with the router's).
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  if (::bind(fd, reinterpret_cast<sockaddr *>(&a), sizeof(a)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr *>(&a), &len) != 0) {
    ADD_FAILURE() << "no free port";
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

class Enforcement : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) GTEST_SKIP() << "eBPF policies need root";
  }
};

TEST_F(Enforcement, AnAllocationOverQuotaGetsTheApisOwnErrorAndLeaksNothing) {
  Router router({"--quota", "local:device_memory=8M"});
  // 3 MiB buffers: two fit in 8 MiB, the third and fourth do not; releasing
  // one makes room again, and releasing all leaves nothing held. A creation
  // the implementation refuses first holds nothing either.
  const RunResult r = run({program("allocations"), "3", "4"}, dropin(router.guest_env()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines_with(r.out, "an invalid creation:"),
            std::vector<std::string>{"an invalid creation: -30, an object 0"});
  EXPECT_EQ(lines_with(r.out, "buffer 0:"), std::vector<std::string>{"buffer 0: 0"});
  EXPECT_EQ(lines_with(r.out, "buffer 1:"), std::vector<std::string>{"buffer 1: 0"});
  EXPECT_EQ(lines_with(r.out, "buffer 2:"), std::vector<std::string>{"buffer 2: -4"});
  EXPECT_EQ(lines_with(r.out, "buffer 3:"), std::vector<std::string>{"buffer 3: -4"});
  EXPECT_EQ(lines_with(r.out, "after releasing buffer 0:"),
            std::vector<std::string>{"after releasing buffer 0: 0"});
  EXPECT_EQ(lines_with(r.out, "after releasing all:"),
            std::vector<std::string>{"after releasing all: 0"});
  EXPECT_NE(r.err.find("over the VM's quota"), std::string::npos) << r.err;
  const auto stats = nlohmann::json::parse(router.stop());
  const auto &vm = stats["vms"]["local"];
  EXPECT_EQ(vm["refused_quota"], 2);
  EXPECT_EQ(vm["held"]["device_memory"], 0);
  EXPECT_EQ(vm["quota"]["device_memory"], 8 << 20);
  // The refused creations never reached the device: 5 of 7 did (the
  // invalid one among them).
  EXPECT_EQ(stats["opencl"]["functions"]["clCreateBuffer"]["calls"], 5);
  EXPECT_EQ(stats["opencl"]["functions"]["clCreateBuffer"]["rejected"], 2);
}

// Images: only the implementation knows what one takes (the API server
// reports it after the creation), so the router cannot refuse the one that
// passes the quota; it refuses every creation once the VM is at its quota
// (one object past it at most, where without the check there was no end).
// 3 MiB images under 8 MiB: the third goes past, the fourth is refused.
TEST_F(Enforcement, ObjectsTheServerMeasuresStopAtTheQuota) {
  Router router({"--quota", "local:device_memory=8M"});
  const RunResult r = run({program("allocations"), "3", "4", "images"}, dropin(router.guest_env()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines_with(r.out, "buffer 2:"), std::vector<std::string>{"buffer 2: 0"});
  EXPECT_EQ(lines_with(r.out, "buffer 3:"), std::vector<std::string>{"buffer 3: -4"});
  EXPECT_EQ(lines_with(r.out, "after releasing all:"),
            std::vector<std::string>{"after releasing all: 0"});
  const auto stats = nlohmann::json::parse(router.stop());
  EXPECT_EQ(stats["vms"]["local"]["refused_quota"], 1) << stats["vms"].dump();
  EXPECT_EQ(stats["vms"]["local"]["held"]["device_memory"], 0);
}

TEST_F(Enforcement, TwoListenersWithOneLabelAreOneVmWithOneQuota) {
  TempDir dir;
  const std::string second = "unix:" + dir.path() + "/second.sock";
  Router router({"--listen", "local=" + second, "--quota", "local:device_memory=8M"});
  auto env = dropin(router.guest_env());
  env["HIRA_SOCKET"] = second;
  const RunResult r = run({program("allocations"), "3", "4"}, env);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines_with(r.out, "buffer 2:"), std::vector<std::string>{"buffer 2: -4"});
  const auto stats = nlohmann::json::parse(router.stop());
  ASSERT_EQ(stats["vms"].size(), 1u) << stats["vms"].dump();
  EXPECT_EQ(stats["vms"]["local"]["refused_quota"], 2);
  EXPECT_EQ(stats["vms"]["local"]["held"]["device_memory"], 0);
}

TEST_F(Enforcement, WithoutAQuotaTheSameProgramMatchesNative) {
  const RunResult native = run({program("allocations"), "3", "4"});
  ASSERT_EQ(native.exit_code, 0);
  Router router({"--policy", "wfq_fixed"});
  const RunResult r = run({program("allocations"), "3", "4"}, dropin(router.guest_env()));
  EXPECT_EQ(r.out, native.out);
}

TEST_F(Enforcement, APolicyTheVerifierRefusesStopsTheRouterWithItsLog) {
  const RunResult r =
      run({build_dir() + "/bin/hira-router", "--listen", "unix:/tmp/never.sock", "--apis",
           build_dir() + "/apis", "--policy", build_dir() + "/tests/policies/out_of_bounds.bpf.o"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("cannot load policy"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("out_of_bounds.bpf.o"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("map_value_or_null"), std::string::npos) << r.err;
}

TEST_F(Enforcement, WithoutThePrivilegeTheRouterSaysWhatToDo) {
  TempDir dir;
  std::filesystem::permissions(dir.path(), std::filesystem::perms::all);
  const RunResult r =
      run({"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
           build_dir() + "/bin/hira-router", "--listen", "unix:" + dir.path() + "/r.sock", "--apis",
           build_dir() + "/apis", "--no-sandbox", "--share", "local=2"},
          {{"TMPDIR", "/tmp"}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("policies need root, or CAP_BPF and CAP_PERFMON"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("without --policy, --share and --quota"), std::string::npos) << r.err;
}

TEST_F(Enforcement, SwappingPoliciesUnderLoadLosesNoCommand) {
  Router router({"--policy", "wfq_aimd", "--quota", "local:calls=1000000"});
  std::vector<std::string> programs = {"jacobi", "events", "multithread", "callbacks"};
  std::vector<RunResult> native;
  for (const auto &p : programs) native.push_back(run({program(p)}));
  std::atomic<bool> done{false};
  std::thread hangups([&] {
    while (!done) {
      router.process().signal(SIGHUP);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  for (int round = 0; round < 2; ++round) {
    for (size_t i = 0; i < programs.size(); ++i) {
      const RunResult r = run({program(programs[i])}, dropin(router.guest_env()));
      EXPECT_EQ(r.exit_code, 0) << programs[i] << r.err;
      EXPECT_EQ(r.out, native[i].out) << programs[i];
    }
  }
  done = true;
  hangups.join();
  router.stop();
  EXPECT_GE(lines_with(router.process().err(), "hira-router: policies reloaded").size(), 5u);
  EXPECT_EQ(router.process().err().find("not reloaded"), std::string::npos)
      << router.process().err();
}

TEST_F(Enforcement, AFloodingVmIsHeldToItsRateAndTheOtherIsServed) {
  TempDir dir;
  const std::string b_socket = "unix:" + dir.path() + "/b.sock";
  Router router({"--listen", "b=" + b_socket, "--quota", "local:calls=200"});
  // The flood: tiny kernels as fast as the guest can send them (two calls
  // each), for 3 s, rate-limited to 200 calls a second.
  Process flood({program("kernel_loop"), "1", "64", "3"}, dropin(router.guest_env()));
  const RunResult native = run({program("vector_add")});
  auto b_env = dropin(router.guest_env());
  b_env["HIRA_SOCKET"] = b_socket;
  const auto start = std::chrono::steady_clock::now();
  const RunResult b = run({program("vector_add")}, b_env);
  const auto b_took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(b.out, native.out);
  EXPECT_LT(b_took, std::chrono::seconds(20));
  ASSERT_EQ(flood.wait(std::chrono::seconds(60)), 0) << flood.err();
  const std::string out = flood.out();
  const auto kernels = static_cast<size_t>(std::count(out.begin(), out.end(), '\n'));
  // Its set-up's lines, then one per kernel: 3 s at 200 calls/s plus a
  // second's burst, two calls a kernel (unlimited, it makes thousands).
  EXPECT_LE(kernels, 20u + 450u);
  EXPECT_GE(kernels, 100u);
  const auto stats = nlohmann::json::parse(router.stop());
  EXPECT_GT(stats["vms"]["local"]["waits"].get<uint64_t>(), 0u);
  EXPECT_EQ(stats["vms"]["b"]["waits"], 0);
}

// One sample line of the Prometheus text format.
const std::regex kSample(R"(^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (-?[0-9.e+-]+|NaN)$)");

TEST_F(Enforcement, MetricsParseAsPrometheusTextAndMatchTheLedger) {
  const int port = free_port();
  const std::string at = "127.0.0.1:" + std::to_string(port);
  Router router({"--metrics", at, "--quota", "local:device_memory=1G"});
  const RunResult r = run({program("vector_add")}, dropin(router.guest_env()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  httplib::Client client("127.0.0.1", port);
  // The guest has exited; its session may still be finishing its last
  // commands: the numbers settle once the VM has no guest left.
  for (int i = 0; i < 250; ++i) {
    const auto j = client.Get("/metrics.json");
    ASSERT_TRUE(j);
    if (nlohmann::json::parse(j->body)["local"]["guests"] == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  const auto res = client.Get("/metrics");
  ASSERT_TRUE(res) << httplib::to_string(res.error()) << " on port " << port;
  EXPECT_EQ(res->status, 200);
  std::map<std::string, double> samples;
  std::set<std::string> typed;
  std::istringstream in(res->body);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("# TYPE ", 0) == 0) {
      typed.insert(line.substr(7, line.find(' ', 7) - 7));
      continue;
    }
    if (line.rfind("# HELP ", 0) == 0) continue;
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, kSample)) << "not Prometheus text: " << line;
    EXPECT_TRUE(typed.count(m[1])) << "no # TYPE before " << line;
    EXPECT_EQ(m[1].str().rfind("hira_", 0), 0u) << line;
    samples[m[1].str() + m[2].str()] = std::stod(m[3]);
  }
  const auto res_json = client.Get("/metrics.json");
  ASSERT_TRUE(res_json) << httplib::to_string(res_json.error());
  const auto json = nlohmann::json::parse(res_json->body);
  const auto stats = nlohmann::json::parse(router.stop());
  uint64_t calls = 0;
  for (const auto &[name, f] : stats["opencl"]["functions"].items()) {
    calls += f["calls"].get<uint64_t>();
  }
  EXPECT_EQ(samples.at("hira_calls_total{vm=\"local\"}"), static_cast<double>(calls));
  EXPECT_EQ(json["local"]["calls"], calls);
  EXPECT_EQ(stats["vms"]["local"]["calls"], calls);
  const double device_ns = stats["vms"]["local"]["device_ns"].get<double>();
  EXPECT_GT(device_ns, 0);
  EXPECT_NEAR(samples.at("hira_device_time_seconds_total{vm=\"local\"}"), device_ns / 1e9, 1e-6);
  EXPECT_EQ(samples.at("hira_resource_used_total{vm=\"local\",resource=\"transfer_bytes\"}"),
            stats["vms"]["local"]["used"]["transfer_bytes"].get<double>());
  EXPECT_EQ(samples.at("hira_resource_held{vm=\"local\",resource=\"device_memory\"}"), 0);
  EXPECT_EQ(samples.at("hira_policy_loaded{policy=\"quota.bpf.o\"}"), 1);
  EXPECT_GT(samples.at("hira_policy_runs_total{}"), 0);
  EXPECT_EQ(samples.at("hira_guests{vm=\"local\"}"), 0);
}

TEST_F(Enforcement, HiraTopShowsTheRoutersVms) {
  const int port = free_port();
  const std::string at = "127.0.0.1:" + std::to_string(port);
  Router router({"--metrics", at, "--share", "local=3"});
  const RunResult r = run({program("vector_add")}, dropin(router.guest_env()));
  ASSERT_EQ(r.exit_code, 0);
  const RunResult top =
      run({build_dir() + "/bin/hira", "top", "--metrics", at, "--interval", "0.2", "-n", "1"});
  EXPECT_EQ(top.exit_code, 0) << top.err;
  EXPECT_NE(top.out.find("local"), std::string::npos) << top.out;
  EXPECT_NE(top.out.find("calls/s"), std::string::npos) << top.out;
  router.stop();
  const RunResult gone = run({build_dir() + "/bin/hira", "top", "--metrics", at, "-n", "1"});
  EXPECT_EQ(gone.exit_code, 1);
  EXPECT_NE(gone.err.find("no router metrics"), std::string::npos) << gone.err;
}

TEST_F(Enforcement, HiraRunEnforcesItsOneGuestsQuota) {
  const RunResult r = run({build_dir() + "/bin/hira", "run", "--quiet", "--quota",
                           "device_memory=8M", "--", program("allocations"), "3", "3"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(lines_with(r.out, "buffer 2:"), std::vector<std::string>{"buffer 2: -4"});
  const RunResult bad = run({build_dir() + "/bin/hira", "run", "--quiet", "--quota", "gpu_hours=8",
                             "--", program("allocations"), "3", "3"});
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_NE(bad.err.find("no resource 'gpu_hours'"), std::string::npos) << bad.err;
  EXPECT_EQ(bad.out, "");  // the program never ran
}

}  // namespace
}  // namespace hira::test
