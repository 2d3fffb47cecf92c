// cava, the LAPIS compiler, run as a process on the spec fixtures in tests/specs:
// the model it dumps for good specs, the files `gen` writes, the error (and its
// file:line) for each bad_*.lapis, and the drafts `cava init` writes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>

#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using hira::test::RunResult;
using nlohmann::json;

std::string specs_dir() { return hira::test::source_dir() + "/tests/specs"; }
std::string spec(const std::string &name) { return specs_dir() + "/" + name; }

// Runs `cava ARGS -I DIR...`.
RunResult cava(std::vector<std::string> args, const std::vector<std::string> &include_dirs = {}) {
  args.insert(args.begin(), hira::test::build_dir() + "/bin/cava");
  for (const auto &d : include_dirs) {
    args.push_back("-I");
    args.push_back(d);
  }
  return hira::test::run(args);
}

// `cava dump` of a spec that must be accepted.
json dump(const std::string &spec_path, const std::string &include_dir) {
  const auto r = cava({"dump", spec_path}, {include_dir});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return json::parse(r.out);
}

std::vector<std::string> function_names(const json &api) {
  std::vector<std::string> names;
  for (const auto &f : api.at("functions")) names.push_back(f.at("name"));
  return names;
}

const json &find_named(const json &list, const std::string &name) {
  for (const auto &e : list) {
    if (e.at("name") == name) return e;
  }
  throw std::runtime_error("nothing named " + name + " in " + list.dump());
}
const json &function(const json &api, const std::string &name) {
  return find_named(api.at("functions"), name);
}
const json &param(const json &api, const std::string &fn, const std::string &name) {
  return find_named(function(api, fn).at("params"), name);
}

// stderr holds "PATH:LINE: error: ...WHAT..." (Clang's own "PATH:LINE:COL: error: " too).
testing::AssertionResult has_error_at(const std::string &err, const std::string &path, int line,
                                      const std::string &what) {
  const std::string prefix = path + ":" + std::to_string(line) + ":";
  std::istringstream lines(err);
  for (std::string l; std::getline(lines, l);) {
    if (l.rfind(prefix, 0) != 0) continue;
    std::string rest = l.substr(prefix.size());
    size_t digits = 0;
    while (digits < rest.size() && std::isdigit(static_cast<unsigned char>(rest[digits]))) ++digits;
    if (digits > 0 && digits < rest.size() && rest[digits] == ':') rest = rest.substr(digits + 1);
    if (rest.rfind(" error: ", 0) == 0 && rest.find(what) != std::string::npos) {
      return testing::AssertionSuccess();
    }
  }
  return testing::AssertionFailure()
         << "no \"" << prefix << " error: ..." << what << "...\" in stderr:\n"
         << err;
}

// ---- good specs ---------------------------------------------------------------

