#include "topics.hpp"

#include <charconv>

namespace p2pmesh {

bool valid_group_name(std::string_view group) {
  if (group.empty() || group.size() > kMaxGroupNameBytes) return false;
  for (const char c : group) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {
constexpr std::string_view kMesh = "mesh";
constexpr SignalKind kKinds[] = {SignalKind::offer, SignalKind::answer, SignalKind::candidate,
                                 SignalKind::fallback, SignalKind::command};
}  // namespace

const char* to_string(SignalKind kind) {
  switch (kind) {
    case SignalKind::offer: return "offer";
    case SignalKind::answer: return "answer";
    case SignalKind::candidate: return "candidate";
    case SignalKind::fallback: return "fallback";
    case SignalKind::command: return "command";
  }
  return "?";
}

std::string mesh_topic(std::string_view group) {
  std::string topic(group);
  topic += '.';
  topic += kMesh;
  return topic;
}

std::string report_topic(std::string_view group) {
  std::string topic(group);
  topic += ".report";
  return topic;
}

std::string peer_topic(std::string_view group, PeerId peer, SignalKind kind) {
  std::string topic(group);
  topic += '.';
  topic += std::to_string(peer);
  topic += '.';
  topic += to_string(kind);
  return topic;
}

std::optional<ParsedTopic> parse_topic(std::string_view group, std::string_view topic) {
  if (topic.size() <= group.size() + 1 || topic.substr(0, group.size()) != group ||
      topic[group.size()] != '.') {
    return std::nullopt;
  }
  const std::string_view rest = topic.substr(group.size() + 1);
  if (rest == kMesh) return ParsedTopic{true, kNoPeer, SignalKind::offer};

  const auto dot = rest.find('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  const std::string_view id_text = rest.substr(0, dot);
  const std::string_view kind_text = rest.substr(dot + 1);
  PeerId peer = kNoPeer;
  const auto [end, error] = std::from_chars(id_text.data(), id_text.data() + id_text.size(), peer);
  if (error != std::errc{} || end != id_text.data() + id_text.size() || peer == kNoPeer) {
    return std::nullopt;
  }
  for (const SignalKind kind : kKinds) {
    if (kind_text == to_string(kind)) return ParsedTopic{false, peer, kind};
  }
  return std::nullopt;
}

}  // namespace p2pmesh
