// A router and a remote API server prove to each other that they hold the
// same pre-shared key before any frame crosses their TCP connection: each
// side answers the other's random challenge with an HMAC-SHA256 of it under
// the key. This authenticates; it does not encrypt (run the connection over
// a network or tunnel you trust with the data). Linked by the router and the
// API servers only, never by a guest library.
#pragma once

#include <optional>
#include <string>

namespace hira {

// The key in FILE: at least 16 bytes, readable by its owner only (a key
// others can read is refused, as ssh refuses such a private key).
std::optional<std::string> load_shared_key(const std::string &path, std::string *error);

// The API server's side, right after accept: false (and *error) if the peer
// does not prove the key within `timeout_s` seconds.
bool authenticate_router(int fd, const std::string &key, int timeout_s, std::string *error);

// The router's side, right after connect.
bool authenticate_server(int fd, const std::string &key, int timeout_s, std::string *error);

}  // namespace hira
