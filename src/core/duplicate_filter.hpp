#pragma once
// Drops packets already seen, by (source, seq). Packets without a seq (from
// reference peers) cannot be told apart and always pass. Per source it keeps
// the highest seq and a window of the last 1024 ids below it: O(1) memory per
// source.
//
// A seq older than the window is delivered, not dropped: with no
// authentication, one forged packet with a huge seq would otherwise silence
// the real source; a rare repeat is the lesser harm than losing messages.

#include <array>
#include <cstdint>
#include <unordered_map>

#include "peer_id.hpp"

namespace p2pmesh {

class DuplicateFilter {
 public:
  static constexpr std::uint64_t kWindow = 1024;

  // True the first time (source, seq) is seen, or when it cannot be told
  // (older than the window); false for a repeat. A source not seen before is
  // only remembered when `remember_new` (the caller bounds the sources).
  bool first_time(PeerId source, std::uint64_t seq, bool remember_new = true);
  // Whether (source, seq) passed before (a seq older than the window counts
  // as seen: too old to ask for).
  bool seen(PeerId source, std::uint64_t seq) const;
  void forget(PeerId source) { windows_.erase(source); }
  // (source, seq) passed but turned out not to be genuine (a bad signature):
  // the next copy passes as the first.
  void unsee(PeerId source, std::uint64_t seq);
  std::size_t sources() const { return windows_.size(); }

 private:
  struct Window {
    std::uint64_t highest = 0;
    std::array<std::uint64_t, kWindow / 64> seen{};  // bit (seq % kWindow)
  };
  std::unordered_map<PeerId, Window> windows_;
};

}  // namespace p2pmesh
