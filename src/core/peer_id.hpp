#pragma once
#include <cstdint>

namespace p2pmesh {

// Peer ids are handed out by meshd; 0 means "no peer".
using PeerId = std::uint32_t;
inline constexpr PeerId kNoPeer = 0;

}  // namespace p2pmesh
