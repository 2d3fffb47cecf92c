/* LAPIS: the annotation language of hira specs.
 *
 * A spec is a C file. It includes the vendor header, then this file, then
 * re-declares API functions with a body made of descriptors. Every descriptor
 * is a macro that expands to ordinary C which Clang parses; cava reads the
 * resulting calls to the __lapis_* markers from the AST. The markers are
 * declared and never defined: a spec is parsed, never linked.
 *
 * Include vendor headers *before* this file: the descriptor names (in, out,
 * handle, ...) are plain words and would rewrite the vendor's declarations.
 * See docs/lapis.md for the language reference.
 */
#ifndef HIRA_LAPIS_H
#define HIRA_LAPIS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---- scopes ------------------------------------------------------------ */
int __lapis_scope_argument(const volatile void *arg);
int __lapis_scope_element(void);
int __lapis_scope_return_value(void);
#define argument(x) if (__lapis_scope_argument(&(x)))
#define element if (__lapis_scope_element())
#define return_value if (__lapis_scope_return_value())
#define LAPIS_CAT_(a, b) a##b
#define LAPIS_CAT(a, b) LAPIS_CAT_(a, b)
/* type(T) { ... }: descriptors for every value of type T. */
#define type(T)                                                          \
  __attribute__((annotate("lapis_type"), unused)) static void LAPIS_CAT( \
      __lapis_type_, __COUNTER__)(T __lapis_value)

/* argument_default(T name, T2 sibling...) { ... }: descriptors for every
 * argument `name` of type T of a function that does not describe it itself
 * and has arguments `sibling...` of those types (the descriptors may read
 * them). E.g. argument_default(cl_int *errcode_ret) { out; error_code; }. */
#define argument_default(...)                                                       \
  __attribute__((annotate("lapis_argument_default"), unused)) static void LAPIS_CAT( \
      __lapis_default_, __COUNTER__)(__VA_ARGS__)

/* functions(f, g, ...) { ... }: API functions of the included headers that
 * need no descriptor naming an argument: each is described by the defaults
 * (type(T), argument_default) and the function descriptors in the braces,
 * with its arguments as the header names them. E.g.
 *   functions(clFlush, clEnqueueBarrier) {}
 *   functions(clSVMAlloc, clSVMFree) { symbol_version("OPENCL_2.0"); guest_answer(NULL); } */
void __lapis_functions(int unused, ...);
#define functions(...)                                                          \
  __attribute__((annotate("lapis_functions"), unused)) static void LAPIS_CAT(    \
      __lapis_functions_, __COUNTER__)(void) {                                  \
    __lapis_functions(0, __VA_ARGS__);                                          \
  }                                                                             \
  __attribute__((annotate("lapis_functions_body"), unused)) static void LAPIS_CAT( \
      __lapis_functions_body_, __COUNTER__)(void)

/* ---- value descriptors --------------------------------------------------- */
void __lapis_in(void);
void __lapis_out(void);
void __lapis_handle(void);
void __lapis_buffer(size_t count);
void __lapis_type_cast(const volatile void *type_marker);
void __lapis_no_copy(void);
void __lapis_lifetime_call(void);
void __lapis_lifetime_manual(void);
void __lapis_allocate(void);
void __lapis_deallocate(void);
void __lapis_callback(const volatile void *callback_decl);
void __lapis_userdata(void);
void __lapis_error_value(int unused, ...);
void __lapis_invalid_handle(int unused, ...);
void __lapis_quota_error(int unused, ...);
size_t __lapis_index(void);
#define in __lapis_in()
#define out __lapis_out()
#define handle __lapis_handle()
/* With handle: NULL is a valid value (CUDA's default stream), also for the
 * calls the guest sends without waiting, which otherwise refuse NULL. */
void __lapis_nullable(void);
#define nullable __lapis_nullable()
/* With handle: the values 1..max are the API's own constants of this type,
 * not objects (CUDA: CU_STREAM_LEGACY, CU_STREAM_PER_THREAD); they travel as
 * themselves and the server passes them on. */
void __lapis_handle_constants(unsigned long long max);
#define handle_constants(max) __lapis_handle_constants(max)
/* accepts_handle(T), on a handle type: a handle of type T is accepted too
 * where this type is expected, as the API allows the cast (CUDA: a library's
 * CUkernel passed as a CUfunction). The server hands the real library T's
 * object; lapis_is_handle(v, thisType) holds for T's handles as well. */
