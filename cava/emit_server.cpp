// The API server module: one handler per function, callback trampolines,
// and the table the API-agnostic server runtime dispatches through.
#include "emit.h"
#include "emit_util.h"

namespace cava {

namespace {

// A pointer whose elements are pointers (in any branch of a condition): the
// server keeps each element's count in hira_ne_<param>.
bool has_pointer_elements(const Value &v) {
  if (v.pred) return has_pointer_elements(*v.then_v) || has_pointer_elements(*v.else_v);
  return v.element && v.element->kind == Value::Kind::Pointer;
}

const char *kMaxBytes = "((uint64_t)1 << 40)";

// The wire type(s) a handle argument's lookup accepts: its own, and the one
// that passes as it (accepts_handle).
std::string handle_types_of(const Value &v) {
  return handle_type_enum(v.handle_type) +
         (v.also_handle_type.empty() ? "" : ", " + handle_type_enum(v.also_handle_type));
}

std::string reject(const std::string &status, size_t arg) {
  return "hira_ctx.reject(::hira::wire::ReplyStatus::" + status + ", " + std::to_string(arg) +
         "); return;";
}

void emit_decode(Code &c, const Value &v, const std::string &x, const std::string &a, size_t arg,
                 const std::string &count_lv, const std::string &param, int depth) {
  if (v.pred) {
    if (!v.selector.empty()) c.line(v.selector + " = " + a + ".get_u8();");
    c.line("if (" + condition(v) + ") {");
    emit_decode(c, *v.then_v, x, a, arg, count_lv, param, depth);
    c.line("} else {");
    emit_decode(c, *v.else_v, x, a, arg, count_lv, param, depth);
    c.line("}");
    return;
  }
  switch (v.kind) {
    case Value::Kind::Scalar:
      c.line(x + " = " + a + ".get<" + v.type_name_unqual + ">();");
      return;
    case Value::Kind::Handle:
      if (!v.handle_constants.empty()) {
        // handle_constants: one of the API's own values passes as itself;
        // any other id with the constant bit is unknown to the lookup.
        c.line("{");
        c.line("const uint64_t hira_id = " + a + ".get_u64();");
        c.line("const uint64_t hira_value = hira_id & ~::hira::wire::kHandleConstantBit;");
        c.line(x + " = (std::remove_reference_t<decltype(" + x + ")>)(uintptr_t)(" +
               "(hira_id & ::hira::wire::kHandleConstantBit) != 0 && hira_value != 0 && " +
               "hira_value <= (uint64_t)(uintptr_t)(" + v.handle_constants +
               ") ? (void *)(uintptr_t)hira_value : hira_ctx.lookup(hira_id, " +
               handle_types_of(v) + ", " + std::to_string(arg) + "));");
        c.line("}");
        return;
      }
      // The slot may be wider than the handle (a handle inside an intptr_t list).
      c.line(x + " = (std::remove_reference_t<decltype(" + x + ")>)(uintptr_t)hira_ctx.lookup(" +
             a + ".get_u64(), " + handle_types_of(v) + ", " + std::to_string(arg) + ");");
      return;
    case Value::Kind::Callback:
    case Value::Kind::Userdata:
      return;  // handled by the caller
    case Value::Kind::Pointer:
      break;
  }
  if (v.mapped) {
    c.line(x + " = (std::remove_reference_t<decltype(" + x + ")>)(" + v.type_name_unqual +
           ")hira_ctx.decode_unmap(" + a + ", " + std::to_string(arg) + ");");
    return;
  }
  const std::string es = v.element_size;
  const bool manual = v.lifetime_manual || v.deallocate;
  const bool send = v.in && !v.no_copy;
  c.line(x + " = nullptr;");
  c.line("if (" + a + ".get_u8() != 0) {");
  c.line(count_lv + " = " + a + ".get_u64();");
  if (manual) c.line("const uint64_t hira_addr = " + a + ".get_u64();");
  if (v.deferred) c.line("hira_token_" + param + " = " + a + ".get_u64();");
  c.line("if (" + count_lv + " > " + kMaxBytes + " / " + es + ") { " + reject("OutOfMemory", arg) +
         " }");
  if (v.deferred) {
    // Filled after the call returns: memory that outlives the call, sent
    // to the guest when the spec's done() says so.
    const std::string bytes = count_lv + " * " + es;
    if (send && !v.out) {  // read by the callee only
      c.line("const uint8_t *hira_src = " + a + ".bulk(" + bytes + ");");
      c.line("if (hira_src == nullptr) { " + reject("BadFrame", arg) + " }");
      c.line("hira_staging_" + param + " = hira_ctx.deferred_in_buffer(hira_token_" + param +
             ", hira_src, " + bytes + ");");
      c.line("if (hira_staging_" + param + " == nullptr) return;");
    } else {  // filled by the callee (starting from the guest's bytes if they are sent)
      c.line("hira_staging_" + param + " = hira_ctx.deferred_out_buffer(" + a + ", " + bytes +
             ");");
      c.line("if (hira_staging_" + param + " == nullptr) return;");
      if (send) {
        c.line("const uint8_t *hira_src = " + a + ".bulk(" + bytes + ");");
        c.line("if (hira_src == nullptr) { " + reject("BadFrame", arg) + " }");
        c.line("::hira::copy_bulk(hira_staging_" + param + ", hira_src, " + bytes + ");");
      }
    }
    c.line(x + " = (std::remove_reference_t<decltype(" + x + ")>)(" + v.type_name_unqual +
           ")hira_staging_" + param + ";");
    c.line("}");
    return;
  }
  if (v.is_bulk()) {
    const std::string bytes = count_lv + " * " + es;
    if (send) {
      c.line("const uint8_t *hira_src = " + a + ".bulk(" + bytes + ");");
      c.line("if (hira_src == nullptr) { " + reject("BadFrame", arg) + " }");
      if (manual) {
        // Every byte is copied in next: no need to clear it first.
        c.line("void *hira_dst = hira_ctx.manual_buffer(hira_addr, " + bytes + ", false);");
        c.line("if (hira_dst == nullptr) return;");
        c.line("std::memcpy(hira_dst, hira_src, " + bytes + ");");
        c.line(x + " = (std::remove_reference_t<decltype(" + x + ")>)(" + v.type_name_unqual +
               ")hira_dst;");
      } else {
        // Buffers whose size is computed by scanning them (strlen, lapis_list_len)
        // get a private copy ending in a zero element, so the scan can never run
        // past the data; other buffers are used in place, inside the frame.
        if (v.count && v.count->has_calls) {
          c.line(x + " = (std::remove_reference_t<decltype(" + x + ")>)(" + v.type_name_unqual +
                 ")hira_ctx.copy_in(hira_src, " + count_lv + ", " + es + ");");
          c.line("if (" + x + " == nullptr) return;");
        } else if (es == "1") {
          // Plain bytes: used in place, inside the frame or the guest's window.
          c.line(x + " = (std::remove_reference_t<decltype(" + x + ")>)(" + v.type_name_unqual +
                 ")(const void *)hira_src;");
        } else {
          // Typed elements the function may read as sizes or pointers: never
          // window memory the guest could change while the function reads it.
          c.line(x + " = (std::remove_reference_t<decltype(" + x + ")>)(" + v.type_name_unqual +
                 ")(const void *)hira_ctx.stable(hira_src, " + bytes + ");");
          c.line("if (" + x + " == nullptr) return;");
        }
      }
    } else {
      c.line(x + " = (std::remove_reference_t<decltype(" + x + ")>)(" + v.type_name_unqual + ")" +
             (manual ? "hira_ctx.manual_buffer(hira_addr, " + bytes + ")"
                     : "hira_ctx.out_buffer(" + a + ", " + count_lv + ", " + es + ")") +
             ";");
      c.line("if (" + x + " == nullptr) return;");
    }
  } else {
    const Value &e = *v.element;
    const std::string arr = "hira_arr" + std::to_string(depth);
    c.line("auto *" + arr + " = hira_ctx.alloc_array<" + e.type_name_unqual + ">(" + count_lv +
           ");");
    c.line("if (" + arr + " == nullptr) return;");
    c.line(x + " = (std::remove_reference_t<decltype(" + x + ")>)(" + v.type_name_unqual + ")" +
           arr + ";");
    const bool nested = e.kind == Value::Kind::Pointer;
    if (nested) {
      c.line("hira_ne_" + param + " = hira_ctx.alloc_array<uint64_t>(" + count_lv + ");");
      c.line("if (hira_ne_" + param + " == nullptr) return;");
    }
    if (send || nested) {
      const std::string i = "hira_i" + std::to_string(depth);
      c.line("for (uint64_t " + i + " = 0; " + i + " < " + count_lv + "; ++" + i + ") {");
      c.line("[[maybe_unused]] const uint64_t index = " + i + ";");
      emit_decode(c, e, arr + "[" + i + "]", a, arg, "hira_ne_" + param + "[" + i + "]", param,
                  depth + 1);
      c.line("}");
    }
  }
  c.line("}");
}

// The sizes the spec gives must match what the guest sent.
void emit_validate(Code &c, const Value &v, const std::string &x, const std::string &count_lv,
                   size_t arg, const std::string &param, int depth) {
  if (emit_branches(c, v,
                    [&](const Value &b) { emit_validate(c, b, x, count_lv, arg, param, depth); })) {
    return;
  }
  if (v.kind != Value::Kind::Pointer || v.mapped) return;
  c.line("if (" + x + " != nullptr) {");
  c.line("if (" + count_lv + " != (uint64_t)(" + (v.count ? v.count->text : "1") + ")) { " +
         reject("BadArgument", arg) + " }");
  if (v.element->kind == Value::Kind::Pointer) {
    const std::string i = "hira_i" + std::to_string(depth);
    c.line("for (uint64_t " + i + " = 0; " + i + " < " + count_lv + "; ++" + i + ") {");
    c.line("[[maybe_unused]] const uint64_t index = " + i + ";");
    emit_validate(c, *v.element, "((" + v.element->type_name_unqual + " *)" + x + ")[" + i + "]",
                  "hira_ne_" + param + "[" + i + "]", arg, param, depth + 1);
    c.line("}");
  }
  c.line("}");
}

bool has_server_value(const Value &v) {
  if (v.server_value) return true;
  return v.pred && (has_server_value(*v.then_v) || has_server_value(*v.else_v));
}

// The server's own value for an argument (server_value), in the branch the
// argument was decoded in when only some branches have one.
void emit_server_value(Code &c, const Value &v, const std::string &name, size_t arg) {
  if (!v.server_value) {
    const bool in_then = has_server_value(*v.then_v), in_else = has_server_value(*v.else_v);
    c.line(in_then ? "if (" + condition(v) + ") {" : "if (!(" + condition(v) + ")) {");
    if (in_then) emit_server_value(c, *v.then_v, name, arg);
    if (in_then && in_else) c.line("} else {");
    if (in_else) emit_server_value(c, *v.else_v, name, arg);
    c.line("}");
    return;
  }
  c.line("{");
  c.line("[[maybe_unused]] const uint32_t hira_arg = " + std::to_string(arg) +
         ";  // for lapis_handle_object");
  c.line(name + " = (std::remove_reference_t<decltype(" + name + ")>)(" + v.server_value->text +
         ");  // server_value");
  c.line("}");
}

// After a successful call: the app's references to handle arguments.
void emit_refcount(Code &c, const Value &v, const std::string &x) {
  if (v.kind != Value::Kind::Handle) return;
  const std::string args = "(void *)(uintptr_t)" + x + ", " + handle_type_enum(v.handle_type);
  if (v.deallocate) c.line("hira_ctx.release_handle(" + args + ");");
  if (v.allocate) c.line("hira_ctx.add_handle_reference(" + args + ");");
}

// An out handle: a new reference if the call allocates it.
std::string export_expr(const Value &v, const std::string &x) {
  return std::string("hira_ctx.") + (v.allocate ? "retain_handle" : "export_handle") +
         "((void *)(uintptr_t)" + x + ", " + handle_type_enum(v.handle_type) + ")";
}

void emit_reply_out(Code &c, const Value &v, const std::string &x, const std::string &count_lv,
                    const std::string &param, int depth, const std::string &gids = "");

// One element of a non-bulk out buffer, as the guest's emit_out_element reads it.
// `gid`: the id the guest chose for this element's new handle.
void emit_reply_element(Code &c, const Value &e, const std::string &elem,
                        const std::string &count_lv, const std::string &param, int depth,
                        const std::string &gid = "") {
  if (e.pred) {
    c.line("if (" + condition(e) + ") {");
    emit_reply_element(c, *e.then_v, elem, count_lv, param, depth);
    c.line("} else {");
    emit_reply_element(c, *e.else_v, elem, count_lv, param, depth);
    c.line("}");
  } else if (e.kind == Value::Kind::Handle) {
    c.line("hira_w.put_u64(" +
           (gid.empty() ? export_expr(e, "(uintptr_t)" + elem)
                        : "hira_ctx.retain_handle_as((void *)(uintptr_t)" + elem + ", " +
                              handle_type_enum(e.handle_type) + ", " + gid + ")") +
           ");");
    if (e.depends_on) {
      c.line("hira_ctx.depends_on((void *)(uintptr_t)" + elem + ", " +
             handle_type_enum(e.handle_type) + ", (const void *)(uintptr_t)(" + e.depends_on->text +
             "));");
    }
  } else if (e.kind == Value::Kind::Scalar) {
    c.line("hira_w.put<" + e.type_name_unqual + ">((" + e.type_name_unqual + ")" + elem + ");");
  } else if (e.kind == Value::Kind::Pointer) {
    emit_reply_out(c, e, elem, count_lv, param, depth + 1);
  }
}

void emit_reply_out(Code &c, const Value &v, const std::string &x, const std::string &count_lv,
                    const std::string &param, int depth, const std::string &gids) {
  if (emit_branches(c, v,
                    [&](const Value &b) { emit_reply_out(c, b, x, count_lv, param, depth); })) {
    return;
  }
  if (v.kind != Value::Kind::Pointer || !has_out_data(v)) return;
  c.line("if (" + x + " != nullptr) {");
  c.line("hira_w.put_u64(" + count_lv + ");");
  const Value &e = *v.element;
  if (v.is_bulk()) {
    c.line("hira_w.put_bulk((const void *)" + x + ", " + count_lv + " * " + v.element_size + ");");
  } else {
    const std::string i = "hira_i" + std::to_string(depth);
    c.line("for (uint64_t " + i + " = 0; " + i + " < " + count_lv + "; ++" + i + ") {");
    c.line("[[maybe_unused]] const uint64_t index = " + i + ";");
    const std::string elem = "((" + e.type_name_unqual + " *)" + x + ")[" + i + "]";
    emit_reply_element(c, e, elem, "hira_ne_" + param + "[" + i + "]", param, depth,
                       gids.empty() ? "" : "(" + gids + " ? " + gids + "[" + i + "] : 0)");
    c.line("}");
  }
  c.line("}");
}

const Param *userdata_param(const Function &f) {
  for (const auto &p : f.params) {
    if (p.value->kind == Value::Kind::Userdata) return &p;
  }
  return nullptr;
}

// What the handle the call allocated holds, as the server measures it
// (server_allocates_rc), and the watch that says when it is destroyed
// (rc_until_destroyed). The spec checker allows both only where the
// return value is an allocated handle (hira_ret_id).
bool held_by_result(const ResourceUse &u) {
  return u.op == ResourceUse::Op::ServerAllocate && u.handle_arg.empty();
}

void emit_object_accounting(Code &c, const Api &api, const Function &f) {
  bool any = !f.destroy_watch.empty();
  for (const auto &u : f.resources) any |= held_by_result(u);
  if (!any) return;
  c.line("if (hira_ret_id != 0) {");
  for (const auto &u : f.resources) {
    if (!held_by_result(u)) continue;
    c.line("hira_ctx.report_hold(" + std::to_string(resource_index(api, u.resource)) + " /* " +
           u.resource + " */, hira_ret_id, (uint64_t)(" + u.amount.text + "));");
  }
  if (!f.destroy_watch.empty()) {
    c.line(f.destroy_watch +
           "(hira_ret, ::hira::server::CallContext::destruction_token(hira_ret_id));");
  }
  c.line("}");
}

// What a handle argument holds more after the call (server_allocates_rc
// with a handle argument); the spec checker allows it on sync functions
// with success(V) only.
void emit_argument_accounting(Code &c, const Api &api, const Function &f) {
  for (const auto &u : f.resources) {
    if (u.op != ResourceUse::Op::ServerAllocate || u.handle_arg.empty()) continue;
    const Param *held = f.param(u.handle_arg);
    if (held == nullptr) continue;
    c.line("if (" + success_test(f, "hira_ret") + ") {");
    c.line("hira_ctx.report_hold(" + std::to_string(resource_index(api, u.resource)) + " /* " +
           u.resource + " */, hira_ctx.export_handle((void *)(uintptr_t)" + held->name + ", " +
           handle_type_enum(held->value->handle_type) + "), (uint64_t)(" + u.amount.text + "));");
    c.line("}");
  }
}

void emit_handler(Code &c, const Api &api, const Function &f) {
  (void)api;
  const size_t np = f.params.size();
  c.line("static void handle_" + f.name + "(::hira::server::CallContext &hira_ctx) {");
  if (f.guest_side()) {
    c.line("hira_ctx.reject(::hira::wire::ReplyStatus::Unsupported, 0);  // answered in the guest");
    c.line("}");
    c.line();
    return;
  }
  c.line("::hira::Reader &hira_r = hira_ctx.args();");
  if (np != 0) {
    c.line("::hira::Reader hira_a[" + std::to_string(np) + "];");
    c.line("for (auto &blob : hira_a) blob = hira_r.blob();");
  }
  c.line("if (!hira_r.done()) { " + reject("BadFrame", 0) + " }");
  for (const auto &p : f.params) {
    declare_selectors(c, *p.value);
    c.line(p.local_declaration + "{};");
    if (p.value->kind == Value::Kind::Pointer && !p.value->mapped) {
      c.line("uint64_t hira_n_" + p.name + " = 0;");
      if (has_pointer_elements(*p.value)) {
        c.line("[[maybe_unused]] uint64_t *hira_ne_" + p.name + " = nullptr;");
      }
      if (takes_guest_ids(*p.value)) c.line("uint64_t *hira_gid_" + p.name + " = nullptr;");
      if (has_deferred(*p.value)) c.line("uint64_t hira_token_" + p.name + " = 0;");
      if (has_deferred(*p.value)) c.line("void *hira_staging_" + p.name + " = nullptr;");
    }
  }
  // Scalars and handles first: pointer sizes and conditions may read them.
  for (int pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < np; ++i) {
      const Param &p = f.params[i];
      const bool is_ptr = p.value->kind == Value::Kind::Pointer || p.value->pred;
      if ((pass == 0) == is_ptr) continue;
      const std::string a = "hira_a[" + std::to_string(i) + "]";
      if (p.value->kind == Value::Kind::Callback) {
        const Param *ud = userdata_param(f);
        c.line("if (const uint64_t hira_reg = " + a + ".get_u64(); hira_reg != 0) {");
        c.line(p.name + " = hira_tramp_" + p.value->callback + ";");
        if (ud != nullptr) {
          c.line(ud->name + " = (" + ud->type_name + ")hira_ctx.callback_userdata(hira_reg, CB_" +
                 p.value->callback + ");");
        }
        c.line("}");
        continue;
      }
      emit_decode(c, *p.value, p.name, a, i, "hira_n_" + p.name, p.name, 0);
      if (takes_guest_ids(*p.value)) {
        // The ids the guest chose for the handles this call creates (a guest
        // that sends none gets the server's).
        c.line("if (" + p.name + " != nullptr && " + a + ".remaining() != 0) {");
        c.line("hira_gid_" + p.name + " = hira_ctx.alloc_array<uint64_t>(hira_n_" + p.name + ");");
        c.line("if (hira_gid_" + p.name + " == nullptr) return;");
        c.line("for (uint64_t hira_i = 0; hira_i < hira_n_" + p.name + "; ++hira_i) hira_gid_" +
               p.name + "[hira_i] = " + a + ".get_u64();");
        c.line("}");
      }
    }
  }
  for (size_t i = 0; i < np; ++i) {
    c.line("if (!hira_a[" + std::to_string(i) + "].done()) { " + reject("BadFrame", i) + " }");
  }
  c.line("if (hira_ctx.failed()) return;");
  for (size_t i = 0; i < np; ++i) {
    emit_validate(c, *f.params[i].value, f.params[i].name, "hira_n_" + f.params[i].name, i,
                  f.params[i].name, 0);
  }
  bool any_server_value = false;
  for (size_t i = 0; i < np; ++i) {
    const Param &p = f.params[i];
    if (!has_server_value(*p.value)) continue;
    any_server_value = true;
    emit_server_value(c, *p.value, p.name, i);
  }
  if (any_server_value) c.line("if (hira_ctx.failed()) return;");
  // Deferred out buffers need the call's completion object: the server's
  // own when the application asked for none.
  for (const auto &p : f.params) {
    const Value *d = deferred_value(*p.value);
    if (d == nullptr) continue;
    const std::string &ev = d->deferred->event_param;
    c.line("std::remove_pointer_t<decltype(" + ev + ")> hira_own_event_" + p.name + "{};");
    c.line("const bool hira_own_" + p.name + " = hira_staging_" + p.name + " != nullptr && " + ev +
           " == nullptr;");
    c.line("if (hira_own_" + p.name + ") " + ev + " = &hira_own_event_" + p.name + ";");
  }
  std::string args;
  for (const auto &p : f.params) args += (args.empty() ? "" : ", ") + p.name;
  // server_impl: the spec's utility runs in place of the library's function
  // (which it may call itself, as real_<name>).
  const std::string call =
      (f.server_impl.empty() ? "real_" + f.name : f.server_impl) + "(" + args + ")";
  if (f.returns_void) {
    c.line(call + ";");
  } else if (f.server_checks.empty()) {
    c.line(f.ret_type + " hira_ret = " + call + ";");
  } else {
    // server_check: the first check that is not the success value is the
    // call's answer, and the real function does not run.
    c.line(f.ret_type + " hira_ret = (" + f.ret_type + ")(" + f.server_checks.front().text +
           ");  // server_check");
    for (size_t i = 1; i < f.server_checks.size(); ++i) {
      c.line("if " + success_test(f, "hira_ret") + " hira_ret = (" + f.ret_type + ")(" +
             f.server_checks[i].text + ");  // server_check");
    }
    c.line("if " + success_test(f, "hira_ret") + " hira_ret = " + call + ";");
  }
  for (const auto &p : f.params) {
    const Value *d = deferred_value(*p.value);
    if (d == nullptr) continue;
    const auto &df = *d->deferred;
    c.line("if (hira_staging_" + p.name + " != nullptr) {  // deferred");
    open_if_success(c, f, "hira_ret");
    c.line("const auto hira_obj = *" + df.event_param + ";");
    c.line("if (!hira_own_" + p.name + ") " + df.retain_fn + "(hira_obj);");
    const std::string done = "[hira_obj] { return " + df.done_fn + "(hira_obj) != 0; }";
    const std::string release = "[hira_obj] { " + df.release_fn + "(hira_obj); }";
    if (d->out) {
      c.line("hira_ctx.defer_out(hira_token_" + p.name + ", hira_staging_" + p.name + ", hira_n_" +
             p.name + " * " + d->element_size + ", " + done + ", " + release + ");");
    } else {  // read by the callee until done: freed then
      c.line("hira_ctx.defer_in(hira_token_" + p.name + ", hira_staging_" + p.name + ", " + done +
             ", " + release + ");");
    }
    c.line("}");
    c.line("if (hira_own_" + p.name + ") " + df.event_param + " = nullptr;");
    c.line("}");
  }
  for (const auto &u : f.resources) {
    if (u.op != ResourceUse::Op::ServerConsume) continue;
    c.line("hira_ctx.report_use(" + std::to_string(resource_index(api, u.resource)) + " /* " +
           u.resource + " */, (uint64_t)(" + u.amount.text + "));");
  }
  open_if_success(c, f, "hira_ret");
  for (const auto &p : f.params) emit_refcount(c, *p.value, p.name);
  for (const auto &p : f.params) {
    if (p.value->mapped) c.line("hira_ctx.unregister_mapped((void *)" + p.name + ");");
  }
  for (const auto &s : f.statements) c.line(s);
  // A call sent async has no reply to carry its new handles: they take the
  // ids the guest chose (and already handed to the application) now.
  for (const auto &p : f.params) {
    if (!takes_guest_ids(*p.value) || !(f.always_async() || f.async_per_call())) continue;
    c.line("if (hira_ctx.is_async() && " + p.name + " != nullptr && hira_gid_" + p.name +
           " != nullptr) {");
    c.line("for (uint64_t hira_i = 0; hira_i < hira_n_" + p.name + "; ++hira_i) {");
    const Value &e = *p.value->element;
    c.line("hira_ctx.retain_handle_as((void *)(uintptr_t)" + p.name + "[hira_i], " +
           handle_type_enum(e.handle_type) + ", hira_gid_" + p.name + "[hira_i]);");
    if (e.depends_on) {
      c.line("[[maybe_unused]] const uint64_t hira_i0 = hira_i;");
      c.line("hira_ctx.depends_on((void *)(uintptr_t)" + p.name + "[hira_i], " +
             handle_type_enum(e.handle_type) + ", (const void *)(uintptr_t)(" + e.depends_on->text +
             "));");
    }
    c.line("}");
    c.line("}");
  }
  c.line("}");
  if (f.always_async()) {
    if (!f.returns_void && f.success) {
      c.line("if (!" + success_test(f, "hira_ret") + ") hira_ctx.defer_error((int64_t)hira_ret);");
    }
    c.line("}");
    c.line();
    return;
  }
  if (f.async_per_call()) {
    c.line("if (hira_ctx.is_async()) {  // this call was sent without waiting");
    if (!f.returns_void && f.success) {
      c.line("if (!" + success_test(f, "hira_ret") + ") hira_ctx.defer_error((int64_t)hira_ret);");
    }
    c.line("return;");
    c.line("}");
  }
  c.line("::hira::Writer &hira_w = hira_ctx.reply();");
  c.line("{");
  c.line("const auto hira_blob = hira_w.begin_blob();");
  if (!f.returns_void) {
    if (f.ret_value->mapped) {
      // The guest gets a copy of the mapped memory; unmapping sends it back.
      c.line("hira_w.put_u64((uint64_t)(uintptr_t)hira_ret);");
      c.line("if (hira_ret != nullptr) {");
      c.line("const uint64_t hira_bytes = (uint64_t)(" + f.ret_value->count->text + ") * " +
             f.ret_value->element_size + ";");
      // Which way the bytes travel: now (map_reads), back at unmap (map_writes).
      const auto &rv = *f.ret_value;
      c.line("const bool hira_map_reads = (" + (rv.map_reads ? rv.map_reads->text : "1") + ");");
      c.line("const bool hira_map_writes = (" + (rv.map_writes ? rv.map_writes->text : "1") + ");");
      c.line(
          "hira_ctx.put_mapped(hira_w, (void *)hira_ret, hira_bytes, hira_map_reads, "
          "hira_map_writes);");
      c.line("}");
    } else if (f.ret_value->kind == Value::Kind::Handle) {
      c.line("const uint64_t hira_ret_id = " + export_expr(*f.ret_value, "hira_ret") + ";");
      c.line("hira_w.put_u64(hira_ret_id);");
      if (f.ret_value->depends_on) {
        c.line("hira_ctx.depends_on((void *)(uintptr_t)hira_ret, " +
               handle_type_enum(f.ret_value->handle_type) + ", (const void *)(uintptr_t)(" +
               f.ret_value->depends_on->text + "));");
      }
      emit_object_accounting(c, api, f);
    } else {
      c.line("hira_w.put<" + f.ret_type + ">(hira_ret);");
      emit_argument_accounting(c, api, f);
    }
  }
  c.line("hira_w.end_blob(hira_blob);");
  c.line("}");
  for (const auto &p : f.params) {
    c.line("{");
    c.line("const auto hira_blob = hira_w.begin_blob();");
    emit_reply_out(c, *p.value, p.name, "hira_n_" + p.name, p.name, 0,
                   takes_guest_ids(*p.value) ? "hira_gid_" + p.name : "");
    c.line("hira_w.end_blob(hira_blob);");
    c.line("}");
    if (p.value->kind == Value::Kind::Pointer && p.value->deallocate) {
      c.line("if (" + p.name +
             " != nullptr) hira_ctx.release_manual_buffer_after_reply((uint64_t)" + "(uintptr_t)" +
             p.name + ");");
    }
  }
  c.line("}");
  c.line();
}

void emit_trampoline(Code &c, const Callback &cb) {
  const Function &f = cb.fn;
  std::string sig = "static " + f.ret_type + " hira_tramp_" + cb.name + "(";
  for (size_t i = 0; i < f.params.size(); ++i) {
    sig += (i != 0 ? ", " : "") + f.params[i].declaration;
  }
  c.line(sig + ") {");
  c.line("void *hira_reg = (void *)" + cb.userdata_param + ";");
  c.line("::hira::Writer hira_w;");
  c.line("{  // which guest registration to call");
  c.line("const auto hira_blob = hira_w.begin_blob();");
  c.line("hira_w.put_u64(::hira::server::callback_guest_id(hira_reg));");
  c.line("hira_w.end_blob(hira_blob);");
  c.line("}");
  for (const auto &p : f.params) {
    c.line("{");
    c.line("const auto hira_blob = hira_w.begin_blob();");
    emit_encode(c, *p.value, p.name, "hira_w", 0, Side::Server, "");
    c.line("hira_w.end_blob(hira_blob);");
    c.line("}");
  }
  c.line("std::unique_ptr<uint8_t[]> hira_data;");
  c.line("::hira::Reader hira_result;");
  c.line(
      "const bool hira_ok = ::hira::server::invoke_callback(hira_reg, hira_w, &hira_data, "
      "&hira_result);");
  if (f.returns_void) {
    c.line("(void)hira_ok;");
  } else {
    c.line("if (!hira_ok) return " + f.ret_type + "{};");
    c.line("::hira::Reader hira_b = hira_result.blob();");
    c.line("return hira_b.get<" + f.ret_type + ">();");
  }
  c.line("}");
  c.line();
}

}  // namespace

