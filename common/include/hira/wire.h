// The hira wire protocol, shared by the guest library, the router and the
// API server. Every frame is a fixed little-endian header followed by
// `length` bytes of payload. Nothing in a frame is trusted by its receiver:
// see frame_is_sane() and hira::Reader.
#pragma once

#include <cstddef>
#include <cstdint>

namespace hira::wire {

// Set in every API server's environment: a guest library loaded there (by a
// loader that also finds hira's own vendor file) stays silent and offline.
inline constexpr const char *kInsideApiServerEnv = "HIRA_INSIDE_API_SERVER";

inline constexpr uint32_t kMagic = 0x41524948;  // "HIRA"
inline constexpr uint16_t kVersion = 3;
// Largest payload any peer accepts; bigger frames close the channel. Bulk
// data does not count: it follows its frame in Bulk chunks (kFlagBulk), so a
// relay such as the router holds at most one frame of this size and one
// chunk per direction, whatever the transfer.
inline constexpr uint32_t kMaxPayload = 16u << 20;
// The bytes of one Bulk frame, at most.
inline constexpr uint32_t kBulkChunk = 1u << 20;
// The bulk bytes one frame may announce, at most.
inline constexpr uint64_t kMaxBulk = 1ull << 40;

enum class Kind : uint16_t {
  Hello = 1,         // guest -> router: api name + signature
  HelloAck = 2,      // router -> guest: ReplyStatus in `func`
  Call = 3,          // guest -> server: one API call
  Reply = 4,         // server -> guest: ReplyPrefix + return/out blobs
  Callback = 5,      // server -> guest: callback invocation
  CallbackDone = 6,  // guest -> server: callback finished (+ return blob)
  Bye = 7,           // either way: orderly close
  Data = 8,          // server -> guest: a deferred out buffer (call_id = its token)
  Heartbeat = 9,     // server -> guest: a sync call is still running (kFlagHeartbeats)
  Bulk = 10,         // a chunk of the bulk bytes that follow a kFlagBulk frame
  Account = 11,      // server -> router: AccountNotice[] (the router keeps it)
};

// What an API server tells the router about the resources of its objects
// (an Account frame carries a whole number of these).
struct AccountNotice {
  uint32_t op;        // kNoticeHold or kNoticeGone
  uint32_t resource;  // the router module's resource index (Hold)
  uint64_t handle;    // the object's id, as the guest knows it
  int64_t amount;     // Hold: what the object holds of the resource
};
static_assert(sizeof(AccountNotice) == 24);
// The call that created `handle` (the frame's func) allocated `amount`, as
// the server measured it (server_allocates_rc). Sent before its reply.
inline constexpr uint32_t kNoticeHold = 1;
// The real library destroyed the object (rc_until_destroyed): whatever it
// holds is released now, whenever its last reference went.
inline constexpr uint32_t kNoticeGone = 2;
// The call (the frame's func) consumed `amount` of an instantaneous resource
// that only the server can measure (device time: consumes_rc with
// lapis_call_ns()); handle is 0. Sent before its reply, or alone for an
// async call.
inline constexpr uint32_t kNoticeUse = 3;

// Handle ids the guest chooses (for handles a call creates) have this bit;
// the server's own never do.
inline constexpr uint64_t kGuestIdBit = 1ull << 63;
// A constant of a handle type (LAPIS handle_constants: CUDA's
// CU_STREAM_LEGACY) travels as itself with this bit; no object id has it.
inline constexpr uint64_t kHandleConstantBit = 1ull << 62;

// A returned mapping's blob: server address, bytes, then these flags.
inline constexpr uint8_t kMapReads = 1;   // the mapped bytes follow
inline constexpr uint8_t kMapWrites = 2;  // the unmap sends the guest's bytes back
// The guest's copy is window space the server set aside (a reference always
// follows, holding the bytes when kMapReads); it is the server's again after
// the unmap.
inline constexpr uint8_t kMapInWindow = 4;

enum FrameFlags : uint32_t {
  kFlagAsync = 1u << 0,   // Call: no Reply is sent
  kFlagTagged = 1u << 1,  // Call/Reply: a tagged payload with a reference table (codec.h)
  // Hello: the guest passed a shared-memory window (a sealed memfd) with it.
  // HelloAck: the window was accepted; bulk data may be sent by reference.
  kFlagWindow = 1u << 2,
  // Hello: shared-memory command rings (ring.h) came with it, after the
  // window if both did. HelloAck: accepted; after this frame both sides
  // speak through the rings.
  kFlagRings = 1u << 3,
  // Hello: the guest times its calls out; the server sends a Heartbeat every
  // half second while a sync call of it runs, so that a long call is told
  // apart from a peer that stopped.
  kFlagHeartbeats = 1u << 4,
  // Any frame: the payload ends with a u64, the count of bulk bytes that
  // follow the frame, in order, as Bulk frames (same call_id, 1..kBulkChunk
  // bytes each) and nothing in between. A tagged payload names them with
  // kRefBulk references (codec.h).
  kFlagBulk = 1u << 5,
  // Data: the bytes are already in the window space the guest set aside
  // for them with the call (the frame carries none).
  kFlagInWindow = 1u << 6,
  // Hello from a guest in a VM: its window is a slice of the VM's shared
  // region (an ivshmem BAR the host also maps): u64 offset and u64 size
  // follow the pid in the payload, and no descriptor comes with it. Router
  // to server: the same payload, with the region's descriptor as the window
  // (and kFlagWindow). HelloAck answers with kFlagWindow as for any window.
  kFlagVmWindow = 1u << 7,
};

struct FrameHeader {
  uint32_t magic;
  uint16_t version;
  uint16_t kind;
  uint32_t length;   // payload bytes after the header
  uint32_t func;     // function id (Call/Reply), callback id (Callback)
  uint64_t call_id;  // matches a Reply to its Call, a CallbackDone to its Callback
  uint32_t thread;   // guest thread id: selects the server's shadow thread
  uint32_t flags;
};
static_assert(sizeof(FrameHeader) == 32);

// Why a call produced no result from the real API.
enum class ReplyStatus : uint32_t {
  Ok = 0,           // the real function ran; blobs follow
  BadFrame = 1,     // payload did not decode (router or server)
  BadHandle = 2,    // ReplyPrefix::detail = argument index
  BadArgument = 3,  // a buffer size disagreed with its spec; detail = arg
  NoServer = 4,     // the API server died or could not be started
  Unsupported = 5,  // function id unknown / API mismatch
  OutOfMemory = 6,  // server could not allocate a shadow buffer
  Denied = 7,       // refused by router policy
  OverQuota = 8,    // refused by router policy: over the VM's quota (detail = resource)
};

struct ReplyPrefix {
  uint32_t status;         // ReplyStatus
  uint32_t detail;         // argument index for BadHandle/BadArgument
  uint32_t has_deferred;   // an earlier async call on this thread failed
  uint32_t deferred_func;  // ... which function
  int64_t deferred_value;  // ... and what it returned
  uint64_t reserved;       // keeps the blobs after it 16-byte aligned
};
static_assert(sizeof(ReplyPrefix) == 32);

inline constexpr const char *status_name(ReplyStatus s) {
  switch (s) {
    case ReplyStatus::Ok:
      return "ok";
    case ReplyStatus::BadFrame:
      return "malformed command";
    case ReplyStatus::BadHandle:
      return "unknown or foreign handle";
    case ReplyStatus::BadArgument:
      return "buffer size disagrees with spec";
    case ReplyStatus::NoServer:
      return "API server unavailable";
    case ReplyStatus::Unsupported:
      return "unsupported function";
    case ReplyStatus::OutOfMemory:
      return "API server out of memory";
    case ReplyStatus::Denied:
      return "denied by policy";
    case ReplyStatus::OverQuota:
      return "over the VM's quota";
  }
  return "unknown status";
}

inline bool header_is_sane(const FrameHeader &h) {
  return h.magic == kMagic && h.version == kVersion && h.length <= kMaxPayload &&
         h.kind >= static_cast<uint16_t>(Kind::Hello) &&
         h.kind <= static_cast<uint16_t>(Kind::Account);
}

}  // namespace hira::wire
