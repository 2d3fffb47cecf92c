#include "spec_parser.h"

#include <clang/AST/ASTContext.h>
#include <clang/AST/Attr.h>
#include <clang/AST/RecursiveASTVisitor.h>
#include <clang/Basic/SourceManager.h>
#include <clang/Lex/Lexer.h>
#include <clang/Tooling/Tooling.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>

#include "emit.h"

namespace cava {

using namespace clang;

// Descriptors as written in one scope (the parser's, before they resolve to a
// Value). Unset fields inherit from type(T).
struct Descriptors {
  std::optional<bool> in, out, handle, nullable, no_copy, lifetime_manual, allocate, deallocate,
      userdata, error_code;
  std::optional<Expr> buffer;
  std::optional<clang::QualType> type_cast;
  const clang::FunctionDecl *callback = nullptr;
  std::optional<Expr> invalid_handle;
  std::optional<Expr> handle_constants;
  std::optional<clang::QualType> accepts_handle;
  std::optional<Expr> error_value;
  std::optional<Expr> quota_error;
  std::optional<Expr> server_value;
  std::optional<Expr> guest_value;
  std::optional<Expr> map_into;
  std::optional<Expr> map_reads, map_writes;
  std::optional<Expr> depends_on;
  std::optional<Expr> success;  // only in type(T) scopes
  std::optional<Deferred> deferred;
  std::shared_ptr<Descriptors> element;
  struct Conditional {
    Expr pred;
    std::shared_ptr<Descriptors> then_d, else_d;
  };
  std::vector<Conditional> conds;
  Loc loc;
  bool empty() const;
};

bool Descriptors::empty() const {
  return !in && !out && !handle && !nullable && !handle_constants && !accepts_handle && !no_copy &&
         !lifetime_manual && !allocate && !deallocate && !userdata && !buffer && !type_cast &&
         callback == nullptr && !invalid_handle && !error_value && !quota_error && !success &&
         !element && conds.empty();
}

namespace {

enum class Scope { Function, Value, Type, Callback };

std::string annotation(const Decl *d) {
  for (const auto *a : d->specific_attrs<AnnotateAttr>()) {
    const std::string s = a->getAnnotation().str();
    if (s.rfind("lapis_", 0) == 0) return s;
  }
  return "";
}

// Collects what an expression reads.
// The first `*` or `+` in a size expression whose result is not a
// constant: it wraps around 2^64 where lapis_mul/lapis_add saturate, and a
// wrapped size lets a short buffer pass for a huge one.
class WrappingArithmetic : public RecursiveASTVisitor<WrappingArithmetic> {
 public:
  explicit WrappingArithmetic(ASTContext &ctx) : ctx_(ctx) {}
  bool VisitBinaryOperator(BinaryOperator *b) {
    if (found_ != nullptr || (b->getOpcode() != BO_Mul && b->getOpcode() != BO_Add)) return true;
    if (!b->isValueDependent() && b->isEvaluatable(ctx_)) return true;  // a constant
    if (b->getOpcode() == BO_Add && (is_strlen_plus_constant(b->getLHS(), b->getRHS()) ||
                                     is_strlen_plus_constant(b->getRHS(), b->getLHS()))) {
      return true;  // strlen counts bytes the server holds: it cannot reach 2^64
    }
    found_ = b;
    return false;
  }
  const BinaryOperator *found() const { return found_; }

 private:
  bool is_strlen_plus_constant(const clang::Expr *call, const clang::Expr *constant) const {
    const auto *c = dyn_cast<CallExpr>(call->IgnoreParenImpCasts());
    const FunctionDecl *f = c != nullptr ? c->getDirectCallee() : nullptr;
    return f != nullptr && f->getName() == "strlen" && !constant->isValueDependent() &&
           constant->isEvaluatable(ctx_);
  }

  ASTContext &ctx_;
  const BinaryOperator *found_ = nullptr;
};

class ExprScanner : public RecursiveASTVisitor<ExprScanner> {
 public:
  explicit ExprScanner(Expr &e) : out_(e) {}
  bool VisitDeclRefExpr(DeclRefExpr *r) {
    if (const auto *p = dyn_cast<ParmVarDecl>(r->getDecl())) out_.args.insert(p->getNameAsString());
    return true;
  }
  bool VisitCallExpr(CallExpr *c) {
    out_.has_calls = true;
    if (const auto *f = c->getDirectCallee()) {
      const auto n = f->getName();
      if (n == "__lapis_index") out_.uses_index = true;
      if (n == "__lapis_metadata") out_.uses_metadata = true;
    }
    return true;
  }

 private:
  Expr &out_;
};

class Parser {
 public:
  Parser(ASTUnit &ast, Api &api, std::vector<std::string> &errors)
      : ctx_(ast.getASTContext()), sm_(ctx_.getSourceManager()), api_(api), errors_(errors) {}

  void run() {
    auto *tu = ctx_.getTranslationUnitDecl();
    // Pass 1: declarations that functions refer to.
    for (Decl *d : tu->decls()) {
      if (!in_spec(d)) continue;
      if (auto *v = dyn_cast<VarDecl>(d)) read_var(v);
      if (auto *t = dyn_cast<TypedefNameDecl>(d)) read_typedef(t);
      if (auto *f = dyn_cast<FunctionDecl>(d)) {
        const auto a = annotation(f);
        if (a == "lapis_type" && f->hasBody()) read_type_scope(f);
        if (a == "lapis_argument_default" && f->hasBody()) read_argument_default(f);
        if (a == "lapis_callback" && f->hasBody()) callback_decls_.push_back(f);
        if (a == "lapis_utility") api_.utilities.push_back(expanded_text(f->getSourceRange()));
        if (a == "lapis_guest_utility") {
          api_.guest_utilities.push_back(expanded_text(f->getSourceRange()));
        }
        if (a == "lapis_guest_export") read_guest_export(f);
        if (a.rfind("lapis_guest_export_as=", 0) == 0) {
          read_guest_export(f, a.substr(std::strlen("lapis_guest_export_as=")));
        }
        if (a == "lapis_export_variants" && f->hasBody()) read_export_variants(f);
      }
      if (isa<RecordDecl, EnumDecl>(d) || (isa<TypedefNameDecl>(d) && !is_marker_name(d))) {
        if (!cast<NamedDecl>(d)->getName().startswith("__lapis")) {
          spec_decls_.push_back(source_text(d->getSourceRange()) + ";");
        }
      }
    }
    for (const auto *f : callback_decls_) read_callback(f);
    // Functions, in the spec's order: definitions, and lists of functions
    // (functions(f, g) { ... }: a marker with the names, then the body).
    std::vector<std::pair<const FunctionDecl *, Loc>> listed;
    for (Decl *d : tu->decls()) {
      auto *f = dyn_cast<FunctionDecl>(d);
      if (f == nullptr || !in_spec(f) || !f->hasBody()) continue;
      const auto a = annotation(f);
      if (a == "lapis_functions") {
        listed = read_function_list(f);
      } else if (a == "lapis_functions_body") {
        for (const auto &[fd, at] : listed) read_function(fd, f->getBody(), &at);
        listed.clear();
      } else if (a.empty() && !f->getName().startswith("__lapis")) {
        read_function(f, f->getBody(), nullptr);
      }
    }
    if (!api_.unsupported_prefix.empty()) {
      std::set<std::string> seen;
      for (const auto &f : api_.functions) seen.insert(f.name);
      read_unsupported(tu, seen);
    }
    if (api_.name.empty()) {
      error(
          Loc{api_.spec_file, 1},
          "the spec names no API: write lapis_api(\"name\", \"version\"); after including lapis.h");
    }
    if (api_.guest_soname.empty()) {
      error(Loc{api_.spec_file, 1},
            "the spec names no guest library: write lapis_guest_soname(\"libfoo.so.1\");");
    }
    if (api_.server_library.empty()) {
      error(Loc{api_.spec_file, 1},
            "the spec names no server library: write lapis_server_library(\"libfoo.so.1\");");
    }
    if (api_.functions.empty()) error(Loc{api_.spec_file, 1}, "the spec describes no function");
    for (const auto &[name, at] : accepted_handles_) {
      const auto spec = type_specs_.find(name);
      if (spec != type_specs_.end() && spec->second->handle.value_or(false)) {
        register_handle_type(name);  // its wire type exists even where no call takes it
        continue;
      }
      error(at, "accepts_handle(" + name + "): " + name +
                    " is not a handle type of the spec; declare type(" + name + ") { handle; }");
    }
    api_.declarations = spec_decls_;
    api_.signature = model_signature(api_);
  }

