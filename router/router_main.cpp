// hira-router: the host-side interposition point. Accepts guest processes on
// one or more listeners, spawns one API server per guest process, validates
// and accounts every command, and reports what it saw.
#include <execinfo.h>
#include <fcntl.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <map>
#include <memory>
#include <new>
#include <system_error>
#include <thread>
#include <vector>

#include "admission.h"
#include "api_registry.h"
#include "dispatcher.h"
#include "guest_session.h"
#include "hira/channel.h"
#include "hira/hop_trace.h"
#include "hira/remote_auth.h"
#include "hira/stop_signals.h"
#include "hira/window.h"
#include "metrics.h"
#include "policy.h"
#include "resource_ids.h"
#include "router_options.h"
#include "stats.h"
#include "vm.h"
#include "vm_region.h"

namespace {

std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }
std::atomic<bool> g_reload{false};
void on_hangup(int) { g_reload = true; }

struct Listener {
  std::string label;
  std::string endpoint;
  int fd = -1;
  hira::router::VmRegion *region = nullptr;  // --vm-window for this VM
  hira::router::Vm *vm = nullptr;            // listeners with one label share their VM
};

// Out of file descriptors: frees the reserve to accept the waiting guest and
// close it at once (it sees the connection end), then takes the reserve back.
void shed_connection(int listener, int *reserve_fd) {
  static auto last_said = std::chrono::steady_clock::time_point{};
  if (*reserve_fd >= 0) ::close(*reserve_fd);
  const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (fd >= 0) ::close(fd);
  *reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  const auto now = std::chrono::steady_clock::now();
  if (now - last_said > std::chrono::seconds(1)) {
    last_said = now;
    std::fprintf(stderr, "hira-router: out of file descriptors: turning guests away\n");
  }
  if (fd < 0) ::usleep(10000);  // nothing to shed: do not spin
}

// The refusal itself (may throw when out of memory; the fd is closed then too).
void answer_refusal(int fd, bool read_hello) {
  hira::Channel c(fd);
  c.grow_frames_as_they_arrive();  // a guest: its header's length is only a promise
  if (read_hello) {
    c.set_recv_timeout(2);
    hira::Frame hello;
    (void)c.recv(hello);  // whatever it is: the answer is the same
  }
  c.send(hira::make_header(hira::wire::Kind::HelloAck,
                           static_cast<uint32_t>(hira::wire::ReplyStatus::Denied)),
         nullptr);
}

// Answers a guest the router will not serve with 'denied by policy'. Its
// hello is read first (for at most 2 s, on a thread of its own, at most 16 at
// a time), so that the guest is not cut off while still sending it; past
// that many refusals in flight, the answer goes at once.
void refuse_guest(int fd, std::atomic<int> *refusing) {
  auto answer = [](int fd, bool read_hello) noexcept {
    try {
      answer_refusal(fd, read_hello);
    } catch (const std::exception &) {  // out of memory: the guest sees the connection close
    }
  };
  if (refusing->fetch_add(1) < 16) {
    try {
      std::thread([fd, refusing, answer] {
        answer(fd, true);
        --*refusing;
      }).detach();
      return;
    } catch (const std::exception &) {  // no thread (or memory for one)
    }
  }
  --*refusing;
  answer(fd, false);
}

}  // namespace

// A router that must end on an unhandled error says where (a shared router
// going down is the worst outcome: the trace is what fixes it).
[[noreturn]] void on_terminate() {
  static const char kWhat[] = "hira-router: fatal: unhandled error; the stack:\n";
  [[maybe_unused]] const ssize_t n = ::write(2, kWhat, sizeof(kWhat) - 1);
  void *frames[48];
  ::backtrace_symbols_fd(frames, ::backtrace(frames, 48), 2);
  std::abort();
}

