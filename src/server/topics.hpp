#pragma once
// The topic names of WIRE.md section 2 and the group-name rule.
//   <group>.mesh
//   <group>.<decimal peer id>.<offer|answer|candidate|fallback>
// and the observer topics (ours, docs/meshd.md):
//   <group>.report                     peers' state reports (JSON)
//   <group>.<decimal peer id>.command  commands from an observer to a peer
// Group names: 1..64 characters of [A-Za-z0-9_-] (no dot, so the first dot
// ends the group). Peer ids are canonical decimal (no sign, no leading zero).

#include <cstddef>
#include <string_view>

#include "../core/topics.hpp"  // the group-name rule peers check too (same file name here)
#include "peer_id.hpp"

namespace meshd {

using p2pmesh::valid_group_name;

enum class TopicKind : unsigned char {
  other, mesh, offer, answer, candidate, fallback, report, command
};

struct TopicInfo {
  TopicKind kind = TopicKind::other;  // other = not a WIRE.md topic
  std::string_view group;             // set unless kind is other
  p2pmesh::PeerId peer = p2pmesh::kNoPeer;  // for the per-peer kinds
};

TopicInfo parse_topic(std::string_view topic);

// The access rules (docs/meshd.md) for a valid topic (kind != other), seen
// from connection `self`. Membership of the group (for publishing a report)
// is checked by the caller: `member` says whether self is subscribed to
// <group>.mesh.
//   subscribe: <g>.mesh, <g>.report (anyone: observers), <g>.<self>.*
//   publish:   <g>.mesh (own updates, checked by the broker), <g>.report
//              (members only), <g>.<other id>.* incl. command (anyone)
enum class Access : unsigned char { allowed, forbidden };
Access may_subscribe(const TopicInfo& info, p2pmesh::PeerId self);
Access may_publish(const TopicInfo& info, p2pmesh::PeerId self, bool member);

}  // namespace meshd
