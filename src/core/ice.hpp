#pragma once
// ICE facts the core carries between the server, the drivers and the
// reports: the STUN/TURN servers meshd hands out in the welcome, and the kind
// of path each link's selected candidate pair takes.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace p2pmesh {

// One STUN or TURN server, as an RTCIceServer. A bare URL converts to one.
struct IceServer {
  IceServer() = default;
  IceServer(std::string url) : urls{std::move(url)} {}  // NOLINT: implicit on purpose
  IceServer(const char* url) : urls{url} {}             // NOLINT
  IceServer(std::vector<std::string> server_urls, std::string user = {}, std::string password = {})
      : urls(std::move(server_urls)), username(std::move(user)), credential(std::move(password)) {}

  std::vector<std::string> urls;  // stun:HOST:PORT, turn:HOST:PORT[?transport=udp|tcp]
  std::string username;           // TURN only
  std::string credential;         // TURN only
  friend bool operator==(const IceServer&, const IceServer&) = default;
};

// The path of a link's selected candidate pair, by its costliest end: relay
// (through a TURN server: the operator pays its bandwidth) if either end is a
// relay candidate, else srflx (a NAT mapping learnt from STUN), else prflx
// (a mapping learnt from the other side's checks), else host (direct).
enum class CandidateType : std::uint8_t { unknown, host, srflx, prflx, relay };

inline const char* to_string(CandidateType type) {
  switch (type) {
    case CandidateType::unknown: return "unknown";
    case CandidateType::host: return "host";
    case CandidateType::srflx: return "srflx";
    case CandidateType::prflx: return "prflx";
    case CandidateType::relay: return "relay";
  }
  return "unknown";
}

// "host", "srflx", "prflx", "relay" (the W3C names; libwebrtc's "local" and
// "stun" too); nullopt for anything else.
inline std::optional<CandidateType> candidate_type_from(std::string_view name) {
  if (name == "host" || name == "local") return CandidateType::host;
  if (name == "srflx" || name == "stun") return CandidateType::srflx;
  if (name == "prflx") return CandidateType::prflx;
  if (name == "relay") return CandidateType::relay;
  return std::nullopt;
}

// The type of a pair from the types of its two ends (see CandidateType).
inline CandidateType pair_type(CandidateType local, CandidateType remote) {
  for (const CandidateType type :
       {CandidateType::relay, CandidateType::srflx, CandidateType::prflx, CandidateType::host}) {
    if (local == type || remote == type) return type;
  }
  return CandidateType::unknown;
}

}  // namespace p2pmesh