TEST(CavaDump, AccSpecModel) {
  const json api = dump(hira::test::source_dir() + "/lapis_specs/acc.lapis",
                        hira::test::source_dir() + "/demo/libacc");
  EXPECT_EQ(api.at("name"), "acc");
  EXPECT_EQ(api.at("version"), "1.2");
  EXPECT_EQ(api.at("guest_soname"), "libacc.so.1");
  EXPECT_EQ(api.at("server_library"), "libacc.so.1");
  const std::vector<std::string> order = {
      "acc_get_version",   "acc_context_create", "acc_context_destroy", "acc_context_name",
      "acc_context_stats", "acc_buffer_create",  "acc_buffer_release",  "acc_buffer_write",
      "acc_buffer_read",   "acc_saxpy",          "acc_finish",          "acc_sum",
      "acc_run",           "acc_sleep",          "acc_context_count"};
  EXPECT_EQ(function_names(api), order);
  for (size_t i = 0; i < order.size(); ++i) {
    const json &f = function(api, order[i]);
    EXPECT_EQ(f.at("id"), i) << order[i];
    EXPECT_EQ(f.at("async"), order[i] == "acc_saxpy") << order[i];
    if (order[i] != "acc_context_count") {
      EXPECT_EQ(f.at("success"), "ACC_SUCCESS") << order[i];
      EXPECT_EQ(f.at("error_value"), "ACC_ERR_UNAVAILABLE") << order[i];
    }
  }
  EXPECT_EQ(function(api, "acc_context_count").at("error_value"), "-1");
  EXPECT_FALSE(function(api, "acc_context_count").contains("success"));
  EXPECT_EQ(api.at("handle_types"), json({"acc_context", "acc_buffer"}));
  EXPECT_EQ(api.at("resources"), json::parse(R"([{"name": "device_memory", "continuous": true},
                                                 {"name": "kernel_launches", "continuous": false},
                                                 {"name": "device_time", "continuous": false}])"));

  const json &name = param(api, "acc_context_create", "name");
  EXPECT_EQ(name.at("kind"), "pointer");
  EXPECT_EQ(name.at("in"), true);
  EXPECT_FALSE(name.contains("out"));
  EXPECT_EQ(name.at("buffer"), "strlen(name) + 1");
  const json &ctx_out = param(api, "acc_context_create", "ctx_out");
  EXPECT_EQ(ctx_out.at("out"), true);
  EXPECT_EQ(ctx_out.at("element").at("kind"), "handle");
  EXPECT_EQ(ctx_out.at("element").at("type"), "acc_context");
  EXPECT_EQ(ctx_out.at("element").at("allocate"), true);
  const json &ctx = param(api, "acc_context_destroy", "ctx");
  EXPECT_EQ(ctx.at("kind"), "handle");
  EXPECT_EQ(ctx.at("deallocate"), true);
  EXPECT_EQ(ctx.at("invalid_handle"), "ACC_ERR_INVALID_CONTEXT");
  const json &data = param(api, "acc_buffer_read", "data");
  EXPECT_EQ(data.at("out"), true);
  EXPECT_EQ(data.at("buffer"), "size");
  EXPECT_EQ(param(api, "acc_context_name", "name").at("buffer"), "cap");

  EXPECT_EQ(param(api, "acc_run", "progress").at("kind"), "callback");
  EXPECT_EQ(param(api, "acc_run", "progress").at("callback"), "acc_progress_cb");
  EXPECT_EQ(param(api, "acc_run", "user_data").at("kind"), "userdata");
  const json &cb = find_named(api.at("callbacks"), "acc_progress_cb");
  EXPECT_EQ(cb.at("userdata"), "user_data");
  EXPECT_EQ(cb.at("params").size(), 3u);

  EXPECT_EQ(function(api, "acc_run").at("resources"),
            json::parse(R"j([{"op": "consumes", "resource": "kernel_launches",
                               "amount": "steps > 0 ? steps : 0"},
                              {"op": "server_consumes", "resource": "device_time",
                               "amount": "lapis_call_ns()"}])j"));
  EXPECT_EQ(function(api, "acc_buffer_create").at("resources"),
            json::parse(R"([{"op": "allocates", "resource": "device_memory", "amount": "size"}])"));
  EXPECT_EQ(
      function(api, "acc_buffer_release").at("resources"),
      json::parse(R"([{"op": "deallocates", "resource": "device_memory", "amount": "buf"}])"));
}