void __lapis_accepts_handle(const volatile void *type_marker);
#define accepts_handle(T) __lapis_accepts_handle((T *)0)
#define buffer(n) __lapis_buffer(n)
#define type_cast(T) __lapis_type_cast((T *)0)
#define no_copy __lapis_no_copy()
#define lifetime_call __lapis_lifetime_call()
#define lifetime_manual __lapis_lifetime_manual()
#define allocate __lapis_allocate()
#define deallocate __lapis_deallocate()
#define callback(decl) __lapis_callback((const volatile void *)(decl))
#define userdata __lapis_userdata()
/* The value a stub returns when the call could not be carried out (server
 * gone, command refused): give it for the return type of each function. */
#define error_value(v) __lapis_error_value(0, (v))
/* The value returned when this handle argument is unknown to the server. */
#define invalid_handle(v) __lapis_invalid_handle(0, (v))
/* In type(T): the value a call of this type returns (or stores in its
 * error_code argument) when the router refuses it because its VM would go
 * over a quota: the API's own out-of-memory error. Without it, error_value. */
#define quota_error(v) __lapis_quota_error(0, (v))
/* The API server passes v instead of the guest's value (e.g. makes a
 * non-blocking read blocking, because its data must travel with the reply). */
void __lapis_server_value(int unused, ...);
#define server_value(v) __lapis_server_value(0, (v))
/* On an out buffer: the callee fills it after the call returns (a
 * non-blocking read). The call returns a completion object through
 * out-argument `ev` (the server makes its own when the application asked
 * for none); utility `done(e)` says when the data is there, `retain(e)` and
 * `release(e)` keep the object alive until then. The server sends the data
 * to the guest, which writes it into the application's memory, before any
 * later reply or callback. */
void __lapis_deferred(const volatile void *ev, const volatile void *done,
                      const volatile void *retain, const volatile void *release);
#define deferred(ev, done, retain, release)                                               \
  __lapis_deferred(&(ev), (const volatile void *)(done), (const volatile void *)(retain), \
                   (const volatile void *)(release))
/* The guest sends v instead of the application's value (the mirror of
 * server_value), e.g. a struct whose handle field is replaced by its wire id. */
void __lapis_guest_value(int unused, ...);
#define guest_value(v) __lapis_guest_value(0, (v))
/* The wire id of handle h of type T (guest side; 0 for NULL). */
uint64_t __lapis_handle_id(const volatile void *h, const volatile void *type_marker);
#define lapis_handle_id(h, T) __lapis_handle_id((const volatile void *)(uintptr_t)(h), (T *)0)
/* The object behind wire id `id` of type T (server side, in server_value):
 * an unknown id refuses the call with this argument's invalid_handle code. */
void *__lapis_handle_object(uint64_t id, const volatile void *type_marker);
#define lapis_handle_object(id, T) ((T)__lapis_handle_object((id), (T *)0))
/* A returned mapping placed at this guest address when it is not NULL (e.g.
 * the application's own memory behind a CL_MEM_USE_HOST_PTR buffer). Guest only. */
void __lapis_map_into(const volatile void *guest_address);
#define map_into(p) __lapis_map_into((const volatile void *)(p))
/* On a returned mapping: does the guest need the mapped bytes now
 * (map_reads), and must the unmap send them back (map_writes)? Both default
 * to 1; evaluated by the server. CL_MAP_READ maps send nothing back,
 * CL_MAP_WRITE_INVALIDATE_REGION maps send nothing now. */
void __lapis_map_reads(int cond);
void __lapis_map_writes(int cond);
#define map_reads(cond) __lapis_map_reads(cond)
#define map_writes(cond) __lapis_map_writes(cond)
/* In plain statements: the function's return value. */
/* In a consumes_rc amount: the wall time, in ns, the real call took on the API
 * server, which measures it and reports it to the router (device time where
 * the call waits for the device: the coarse estimate of the dissertation). */
unsigned long long __lapis_call_ns(void);
#define lapis_call_ns() __lapis_call_ns()
void *__lapis_result(void);
#define lapis_result(T) (*(T *)__lapis_result())
/* The described (allocated) object lives inside obj: when the application's
 * last reference to obj goes, the server invalidates this object's handle too
 * (e.g. buffers of a destroyed context). */
