#include "guest_payload.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <regex>
#include <sstream>

#include "cpio_archive.h"
#include "hira/channel.h"

namespace hira::cli {

namespace {

std::string shell_quote(const std::string &s) {
  std::string q = "'";
  for (const char c : s) {
    if (c == '\'') {
      q += "'\\''";
    } else {
      q += c;
    }
  }
  return q + "'";
}

// PROGRAM as execvp would find it.
std::string find_program(const std::string &name) {
  if (name.find('/') != std::string::npos) return fs::absolute(name).string();
  const char *path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    const fs::path p = fs::path(dir.empty() ? "." : dir) / name;
    if (::access(p.c_str(), X_OK) == 0) return fs::absolute(p).string();
  }
  return "";
}

// What ldd says exe needs, with the guest libraries first on the path.
std::vector<std::string> shared_libraries(const std::string &exe, const std::string &ld_path) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return {};
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::dup2(out[1], 1);
    const int null = ::open("/dev/null", O_WRONLY);
    ::dup2(null, 2);
    ::setenv("LD_LIBRARY_PATH", ld_path.c_str(), 1);
    ::execlp("ldd", "ldd", exe.c_str(), nullptr);
    ::_exit(127);
  }
  ::close(out[1]);
  std::string text;
  char buf[4096];
  ssize_t n;
  while ((n = ::read(out[0], buf, sizeof(buf))) > 0) text.append(buf, static_cast<size_t>(n));
  ::close(out[0]);
  wait_for(pid);
  std::vector<std::string> libs;
  static const std::regex arrow(R"(=>\s+(/\S+)\s+\()"), loader(R"(^\s+(/\S+)\s+\()");
  std::stringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_search(line, m, arrow) || std::regex_search(line, m, loader)) {
      libs.push_back(m[1]);
    }
  }
  return libs;
}

}  // namespace

// The per-run archive: the programs and their libraries at their host
// paths, and the script the guest's init runs.
bool build_run_archive(const VmOptions &o, const std::string &guest_ld, std::vector<uint8_t> *out) {
  CpioArchive cpio;
  std::vector<std::string> programs;
  std::string main_program;
  if (!o.program.empty()) {
    main_program = find_program(o.program[0]);
    if (main_program.empty()) {
      std::fprintf(stderr, "hira vm: %s: not found\n", o.program[0].c_str());
      return false;
    }
    programs.push_back(main_program);
  }
  for (const auto &a : o.add) programs.push_back(fs::absolute(a).string());
  for (const auto &p : programs) {
    if (!cpio.add_host_file(p, p)) {
      std::fprintf(stderr, "hira vm: cannot read %s\n", p.c_str());
      return false;
    }
    for (const auto &lib : shared_libraries(p, guest_ld)) {
      if (!cpio.add_host_file(lib, lib)) {
        std::fprintf(stderr, "hira vm: cannot read %s (needed by %s)\n", lib.c_str(), p.c_str());
        return false;
      }
    }
  }
  std::string script = "# written by hira vm\n";
  script += "export HIRA_SOCKET=vsock:2:" + std::to_string(hira::kVsockPort) + "\n";
  script += "export LD_LIBRARY_PATH=" + shell_quote(guest_ld) + "\n";
  for (const auto &e : o.env) {
    const auto eq = e.find('=');
    if (eq == std::string::npos || eq == 0) {
      std::fprintf(stderr, "hira vm: --env %s: expected NAME=VALUE\n", e.c_str());
      return false;
    }
    script += "export " + e.substr(0, eq) + "=" + shell_quote(e.substr(eq + 1)) + "\n";
  }
  script += "cd /tmp\n";
  if (o.shell) {
    script +=
        "echo 'hira vm: a shell in the guest; HIRA_SOCKET reaches the host. exit ends the VM.' "
        ">/dev/ttyS0\n";
    // A session of its own with ttyS0 as its terminal (job control, ^C).
    script += "setsid sh -c 'exec sh -l </dev/ttyS0 >/dev/ttyS0 2>&1'\n";
    script += "status=0\n";
  } else {
    script += "stty -F /dev/ttyS0 raw -echo; stty -F /dev/ttyS1 raw -echo\n";
    std::string cmd = shell_quote(main_program);
    for (size_t i = 1; i < o.program.size(); ++i) cmd += " " + shell_quote(o.program[i]);
    script += cmd + " </dev/null >/dev/ttyS0 2>/dev/ttyS1\n";
    script += "status=$?\n";
  }
  cpio.add_file("/hira/run.sh", std::vector<uint8_t>(script.begin(), script.end()), 0644);
  *out = cpio.finish();
  return true;
}

}  // namespace hira::cli
