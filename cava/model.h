// The model of an API that cava builds from a LAPIS spec and that every
// emitter reads: plain data (C types as the text generated code spells
// them), so that tests build models by hand and emitters need no Clang.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace cava {

struct Loc {
  std::string file;
  unsigned line = 0;
  std::string str() const { return file + ":" + std::to_string(line); }
};

// An expression written in the spec, kept as C source text over the names the
// spec uses (argument names, `index`, `metadata(x)`, utilities).
struct Expr {
  std::string text;
  std::set<std::string> args;  // argument names the expression reads
  bool uses_index = false;
  bool uses_metadata = false;
  bool has_calls = false;  // calls any function (strlen, utilities, ...)
  Loc loc;
};

// deferred(ev, done, retain, release): an out buffer the callee fills after
// the call returns (see lapis.h).
struct Deferred {
  std::string event_param, done_fn, retain_fn, release_fn;
};

// A value after descriptors, type defaults and conditionals are resolved.
struct Value {
  enum class Kind { Scalar, Handle, Pointer, Callback, Userdata };
  Kind kind = Kind::Scalar;
  std::string type_name;           // the C type of the value (after type_cast)
  std::string type_name_unqual;    // for declaring mutable copies
  std::string handle_type;         // Handle: the handle's type name
  bool handle_is_pointer = false;  // pointer handles are boxed in the guest
  bool nullable = false;           // NULL is a valid handle (CUDA's default stream)
  std::string handle_constants;    // handle_constants(max): 1..max are the API's constants
  std::string also_handle_type;    // accepts_handle(T): T's handles pass as this type's
  bool in = false, out = false, no_copy = false, lifetime_manual = false, allocate = false,
       deallocate = false;
  std::optional<Expr> count;       // Pointer: elements (default 1)
  std::shared_ptr<Value> element;  // Pointer: what each element is
  std::string element_size;        // Pointer: "sizeof(T)" or "1" for void
  std::optional<Expr> invalid_handle;
  std::optional<Expr> server_value;
  std::optional<Expr> guest_value;  // what the guest sends instead (e.g. handles as wire ids)
  // deferred(ev, done, release): an out buffer filled after the call returns.
  std::optional<Deferred> deferred;
  std::optional<Expr> error_value;  // from type(T) { error_value(v); }
  std::optional<Expr> quota_error;  // from type(T) { quota_error(v); }
  bool error_code = false;          // receives the call's error code
  std::string callback;             // Callback: its callback_decl's name
  int callback_id = -1;
  // A conditional value: pred ? then_v : else_v (both fully resolved).
  std::optional<Expr> pred;
  std::shared_ptr<Value> then_v, else_v;
  // Set when the server cannot evaluate pred before decoding (it reads buffer
  // contents): the guest sends its decision in this variable's byte.
  std::string selector;

  // Memory a call maps (a returned buffer with allocate) or unmaps (a void *
  // argument with deallocate): the guest keeps a copy, the server the real one.
  bool mapped = false;
  std::optional<Expr> map_into;               // mapped return: guest address to map at
  std::optional<Expr> map_reads, map_writes;  // mapped return: which way the bytes travel
  std::optional<Expr> depends_on;             // allocated handle: the object it lives in
  bool is_bulk() const;                       // Pointer whose elements are plain bytes
};

struct Param {
  std::string name;
  std::string type_name;
  std::string declaration;        // "T name" as a parameter declaration
  std::string local_declaration;  // the same without top-level qualifiers
  std::shared_ptr<Value> value;
  Loc loc;
};

struct ResourceUse {
  // ServerAllocate: server_allocates_rc, evaluated by the API server.
  // ServerConsume: consumes_rc whose amount uses lapis_call_ns(): measured
  // by the API server.
  enum class Op { Consume, Allocate, Deallocate, ServerAllocate, ServerConsume };
  Op op;
  std::string resource;
  Expr amount;
  // Deallocate by handle, or ServerAllocate held by a handle argument (not
  // the returned handle): the argument's name.
  std::string handle_arg;
};

