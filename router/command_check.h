// Validation of a guest's Call against its API's command shapes. This is
// where the router trusts nothing: only commands that pass go to a server.
#pragma once

#include <vector>

#include "hira/channel.h"
#include "hira/router_module.h"

namespace hira::router {

enum class CheckResult { Ok, UnknownFunction, WrongAsyncFlag, BadShape };

// On Ok, `blobs` holds one reader per argument.
CheckResult check_call(const RouterModule &m, const Frame &f, std::vector<Reader> *blobs);

const char *check_result_name(CheckResult r);

}  // namespace hira::router
