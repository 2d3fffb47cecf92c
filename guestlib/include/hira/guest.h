// The API-agnostic guest runtime that generated stubs call into.
//
// One connection per guest process, opened on the first call from
// $HIRA_SOCKET (an endpoint, "unix:/path" or "tcp:host:port"). A receiver
// thread matches replies to waiting calls and hands callbacks to a callback
// thread, which runs them in the guest on the application's behalf.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "hira/channel.h"
#include "hira/codec.h"
#include "hira/wire.h"

namespace hira::guest {

// Decodes a callback's arguments and runs the application's function.
// `fn`/`userdata` are what the application registered; `result` receives the
// callback's return blob. Returns false if the arguments did not decode.
using CallbackDispatch = bool (*)(uint32_t callback_id, void *fn, void *userdata, Reader &args,
                                  Writer &result);

struct ApiInfo {
  const char *name;
  uint64_t signature;
  uint32_t function_count;
  const char *const *function_names;
  CallbackDispatch dispatch_callback;
};

// One remote call. Usage (generated): fill args(), invoke(), read reply().
class Call {
 public:
  Call(const ApiInfo &api, uint32_t func, bool async);
  ~Call();
  Call(const Call &) = delete;
  Call &operator=(const Call &) = delete;

  Writer &args() { return args_; }
  // Sends the call; for sync calls waits for the reply. True when the real
  // function ran (async: when the call was sent).
  bool invoke();
  // guest_cache_if: the answer an earlier call with the same arguments got
  // (true, reply() set), or false; remember_answer() then keeps this call's
  // (asked for after answer_from_cache() only).
  bool answer_from_cache();
  void remember_answer();
  wire::ReplyStatus status() const { return status_; }
  uint32_t detail() const { return prefix_.detail; }
  // The reply after its prefix: the return blob, then one blob per argument.
  Reader &reply() { return reply_; }

 private:
  // Bulk data of a sync call on a window connection: copied into window
  // space held until the call is over (the reply's data is read from there).
  class Placer : public WindowPlacer {
   public:
    explicit Placer(void *conn) : conn_(conn) {}
    ~Placer();
    bool place(const void *p, size_t len, uint64_t *offset) override;
    bool reserve(size_t len, uint64_t *offset) override;
    bool reserve_for(const void *dst, size_t len, uint64_t *offset) override;

   private:
    void *conn_;
    std::vector<uint64_t> held_;
  };

  const ApiInfo &api_;
  uint32_t func_;
  bool async_;
  void *conn_ = nullptr;  // the connection (nullptr: none could be opened)
  Placer placer_;
  Writer args_;
  Reader reply_;
  wire::ReplyPrefix prefix_{};
  wire::ReplyStatus status_ = wire::ReplyStatus::NoServer;
  Frame frame_;            // keeps the reply payload alive
  bool replied_ = false;   // frame_ came from the connection (which takes it back)
  std::string cache_key_;  // guest_cache_if: set by answer_from_cache()
};

// Deferred out buffers (a non-blocking read): the guest expects `bytes` at
// `dst` and sends the returned token; the server's Data frame for that
// token is written there (never elsewhere, never more). forget_data drops
// an expectation whose call failed (0 is no token).
uint64_t expect_data(void *dst, uint64_t bytes);
void forget_data(uint64_t token);
// Right after the token in a tagged call of `api`: window space the server
// fills instead of memory of its own (its Data frame then only says the
// bytes are there), held until they are copied out; or none.
void put_data_space(const ApiInfo &api, Writer &w, uint64_t token);
// Deferred in buffers (a non-blocking write): writes a token and the
// `bytes` at `src`, copied into window space held until the server's Data
// frame for the token says the callee is done reading them (no bytes
// copied again on the server); or token 0 and the bytes as usual. Returns
// the token (forget_data releases it if the call fails).
uint64_t put_deferred_in(const ApiInfo &api, Writer &w, const void *src, uint64_t bytes);

// Window space kept until window_free (lapis_window_alloc: memory the
// application keeps, such as CUDA's pinned host memory): calls that name
// it need no copy into the window. nullptr when api_name has no connection
// yet or no window, or when kept space would pass half of the guest's part
// of the window (the rest stays for the calls' own data).
void *window_alloc(const char *api_name, size_t bytes);
// Gives back what window_alloc returned: false for any other pointer.
bool window_free(const char *api_name, void *p);
// [p, p + bytes) lies inside one window_alloc'd block: its window offset.
bool window_kept_offset(const char *api_name, const void *p, size_t bytes, uint64_t *offset);

// Registers an application callback + userdata pair; the id travels in the
// userdata's place. The same pair always gets the same id.
uint64_t register_callback(void *fn, void *userdata);

// Handles the application sees. Pointer-typed handles are pointers to boxes
// whose first word is `dispatch` (the OpenCL ICD loader reads a dispatch
// table there) and which carry the server's id. The same id always gets the
// same box; unknown pointers unbox to kInvalidHandle, which the server
// rejects as an unknown handle instead of anything dereferencing them.
inline constexpr uint64_t kInvalidHandle = ~0ull;
// An id for a handle a call will create (see HandleTable::retain_as): never
// reused in this process, in the guest's half of the id space.
uint64_t new_handle_id();
void *box_handle(uint64_t id, uint32_t type, const void *dispatch);
uint64_t unbox_handle(const void *handle, uint32_t type);
// The id of a handle of `type` or of `also` (a type the API lets pass as
// `type`: CUDA's CUkernel as a CUfunction); kInvalidHandle otherwise.
uint64_t unbox_handle(const void *handle, uint32_t type, uint32_t also);
// The application's references, counted like the server counts them
// (allocate +1, deallocate -1): a released handle unboxes as invalid, so an
// async call on it is refused at once instead of failing later.
void retain_handle(const void *handle);
void release_handle(const void *handle);
// A retain call on a handle the app holds: +1 on a counted handle; one the
// app never created (a root device from a query) stays uncounted.
void add_handle_reference(const void *handle);

// Mapped memory: the guest's copy of a region the server mapped. map_region
// reads (server address, bytes, data) from a reply blob and returns the
// guest's copy; encode_unmap writes the region's server address and current
// contents for the call that unmaps it; release_region frees the copy.
// `at`, when not NULL, is application memory to map into (kept, not freed).
void *map_region(Reader &blob, void *at);
void encode_unmap(Writer &w, const void *guest_ptr);
void release_region(const void *guest_ptr);

// Writes "hira: <api>.<func>: <why>" once per (function, status) to stderr.
void report_failure(const ApiInfo &api, uint32_t func, wire::ReplyStatus status);
// An async call failed on the server although the guest's checks accepted
// it: said once per function on stderr, never returned from another call.
void report_async_failure(const ApiInfo &api, uint32_t func, int64_t value);

}  // namespace hira::guest
