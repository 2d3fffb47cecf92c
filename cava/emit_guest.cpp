// The guest library: one exported stub per API function.
#include <algorithm>
#include <functional>
#include <map>

#include "emit.h"
#include "emit_util.h"

namespace cava {

namespace {

const Param *error_code_param(const Function &f) {
  for (const auto &p : f.params) {
    if (p.value->error_code && p.value->kind == Value::Kind::Pointer) return &p;
  }
  return nullptr;
}

// Deferred buffers of a call that failed: out data will never come, in
// data is not read (its window space is free again).
void emit_forget_deferred(Code &c, const Function &f) {
  for (const auto &p : f.params) {
    if (has_deferred(*p.value)) {
      c.line("::hira::guest::forget_data(hira_token_" + p.name + ");");
    }
  }
}

void emit_failure_return(Code &c, const Function &f) {
  // The error the application sees when the call could not run: the API's
  // invalid-handle code for a refused argument, else the type's error_value.
  emit_forget_deferred(c, f);
  const Param *ec = error_code_param(f);
  const bool code_in_ret = !f.returns_void && !f.returns_pointer;
  std::string code_type, fallback = "0";
  const Expr *quota = nullptr;
  if (ec != nullptr) {
    code_type = ec->value->element->type_name_unqual;
    if (ec->value->element->error_value) fallback = ec->value->element->error_value->text;
    if (ec->value->element->quota_error) quota = &*ec->value->element->quota_error;
  } else if (code_in_ret) {
    code_type = f.ret_type;
    if (f.error_value) fallback = f.error_value->text;
    if (f.quota_error) quota = &*f.quota_error;
  }
  c.line("::hira::guest::report_failure(kApiInfo, FN_" + f.name + ", hira_call.status());");
  if (!code_type.empty()) {
    c.line(code_type + " hira_code = (" + code_type + ")(" + fallback + ");");
    // An argument's own code, or its elements' (a list of handles), or
    // that of the first of its branches that has one.
    std::function<const Expr *(const Value &)> handle_code = [&](const Value &v) -> const Expr * {
      if (v.invalid_handle) return &*v.invalid_handle;
      if (v.element && v.element->invalid_handle) return &*v.element->invalid_handle;
      if (!v.pred) return nullptr;
      const Expr *in_then = handle_code(*v.then_v);
      return in_then != nullptr ? in_then : handle_code(*v.else_v);
    };
    if (quota != nullptr) {
      c.line("if (hira_call.status() == ::hira::wire::ReplyStatus::OverQuota) hira_code = (" +
             code_type + ")(" + quota->text + ");  // quota_error");
    }
    bool any_handle_code = false;
    for (const auto &p : f.params) any_handle_code |= handle_code(*p.value) != nullptr;
    if (any_handle_code) {
      c.line("if (hira_call.status() == ::hira::wire::ReplyStatus::BadHandle ||");
      c.line("    hira_call.status() == ::hira::wire::ReplyStatus::BadArgument) {");
      c.line("switch (hira_call.detail()) {");
      for (size_t i = 0; i < f.params.size(); ++i) {
        if (const Expr *code = handle_code(*f.params[i].value)) {
          c.line("case " + std::to_string(i) + ": hira_code = (" + code_type + ")(" + code->text +
                 "); break;");
        }
      }
      c.line("default: break;");
      c.line("}");
      c.line("}");
    }
    if (ec != nullptr) c.line("if (" + ec->name + " != nullptr) *" + ec->name + " = hira_code;");
  }
  if (f.returns_void) {
    c.line("return;");
  } else if (code_in_ret && ec == nullptr) {
    c.line("return hira_code;");
  } else if (f.error_value) {
    c.line("return (" + f.ret_type + ")(" + f.error_value->text + ");");
  } else {
    c.line("return (" + f.ret_type + ")0;");
  }
}

const Param *userdata_param(const Function &f) {
  for (const auto &p : f.params) {
    if (p.value->kind == Value::Kind::Userdata) return &p;
  }
  return nullptr;
}

void emit_arg(Code &c, const Function &f, const Param &p) {
  c.line("{  // " + p.name);
  c.line("const auto hira_blob = hira_w.begin_blob();");
  const Value &v = *p.value;
  if (v.kind == Value::Kind::Callback) {
    const Param *ud = userdata_param(f);
    c.line("hira_w.put_u64(" + p.name +
           " == nullptr ? 0 : ::hira::guest::register_callback((void *)" + p.name + ", " +
           (ud != nullptr ? "(void *)" + ud->name : "nullptr") + "));");
  } else if (v.mapped) {
    c.line("::hira::guest::encode_unmap(hira_w, " + p.name + ");");
  } else if (v.guest_value) {
    // Sizes are the application's value's; the bytes are guest_value's.
    c.line("const auto hira_gv_" + p.name + " = (std::remove_reference_t<decltype(" + p.name +
           ")>)(" + v.guest_value->text + ");  // guest_value");
    emit_encode(c, v, "hira_gv_" + p.name, "hira_w", 0, Side::Guest,
                v.kind == Value::Kind::Pointer ? "hira_n_" + p.name : "");
  } else {
    emit_encode(c, v, p.name, "hira_w", 0, Side::Guest,
                v.kind == Value::Kind::Pointer ? "hira_n_" + p.name : "");
  }
  if (takes_guest_ids(v)) {
    // Ids for the handles the call creates, chosen here (see takes_guest_ids).
    c.line("if (" + p.name + " != nullptr) {");
    c.line("hira_gids_" + p.name + ".resize(hira_n_" + p.name + ");");
    c.line("for (auto &hira_g : hira_gids_" + p.name +
           ") hira_w.put_u64(hira_g = ::hira::guest::new_handle_id());");
    c.line("}");
  }
  c.line("hira_w.end_blob(hira_blob);");
  c.line("}");
}

void emit_out_element(Code &c, const Value &e, const std::string &slot, const std::string &r,
                      int depth);

// Copies what the server sent back for one argument into the application's memory.
void emit_out(Code &c, const Value &v, const std::string &x, const std::string &cap,
              const std::string &r, int depth) {
  if (emit_branches(c, v, [&](const Value &b) { emit_out(c, b, x, cap, r, depth); })) {
    return;
  }
  if (v.kind != Value::Kind::Pointer || !has_out_data(v)) return;
  const std::string n = "hira_got" + std::to_string(depth);
  c.line("if (" + x + " != nullptr && " + r + ".remaining() != 0) {");
  c.line("uint64_t " + n + " = " + r + ".get_u64();");
  c.line("if (" + n + " > " + cap + ") " + n + " = 0;  // never write past what we sent");
  const auto &e = *v.element;
  if (v.is_bulk()) {
    c.line("if (const uint8_t *hira_src = " + r + ".bulk(" + n + " * " + v.element_size + ")) {");
    c.line("::hira::copy_bulk((void *)" + x + ", hira_src, " + n + " * " + v.element_size + ");");
    c.line("}");
  } else {
    const std::string i = "hira_i" + std::to_string(depth);
    c.line("for (uint64_t " + i + " = 0; " + i + " < " + n + "; ++" + i + ") {");
    c.line("[[maybe_unused]] const uint64_t index = " + i + ";");
    emit_out_element(c, e, "((" + e.type_name_unqual + " *)" + x + ")[" + i + "]", r, depth);
    c.line("}");
  }
  c.line("}");
}

// One element of a non-bulk out buffer (handles, conditional elements, buffers).
void emit_out_element(Code &c, const Value &e, const std::string &slot, const std::string &r,
                      int depth) {
  const std::string cast = "(std::remove_reference_t<decltype(" + slot + ")>)";
  if (e.pred) {
    c.line("if (" + condition(e) + ") {");
    emit_out_element(c, *e.then_v, slot, r, depth);
    c.line("} else {");
    emit_out_element(c, *e.else_v, slot, r, depth);
    c.line("}");
  } else if (e.kind == Value::Kind::Handle) {
    c.line(slot + " = " + cast + "(uintptr_t)" + guest_handle_from_id(e, r + ".get_u64()") + ";");
    if (e.allocate && e.handle_is_pointer) {
      c.line("::hira::guest::retain_handle((const void *)(uintptr_t)" + slot + ");");
    }
  } else if (e.kind == Value::Kind::Scalar) {
    c.line(slot + " = " + cast + r + ".get<" + e.type_name_unqual + ">();");
  } else if (e.kind == Value::Kind::Pointer) {
    const std::string cap = "hira_cap" + std::to_string(depth + 1);
    c.line("const uint64_t " + cap + " = (uint64_t)(" + (e.count ? e.count->text : "1") + ");");
    emit_out(c, e, slot, cap, r, depth + 1);
  }
}

bool has_refcount(const Value &v) {
  return v.kind == Value::Kind::Handle && v.handle_is_pointer && (v.allocate || v.deallocate);
}

// The application's references to handle arguments, as the server counts them.
void emit_refcounts(Code &c, const Function &f) {
  for (const auto &p : f.params) {
    if (!has_refcount(*p.value)) continue;
    c.line(std::string("::hira::guest::") +
           (p.value->allocate ? "add_handle_reference" : "release_handle") + "((const void *)" +
           p.name + ");");
  }
}

// An async call cannot report an error later in its own result: NULL,
// unknown and released handles are refused before sending (their errors are
// the guest's to decide exactly). A call that a guest_check expects to fail
// goes sync instead, so that the implementation itself returns its error.
// The guest's test that refuses handle argument `name` before sending: NULL
// (unless the type allows it), unknown or released.
std::string handle_refused(const Value &v, const std::string &name) {
  return (v.nullable ? name + " != nullptr && " : name + " == nullptr || ") + guest_id_of(v, name) +
         " == ::hira::guest::kInvalidHandle";
}

void emit_async_checks(Code &c, const Function &f) {
  if (f.returns_void) return;
  for (const auto &p : f.params) {
    const Value &v = *p.value;
    if (v.kind != Value::Kind::Handle || !v.handle_is_pointer || !v.invalid_handle) continue;
    // NULL: refused too, unless the type says NULL is a valid handle. A call
    // the guest may also send synchronously goes so instead, and the
    // implementation gives its own error (as for a failed guest_check).
    c.line("if (" + handle_refused(v, p.name) + ") {");
    if (f.async_per_call()) {
      c.line("hira_async = false;");
    } else {
      c.line("return (" + f.ret_type + ")(" + v.invalid_handle->text + ");");
    }
    c.line("}");
  }
  for (const auto &check : f.guest_checks) {
    c.line("if (hira_async && !" + success_test(f, "(" + f.ret_type + ")(" + check.text + ")") +
           ") {");
    c.line("hira_async = false;  // guest_check: expected to fail, the implementation says how");
    c.line("}");
  }
}

// An async call was sent: the handles it creates are the ids the guest chose.
void emit_async_outs(Code &c, const Function &f) {
  for (const auto &p : f.params) {
    if (!takes_guest_ids(*p.value)) continue;
    const Value &e = *p.value->element;
    c.line("if (" + p.name + " != nullptr) {");
    c.line("for (size_t hira_i = 0; hira_i < hira_gids_" + p.name + ".size(); ++hira_i) {");
    c.line(p.name + "[hira_i] = " + guest_handle_from_id(e, "hira_gids_" + p.name + "[hira_i]") +
           ";");
    c.line("::hira::guest::retain_handle((const void *)" + p.name + "[hira_i]);");
    c.line("}");
    c.line("}");
  }
}

// An async call was sent: its statements run as if it succeeded, which the
// guest's checks make likely; a failure comes back with a later sync call.
void emit_async_return(Code &c, const Function &f) {
  if (f.returns_void) {
    for (const auto &s : f.statements) c.line(s);
    c.line("return;");
    return;
  }
  c.line("[[maybe_unused]] const " + f.ret_type + " hira_ret = (" + f.ret_type + ")(" +
         f.success->text + ");");
  for (const auto &s : f.statements) c.line(s);
  c.line("return hira_ret;");
}

// The exported function of a guest_only or guest_wrap function: a call of
// its utility.
void emit_forward(Code &c, const Function &f, const std::string &to, const char *why) {
  std::string args;
  for (const auto &p : f.params) args += (args.empty() ? "" : ", ") + p.name;
  c.line("extern \"C\" HIRA_EXPORT " + signature(f, f.name) + " {");
  c.line("return " + to + "(" + args + ");  // " + why);
  c.line("}");
  c.line();
}

// A guest_answer function: its handle arguments are checked as the server
// would (an unknown one fails with its own code), then it fails with the
// spec's answer, in the result or the error_code argument.
void emit_guest_answer(Code &c, const Function &f) {
  c.line("extern \"C\" HIRA_EXPORT " + signature(f, f.name) + " {  // guest_answer: never sent");
  std::string unused;
  for (const auto &p : f.params) unused += (unused.empty() ? "(void)" : ", (void)") + p.name;
  if (!unused.empty()) c.line(unused + ";");
  const Param *ec = error_code_param(f);
  const bool code_in_ret = !f.returns_void && !f.returns_pointer;
  auto fail = [&](const std::string &code) {
    if (ec != nullptr) {
      c.line("if (" + ec->name + " != nullptr) *" + ec->name + " = (" +
             ec->value->element->type_name_unqual + ")(" + code + ");");
      c.line(f.returns_void ? "return;" : "return (" + f.ret_type + ")0;");
    } else if (code_in_ret || (f.returns_pointer && !f.guest_answer->text.empty())) {
      c.line("return (" + f.ret_type + ")(" + code + ");");
    } else {
      c.line(f.returns_void ? "return;" : "return (" + f.ret_type + ")0;");
    }
  };
  if (ec != nullptr || code_in_ret) {
    for (const auto &p : f.params) {
      const Value &v = *p.value;
      if (v.kind != Value::Kind::Handle || !v.handle_is_pointer || !v.invalid_handle) continue;
      c.line("if (" + handle_refused(v, p.name) + ") {");
      fail(v.invalid_handle->text);
      c.line("}");
    }
  }
  fail(f.guest_answer->text.empty() ? "0" : f.guest_answer->text);
  c.line("}");
  c.line();
}

void emit_stub(Code &c, const Function &f) {
  if (!f.guest_impl.empty()) {
    emit_forward(c, f, f.guest_impl, "guest_only");
    return;
  }
  if (!f.same_as.empty()) {
    emit_forward(c, f, f.same_as, "same_as");
    return;
  }
  if (f.guest_answer) {
    emit_guest_answer(c, f);
    return;
  }
  if (!f.guest_wrap.empty()) {
    // The application's calls go through the utility; the remote call is
    // the stub below, under the name lapis_remote() gives it.
    emit_forward(c, f, f.guest_wrap, "guest_wrap");
    c.line("static " + signature(f, "hira_remote_" + f.name) + " {");
  } else {
    c.line("extern \"C\" HIRA_EXPORT " + signature(f, f.name) + " {");
  }
  for (const auto &check : f.guest_refusals) {
    c.line("if (const " + f.ret_type + " hira_refused = (" + f.ret_type + ")(" + check.text +
           "); !" + success_test(f, "hira_refused") + ") {");
    c.line("return hira_refused;  // guest_server_check: the server would refuse it too");
    c.line("}");
  }
  if (f.async_per_call()) {
    c.line("bool hira_async = (" + (f.async_if ? f.async_if->text : std::string("true")) +
           ");  // " + (f.async_if ? "async_if" : "async unless a guest_check fails"));
    c.line("if (hira_async) {");
    emit_async_checks(c, f);
    c.line("}");
  }
  if (f.always_async()) emit_async_checks(c, f);
  c.line("::hira::guest::Call hira_call(kApiInfo, FN_" + f.name + ", " +
         (f.always_async()     ? "true"
          : f.async_per_call() ? "hira_async"
                               : "false") +
         ");");
  c.line("[[maybe_unused]] ::hira::Writer &hira_w = hira_call.args();");
  for (const auto &p : f.params) {
    if (p.value->kind == Value::Kind::Pointer && !p.value->mapped) {
      c.line("[[maybe_unused]] uint64_t hira_n_" + p.name + " = 0;");
    }
  }
  for (const auto &p : f.params) declare_selectors(c, *p.value);
  for (const auto &p : f.params) {
    if (has_deferred(*p.value)) {
      c.line("uint64_t hira_token_" + p.name + " = 0;  // deferred");
    }
    if (takes_guest_ids(*p.value)) c.line("std::vector<uint64_t> hira_gids_" + p.name + ";");
  }
  for (const auto &p : f.params) emit_arg(c, f, p);
  if (f.cache_if) {
    c.line("const bool hira_cacheable = (" + f.cache_if->text + ");  // guest_cache_if");
    c.line("if (!(hira_cacheable && hira_call.answer_from_cache()) && !hira_call.invoke()) {");
  } else {
    c.line("if (!hira_call.invoke()) {");
  }
  emit_failure_return(c, f);
  c.line("}");
  if (f.always_async()) {
    emit_refcounts(c, f);  // applied when sent: the call runs in order on the server
    emit_async_outs(c, f);
    emit_async_return(c, f);
    c.line("}");
    c.line();
    return;
  }
  if (f.async_per_call()) {
    c.line("if (hira_async) {");
    emit_refcounts(c, f);
    emit_async_outs(c, f);
    emit_async_return(c, f);
    c.line("}");
  }
  c.line("::hira::Reader &hira_r = hira_call.reply();");
  if (!f.returns_void) {
    c.line(f.ret_type + " hira_ret{};");
    c.line("{");
    c.line("::hira::Reader hira_b = hira_r.blob();");
    if (f.ret_value->mapped) {
      c.line("hira_ret = (" + f.ret_type + ")::hira::guest::map_region(hira_b, " +
             (f.ret_value->map_into ? "(void *)(" + f.ret_value->map_into->text + ")"
                                    : std::string("nullptr")) +
             ");");
    } else if (f.ret_value->kind == Value::Kind::Handle) {
      c.line("hira_ret = (" + f.ret_type + ")" +
             guest_handle_from_id(*f.ret_value, "hira_b.get_u64()") + ";");
    } else {
      c.line("hira_ret = hira_b.get<" + f.ret_type + ">();");
    }
    c.line("}");
  } else {
    c.line("hira_r.blob();");
  }
  for (const auto &p : f.params) {
    c.line("{");
    c.line("[[maybe_unused]] ::hira::Reader hira_b = hira_r.blob();");
    emit_out(c, *p.value, p.name, "hira_n_" + p.name, "hira_b", 0);
    c.line("}");
  }
  if (f.cache_if) {
    c.line("if (hira_cacheable && " + success_test(f, "hira_ret") +
           ") hira_call.remember_answer();");
  }
  bool any_deferred = false;
  for (const auto &p : f.params) any_deferred |= has_deferred(*p.value);
  if (any_deferred) {
    c.line("if (!" + success_test(f, "hira_ret") + ") {");
    emit_forget_deferred(c, f);
    c.line("}");
  }
  bool after = !f.statements.empty();
  for (const auto &p : f.params) after |= p.value->mapped || has_refcount(*p.value);
  const bool ret_allocated = f.ret_value && f.ret_value->kind == Value::Kind::Handle &&
                             f.ret_value->allocate && f.ret_value->handle_is_pointer;
  if (after || ret_allocated) {
    open_if_success(c, f, "hira_ret");
    if (ret_allocated) c.line("::hira::guest::retain_handle((const void *)hira_ret);");
    for (const auto &p : f.params) {
      if (p.value->mapped) c.line("::hira::guest::release_region(" + p.name + ");");
    }
    emit_refcounts(c, f);
    for (const auto &s : f.statements) c.line(s);
    c.line("}");
  }
  if (!f.returns_void) {
    c.line("return hira_ret;");
  }
  c.line("}");
  c.line();
}

void emit_dispatch(Code &c, const Api &api) {
  c.line(
      "static bool hira_dispatch_callback(uint32_t hira_id, void *hira_fn, void *hira_userdata,");
  c.line(
      "                                   ::hira::Reader &hira_r, ::hira::Writer &hira_result) {");
  c.line("switch (hira_id) {");
  for (const auto &cb : api.callbacks) {
    c.line("case CB_" + cb.name + ": {");
    std::string args;
    for (const auto &p : cb.fn.params) {
      c.line(p.local_declaration + "{};");
      if (p.value->kind == Value::Kind::Userdata) {
        c.line("hira_r.blob();");
        c.line(p.name + " = (" + p.type_name + ")hira_userdata;");
      } else {
        c.line("{");
        c.line("::hira::Reader hira_b = hira_r.blob();");
        emit_callback_decode(c, *p.value, p.name, "hira_b");
        c.line("if (!hira_b.done()) return false;");
        c.line("}");
      }
      args += (args.empty() ? "" : ", ") + p.name;
    }
    const std::string call = "((" + function_pointer_type(cb.fn) + ")hira_fn)(" + args + ")";
    c.line("const auto hira_blob = hira_result.begin_blob();");
    if (cb.fn.returns_void) {
      c.line(call + ";");
    } else {
      c.line("hira_result.put<" + cb.fn.ret_type + ">(" + call + ");");
    }
    c.line("hira_result.end_blob(hira_blob);");
    c.line("return true;");
    c.line("}");
  }
  c.line("default:");
  c.line("return false;");
  c.line("}");
  c.line("}");
  c.line();
}

}  // namespace

std::string emit_guest(const Api &api) {
  Code c;
  c.line("#include <atomic>");
  c.line("#include <cstdio>");
  c.line();
  c.line("#include \"hira/bulk_copy.h\"");
  c.line("#include \"hira/guest.h\"");
  emit_prelude(c, api, "Guest library stubs", Side::Guest, true);
  c.line();
  c.line("#define HIRA_EXPORT __attribute__((visibility(\"default\")))");
  bool wraps = false;
  for (const auto &f : api.functions) wraps |= !f.guest_wrap.empty();
  if (wraps) {
    c.line("// The remote calls of guest_wrap functions, for their utilities.");
    // Two levels, so that a name the vendor's header maps to a versioned one
    // (cuCtxCreate -> cuCtxCreate_v4) names the stub of the versioned one.
    c.line("#define hira_remote_of(f) hira_remote_##f");
    c.line("#define lapis_remote(f) hira_remote_of(f)");
    for (const auto &f : api.functions) {
      if (!f.guest_wrap.empty()) c.line("static " + signature(f, "hira_remote_" + f.name) + ";");
    }
    c.line();
  }
  if (!api.guest_utilities.empty()) {
    c.line("// Guest-only utilities copied from the spec.");
    c.line("#define guest_utility [[maybe_unused]] static");
    for (const auto &u : api.guest_utilities) c.line(u);
    c.line();
  }
  c.line(
      "// What the first word of every handle box points to (an ICD dispatch table, or nothing).");
  if (api.icd_dispatch_type.empty()) {
    c.line("static const void *const kHandleDispatch = nullptr;");
  } else {
    c.line("extern const " + api.icd_dispatch_type + " hira_icd_dispatch;");
    c.line("static const void *const kHandleDispatch = &hira_icd_dispatch;");
  }
  c.line();
  emit_dispatch(c, api);
  c.line("static const ::hira::guest::ApiInfo kApiInfo = {");
  c.line("  kApiName, kApiSignature, kFunctionCount, kFunctionNames, hira_dispatch_callback,");
  c.line("};");
  c.line();
  for (const auto &f : api.functions) emit_stub(c, f);
  if (!api.unsupported.empty()) {
    c.line("// The rest of the vendor's functions: loadable, never carried out");
    c.line("// (lapis_unsupported_functions).");
    c.line("#pragma GCC diagnostic push");
    c.line("#pragma GCC diagnostic ignored \"-Wunused-parameter\"");
    c.line("static void hira_unsupported(const char *name, std::atomic<bool> &said) {");
    c.line("if (!said.exchange(true)) {");
    c.line("fprintf(stderr, \"hira: %s is not supported through hira (the " + api.name +
           " spec does not describe it); it returns " + api.unsupported_value->text +
           "\\n\", name);");
    c.line("}");
    c.line("}");
    c.line();
    for (const auto &u : api.unsupported) {
      c.line("extern \"C\" HIRA_EXPORT " + u.declaration + " {");
      c.line("static std::atomic<bool> said{false};");
      c.line("hira_unsupported(\"" + u.name + "\", said);");
      c.line("return (" + u.ret_type + ")(" + api.unsupported_value->text + ");");
      c.line("}");
    }
    c.line("#pragma GCC diagnostic pop");
    c.line();
  }
  const auto is_legacy = [](const GuestExport &e) { return !e.c_name.empty(); };
  if (std::any_of(api.guest_exports.begin(), api.guest_exports.end(), std::not_fn(is_legacy))) {
    c.line("// Entry points written in the spec (guest_export): names the vendor's header");
    c.line("// declares only in another configuration. (Between the markers: C code that");
    c.line("// a test compiles against that configuration of the header.)");
    c.line("#define guest_export extern \"C\" HIRA_EXPORT");
    c.line("// hira-guest-exports-begin");
    for (const auto &e : api.guest_exports) {
      if (!is_legacy(e)) c.line(e.text);
    }
    c.line("// hira-guest-exports-end");
    c.line();
  }
  if (std::any_of(api.guest_exports.begin(), api.guest_exports.end(), is_legacy)) {
    c.line("// Entry points of older versions of the API (guest_export_as): each C");
    c.line("// function is exported under the symbol its asm label names. (Between the");
    c.line("// markers, the labelled prototypes: a test checks them against the header's");
    c.line("// declarations of those symbols.)");
    c.line("#define guest_export_as(symbol) extern \"C\" HIRA_EXPORT");
    c.line("// hira-legacy-exports-begin");
    for (const auto &e : api.guest_exports) {
      if (is_legacy(e))
        c.line("extern \"C\" HIRA_EXPORT " + e.prototype + " __asm__(\"" + e.name + "\");");
    }
    c.line("// hira-legacy-exports-end");
    for (const auto &e : api.guest_exports) {
      if (is_legacy(e)) c.line(e.text);
    }
    c.line();
  }
  if (!api.icd_dispatch_type.empty()) {
    // Fields named after a function of the spec get its stub, others stay NULL.
    c.line("extern const " + api.icd_dispatch_type + " hira_icd_dispatch = {");
    for (const auto &field : api.icd_dispatch_fields) {
      bool known = false;
      for (const auto &f : api.functions) known |= f.name == field;
      c.line("  " + (known ? "&::" + field : std::string("nullptr")) + ",  // " + field);
    }
    c.line("};");
  }
  return c.str();
}

std::string emit_version_script(const Api &api) {
  std::string s = "/* Symbols of the guest library for '" + api.name + "', generated by cava. */\n";
  // Nodes in version order, each inheriting the one before it.
  std::map<std::string, std::vector<std::string>> nodes;
  for (const auto &f : api.functions) {
    if (f.spec_only) continue;  // hira's own call: its guest utilities use it
    nodes[f.symbol_version.empty() ? api.default_symbol_version : f.symbol_version].push_back(
        f.name);
  }
  for (const auto &u : api.unsupported) nodes[api.default_symbol_version].push_back(u.name);
  for (const auto &e : api.guest_exports) nodes[api.default_symbol_version].push_back(e.name);
  std::string previous;
  for (const auto &[node, names] : nodes) {
    // Plain appends: GCC 12 at -O3 misreads temporaries of `a + b` here
    // (-Werror=restrict inside libstdc++).
    s += node;
    if (!node.empty()) s += ' ';
    s += "{\n  global:\n";
    for (const auto &n : names) {
      s += "    ";
      s += n;
      s += ";\n";
    }
    if (previous.empty()) s += "  local:\n    *;\n";
    s += '}';
    if (!previous.empty()) {
      s += ' ';
      s += previous;
    }
    s += ";\n";
    previous = node;
  }
  return s;
}

std::string emit_icd_version_script(const Api &api) {
  // An ICD vendor library exports only what the loader looks up by name.
  std::string s = "/* Symbols of the ICD variant of the guest library for '" + api.name + "'. */\n";
  // Per cl_khr_icd the loader looks up clIcdGetPlatformIDsKHR, clGetPlatformInfo
  // and clGetExtensionFunctionAddress by name.
  s += "{\n  global:\n    clIcdGetPlatformIDsKHR;\n    clGetPlatformInfo;\n    "
       "clGetExtensionFunctionAddress;\n";
  s += "    clGetExtensionFunctionAddressForPlatform;\n  local:\n    *;\n};\n";
  return s;
}

}  // namespace cava