void __lapis_obj_depends_on(const volatile void *obj);
#define obj_depends_on(obj) __lapis_obj_depends_on((const volatile void *)(uintptr_t)(obj))
/* An out argument that receives the error code (OpenCL's errcode_ret): when
 * the call cannot be carried out, the stub stores the error there too. */
void __lapis_error_code(void);
#define error_code __lapis_error_code()
/* Inside element { }: the position of the described element. */
#define index __lapis_index()

/* ---- runtime library (usable in expressions) ---------------------------- */
/* Elements of a zero-terminated (key, value) list such as cl_context_properties,
 * terminator included; 0 for NULL. */
size_t __lapis_list_len(const void *list, size_t elem_size);
#define lapis_list_len(p) __lapis_list_len((const void *)(p), sizeof(*(p)))
/* Is v a handle of type T that this guest received from the server? (Guest
 * only: a condition using it is decided by the guest.) */
int __lapis_is_handle(const volatile void *v, const volatile void *type_marker);
#define lapis_is_handle(v, T) __lapis_is_handle((const volatile void *)(uintptr_t)(v), (T *)0)
#define lapis_min(a, b) ((a) < (b) ? (a) : (b))
#define lapis_max(a, b) ((a) < (b) ? (b) : (a))
/* Checked size arithmetic: a result that does not fit 64 bits is
 * UINT64_MAX, which no buffer size check accepts. Write every size a guest's
 * values feed with these (a wrapped product would let a small buffer pass
 * for a large one). */
unsigned long long lapis_mul(unsigned long long a, unsigned long long b);
unsigned long long lapis_add(unsigned long long a, unsigned long long b);

/* In utilities: 1 in the API server, 0 in the guest library. */
#ifndef lapis_in_server
#define lapis_in_server 0
#endif
/* In utilities run by the API server: an object of the real library starts
 * (lapis_manual_hold, which returns p) or stops (lapis_manual_drop) using
 * the server's copy p of a lifetime_manual buffer (e.g. the storage of a
 * CL_MEM_USE_HOST_PTR buffer). A copy objects held is freed when the last of
 * them drops it; one never held lives until the process ends. Nothing in the
 * guest. */
void *lapis_manual_hold(void *p);
void lapis_manual_drop(void *p);
/* In a rc_until_destroyed watch utility, run by the API server: the real
 * library destroyed the object the token was given for; the router releases
 * what it held. Callable from any thread (a destructor callback). Nothing in
 * the guest. */
void lapis_destroyed(void *token);

/* In utilities run by the API server: the guest's shared-memory window as
 * the server maps it (1, and base and bytes set), or 0 when there is none
 * (and always 0 in the guest). Bulk data of calls travels there. */
int lapis_guest_window(void **base, size_t *bytes);

/* In guest utilities: `bytes` of the guest's window that the application
 * keeps until lapis_window_free (CUDA's pinned host memory): calls that
 * pass it need no copy into the window, and the server reads it where it
 * maps the window. NULL when there is no window or it is short (use the
 * guest's own memory then); always NULL in the server. lapis_window_free
 * returns 0 for memory lapis_window_alloc did not give. */
void *lapis_window_alloc(size_t bytes);
int lapis_window_free(void *p);
/* In guest utilities: does [p, p + bytes) lie inside one block
 * lapis_window_alloc gave? Then 1 and its window offset in *offset, which
 * a call may send as a number for the server to use where its
 * lapis_guest_window maps it (for work that outlives the call: an async
 * copy, a graph that replays it). Always 0 in the server. */
int lapis_window_offset(const void *p, size_t bytes, unsigned long long *offset);

/* In utilities: 1 in the ICD vendor variant of a guest library, else 0. */
#ifndef lapis_icd_vendor
#define lapis_icd_vendor 0
#endif

/* ---- function descriptors ---------------------------------------------- */
void __lapis_sync(void);
void __lapis_async(void);
void __lapis_success(int unused, ...);
void __lapis_consumes_rc(const volatile void *rc, unsigned long long amount);
void __lapis_allocates_rc(const volatile void *rc, unsigned long long amount);
void __lapis_deallocates_rc(const volatile void *rc, unsigned long long amount);
void __lapis_server_allocates_rc(const volatile void *rc, unsigned long long amount, ...);
void __lapis_rc_until_destroyed(const volatile void *watch);
void __lapis_guest_only(const volatile void *impl);
void __lapis_guest_wrap(const volatile void *impl);
void __lapis_symbol_version(const char *node);
#define sync __lapis_sync()
/* The function runs in the guest only, as this guest_utility (same signature). */
#define guest_only(impl) __lapis_guest_only((const volatile void *)(impl))
/* The guest calls API function g with the same arguments instead (an
 * extension's name for a core function; the types must be the same). */
