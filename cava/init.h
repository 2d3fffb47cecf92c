// `cava init HEADER`: drafts a LAPIS spec for every function of a C header.
#pragma once

#include <string>
#include <vector>

namespace cava {

struct InitOptions {
  std::string header_path;
  std::string api_name;  // defaults to the header's base name
  std::vector<std::string> include_dirs;
  std::string resource_dir;
};

// Returns the draft spec text, or "" with errors filled.
std::string draft_spec(const InitOptions &options, std::vector<std::string> *errors);

}  // namespace cava
