#include "init.h"

#include <clang/AST/ASTContext.h>
#include <clang/Basic/SourceManager.h>
#include <clang/Frontend/ASTUnit.h>
#include <clang/Tooling/Tooling.h>

#include <fstream>
#include <set>
#include <sstream>

namespace cava {

using namespace clang;

namespace {

std::string base_name(const std::string &path) {
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool is_opaque_pointer(QualType t) {
  const QualType c = t.getCanonicalType();
  if (!c->isPointerType()) return false;
  const QualType p = c->getPointeeType();
  return p->isRecordType() && p->isIncompleteType();
}

bool holds_pointers(QualType t) {
  const auto *rt = t.getCanonicalType()->getAs<RecordType>();
  const auto *def = rt != nullptr ? rt->getDecl()->getDefinition() : nullptr;
  if (def == nullptr) return false;
  for (const auto *f : def->fields()) {
    const QualType ft = f->getType().getCanonicalType();
    if (ft->isPointerType() || holds_pointers(ft)) return true;
  }
  return false;
}

class Drafter {
 public:
  explicit Drafter(ASTContext &ctx) : ctx_(ctx), pp_(ctx.getLangOpts()) {}

  std::string name(QualType t) const { return t.getAsString(pp_); }

  // The descriptors for one argument, or "" when the default is safe.
  std::string describe(const ParmVarDecl *p) {
    const QualType t = p->getType();
    const QualType c = t.getCanonicalType();
    const std::string n = p->getNameAsString();
    if (is_opaque_pointer(t)) {
      handle_types_.insert(name(t));
      return "";
    }
    if (c->isFunctionPointerType()) {
      return "lapis_todo(\"describe the callback: write a callback_decl for its type and "
             "callback(decl); mark the pointer it passes back with userdata\");";
    }
    if (!c->isPointerType()) return "";  // scalars and structs go by value
    const QualType pointee = c->getPointeeType();
    if (pointee.isConstQualified()) {
      if (pointee->isVoidType()) {
        return "in; lapis_todo(\"how many bytes does " + n + " point to? write buffer(n)\");";
      }
      if (pointee->isCharType()) return "in; buffer(strlen(" + n + ") + 1);";
      if (holds_pointers(pointee)) {
        return "in; lapis_todo(\"" + n +
               " points to a struct holding pointers, which cava "
               "cannot marshal: type_cast it to a flat type or leave the function out\");";
      }
      if (is_opaque_pointer(pointee)) {
        return "in; lapis_todo(\"how many handles does " + n + " hold? write buffer(n)\");";
      }
      if (pointee->isPointerType()) {
        return "in; lapis_todo(\"" + n +
               " is an array of pointers: write buffer(count) and "
               "element { buffer(...); }\");";
      }
      return "in;";
    }
    return "lapis_todo(\"does the callee read " + n +
           ", write it, or both? write in; / out; / "
           "in; out; and buffer(n) if it is an array\");";
  }

  std::string function(const FunctionDecl *f) {
    std::ostringstream os;
    std::string sig = name(f->getReturnType()) + " " + f->getNameAsString() + "(";
    for (unsigned i = 0; i < f->getNumParams(); ++i) {
      const auto *p = f->getParamDecl(i);
      std::string pn = p->getNameAsString();
      if (pn.empty()) pn = "arg" + std::to_string(i);
      // print() places the name inside declarators such as void (*pfn)(int).
      std::string decl;
      llvm::raw_string_ostream os(decl);
      p->getType().print(os, pp_, pn);
      sig += (i != 0 ? ", " : "") + os.str();
    }
    if (f->isVariadic()) {
      return "/* " + sig + ", ...): variadic functions cannot be remoted; left out. */\n";
    }
    if (f->getNumParams() == 0) sig += "void";
    sig += ")";
    os << sig << " {\n";
    const QualType r = f->getReturnType().getCanonicalType();
    if (r->isPointerType() && !is_opaque_pointer(f->getReturnType())) {
      os << "  lapis_todo(\"" << f->getNameAsString()
         << " returns a pointer: if it is an object, write return_value { handle; }\");\n";
    } else if (is_opaque_pointer(f->getReturnType())) {
      handle_types_.insert(name(f->getReturnType()));
    } else if (!r->isVoidType()) {
      return_types_.insert(name(f->getReturnType()));
    }
    for (unsigned i = 0; i < f->getNumParams(); ++i) {
      const auto *p = f->getParamDecl(i);
      const std::string d = describe(p);
      if (d.empty()) continue;
      std::string pn = p->getNameAsString();
      if (pn.empty()) pn = "arg" + std::to_string(i);
      os << "  argument(" << pn << ") { " << d << " }\n";
    }
    os << "}\n";
    return os.str();
  }

  std::string preamble() const {
    std::ostringstream os;
    for (const auto &h : handle_types_) os << "type(" << h << ") { handle; }\n";
    for (const auto &t : return_types_) {
      os << "type(" << t << ") { lapis_todo(\"which value means the call could not run? write "
         << "error_value(V); and success(V) for the value that means success\"); }\n";
    }
    return os.str();
  }

 private:
  ASTContext &ctx_;
  PrintingPolicy pp_;
  std::set<std::string> handle_types_, return_types_;
};

}  // namespace

std::string draft_spec(const InitOptions &options, std::vector<std::string> *errors) {
  std::ifstream in(options.header_path);
  if (!in) {
    errors->push_back(options.header_path + ":1: error: cannot read the header");
    return "";
  }
  std::stringstream ss;
  ss << in.rdbuf();
  std::vector<std::string> args = {"-x", "c", "-std=gnu11", "-fsyntax-only"};
  if (!options.resource_dir.empty()) {
    args.push_back("-resource-dir");
    args.push_back(options.resource_dir);
  }
  for (const auto &d : options.include_dirs) args.push_back("-I" + d);
  auto ast = tooling::buildASTFromCodeWithArgs(ss.str(), args, options.header_path, "cava");
  if (!ast || ast->getDiagnostics().hasErrorOccurred()) {
    errors->push_back(options.header_path + ":1: error: the header does not compile as C");
    return "";
  }
  auto &ctx = ast->getASTContext();
  const auto &sm = ctx.getSourceManager();
  Drafter drafter(ctx);
  std::ostringstream body;
  std::set<std::string> seen;
  size_t count = 0;
  for (const Decl *d : ctx.getTranslationUnitDecl()->decls()) {
    const auto *f = dyn_cast<FunctionDecl>(d);
    if (f == nullptr || !sm.isWrittenInMainFile(sm.getExpansionLoc(f->getLocation()))) continue;
    if (!seen.insert(f->getNameAsString()).second) continue;
    body << "\n" << drafter.function(f);
    ++count;
  }
  if (count == 0) {
    errors->push_back(options.header_path + ":1: error: the header declares no function");
    return "";
  }
  std::string base = base_name(options.header_path);
  std::string api = options.api_name;
  if (api.empty()) api = base.substr(0, base.find('.'));
  std::ostringstream os;
  os << "/* Draft LAPIS spec for " << base << ", written by `cava init`.\n"
     << " * Every lapis_todo marks a decision cava could not make safely; cava refuses\n"
     << " * the spec until each is replaced by descriptors. See docs/lapis.md. */\n"
     << "#include <" << base << ">\n\n#include \"lapis.h\"\n\n"
     << "lapis_api(\"" << api << "\", \"0.1\");\n"
     << "lapis_guest_soname(\"lib" << api << ".so.1\");\n"
     << "lapis_server_library(\"lib" << api << ".so.1\");\n\n"
     << drafter.preamble() << body.str();
  return os.str();
}

}  // namespace cava
