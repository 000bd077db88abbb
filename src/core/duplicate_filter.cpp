#include "duplicate_filter.hpp"

namespace p2pmesh {

namespace {
bool test_and_set(std::array<std::uint64_t, DuplicateFilter::kWindow / 64>& seen,
                  std::uint64_t seq) {
  const std::uint64_t index = seq % DuplicateFilter::kWindow;
  const std::uint64_t bit = std::uint64_t{1} << (index % 64);
  const bool was_set = (seen[index / 64] & bit) != 0;
  seen[index / 64] |= bit;
  return was_set;
}

void clear(std::array<std::uint64_t, DuplicateFilter::kWindow / 64>& seen, std::uint64_t seq) {
  const std::uint64_t index = seq % DuplicateFilter::kWindow;
  seen[index / 64] &= ~(std::uint64_t{1} << (index % 64));
}
}  // namespace

bool DuplicateFilter::first_time(PeerId source, std::uint64_t seq, bool remember_new) {
  if (seq == 0) return true;
  auto it = windows_.find(source);
  if (it == windows_.end()) {
    if (!remember_new) return true;
    it = windows_.emplace(source, Window{}).first;
  }
  Window& w = it->second;
  if (seq > w.highest) {
    // Ids after the old highest, up to seq, reuse slots of ids now too old.
    if (seq - w.highest >= kWindow) {
      w.seen.fill(0);
    } else {
      for (std::uint64_t s = w.highest + 1; s <= seq; ++s) clear(w.seen, s);
    }
    w.highest = seq;
    test_and_set(w.seen, seq);
    return true;
  }
  if (w.highest - seq >= kWindow) return true;  // too old to tell: delivered
  return !test_and_set(w.seen, seq);
}

void DuplicateFilter::unsee(PeerId source, std::uint64_t seq) {
  const auto it = windows_.find(source);
  if (seq == 0 || it == windows_.end() || seq > it->second.highest ||
      it->second.highest - seq >= kWindow) {
    return;
  }
  clear(it->second.seen, seq);
}

bool DuplicateFilter::seen(PeerId source, std::uint64_t seq) const {
  if (seq == 0) return false;
  const auto it = windows_.find(source);
  if (it == windows_.end() || seq > it->second.highest) return false;
  if (it->second.highest - seq >= kWindow) return true;
  const std::uint64_t index = seq % kWindow;
  return (it->second.seen[index / 64] >> (index % 64) & 1U) != 0;
}

}  // namespace p2pmesh
