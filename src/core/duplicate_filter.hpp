#pragma once
// Drops packets already seen, by (source, seq). Packets without a seq (from
// reference peers) cannot be told apart and always pass. Per source it keeps
// the highest seq and a 64-entry window below it: O(1) memory per source.

#include <cstdint>
#include <unordered_map>

#include "peer_id.hpp"

namespace p2pmesh {

class DuplicateFilter {
 public:
  // True the first time (source, seq) is seen; false for a repeat, or for a
  // seq too far behind the newest one to tell.
  bool first_time(PeerId source, std::uint64_t seq);
  void forget(PeerId source) { windows_.erase(source); }
  std::size_t sources() const { return windows_.size(); }

 private:
  struct Window {
    std::uint64_t highest = 0;
    std::uint64_t seen = 0;  // bit i: highest - i was seen
  };
  std::unordered_map<PeerId, Window> windows_;
};

}  // namespace p2pmesh
