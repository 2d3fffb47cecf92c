// cava's emitters, run on models built here by hand (no spec, no Clang): what
// each generated file holds for the shapes a spec describes, as golden
// excerpts, and what it must never hold (dead branches, numbered names).
#include <gtest/gtest.h>

#include <memory>
#include <regex>
#include <string>

#include "emit.h"
#include "emit_util.h"

namespace cava {
namespace {

Expr expr(const std::string &text, std::set<std::string> args = {}) {
  Expr e;
  e.text = text;
  e.args = std::move(args);
  return e;
}

std::shared_ptr<Value> scalar(const std::string &type) {
  auto v = std::make_shared<Value>();
  v->kind = Value::Kind::Scalar;
  v->type_name = v->type_name_unqual = type;
  return v;
}

std::shared_ptr<Value> device_handle() {
  auto v = std::make_shared<Value>();
  v->kind = Value::Kind::Handle;
  v->type_name = v->type_name_unqual = v->handle_type = "toy_dev";
  v->handle_is_pointer = true;
  v->invalid_handle = expr("TOY_BAD_DEVICE");
  return v;
}

// `void *data` the callee fills with `size` bytes.
std::shared_ptr<Value> out_bytes(const std::string &count) {
  auto v = std::make_shared<Value>();
  v->kind = Value::Kind::Pointer;
  v->type_name = v->type_name_unqual = "void *";
  v->out = true;
  v->count = expr(count, {count});
  v->element = scalar("unsigned char");
  v->element_size = "1";
  return v;
}

Param param(const std::string &name, const std::string &declaration, std::shared_ptr<Value> v) {
  Param p;
  p.name = name;
  p.type_name = v->type_name;
  p.declaration = p.local_declaration = declaration;
  p.value = std::move(v);
  return p;
}

Function toy_function(const std::string &name, int id) {
  Function f;
  f.name = name;
  f.id = id;
  f.ret_type = "toy_status";
  f.ret_value = scalar("toy_status");
  f.success = expr("TOY_OK");
  f.error_value = expr("TOY_UNAVAILABLE");
  return f;
}

// toy_status toy_read(toy_dev dev, void *data, size_t size): data is out, `size` bytes.
// toy_status toy_reset(toy_dev dev): async.
Api toy_api() {
  Api api;
  api.name = "toy";
  api.version = "1.0";
  api.guest_soname = api.server_library = "libtoy.so.1";
  api.spec_file = "toy.lapis";
  api.includes = {"toy.h"};
  api.handle_types = {"toy_dev"};
  Function read = toy_function("toy_read", 0);
  read.params = {param("dev", "toy_dev dev", device_handle()),
                 param("data", "void *data", out_bytes("size")),
                 param("size", "size_t size", scalar("size_t"))};
  Function reset = toy_function("toy_reset", 1);
  reset.async = true;
  reset.params = {param("dev", "toy_dev dev", device_handle())};
  api.functions = {read, reset};
  return api;
}

testing::AssertionResult holds(const std::string &code, const std::string &excerpt) {
  if (code.find(excerpt) != std::string::npos) return testing::AssertionSuccess();
  return testing::AssertionFailure() << "no\n  " << excerpt << "\nin\n" << code;
}

// What no generated file may hold: an empty branch, a handle type by number.
void expect_clean(const std::string &code) {
  EXPECT_FALSE(std::regex_search(code, std::regex(R"(if \([^\n]*\) \{\s*\})"))) << code;
  EXPECT_FALSE(std::regex_search(code, std::regex(R"(else \{\s*\})"))) << code;
  EXPECT_FALSE(std::regex_search(code, std::regex(R"(\bHT_[0-9])"))) << code;
  EXPECT_EQ(code.find("if (true)"), std::string::npos) << code;
}

TEST(CavaEmit, GuestStubsExportEachFunctionAndMarshalItsValues) {
  const Api api = toy_api();
  const std::string guest = emit_guest(api);
  EXPECT_TRUE(holds(guest,
                    "extern \"C\" HIRA_EXPORT toy_status toy_read(toy_dev dev, void *data, "
                    "size_t size) {"));
  EXPECT_TRUE(holds(guest, "::hira::guest::Call hira_call(kApiInfo, FN_toy_read, false);"));
  EXPECT_TRUE(holds(guest, "::hira::guest::Call hira_call(kApiInfo, FN_toy_reset, true);"));
  EXPECT_TRUE(holds(guest, "HT_toy_dev"));
  expect_clean(guest);
  const std::string map = emit_version_script(api);
  EXPECT_TRUE(holds(map, "toy_read;"));
  EXPECT_TRUE(holds(map, "toy_reset;"));
  EXPECT_TRUE(holds(map, "local:\n    *;"));
}

TEST(CavaEmit, ServerHandlersCallTheRealFunctionAndBindIt) {
  const Api api = toy_api();
  const std::string server = emit_server(api);
  EXPECT_TRUE(holds(server, "toy_status hira_ret = real_toy_read(dev, data, size);"));
  EXPECT_TRUE(holds(server, "real_toy_read = (decltype(real_toy_read))dlsym(lib, \"toy_read\");"));
  expect_clean(server);
  const std::string protocol = emit_protocol_header(api);
  EXPECT_TRUE(holds(protocol, "HT_toy_dev = 0,"));
  EXPECT_TRUE(holds(protocol, "FN_toy_read"));
}

TEST(CavaEmit, ServerChecksAnswerBeforeTheRealCall) {
  Api api = toy_api();
  api.functions[0].server_checks = {expr("toy_check(size)", {"size"}), expr("toy_check2(dev)")};
  const std::string server = emit_server(api);
  EXPECT_TRUE(
      holds(server, "toy_status hira_ret = (toy_status)(toy_check(size));  // server_check\n"));
  EXPECT_TRUE(holds(server, "if (hira_ret == (TOY_OK)) hira_ret = (toy_status)(toy_check2(dev));"));
  EXPECT_TRUE(
      holds(server, "if (hira_ret == (TOY_OK)) hira_ret = real_toy_read(dev, data, size);"));
}

TEST(CavaEmit, AnAmountHeldByAHandleArgumentIsReportedForItAfterSuccess) {
  Api api = toy_api();
  api.resources = {Resource{"toy_memory", true}};
  ResourceUse grows;
  grows.op = ResourceUse::Op::ServerAllocate;
  grows.resource = "toy_memory";
  grows.amount = expr("toy_growth()");
  grows.handle_arg = "dev";
  api.functions[0].resources = {grows};
  const std::string server = emit_server(api);
  EXPECT_TRUE(holds(server,
                    "    hira_w.put<toy_status>(hira_ret);\n"
                    "    if ((hira_ret == (TOY_OK))) {\n"
                    "      hira_ctx.report_hold(0 /* toy_memory */, "
                    "hira_ctx.export_handle((void *)(uintptr_t)dev, HT_toy_dev), "
                    "(uint64_t)(toy_growth()));\n"
                    "    }\n"));
  expect_clean(server);
}

TEST(CavaEmit, AGuestServerCheckRefusesInTheGuestAndAgainInTheServer) {
  Api api = toy_api();
  api.functions[0].guest_refusals = {expr("toy_check(size)", {"size"})};
  api.functions[0].server_checks = api.functions[0].guest_refusals;
  const std::string guest = emit_guest(api);
  EXPECT_TRUE(holds(guest,
                    "extern \"C\" HIRA_EXPORT toy_status toy_read(toy_dev dev, void *data, "
                    "size_t size) {\n"
                    "  if (const toy_status hira_refused = (toy_status)(toy_check(size)); "
                    "!(hira_refused == (TOY_OK))) {\n"
                    "    return hira_refused;  // guest_server_check: the server would refuse "
                    "it too\n"
                    "  }\n"
                    "  ::hira::guest::Call hira_call("));
  expect_clean(guest);
  EXPECT_TRUE(holds(emit_server(api),
                    "toy_status hira_ret = (toy_status)(toy_check(size));  // server_check\n"));
}

TEST(CavaEmit, TheSpecsOwnCallRunsItsServerImplAndIsNotExported) {
  Api api = toy_api();
  Function own = toy_function("hira_toy_name", 2);
  own.spec_only = true;
  own.server_impl = "toy_name_server";
  own.params = {param("text", "void *text", out_bytes("cap")),
                param("cap", "size_t cap", scalar("size_t"))};
  api.functions.push_back(own);
  api.utilities = {"utility toy_status toy_name_server(void *text, size_t cap) { return TOY_OK; }"};
  const std::string server = emit_server(api);
  EXPECT_TRUE(holds(server, "real_hira_toy_name = &toy_name_server;  // server_impl"));
  EXPECT_EQ(server.find("dlsym(lib, \"hira_toy_name\")"), std::string::npos);
  // Declared for the utilities on both sides (no header declares it).
  EXPECT_TRUE(holds(server, "extern \"C\" toy_status hira_toy_name(void *text, size_t cap);"));
  EXPECT_TRUE(
      holds(emit_guest(api), "extern \"C\" toy_status hira_toy_name(void *text, size_t cap);"));
  EXPECT_EQ(emit_version_script(api).find("hira_toy_name"), std::string::npos);
}

TEST(CavaEmit, FunctionsTheSpecLeavesOutAnswerItsValueOnce) {
  Api api = toy_api();
  api.unsupported_prefix = "toy_";
  api.unsupported_value = expr("TOY_NOT_SUPPORTED");
  api.unsupported = {{"toy_explode", "toy_status", "toy_status toy_explode(toy_dev dev, int how)"}};
  const std::string guest = emit_guest(api);
  EXPECT_TRUE(
      holds(guest, "extern \"C\" HIRA_EXPORT toy_status toy_explode(toy_dev dev, int how) {"));
  EXPECT_TRUE(holds(guest, "hira_unsupported(\"toy_explode\", said);"));
  EXPECT_TRUE(holds(guest, "return (toy_status)(TOY_NOT_SUPPORTED);"));
  EXPECT_TRUE(holds(guest, "the toy spec does not describe it"));
  EXPECT_TRUE(holds(emit_version_script(api), "toy_explode;"));
}

// guest_export: the spec's C code, exported under its name (between markers
// a test compiles against the header's other configuration); not a remote
// call, so nothing on the wire or in the server.
// Nothing to do after a call that always succeeds: no empty `{ }` block in
// the handler (nor `if (ok) { }`, Code::str drops both); something to do (a
// spec statement) runs in it.
TEST(CavaEmit, HandlersHaveNoEmptyBlockAfterTheCall) {
  Api api = toy_api();
  api.functions[0].success.reset();  // every call succeeds: a plain block
  EXPECT_FALSE(holds(emit_server(api), "  {\n  }\n"));
  api.functions[0].statements = {"toy_note(dev);"};
  EXPECT_TRUE(holds(emit_server(api), "  {\n    toy_note(dev);\n  }\n"));
}

// accepts_handle: where toy_dev is expected, a toy_sub handle passes too:
// the guest unboxes either type, the server looks the id up as either, and
// lapis_is_handle(v, toy_dev) holds for both (hira_handle_type<T>::also).
TEST(CavaEmit, AHandleTypeThatAcceptsAnotherLooksUpBoth) {
  Api api = toy_api();
  api.handle_types.push_back("toy_sub");
  api.handle_aliases["toy_dev"] = "toy_sub";
  for (auto &f : api.functions) f.params[0].value->also_handle_type = "toy_sub";
  const std::string guest = emit_guest(api);
  EXPECT_TRUE(holds(guest, "unbox_handle((const void *)(uintptr_t)(dev), HT_toy_dev, HT_toy_sub)"));
  EXPECT_TRUE(holds(guest,
                    "struct hira_handle_type<toy_dev> { [[maybe_unused]] static constexpr "
                    "uint32_t id = HT_toy_dev, also = HT_toy_sub; };"));
  EXPECT_TRUE(holds(guest,
                    "struct hira_handle_type<toy_sub> { [[maybe_unused]] static constexpr "
                    "uint32_t id = HT_toy_sub, also = HT_toy_sub; };"));
  EXPECT_TRUE(
      holds(emit_server(api), "hira_ctx.lookup(hira_a[0].get_u64(), HT_toy_dev, HT_toy_sub, 0)"));
}

TEST(CavaEmit, GuestExportsAreExportedAsWritten) {
  Api api = toy_api();
  api.guest_exports = {{"toy_read_ptsz",
                        "guest_export toy_status toy_read_ptsz(toy_dev dev, void *data, "
                        "size_t size) {\n  return toy_read(dev ? dev : (toy_dev)2, data, size);\n}",
                        "", ""}};
  const std::string guest = emit_guest(api);
  EXPECT_TRUE(
      holds(guest,
            "#define guest_export extern \"C\" HIRA_EXPORT\n"
            "// hira-guest-exports-begin\n"
            "guest_export toy_status toy_read_ptsz(toy_dev dev, void *data, size_t size) {\n"
            "  return toy_read(dev ? dev : (toy_dev)2, data, size);\n"
            "}\n"
            "// hira-guest-exports-end\n"));
  EXPECT_TRUE(holds(emit_version_script(api), "toy_read_ptsz;"));
  EXPECT_EQ(emit_server(api).find("toy_read_ptsz"), std::string::npos);
  EXPECT_EQ(emit_protocol_header(api).find("toy_read_ptsz"), std::string::npos);
}

// guest_export_as: an older version's entry point, a C function of its own
// name exported under the symbol its asm label gives (the labelled
// prototypes between markers, for a test against the header).
TEST(CavaEmit, GuestExportsAsAnotherSymbolCarryAnAsmLabel) {
  Api api = toy_api();
  api.guest_exports = {{"toy_read_v1",
                        "guest_export_as(\"toy_read_v1\")\ntoy_status hira_v1_read(toy_dev dev) "
                        "{\n  return toy_read(dev, NULL, 0);\n}",
                        "hira_v1_read", "toy_status hira_v1_read(toy_dev dev)"}};
  const std::string guest = emit_guest(api);
  EXPECT_TRUE(holds(guest,
                    "#define guest_export_as(symbol) extern \"C\" HIRA_EXPORT\n"
                    "// hira-legacy-exports-begin\n"
                    "extern \"C\" HIRA_EXPORT toy_status hira_v1_read(toy_dev dev) "
                    "__asm__(\"toy_read_v1\");\n"
                    "// hira-legacy-exports-end\n"
                    "guest_export_as(\"toy_read_v1\")\ntoy_status hira_v1_read(toy_dev dev) {\n"));
  // Not among the plain exports, whose section a test compiles as C.
  EXPECT_EQ(guest.find("hira-guest-exports-begin"), std::string::npos);
  EXPECT_TRUE(holds(emit_version_script(api), "toy_read_v1;"));
  EXPECT_EQ(emit_version_script(api).find("hira_v1_read"), std::string::npos);
}

TEST(CavaEmit, GuestWrapCallsItsUtilityAndKeepsTheRemoteStub) {
  Api api = toy_api();
  api.functions[0].guest_wrap = "toy_read_in_parts";
  const std::string guest = emit_guest(api);
  EXPECT_TRUE(holds(guest, "return toy_read_in_parts(dev, data, size);  // guest_wrap"));
  EXPECT_TRUE(holds(guest,
                    "static toy_status hira_remote_toy_read(toy_dev dev, void *data, "
                    "size_t size) {"));
  // lapis_remote(name) expands its argument first: a name a header maps to a
  // versioned symbol names that symbol's stub.
  EXPECT_TRUE(holds(guest, "#define lapis_remote(f) hira_remote_of(f)"));
}

// guest_answer: never sent; a handle the guest does not hold fails first with
// its own code, then the answer, in the result or in the error_code argument.
TEST(CavaEmit, GuestAnswersCheckHandlesThenFailWithTheirValue) {
  Api api = toy_api();
  api.functions[1].async = false;
  api.functions[1].guest_answer = expr("TOY_NO_SHARING");
  Function open = toy_function("toy_open_shared", 2);
  open.ret_type = "toy_dev";
  open.returns_pointer = true;
  open.guest_answer = expr("TOY_NO_SHARING");
  auto code = std::make_shared<Value>();
  code->kind = Value::Kind::Pointer;
  code->type_name = code->type_name_unqual = "toy_status *";
  code->error_code = true;
  code->element = scalar("toy_status");
  open.params = {param("dev", "toy_dev dev", device_handle()),
                 param("err", "toy_status *err", code)};
  api.functions.push_back(open);
  const std::string guest = emit_guest(api);
  EXPECT_TRUE(holds(guest,
                    "extern \"C\" HIRA_EXPORT toy_status toy_reset(toy_dev dev) {  // "
                    "guest_answer: never sent\n"
                    "  (void)dev;\n"
                    "  if (dev == nullptr || ::hira::guest::unbox_handle((const void "
                    "*)(uintptr_t)(dev), HT_toy_dev) == ::hira::guest::kInvalidHandle) {\n"
                    "    return (toy_status)(TOY_BAD_DEVICE);\n"
                    "  }\n"
                    "  return (toy_status)(TOY_NO_SHARING);\n"
                    "}"));
  EXPECT_TRUE(holds(guest,
                    "    if (err != nullptr) *err = (toy_status)(TOY_BAD_DEVICE);\n"
                    "    return (toy_dev)0;\n"
                    "  }\n"
                    "  if (err != nullptr) *err = (toy_status)(TOY_NO_SHARING);\n"
                    "  return (toy_dev)0;\n"));
  EXPECT_EQ(guest.find("FN_toy_reset, "), std::string::npos);  // no call is made
  expect_clean(guest);
  // The server refuses it (a hand-made frame); the router takes any shape.
  EXPECT_TRUE(holds(emit_server(api), "Unsupported, 0);  // answered in the guest"));
}

TEST(CavaEmit, SameAsCallsTheOtherFunction) {
  Api api = toy_api();
  api.functions[1].same_as = "toy_reset_v2";
  EXPECT_TRUE(holds(emit_guest(api), "return toy_reset_v2(dev);  // same_as"));
}

TEST(CavaEmit, CodeDropsBranchesThatCameOutEmpty) {
  Code c;
  c.line("void f(int a, int b) {");
  c.line("if (a) {");
  c.line("}");
  c.line("if (b) {");
  c.line("} else {");
  c.line("g();");
  c.line("}");
  c.line("if (a > b) {");
  c.line("h();");
  c.line("} else {");
  c.line("if (b) {");
  c.line("}");
  c.line("}");
  c.line("}");
  EXPECT_EQ(c.str(),
            "void f(int a, int b) {\n"
            "  if (!(b)) {\n"
            "    g();\n"
            "  }\n"
            "  if (a > b) {\n"
            "    h();\n"
            "  }\n"
            "}\n");
}

}  // namespace
}  // namespace cava