std::string emit_server(const Api &api) {
  Code c;
  emit_prelude(c, api, "API server handlers", Side::Server, true);
  c.line("#include <dlfcn.h>");
  c.line("#include <memory>");
  c.line();
  c.line("#include \"hira/bulk_copy.h\"");
  c.line("#include \"hira/server.h\"");
  c.line();
  for (const auto &cb : api.callbacks) emit_trampoline(c, cb);
  for (const auto &f : api.functions) emit_handler(c, api, f);
  c.line("static const ::hira::server::Handler kHandlers[] = {");
  for (const auto &f : api.functions) c.line("  handle_" + f.name + ",");
  c.line("};");
  c.line("static const uint8_t kAsync[] = {");
  for (const auto &f : api.functions)
    c.line(std::string("  ") +
           (f.always_async()     ? "1"
            : f.async_per_call() ? "2"
                                 : "0") +
           ",  // " + f.name);
  c.line("};");
  c.line("static uint8_t g_bound[kFunctionCount];");
  c.line();
  c.line("static uint32_t hira_bind(void *lib) {");
  c.line("uint32_t n = 0;");
  for (const auto &f : api.functions) {
    if (f.spec_only) {  // hira's own call: nothing to bind, its server_impl runs
      c.line("real_" + f.name + " = &" + f.server_impl + ";  // server_impl");
    } else {
      // Answered in the guest: bound only for the server's utilities.
      c.line("real_" + f.name + " = (decltype(real_" + f.name + "))dlsym(lib, \"" + f.name +
             "\");" + (f.guest_side() ? "  // for utilities" : ""));
    }
    if (f.guest_side()) continue;
    c.line("n += g_bound[FN_" + f.name + "] = real_" + f.name + " != nullptr;");
  }
  c.line("return n;");
  c.line("}");
  c.line();
  c.line("extern const ::hira::server::ServerApi hira_server_api = {");
  c.line("  kApiName, kApiSignature, kFunctionCount, kFunctionNames, kAsync, kHandlers,");
  size_t remote = 0;
  for (const auto &f : api.functions) remote += f.guest_side() ? 0 : 1;
  c.line("  \"" + api.server_library + "\", hira_bind, g_bound, " + std::to_string(remote) + ",");
  c.line("  " + (api.server_warmup.empty() ? std::string("nullptr") : api.server_warmup) +
         ",  // lapis_server_warmup");
  c.line("};");
  c.line();
  c.line("int main(int argc, char **argv) {");
  c.line("return ::hira::server::server_main(hira_server_api, argc, argv);");
  c.line("}");
  return c.str();
}

}  // namespace cava