TEST(CavaDump, WidgetSpecModel) {
  const json api = dump(spec("widget.lapis"), specs_dir());
  EXPECT_EQ(api.at("name"), "widget");
  EXPECT_EQ(api.at("version"), "2.1");
  EXPECT_EQ(api.at("guest_soname"), "libwidget.so.2");
  EXPECT_EQ(api.at("server_library"), "libwidget-real.so.2");
  EXPECT_EQ(function_names(api),
            std::vector<std::string>(
                {"widget_pool_create", "widget_pool_destroy", "widget_create", "widget_destroy",
                 "widget_write", "widget_read", "widget_fill", "widget_move", "widget_get_position",
                 "widget_set_tags", "widget_transfer", "widget_on_event", "widget_draw",
                 "widget_pool_first", "widget_count", "widget_flush", "widget_close",
                 "widget_pool_share", "widget_name"}));
  for (const auto &f : api.at("functions")) {
    EXPECT_EQ(f.at("async"), f.at("name") == "widget_draw") << f.at("name");
  }
  // Handle kinds come from type(T) { handle; }, in the order they are first used.
  EXPECT_EQ(api.at("handle_types"), json({"widget_pool", "widget"}));
  EXPECT_EQ(param(api, "widget_pool_destroy", "pool").at("invalid_handle"), "WIDGET_ERR_INVALID");
  EXPECT_EQ(param(api, "widget_pool_destroy", "pool").at("deallocate"), true);
  EXPECT_EQ(param(api, "widget_create", "widget_out").at("element"),
            json::parse(R"({"kind": "handle", "type": "widget", "out": true, "allocate": true})"));
  EXPECT_EQ(param(api, "widget_pool_create", "name").at("buffer"), "strlen(name) + 1");

  // success/error_value from type(widget_status), error_value from type(int); none for
  // a function returning a handle or void.
  EXPECT_EQ(function(api, "widget_read").at("success"), "WIDGET_OK");
  EXPECT_EQ(function(api, "widget_read").at("error_value"), "WIDGET_ERR_UNAVAILABLE");
  EXPECT_EQ(function(api, "widget_count").at("error_value"), "-1");
  EXPECT_EQ(function(api, "widget_pool_first").at("return_value").at("kind"), "handle");
  EXPECT_FALSE(function(api, "widget_pool_first").contains("error_value"));
  EXPECT_FALSE(function(api, "widget_flush").contains("return_value"));

  const json &data = param(api, "widget_read", "data");
  EXPECT_EQ(data.at("kind"), "pointer");
  EXPECT_EQ(data.at("out"), true);
  EXPECT_EQ(data.at("buffer"), "size");
  EXPECT_EQ(param(api, "widget_read", "read_out").at("element").at("out"), true);
  // From argument_default(const void *data, size_t size).
  EXPECT_EQ(param(api, "widget_write", "data").at("in"), true);
  EXPECT_EQ(param(api, "widget_write", "data").at("buffer"), "size");
  // functions(widget_write) {}: the header's argument names, the defaults.
  EXPECT_EQ(function(api, "widget_write").at("params").size(), 3u);
  EXPECT_EQ(param(api, "widget_write", "w").at("kind"), "handle");
  // Answered in the guest.
  EXPECT_EQ(function(api, "widget_close").at("same_as"), "widget_destroy");
  EXPECT_EQ(function(api, "widget_pool_share").at("guest_answer"), "WIDGET_ERR_UNAVAILABLE");
  EXPECT_EQ(param(api, "widget_pool_share", "pool").at("invalid_handle"), "WIDGET_ERR_INVALID");
  EXPECT_EQ(function(api, "widget_name").at("guest_answer"), "NULL");
  // Exported as written (not an API function: no stub, no wire id).
  EXPECT_EQ(api.at("guest_exports"),
            json({"widget_count_default", "widget_count_v9", "widget_flush_v9"}));
  EXPECT_EQ(param(api, "widget_move", "to").at("kind"), "scalar");  // a flat struct by value
  EXPECT_EQ(param(api, "widget_move", "to").at("type"), "widget_point");

  // type_cast(const float *): a const void * seen as floats.
  const json &values = param(api, "widget_fill", "values");
  EXPECT_EQ(values.at("type"), "const float *");
  EXPECT_EQ(values.at("element").at("type"), "const float");
  EXPECT_EQ(values.at("buffer"), "n");

  // const char **strings: buffer(count) of buffers of strlen(strings[index]) + 1.
  const json &strings = param(api, "widget_set_tags", "strings");
  EXPECT_EQ(strings.at("buffer"), "count");
  EXPECT_EQ(strings.at("in"), true);
  EXPECT_EQ(strings.at("element").at("kind"), "pointer");
  EXPECT_EQ(strings.at("element").at("in"), true);
  EXPECT_EQ(strings.at("element").at("buffer"), "strlen(strings[index]) + 1");
  EXPECT_EQ(strings.at("element").at("element").at("type"), "const char");

  // if (upload) { in; } else { out; } inside argument(data).
  const json &transfer = param(api, "widget_transfer", "data");
  EXPECT_EQ(transfer.at("if"), "upload");
  EXPECT_EQ(transfer.at("then").at("in"), true);
  EXPECT_FALSE(transfer.at("then").contains("out"));
  EXPECT_EQ(transfer.at("else").at("out"), true);
  EXPECT_FALSE(transfer.at("else").contains("in"));
  EXPECT_EQ(transfer.at("then").at("buffer"), "size");
  EXPECT_EQ(transfer.at("else").at("buffer"), "size");

  EXPECT_EQ(param(api, "widget_on_event", "fn").at("kind"), "callback");
  EXPECT_EQ(param(api, "widget_on_event", "fn").at("callback"), "widget_event_cb");
  EXPECT_EQ(param(api, "widget_on_event", "user_data").at("kind"), "userdata");
  EXPECT_EQ(find_named(api.at("callbacks"), "widget_event_cb").at("userdata"), "user_data");

  EXPECT_EQ(api.at("resources"), json::parse(R"([{"name": "widget_memory", "continuous": true},
                                                 {"name": "draw_calls", "continuous": false}])"));
  EXPECT_EQ(function(api, "widget_create").at("resources"),
            json::parse(R"([{"op": "allocates", "resource": "widget_memory", "amount": "64"}])"));
  EXPECT_EQ(function(api, "widget_destroy").at("resources"),
            json::parse(R"([{"op": "deallocates", "resource": "widget_memory", "amount": "w"}])"));
  EXPECT_EQ(function(api, "widget_draw").at("resources"),
            json::parse(R"([{"op": "consumes", "resource": "draw_calls", "amount": "frames"}])"));
}

