#pragma once
// DeliveryInbox: how a publication reaches subscribers that live on another
// event loop. The publishing thread appends a whole batch (every delivery of
// one message for that loop) under the inbox's lock; the owning loop takes
// everything at once. Only the first batch after a take asks for a drain to
// be posted, so a busy loop gets one posted handler per turn, not one per
// message.

#include <mutex>
#include <utility>
#include <vector>

#include "frame.hpp"

namespace meshd {

class Client;

struct Delivery {
  Client* session;  // lives on the inbox's loop; see EventLoop::drain_inbox
  FrameRef frame;
};

class DeliveryInbox {
 public:
  // Any thread. Moves the batch in (leaves it empty); true when the caller
  // must post a drain to the owning loop.
  bool push(std::vector<Delivery>& batch) {
    const std::lock_guard lock(mutex_);
    if (pending_.empty()) {
      pending_.swap(batch);
    } else {
      for (auto& delivery : batch) pending_.push_back(std::move(delivery));
      batch.clear();
    }
    return !std::exchange(drain_posted_, true);
  }

  // Owning loop. Swaps everything pending into `out` (which must be empty).
  void take(std::vector<Delivery>& out) {
    const std::lock_guard lock(mutex_);
    out.swap(pending_);
    drain_posted_ = false;
  }

 private:
  std::mutex mutex_;
  std::vector<Delivery> pending_;
  bool drain_posted_ = false;
};

}  // namespace meshd
