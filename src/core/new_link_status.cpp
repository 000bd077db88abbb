#include "new_link_status.hpp"

#include <algorithm>

namespace p2pmesh {

bool NewLinkStatus::hold(const Link& link, const LinkTable& links, TimeUs now) {
  // Only our own dial, to a peer that answers keep-alive pings (its RTT
  // comes) and reads statuses as ours do; when both ends dialled, neither
  // knows which link the other keeps: both announce at once.
  if (wait_ <= 0 || !link.initiated || link.peer_version < 1 || links.find(link.peer, false)) {
    return false;
  }
  held_.push_back(link.id);
  if (deadline_ == kNever) deadline_ = now + wait_;
  return true;
}

bool NewLinkStatus::due(const LinkTable& links, TimeUs now) const {
  if (held_.empty()) return false;
  if (now >= deadline_) return true;
  for (const LinkId id : held_) {
    const Link* link = links.find(id);
    if (link && link->rtt_us == 0) return false;  // its first pong is on its way
  }
  return std::none_of(links.all().begin(), links.all().end(), [](const Link& l) {
    return l.initiated && l.state == LinkState::connecting;
  });
}

void NewLinkStatus::published() {
  held_.clear();
  deadline_ = kNever;
}

bool NewLinkStatus::forget(LinkId link) {
  const auto it = std::find(held_.begin(), held_.end(), link);
  if (it == held_.end()) return false;
  held_.erase(it);
  if (held_.empty()) deadline_ = kNever;
  return true;
}

}  // namespace p2pmesh