TEST(CavaGen, WritesEveryFile) {
  hira::test::TempDir dir;
  const std::string out = dir.path() + "/gen";
  const auto r = cava({"gen", spec("widget.lapis"), "--out", out}, {specs_dir()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char *suffix :
       {"_protocol.h", "_guest.cpp", "_server.cpp", "_router.cpp", "_guest.map"}) {
    const std::string path = out + "/widget" + suffix;
    ASSERT_TRUE(fs::exists(path)) << path;
    EXPECT_GT(fs::file_size(path), 0u) << path;
  }
  EXPECT_NE(hira::test::read_file(out + "/widget_protocol.h").find("FN_widget_set_tags = 9"),
            std::string::npos);
  const std::string map = hira::test::read_file(out + "/widget_guest.map");
  for (const auto *fn : {"widget_pool_create;", "widget_draw;", "widget_flush;",
                         "widget_count_default;", "widget_count_v9;", "widget_flush_v9;"}) {
    EXPECT_NE(map.find(fn), std::string::npos) << fn << " not exported:\n" << map;
  }
  // guest_export_variants: the header's prototype, NULL pools given as the
  // value, a void function called without return.
  const std::string guest = hira::test::read_file(out + "/widget_guest.cpp");
  EXPECT_NE(guest.find("guest_export int widget_count_v9(widget_pool pool) {\n"
                       "  return widget_count(pool ? pool : (widget_pool)1);\n}"),
            std::string::npos)
      << guest;
  EXPECT_NE(guest.find("guest_export void widget_flush_v9(widget_pool pool) {\n"
                       "  widget_flush(pool ? pool : (widget_pool)1);\n}"),
            std::string::npos);
}

TEST(CavaGen, ExpectSonameMismatchFails) {
  hira::test::TempDir dir;
  const std::string out = dir.path() + "/gen";
  const auto r =
      cava({"gen", spec("widget.lapis"), "--out", out, "--expect-soname", "wrong"}, {specs_dir()});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has_error_at(r.err, spec("widget.lapis"), 1, "\"libwidget.so.2\""));
  EXPECT_NE(r.err.find("\"wrong\""), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out));
}

// The signature covers the wire shape: a spec that differs only in how one
// buffer is sized (same prototypes) is another protocol.
TEST(CavaSignature, HashesTheWireShapeNotJustThePrototypes) {
  hira::test::TempDir dir;
  const std::string text = hira::test::read_file(spec("widget.lapis"));
  const std::string from = "argument_default(const void *data, size_t size) { in; buffer(size); }";
  ASSERT_NE(text.find(from), std::string::npos);
  std::string changed = text;
  changed.replace(changed.find(from), from.size(),
                  "argument_default(const void *data, size_t size) { in; buffer(size / 2); }");
  const std::string same_path = dir.path() + "/same.lapis",
                    changed_path = dir.path() + "/changed.lapis";
  std::ofstream(same_path) << text;
  std::ofstream(changed_path) << changed;
  const auto original = dump(spec("widget.lapis"), specs_dir());
  const auto same = dump(same_path, specs_dir());
  const auto other = dump(changed_path, specs_dir());
  EXPECT_EQ(original["signature"], same["signature"]);
  EXPECT_NE(original["signature"], other["signature"]);
}

