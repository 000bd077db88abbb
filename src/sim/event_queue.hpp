#pragma once
// Discrete-event scheduler in virtual time: events run in time order, ties in
// the order they were scheduled, so runs are reproducible.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <vector>

#include "clock.hpp"

namespace p2pmesh::sim {

class EventQueue {
 public:
  void at(TimeUs when, std::function<void()> event) {
    queue_.push_back(Entry{when < now_ ? now_ : when, next_order_++, std::move(event)});
    std::push_heap(queue_.begin(), queue_.end(), std::greater<Entry>());
  }
  void after(TimeUs delay, std::function<void()> event) { at(now_ + delay, std::move(event)); }

  // Runs events up to and including `until`; time then stands at `until`.
  void run_until(TimeUs until) {
    // A heap of our own: the earliest event is moved out, not copied (a
    // copy of its closure can be a packet's bytes, millions of times a run).
    while (!queue_.empty() && queue_.front().when <= until) {
      std::pop_heap(queue_.begin(), queue_.end(), std::greater<Entry>());
      Entry entry = std::move(queue_.back());
      queue_.pop_back();
      now_ = entry.when;
      entry.event();
    }
    if (until > now_) now_ = until;
  }

  TimeUs now() const { return now_; }
  std::size_t pending() const { return queue_.size(); }

 private:
  struct Entry {
    TimeUs when;
    std::uint64_t order;
    std::function<void()> event;
    bool operator>(const Entry& other) const {
      return when != other.when ? when > other.when : order > other.order;
    }
  };
  std::vector<Entry> queue_;  // a min-heap by (when, order)
  std::uint64_t next_order_ = 0;
  TimeUs now_ = 0;
};

}  // namespace p2pmesh::sim