struct Function {
  std::string name;
  std::string ret_type;
  bool returns_void = false;
  bool returns_pointer = false;
  std::shared_ptr<Value> ret_value;  // nullptr for void
  std::vector<Param> params;
  bool async = false;
  std::optional<Expr> success;
  std::optional<Expr> error_value;
  std::optional<Expr> quota_error;
  std::vector<ResourceUse> resources;
  std::vector<std::string> statements;  // plain C run after a successful call
  std::string guest_impl;               // guest_only: the guest_utility that implements it
  std::string same_as;                  // same_as: the API function the guest calls instead
  std::optional<Expr> guest_answer;     // guest_answer: the guest fails the call with this
  std::string guest_wrap;               // guest_wrap: the guest_utility calls go through
  std::string server_impl;              // server_impl: the utility the API server runs
  bool spec_only = false;               // declared by the spec alone: hira's own call
  std::string symbol_version;           // version node in the guest library
  std::vector<Expr> guest_checks;       // guest_check(expr), async calls only
  std::vector<Expr> server_checks;      // server_check(expr): evaluated before the real call
  // guest_server_check(expr): evaluated in the guest before anything is sent (a failure
  // returns at once) and, as a server_check, in the server (also in
  // server_checks: the server trusts no guest).
  std::vector<Expr> guest_refusals;
  std::optional<Expr> async_if;         // async for calls where this holds
  std::optional<Expr> cache_if;         // guest_cache_if: answers reused while this holds
  std::string destroy_watch;            // rc_until_destroyed: the watch utility, or ""
  Loc destroy_watch_loc;
  // The guest decides per call whether it is sent async: async_if, or async
  // with guest_checks (a call the checks refuse goes sync, so that the real
  // implementation decides its error, exactly as natively).
  bool async_per_call() const { return async_if.has_value() || (async && !guest_checks.empty()); }
  // Never sent: the guest answers it (guest_only, same_as, guest_answer).
  bool guest_side() const {
    return !guest_impl.empty() || !same_as.empty() || guest_answer.has_value();
  }
  // Every call is sent async.
  bool always_async() const { return async && guest_checks.empty(); }
  // The parameter called `name`, or nullptr.
  const Param *param(const std::string &name) const {
    for (const auto &p : params) {
      if (p.name == name) return &p;
    }
    return nullptr;
  }
  int id = 0;
  Loc loc;
};

struct Callback {
  std::string name;
  int id = 0;
  Function fn;  // its shape: params and return
  std::string userdata_param;
};

// A function of the vendor's headers the spec leaves out: the guest library
// exports it anyway, answering lapis_unsupported_functions()'s value.
struct Unsupported {
  std::string name;
  std::string ret_type;
  std::string declaration;  // "RET name(params)"
};

struct Resource {
  std::string name;
  bool continuous = false;
};

// A C function of the spec that the guest library exports under its own
// name (guest_export): an entry point the vendor's header declares only in
// another configuration (CUDA's per-thread default stream, _ptsz/_ptds).
struct GuestExport {
  std::string name;  // the symbol the guest library exports
  std::string text;  // its definition, as written (spec-local macros expanded)
  // guest_export_as("symbol"): the C function's own name and its prototype
  // (RET c_name(PARAMS)); the symbol is given by an asm label. Empty for a
  // plain guest_export (the function is named as its symbol).
  std::string c_name, prototype;
};

struct Api {
  std::string name, version, guest_soname, server_library;
  std::string spec_file;
  std::vector<std::string> includes;  // vendor headers the spec includes
  std::vector<Function> functions;
  std::vector<Callback> callbacks;
  std::vector<Resource> resources;
  std::vector<std::string> handle_types;
  // accepts_handle: handle type -> the other handle type accepted as it.
  std::map<std::string, std::string> handle_aliases;
  std::vector<std::string> declarations;  // types the spec declares (structs, typedefs)
  std::vector<std::string> utilities;     // source text of utility functions
  std::vector<std::string> guest_utilities;
  std::vector<GuestExport> guest_exports;
  std::vector<std::string> defines;  // #define lines the spec puts before its includes
  std::string default_symbol_version;
  std::string icd_dispatch_type;                 // "" when the API has no ICD table
  std::vector<std::string> icd_dispatch_fields;  // in declaration order
  std::string metadata_type;                     // "" when no declare_metadata
  std::string server_warmup;                     // lapis_server_warmup: a utility, or ""
  std::string unsupported_prefix;                // lapis_unsupported_functions: name prefix
  std::optional<Expr> unsupported_value;         // ... and what those functions return
  std::vector<Unsupported> unsupported;
  uint64_t signature = 0;
};

}  // namespace cava
