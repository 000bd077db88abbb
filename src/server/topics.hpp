#pragma once
// The topic names of WIRE.md section 2 and the group-name rule.
//   <group>.mesh
//   <group>.<decimal peer id>.<offer|answer|candidate|fallback>
// Group names: 1..64 characters of [A-Za-z0-9_-] (no dot, so the first dot
// ends the group). Peer ids are canonical decimal (no sign, no leading zero).

#include <cstddef>
#include <string_view>

#include "peer_id.hpp"

namespace meshd {

inline constexpr std::size_t kMaxGroupName = 64;

enum class TopicKind : unsigned char { other, mesh, offer, answer, candidate, fallback };

struct TopicInfo {
  TopicKind kind = TopicKind::other;  // other = not a WIRE.md topic
  std::string_view group;             // set unless kind is other
  p2pmesh::PeerId peer = p2pmesh::kNoPeer;  // for the per-peer kinds
};

bool valid_group_name(std::string_view group);
TopicInfo parse_topic(std::string_view topic);

}  // namespace meshd
