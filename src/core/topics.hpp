#pragma once
// Topic names of WIRE.md §2: `<group>.mesh` and `<group>.<id>.<kind>`.

#include <optional>
#include <string>
#include <string_view>

#include "peer_id.hpp"

namespace p2pmesh {

// `command` (ours): requests from an observer (the demo dashboard) to this
// peer, e.g. "send a trace"; only subscribed when MeshConfig::observer_commands.
enum class SignalKind : std::uint8_t { offer, answer, candidate, fallback, command };
const char* to_string(SignalKind kind);

// Group names meshd accepts: 1-64 of [A-Za-z0-9_-] (a '.' would split the
// topic). Peers check them up front so that a bad room name is an error, not
// a connection the server keeps refusing.
inline constexpr std::size_t kMaxGroupNameBytes = 64;
bool valid_group_name(std::string_view group);

std::string mesh_topic(std::string_view group);
// Observer reports of every peer of the group (state_report.hpp).
std::string report_topic(std::string_view group);
std::string peer_topic(std::string_view group, PeerId peer, SignalKind kind);

struct ParsedTopic {
  bool is_mesh = false;     // `<group>.mesh`
  PeerId peer = kNoPeer;    // otherwise `<group>.<peer>.<kind>`
  SignalKind kind = SignalKind::offer;
};
// Parses a topic of `group`; nullopt for other groups and unknown forms.
std::optional<ParsedTopic> parse_topic(std::string_view group, std::string_view topic);

}  // namespace p2pmesh
