#include "duplicate_filter.hpp"

namespace p2pmesh {

bool DuplicateFilter::first_time(PeerId source, std::uint64_t seq) {
  if (seq == 0) return true;
  Window& w = windows_[source];
  if (seq > w.highest) {
    const std::uint64_t shift = seq - w.highest;
    w.seen = shift >= 64 ? 0 : w.seen << shift;
    w.seen |= 1;
    w.highest = seq;
    return true;
  }
  const std::uint64_t behind = w.highest - seq;
  if (behind >= 64) return false;
  const std::uint64_t bit = std::uint64_t{1} << behind;
  if (w.seen & bit) return false;
  w.seen |= bit;
  return true;
}

}  // namespace p2pmesh
