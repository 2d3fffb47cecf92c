// The API-agnostic API server runtime that generated handlers call into.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hira/codec.h"
#include "hira/wire.h"

namespace hira::server {

class Connection;

// A large block kept between calls of one shadow thread: fresh large
// allocations are page-faulted on every call, which dominates big reads.
struct Scratch {
  std::unique_ptr<uint8_t[]> block;
  uint64_t size = 0;
};

// For the spec's utilities in the API server (lapis_manual_hold/drop): an
// object of the real library starts / stops using a lifetime_manual block
// (the server's copy of the application's memory behind it). The block is
// freed when the last object that held it drops it. Thread-safe.
void *hold_manual_block(void *block);
void drop_manual_block(void *block);
// For the spec's utilities (lapis_destroyed): the real library destroyed the
// object whose destruction token (CallContext::destruction_token) this is;
// the router releases what it held. Thread-safe.
void object_destroyed(void *token);
// The guest's shared-memory window as this server maps it: 1 and its place,
// or 0 when the guest brought none (for the spec's utilities, e.g. to pin it).
int guest_window(void **base, size_t *bytes);

// What a handler needs for one call: the decoded command, the reply being
// built, the guest process's handle table and a per-call arena.
class CallContext {
 public:
  CallContext(Connection &conn, uint32_t thread, Reader args, Scratch *scratch = nullptr);
  ~CallContext();

  Reader &args() { return args_; }
  Writer &reply() { return reply_; }

  // An out buffer whose place `a` names next (Writer::put_out_space): the
  // window space the guest set aside (not zeroed: the guest's own memory),
  // else alloc(count, elem_size).
  void *out_buffer(Reader &a, uint64_t count, uint64_t elem_size);
  // In-data that the real function reads more than as plain bytes (sizes,
  // pointers, strings): a private copy when it lies in the window, which the
  // guest could change while the function reads it; else p itself.
  const uint8_t *stable(const uint8_t *p, uint64_t bytes);

  // Arena memory for shadow buffers, zeroed, freed after the reply is sent.
  // nullptr (and the call rejected as OutOfMemory) past the per-call limit.
  void *alloc(uint64_t count, uint64_t elem_size, uint64_t extra = 0);
  // count elements plus one zeroed element past the end, so that scans for a
  // terminator (strlen, lapis_list_len) always stop inside the allocation.
  template <class T>
  T *alloc_array(uint64_t count) {
    return static_cast<T *>(alloc(count, sizeof(T), sizeof(T)));
  }
  // A copy of n elements of elem_size bytes followed by one zeroed element.
  void *copy_in(const void *src, uint64_t n, uint64_t elem_size = 1);

  // Handles: 0 is NULL. Unknown ids, or ids of another type, reject the call.
  void *lookup(uint64_t id, uint32_t type, uint32_t arg_index);
  // The same, where a handle of type `also` passes as `type` (accepts_handle).
  void *lookup(uint64_t id, uint32_t type, uint32_t also, uint32_t arg_index);
  uint64_t export_handle(void *obj, uint32_t type);
  // allocate / deallocate on a handle: the app's reference count (see HandleTable).
  uint64_t retain_handle(void *obj, uint32_t type);
  // The same for a handle the guest chose the id of: a new object gets
  // `guest_id` (if it is a fresh id of the guest's), a known one keeps its id.
  uint64_t retain_handle_as(void *obj, uint32_t type, uint64_t guest_id);
  // A retain call on a handle the app holds (see HandleTable::add_reference).
  void add_handle_reference(void *obj, uint32_t type);
  // obj_depends_on: when parent dies (last app reference), obj dies with it.
  void depends_on(void *obj, uint32_t type, const void *parent);
  void release_handle(void *obj, uint32_t type);

  // Buffers that outlive the call (lifetime_manual), keyed by guest address.
  // `zeroed`: a new block is cleared (false when the caller fills it whole).
  void *manual_buffer(uint64_t guest_addr, uint64_t bytes, bool zeroed = true);
  // Frees a lifetime_manual buffer once the reply (which reads it) is sent.
  void release_manual_buffer_after_reply(uint64_t guest_addr);

  // Deferred out buffers (a non-blocking read): memory that outlives the
  // call; defer_out hands it to the connection, which sends it to the guest
  // (Data frame `token`) once done() says the callee filled it, before any
  // later reply or callback, then calls release(). Memory not handed over is
  // freed with the call.
  void *deferred_buffer(uint64_t bytes);
  // The same for a deferred out buffer whose place `a` names next
  // (Writer::put_out_at): the window space the guest set aside when it
  // did (its Data frame then carries no bytes), else deferred_buffer.
  void *deferred_out_buffer(Reader &a, uint64_t bytes);
  // A deferred in buffer's memory: `src` itself when it is window space the
  // guest holds for the callee (token != 0; the guest learns when it may
  // reuse it from a Data frame for the token), else a staging copy.
  void *deferred_in_buffer(uint64_t token, const uint8_t *src, uint64_t bytes);
  void defer_out(uint64_t token, void *buffer, uint64_t bytes, std::function<bool()> done,
                 std::function<void()> release);
  // A deferred in buffer (a non-blocking write): the callee reads it after
  // the call returns; once done() says it has, the connection frees it, and
  // a Data frame for `token` (0: none) tells the guest its copy is free.
  void defer_in(uint64_t token, void *buffer, std::function<bool()> done,
                std::function<void()> release);

