// Helpers shared by the emitters: an indenting writer and the encoders that
// both the guest stubs and the server's callback trampolines use.
#pragma once

#include <sstream>
#include <string>
#include <vector>

#include "model.h"

namespace cava {

// Generated source, line by line; str() indents it by brace depth and drops
// the branches that came out empty (an `if (c) { }`, an empty `else`), so
// that what a user reads holds only code that does something.
class Code {
 public:
  Code &line(const std::string &s = "") {
    parts_.push_back({s, false});
    return *this;
  }
  Code &raw(const std::string &s) {
    parts_.push_back({s, true});
    return *this;
  }
  std::string str() const;

 private:
  struct Part {
    std::string text;
    bool raw = false;
  };
  std::vector<Part> parts_;
};

// "RET NAME(PARAMS)" for f under `name`.
std::string signature(const Function &f, const std::string &name);
// The wire type constant of a handle type: HT_cl_mem.
std::string handle_type_enum(const std::string &type_name);
std::string protocol_header_name(const Api &api);
enum class Side { Guest, Server };
// Includes, spec declarations and utilities every generated file starts with.
void emit_prelude(Code &c, const Api &api, const std::string &what, Side side, bool utilities);
// `(T)(uintptr_t)(x)`-style conversion of a wire id to a handle type.
std::string handle_from_id(const std::string &type, const std::string &id);
// In the guest: the application's handle for a wire id, and back.
std::string guest_handle_from_id(const Value &v, const std::string &id);
std::string guest_id_of(const Value &v, const std::string &x);

// Writes value `x` into Writer `w` (inside an already open blob).
void emit_encode(Code &c, const Value &v, const std::string &x, const std::string &w, int depth,
                 Side side, const std::string &count_var);
// Reads a value written by emit_encode from Reader `r` into `x` on the
// receiving side of a callback (guest). Pointers point into the frame.
void emit_callback_decode(Code &c, const Value &v, const std::string &x, const std::string &r);
// `ret (*)(params)` for a callback's C function pointer type.
std::string function_pointer_type(const Function &f);
bool has_out_data(const Value &v);
// An out-only array of handles the call creates (cl_event *event): the guest
// chooses their ids and sends them after the array's count, so that a call
// sent async can hand the application its handles at once (as Mesa's Venus
// does); the server binds its new objects to them.
bool takes_guest_ids(const Value &v);
// The branch of v that is a deferred out buffer, or nullptr; and whether there is one.
const Value *deferred_value(const Value &v);
bool has_deferred(const Value &v);
// A deferred out buffer: its bytes come later, in a Data frame with a token.
bool has_deferred_out(const Value &v);
// Declares `uint8_t <selector> = 0;` for every guest-decided condition in v.
void declare_selectors(Code &c, const Value &v);
// The condition a generated `if` tests: the selector where there is one.
std::string condition(const Value &v);
// For a conditional value: `if (cond) { each(then) } else { each(else) }`.
// Returns false (and writes nothing) when v has no condition.
template <class Each>
bool emit_branches(Code &c, const Value &v, Each &&each) {
  if (!v.pred) return false;
  c.line("if (" + condition(v) + ") {");
  each(*v.then_v);
  c.line("} else {");
  each(*v.else_v);
  c.line("}");
  return true;
}
std::string success_test(const Function &f, const std::string &ret);
// Opens the block that runs when the call succeeded ("{" where all do).
void open_if_success(Code &c, const Function &f, const std::string &ret);

// The router module's index of a declared resource.
size_t resource_index(const Api &api, const std::string &name);

}  // namespace cava
