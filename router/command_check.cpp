#include "command_check.h"

namespace hira::router {

CheckResult check_call(const RouterModule &m, const Frame &f, std::vector<Reader> *blobs) {
  const uint32_t func = f.header.func;
  if (func >= m.function_count) return CheckResult::UnknownFunction;
  const bool async = (f.header.flags & wire::kFlagAsync) != 0;
  const uint8_t mode = m.function_async[func];  // 0 sync, 1 async, 2 decided per call
  if (mode != 2 && async != (mode != 0)) return CheckResult::WrongAsyncFlag;
  Reader r = f.reader();
  const uint32_t n = m.arg_count[func];
  const uint32_t *sizes = m.arg_sizes + m.arg_offset[func];
  blobs->clear();
  for (uint32_t i = 0; i < n; ++i) {
    Reader b = r.blob();
    if (!r.ok()) return CheckResult::BadShape;
    if (sizes[i] != kVariableSize && b.remaining() != sizes[i]) return CheckResult::BadShape;
    blobs->push_back(b);
  }
  return r.done() ? CheckResult::Ok : CheckResult::BadShape;
}

const char *check_result_name(CheckResult r) {
  switch (r) {
    case CheckResult::Ok:
      return "ok";
    case CheckResult::UnknownFunction:
      return "unknown function id";
    case CheckResult::WrongAsyncFlag:
      return "async flag disagrees with the spec";
    case CheckResult::BadShape:
      return "arguments do not match the function's shape";
  }
  return "?";
}

}  // namespace hira::router