void __lapis_same_as(const volatile void *g);
#define same_as(g) __lapis_same_as((const volatile void *)(g))
/* The call never leaves the guest and fails with v, as an implementation
 * without the feature must (GL sharing, SVM): a handle argument the guest
 * does not hold fails first with its invalid_handle code; v is returned, or
 * stored in the error_code argument with a NULL result. A void function
 * takes no v. */
void __lapis_guest_answer(int unused, ...);
#define guest_answer(...) __lapis_guest_answer(0, ##__VA_ARGS__)
/* The application's calls go through this guest_utility (same signature),
 * which makes the remote call itself with lapis_remote(function)(...), once
 * or in parts (e.g. a large transfer as several, so that copying one part
 * overlaps the device's transfer of the one before). */
#define guest_wrap(impl) __lapis_guest_wrap((const volatile void *)(impl))
/* The API server runs this utility (same signature) instead of the real
 * library's function. A function only the spec declares (hira's own remote
 * call, e.g. one that returns a string the API keeps in static storage) must
 * have one; guest utilities call it, and the guest library does not export it. */
void __lapis_server_impl(const volatile void *impl);
#define server_impl(impl) __lapis_server_impl((const volatile void *)(impl))
/* In a guest_wrap utility: the function's remote call. */
#define lapis_remote(f) f
/* The symbol version node the guest library exports this function under. */
#define symbol_version(node) __lapis_symbol_version(node)
/* For a call sent async: the guest evaluates expr first and, unless it is
 * the success value, returns it without sending the call. Lets an async call
 * report the errors the real library would return at once. */
void __lapis_guest_check(int unused, ...);
#define guest_check(expr) __lapis_guest_check(0, (expr))
/* The API server evaluates expr before the real call and, unless it is the
 * success value, answers it without making the call (e.g. a device address
 * range checked against the guest's allocations). */
void __lapis_server_check(int unused, ...);
#define server_check(expr) __lapis_server_check(0, (expr))
/* Both: the guest evaluates expr before sending anything and, unless it is
 * the success value, returns it (no round trip); the API server evaluates it
 * again before the real call (it trusts no guest). expr may use utilities. */
void __lapis_guest_server_check(int unused, ...);
#define guest_server_check(expr) __lapis_guest_server_check(0, (expr))
#define async __lapis_async()
/* Async when cond holds for this call (e.g. no event is asked for), else sync. */
void __lapis_async_if(int cond);
#define async_if(cond) __lapis_async_if(cond)
/* The answer never changes while cond holds (an immutable object property):
 * the guest keeps the first successful answer for the same arguments and
 * gives it again without a round trip. */
void __lapis_guest_cache_if(int cond);
#define guest_cache_if(cond) __lapis_guest_cache_if(cond)
#define success(v) __lapis_success(0, (v))
#define consumes_rc(r, x) __lapis_consumes_rc(&(r), (x))
#define allocates_rc(r, x) __lapis_allocates_rc(&(r), (x))
/* x: an amount, or a handle argument to release what allocated it. */
#define deallocates_rc(r, x) __lapis_deallocates_rc(&(r), (unsigned long long)(uintptr_t)(x))
/* On a function that allocates a handle: the handle holds x units of
 * continuous resource r, x evaluated by the API server after a successful
 * call (it may use lapis_result and utilities: an image's size as the
 * implementation reports it), where the router cannot compute it.
 * server_allocates_rc(r, x, h): handle argument h holds x units more (a
 * call that grows an object the guest already holds). */
#define server_allocates_rc(r, ...) __lapis_server_allocates_rc(&(r), __VA_ARGS__)
/* On a function that allocates a handle: what the handle holds is released
 * when the real library destroys the object, not at the release call that
 * drops the application's last reference (a sub-buffer or a running command
 * may keep it alive). watch is a utility void watch(T obj, void *token) that
 * arranges lapis_destroyed(token) to run then (a destructor callback). */
#define rc_until_destroyed(watch) __lapis_rc_until_destroyed((const volatile void *)(watch))

/* A decision left for a human (written by `cava init`): cava stops here. */
void __lapis_todo(const char *what);
#define lapis_todo(what) __lapis_todo(what)

