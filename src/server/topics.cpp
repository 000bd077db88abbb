#include "topics.hpp"

#include <cstdint>

namespace meshd {

namespace {
bool parse_peer_id(std::string_view s, p2pmesh::PeerId& out) {
  if (s.empty() || s.size() > 10 || s[0] == '0') return false;
  std::uint64_t value = 0;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
    value = value * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (value > UINT32_MAX) return false;
  out = static_cast<p2pmesh::PeerId>(value);
  return true;
}
}  // namespace

TopicInfo parse_topic(std::string_view topic) {
  TopicInfo info;
  const auto dot = topic.find('.');
  if (dot == std::string_view::npos) return info;
  const auto group = topic.substr(0, dot);
  if (!valid_group_name(group)) return info;
  const auto rest = topic.substr(dot + 1);
  if (rest == "mesh" || rest == "report") {
    info.kind = rest == "mesh" ? TopicKind::mesh : TopicKind::report;
    info.group = group;
    return info;
  }
  const auto dot2 = rest.find('.');
  if (dot2 == std::string_view::npos) return info;
  p2pmesh::PeerId peer = p2pmesh::kNoPeer;
  if (!parse_peer_id(rest.substr(0, dot2), peer)) return info;
  const auto channel = rest.substr(dot2 + 1);
  TopicKind kind;
  if (channel == "offer") kind = TopicKind::offer;
  else if (channel == "answer") kind = TopicKind::answer;
  else if (channel == "candidate") kind = TopicKind::candidate;
  else if (channel == "fallback") kind = TopicKind::fallback;
  else if (channel == "command") kind = TopicKind::command;
  else return info;
  info.kind = kind;
  info.group = group;
  info.peer = peer;
  return info;
}

Access may_subscribe(const TopicInfo& info, p2pmesh::PeerId self) {
  switch (info.kind) {
    case TopicKind::other: return Access::forbidden;
    case TopicKind::mesh:
    case TopicKind::report: return Access::allowed;
    default: return info.peer == self ? Access::allowed : Access::forbidden;
  }
}

Access may_publish(const TopicInfo& info, p2pmesh::PeerId self, bool member) {
  switch (info.kind) {
    case TopicKind::other: return Access::forbidden;
    case TopicKind::mesh: return Access::allowed;  // the broker checks the update's source
    case TopicKind::report: return member ? Access::allowed : Access::forbidden;
    default: return info.peer != self ? Access::allowed : Access::forbidden;
  }
}

}  // namespace meshd