// The signature of widget.lapis with each (text, replacement) applied.
json::value_type widget_signature_with(
    const std::vector<std::pair<std::string, std::string>> &edits) {
  hira::test::TempDir dir;
  std::string text = hira::test::read_file(spec("widget.lapis"));
  for (const auto &[from, to] : edits) {
    const auto at = text.find(from);
    EXPECT_NE(at, std::string::npos) << from;
    if (at != std::string::npos) text.replace(at, from.size(), to);
  }
  const std::string path = dir.path() + "/edited.lapis";
  std::ofstream(path) << text;
  return dump(path, specs_dir())["signature"];
}

// A default is shorthand: the same descriptors written in the function give
// the same model, to the bit.
TEST(CavaSignature, AnArgumentDefaultIsTheSameAsWritingItOut) {
  EXPECT_EQ(dump(spec("widget.lapis"), specs_dir())["signature"],
            widget_signature_with(
                {{"argument_default(const void *data, size_t size) { in; buffer(size); }", ""},
                 {"functions(widget_write) {}",
                  "widget_status widget_write(widget w, const void *data, size_t size) {\n"
                  "  argument(data) { in; buffer(size); }\n}"}}));
}

// functions(f) { ... } is shorthand too: the same model as f written out
// with the header's prototype and the same descriptors.
TEST(CavaSignature, AListedFunctionIsTheSameAsWritingItOut) {
  EXPECT_EQ(dump(spec("widget.lapis"), specs_dir())["signature"],
            widget_signature_with({{"functions(widget_write) {}",
                                    "widget_status widget_write(widget w, const void *data, "
                                    "size_t size) {}"}}));
}

// A spec's own macros: an expression written in a macro's body is read with
// the macro's arguments in place (not as the macro's use).
TEST(CavaDump, SpecMacrosExpandWithTheirArguments) {
  const json api = dump(spec("macros.lapis"), specs_dir());
  EXPECT_EQ(function_names(api),
            std::vector<std::string>({"widget_write", "widget_fill", "widget_read"}));
  EXPECT_EQ(param(api, "widget_write", "data").at("buffer"), "size / 2");
  EXPECT_EQ(param(api, "widget_fill", "values").at("buffer"), "lapis_mul(n, 4)");
  EXPECT_EQ(param(api, "widget_read", "data").at("buffer"), "size - size % 8");
  EXPECT_EQ(param(api, "widget_read", "read_out").at("element").at("out"), true);
}

// ---- bad specs: each bad_*.lapis marks its error with `// expect-error: TEXT` ----

std::vector<std::string> bad_specs() {
  std::vector<std::string> files;
  for (const auto &e : fs::directory_iterator(specs_dir())) {
    const std::string name = e.path().filename();
    if (name.rfind("bad_", 0) == 0 && e.path().extension() == ".lapis") files.push_back(name);
  }
  std::sort(files.begin(), files.end());
  return files;
}

class CavaBadSpec : public testing::TestWithParam<std::string> {};

TEST_P(CavaBadSpec, ReportsErrorAtMarkedLine) {
  const std::string path = spec(GetParam());
  std::ifstream in(path);
  ASSERT_TRUE(in) << path;
  const std::string marker = "// expect-error: ";
  int line = 0, expected_line = 0;
  std::string expected;
  for (std::string l; std::getline(in, l);) {
    ++line;
    const auto at = l.find(marker);
    if (at == std::string::npos) continue;
    ASSERT_EQ(expected_line, 0) << path << ": more than one expect-error";
    expected_line = line;
    expected = l.substr(at + marker.size());
  }
  ASSERT_NE(expected_line, 0) << path << " has no expect-error comment";
  const auto r = cava({"dump", path}, {specs_dir()});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_TRUE(has_error_at(r.err, path, expected_line, expected));
}

INSTANTIATE_TEST_SUITE_P(Specs, CavaBadSpec, testing::ValuesIn(bad_specs()),
                         [](const testing::TestParamInfo<std::string> &info) {
                           return fs::path(info.param).stem().string();
                         });

// ---- cava init ------------------------------------------------------------------