 private:
  // ---- helpers -----------------------------------------------------------
  bool in_spec(const Decl *d) const {
    return sm_.isWrittenInMainFile(sm_.getExpansionLoc(d->getLocation()));
  }
  static bool is_marker_name(const Decl *d) {
    const auto *n = dyn_cast<NamedDecl>(d);
    return n != nullptr && n->getName().startswith("__lapis");
  }
  Loc loc_of(SourceLocation l) const {
    const auto p = sm_.getPresumedLoc(sm_.getExpansionLoc(l));
    if (p.isInvalid()) return {api_.spec_file, 0};
    return {p.getFilename(), p.getLine()};
  }
  void error(const Loc &l, const std::string &msg) {
    // (a list's body is read once per function it lists: say each thing once)
    std::string e = l.str() + ": error: " + msg;
    if (std::find(errors_.begin(), errors_.end(), e) == errors_.end()) errors_.push_back(e);
  }
  // Where a token was written: a macro's argument where it was written.
  Loc written_loc(SourceLocation l) const {
    const auto p = sm_.getPresumedLoc(file_loc(l, false));
    if (p.isInvalid()) return {api_.spec_file, 0};
    return {p.getFilename(), p.getLine()};
  }
  std::string source_text(SourceRange r) const {
    const auto range = CharSourceRange::getTokenRange(sm_.getSpellingLoc(r.getBegin()),
                                                      sm_.getSpellingLoc(r.getEnd()));
    return Lexer::getSourceText(range, sm_, ctx_.getLangOpts()).str();
  }
  SourceLocation file_loc(SourceLocation l, bool is_end) const {
    while (l.isMacroID()) {
      if (sm_.isMacroArgExpansion(l)) {
        l = sm_.getImmediateSpellingLoc(l);
      } else {
        const auto r = sm_.getImmediateExpansionRange(l);
        l = is_end ? r.getEnd() : r.getBegin();
      }
    }
    return l;
  }
  // Is l a token of the body of a macro the spec itself defines? Such text
  // cannot be copied from the spec (its words are the macro's parameters),
  // unlike a macro argument or a lapis.h macro's use.
  bool in_spec_macro_body(SourceLocation l) const {
    while (l.isMacroID()) {
      if (sm_.isMacroArgExpansion(l)) {
        l = sm_.getImmediateSpellingLoc(l);
        continue;
      }
      const SourceLocation spelled = sm_.getImmediateSpellingLoc(l);
      if (spelled.isFileID() && sm_.isWrittenInMainFile(spelled)) return true;
      l = sm_.getImmediateExpansionRange(l).getBegin();
    }
    return false;
  }
  // The text of code a spec-local macro expands to, printed from the AST;
  // lapis.h's names print as their expansions, which generated code lacks.
  std::string printed_from_macro(const Stmt *s, const Loc &l) {
    std::string text;
    llvm::raw_string_ostream os(text);
    s->printPretty(os, nullptr, PrintingPolicy(ctx_.getLangOpts()));
    os.flush();
    if (text.find("__lapis") != std::string::npos) {
      error(l, "'" + text +
                   "' is written inside a macro of the spec and uses LAPIS names (metadata, "
                   "lapis_result, ...): pass it to the macro as an argument instead");
    }
    return text;
  }
  // A plain statement's text for generated code: as written, or printed
  // where it comes from a spec-local macro's body.
  std::string statement_text(const Stmt *s, const Loc &l) {
    return (in_spec_macro_body(s->getBeginLoc()) || in_spec_macro_body(s->getEndLoc())
                ? printed_from_macro(s, l)
                : written_text(s->getSourceRange())) +
           ";";
  }
  // The spec's text for a range that may start or end inside macros.
  std::string written_text(SourceRange r) const {
    const auto b = file_loc(r.getBegin(), false);
    const auto e = file_loc(r.getEnd(), true);
    return Lexer::getSourceText(CharSourceRange::getTokenRange(b, e), sm_, ctx_.getLangOpts())
        .str();
  }
  // Text of a declaration that starts with a macro (utility ...): from the
  // macro's name to the end, as written in the spec.
  std::string expanded_text(SourceRange r) const {
    const auto range = CharSourceRange::getTokenRange(sm_.getExpansionLoc(r.getBegin()),
                                                      sm_.getExpansionLoc(r.getEnd()));
    return Lexer::getSourceText(range, sm_, ctx_.getLangOpts()).str();
  }
  // "T name", with the name inside declarators such as void (*name)(int).
  std::string declaration(QualType t, const std::string &name) const {
    std::string s;
    llvm::raw_string_ostream os(s);
    PrintingPolicy pp(ctx_.getLangOpts());
    t.print(os, pp, name);
    return os.str();
  }
  std::string type_name(QualType t) const {
    PrintingPolicy pp(ctx_.getLangOpts());
    pp.SuppressTagKeyword = false;
    return t.getAsString(pp);
  }

  Expr make_expr(const clang::Expr *e) {
    Expr out;
    e = e->IgnoreParenImpCasts();
    out.loc = loc_of(e->getBeginLoc());
    // The text as written in the spec: macro arguments are followed to where
    // they were written, other macros to where they were used.
    const auto b = file_loc(e->getBeginLoc(), false);
    const auto en = file_loc(e->getEndLoc(), true);
    if (in_spec_macro_body(e->getBeginLoc()) || in_spec_macro_body(e->getEndLoc())) {
      out.text = printed_from_macro(e, out.loc);
    } else if (sm_.getFileID(b) == sm_.getFileID(en) && sm_.isWrittenInMainFile(b)) {
      out.text =
          Lexer::getSourceText(CharSourceRange::getTokenRange(b, en), sm_, ctx_.getLangOpts())
              .str();
    }
    if (out.text.empty()) {
      llvm::raw_string_ostream os(out.text);
      e->printPretty(os, nullptr, PrintingPolicy(ctx_.getLangOpts()));
    }
    ExprScanner(out).TraverseStmt(const_cast<clang::Expr *>(e));
    return out;
  }

  // Does s use a descriptor (as opposed to runtime-library calls such as metadata)?
  static bool contains_descriptor(const Stmt *s) {
    if (s == nullptr) return false;
    if (const auto *call = dyn_cast<CallExpr>(s)) {
      if (const auto *f = call->getDirectCallee()) {
        const auto n = f->getName();
        if (n.startswith("__lapis_") && n != "__lapis_metadata" && n != "__lapis_result" &&
            n != "__lapis_list_len" && n != "__lapis_is_handle" && n != "__lapis_index" &&
            n != "__lapis_handle_id" && n != "__lapis_handle_object" && n != "__lapis_call_ns") {
          return true;
        }
      }
    }
    for (const Stmt *child : s->children()) {
      if (contains_descriptor(child)) return true;
    }
    return false;
  }

  static const FunctionDecl *marker(const Stmt *s) {
    const auto *c = dyn_cast<CallExpr>(s);
    if (c == nullptr) return nullptr;
    const auto *f = c->getDirectCallee();
    if (f == nullptr || !f->getName().startswith("__lapis_")) return nullptr;
    return f;
  }
  // Strips the cast a descriptor macro puts around an argument.
  static const clang::Expr *arg(const CallExpr *c, unsigned i) {
    return c->getArg(i)->IgnoreParenImpCasts();
  }
  const clang::Expr *variadic_value(const CallExpr *c) {
    return c->getNumArgs() >= 2 ? arg(c, 1) : nullptr;
  }

  // ---- top-level declarations -------------------------------------------
  void read_var(const VarDecl *v) {
    const auto name = v->getName();
    const auto a = annotation(v);
    if (a == "lapis_continuous_rc" || a == "lapis_instantaneous_rc") {
      api_.resources.push_back({v->getNameAsString(), a == "lapis_continuous_rc"});
      return;
    }
    auto str = [&]() -> std::string {
      if (const auto *init = v->getInit()) {
        if (const auto *s = dyn_cast<StringLiteral>(init->IgnoreParenImpCasts())) {
          return s->getString().str();
        }
      }
      error(loc_of(v->getLocation()), "expected a string literal");
      return "";
    };
    if (name == "__lapis_api_name") api_.name = str();
    if (name == "__lapis_api_version") api_.version = str();
    if (name == "__lapis_guest_soname") api_.guest_soname = str();
    if (name == "__lapis_server_library") api_.server_library = str();
    if (name == "__lapis_server_warmup") {
      const auto *init = v->getInit();
      const auto *r = init ? dyn_cast<DeclRefExpr>(init->IgnoreParenImpCasts()) : nullptr;
      const auto *f = r ? dyn_cast<FunctionDecl>(r->getDecl()) : nullptr;
      if (f == nullptr || annotation(f) != "lapis_utility" || f->getNumParams() != 0) {
        error(loc_of(v->getLocation()),
              "lapis_server_warmup(f) needs a utility function without arguments");
      } else {
        api_.server_warmup = f->getNameAsString();
      }
    }
    if (name == "__lapis_default_symbol_version") api_.default_symbol_version = str();
    if (name == "__lapis_unsupported_prefix") api_.unsupported_prefix = str();
    if (name == "__lapis_unsupported_value" && v->getInit() != nullptr) {
      api_.unsupported_value = make_expr(v->getInit()->IgnoreParenImpCasts());
    }
  }

  // The vendor's functions the spec leaves out (lapis_unsupported_functions).
  void read_unsupported(const DeclContext *dc, std::set<std::string> &seen) {
    for (const Decl *d : dc->decls()) {
      if (const auto *ls = dyn_cast<LinkageSpecDecl>(d)) {
        read_unsupported(ls, seen);
        continue;
      }
      const auto *f = dyn_cast<FunctionDecl>(d);
      if (f == nullptr || in_spec(f) || f->isVariadic()) continue;
      const std::string name = f->getNameAsString();
      if (name.rfind(api_.unsupported_prefix, 0) != 0 || !seen.insert(name).second) continue;
      const QualType ret = f->getReturnType().getCanonicalType();
      if (!ret->isIntegralOrEnumerationType()) continue;
      const std::string params = parameter_list(f);
      const std::string ret_type = type_name(f->getReturnType());
      api_.unsupported.push_back({name, ret_type, ret_type + " " + name + "(" + params + ")"});
    }
  }

