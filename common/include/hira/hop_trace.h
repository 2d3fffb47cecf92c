// Where a synchronous call's time goes, hop by hop. With
// $HIRA_HOP_TRACE=PREFIX every process of a call (guest library, router,
// API server) appends (call id, stage, CLOCK_MONOTONIC ns) records to its
// own file PREFIX.<pid>, a shared mapping that outlives a killed process;
// bench/hop_trace.py joins them by call id into a median per hop. Without
// the variable a mark is one predictable branch. PREFIX's folder must be
// writable by the API server's own user (the router sandboxes it). Call
// ids are a guest process's own: trace one guest process at a time.
#pragma once

#include <atomic>
#include <cstdint>

namespace hira::hop_trace {

// In the order a synchronous call passes them.
enum Stage : uint32_t {
  kGuestSend,        // the calling thread is about to send the call
  kRouterGotCall,    // the router's guest pump has the whole frame
  kRouterSentCall,   // ... and has passed it to the server's channel
  kServerGotCall,    // the server's reading thread has it
  kServerRunCall,    // the guest thread's shadow starts it
  kServerRan,        // the handler (decode, the real call, encode) returned
  kServerSentReply,  // the reply is in the channel
  kRouterGotReply,   // the router's server pump has it
  kRouterSentReply,  // ... and has passed it to the guest's channel
  kGuestGotReply,    // the guest's reading thread has it
  kGuestReturn,      // the calling thread has its reply
  // Finer marks inside the router's handling of a call (bench/hop_trace.py
  // splits the hop they fall in).
  kRouterChecked = 100,  // its shape is checked
  kRouterAdmitted,       // accounted for, and the policies let it go
  kRouterRecorded,       // recorded as in flight, about to be passed on
  kRouterMatched = 110,  // a reply is matched to its call
};

struct Record {
  uint64_t call_id;
  uint32_t stage;
  uint32_t tid;
  uint64_t ns;
};

namespace detail {
extern Record *records;
extern uint64_t capacity;
extern std::atomic<uint64_t> next;
void append(uint64_t call_id, Stage stage);
}  // namespace detail

// Opens this process's file when $HIRA_HOP_TRACE is set (call it before a
// sandbox forbids opening files); once per process.
void init();

inline void mark(uint64_t call_id, Stage stage) {
  if (detail::records != nullptr) [[unlikely]]
    detail::append(call_id, stage);
}

}  // namespace hira::hop_trace
