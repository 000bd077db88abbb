#pragma once
// An encoded WebSocket frame (server -> client: unmasked, so the same bytes
// go to every subscriber), shared by reference count among the outbound
// queues of all subscribers of a publication. Frames come from a pool that
// keeps their buffers, so the steady state allocates nothing per message.
// A frame crosses event-loop threads (a publication reaches subscribers on
// every loop), hence the atomic reference count and the pool's lock; the
// pool is touched once per publication, the count once per delivery.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "ws_frame.hpp"

namespace meshd {

class FramePool;

struct Frame {
  static constexpr std::size_t kHeaderRoom = ws::kMaxServerHeader;

  std::atomic<std::uint32_t> refs{0};
  std::uint32_t offset = 0;  // first byte of the frame inside data
  bool counts_as_message = false;  // welcome/topic message (for messages_out)
  std::chrono::steady_clock::time_point published{};  // epoch: not measured
  std::string data;
  FramePool* pool = nullptr;

  std::string_view bytes() const { return {data.data() + offset, data.size() - offset}; }
  std::size_t size() const { return data.size() - offset; }

  // Starts a binary message: reserves header room; append the payload to
  // `data`, then call seal().
  void begin() {
    data.resize(kHeaderRoom);
    offset = 0;
  }
  void seal_binary() {
    unsigned char header[kHeaderRoom];
    const std::size_t n = ws::write_header(header, ws::Opcode::binary, data.size() - kHeaderRoom);
    offset = static_cast<std::uint32_t>(kHeaderRoom - n);
    for (std::size_t i = 0; i < n; ++i) data[offset + i] = static_cast<char>(header[i]);
  }
};

class FrameRef {
 public:
  FrameRef() = default;
  explicit FrameRef(Frame* frame) : frame_(frame) {
    if (frame_) frame_->refs.fetch_add(1, std::memory_order_relaxed);
  }
  FrameRef(const FrameRef& other) : FrameRef(other.frame_) {}
  FrameRef(FrameRef&& other) noexcept : frame_(std::exchange(other.frame_, nullptr)) {}
  FrameRef& operator=(FrameRef other) noexcept {
    std::swap(frame_, other.frame_);
    return *this;
  }
  ~FrameRef();

  Frame* operator->() const { return frame_; }
  Frame& operator*() const { return *frame_; }
  explicit operator bool() const { return frame_ != nullptr; }

 private:
  Frame* frame_ = nullptr;
};

class FramePool {
 public:
  static constexpr std::size_t kKeepCapacity = 16 * 1024;  // larger buffers are freed
  static constexpr std::size_t kMaxFree = 4096;

  FrameRef acquire() {
    std::unique_ptr<Frame> frame;
    {
      const std::lock_guard lock(mutex_);
      ++live_;
      if (!free_.empty()) {
        frame = std::move(free_.back());
        free_.pop_back();
      }
    }
    if (!frame) {
      frame = std::make_unique<Frame>();
      frame->pool = this;
    }
    frame->offset = 0;
    frame->data.clear();
    frame->counts_as_message = false;
    frame->published = {};
    return FrameRef(frame.release());  // owned by its references until release()
  }

  void release(Frame* raw) {
    std::unique_ptr<Frame> frame(raw);
    if (frame->data.capacity() > kKeepCapacity) std::string().swap(frame->data);
    const std::lock_guard lock(mutex_);
    --live_;
    if (free_.size() >= kMaxFree) return;  // pool full: `frame` dies after the unlock
    free_.push_back(std::move(frame));
  }

  std::size_t live() const {
    const std::lock_guard lock(mutex_);
    return live_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::unique_ptr<Frame>> free_;
  std::size_t live_ = 0;
};

inline FrameRef::~FrameRef() {
  // acq_rel: the last owner sees every write made through the other references.
  if (frame_ && frame_->refs.fetch_sub(1, std::memory_order_acq_rel) == 1)
    frame_->pool->release(frame_);
}

}  // namespace meshd