/* ---- declarations ------------------------------------------------------ */
#define continuous_rc __attribute__((annotate("lapis_continuous_rc"), unused)) static int
#define instantaneous_rc __attribute__((annotate("lapis_instantaneous_rc"), unused)) static int
/* A helper copied into the guest library only (may call the API's stubs). */
#define guest_utility __attribute__((annotate("lapis_guest_utility"), unused)) static
/* A C function the guest library exports under its own name, as written:
 * an entry point the vendor's header declares only in another configuration
 * (CUDA's per-thread default stream: cuMemcpyAsync_ptsz calls cuMemcpyAsync
 * with CU_STREAM_PER_THREAD for a NULL stream). Not for the header's own
 * functions (describe those). */
#define guest_export __attribute__((annotate("lapis_guest_export"), unused))
/* guest_export_as("symbol") RET name(params) { C }: exported under
 * `symbol`, a name the vendor's header maps elsewhere in every
 * configuration: an entry point of an older version of the API that
 * programs built against that version still link (CUDA's cuEventElapsedTime,
 * cuCtxCreate_v2). The C function keeps its own name. */
#define guest_export_as(symbol) \
  __attribute__((annotate("lapis_guest_export_as=" symbol), unused))
/* guest_export_variants("_ptsz", CUstream, CU_STREAM_PER_THREAD, f, g, ...):
 * for each API function f of the included headers, the guest library also
 * exports f's symbol with the suffix, as a guest_export that calls f with
 * every argument of type T that is NULL (0) given as `value` (no such
 * argument: f as it is). One line per function for an API's other
 * configuration of its entry points. */
void __lapis_export_variants(const char *suffix, const volatile void *type_marker, ...);
#define guest_export_variants(suffix, T, value, ...)                                  \
  __attribute__((annotate("lapis_export_variants"), unused)) static void LAPIS_CAT(     \
      __lapis_variants_, __COUNTER__)(void) {                                         \
    __lapis_export_variants(suffix, (T *)0, value, __VA_ARGS__);                      \
  }
/* A helper function copied into the guest library and the API server. */
#define utility __attribute__((annotate("lapis_utility"), unused)) static
/* callback_decl RET name(params) { descriptors }: the shape of a callback. */
#define callback_decl __attribute__((annotate("lapis_callback"), unused)) static

/* Per-object metadata, kept on both sides of the channel. */
#define declare_metadata(T)     \
  typedef T __lapis_metadata_t; \
  __lapis_metadata_t *__lapis_metadata(const volatile void *obj)
#define metadata(h) __lapis_metadata((const volatile void *)(h))

/* API identity. */
#define lapis_api(NAME, VERSION)                                                                   \
  __attribute__((annotate("lapis_api"), unused)) static const char *const __lapis_api_name = NAME; \
  __attribute__((unused)) static const char *const __lapis_api_version = VERSION
/* The soname of the generated guest library (what applications link). */
#define lapis_guest_soname(S) \
  __attribute__((unused)) static const char *const __lapis_guest_soname = S
/* The version node for functions without symbol_version(...). */
#define lapis_default_symbol_version(S) \
  __attribute__((unused)) static const char *const __lapis_default_symbol_version = S
/* Every function of the included headers whose name starts with PREFIX and
 * that the spec does not describe is still exported by the guest library: it
 * says once on stderr that hira does not carry it and returns VALUE (so that
 * a program linked against the whole API loads, and fails where it uses
 * what the spec leaves out, with the API's own error). */
#define lapis_unsupported_functions(PREFIX, VALUE)                                 \
  __attribute__((unused)) static const char *const __lapis_unsupported_prefix = PREFIX; \
  __attribute__((unused)) static const long long __lapis_unsupported_value = (VALUE)
/* A utility the API server runs once it has loaded the real library, before
 * any guest arrives (a warm server from the router's pool): whatever makes
 * the first call slow, e.g. discovering platforms and devices. */
#define lapis_server_warmup(F) \
  __attribute__((unused)) static void (*const __lapis_server_warmup)(void) = F
/* An ICD-style dispatch table type: cava fills each field named after an API
 * function with its stub, and every handle box points to the table. */
#define lapis_icd_dispatch(T) typedef T __lapis_icd_dispatch_t
/* The real library the API server loads with dlopen. */
#define lapis_server_library(S) \
  __attribute__((unused)) static const char *const __lapis_server_library = S

#endif
