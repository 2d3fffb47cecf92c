// The router module: command shapes for validation and resource accounting.
#include <algorithm>

#include "emit.h"
#include "emit_util.h"

namespace cava {

namespace {

std::string blob_size(const Value &v) {
  if (v.pred) return "::hira::router::kVariableSize";
  switch (v.kind) {
    case Value::Kind::Scalar:
      return "sizeof(" + v.type_name_unqual + ")";
    case Value::Kind::Handle:
    case Value::Kind::Callback:
      return "8";
    case Value::Kind::Userdata:
      return "0";
    case Value::Kind::Pointer:
      return "::hira::router::kVariableSize";
  }
  return "::hira::router::kVariableSize";
}

// The resources the router computes itself (server_allocates_rc and
// measured consumes_rc: the API server reports them in an Account frame).
std::vector<const ResourceUse *> router_resources(const Function &f) {
  std::vector<const ResourceUse *> v;
  for (const auto &u : f.resources) {
    if (u.op != ResourceUse::Op::ServerAllocate && u.op != ResourceUse::Op::ServerConsume) {
      v.push_back(&u);
    }
  }
  return v;
}

void emit_account(Code &c, const Api &api, const Function &f) {
  const auto resources = router_resources(f);
  std::vector<const ResourceUse *> measured;  // server_allocates_rc: a probe of 1 each
  for (const auto &u : f.resources) {
    if (u.op == ResourceUse::Op::ServerAllocate) measured.push_back(&u);
  }
  if (resources.empty() && measured.empty()) return;
  c.line("case FN_" + f.name + ": {");
  std::set<std::string> used;
  for (const auto *u : resources) used.insert(u->amount.args.begin(), u->amount.args.end());
  for (size_t i = 0; i < f.params.size(); ++i) {
    const Param &p = f.params[i];
    if (used.count(p.name) == 0) continue;
    c.line("::hira::Reader b" + std::to_string(i) + " = blobs[" + std::to_string(i) + "];");
    if (p.value->kind == Value::Kind::Scalar) {
      // The guest's bytes: an enum is read as its integer (wire_repr_t).
      const std::string t = "::hira::wire_repr_t<" + p.value->type_name_unqual + ">";
      c.line("const " + t + " " + p.name + " = b" + std::to_string(i) + ".get<" + t + ">();");
    } else {
      c.line("const uint64_t " + p.name + " = b" + std::to_string(i) + ".get_u64();");
    }
  }
  for (const auto *up : resources) {
    const ResourceUse &u = *up;
    const std::string rc = "RC_" + api.resources[resource_index(api, u.resource)].name;
    c.line("if (out->count < ::hira::router::kMaxDeltas) {");
    if (u.op == ResourceUse::Op::Deallocate && !u.handle_arg.empty()) {
      c.line("out->deltas[out->count++] = {" + rc + ", 0, (uint64_t)" + u.handle_arg + ", true};");
    } else {
      const std::string sign = u.op == ResourceUse::Op::Deallocate ? "-" : "";
      c.line("out->deltas[out->count++] = {" + rc + ", " + sign + "(int64_t)(" + u.amount.text +
             "), 0, false};");
    }
    c.line("}");
  }
  for (const auto *u : measured) {
    const std::string rc = "RC_" + api.resources[resource_index(api, u->resource)].name;
    c.line("if (out->count < ::hira::router::kMaxDeltas) {");
    c.line("out->deltas[out->count++] = {" + rc + ", 1, 0, false, true};  // probe: the server measures");
    c.line("}");
  }
  c.line("break;");
  c.line("}");
}

// Where the handle a call allocates sits in its reply.
void emit_allocated(Code &c, const Function &f) {
  if (f.ret_value && f.ret_value->kind == Value::Kind::Handle && f.ret_value->allocate) {
    c.line("case FN_" + f.name + ": return r.blob().get_u64();");
    return;
  }
  for (size_t i = 0; i < f.params.size(); ++i) {
    const Value &v = *f.params[i].value;
    if (v.kind != Value::Kind::Pointer || !v.element || !v.element->allocate) continue;
    // A handle's id, or a scalar that names what the call allocated (a
    // device address): the key its release names too.
    std::string key;
    if (v.element->kind == Value::Kind::Handle) key = "b.get_u64()";
    if (v.element->kind == Value::Kind::Scalar) {
      key = "(uint64_t)b.get<::hira::wire_repr_t<" + v.element->type_name_unqual + ">>()";
    }
    if (key.empty()) continue;
    c.line("case FN_" + f.name + ": {");
    c.line("for (int i = 0; i < " + std::to_string(i + 1) + "; ++i) r.blob();");
    c.line("::hira::Reader b = r.blob();");
    c.line("if (b.get_u64() == 0) return 0;");
    c.line("return " + key + ";");
    c.line("}");
    return;
  }
}

}  // namespace

std::string emit_router(const Api &api) {
  Code c;
  emit_prelude(c, api, "Router module (command shapes and accounting)", Side::Server, false);
  c.line("#include \"hira/router_module.h\"");
  c.line();
  c.line("namespace {");
  c.line();
  c.line("enum Resource : uint32_t {");
  for (const auto &r : api.resources) c.line("RC_" + r.name + ",");
  c.line("RC_COUNT_");
  c.line("};");
  c.line("const char *const kResourceNames[] = {");
  for (const auto &r : api.resources) c.line("\"" + r.name + "\",");
  c.line("nullptr};");
  c.line("const uint8_t kResourceContinuous[] = {");
  for (const auto &r : api.resources)
    c.line(std::string(r.continuous ? "1" : "0") + ",  // " + r.name);
  c.line("0};");
  c.line();
  std::string offsets, counts, sizes, asyncs;
  uint32_t off = 0;
  for (const auto &f : api.functions) {
    offsets += std::to_string(off) + ", ";
    counts += std::to_string(f.params.size()) + ", ";
    asyncs += std::string(f.always_async() ? "1" : f.async_per_call() ? "2" : "0") + ", ";
    for (const auto &p : f.params) {
      // Guest-side functions never travel: any shape is refused by function id anyway.
      const std::string size =
          f.guest_side() ? "::hira::router::kVariableSize" : blob_size(*p.value);
      sizes += "  " + size + ",  // " + f.name + "." + p.name + "\n";
    }
    off += static_cast<uint32_t>(f.params.size());
  }
  c.line("const uint32_t kArgOffset[] = {" + offsets + "};");
  c.line("const uint32_t kArgCount[] = {" + counts + "};");
  c.line("const uint8_t kAsync[] = {" + asyncs + "};");
  // A retain: `allocate` on a handle argument (not on a returned handle).
  std::string retained;
  for (const auto &f : api.functions) {
    int arg = -1;
    for (size_t i = 0; i < f.params.size() && arg < 0; ++i) {
      const Value &v = *f.params[i].value;
      if (v.kind == Value::Kind::Handle && v.allocate) arg = static_cast<int>(i);
    }
    retained += std::to_string(arg) + ", ";
  }
  c.line("const int32_t kRetainedArg[] = {" + retained + "};");
  // rc_until_destroyed: the server says when what the handle holds goes.
  std::string until;
  for (const auto &f : api.functions) until += f.destroy_watch.empty() ? "0, " : "1, ";
  c.line("const uint8_t kHeldUntilDestroyed[] = {" + until + "};");
  // Measured device time: the calls that submit or wait for device work.
  std::string device;
  for (const auto &f : api.functions) {
    const bool measured = std::any_of(f.resources.begin(), f.resources.end(), [](const auto &u) {
      return u.op == ResourceUse::Op::ServerConsume;
    });
    device += measured ? "1, " : "0, ";
  }
  c.line("const uint8_t kDeviceWork[] = {" + device + "};");
  c.line("const uint32_t kArgSizes[] = {");
  c.raw(sizes);
  c.line("  0};");
  c.line();
  c.line(
      "void account_call(uint32_t func, const ::hira::Reader *blobs, "
      "::hira::router::CallAccounting *out) {");
  c.line("(void)blobs;");
  c.line("(void)out;");
  c.line("switch (func) {");
  for (const auto &f : api.functions) emit_account(c, api, f);
  c.line("default:");
  c.line("break;");
  c.line("}");
  c.line("}");
  c.line();
  c.line("uint64_t allocated_handle(uint32_t func, ::hira::Reader r) {");
  c.line("switch (func) {");
  for (const auto &f : api.functions) emit_allocated(c, f);
  c.line("default:");
  c.line("return 0;");
  c.line("}");
  c.line("}");
  c.line();
  c.line("bool reply_succeeded(uint32_t func, ::hira::Reader r) {");
  c.line("switch (func) {");
  for (const auto &f : api.functions) {
    if (f.returns_void || !f.success) continue;
    c.line("case FN_" + f.name + ": {");
    c.line("::hira::Reader b = r.blob();");
    // The server's bytes: an enum (CUresult) is read as its integer.
    const std::string t = "::hira::wire_repr_t<" + f.ret_type + ">";
    c.line("const " + t + " ret = b.get<" + t + ">();");
    c.line("return b.done() && " + success_test(f, "ret") + ";");
    c.line("}");
  }
  c.line("default:");
  c.line("return true;");
  c.line("}");
  c.line("}");
  c.line();
  c.line("}  // namespace");
  c.line();
  c.line(
      "extern \"C\" __attribute__((visibility(\"default\"))) const ::hira::router::RouterModule "
      "hira_router_module = {");
  c.line(
      "  ::hira::router::kRouterModuleAbi, kApiName, kApiVersion, kApiSignature, kFunctionCount,");
  c.line("  kFunctionNames, kAsync, kArgOffset, kArgCount, kArgSizes, RC_COUNT_, kResourceNames,");
  c.line("  kResourceContinuous, account_call, allocated_handle, reply_succeeded, kRetainedArg,");
  c.line("  kHeldUntilDestroyed, kDeviceWork,");
  c.line("};");
  return c.str();
}

}  // namespace cava
