// Reads a LAPIS spec with Clang and builds the cava model.
#pragma once

#include <clang/Frontend/ASTUnit.h>

#include <memory>
#include <string>
#include <vector>

#include "model.h"

namespace cava {

struct ParseOptions {
  std::string spec_path;
  std::vector<std::string> include_dirs;
  std::string resource_dir;  // Clang's builtin headers (stddef.h, ...)
};

struct ParseResult {
  std::unique_ptr<clang::ASTUnit> ast;  // owns every clang::Decl the model points to
  Api api;
  std::vector<std::string> errors;  // "file:line: error: ..." each
  bool ok() const { return ast != nullptr && errors.empty(); }
};

ParseResult parse_spec(const ParseOptions &options);

// The descriptors cava understands (lapis.h's `__lapis_<name>`), sorted.
std::vector<std::string> descriptor_names();

}  // namespace cava