int main(int argc, char **argv) {
  std::set_terminate(on_terminate);
  hira::hop_trace::init();
  CLI::App app{"hira-router: interposes on every API call of its guests"};
  std::vector<std::string> listen_args, remote_args;
  std::string apis_dir, stats_json;
  bool summary = false;
  app.add_option("--listen", listen_args,
                 "[LABEL=]ENDPOINT to accept guests on (unix:/path, tcp:host:port, fd:N for an "
                 "inherited listening socket)")
      ->required();
  app.add_option("--apis", apis_dir, "directory with one folder per API (built by cava)")
      ->required();
  app.add_option("--remote", remote_args, "API=tcp:HOST:PORT: use a remote API server for API");
  std::string remote_key_file;
  app.add_option("--remote-key-file", remote_key_file,
                 "FILE: the key remote API servers were started with (--key-file there)");
  app.add_option("--stats-json", stats_json, "write call and resource statistics here at exit");
  app.add_flag("--summary", summary, "print a per-function call summary at exit");
  bool quiet = false;
  app.add_flag("--quiet", quiet, "no informational lines on stderr (warnings and errors only)");
  unsigned warm = 0;
  app.add_option("--warm-servers", warm,
                 "API servers kept started and initialized per API (and per VM with "
                 "--server-cache, in that VM's home), ready for the next guest (0: start one "
                 "when a guest arrives)")
      ->check(CLI::Range(0u, 16u));
  uint64_t max_window_mb = hira::kDefaultWindowBytes >> 20;
  app.add_option("--max-window-mb", max_window_mb,
                 "largest shared-memory window a local guest process may bring, in MiB "
                 "(0: none; their data then travels through the router)")
      ->check(CLI::Range(uint64_t{0}, hira::kMaxWindowBytes >> 20));
  hira::router::SandboxOptions sandbox_options;
  bool no_sandbox = false;
  app.add_flag("--no-sandbox", no_sandbox,
               "run API servers with the router's user, environment and privileges (for "
               "debugging a vendor library the sandbox breaks; never for untrusted guests)");
  app.add_option("--server-uid-base", sandbox_options.uid_base,
                 "as root, API servers run as uid/gid BASE+n, one per server")
      ->check(CLI::Range(1000u, 4000000000u));
  bool server_network = false;
  app.add_flag("--server-network", server_network,
               "leave API servers in the router's network namespace (as root they get an "
               "empty one of their own by default)");
  app.add_option("--server-cache", sandbox_options.cache_root,
                 "DIR: the API servers of one VM (listener) share a home under DIR, kept across "
                 "runs, so the vendor library's compile caches survive (default: a private, "
                 "temporary home per server)");
  app.add_option("--server-env", sandbox_options.extra_env,
                 "NAME: pass this variable to API servers beyond the allow-list (repeatable)");
  unsigned max_guests = 256;
  app.add_option("--max-guests", max_guests,
                 "guest processes served at once per listener (per VM); more are refused at "
                 "hello with 'denied by policy' (each costs an API server process)")
      ->check(CLI::Range(1u, 100000u));
  unsigned max_backlog_mb = 256;
  app.add_option("--max-backlog-mb", max_backlog_mb,
                 "calls a guest process may have sent that cannot run yet (queued behind one "
                 "of its own that blocks), in MiB; beyond it its API server stops reading "
                 "and the guest's sends wait")
      ->check(CLI::Range(1u, 65536u));
  std::vector<std::string> vm_window_args;
  app.add_option("--vm-window", vm_window_args,
                 "VM=PATH: the memory file behind that VM's ivshmem device; its guest processes "
                 "use slices of it as their data windows (the guest's hira_window module hands "
                 "them out)");
  std::string ready_file;
  app.add_option("--ready-file", ready_file,
                 "create this file once every listener accepts guests (for supervisors)");
  hira::router::PolicyOptions policy_options;
  hira::router::add_policy_options(app, &policy_options);
  CLI11_PARSE(app, argc, argv);

  // A thread per guest would otherwise get a malloc arena each (64 MiB of
  // address space apiece): the router's footprint must not grow that way
  // with the number of guests.
  ::mallopt(M_ARENA_MAX, 4);
  ::signal(SIGPIPE, SIG_IGN);
  hira::on_stop_signals(on_signal);

  hira::router::ApiRegistry apis;
  if (apis.load(apis_dir) == 0) {
    std::fprintf(stderr, "hira-router: no API found under %s\n", apis_dir.c_str());
    return 1;
  }
  for (const auto &r : remote_args) {
    const auto eq = r.find('=');
    if (eq == std::string::npos || !apis.set_remote(r.substr(0, eq), r.substr(eq + 1))) {
      std::fprintf(stderr, "hira-router: --remote %s: expected KNOWN_API=ENDPOINT\n", r.c_str());
      return 1;
    }
  }
  if (!remote_key_file.empty()) {
    std::string error;
    const auto key = hira::load_shared_key(remote_key_file, &error);
    if (!key) {
      std::fprintf(stderr, "hira-router: --remote-key-file: %s\n", error.c_str());
      return 1;
    }
    apis.set_remote_key(*key);
  }
  hira::router::Stats stats;
  hira::router::ResourceIds resources;
  for (const auto &[name, e] : apis.all()) {
    stats.add_api(*e.module);
    resources.add_api(*e.module);
  }

  std::vector<Listener> listeners;
  for (const auto &arg : listen_args) {
    Listener l;
    const auto eq = arg.find('=');
    const bool labelled = eq != std::string::npos && arg.find(':') > eq;
    l.label = labelled ? arg.substr(0, eq) : "local";
    l.endpoint = labelled ? arg.substr(eq + 1) : arg;
    std::string error;
    l.fd = hira::listen_endpoint(l.endpoint, &error);
    if (l.fd < 0) {
      std::fprintf(stderr, "hira-router: cannot listen on %s: %s\n", l.endpoint.c_str(),
                   error.c_str());
      return 1;
    }
    listeners.push_back(l);
  }

  std::map<std::string, std::unique_ptr<hira::router::VmRegion>> regions;
  for (const auto &arg : vm_window_args) {
    const auto eq = arg.find('=');
    const std::string vm = eq == std::string::npos ? "" : arg.substr(0, eq);
    auto l = std::find_if(listeners.begin(), listeners.end(),
                          [&vm](const Listener &x) { return x.label == vm; });
    if (l == listeners.end()) {
      std::fprintf(stderr,
                   "hira-router: --vm-window %s: expected VM=PATH with VM a --listen label\n",
                   arg.c_str());
      return 1;
    }
    std::string error;
    auto region = hira::router::VmRegion::open(arg.substr(eq + 1), &error);
    if (!region) {
      std::fprintf(stderr, "hira-router: --vm-window: %s\n", error.c_str());
      return 1;
    }
    l->region = region.get();
    regions[vm] = std::move(region);
  }

  // Every listener is a VM: its guests share its share and its quotas.
  hira::router::VmTable vms;
  try {
    for (auto &l : listeners) l.vm = &vms.add(l.label);
  } catch (const std::exception &e) {
    std::fprintf(stderr, "hira-router: %s\n", e.what());
    return 1;
  }
  std::string policy_error;
  const auto policy_paths =
      hira::router::configure_vms(policy_options, resources, &vms, &policy_error);
  if (!policy_error.empty()) {
    std::fprintf(stderr, "hira-router: %s\n", policy_error.c_str());
    return 1;
  }
  hira::router::Admission admission(vms, resources);
  hira::router::Dispatcher dispatcher(admission);
  const std::string shipped = hira::router::shipped_policy_dir(policy_options);
  if (!policy_paths.empty()) {
    auto set = hira::router::PolicySet::load(policy_paths, shipped, vms, resources, &policy_error);
    if (!set) {
      std::fprintf(stderr, "hira-router: cannot load policy %s\n", policy_error.c_str());
      return 1;
    }
    if (!quiet) {
      std::string names;
      for (const auto &n : set->names()) names += " " + n;
      std::fprintf(stderr, "hira-router: policies in force:%s\n", names.c_str());
    }
    admission.set_policies(std::move(set));
  }
  struct sigaction hup {};
  hup.sa_handler = on_hangup;
  ::sigaction(SIGHUP, &hup, nullptr);
  std::unique_ptr<hira::router::MetricsServer> metrics;
  if (!policy_options.metrics.empty()) {
    metrics = std::make_unique<hira::router::MetricsServer>(vms, resources, admission);
    std::string error;
    if (!metrics->start(policy_options.metrics, &error)) {
      std::fprintf(stderr, "hira-router: %s\n", error.c_str());
      return 1;
    }
  }

  hira::router::GuestLimits limits;
  limits.max_window_bytes = max_window_mb << 20;
  sandbox_options.enabled = !no_sandbox;
  sandbox_options.private_network = !server_network;
  hira::router::Sandbox sandbox(sandbox_options);
  if (!quiet) std::fprintf(stderr, "hira-router: %s\n", sandbox.describe().c_str());
  hira::router::ServerPool pool(apis, warm, sandbox,
                                {"--max-backlog-mb", std::to_string(max_backlog_mb)});
  std::vector<std::string> vm_labels;
  for (const auto &vm : vms.all()) vm_labels.push_back(vm->name);
  pool.fill(vm_labels);

  if (!ready_file.empty()) {
    // Written aside and renamed: whoever sees the file sees it whole.
    const std::string tmp = ready_file + ".tmp";
    std::ofstream(tmp) << ::getpid() << "\n";
    if (std::rename(tmp.c_str(), ready_file.c_str()) != 0) {
      std::fprintf(stderr, "hira-router: cannot write %s: %s\n", ready_file.c_str(),
                   std::strerror(errno));
      return 1;
    }
  }

  // One descriptor kept in reserve: out of descriptors, the router still
  // accepts the waiting guest to turn it away, instead of spinning on a
  // listener that stays readable.
  int reserve_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);

  std::atomic<int> sessions{0};
  std::atomic<int> refusing{0};
  // Guest processes being served, per listener (its VM).
  std::vector<std::atomic<unsigned>> served(listeners.size());
  uint64_t guest_number = 0;
  std::vector<pollfd> pfds;
  for (const auto &l : listeners) pfds.push_back({l.fd, POLLIN, 0});
  const hira::router::RouterParts parts{apis,      pool,       stats,    limits,
                                        resources, dispatcher, admission};
  while (!g_stop) {
    if (g_reload.exchange(false)) {
      // SIGHUP: the policy files are loaded again and swapped in; guests
      // stay connected and commands waiting ask the new policies.
      std::string error;
      // This thread takes no SIGHUP while the verifier works (one would
      // interrupt it); another thread notes it for the next round.
      sigset_t hangup, old;
      sigemptyset(&hangup);
      sigaddset(&hangup, SIGHUP);
      ::pthread_sigmask(SIG_BLOCK, &hangup, &old);
      auto set = policy_paths.empty()
                     ? nullptr
                     : hira::router::PolicySet::load(policy_paths, shipped, vms, resources, &error);
      ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
      if (!policy_paths.empty() && !set) {
        std::fprintf(stderr, "hira-router: policies not reloaded (the old ones stay): %s\n",
                     error.c_str());
      } else if (set) {
        admission.set_policies(std::move(set));
        dispatcher.wake_all();
        std::fprintf(stderr, "hira-router: policies reloaded\n");
      }
    }
    if (::poll(pfds.data(), pfds.size(), 200) <= 0) continue;
    for (size_t i = 0; i < pfds.size(); ++i) {
      if ((pfds[i].revents & POLLIN) == 0) continue;
      const int fd = ::accept4(listeners[i].fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE) shed_connection(listeners[i].fd, &reserve_fd);
        continue;
      }
      std::string origin;
      try {
        origin = listeners[i].label + "#" + std::to_string(++guest_number);
      } catch (const std::bad_alloc &) {
        ::close(fd);  // out of memory: not even a name for it
        continue;
      }
      if (served[i].load() >= max_guests) {
        std::fprintf(stderr, "hira-router: refusing guest %s: %u guest processes of %s already\n",
                     origin.c_str(), max_guests, listeners[i].label.c_str());
        refuse_guest(fd, &refusing);
        continue;
      }
      ++served[i];
      ++sessions;
      try {
        std::atomic<unsigned> &count = served[i];
        hira::router::VmRegion *region = listeners[i].region;
        hira::router::Vm &vm = *listeners[i].vm;
        std::thread([fd, origin, &parts, &vm, &sessions, &count, region] {
          try {
            hira::router::GuestSession s(fd, parts, vm, origin, region);
            s.run();
          } catch (const std::exception &e) {  // no memory or threads left for this guest
            std::fprintf(stderr, "hira-router: guest %s dropped: %s\n", origin.c_str(), e.what());
          }
          --count;
          --sessions;
        }).detach();
      } catch (const std::exception &e) {  // no thread or memory for one more session
        std::fprintf(stderr, "hira-router: cannot serve guest %s: %s\n", origin.c_str(), e.what());
        ::close(fd);
        --served[i];
        --sessions;
      }
    }
  }
  for (const auto &l : listeners) {
    ::close(l.fd);
    if (l.endpoint.rfind("unix:", 0) == 0) ::unlink(l.endpoint.substr(5).c_str());
  }
  // Let sessions whose guests just exited finish their accounting.
  for (int i = 0; i < 1000 && sessions.load() > 0; ++i) ::usleep(1000);
  if (summary) stats.print(stderr);
  if (!stats_json.empty()) {
    std::ofstream out(stats_json);
    auto j = stats.json();
    j["vms"] = hira::router::vms_json(vms, resources);
    if (const auto set = admission.policies()) {
      j["policies"] = {{"loaded", set->names()},
                       {"runs", set->runs.load()},
                       {"run_ns", set->run_ns.load()},
                       {"failures", set->failures.load()}};
    }
    out << j.dump(2) << "\n";
    out.close();
    if (!out) {
      std::fprintf(stderr, "hira-router: cannot write the statistics to %s: %s\n",
                   stats_json.c_str(), std::strerror(errno));
      return 1;
    }
  }
  return 0;
}
