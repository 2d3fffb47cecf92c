#include "stats.h"

#include <fmt/core.h>

#include <algorithm>

namespace hira::router {

void Stats::add_api(const RouterModule &m) {
  std::lock_guard lock(mu_);
  auto &a = apis_[m.name];
  a.module = &m;
  a.functions = std::make_unique<FunctionStats[]>(m.function_count);
}

FunctionStats *Stats::functions(const RouterModule &m) {
  const auto it = apis_.find(std::string_view(m.name));
  return it == apis_.end() ? nullptr : it->second.functions.get();
}

void Stats::record_call(FunctionStats &f, bool async, uint64_t bytes) {
  f.calls.fetch_add(1, std::memory_order_relaxed);
  if (async) f.async_calls.fetch_add(1, std::memory_order_relaxed);
  f.bytes_in.fetch_add(bytes, std::memory_order_relaxed);
}

void Stats::record_reply(FunctionStats &f, uint64_t bytes, uint64_t ns, bool ok) {
  f.bytes_out.fetch_add(bytes, std::memory_order_relaxed);
  f.total_ns.fetch_add(ns, std::memory_order_relaxed);
  uint64_t seen = f.max_ns.load(std::memory_order_relaxed);
  while (ns > seen && !f.max_ns.compare_exchange_weak(seen, ns, std::memory_order_relaxed)) {
  }
  if (!ok) f.failed.fetch_add(1, std::memory_order_relaxed);
}

void Stats::record_rejected(FunctionStats &f) {
  f.rejected.fetch_add(1, std::memory_order_relaxed);
}

void Stats::forget_guest(const std::string &guest) {
  const std::string departed = guest.substr(0, guest.find('#')) + "/departed";
  std::lock_guard lock(mu_);
  for (auto &[name, api] : apis_) {
    const auto it = api.guests.find(guest);
    if (it == api.guests.end()) continue;
    auto &total = api.guests[departed];
    total.resize(it->second.size());
    for (size_t r = 0; r < it->second.size(); ++r) {
      total[r].current += it->second[r].current;  // held when it left: freed with its server
      total[r].peak = std::max(total[r].peak, it->second[r].peak);
      total[r].total += it->second[r].total;
    }
    api.guests.erase(it);
  }
}

void Stats::record_resource(const RouterModule &m, const std::string &guest, uint32_t rc,
                            int64_t delta) {
  std::lock_guard lock(mu_);
  auto &v = apis_[m.name].guests[guest];
  v.resize(m.resource_count);
  auto &r = v.at(rc);
  r.current += delta;
  r.peak = std::max(r.peak, r.current);
  if (delta > 0) r.total += static_cast<uint64_t>(delta);
}

void Stats::print(FILE *out) const {
  std::lock_guard lock(mu_);
  for (const auto &[name, a] : apis_) {
    uint64_t total = 0;
    for (uint32_t i = 0; i < a.module->function_count; ++i) {
      total += a.functions[i].calls + a.functions[i].rejected;
    }
    if (total == 0) continue;
    fmt::print(out, "\nhira: calls to the {} API\n", name);
    fmt::print(out, "{:<28} {:>9} {:>7} {:>8} {:>12} {:>12} {:>10}\n", "function", "calls", "async",
               "failed", "bytes in", "bytes out", "avg us");
    for (uint32_t i = 0; i < a.module->function_count; ++i) {
      const auto &f = a.functions[i];
      if (f.calls == 0 && f.rejected == 0) continue;
      const uint64_t sync = f.calls - f.async_calls;
      const double avg_us = sync == 0 ? 0.0 : static_cast<double>(f.total_ns) / sync / 1000.0;
      fmt::print(out, "{:<28} {:>9} {:>7} {:>8} {:>12} {:>12} {:>10.1f}\n",
                 a.module->function_names[i], f.calls.load(), f.async_calls.load(),
                 f.failed + f.rejected, f.bytes_in.load(), f.bytes_out.load(), avg_us);
    }
    for (const auto &[guest, rs] : a.guests) {
      for (uint32_t r = 0; r < rs.size(); ++r) {
        const bool cont = a.module->resource_continuous[r] != 0;
        if (cont) {
          fmt::print(out, "resource {:<20} guest {:<14} peak {:>12}  held at exit {:>12}\n",
                     a.module->resource_names[r], guest, rs[r].peak, rs[r].current);
        } else {
          fmt::print(out, "resource {:<20} guest {:<14} used {:>12}\n", a.module->resource_names[r],
                     guest, rs[r].total);
        }
      }
    }
  }
}

nlohmann::json Stats::json() const {
  std::lock_guard lock(mu_);
  nlohmann::json j = nlohmann::json::object();
  for (const auto &[name, a] : apis_) {
    auto &aj = j[name];
    aj["functions"] = nlohmann::json::object();
    for (uint32_t i = 0; i < a.module->function_count; ++i) {
      const auto &f = a.functions[i];
      if (f.calls == 0 && f.rejected == 0) continue;
      aj["functions"][a.module->function_names[i]] = {
          {"calls", f.calls.load()},       {"async", f.async_calls.load()},
          {"rejected", f.rejected.load()}, {"failed", f.failed.load()},
          {"bytes_in", f.bytes_in.load()}, {"bytes_out", f.bytes_out.load()},
          {"total_ns", f.total_ns.load()}, {"max_ns", f.max_ns.load()}};
    }
    aj["resources"] = nlohmann::json::object();
    for (const auto &[guest, rs] : a.guests) {
      for (uint32_t r = 0; r < rs.size(); ++r) {
        aj["resources"][guest][a.module->resource_names[r]] = {
            {"continuous", a.module->resource_continuous[r] != 0},
            {"current", rs[r].current},
            {"peak", rs[r].peak},
            {"total", rs[r].total}};
      }
    }
  }
  return j;
}

}  // namespace hira::router
