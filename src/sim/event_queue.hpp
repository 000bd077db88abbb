#pragma once
// Discrete-event scheduler in virtual time: events run in time order, ties in
// the order they were scheduled, so runs are reproducible.

#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

#include "clock.hpp"

namespace p2pmesh::sim {

class EventQueue {
 public:
  void at(TimeUs when, std::function<void()> event) {
    queue_.push(Entry{when < now_ ? now_ : when, next_order_++, std::move(event)});
  }
  void after(TimeUs delay, std::function<void()> event) { at(now_ + delay, std::move(event)); }

  // Runs events up to and including `until`; time then stands at `until`.
  void run_until(TimeUs until) {
    while (!queue_.empty() && queue_.top().when <= until) {
      Entry entry = queue_.top();
      queue_.pop();
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
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> queue_;
  std::uint64_t next_order_ = 0;
  TimeUs now_ = 0;
};

}  // namespace p2pmesh::sim
