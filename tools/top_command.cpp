#include "top_command.h"

#include <fmt/core.h>
#include <httplib.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

namespace hira::cli {

void add_top_options(CLI::App *cmd, TopOptions *o) {
  cmd->add_option("--metrics", o->metrics, "the router's --metrics HOST:PORT")
      ->capture_default_str();
  cmd->add_option("--interval", o->interval, "seconds between screens")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd->add_option("-n,--count", o->count, "screens to show, then exit (0: until Ctrl-C)");
}

namespace {

std::string human_bytes(double b) {
  const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return fmt::format("{:.1f} {}", b, units[u]);
}

double num(const nlohmann::json &j, const char *key) {
  const auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
}

}  // namespace

int run_top(const TopOptions &o) {
  const auto colon = o.metrics.rfind(':');
  if (colon == std::string::npos) {
    std::fprintf(stderr, "hira top: --metrics %s: expected HOST:PORT\n", o.metrics.c_str());
    return 2;
  }
  httplib::Client client(o.metrics.substr(0, colon), std::stoi(o.metrics.substr(colon + 1)));
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(5, 0);
  const bool tty = ::isatty(1) != 0;
  nlohmann::json before;
  auto at_before = std::chrono::steady_clock::now();
  for (unsigned shown = 0; o.count == 0 || shown < o.count;) {
    const auto res = client.Get("/metrics.json");
    if (!res || res->status != 200) {
      std::fprintf(stderr, "hira top: no router metrics at http://%s/metrics.json (%s)\n",
                   o.metrics.c_str(), res ? "bad status" : httplib::to_string(res.error()).c_str());
      return 1;
    }
    nlohmann::json now = nlohmann::json::parse(res->body, nullptr, false);
    if (now.is_discarded() || !now.is_object()) {
      std::fprintf(stderr, "hira top: the router's metrics do not parse\n");
      return 1;
    }
    const auto at = std::chrono::steady_clock::now();
    const double dt = std::chrono::duration<double>(at - at_before).count();
    if (!before.is_null()) {
      if (tty) std::fputs("\x1b[H\x1b[2J", stdout);
      std::printf("hira top - %s - every %.1f s\n\n", o.metrics.c_str(), o.interval);
      std::printf("%-16s %6s %6s %10s %8s %12s %10s %8s %9s\n", "VM", "share", "guests", "calls/s",
                  "device%", "dev memory", "MB/s in", "queued%", "refusals");
      double device_total = 0;
      for (auto &[vm, v] : now.items()) {
        device_total +=
            num(v, "device_ns") - (before.contains(vm) ? num(before[vm], "device_ns") : 0);
      }
      for (auto &[vm, v] : now.items()) {
        const nlohmann::json &b = before.contains(vm) ? before[vm] : nlohmann::json::object();
        auto rate = [&](const char *key) { return (num(v, key) - num(b, key)) / dt; };
        const double device = num(v, "device_ns") - num(b, "device_ns");
        double memory = 0;
        if (v.contains("held") && v["held"].contains("device_memory")) {
          memory = v["held"]["device_memory"].get<double>();
        }
        std::printf("%-16s %6.0f %6.0f %10.0f %7.1f%% %12s %10.2f %7.1f%% %9.0f\n", vm.c_str(),
                    num(v, "share"), num(v, "guests"), rate("calls"),
                    device_total > 0 ? 100.0 * device / device_total : 0.0,
                    human_bytes(memory).c_str(), rate("bytes_in") / 1e6,
                    100.0 * rate("queue_delay_ns") / 1e9,
                    num(v, "refused_quota") + num(v, "refused_policy"));
      }
      std::printf(
          "\ndevice%%: each VM's part of the device time measured in the interval; "
          "queued%%: time its commands were held by policies\n");
      std::fflush(stdout);
      ++shown;
    }
    before = std::move(now);
    at_before = at;
    if (o.count != 0 && shown >= o.count) break;
    std::this_thread::sleep_for(std::chrono::duration<double>(o.interval));
  }
  return 0;
}

}  // namespace hira::cli
