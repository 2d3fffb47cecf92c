// What the router shows operators while it runs: per-VM usage in the
// Prometheus text format (GET /metrics on --metrics HOST:PORT), and the same
// numbers as JSON for --stats-json.
#pragma once

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "admission.h"
#include "resource_ids.h"
#include "vm.h"

namespace httplib {
class Server;
}

namespace hira::router {

std::string render_metrics(const VmTable &vms, const ResourceIds &ids, const Admission &admission);
nlohmann::json vms_json(const VmTable &vms, const ResourceIds &ids);

class MetricsServer {
 public:
  MetricsServer(const VmTable &vms, const ResourceIds &ids, const Admission &admission);
  ~MetricsServer();
  // Serves on HOST:PORT from a thread of its own; false with *error if it cannot bind.
  bool start(const std::string &host_port, std::string *error);

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  const VmTable &vms_;
  const ResourceIds &ids_;
  const Admission &admission_;
};

}  // namespace hira::router
