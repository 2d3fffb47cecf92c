#include "server_pool.h"

#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

extern char **environ;

namespace hira::router {

ServerPool::ServerPool(const ApiRegistry &apis, unsigned warm, Sandbox &sandbox,
                       std::vector<std::string> server_args)
    : apis_(apis), sandbox_(sandbox), server_args_(std::move(server_args)), warm_(warm) {}

ServerPool::~ServerPool() {
  std::lock_guard lock(mu_);
  for (auto &[name, servers] : idle_) {
    for (const auto &s : servers) {
      // Idle: nothing of a guest's to lose; a server still warming up
      // would only finish that first.
      ::kill(s.pid, SIGKILL);
      ::close(s.fd);
      ::waitpid(s.pid, nullptr, 0);
    }
  }
}

void ServerPool::fill(const std::vector<std::string> &vms) {
  if (warm_ == 0) return;
  const std::vector<std::string> pools =
      sandbox_.homes_per_vm() ? vms : std::vector<std::string>{""};
  std::lock_guard lock(mu_);
  for (const auto &[name, api] : apis_.all()) {
    if (!api.remote_endpoint.empty()) continue;
    for (const std::string &vm : pools) {
      auto &servers = idle_[{name, vm}];
      while (servers.size() < warm_) {
        const SpawnedServer s = spawn(api, vm);
        if (s.pid < 0) break;
        servers.push_back(s);
      }
    }
  }
}

SpawnedServer ServerPool::take(const ApiEntry &api, const std::string &vm) {
  SpawnedServer got;
  {
    std::lock_guard lock(mu_);
    for (const std::string &pool : {vm, std::string()}) {
      auto &servers = idle_[{api.module->name, pool}];
      while (!servers.empty() && got.pid < 0) {
        const SpawnedServer s = servers.front();
        servers.erase(servers.begin());
        if (::waitpid(s.pid, nullptr, WNOHANG) == 0) {
          got = s;  // still running: warm
        } else {
          ::close(s.fd);  // it died while idle (reaped above)
        }
      }
      if (got.pid >= 0 || pool.empty()) break;
    }
  }
  return got.pid >= 0 ? got : spawn(api, vm);
}

void ServerPool::refill(const ApiEntry &api, const std::string &vm) {
  if (warm_ == 0 || !api.remote_endpoint.empty()) return;
  const std::pair<std::string, std::string> key{api.module->name,
                                                sandbox_.homes_per_vm() ? vm : ""};
  {
    std::lock_guard lock(mu_);
    if (idle_[key].size() >= warm_) return;
  }
  const SpawnedServer next = spawn(api, key.second);  // fork and exec outside the lock
  if (next.pid < 0) return;
  std::lock_guard lock(mu_);
  auto &servers = idle_[key];
  if (servers.size() < warm_) {
    servers.push_back(next);
    return;
  }
  ::kill(next.pid, SIGKILL);  // another session refilled first
  ::close(next.fd);
  ::waitpid(next.pid, nullptr, 0);
}

SpawnedServer ServerPool::spawn(const ApiEntry &api, const std::string &vm) {
  // Everything the child needs is built before fork: the router is threaded.
  std::string error;
  std::shared_ptr<SandboxPlan> plan =
      sandbox_.plan({"HIRA_SERVER_LIBRARY_DIR=" + api.library_dir}, vm, &error);
  if (!plan) {
    std::fprintf(stderr, "hira-router: cannot start an API server: %s\n", error.c_str());
    return {};
  }
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return {};
  std::vector<std::string> args = {api.server_path, "--fd", "3"};
  args.insert(args.end(), server_args_.begin(), server_args_.end());
  std::vector<char *> argv;
  for (auto &a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  const std::string &path = args[0];
  // Signals wait until the child has the default actions back: a SIGTERM
  // sent to a server before its exec (its session ended at once) must end
  // it, not run the router's handler in the child and be lost.
  sigset_t all, old;
  sigfillset(&all);
  ::pthread_sigmask(SIG_BLOCK, &all, &old);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::close(sv[0]);
    ::close(sv[1]);
    return {};
  }
  if (pid == 0) {
    for (const int sig : {SIGTERM, SIGINT}) ::signal(sig, SIG_DFL);
    ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
    ::dup2(sv[1], 3);  // dup2 clears close-on-exec on the copy
    if (!plan->enter()) {
      // Said by the child (the router cannot know why): then nothing runs.
      static const char kWhy[] = "hira-router: an API server could not enter its sandbox\n";
      [[maybe_unused]] const ssize_t n = ::write(2, kWhy, sizeof(kWhy) - 1);
      ::_exit(126);
    }
    ::execve(path.c_str(), argv.data(), plan->envp());
    ::_exit(127);
  }
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
  ::close(sv[1]);
  return {sv[0], pid, std::move(plan)};
}

}  // namespace hira::router