  // guest_export RET name(params) { C }: exported by the guest library as
  // written. Not for a function the vendor's header declares (that one is
  // the API's: describe it). guest_export_as("symbol"): exported as
  // `symbol`, which no function of the header or the spec may be named.
  void read_guest_export(const FunctionDecl *f, const std::string &symbol = "") {
    const std::string c_name = f->getNameAsString();
    const std::string name = symbol.empty() ? c_name : symbol;
    const Loc at = loc_of(f->getLocation());
    if (!symbol.empty() && !valid_symbol(symbol)) {
      error(at, "guest_export_as(\"" + symbol +
                    "\"): the symbol is a C identifier (guest_export_as(\"cuCtxCreate_v2\"))");
      return;
    }
    if (!symbol.empty()) {
      const auto found = ctx_.getTranslationUnitDecl()->lookup(&ctx_.Idents.get(symbol));
      for (const NamedDecl *d : found) {
        if (!isa<FunctionDecl>(d)) continue;
        const Loc hdr = loc_of(d->getLocation());
        error(at, "guest_export_as(\"" + symbol + "\"): " + hdr.file + ":" +
                      std::to_string(hdr.line) +
                      " declares a function of that name; describe it "
                      "(functions(" +
                      symbol + ") { ... }) instead of exporting C code");
        return;
      }
    }
    if (!f->hasBody()) {
      error(at, "guest_export " + name +
                    " has no body: write the C code the guest library exports under this name");
      return;
    }
    if (f->getLocation().isMacroID() || f->getBody()->getEndLoc().isMacroID()) {
      // Its text is copied as written: a macro's use is not C the guest has.
      error(at, "guest_export " + name +
                    " comes from a macro: write the function out (its text is copied into the "
                    "guest library as written)");
      return;
    }
    for (const FunctionDecl *prev = f->getPreviousDecl(); prev != nullptr;
         prev = prev->getPreviousDecl()) {
      if (in_spec(prev)) continue;
      const Loc hdr = loc_of(prev->getLocation());
      error(at, "guest_export " + name + ": the vendor's header declares " + name + " (" +
                    hdr.file + ":" + std::to_string(hdr.line) +
                    "): it is an API function; describe it (functions(" + name +
                    ") { ... }) instead of exporting C code");
      return;
    }
    // Spec-local macros are not in the guest library: the text would not build.
    struct SpecMacroUse : RecursiveASTVisitor<SpecMacroUse> {
      const Parser &p;
      SourceLocation at;
      explicit SpecMacroUse(const Parser &parser) : p(parser) {}
      bool VisitStmt(Stmt *st) {
        if (!p.in_spec_macro_body(st->getBeginLoc())) return true;
        at = st->getBeginLoc();
        return false;
      }
    } use(*this);
    use.TraverseStmt(f->getBody());
    if (use.at.isValid()) {
      error(loc_of(use.at), "guest_export " + name +
                                " uses a macro of the spec: its text is copied into the guest "
                                "library as written, without the spec's macros; write the "
                                "expression out");
      return;
    }
    // (Two definitions of one name, or one with a described function's
    // name, are already Clang's redefinition errors.)
    GuestExport e{name, expanded_text(f->getSourceRange()), "", ""};
    if (!symbol.empty()) {
      e.c_name = c_name;
      e.prototype = type_name(f->getReturnType()) + " " + c_name + "(" + parameter_list(f) + ")";
    }
    api_.guest_exports.push_back(std::move(e));
  }

  // "T1 a, T2 b" as f declares its parameters (unnamed ones: p0, p1, ...);
  // "void" for none.
  std::string parameter_list(const FunctionDecl *f) const {
    std::string params;
    unsigned i = 0;
    for (const auto *p : f->parameters()) {
      std::string pname = p->getNameAsString();
      if (pname.empty()) pname = "p" + std::to_string(i);
      params += (i++ == 0 ? "" : ", ") + declaration(p->getType(), pname);
    }
    return params.empty() ? "void" : params;
  }

