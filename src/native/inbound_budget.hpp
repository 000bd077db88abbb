#pragma once
// Bytes received on links and not yet handled by the peer's loop. libwebrtc
// hands messages over as fast as neighbours send (it has no receive
// backpressure); past the bound they are dropped and counted, so a flooding
// neighbour cannot grow the loop's queue without bound. Thread-safe: taken on
// libwebrtc's signaling thread, given back on the loop.

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace p2pmesh::native {

class InboundBudget {
 public:
  explicit InboundBudget(std::size_t max_bytes) : max_bytes_(max_bytes) {}

  // Reserves room for a message; false (and counted) when it does not fit.
  bool take(std::size_t bytes) {
    if (pending_.fetch_add(bytes) + bytes > max_bytes_) {
      pending_.fetch_sub(bytes);
      drops_.fetch_add(1);
      return false;
    }
    return true;
  }
  // The loop has handled a message taken before.
  void give_back(std::size_t bytes) { pending_.fetch_sub(bytes); }

  std::size_t pending() const { return pending_.load(); }
  std::uint64_t drops() const { return drops_.load(); }

 private:
  const std::size_t max_bytes_;
  std::atomic<std::size_t> pending_{0};
  std::atomic<std::uint64_t> drops_{0};
};

}  // namespace p2pmesh::native
