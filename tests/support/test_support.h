// Helpers for tests that run hira's real components as real processes.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace hira::test {

std::string build_dir();   // the CMake build tree
std::string source_dir();  // the repository

struct RunResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  bool timed_out = false;
  std::string out, err;
};

// Runs argv to completion (killing it after `timeout`), with extra environment.
RunResult run(const std::vector<std::string> &argv,
              const std::map<std::string, std::string> &env = {},
              std::chrono::milliseconds timeout = std::chrono::seconds(60));

// A process running in the background; stdout/stderr go to files.
class Process {
 public:
  Process(const std::vector<std::string> &argv, const std::map<std::string, std::string> &env = {});
  ~Process();  // kills it if still running
  Process(const Process &) = delete;
  Process &operator=(const Process &) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Waits for exit; returns the exit code (128 + signal), or -1 on timeout.
  int wait(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  void signal(int sig);
  std::string out() const;  // what it wrote so far
  std::string err() const;
  // Waits until stdout contains `text`.
  bool wait_for_output(const std::string &text,
                       std::chrono::milliseconds timeout = std::chrono::seconds(30));

 private:
  pid_t pid_ = -1;
  int status_ = 0;
  bool exited_ = false;
  std::string out_path_, err_path_;
};

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string &path() const { return path_; }

 private:
  std::string path_;
};

// hira-router on a private Unix socket serving build/apis.
class Router {
 public:
  explicit Router(const std::vector<std::string> &extra_args = {});
  const std::string &endpoint() const { return endpoint_; }
  // Environment for a guest program: HIRA_SOCKET + the guest libraries.
  std::map<std::string, std::string> guest_env() const;
  // Stops the router (SIGTERM) and returns its --stats-json output.
  std::string stop();
  Process &process() { return *proc_; }
  // Child processes of the router (the API servers it spawned).
  std::vector<pid_t> servers() const;

 private:
  TempDir dir_;
  std::string endpoint_, stats_path_;
  std::unique_ptr<Process> proc_;
};

// Connects to an endpoint ("unix:/path"); -1 on failure.
int connect_to(const std::string &endpoint);
std::string read_file(const std::string &path);
// A "Name:   N kB" field of /proc/PID/status, or -1.
long status_kb(pid_t pid, const std::string &name);

}  // namespace hira::test