  static bool valid_symbol(const std::string &s) {
    if (s.empty() || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
    for (const char ch : s) {
      if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_') return false;
    }
    return true;
  }

  // guest_export_variants(suffix, T, value, f, ...): a guest_export per f,
  // f's symbol + suffix, calling f (as the spec spells it: a header macro
  // that maps it to a versioned symbol maps it in either configuration)
  // with NULL arguments of type T given as value.
  void read_export_variants(const FunctionDecl *marker) {
    const auto *body = cast<CompoundStmt>(marker->getBody());
    const auto *call = body->size() == 1 ? dyn_cast<CallExpr>(body->body_front()) : nullptr;
    if (call == nullptr || call->getNumArgs() < 4) {
      error(loc_of(marker->getLocation()),
            "guest_export_variants(\"suffix\", T, value, f, ...) names at least one function");
      return;
    }
    const auto *suffix = dyn_cast<StringLiteral>(call->getArg(0)->IgnoreParenImpCasts());
    if (suffix == nullptr || suffix->getString().empty()) {
      error(written_loc(call->getArg(0)->getBeginLoc()),
            "guest_export_variants: the suffix is a string literal (\"_ptsz\")");
      return;
    }
    const QualType t = call->getArg(1)->IgnoreParenImpCasts()->getType()->getPointeeType();
    const std::string value = make_expr(call->getArg(2)).text;
    for (unsigned i = 3; i < call->getNumArgs(); ++i) {
      const auto *e = call->getArg(i)->IgnoreParenImpCasts();
      const auto *r = dyn_cast<DeclRefExpr>(e);
      const auto *ref = r != nullptr ? dyn_cast<FunctionDecl>(r->getDecl()) : nullptr;
      // The header's declaration (the spec may describe the function too).
      const FunctionDecl *fd = ref != nullptr ? ref->getFirstDecl() : nullptr;
      const Loc at = written_loc(e->getBeginLoc());
      if (fd == nullptr || in_spec(fd)) {
        error(at, "guest_export_variants lists API functions of the included headers by name");
        continue;
      }
      const std::string name = fd->getNameAsString() + suffix->getString().str();
      std::string params, args;
      unsigned n = 0;
      for (const auto *p : fd->parameters()) {
        std::string pname = p->getNameAsString();
        if (pname.empty()) pname = "p" + std::to_string(n);
        params += (n == 0 ? "" : ", ") + declaration(p->getType(), pname);
        const bool swap = ctx_.hasSameUnqualifiedType(p->getType(), t);
        args += (n++ == 0 ? "" : ", ") + (swap ? pname + " ? " + pname + " : " + value : pname);
      }
      const std::string ret = type_name(fd->getReturnType());
      const bool returns = !fd->getReturnType()->isVoidType();
      api_.guest_exports.push_back(
          {name,
           "guest_export " + ret + " " + name + "(" + (params.empty() ? "void" : params) +
               ") {\n  " + (returns ? "return " : "") + make_expr(e).text + "(" + args + ");\n}",
           "", ""});
    }
  }

  void read_typedef(const TypedefNameDecl *t) {
    if (t->getName() == "__lapis_metadata_t") {
      api_.metadata_type = type_name(t->getUnderlyingType());
    }
    if (t->getName() == "__lapis_icd_dispatch_t") {
      api_.icd_dispatch_type = type_name(t->getUnderlyingType());
      if (const auto *rt = t->getUnderlyingType()->getAs<RecordType>()) {
        if (const auto *def = rt->getDecl()->getDefinition()) {
          for (const auto *field : def->fields()) {
            api_.icd_dispatch_fields.push_back(field->getNameAsString());
          }
        }
      }
    }
  }

  void read_type_scope(const FunctionDecl *f) {
    if (f->getNumParams() != 1) return;
    const QualType t = f->getParamDecl(0)->getType();
    auto d = std::make_shared<Descriptors>();
    d->loc = loc_of(f->getLocation());
    parse_scope(cast<CompoundStmt>(f->getBody()), *d, Scope::Type, nullptr);
    type_specs_[type_name(t)] = d;
    if (d->accepts_handle) {
      const std::string other = type_name(*d->accepts_handle);
      if (!t.getCanonicalType()->isPointerType() ||
          !d->accepts_handle->getCanonicalType()->isPointerType()) {
        error(d->loc, "type(" + type_name(t) + "): accepts_handle(" + other +
                          ") needs two pointer handle types (the server passes one's object as "
                          "the other)");
      } else {
        api_.handle_aliases[type_name(t)] = other;
        accepted_handles_.push_back({other, d->loc});
      }
    }
  }

  // argument_default(T name, siblings...) { ... }
  struct ArgumentDefault {
    std::vector<std::pair<std::string, std::string>> params;  // (name, type): the described first
    std::shared_ptr<Descriptors> d;
  };
  std::vector<ArgumentDefault> argument_defaults_;
  void read_argument_default(const FunctionDecl *f) {
    if (f->getNumParams() == 0 || f->getParamDecl(0)->getName().empty()) {
      error(loc_of(f->getLocation()),
            "argument_default needs the described argument with its type and name, e.g. "
            "argument_default(cl_int *errcode_ret)");
      return;
    }
    ArgumentDefault ad;
    for (const auto *p : f->parameters()) {
      ad.params.emplace_back(p->getNameAsString(), type_name(p->getType()));
    }
    ad.d = std::make_shared<Descriptors>();
    ad.d->loc = loc_of(f->getLocation());
    parse_scope(cast<CompoundStmt>(f->getBody()), *ad.d, Scope::Value, nullptr);
    argument_defaults_.push_back(std::move(ad));
  }
  // The default for argument `name` of type `type` of f, if one applies.
  const Descriptors *argument_default_for(const FunctionDecl *f, const std::string &name,
                                          const std::string &type) const {
    auto has = [&](const std::pair<std::string, std::string> &want) {
      for (const auto *p : f->parameters()) {
        if (p->getNameAsString() == want.first && type_name(p->getType()) == want.second) {
          return true;
        }
      }
      return false;
    };
    for (const auto &ad : argument_defaults_) {
      if (ad.params.front().first != name || ad.params.front().second != type) continue;
      if (std::all_of(ad.params.begin() + 1, ad.params.end(), has)) return ad.d.get();
    }
    return nullptr;
  }

  // ---- descriptor scopes ----------------------------------------------------
  struct FnScope {
    Function *fn;
    std::map<std::string, std::shared_ptr<Descriptors>> args;
    std::shared_ptr<Descriptors> ret;
    const FunctionDecl *decl;
  };

  void parse_scope(const Stmt *body, Descriptors &d, Scope scope, FnScope *fs) {
    for (const Stmt *s : cast<CompoundStmt>(body)->body()) parse_stmt(s, d, scope, fs);
  }

  void parse_stmt(const Stmt *s, Descriptors &d, Scope scope, FnScope *fs) {
    if (isa<NullStmt>(s)) return;
    if (const auto *cs = dyn_cast<CompoundStmt>(s)) {
      for (const Stmt *c : cs->body()) parse_stmt(c, d, scope, fs);
      return;
    }
    if (const auto *is = dyn_cast<IfStmt>(s)) {
      parse_if(is, d, scope, fs);
      return;
    }
    const FunctionDecl *m = marker(s);
    if (m == nullptr) {
      if (scope == Scope::Function && fs != nullptr) {
        fs->fn->statements.push_back(statement_text(s, loc_of(s->getBeginLoc())));
        return;
      }
      error(loc_of(s->getBeginLoc()),
            "only descriptors may appear here; plain C statements belong in the function's body, "
            "outside argument(...) and type(...) scopes");
      return;
    }
    apply_descriptor(cast<CallExpr>(s), m->getName().str(), d, scope, fs);
  }

  void parse_if(const IfStmt *is, Descriptors &d, Scope scope, FnScope *fs) {
    const auto *m = marker(is->getCond()->IgnoreParenImpCasts());
    const Loc l = loc_of(is->getBeginLoc());
    if (m != nullptr) {
      const auto name = m->getName();
      if (is->getElse() != nullptr) {
        error(l, "a scope (argument/element/return_value) cannot have an else branch");
      }
      if (name == "__lapis_scope_argument") {
        if (scope != Scope::Function && scope != Scope::Callback) {
          error(l, "argument(x) is only allowed directly in a function's body");
          return;
        }
        const auto *call = cast<CallExpr>(is->getCond()->IgnoreParenImpCasts());
        const auto *e = call->getArg(0)->IgnoreParenCasts();
        const ParmVarDecl *p = nullptr;
        if (const auto *u = dyn_cast<UnaryOperator>(e)) {
          if (const auto *r = dyn_cast<DeclRefExpr>(u->getSubExpr()->IgnoreParenCasts())) {
            p = dyn_cast<ParmVarDecl>(r->getDecl());
          }
        }
        if (p == nullptr) {
          error(l, "argument(x) needs the name of one of this function's arguments");
          return;
        }
        auto &slot = fs->args[p->getNameAsString()];
        if (!slot) {
          slot = std::make_shared<Descriptors>();
          slot->loc = l;
        }
        parse_scope(is->getThen(), *slot, Scope::Value, fs);
        return;
      }
      if (name == "__lapis_scope_return_value") {
        if (scope != Scope::Function) {
          error(l, "return_value is only allowed directly in a function's body");
          return;
        }
        if (!fs->ret) fs->ret = std::make_shared<Descriptors>();
        fs->ret->loc = l;
        parse_scope(is->getThen(), *fs->ret, Scope::Value, fs);
        return;
      }
      if (name == "__lapis_scope_element") {
        if (scope != Scope::Value && scope != Scope::Type) {
          error(l, "element { } is only allowed inside argument(x), return_value or type(T)");
          return;
        }
        if (!d.element) {
          d.element = std::make_shared<Descriptors>();
          d.element->loc = l;
        }
        parse_scope(is->getThen(), *d.element, Scope::Value, fs);
        return;
      }
      error(l, "unexpected descriptor in if condition");
      return;
    }
    if (scope == Scope::Function) {
      if (!contains_descriptor(is)) {
        // The range ends before a braceless body's ';' (an extra one is harmless).
        fs->fn->statements.push_back(statement_text(is, l));
        return;
      }
      error(l, "conditional descriptors must describe a value: put the if inside argument(x) { }");
      return;
    }
    Descriptors::Conditional c;
    c.pred = make_expr(is->getCond());
    c.then_d = std::make_shared<Descriptors>();
    c.then_d->loc = l;
    c.else_d = std::make_shared<Descriptors>();
    c.else_d->loc = l;
    parse_stmt(is->getThen(), *c.then_d, scope, fs);
    if (is->getElse() != nullptr) parse_stmt(is->getElse(), *c.else_d, scope, fs);
    d.conds.push_back(std::move(c));
  }

  // ---- the descriptor table --------------------------------------------------
  // Every descriptor lapis.h declares (`__lapis_<word>`), in one place: where
  // it may be written and what it records. apply_descriptor checks the place
  // and dispatches; `cava descriptors` lists the table (a test keeps it and
  // lapis.h in step).
  enum class Where { Value, Function, TypeOrFunction, Anywhere };
  struct Use {
    const CallExpr *c;
    const std::string &word;
    Descriptors &d;
    Scope scope;
    FnScope *fs;
    Loc l;
  };
  using Apply = void (*)(Parser &, Use &);
  struct Rule {
    Where where;
    Apply apply;
  };

 public:
  static const std::map<std::string, Rule> &descriptor_table() {
    static const std::map<std::string, Rule> table = {
        {"todo", {Where::Anywhere, &Parser::apply_todo}},
        // Value descriptors: flags.
        {"in", {Where::Value, [](Parser &, Use &u) { u.d.in = true; }}},
        {"out", {Where::Value, [](Parser &, Use &u) { u.d.out = true; }}},
        {"handle", {Where::Value, [](Parser &, Use &u) { u.d.handle = true; }}},
        {"nullable", {Where::Value, [](Parser &, Use &u) { u.d.nullable = true; }}},
        {"handle_constants",
         {Where::Value,
          [](Parser &p, Use &u) { u.d.handle_constants = p.make_expr(arg(u.c, 0)); }}},
        {"accepts_handle", {Where::Value, &Parser::apply_accepts_handle}},
        {"no_copy", {Where::Value, [](Parser &, Use &u) { u.d.no_copy = true; }}},
        {"lifetime_manual", {Where::Value, [](Parser &, Use &u) { u.d.lifetime_manual = true; }}},
        {"lifetime_call", {Where::Value, [](Parser &, Use &u) { u.d.lifetime_manual = false; }}},
        {"allocate", {Where::Value, [](Parser &, Use &u) { u.d.allocate = true; }}},
        {"deallocate", {Where::Value, [](Parser &, Use &u) { u.d.deallocate = true; }}},
        {"userdata", {Where::Value, [](Parser &, Use &u) { u.d.userdata = true; }}},
        {"error_code", {Where::Value, [](Parser &, Use &u) { u.d.error_code = true; }}},
        // Value descriptors with an argument.
        {"buffer", {Where::Value, &Parser::apply_buffer}},
        {"type_cast", {Where::Value, &Parser::apply_type_cast}},
        {"map_reads",
         {Where::Value, [](Parser &p, Use &u) { u.d.map_reads = p.make_expr(u.c->getArg(0)); }}},
        {"map_writes",
         {Where::Value, [](Parser &p, Use &u) { u.d.map_writes = p.make_expr(u.c->getArg(0)); }}},
        {"deferred", {Where::Value, &Parser::apply_deferred}},
        {"callback", {Where::Value, &Parser::apply_callback}},
        {"invalid_handle",
         {Where::Value, [](Parser &p, Use &u) { p.set_variadic(u, u.d.invalid_handle); }}},
        {"error_value",
         {Where::Value, [](Parser &p, Use &u) { p.set_variadic(u, u.d.error_value); }}},
        {"quota_error",
         {Where::Value, [](Parser &p, Use &u) { p.set_variadic(u, u.d.quota_error); }}},
        {"server_value",
         {Where::Value, [](Parser &p, Use &u) { p.set_variadic(u, u.d.server_value); }}},
        {"guest_value",
         {Where::Value, [](Parser &p, Use &u) { p.set_variadic(u, u.d.guest_value); }}},
        {"obj_depends_on",
         {Where::Value,
          [](Parser &p, Use &u) {
            u.d.depends_on = p.make_expr(arg(u.c, 0)->IgnoreParenCasts());
          }}},
        {"map_into",
         {Where::Value,
          [](Parser &p, Use &u) { u.d.map_into = p.make_expr(arg(u.c, 0)->IgnoreParenCasts()); }}},
        // In type(T): the value a call of type T returns on success; in a
        // function: that function's.
        {"success", {Where::TypeOrFunction, &Parser::apply_success}},
        // Function descriptors.
        {"guest_only", {Where::Function, &Parser::apply_guest_utility}},
        {"guest_wrap", {Where::Function, &Parser::apply_guest_utility}},
        {"same_as", {Where::Function, &Parser::apply_same_as}},
        {"guest_answer",
         {Where::Function,
          [](Parser &p, Use &u) {
            const auto *v = p.variadic_value(u.c);
            u.fs->fn->guest_answer = v != nullptr ? p.make_expr(v) : Expr{};
          }}},
        {"server_impl", {Where::Function, &Parser::apply_server_impl}},
        {"guest_cache_if",
         {Where::Function,
          [](Parser &p, Use &u) { u.fs->fn->cache_if = p.make_expr(u.c->getArg(0)); }}},
        {"async_if",
         {Where::Function,
          [](Parser &p, Use &u) { u.fs->fn->async_if = p.make_expr(u.c->getArg(0)); }}},
        {"server_check",
         {Where::Function,
          [](Parser &p, Use &u) {
            if (const auto *v = p.variadic_value(u.c)) {
              u.fs->fn->server_checks.push_back(p.make_expr(v));
            }
          }}},
        {"guest_server_check",
         {Where::Function,
          [](Parser &p, Use &u) {
            if (const auto *v = p.variadic_value(u.c)) {
              u.fs->fn->server_checks.push_back(p.make_expr(v));
              u.fs->fn->guest_refusals.push_back(p.make_expr(v));
            }
          }}},
        {"guest_check",
         {Where::Function,
          [](Parser &p, Use &u) {
            if (const auto *v = p.variadic_value(u.c)) {
              u.fs->fn->guest_checks.push_back(p.make_expr(v));
            }
          }}},
        {"symbol_version", {Where::Function, &Parser::apply_symbol_version}},
        {"sync", {Where::Function, &Parser::apply_sync}},
        {"async", {Where::Function, &Parser::apply_sync}},
        {"rc_until_destroyed", {Where::Function, &Parser::apply_rc_until_destroyed}},
        {"consumes_rc", {Where::Function, &Parser::apply_resource}},
        {"allocates_rc", {Where::Function, &Parser::apply_resource}},
        {"deallocates_rc", {Where::Function, &Parser::apply_resource}},
        {"server_allocates_rc", {Where::Function, &Parser::apply_resource}},
    };
    return table;
  }

 private:
  void apply_descriptor(const CallExpr *c, const std::string &name, Descriptors &d, Scope scope,
                        FnScope *fs) {
    const std::string word = name.substr(std::string("__lapis_").size());
    Use u{c, word, d, scope, fs, loc_of(c->getBeginLoc())};
    const auto &table = descriptor_table();
    const auto it = table.find(word);
    if (it == table.end()) {
      error(u.l, "'" + word + "' cannot be used here");
      return;
    }
    const bool value_scope = scope == Scope::Value || scope == Scope::Type;
    switch (it->second.where) {
      case Where::Value:
        if (!value_scope) {
          error(u.l, "'" + word +
                         "' describes a value: put it inside argument(x) { }, "
                         "return_value { } or type(T) { }");
          return;
        }
        break;
      case Where::Function:
        if (scope != Scope::Function) {
          error(u.l, "'" + word + "' describes a function: put it directly in the function's body");
          return;
        }
        break;
      case Where::TypeOrFunction:
      case Where::Anywhere:
        break;
    }
    it->second.apply(*this, u);
  }

  // An optional value written as descriptor(v): the variadic form lapis.h
  // uses so that any type passes.
  void set_variadic(Use &u, std::optional<Expr> &field) {
    if (const auto *v = variadic_value(u.c)) field = make_expr(v);
  }

  static void apply_todo(Parser &p, Use &u) {
    std::string what = "a decision is missing";
    if (const auto *sl = dyn_cast<StringLiteral>(u.c->getArg(0)->IgnoreParenImpCasts())) {
      what = sl->getString().str();
    }
    p.error(u.l, "unresolved lapis_todo: " + what);
  }

  static void apply_buffer(Parser &p, Use &u) {
    u.d.buffer = p.make_expr(arg(u.c, 0));
    WrappingArithmetic w(p.ctx_);
    w.TraverseStmt(const_cast<clang::Expr *>(arg(u.c, 0)));
    if (const BinaryOperator *b = w.found()) {
      const bool mul = b->getOpcode() == BO_Mul;
      p.error(
          p.loc_of(b->getOperatorLoc()),
          "buffer size '" + p.source_text(b->getSourceRange()) + "' can wrap around 2^64 (the " +
              "guest chooses its operands) and let a short buffer pass for a huge one: write " +
              (mul ? "lapis_mul(" : "lapis_add(") + p.source_text(b->getLHS()->getSourceRange()) +
              ", " + p.source_text(b->getRHS()->getSourceRange()) + ")");
    }
  }

  // The T of a descriptor written D(T): lapis.h passes it as `(T *)0`.
  static std::optional<QualType> marker_type(const Use &u) {
    const auto *e = u.c->getArg(0)->IgnoreParenImpCasts();
    if (const auto *ce = dyn_cast<ExplicitCastExpr>(e)) {
      return ce->getTypeAsWritten()->getPointeeType();
    }
    return std::nullopt;
  }
  static void apply_accepts_handle(Parser &, Use &u) {
    if (const auto t = marker_type(u)) u.d.accepts_handle = *t;
  }
  static void apply_type_cast(Parser &, Use &u) {
    if (const auto t = marker_type(u)) u.d.type_cast = *t;
  }

  static void apply_deferred(Parser &p, Use &u) {
    const CallExpr *c = u.c;
    const ParmVarDecl *ev = nullptr;
    if (const auto *un = dyn_cast<UnaryOperator>(c->getArg(0)->IgnoreParenCasts())) {
      if (const auto *r = dyn_cast<DeclRefExpr>(un->getSubExpr()->IgnoreParenCasts())) {
        ev = dyn_cast<ParmVarDecl>(r->getDecl());
      }
    }
    auto utility_name = [&](unsigned i) -> std::string {
      const auto *r = dyn_cast<DeclRefExpr>(c->getArg(i)->IgnoreParenCasts());
      const auto *f = r != nullptr ? dyn_cast<FunctionDecl>(r->getDecl()) : nullptr;
      return f != nullptr && annotation(f) == "lapis_utility" ? f->getNameAsString() : "";
    };
    Deferred df{ev != nullptr ? ev->getNameAsString() : "", utility_name(1), utility_name(2),
                utility_name(3)};
    if (df.event_param.empty() || df.done_fn.empty() || df.retain_fn.empty() ||
        df.release_fn.empty()) {
      p.error(u.l,
              "deferred(ev, done, retain, release) needs the out argument that returns the "
              "completion object, then three utility functions: done(obj), retain(obj) and "
              "release(obj)");
      return;
    }
    u.d.deferred = df;
  }

  static void apply_callback(Parser &p, Use &u) {
    const auto *e = u.c->getArg(0)->IgnoreParenCasts();
    const FunctionDecl *cb = nullptr;
    if (const auto *r = dyn_cast<DeclRefExpr>(e)) cb = dyn_cast<FunctionDecl>(r->getDecl());
    if (cb == nullptr || annotation(cb) != "lapis_callback") {
      p.error(u.l, "callback(x) needs the name of a callback_decl function declared in the spec");
      return;
    }
    u.d.callback = cb;
  }

  static void apply_success(Parser &p, Use &u) {
    const auto *v = p.variadic_value(u.c);
    if (v == nullptr) return;
    if (u.scope == Scope::Type) {
      u.d.success = p.make_expr(v);
    } else if (u.scope != Scope::Function) {
      p.error(u.l, "'" + u.word + "' describes a function: put it directly in the function's body");
    } else {
      u.fs->fn->success = p.make_expr(v);
    }
  }

  // The utility a descriptor names, if it is one of kind `annotation` with
  // the function's own number of arguments.
  static const FunctionDecl *same_shape_utility(const Use &u, const char *annotation_name) {
    const auto *r = dyn_cast<DeclRefExpr>(u.c->getArg(0)->IgnoreParenCasts());
    const auto *impl = r != nullptr ? dyn_cast<FunctionDecl>(r->getDecl()) : nullptr;
    if (impl == nullptr || annotation(impl) != annotation_name ||
        impl->getNumParams() != u.fs->decl->getNumParams()) {
      return nullptr;
    }
    return impl;
  }

  static void apply_guest_utility(Parser &p, Use &u) {
    const auto *impl = same_shape_utility(u, "lapis_guest_utility");
    if (impl == nullptr) {
      p.error(u.l, u.word + "(f) needs a guest_utility function of the same signature");
      return;
    }
    (u.word == "guest_only" ? u.fs->fn->guest_impl : u.fs->fn->guest_wrap) =
        impl->getNameAsString();
  }

  // same_as(g): the guest calls API function g with the same arguments (an
  // extension's name for a core function). Their types must be the same.
  static void apply_same_as(Parser &p, Use &u) {
    const auto *r = dyn_cast<DeclRefExpr>(u.c->getArg(0)->IgnoreParenCasts());
    const auto *g = r != nullptr ? dyn_cast<FunctionDecl>(r->getDecl()) : nullptr;
    const FunctionDecl *f = u.fs->decl;
    bool same = g != nullptr && g->getCanonicalDecl() != f->getCanonicalDecl() &&
                g->getNumParams() == f->getNumParams() &&
                p.ctx_.hasSameType(g->getReturnType(), f->getReturnType());
    for (unsigned i = 0; same && i < f->getNumParams(); ++i) {
      same = p.ctx_.hasSameUnqualifiedType(g->getParamDecl(i)->getType(),
                                           f->getParamDecl(i)->getType());
    }
    if (!same) {
      p.error(u.l, "same_as(g) on " + f->getNameAsString() +
                       " needs another API function whose arguments and result have the same "
                       "types; write guest_only(utility) to adapt them instead");
      return;
    }
    u.fs->fn->same_as = g->getNameAsString();
  }

  static void apply_server_impl(Parser &p, Use &u) {
    const auto *impl = same_shape_utility(u, "lapis_utility");
    if (impl == nullptr) {
      p.error(u.l, "server_impl(f) needs a utility function of the same signature");
      return;
    }
    u.fs->fn->server_impl = impl->getNameAsString();
  }

  static void apply_symbol_version(Parser &, Use &u) {
    if (const auto *s = dyn_cast<StringLiteral>(u.c->getArg(0)->IgnoreParenImpCasts())) {
      u.fs->fn->symbol_version = s->getString().str();
    }
  }

  static void apply_sync(Parser &p, Use &u) {
    u.fs->fn->async = u.word == "async";
    p.async_loc_ = u.l;
  }

  static void apply_rc_until_destroyed(Parser &p, Use &u) {
    const auto *r = dyn_cast<DeclRefExpr>(u.c->getArg(0)->IgnoreParenCasts());
    const auto *watch = r != nullptr ? dyn_cast<FunctionDecl>(r->getDecl()) : nullptr;
    if (watch == nullptr || annotation(watch) != "lapis_utility" || watch->getNumParams() != 2 ||
        !watch->getParamDecl(1)->getType()->isVoidPointerType()) {
      p.error(u.l,
              "rc_until_destroyed(watch) needs a utility function 'void watch(T obj, void "
              "*token)' that calls lapis_destroyed(token) when obj is destroyed");
      return;
    }
    u.fs->fn->destroy_watch = watch->getNameAsString();
    u.fs->fn->destroy_watch_loc = u.l;
  }

  static void apply_resource(Parser &p, Use &u) {
    const CallExpr *c = u.c;
    const std::string &word = u.word;
    const Loc &l = u.l;
    ResourceUse ru;
    ru.op = word == "consumes_rc"           ? ResourceUse::Op::Consume
            : word == "allocates_rc"        ? ResourceUse::Op::Allocate
            : word == "server_allocates_rc" ? ResourceUse::Op::ServerAllocate
                                            : ResourceUse::Op::Deallocate;
    const auto *rc = c->getArg(0)->IgnoreParenCasts();
    if (const auto *uo = dyn_cast<UnaryOperator>(rc)) rc = uo->getSubExpr()->IgnoreParenCasts();
    const auto *ref = dyn_cast<DeclRefExpr>(rc);
    const auto *var = ref != nullptr ? dyn_cast<VarDecl>(ref->getDecl()) : nullptr;
    const auto a = var != nullptr ? annotation(var) : "";
    if (a != "lapis_continuous_rc" && a != "lapis_instantaneous_rc") {
      p.error(l, word + " needs a resource declared with continuous_rc or instantaneous_rc");
      return;
    }
    ru.resource = var->getNameAsString();
    const bool continuous = a == "lapis_continuous_rc";
    if (ru.op == ResourceUse::Op::Consume && continuous) {
      p.error(l, "consumes_rc needs an instantaneous_rc; '" + ru.resource +
                     "' is continuous: use allocates_rc/deallocates_rc");
      return;
    }
    if (ru.op != ResourceUse::Op::Consume && !continuous) {
      p.error(l, word + " needs a continuous_rc; '" + ru.resource +
                     "' is instantaneous: use consumes_rc");
      return;
    }
    ru.amount = p.make_expr(arg(c, 1)->IgnoreParenCasts());
    if (ru.amount.text.find("lapis_call_ns") != std::string::npos) {
      if (ru.op != ResourceUse::Op::Consume) {
        p.error(l, word +
                       ": lapis_call_ns() is measured time: use it in consumes_rc on an "
                       "instantaneous_rc");
        return;
      }
      ru.op = ResourceUse::Op::ServerConsume;  // the API server measures it
    }
    if (ru.op == ResourceUse::Op::ServerAllocate && c->getNumArgs() > 2) {
      const auto *r =
          c->getNumArgs() == 3 ? dyn_cast<DeclRefExpr>(c->getArg(2)->IgnoreParenCasts()) : nullptr;
      const auto *pv = r != nullptr ? dyn_cast<ParmVarDecl>(r->getDecl()) : nullptr;
      if (pv == nullptr) {
        p.error(l,
                "server_allocates_rc(r, x, h): h names the handle argument that holds the "
                "amount; write one of the function's handle arguments, or leave it out for "
                "the handle the call returns");
        return;
      }
      ru.handle_arg = pv->getNameAsString();
    }
    if (ru.op == ResourceUse::Op::Deallocate) {
      const auto *e = arg(c, 1)->IgnoreParenCasts();
      if (const auto *r = dyn_cast<DeclRefExpr>(e)) {
        if (const auto *pv = dyn_cast<ParmVarDecl>(r->getDecl())) {
          ru.handle_arg = pv->getNameAsString();
        }
      }
    }
    u.fs->fn->resources.push_back(std::move(ru));
  }

  // ---- resolving values -----------------------------------------------------
  std::shared_ptr<Descriptors> type_spec(QualType t) const {
    // Walk the typedef chain: acc_context, then struct acc_context_s *, ...
    for (;;) {
      const auto it = type_specs_.find(type_name(t));
      if (it != type_specs_.end()) return it->second;
      const auto it2 = type_specs_.find(type_name(t.getUnqualifiedType()));
      if (it2 != type_specs_.end()) return it2->second;
      const auto *td = t->getAs<TypedefType>();
      if (td == nullptr) return nullptr;
      const QualType next = td->getDecl()->getUnderlyingType();
      if (next == t) return nullptr;
      t = next;
    }
  }

  static void merge_into(Descriptors &dst, const Descriptors &src) {
    auto take = [](auto &a, const auto &b) {
      if (b) a = b;
    };
    take(dst.in, src.in);
    take(dst.out, src.out);
    take(dst.handle, src.handle);
    take(dst.nullable, src.nullable);
    take(dst.handle_constants, src.handle_constants);
    take(dst.accepts_handle, src.accepts_handle);
    take(dst.no_copy, src.no_copy);
    take(dst.lifetime_manual, src.lifetime_manual);
    take(dst.allocate, src.allocate);
    take(dst.deallocate, src.deallocate);
    take(dst.userdata, src.userdata);
    take(dst.error_code, src.error_code);
    take(dst.buffer, src.buffer);
    take(dst.type_cast, src.type_cast);
    if (src.callback != nullptr) dst.callback = src.callback;
    take(dst.invalid_handle, src.invalid_handle);
    take(dst.server_value, src.server_value);
    take(dst.guest_value, src.guest_value);
    take(dst.deferred, src.deferred);
    take(dst.map_reads, src.map_reads);
    take(dst.map_writes, src.map_writes);
    take(dst.map_into, src.map_into);
    take(dst.depends_on, src.depends_on);
    take(dst.error_value, src.error_value);
    take(dst.quota_error, src.quota_error);
    take(dst.success, src.success);
    if (src.element) {
      auto e = std::make_shared<Descriptors>(dst.element ? *dst.element : Descriptors{});
      merge_into(*e, *src.element);
      dst.element = e;
    }
    dst.conds.insert(dst.conds.end(), src.conds.begin(), src.conds.end());
    if (src.loc.line != 0) dst.loc = src.loc;
  }

  static bool scalar_leaf(const Value &v) {
    return v.pred ? scalar_leaf(*v.then_v) || scalar_leaf(*v.else_v)
                  : v.kind == Value::Kind::Scalar;
  }

  static bool is_char(QualType t) {
    t = t.getCanonicalType().getUnqualifiedType();
    return t->isCharType();
  }

  bool has_pointer_fields(QualType t) const {
    const auto *rt = t.getCanonicalType()->getAs<RecordType>();
    if (rt == nullptr) return false;
    const auto *def = rt->getDecl()->getDefinition();
    if (def == nullptr) return false;
    for (const auto *f : def->fields()) {
      QualType ft = f->getType().getCanonicalType();
      while (const auto *at = dyn_cast<ConstantArrayType>(ft.getTypePtr())) {
        ft = at->getElementType().getCanonicalType();
      }
      if (ft->isPointerType() || has_pointer_fields(ft)) return true;
    }
    return false;
  }

  // Handle types get their wire numbers in the order the spec first uses them.
  void register_handle_type(const std::string &name) {
    auto &types = api_.handle_types;
    if (std::find(types.begin(), types.end(), name) == types.end()) types.push_back(name);
  }

  int callback_id(const FunctionDecl *f) const {
    for (const auto &cb : api_.callbacks) {
      if (cb.name == f->getNameAsString()) return cb.id;
    }
    return -1;
  }

  // `what` names the value in errors: "argument 'x' of f".
  std::shared_ptr<Value> resolve(QualType t, const Descriptors *given, const Loc &l,
                                 const std::string &what, const Descriptors *inherited) {
    Descriptors d;
    if (inherited != nullptr) {
      d.in = inherited->in;
      d.out = inherited->out;
      d.no_copy = inherited->no_copy;
    }
    if (auto ts = type_spec(t)) merge_into(d, *ts);
    if (given != nullptr) merge_into(d, *given);
    return resolve_merged(t, d, l, what);
  }

  std::shared_ptr<Value> resolve_merged(QualType t, Descriptors d, const Loc &l,
                                        const std::string &what) {
    auto v = std::make_shared<Value>();
    if (!d.conds.empty()) {
      const auto c = d.conds.front();
      d.conds.erase(d.conds.begin());
      Descriptors a = d, b = d;
      merge_into(a, *c.then_d);
      merge_into(b, *c.else_d);
      // A branch that casts a buffer of bytes to T * keeps its bytes: it
      // holds n / sizeof(T) elements unless it says otherwise.
      const QualType outer = d.type_cast ? *d.type_cast : t;
      auto keep_bytes = [&](Descriptors &x, const Descriptors &branch) {
        if (!branch.type_cast || branch.buffer || !d.buffer || !outer->isPointerType()) return;
        const QualType from = outer->getPointeeType(),
                       to = branch.type_cast->getTypePtr()->getPointeeType();
        if (to.isNull() || !(from->isVoidType() || from->isCharType())) return;
        x.buffer = *d.buffer;
        x.buffer->text =
            "(" + d.buffer->text + ") / sizeof(" + type_name(to.getUnqualifiedType()) + ")";
      };
      keep_bytes(a, *c.then_d);
      keep_bytes(b, *c.else_d);
      v->pred = c.pred;
      v->then_v = resolve_merged(t, a, l, what);
      v->else_v = resolve_merged(t, b, l, what);
      v->type_name = type_name(t);
      v->type_name_unqual = type_name(t.getUnqualifiedType());
      v->kind = v->then_v->kind;
      return v;
    }
    if (d.type_cast) t = *d.type_cast;
    v->type_name = type_name(t);
    v->type_name_unqual = type_name(t.getUnqualifiedType());
    v->invalid_handle = d.invalid_handle;
    v->server_value = d.server_value;
    v->guest_value = d.guest_value;
    v->deferred = d.deferred;
    v->map_reads = d.map_reads;
    v->map_writes = d.map_writes;
    v->error_value = d.error_value;
    v->quota_error = d.quota_error;
    v->map_into = d.map_into;
    v->depends_on = d.depends_on;
    v->error_code = d.error_code.value_or(false);
    v->in = d.in.value_or(false);
    v->out = d.out.value_or(false);
    v->no_copy = d.no_copy.value_or(false);
    v->lifetime_manual = d.lifetime_manual.value_or(false);
    v->allocate = d.allocate.value_or(false);
    v->deallocate = d.deallocate.value_or(false);
    const QualType canon = t.getCanonicalType();
    if (d.callback != nullptr) {
      if (!canon->isFunctionPointerType()) {
        error(l, what + " is described as a callback but its type '" + v->type_name +
                     "' is not a function pointer");
      }
      v->kind = Value::Kind::Callback;
      v->callback = d.callback->getNameAsString();
      v->callback_id = callback_id(d.callback);
      return v;
    }
    if (d.userdata.value_or(false)) {
      v->kind = Value::Kind::Userdata;
      return v;
    }
    if (d.handle.value_or(false)) {
      v->kind = Value::Kind::Handle;
      v->handle_type = v->type_name_unqual;
      register_handle_type(v->type_name_unqual);
      v->handle_is_pointer = canon->isPointerType();
      v->nullable = d.nullable.value_or(false);
      if (d.handle_constants) v->handle_constants = d.handle_constants->text;
      if (!canon->isPointerType() && !canon->isIntegerType()) {
        error(l, what + ": a handle must be a pointer or integer type, not '" + v->type_name + "'");
      }
      if (const auto alias = api_.handle_aliases.find(v->handle_type);
          alias != api_.handle_aliases.end()) {
        v->also_handle_type = alias->second;
      }
      return v;
    }
    if (canon->isFunctionPointerType()) {
      error(l, what +
                   " is a function pointer: write argument(x) { callback(decl); } with a "
                   "callback_decl describing it");
      return v;
    }
    if (canon->isPointerType()) {
      v->kind = Value::Kind::Pointer;
      if (!v->in && !v->out && !v->no_copy) {
        error(l, what +
                     " is a pointer with no direction: write argument(x) { in; } if the "
                     "callee reads it, { out; } if it writes it, or { in; out; } for both");
      }
      const QualType pointee = canon->getPointeeType();
      const QualType spelled_pointee = t->getPointeeType().isNull() ? pointee : t->getPointeeType();
      if (d.buffer) {
        v->count = d.buffer;
        // A returned pointer to memory the call maps (clEnqueueMapBuffer).
        v->mapped = what.rfind("return value", 0) == 0 && v->allocate;
      } else if (v->deallocate && pointee->isVoidType()) {
        // Releases memory an earlier call mapped: its size is known from then.
        v->mapped = true;
      } else if (pointee->isVoidType() || is_char(pointee)) {
        error(l, what + " is a '" + v->type_name + "' with no size: write buffer(n) with the " +
                     (pointee->isVoidType() ? "number of bytes" : "number of characters") +
                     (is_char(pointee) ? " (for a string: buffer(strlen(x) + 1))" : ""));
      }
      if (pointee->isVoidType()) {
        auto e = std::make_shared<Value>();
        e->kind = Value::Kind::Scalar;
        e->type_name = "unsigned char";
        v->element = e;
        v->element_size = "1";
        if (d.element) error(l, what + " points to void: its elements cannot be described");
        return v;
      }
      v->element = resolve(spelled_pointee, d.element.get(), l, "element of " + what, &d);
      if (v->element->kind == Value::Kind::Pointer && v->element->element &&
          v->element->element->kind == Value::Kind::Pointer) {
        error(l, what +
                     " nests buffers more than one level deep; cava supports buffers of "
                     "buffers (T **) but not deeper");
      }
      if (v->element->kind == Value::Kind::Pointer &&
          (v->element->lifetime_manual || v->element->deallocate)) {
        error(l, what + ": lifetime_manual and deallocate apply to top-level buffers only");
      }
      v->element_size = "sizeof(" + type_name(spelled_pointee.getUnqualifiedType()) + ")";
      if (scalar_leaf(*v->element) && has_pointer_fields(pointee)) {
        error(l, what + " points to '" + type_name(pointee) +
                     "', which holds pointers that cava cannot marshal; describe them with "
                     "type_cast to a flat type or split the call");
      }
      return v;
    }
    v->kind = Value::Kind::Scalar;
    if (!canon->isVoidType() && canon->isIncompleteType()) {
      error(l, what + " has incomplete type '" + v->type_name + "'");
    } else if (has_pointer_fields(canon) && what.rfind("element of ", 0) != 0) {
      // (an element's struct is reported by the pointer to it)
      error(l, what + " is a struct holding pointers, which cava cannot marshal by value");
    }
    return v;
  }

  // A condition over buffer contents (or helpers) cannot be re-evaluated by
  // the server before it decodes the value: the guest sends its decision.
  void mark_guest_decided(const Function &fn, Value &v, const std::string &param) {
    if (!v.pred) return;
    bool decided = v.pred->has_calls;
    for (const auto &a : v.pred->args) {
      for (const auto &q : fn.params) {
        if (q.name == a && q.value && q.value->kind == Value::Kind::Pointer) decided = true;
      }
      if (a == param && v.kind == Value::Kind::Pointer) decided = true;
    }
    if (decided) v.selector = "hira_sel_" + param + "_" + std::to_string(selector_counter_++);
    mark_guest_decided(fn, *v.then_v, param);
    mark_guest_decided(fn, *v.else_v, param);
  }

  // ---- functions ---------------------------------------------------------
  // f's descriptors are `body` (its own, or a list's); `at` is where a list
  // names it (its arguments are the header's, and errors point there).
  Function build_function(const FunctionDecl *f, Scope scope, const Stmt *body = nullptr,
                          const Loc *at = nullptr) {
    Function fn;
    fn.name = f->getNameAsString();
    fn.loc = at != nullptr ? *at : loc_of(f->getLocation());
    const QualType ret = f->getReturnType();
    fn.ret_type = type_name(ret);
    fn.returns_void = ret->isVoidType();
    fn.returns_pointer = ret.getCanonicalType()->isPointerType();
    FnScope fs{&fn, {}, nullptr, f};
    parse_scope(body != nullptr ? body : f->getBody(), *std::make_shared<Descriptors>(), scope,
                &fs);
    auto param_loc = [&](const ParmVarDecl *p) {
      return at != nullptr ? *at : loc_of(p->getLocation());
    };
    if (fn.guest_side()) {
      // Answered in the guest: nothing is marshalled, so nothing to decide;
      // guest_answer checks handles and stores its code (error_code).
      unsigned i = 0;
      for (const auto *p : f->parameters()) {
        Param pr;
        pr.name = p->getNameAsString();
        if (pr.name.empty()) pr.name = "hira_arg" + std::to_string(i);
        ++i;
        const QualType type = p->getType();
        pr.type_name = type_name(type);
        pr.declaration = declaration(type, pr.name);
        pr.local_declaration = declaration(type.getUnqualifiedType(), pr.name);
        pr.loc = param_loc(p);
        pr.value = std::make_shared<Value>();
        if (fn.guest_answer) {
          const auto it = fs.args.find(pr.name);
          const Descriptors *given = it == fs.args.end()
                                         ? argument_default_for(f, pr.name, pr.type_name)
                                         : it->second.get();
          const auto ts = type_spec(type);
          if ((ts && ts->handle.value_or(false)) ||
              (given != nullptr && given->error_code.value_or(false))) {
            pr.value =
                resolve(type, given, pr.loc, "argument '" + pr.name + "' of " + fn.name, nullptr);
          }
        }
        fn.params.push_back(std::move(pr));
      }
      if (fn.guest_answer && fn.guest_answer->text.empty() && !fn.returns_void) {
        error(fn.loc, fn.name + " returns '" + fn.ret_type +
                          "': guest_answer needs the value the call fails with, e.g. "
                          "guest_answer(" +
                          (fn.returns_pointer ? "NULL" : "ERROR_CODE") + ")");
      }
      return fn;
    }
    for (const auto &[name, d] : fs.args) {
      bool found = false;
      for (const auto *p : f->parameters()) found |= p->getNameAsString() == name;
      if (!found) error(d->loc, "'" + name + "' is not an argument of " + fn.name);
    }
    for (const auto *p : f->parameters()) {
      Param pr;
      pr.name = p->getNameAsString();
      pr.loc = param_loc(p);
      if (pr.name.empty()) {
        error(pr.loc, "every argument of " + fn.name + " needs a name in the spec" +
                          (at != nullptr ? ": the header names none, so write the function out "
                                           "with its arguments named instead of listing it"
                                         : ""));
        continue;
      }
      const QualType type = p->getType();
      pr.type_name = type_name(type);
      pr.declaration = declaration(type, pr.name);
      pr.local_declaration = declaration(type.getUnqualifiedType(), pr.name);
      const auto it = fs.args.find(pr.name);
      const Descriptors *given =
          it == fs.args.end() ? argument_default_for(f, pr.name, pr.type_name) : it->second.get();
      if (given != nullptr) pr.loc = given->loc;
      pr.value = resolve(type, given, pr.loc, "argument '" + pr.name + "' of " + fn.name, nullptr);
      fn.params.push_back(std::move(pr));
    }
    for (auto &pr : fn.params) mark_guest_decided(fn, *pr.value, pr.name);
    if (!fn.returns_void) {
      Descriptors rd;
      if (auto ts = type_spec(ret)) merge_into(rd, *ts);
      if (fs.ret) merge_into(rd, *fs.ret);
      if (rd.success && !fn.success) fn.success = rd.success;
      fn.error_value = rd.error_value;
      fn.quota_error = rd.quota_error;
      const QualType canon = ret.getCanonicalType();
      const bool mapped = rd.allocate.value_or(false) && rd.buffer.has_value();
      if (canon->isPointerType() && !rd.handle.value_or(false) && !mapped) {
        error(fn.loc, fn.name +
                          " returns a pointer: cava can only return handles, or memory "
                          "the call maps: write return_value { handle; } or "
                          "return_value { out; buffer(n); allocate; }");
      } else {
        fn.ret_value = resolve(ret, fs.ret.get(), fn.loc, "return value of " + fn.name, nullptr);
      }
      if (!fn.error_value && !canon->isPointerType() && scope == Scope::Function) {
        error(fn.loc, fn.name + " returns '" + fn.ret_type +
                          "' but no error value is given for when the call cannot reach the "
                          "server: write type(" +
                          fn.ret_type +
                          ") { error_value(V); } or "
                          "return_value { error_value(V); }");
      }
    }
    return fn;
  }

  // functions(f, g, ...): the API functions a list names, and where.
  std::vector<std::pair<const FunctionDecl *, Loc>> read_function_list(const FunctionDecl *list) {
    std::vector<std::pair<const FunctionDecl *, Loc>> out;
    const auto *body = cast<CompoundStmt>(list->getBody());
    const auto *call = body->size() == 1 ? dyn_cast<CallExpr>(body->body_front()) : nullptr;
    if (call == nullptr) return out;
    for (unsigned i = 1; i < call->getNumArgs(); ++i) {
      const auto *e = call->getArg(i)->IgnoreParenImpCasts();
      const auto *r = dyn_cast<DeclRefExpr>(e);
      const auto *fd = r != nullptr ? dyn_cast<FunctionDecl>(r->getDecl()) : nullptr;
      const Loc at = written_loc(e->getBeginLoc());
      if (fd == nullptr) {
        error(at, "functions(...) lists API functions by name; write each function's name");
        continue;
      }
      out.emplace_back(fd, at);
    }
    return out;
  }

  std::map<std::string, Loc> described_;  // each function, where the spec describes it
  void read_function(const FunctionDecl *f, const Stmt *body, const Loc *at) {
    const Loc l = at != nullptr ? *at : loc_of(f->getLocation());
    if (const auto [it, fresh] = described_.emplace(f->getNameAsString(), l); !fresh) {
      error(l, "'" + f->getNameAsString() + "' is described twice, here and at " +
                   it->second.str() + ": keep one");
      return;
    }
    bool declared_elsewhere = false;
    for (const auto *r : f->redecls()) declared_elsewhere |= !in_spec(r);
    if (f->isVariadic()) {
      error(l, "'" + f->getNameAsString() + "' is variadic; cava cannot remote variadic calls");
      return;
    }
    Function fn = build_function(f, Scope::Function, body, at);
    // A function only the spec declares is the spec's own remote call: the
    // API server runs its server_impl utility.
    if (!declared_elsewhere && fn.server_impl.empty()) {
      error(l, "'" + f->getNameAsString() +
                   "' is not declared by any header the spec includes; a spec re-declares API "
                   "functions (include the vendor header first), marks helpers with utility, "
                   "or gives a call of its own server_impl(utility)");
      return;
    }
    fn.spec_only = !declared_elsewhere;
    fn.id = static_cast<int>(api_.functions.size());
    if (!fn.server_checks.empty() && !fn.success) {
      error(fn.server_checks.front().loc,
            fn.name +
                " has no success value: server_check(expr) and guest_server_check(expr) return "
                "expr in place of the call unless it is the success value; write success(v) "
                "in type(T) or the function");
    }
    if (!fn.guest_checks.empty() && !fn.async && !fn.async_if) {
      error(fn.guest_checks.front().loc,
            fn.name +
                " is sync: guest_check only applies to async calls (the server reports "
                "a sync call's errors itself); write async or async_if(cond)");
    }
    // deferred(...) describes an argument's own out buffer of bytes (in any
    // branch of its conditions), never an element of one.
    for (const auto &p : fn.params) {
      std::function<void(const Value &, bool)> check = [&](const Value &v, bool nested) {
        if (v.pred) {
          check(*v.then_v, nested);
          check(*v.else_v, nested);
          return;
        }
        if (v.deferred && (nested || v.kind != Value::Kind::Pointer || !v.is_bulk() ||
                           (!v.out && !v.in) || v.lifetime_manual)) {
          error(p.loc, "deferred(...) on '" + p.name + "' of " + fn.name +
                           " needs the argument's own buffer of plain bytes, out (filled after "
                           "the call returns) or only in (read after it returns), without "
                           "lifetime_manual: write argument(" +
                           p.name + ") { out; buffer(n); ... } or { in; buffer(n); ... }");
        }
        if (v.deferred) {
          const Param *ev = nullptr;
          for (const auto &q : fn.params) {
            if (q.name == v.deferred->event_param) ev = &q;
          }
          if (ev == nullptr || ev->value->kind != Value::Kind::Pointer || !has_out(*ev->value)) {
            error(p.loc, "deferred(" + v.deferred->event_param + ", ...) on '" + p.name + "' of " +
                             fn.name +
                             ": the completion object must come back through an out argument "
                             "of the call: write argument(EV) { out; element { allocate; } } "
                             "and name EV");
          }
        }
        if (v.element) check(*v.element, true);
      };
      check(*p.value, false);
    }
    if (fn.cache_if) {
      // Only answers that are plain data can be given again.
      bool changes = fn.async || fn.async_if || fn.returns_void || !fn.success ||
                     (fn.ret_value && fn.ret_value->kind != Value::Kind::Scalar);
      for (const auto &p : fn.params) {
        const Value &v = *p.value;
        changes |= v.allocate || v.deallocate || v.mapped || v.kind == Value::Kind::Callback ||
                   v.kind == Value::Kind::Userdata ||
                   (v.element && (v.element->allocate || v.element->deallocate));
      }
      if (changes) {
        error(fn.cache_if->loc,
              fn.name +
                  ": guest_cache_if needs a sync function with success(V) that returns a "
                  "status and allocates, maps or registers nothing; remove it");
      }
    }
    // server_allocates_rc and rc_until_destroyed describe the handle the
    // call returns.
    const bool allocates_handle =
        fn.ret_value && fn.ret_value->kind == Value::Kind::Handle && fn.ret_value->allocate;
    auto object_rc_misplaced = [&](const Loc &at, const std::string &what) {
      if (allocates_handle && !fn.async && !fn.async_if) return;
      error(at, fn.name + ": " + what +
                    " describes the handle a call returns: use it on a sync function whose "
                    "return_value has allocate, or remove it");
    };
    for (const auto &u : fn.resources) {
      if (u.op != ResourceUse::Op::ServerAllocate) continue;
      if (u.handle_arg.empty()) {
        object_rc_misplaced(u.amount.loc, "server_allocates_rc");
        continue;
      }
      // Held by a handle argument: measured after a successful sync call.
      const Param *held = fn.param(u.handle_arg);
      if (held == nullptr || held->value->kind != Value::Kind::Handle) {
        error(u.amount.loc, fn.name + ": server_allocates_rc(" + u.resource + ", x, " +
                                u.handle_arg + "): '" + u.handle_arg +
                                "' is not a handle argument; name one the guest holds");
      } else if (fn.async || fn.async_if || !fn.success) {
        error(u.amount.loc, fn.name + ": server_allocates_rc(" + u.resource + ", x, " +
                                u.handle_arg +
                                ") is measured after a successful call: use it on a sync "
                                "function with success(V)");
      }
    }
    if (!fn.destroy_watch.empty()) object_rc_misplaced(fn.destroy_watch_loc, "rc_until_destroyed");
    if (fn.async || fn.async_if) {
      if (!fn.returns_void && !fn.success) {
        error(async_loc_, fn.name +
                              " is async but says nothing about success: write success(V) "
                              "so the guest can return V at once");
      }
      // async_if: the condition is the spec's promise that outs are not asked for.
      for (const auto &p : fn.params) {
        if (fn.async && has_out(*p.value)) {
          error(p.loc, fn.name + " is async but argument '" + p.name +
                           "' is out: async calls return before the server runs; make it "
                           "sync or describe the buffer no_copy with lifetime_manual");
        }
      }
    }
    for (const auto &u : fn.resources) {
      // server_allocates_rc: the API server evaluates it, with everything
      // the call's plain statements may use.
      if (u.op == ResourceUse::Op::ServerAllocate || u.op == ResourceUse::Op::ServerConsume) {
        continue;
      }
      for (const auto &a : u.amount.args) {
        if (const Param *p = fn.param(a); p != nullptr && p->value->kind == Value::Kind::Pointer) {
          error(u.amount.loc,
                "resource amounts are computed by the router from scalar arguments; '" + a +
                    "' is a pointer");
        }
      }
      if (u.amount.uses_metadata || (u.amount.has_calls && u.handle_arg.empty())) {
        error(u.amount.loc, "resource amounts must be plain expressions over scalar arguments");
      }
    }
    api_.functions.push_back(std::move(fn));
  }

  static bool has_out(const Value &v) {
    if (v.pred) return has_out(*v.then_v) || has_out(*v.else_v);
    if (v.kind == Value::Kind::Pointer) {
      if (v.out && !v.no_copy) return true;
      return v.element && has_out(*v.element);
    }
    return false;
  }

  void read_callback(const FunctionDecl *f) {
    Callback cb;
    cb.name = f->getNameAsString();
    cb.id = static_cast<int>(api_.callbacks.size());
    api_.callbacks.push_back(cb);  // so resolve() can find its id
    Function fn = build_function(f, Scope::Callback);
    for (const auto &p : fn.params) {
      if (p.value->kind == Value::Kind::Userdata) cb.userdata_param = p.name;
      if (p.value->kind == Value::Kind::Callback) {
        error(p.loc, "a callback cannot take another callback");
      }
    }
    if (cb.userdata_param.empty()) {
      error(loc_of(f->getLocation()),
            "callback_decl " + cb.name +
                " has no userdata argument: write "
                "argument(user_data) { userdata; } for the pointer the API passes back");
    }
    cb.fn = std::move(fn);
    api_.callbacks.back() = std::move(cb);
  }

  ASTContext &ctx_;
  SourceManager &sm_;
  Api &api_;
  std::vector<std::string> &errors_;
  std::map<std::string, std::shared_ptr<Descriptors>> type_specs_;
  std::vector<const FunctionDecl *> callback_decls_;
  std::vector<std::string> spec_decls_;
  std::vector<std::pair<std::string, Loc>> accepted_handles_;  // accepts_handle(T), where
  Loc async_loc_;  // where the function being read says async
  int selector_counter_ = 0;
};

}  // namespace

std::vector<std::string> descriptor_names() {
  std::vector<std::string> names;
  for (const auto &[name, rule] : Parser::descriptor_table()) names.push_back(name);
  return names;
}

ParseResult parse_spec(const ParseOptions &options) {
  ParseResult result;
  std::ifstream in(options.spec_path);
  if (!in) {
    result.errors.push_back(options.spec_path + ":1: error: cannot read the spec");
    return result;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  // A spec describes the API's deprecated entry points too (old programs call them).
  std::vector<std::string> args = {"-x",
                                   "c",
                                   "-std=gnu11",
                                   "-fsyntax-only",
                                   "-Wno-unused-value",
                                   "-Wno-return-type",
                                   "-Wno-deprecated-declarations"};
  if (!options.resource_dir.empty()) {
    args.push_back("-resource-dir");
    args.push_back(options.resource_dir);
  }
  for (const auto &dir : options.include_dirs) args.push_back("-I" + dir);
  const auto slash = options.spec_path.rfind('/');
  args.push_back(
      "-I" + (slash == std::string::npos ? std::string(".") : options.spec_path.substr(0, slash)));
  result.ast = clang::tooling::buildASTFromCodeWithArgs(ss.str(), args, options.spec_path, "cava");
  if (!result.ast || result.ast->getDiagnostics().hasErrorOccurred()) {
    result.errors.push_back(options.spec_path +
                            ":1: error: the spec does not compile as C "
                            "(Clang's messages above name the lines)");
    return result;
  }
  result.api.spec_file = options.spec_path;
  // The vendor headers the spec includes, and the macros it defines before
  // them (e.g. CL_TARGET_OPENCL_VERSION), for the generated code.
  std::istringstream lines(ss.str());
  bool seen_lapis = false;
  for (std::string line; std::getline(lines, line);) {
    if (!seen_lapis && line.rfind("#define", 0) == 0) result.api.defines.push_back(line);
    const auto inc = line.find("#include");
    if (inc == std::string::npos || line.find_first_not_of(" \t") != inc) continue;
    const auto open = line.find_first_of("<\"", inc);
    const auto close = open == std::string::npos ? open : line.find_first_of(">\"", open + 1);
    if (close == std::string::npos) continue;
    const std::string header = line.substr(open + 1, close - open - 1);
    if (header == "lapis.h") {
      seen_lapis = true;
    } else {
      result.api.includes.push_back(header);
    }
  }
  Parser(*result.ast, result.api, result.errors).run();
  // While a draft still has lapis_todo markers, the errors that follow from
  // them (no direction, no error value, ...) are noise: report the todos.
  std::vector<std::string> todos;
  for (const auto &e : result.errors) {
    if (e.find("unresolved lapis_todo") != std::string::npos) todos.push_back(e);
  }
  if (!todos.empty()) result.errors = todos;
  return result;
}

}  // namespace cava
