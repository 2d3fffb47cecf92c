#include "test_support.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "hira/channel.h"

namespace hira::test {

std::string build_dir() { return HIRA_BUILD_DIR; }
std::string source_dir() { return HIRA_SOURCE_DIR; }

std::string read_file(const std::string &path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

namespace {

pid_t spawn(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env,
            const std::string &out, const std::string &err) {
  std::vector<std::string> env_storage;
  for (char **e = environ; *e != nullptr; ++e) {
    const std::string kv = *e;
    const std::string key = kv.substr(0, kv.find('='));
    if (env.count(key) == 0) env_storage.push_back(kv);
  }
  for (const auto &[k, v] : env) env_storage.push_back(k + "=" + v);
  std::vector<char *> envp, args;
  for (auto &s : env_storage) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto &s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(o, 1);
    ::dup2(e, 2);
    const int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::setpgid(0, 0);
    ::execvpe(args[0], args.data(), envp.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  return pid;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

TempDir::TempDir() {
  char tmpl[] = "/tmp/hira-test-XXXXXX";
  path_ = ::mkdtemp(tmpl);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

Process::Process(const std::vector<std::string> &argv,
                 const std::map<std::string, std::string> &env) {
  static int counter = 0;
  const std::string base =
      "/tmp/hira-proc-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
  out_path_ = base + ".out";
  err_path_ = base + ".err";
  pid_ = spawn(argv, env, out_path_, err_path_);
}

Process::~Process() {
  if (!exited_ && pid_ > 0) {
    ::kill(-pid_, SIGKILL);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status_, 0);
  }
  ::unlink(out_path_.c_str());
  ::unlink(err_path_.c_str());
}

bool Process::running() {
  if (exited_) return false;
  if (::waitpid(pid_, &status_, WNOHANG) == pid_) exited_ = true;
  return !exited_;
}

int Process::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return decode_status(status_);
}

void Process::signal(int sig) {
  if (!exited_) ::kill(pid_, sig);
}

std::string Process::out() const { return read_file(out_path_); }
std::string Process::err() const { return read_file(err_path_); }

bool Process::wait_for_output(const std::string &text, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (out().find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

RunResult run(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env,
              std::chrono::milliseconds timeout) {
  Process p(argv, env);
  RunResult r;
  r.exit_code = p.wait(timeout);
  r.timed_out = r.exit_code == -1;
  r.out = p.out();
  r.err = p.err();
  return r;
}

int connect_to(const std::string &endpoint) {
  std::string error;
  return connect_endpoint(endpoint, &error);
}

Router::Router(const std::vector<std::string> &extra_args) {
  endpoint_ = "unix:" + dir_.path() + "/router.sock";
  stats_path_ = dir_.path() + "/stats.json";
  std::vector<std::string> argv = {build_dir() + "/bin/hira-router",
                                   "--listen",
                                   endpoint_,
                                   "--apis",
                                   build_dir() + "/apis",
                                   "--stats-json",
                                   stats_path_,
                                   "--ready-file",
                                   dir_.path() + "/ready"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  // The API servers' home folders go under this folder (removed with it
  // even when the router is killed); their users must reach them.
  std::filesystem::permissions(dir_.path(), std::filesystem::perms::owner_all |
                                                std::filesystem::perms::group_exec |
                                                std::filesystem::perms::others_exec);
  proc_ =
      std::make_unique<Process>(argv, std::map<std::string, std::string>{{"TMPDIR", dir_.path()}});
  // The router says when it listens: never raced (a socket file appears
  // before listen(), and a connect then is refused).
  for (int i = 0; i < 6000 && proc_->running(); ++i) {
    if (std::filesystem::exists(dir_.path() + "/ready")) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ADD_FAILURE() << "the router did not become ready: " << proc_->err();
}

std::map<std::string, std::string> Router::guest_env() const {
  return {{"HIRA_SOCKET", endpoint_}, {"LD_LIBRARY_PATH", build_dir() + "/apis/acc/guest"}};
}

std::string Router::stop() {
  proc_->signal(SIGTERM);
  proc_->wait(std::chrono::seconds(20));
  return read_file(stats_path_);
}

std::vector<pid_t> Router::servers() const {
  std::vector<pid_t> out;
  DIR *d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent *e = ::readdir(d)) {
    const pid_t pid = std::atoi(e->d_name);
    if (pid <= 0) continue;
    std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
    std::string line;
    std::getline(stat, line);
    const auto close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state;
    pid_t ppid;
    rest >> state >> ppid;
    if (ppid == proc_->pid() && state != 'Z') out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

long status_kb(pid_t pid, const std::string &name) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(name + ":", 0) == 0) return std::stol(line.substr(name.size() + 1));
  }
  return -1;
}

}  // namespace hira::test