  // Mapped memory the guest holds a copy of (see guest.h map_region):
  // registers it and writes its reply record (size, direction flags, the
  // bytes when `reads`). The guest's copy is window space the server sets
  // aside when it can (the bytes then never travel), else inline.
  void put_mapped(Writer &w, void *addr, uint64_t bytes, bool reads, bool writes);
  // Reads an encode_unmap() record; copies the guest's data into the mapped
  // memory and returns its address, or rejects the call.
  void *decode_unmap(Reader &r, uint32_t arg_index);
  void unregister_mapped(void *addr);

  // rc_until_destroyed / server_allocates_rc: the object this call created
  // (its id, as the guest knows it) holds `amount` of router resource
  // `resource` (told to the router before the reply), and the token a
  // watch utility hands to lapis_destroyed once the library destroys it.
  void report_hold(uint32_t resource, uint64_t id, uint64_t amount);
  static void *destruction_token(uint64_t id) { return reinterpret_cast<void *>(id); }
  // The call consumed `amount` of router resource `resource` that only the
  // server measures (consumes_rc with lapis_call_ns()): told to the router
  // before the reply.
  void report_use(uint32_t resource, uint64_t amount);
  // Nanoseconds since the call began on its shadow thread (lapis_call_ns()).
  uint64_t elapsed_ns() const {
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                     std::chrono::steady_clock::now() - started_)
                                     .count());
  }

  // The server-side userdata for a guest callback registration.
  void *callback_userdata(uint64_t guest_registration, uint32_t callback_id);

  void reject(wire::ReplyStatus status, uint32_t arg_index);
  bool failed() const { return status_ != wire::ReplyStatus::Ok; }
  wire::ReplyStatus status() const { return status_; }
  uint32_t detail() const { return detail_; }

  // Async calls: remember a failure for the next sync reply on this thread.
  void defer_error(int64_t value);

  Connection &connection() { return conn_; }
  // This call was sent async: no reply; a failure is deferred.
  bool is_async() const { return async_; }
  // Which function this call runs, and whether it was sent async.
  void set_call(uint32_t func, bool async) {
    func_ = func;
    async_ = async;
  }
  uint32_t thread() const { return thread_; }

 private:
  Connection &conn_;
  uint32_t thread_;
  Reader args_;
  Writer reply_;
  std::vector<std::unique_ptr<uint8_t[]>> arena_;
  std::vector<uint64_t> arena_sizes_;
  Scratch *scratch_;
  std::vector<uint64_t> release_after_reply_;
  // A staging block of this call goes to the connection (token: a Data frame
  // carries it to the guest; bytes: its size, else what was reserved).
  void hand_over(std::optional<uint64_t> token, void *buffer, std::optional<uint64_t> bytes,
                 std::function<bool()> done, std::function<void()> release);
  std::vector<void *> manual_in_use_;  // blocks this call uses (end_manual_use)
  std::vector<void *> deferred_;       // staging blocks not handed over yet
  std::vector<uint64_t> deferred_bytes_;
  std::vector<wire::AccountNotice> notices_;  // report_hold, sent before the reply
  std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
  friend class Connection;
  uint64_t arena_bytes_ = 0;
  const void *unmapped_copy_ = nullptr;  // decode_unmap: where the guest's bytes were
  wire::ReplyStatus status_ = wire::ReplyStatus::Ok;
  uint32_t detail_ = 0;
  bool async_ = false;
  uint32_t func_ = 0;
};

using Handler = void (*)(CallContext &);

// What a generated server module provides.
struct ServerApi {
  const char *name;
  uint64_t signature;
  uint32_t function_count;
  const char *const *function_names;
  const uint8_t *function_async;  // 0 sync, 1 async, 2 the guest decides per call
  const Handler *handlers;
  const char *default_library;  // the real library to dlopen
  // Resolves every API function from the loaded library. Missing symbols
  // are allowed (their calls reply Unsupported); returns how many resolved.
  uint32_t (*bind)(void *dl_handle);
  const uint8_t *bound;            // per function: resolved?
  uint32_t remote_function_count;  // functions that run here (not guest_only)
  void (*warm_up)();               // lapis_server_warmup, or nullptr
};

// Callback trampolines call this: sends the callback to the guest and waits
// for it to finish. Returns false if the guest is gone (result untouched).
struct CallbackRegistration {
  Connection *conn;
  uint64_t guest_id;
  uint32_t callback_id;
};
bool invoke_callback(void *userdata, Writer &args, std::unique_ptr<uint8_t[]> *result_data,
                     Reader *result);
uint64_t callback_guest_id(void *registration);
// A handle's wire id for a callback argument (registration = its userdata).
uint64_t export_handle_for(void *registration, void *obj, uint32_t type);

// Bytes of a guest's calls a server reads ahead of the ones running.
void set_max_backlog_bytes(uint64_t bytes);

// Runs a server over one connected channel until it closes. Returns the exit code.
int serve_channel(const ServerApi &api, int fd, const std::string &library);
// Entry point for the generated server executables.
int server_main(const ServerApi &api, int argc, char **argv);

}  // namespace hira::server
