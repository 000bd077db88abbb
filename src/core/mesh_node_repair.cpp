// MeshNode's repair of broadcasts lost to churn: what a relay re-sends when a
// neighbour's link closes or a peer leaves, and how it serves the children of
// peers that cannot (reference relays do not repair, reference receivers
// cannot drop a repeat). Receivers of our protocol drop repeats by id.

#include <algorithm>

#include "mesh_node.hpp"

namespace p2pmesh {

void MeshNode::repair(TimeUs now, PeerId peer) {
  if (config_.repair_window <= 0 || left_) return;
  // Still in the group (only our link with it closed): what was in flight on
  // the link is lost, so it gets our recent packets again through the server
  // and drops those it has. Gone, or unable to drop a repeat: its children
  // get them in its place.
  const bool resend =
      config_.relay_fallback && membership_.is_member(peer) && drops_repeats(peer);
  for (const wire::Packet& packet : repair_buffer_.take_sent_to(peer, now)) {
    // Without an id (a reference source) no receiver could drop a repeat.
    if (packet.seq == 0) continue;
    if (resend) {
      ++counters_.repaired;
      send_down(now, peer, packet);
    } else {
      HopFilter wanted = hop_filter();  // a budget per packet, as when relaying it
      send_around(now, packet, peer, true, wanted);
    }
  }
}

void MeshNode::repair_below_reference_relays(TimeUs now, PeerId gone) {
  if (config_.repair_window <= 0 || left_) return;
  const auto pick = [&](PeerId next, const wire::Packet& packet) {
    return next != gone && repairs_fall_to_us(next, packet, gone);
  };
  for (const wire::Packet& packet : repair_buffer_.copies_where(now, pick)) {
    HopFilter wanted = hop_filter();
    send_around(now, packet, gone, true, wanted);
  }
}

bool MeshNode::repairs_fall_to_us(PeerId next, const wire::Packet& packet, PeerId gone) const {
  if (packet.seq == 0 || drops_repeats(next)) return false;
  const auto parent_of = [&packet](PeerId child) {
    for (const wire::Edge& edge : packet.edges) {
      if (edge.v == child) return edge.u;
    }
    return kNoPeer;
  };
  PeerId at = gone;
  for (std::size_t hop = 0; hop < packet.edges.size(); ++hop) {  // a validated tree ends
    const PeerId parent = parent_of(at);
    // Our peers repair on their own; a departed relay's children are served
    // when it is handled (not twice).
    if (parent == kNoPeer || parent == self_ || drops_repeats(parent) ||
        recently_departed(parent)) {
      return false;
    }
    if (parent == next) return true;
    at = parent;
  }
  return false;
}

void MeshNode::send_around(TimeUs now, const wire::Packet& packet, PeerId gone,
                           bool may_have_it, HopFilter& wanted) {
  // Where `gone` may have relayed the packet, a child that cannot drop
  // repeats (a reference peer) may have it already: no copy for it, its own
  // children get one in its place. Routes are trees (validated), so this ends.
  const auto around = [&](PeerId next) {
    return recently_departed(next) || (may_have_it && !drops_repeats(next));
  };
  const auto takes = [&](PeerId next) { return around(next) || wanted(next); };
  for (const RepairHop& hop : plan_repair(packet, gone, self_, config_.prune_routes, takes)) {
    if (around(hop.next)) {
      send_around(now, hop.packet, hop.next, may_have_it, wanted);
    } else {
      ++counters_.repaired;
      send_down(now, hop.next, hop.packet);
    }
  }
}

bool MeshNode::recently_departed(PeerId peer) const {
  if (membership_.is_member(peer)) return false;  // heard of again (it was silent)
  return std::any_of(recently_departed_.begin(), recently_departed_.end(),
                     [peer](const auto& entry) { return entry.second == peer; });
}

void MeshNode::forget_departed(TimeUs now) {
  std::vector<OrderedEvent> events;
  while (!recently_departed_.empty() && recently_departed_.front().first <= now) {
    duplicates_.forget(recently_departed_.front().second);
    unreliable_duplicates_.forget(recently_departed_.front().second);
    // Its key goes with its duplicate window: late copies still verify.
    if (!membership_.is_member(recently_departed_.front().second)) {
      signer_keys_.erase(recently_departed_.front().second);
    }
    // What is still missing of it will not come now: gaps.
    order_.forget(recently_departed_.front().second, events);
    recently_departed_.pop_front();
  }
  emit_ordered(events);
}

}  // namespace p2pmesh
