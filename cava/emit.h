// Code emitters: each writes one generated file from the model.
#pragma once

#include <string>

#include "model.h"

namespace cava {

std::string emit_protocol_header(const Api &api);
std::string emit_guest(const Api &api);
std::string emit_server(const Api &api);
std::string emit_router(const Api &api);
std::string emit_version_script(const Api &api);
std::string emit_icd_version_script(const Api &api);
// The model as JSON (for tests and for people reading what cava understood).
std::string emit_model_json(const Api &api);
// The protocol signature: a hash of the whole model (every value's wire
// shape: directions, sizes, conditions, handles, async modes, ...) and the
// wire protocol's version. A guest library and a server generated from specs
// that disagree anywhere are refused at hello.
uint64_t model_signature(const Api &api);

}  // namespace cava