TEST(CavaInit, DraftsWidgetSpecWithTodos) {
  const auto r = cava({"init", spec("widget.h")});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string &draft = r.out;
  auto has = [&draft](const std::string &text) {
    return draft.find(text) != std::string::npos ? testing::AssertionSuccess()
                                                 : testing::AssertionFailure()
                                                       << "no \"" << text << "\" in:\n"
                                                       << draft;
  };
  EXPECT_TRUE(has("#include <widget.h>"));
  EXPECT_TRUE(has("type(widget) { handle; }"));
  EXPECT_TRUE(has("type(widget_pool) { handle; }"));
  EXPECT_TRUE(has("argument(name) { in; buffer(strlen(name) + 1); }"));
  EXPECT_TRUE(has("argument(pool_out) { lapis_todo("));  // a non-const pointer
  EXPECT_TRUE(has("argument(read_out) { lapis_todo("));
  EXPECT_TRUE(has("argument(fn) { lapis_todo("));  // function pointers
  EXPECT_TRUE(has("argument(cmp) { lapis_todo("));
  EXPECT_TRUE(has("argument(data) { in; lapis_todo(\"how many bytes"));  // const void *
  EXPECT_TRUE(has("type(widget_status) { lapis_todo("));
  // The variadic function is only mentioned in a comment.
  std::istringstream lines(draft);
  bool variadic_comment = false;
  for (std::string l; std::getline(lines, l);) {
    if (l.find("widget_logf") == std::string::npos) continue;
    EXPECT_EQ(l.rfind("/*", 0), 0u) << l;
    variadic_comment = l.find("variadic") != std::string::npos;
  }
  EXPECT_TRUE(variadic_comment) << draft;
  EXPECT_TRUE(has("/* widget_status widget_logf(widget w, const char *fmt, ...): variadic"));

  // cava refuses the draft, naming the line of every lapis_todo.
  hira::test::TempDir dir;
  const std::string path = dir.path() + "/widget.lapis";
  std::ofstream(path) << draft;
  const auto d = cava({"dump", path}, {specs_dir()});
  EXPECT_EQ(d.exit_code, 1);
  std::istringstream draft_lines(draft);
  int line = 0, todos = 0;
  for (std::string l; std::getline(draft_lines, l);) {
    ++line;
    if (l.find("lapis_todo(") == std::string::npos) continue;
    ++todos;
    EXPECT_TRUE(has_error_at(d.err, path, line, "unresolved lapis_todo"));
  }
  EXPECT_GE(todos, 10);
}

TEST(CavaInit, DraftOfSimpleHeaderCompilesAsIs) {
  hira::test::TempDir dir;
  const std::string path = dir.path() + "/simple.lapis";
  const auto r = cava({"init", spec("simple.h"), "-o", path});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string draft = hira::test::read_file(path);
  EXPECT_EQ(draft.find("lapis_todo("), std::string::npos) << draft;
  EXPECT_NE(draft.find("type(simple_engine) { handle; }"), std::string::npos) << draft;
  EXPECT_NE(draft.find("argument(config) { in; buffer(strlen(config) + 1); }"), std::string::npos)
      << draft;

  const json api = dump(path, specs_dir());
  EXPECT_EQ(api.at("name"), "simple");
  EXPECT_EQ(function_names(api),
            std::vector<std::string>({"simple_open", "simple_close", "simple_set_origin",
                                      "simple_scale", "simple_clone"}));
  EXPECT_EQ(function(api, "simple_open").at("return_value").at("kind"), "handle");
  EXPECT_EQ(param(api, "simple_set_origin", "origin").at("in"), true);
  EXPECT_EQ(param(api, "simple_clone", "e").at("kind"), "handle");
}

}  // namespace

