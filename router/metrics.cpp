#include "metrics.h"

#include <fmt/core.h>
#include <httplib.h>

#include <thread>

namespace hira::router {

namespace {

// A label value as the text format wants it.
std::string label(const std::string &v) {
  std::string out;
  for (const char c : v) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

class Text {
 public:
  void family(const char *name, const char *type, const char *help) {
    out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
  }
  template <typename Number>
  void sample(const char *name, const std::string &labels, Number v) {
    out_ += fmt::format("{}{{{}}} {}\n", name, labels, v);
  }
  std::string take() { return std::move(out_); }

 private:
  std::string out_;
};

uint64_t get(const std::atomic<uint64_t> &a) { return a.load(std::memory_order_relaxed); }

}  // namespace

std::string render_metrics(const VmTable &vms, const ResourceIds &ids, const Admission &admission) {
  Text t;
  auto per_vm = [&](const char *name, const char *type, const char *help, auto value) {
    t.family(name, type, help);
    for (const auto &vm : vms.all()) t.sample(name, "vm=\"" + label(vm->name) + "\"", value(*vm));
  };
  per_vm("hira_guests", "gauge", "Guest processes connected.",
         [](const Vm &vm) { return uint64_t{vm.ledger.guests.load()}; });
  per_vm("hira_vm_share", "gauge", "The VM's weight for device time (--share).",
         [](const Vm &vm) { return uint64_t{vm.weight}; });
  per_vm("hira_calls_total", "counter", "Commands admitted to the VM's API servers.",
         [](const Vm &vm) { return get(vm.ledger.calls); });
  t.family("hira_bytes_total", "counter", "Command bytes, guest to server (in) and back (out).");
  for (const auto &vm : vms.all()) {
    const std::string l = "vm=\"" + label(vm->name) + "\"";
    t.sample("hira_bytes_total", l + ",direction=\"in\"", get(vm->ledger.bytes_in));
    t.sample("hira_bytes_total", l + ",direction=\"out\"", get(vm->ledger.bytes_out));
  }
  per_vm("hira_device_time_seconds_total", "counter", "Device time the VM's API servers measured.",
         [](const Vm &vm) { return static_cast<double>(get(vm.ledger.device_ns)) / 1e9; });
  per_vm("hira_queue_delay_seconds_total", "counter",
         "Time the VM's commands waited in its queue because a policy held them.",
         [](const Vm &vm) { return static_cast<double>(get(vm.ledger.queue_delay_ns)) / 1e9; });
  per_vm("hira_queue_waits_total", "counter", "Commands a policy held before they ran.",
         [](const Vm &vm) { return get(vm.ledger.waits); });
  t.family("hira_refusals_total", "counter", "Commands refused by policies.");
  for (const auto &vm : vms.all()) {
    const std::string l = "vm=\"" + label(vm->name) + "\"";
    t.sample("hira_refusals_total", l + ",reason=\"quota\"", get(vm->ledger.refused_quota));
    t.sample("hira_refusals_total", l + ",reason=\"policy\"", get(vm->ledger.refused_policy));
  }
  t.family("hira_resource_held", "gauge",
           "What the VM holds now of each continuous resource (the specs' units).");
  for (const auto &vm : vms.all()) {
    for (uint32_t r = 0; r < ids.count(); ++r) {
      if (!ids.continuous(r)) continue;
      t.sample("hira_resource_held",
               "vm=\"" + label(vm->name) + "\",resource=\"" + label(ids.name(r)) + "\"",
               vm->ledger.held[r].load(std::memory_order_relaxed));
    }
  }
  t.family("hira_resource_used_total", "counter",
           "What the VM consumed of each instantaneous resource (the specs' units).");
  for (const auto &vm : vms.all()) {
    for (uint32_t r = HIRA_RC_DEVICE_TIME; r < ids.count(); ++r) {
      if (ids.continuous(r)) continue;
      t.sample("hira_resource_used_total",
               "vm=\"" + label(vm->name) + "\",resource=\"" + label(ids.name(r)) + "\"",
               get(vm->ledger.used[r]));
    }
  }
  const auto policies = admission.policies();
  t.family("hira_policy_loaded", "gauge", "eBPF policies in force.");
  if (policies) {
    for (const auto &name : policies->names()) {
      t.sample("hira_policy_loaded", "policy=\"" + label(name) + "\"", uint64_t{1});
    }
  }
  t.family("hira_policy_runs_total", "counter", "eBPF hook runs (BPF_PROG_TEST_RUN).");
  t.sample("hira_policy_runs_total", "", policies ? get(policies->runs) : 0);
  t.family("hira_policy_run_seconds_total", "counter", "Time spent running eBPF hooks.");
  t.sample("hira_policy_run_seconds_total", "",
           policies ? static_cast<double>(get(policies->run_ns)) / 1e9 : 0.0);
  t.family("hira_policy_failures_total", "counter", "Hook runs the kernel refused.");
  t.sample("hira_policy_failures_total", "", policies ? get(policies->failures) : 0);
  return t.take();
}

nlohmann::json vms_json(const VmTable &vms, const ResourceIds &ids) {
  auto j = nlohmann::json::object();
  for (const auto &vm : vms.all()) {
    const VmLedger &l = vm->ledger;
    auto &v = j[vm->name];
    v["share"] = vm->weight;
    v["calls"] = get(l.calls);
    v["bytes_in"] = get(l.bytes_in);
    v["bytes_out"] = get(l.bytes_out);
    v["device_ns"] = get(l.device_ns);
    v["queue_delay_ns"] = get(l.queue_delay_ns);
    v["waits"] = get(l.waits);
    v["refused_quota"] = get(l.refused_quota);
    v["refused_policy"] = get(l.refused_policy);
    for (uint32_t r = 0; r < ids.count(); ++r) {
      if (ids.continuous(r)) {
        v["held"][ids.name(r)] = l.held[r].load(std::memory_order_relaxed);
      } else if (r >= HIRA_RC_DEVICE_TIME) {
        v["used"][ids.name(r)] = get(l.used[r]);
      }
    }
    for (const auto &[rc, amount] : vm->limits) v["quota"][ids.name(rc)] = amount;
  }
  return j;
}

MetricsServer::MetricsServer(const VmTable &vms, const ResourceIds &ids, const Admission &admission)
    : server_(std::make_unique<httplib::Server>()), vms_(vms), ids_(ids), admission_(admission) {}

MetricsServer::~MetricsServer() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

bool MetricsServer::start(const std::string &host_port, std::string *error) {
  const auto colon = host_port.rfind(':');
  int port = 0;
  try {
    port = colon == std::string::npos ? -1 : std::stoi(host_port.substr(colon + 1));
  } catch (const std::exception &) {
    port = -1;
  }
  if (port < 0 || port > 65535) {
    *error = "--metrics " + host_port + ": expected HOST:PORT";
    return false;
  }
  const std::string host = host_port.substr(0, colon);
  server_->Get("/metrics", [this](const httplib::Request &, httplib::Response &res) {
    res.set_content(render_metrics(vms_, ids_, admission_), "text/plain; version=0.0.4");
  });
  server_->Get("/metrics.json", [this](const httplib::Request &, httplib::Response &res) {
    res.set_content(vms_json(vms_, ids_).dump(), "application/json");
  });
  // A scrape is small: a few threads are plenty, and a client cannot tie
  // the router up (httplib reads with timeouts).
  server_->new_task_queue = [] { return new httplib::ThreadPool(2); };
  server_->set_read_timeout(5, 0);
  server_->set_write_timeout(5, 0);
  if (!server_->bind_to_port(host, port)) {
    *error = "--metrics " + host_port + ": cannot listen there";
    return false;
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  return true;
}

}  // namespace hira::router
