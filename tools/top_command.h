// hira top: a router's per-VM usage, live in a terminal (from --metrics).
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace hira::cli {

struct TopOptions {
  std::string metrics = "127.0.0.1:9400";  // the router's --metrics HOST:PORT
  double interval = 1.0;
  unsigned count = 0;  // screens to show (0: until interrupted)
};

void add_top_options(CLI::App *cmd, TopOptions *o);
int run_top(const TopOptions &o);

}  // namespace hira::cli
