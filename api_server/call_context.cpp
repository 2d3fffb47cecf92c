#include <algorithm>
#include <cstdint>
#include <cstring>

#include "connection.h"
#include "hira/bulk_copy.h"
#include "hira/server.h"

namespace hira::server {

namespace {
// Shadow memory one call may hold; more is refused as OutOfMemory.
constexpr uint64_t kMaxCallArena = 2ull << 30;
constexpr uint64_t kScratchMin = 1ull << 20;
constexpr uint64_t kScratchMax = 512ull << 20;
}  // namespace

CallContext::CallContext(Connection &conn, uint32_t thread, Reader args, Scratch *scratch)
    : conn_(conn), thread_(thread), args_(args), scratch_(scratch) {
  // A tagged call gets a tagged reply: window space where the guest has a
  // window, large arrays after the frame otherwise.
  if (args.tagged()) reply_.set_window(conn.reply_placer());
}

CallContext::~CallContext() {
  for (const uint64_t bytes : deferred_bytes_) conn_.unreserve_deferred(bytes);
  for (void *p : deferred_) conn_.staging().give(p);
  for (void *p : manual_in_use_) conn_.end_manual_use(p);
  if (scratch_ == nullptr) return;
  // Keep the largest block for the next call on this thread.
  for (size_t i = 0; i < arena_.size(); ++i) {
    if (arena_sizes_[i] >= kScratchMin && arena_sizes_[i] <= kScratchMax &&
        arena_sizes_[i] > scratch_->size) {
      scratch_->block = std::move(arena_[i]);
      scratch_->size = arena_sizes_[i];
    }
  }
}

void *CallContext::alloc(uint64_t count, uint64_t elem_size, uint64_t extra) {
  if (elem_size != 0 && count > (kMaxCallArena - extra) / elem_size) {
    reject(wire::ReplyStatus::OutOfMemory, detail_);
    return nullptr;
  }
  const uint64_t bytes = count * elem_size + extra;
  if (arena_bytes_ + bytes > kMaxCallArena) {
    reject(wire::ReplyStatus::OutOfMemory, detail_);
    return nullptr;
  }
  std::unique_ptr<uint8_t[]> block;
  uint64_t size = bytes == 0 ? 1 : bytes;
  if (scratch_ != nullptr && scratch_->block && scratch_->size >= bytes && bytes >= kScratchMin) {
    block = std::move(scratch_->block);
    size = scratch_->size;
    scratch_->size = 0;
    std::memset(block.get(), 0, bytes);  // zeroed, as a fresh block would be
  } else {
    block.reset(new (std::nothrow) uint8_t[size]());
  }
  if (!block) {
    reject(wire::ReplyStatus::OutOfMemory, detail_);
    return nullptr;
  }
  arena_bytes_ += bytes;
  arena_.push_back(std::move(block));
  arena_sizes_.push_back(size);
  return arena_.back().get();
}

void *CallContext::out_buffer(Reader &a, uint64_t count, uint64_t elem_size) {
  // count * elem_size was checked against the call limit by the decoder.
  if (uint8_t *p = a.out_space(count * elem_size)) return p;
  if (!a.ok()) {
    reject(wire::ReplyStatus::BadFrame, detail_);
    return nullptr;
  }
  return alloc(count, elem_size);
}

const uint8_t *CallContext::stable(const uint8_t *p, uint64_t bytes) {
  const MappedWindow *w = conn_.window();
  if (p == nullptr || w == nullptr || !w->offset_of(p, bytes)) return p;
  return static_cast<const uint8_t *>(copy_in(p, bytes, 1));
}

void *CallContext::copy_in(const void *src, uint64_t n, uint64_t elem_size) {
  void *p = alloc(n, elem_size, elem_size);
  if (p != nullptr && n != 0) std::memcpy(p, src, n * elem_size);
  return p;
}

void *CallContext::lookup(uint64_t id, uint32_t type, uint32_t also, uint32_t arg_index) {
  void *obj = nullptr;
  if (conn_.handles().lookup(id, type, &obj) ||
      (also != type && conn_.handles().lookup(id, also, &obj))) {
    return obj;
  }
  reject(wire::ReplyStatus::BadHandle, arg_index);
  return nullptr;
}

void *CallContext::lookup(uint64_t id, uint32_t type, uint32_t arg_index) {
  return lookup(id, type, type, arg_index);
}

uint64_t CallContext::export_handle(void *obj, uint32_t type) {
  return conn_.handles().export_live(obj, type);
}

uint64_t CallContext::retain_handle(void *obj, uint32_t type) {
  return conn_.handles().retain(obj, type);
}

uint64_t CallContext::retain_handle_as(void *obj, uint32_t type, uint64_t guest_id) {
  return conn_.handles().retain(obj, type, guest_id);
}

void CallContext::add_handle_reference(void *obj, uint32_t type) {
  conn_.handles().add_reference(obj, type);
}

void CallContext::depends_on(void *obj, uint32_t type, const void *parent) {
  conn_.handles().depends_on(obj, type, parent);
}

void CallContext::release_handle(void *obj, uint32_t type) { conn_.handles().release(obj, type); }

void *CallContext::manual_buffer(uint64_t guest_addr, uint64_t bytes, bool zeroed) {
  void *p = conn_.manual_buffer(guest_addr, bytes, zeroed);
  if (p == nullptr) {
    reject(wire::ReplyStatus::OutOfMemory, detail_);
  } else {
    manual_in_use_.push_back(p);
  }
  return p;
}

void CallContext::release_manual_buffer_after_reply(uint64_t guest_addr) {
  release_after_reply_.push_back(guest_addr);
}

void *CallContext::deferred_buffer(uint64_t bytes) {
  if (!conn_.reserve_deferred(bytes)) {
    reject(wire::ReplyStatus::OutOfMemory, detail_);
    return nullptr;
  }
  void *p = conn_.staging().take(bytes);
  if (p == nullptr) {
    conn_.unreserve_deferred(bytes);
    reject(wire::ReplyStatus::OutOfMemory, detail_);
    return nullptr;
  }
  deferred_.push_back(p);
  deferred_bytes_.push_back(bytes);
  return p;
}

void *CallContext::deferred_in_buffer(uint64_t token, const uint8_t *src, uint64_t bytes) {
  // The guest keeps it there for the callee.
  if (token != 0 && conn_.in_window(src, bytes)) return const_cast<uint8_t *>(src);
  void *p = deferred_buffer(bytes);
  if (p != nullptr) copy_bulk(p, src, bytes);
  return p;
}

void *CallContext::deferred_out_buffer(Reader &a, uint64_t bytes) {
  if (uint8_t *space = a.out_space(bytes)) return space;
  if (!a.ok()) {
    reject(wire::ReplyStatus::BadFrame, detail_);
    return nullptr;
  }
  return deferred_buffer(bytes);
}

void CallContext::hand_over(std::optional<uint64_t> token, void *buffer,
                            std::optional<uint64_t> bytes, std::function<bool()> done,
                            std::function<void()> release) {
  // Out data in staging memory travels in its Data frame; for anything
  // else the frame only says the guest's bytes are there, or free.
  const bool send_bytes = bytes.has_value();
  if (conn_.in_window(buffer, 1)) {
    conn_.add_deferred(token, buffer, 0, std::move(done), std::move(release), false);
    return;
  }
  for (size_t i = 0; i < deferred_.size(); ++i) {
    if (deferred_[i] != buffer) continue;
    conn_.add_deferred(token, buffer, bytes.value_or(deferred_bytes_[i]), std::move(done),
                       std::move(release), send_bytes);
    deferred_.erase(deferred_.begin() + static_cast<ptrdiff_t>(i));
    deferred_bytes_.erase(deferred_bytes_.begin() + static_cast<ptrdiff_t>(i));
    return;
  }
}

void CallContext::defer_in(uint64_t token, void *buffer, std::function<bool()> done,
                           std::function<void()> release) {
  hand_over(token != 0 ? std::optional(token) : std::nullopt, buffer, std::nullopt, std::move(done),
            std::move(release));
}

void CallContext::defer_out(uint64_t token, void *buffer, uint64_t bytes,
                            std::function<bool()> done, std::function<void()> release) {
  hand_over(token, buffer, bytes, std::move(done), std::move(release));
}

void CallContext::put_mapped(Writer &w, void *addr, uint64_t bytes, bool reads, bool writes) {
  uint8_t *copy = conn_.register_mapped(addr, bytes);
  w.put_u64(bytes);
  w.put_u8((reads ? wire::kMapReads : 0) | (writes ? wire::kMapWrites : 0) |
           (copy != nullptr ? wire::kMapInWindow : 0));
  if (copy != nullptr) {
    if (reads) copy_bulk(copy, addr, bytes);
    w.put_bulk(copy, bytes);  // by reference: it lies in the window
  } else if (reads) {
    w.put_bulk(addr, bytes);
  }
}

void *CallContext::decode_unmap(Reader &r, uint32_t arg_index) {
  const uint8_t state = r.get_u8();
  if (state == 0) return nullptr;
  if (state != 1) {
    reject(wire::ReplyStatus::BadArgument, arg_index);
    return nullptr;
  }
  const uint64_t addr = r.get_u64();
  const uint64_t bytes = r.get_u64();
  const uint8_t *src = bytes <= (uint64_t{1} << 40) ? r.bulk(bytes) : nullptr;
  void *region = reinterpret_cast<void *>(static_cast<uintptr_t>(addr));
  // Only memory this server mapped, and no more of it than it mapped.
  if (src == nullptr || !conn_.is_mapped(region, bytes)) {
    reject(wire::ReplyStatus::BadArgument, arg_index);
    return nullptr;
  }
  if (src != region) copy_bulk(region, src, bytes);
  unmapped_copy_ = src;
  return region;
}

void CallContext::unregister_mapped(void *addr) { conn_.unregister_mapped(addr, unmapped_copy_); }

void *CallContext::callback_userdata(uint64_t guest_registration, uint32_t callback_id) {
  return conn_.callback_userdata(guest_registration, callback_id);
}

void CallContext::reject(wire::ReplyStatus status, uint32_t arg_index) {
  if (status_ != wire::ReplyStatus::Ok) return;  // the first reason wins
  status_ = status;
  detail_ = arg_index;
}

void CallContext::defer_error(int64_t value) { conn_.defer_error(thread_, func_, value); }

bool invoke_callback(void *userdata, Writer &args, std::unique_ptr<uint8_t[]> *result_data,
                     Reader *result) {
  const auto *reg = static_cast<CallbackRegistration *>(userdata);
  if (reg == nullptr || reg->conn == nullptr) return false;
  return reg->conn->invoke_callback(*reg, args, result_data, result);
}

uint64_t callback_guest_id(void *registration) {
  return static_cast<CallbackRegistration *>(registration)->guest_id;
}

uint64_t export_handle_for(void *registration, void *obj, uint32_t type) {
  return static_cast<CallbackRegistration *>(registration)
      ->conn->handles()
      .export_handle(obj, type);
}

void CallContext::report_use(uint32_t resource, uint64_t amount) {
  notices_.push_back(
      {wire::kNoticeUse, resource, 0, static_cast<int64_t>(std::min<uint64_t>(amount, INT64_MAX))});
}

void CallContext::report_hold(uint32_t resource, uint64_t id, uint64_t amount) {
  if (id == 0) return;
  notices_.push_back({wire::kNoticeHold, resource, id,
                      static_cast<int64_t>(std::min<uint64_t>(amount, INT64_MAX))});
}

}  // namespace hira::server