namespace {

// The OpenCL spec exercises the descriptors the demo API does not need.
TEST(CavaDump, OpenClSpecModel) {
  const auto r = hira::test::run({hira::test::build_dir() + "/bin/cava", "dump",
                                  hira::test::source_dir() + "/lapis_specs/opencl.lapis"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto model = nlohmann::json::parse(r.out);
  EXPECT_EQ(model["guest_soname"], "libOpenCL.so.1");
  std::map<std::string, nlohmann::json> fns;
  for (const auto &f : model["functions"]) fns[f["name"]] = f;
  // CL/cl.h at 3.0, the GL/EGL sharing and KHR/EXT aliases applications link, the ICD entry.
  EXPECT_EQ(fns.size(), 136u);
  EXPECT_EQ(fns["clCreateCommandQueueWithProperties"]["symbol_version"], "OPENCL_2.0");
  EXPECT_EQ(fns["clCreateBufferWithProperties"]["symbol_version"], "OPENCL_3.0");
  EXPECT_EQ(fns["clSVMAlloc"]["guest_answer"], "NULL");
  EXPECT_EQ(fns["clEnqueueSVMMap"]["guest_answer"], "CL_INVALID_OPERATION");
  EXPECT_EQ(fns["clRetainDeviceEXT"]["same_as"], "clRetainDevice");
  // A branch that casts a buffer of bytes keeps its bytes.
  const auto &devices = fns["clGetContextInfo"]["params"][3]["then"];
  EXPECT_EQ(devices["type"], "cl_device_id *");
  EXPECT_EQ(devices["buffer"], "(param_value_size) / sizeof(cl_device_id)");
  // Listed (functions(...)): the header's argument names, the defaults.
  EXPECT_EQ(fns["clEnqueueCopyBufferRect"]["symbol_version"], "OPENCL_1.1");
  EXPECT_NE(fns["clEnqueueCopyBufferRect"]["params"][3].dump().find("\"buffer\":\"3\""),
            std::string::npos);
  EXPECT_EQ(fns["clGetImageInfo"]["guest_cache_if"], "1");
  EXPECT_NE(fns["clGetMemObjectInfo"]["guest_cache_if"].get<std::string>().find("CL_MEM_MAP_COUNT"),
            std::string::npos);
  EXPECT_EQ(fns["clGetEventInfo"].count("guest_cache_if"), 0u);  // event status changes
  EXPECT_NE(fns["clCreateImage"]["params"][3].dump().find("guest_value"), std::string::npos);
  const auto &set_arg = fns["clSetKernelArg"];
  // Async only when the guest knows the kernel's arguments.
  EXPECT_NE(set_arg["async_if"].get<std::string>().find("args_known"), std::string::npos);
  ASSERT_EQ(set_arg["guest_check"].size(), 1u);
  EXPECT_NE(set_arg["params"][3].dump().find("\"guest_decides\":true"), std::string::npos);
  // Plain bytes (neither handle branch) get the server's own check: a
  // server_value inside one branch is emitted under that branch only.
  const std::string server =
      hira::test::read_file(hira::test::build_dir() + "/generated/opencl/opencl_server.cpp");
  const auto handler = server.find("static void handle_clSetKernelArg(");
  ASSERT_NE(handler, std::string::npos);
  const std::string body = server.substr(handler, server.find("\n}\n", handler) - handler);
  const auto guard = body.find("if (!(hira_sel_arg_value_1)) {");
  ASSERT_NE(guard, std::string::npos) << body;
  EXPECT_LT(guard, body.find("hira_plain_arg_ok(kernel, arg_index, arg_value)")) << body;
  EXPECT_TRUE(fns["clEnqueueMapBuffer"]["return_value"]["mapped"].get<bool>());
  EXPECT_TRUE(fns["clEnqueueUnmapMemObject"]["params"][2]["mapped"].get<bool>());
  EXPECT_EQ(fns["clEnqueueMapBuffer"]["params"][2]["server_value"], "CL_TRUE");
  // A non-blocking read's data follows when its event is done.
  EXPECT_NE(fns["clEnqueueReadBuffer"]["params"][5].dump().find(
                "\"deferred\":{\"done\":\"hira_event_done\""),
            std::string::npos)
      << fns["clEnqueueReadBuffer"]["params"][5].dump();
  EXPECT_TRUE(fns["clCreateBuffer"]["params"][4]["error_code"].get<bool>());
  EXPECT_EQ(fns["clGetExtensionFunctionAddress"]["guest_only"], "hira_extension_function_address");
  EXPECT_EQ(fns["clEnqueueFillBuffer"]["symbol_version"], "OPENCL_1.2");
  EXPECT_TRUE(fns["clReleaseMemObject"]["async"].get<bool>());
  EXPECT_NE(fns["clEnqueueNDRangeKernel"]["async_if"].get<std::string>().find("args_known"),
            std::string::npos);
}

}  // namespace

// The CUDA spec: functions under the names cuda.h maps them to, hira's own
// calls (server_impl), and the rest of cuda.h exported as NOT_SUPPORTED.
TEST(CavaDump, CudaSpecModel) {
  const std::string cuda_include = "/usr/local/cuda/include";
  if (!fs::exists(cuda_include + "/cuda.h")) GTEST_SKIP() << "no CUDA toolkit";
  const auto r =
      cava({"dump", hira::test::source_dir() + "/lapis_specs/cuda.lapis"}, {cuda_include});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto model = json::parse(r.out);
  EXPECT_EQ(model["guest_soname"], "libcuda.so.1");
  std::map<std::string, json> fns;
  for (const auto &f : model["functions"]) fns[f["name"]] = f;
  EXPECT_TRUE(fns.count("cuMemAlloc_v2"));
  EXPECT_TRUE(fns.count("cuCtxCreate_v4"));
  EXPECT_FALSE(fns.count("cuMemAlloc"));
  EXPECT_EQ(fns["hira_cu_error_text"]["server_impl"], "hira_error_text_server");
  EXPECT_EQ(fns["hira_cu_error_text"]["spec_only"], true);
  EXPECT_FALSE(fns["cuMemAlloc_v2"].contains("spec_only"));
  EXPECT_EQ(fns["cuLaunchKernel"]["guest_wrap"], "hira_launch_kernel");
  EXPECT_EQ(fns["cuGetErrorString"]["guest_only"], "hira_error_string");
  const auto &unsupported = model["unsupported"];
  EXPECT_EQ(unsupported["returns"], "CUDA_ERROR_NOT_SUPPORTED");
  std::set<std::string> left_out(unsupported["functions"].begin(), unsupported["functions"].end());
  EXPECT_TRUE(left_out.count("cuMemPoolExportPointer"));
  EXPECT_FALSE(left_out.count("cuMemPoolCreate"));
  for (const char *covered :
       {"cuGraphGetEdges_v2", "cuStreamGetAttribute", "cuPointerGetAttributes",
        "cuSurfObjectCreate", "cuCtxSynchronize_v2", "cuStreamWaitValue32_v2",
        "cuGraphAddMemcpyNode", "cuMemCreate", "cuMemMap", "cuTensorMapEncodeIm2col",
        "cuOccupancyMaxActiveClusters", "cuStreamBeginCaptureToGraph"}) {
    EXPECT_TRUE(fns.count(covered)) << covered;
  }
  EXPECT_FALSE(left_out.count("cuMemAlloc_v2"));
  // Every function of cuda.h is one or the other, none both.
  for (const auto &[name, f] : fns) EXPECT_FALSE(left_out.count(name)) << name;
  EXPECT_GT(fns.size() + left_out.size(), 400u);
}

// lapis.h declares each descriptor as `void __lapis_<name>(...)`; cava's
// descriptor table must know every one, and nothing lapis.h does not declare.
TEST(CavaDescriptors, TheTableAndLapisHAgree) {
  const auto r = cava({"descriptors"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::set<std::string> table;
  std::istringstream lines(r.out);
  for (std::string l; std::getline(lines, l);) table.insert(l);
  // What lapis.h declares that is not a descriptor: scopes, runtime helpers.
  const std::set<std::string> not_descriptors = {
      "scope_argument", "scope_element", "scope_return_value", "handle_id", "handle_object",
      "call_ns",        "result",        "list_len",           "is_handle", "index",
      "metadata",       "functions",     "export_variants"};
  const std::string header =
      hira::test::read_file(hira::test::source_dir() + "/lapis_specs/lapis.h");
  const std::regex decl(R"(\b__lapis_([a-z_]+)\()");
  std::set<std::string> declared;
  for (auto it = std::sregex_iterator(header.begin(), header.end(), decl);
       it != std::sregex_iterator(); ++it) {
    const std::string name = (*it)[1];
    if (not_descriptors.count(name) == 0) declared.insert(name);
  }
  for (const auto &name : declared) EXPECT_TRUE(table.count(name)) << "lapis.h: __lapis_" << name;
  for (const auto &name : table) EXPECT_TRUE(declared.count(name)) << "table: " << name;
}
