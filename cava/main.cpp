// cava: the LAPIS compiler.
//   cava gen SPEC --out DIR [-I DIR]...   generate every API-specific file
//   cava dump SPEC [-I DIR]...            print the model cava understood (JSON)
//   cava init HEADER [-o FILE]            draft a spec for every function of a header
//   cava descriptors                      list the descriptors cava understands
#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "emit.h"
#include "init.h"
#include "spec_parser.h"

#ifndef CAVA_CLANG_RESOURCE_DIR
#define CAVA_CLANG_RESOURCE_DIR ""
#endif
#ifndef CAVA_LAPIS_DIR
#define CAVA_LAPIS_DIR ""
#endif

namespace {

bool write_file(const std::filesystem::path &path, const std::string &text) {
  // Only rewrite on change, so the build does not recompile untouched stubs.
  std::ifstream old(path);
  if (old) {
    const std::string current((std::istreambuf_iterator<char>(old)), {});
    if (current == text) return true;
  }
  std::ofstream out(path);
  out << text;
  if (!out) {
    std::cerr << "cava: cannot write " << path << "\n";
    return false;
  }
  return true;
}

cava::ParseResult parse(const std::string &spec, const std::vector<std::string> &includes) {
  cava::ParseOptions o;
  o.spec_path = spec;
  o.include_dirs = includes;
  if (std::string(CAVA_LAPIS_DIR) != "") o.include_dirs.push_back(CAVA_LAPIS_DIR);
  o.resource_dir = CAVA_CLANG_RESOURCE_DIR;
  auto r = cava::parse_spec(o);
  for (const auto &e : r.errors) std::cerr << e << "\n";
  return r;
}

}  // namespace

int main(int argc, char **argv) {
  CLI::App app{"cava: generates hira's API-specific code from a LAPIS spec"};
  app.require_subcommand(1);

  std::string spec, out_dir, header, out_file, api_name;
  std::vector<std::string> includes;

  auto *gen =
      app.add_subcommand("gen", "generate guest stubs, server, router module, protocol header");
  gen->add_option("spec", spec, "the .lapis spec")->required()->check(CLI::ExistingFile);
  gen->add_option("--out,-o", out_dir, "output directory")->required();
  gen->add_option("-I", includes, "include directory for the vendor headers");
  std::string expect_soname;
  gen->add_option("--expect-soname", expect_soname, "fail unless the spec names this guest soname");

  auto *dump = app.add_subcommand("dump", "print the model cava builds from a spec, as JSON");
  dump->add_option("spec", spec, "the .lapis spec")->required()->check(CLI::ExistingFile);
  dump->add_option("-I", includes, "include directory for the vendor headers");

  auto *descriptors =
      app.add_subcommand("descriptors", "list the descriptors cava understands, one per line");
  auto *init = app.add_subcommand("init", "draft a spec for every function of a C header");
  init->add_option("header", header, "the vendor header")->required()->check(CLI::ExistingFile);
  init->add_option("-o", out_file, "write the draft here instead of stdout");
  init->add_option("--api", api_name, "API name (default: the header's base name)");
  init->add_option("-I", includes, "include directory");

  CLI11_PARSE(app, argc, argv);

  if (*descriptors) {
    for (const auto &name : cava::descriptor_names()) std::cout << name << "\n";
    return 0;
  }
  if (*init) {
    std::vector<std::string> errors;
    cava::InitOptions o{header, api_name, includes, CAVA_CLANG_RESOURCE_DIR};
    const std::string text = cava::draft_spec(o, &errors);
    for (const auto &e : errors) std::cerr << e << "\n";
    if (text.empty()) return 1;
    if (out_file.empty()) {
      std::cout << text;
    } else if (!write_file(out_file, text)) {
      return 1;
    }
    return 0;
  }

  auto result = parse(spec, includes);
  if (!result.ok()) {
    std::cerr << "cava: " << result.errors.size() << " error(s) in " << spec << "\n";
    return 1;
  }
  const auto &api = result.api;
  if (*dump) {
    std::cout << cava::emit_model_json(api);
    return 0;
  }
  if (!expect_soname.empty() && expect_soname != api.guest_soname) {
    std::cerr << spec << ":1: error: the spec's lapis_guest_soname is \"" << api.guest_soname
              << "\" but the build expects \"" << expect_soname
              << "\": make them agree (hira_add_api GUEST_SONAME in CMakeLists.txt)\n";
    return 1;
  }
  std::filesystem::create_directories(out_dir);
  const std::filesystem::path dir(out_dir);
  bool ok = write_file(dir / (api.name + "_protocol.h"), cava::emit_protocol_header(api));
  ok &= write_file(dir / (api.name + "_guest.cpp"), cava::emit_guest(api));
  ok &= write_file(dir / (api.name + "_server.cpp"), cava::emit_server(api));
  ok &= write_file(dir / (api.name + "_router.cpp"), cava::emit_router(api));
  ok &= write_file(dir / (api.name + "_guest.map"), cava::emit_version_script(api));
  ok &= write_file(dir / (api.name + "_icd.map"), cava::emit_icd_version_script(api));
  ok &= write_file(dir / (api.name + "_identity.cmake"), "set(HIRA_API_GUEST_SONAME \"" +
                                                             api.guest_soname +
                                                             "\")\n"
                                                             "set(HIRA_API_SERVER_LIBRARY \"" +
                                                             api.server_library + "\")\n");
  return ok ? 0 : 1;
}
