#include "held_link_downs.hpp"

#include <algorithm>

namespace p2pmesh {

void HeldLinkDowns::hold(PeerId peer, TimeUs until) {
  release(peer);
  held_.emplace_back(peer, until);
}

void HeldLinkDowns::forget(PeerId peer) {
  std::erase_if(said_, [peer](const auto& s) { return s.first == peer; });
  release(peer);
}

bool HeldLinkDowns::release(PeerId peer) {
  const auto it =
      std::find_if(held_.begin(), held_.end(), [peer](const auto& h) { return h.first == peer; });
  if (it == held_.end()) return false;
  held_.erase(it);
  return true;
}

std::vector<PeerId> HeldLinkDowns::take_due(TimeUs now) {
  std::vector<PeerId> due;
  std::erase_if(held_, [&](const auto& h) {
    if (h.second > now) return false;
    due.push_back(h.first);
    return true;
  });
  return due;
}

TimeUs HeldLinkDowns::next_due() const {
  TimeUs at = kNever;
  for (const auto& h : held_) at = std::min(at, h.second);
  return at;
}

void HeldLinkDowns::said_by_other_end(PeerId peer, TimeUs until) {
  std::erase_if(said_, [peer](const auto& s) { return s.first == peer; });
  said_.emplace_back(peer, until);
}

bool HeldLinkDowns::take_said_by_other_end(PeerId peer, TimeUs now) {
  bool said = false;
  std::erase_if(said_, [&](const auto& s) {
    if (s.first == peer) said = s.second > now;
    return s.first == peer || s.second <= now;
  });
  return said;
}

}  // namespace p2pmesh
