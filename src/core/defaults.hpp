#pragma once
// The defaults a user sees, in one place: MeshConfig (mesh_config.hpp), the
// native PeerConfig (include/p2pmesh/peer.hpp includes only this core header)
// and the browser's Mesh.join options (the bindings' defaultOptions()) take
// them from here. Plain constants: no other include.

#include <cstddef>
#include <cstdint>

namespace p2pmesh::defaults {

inline constexpr std::uint32_t kTargetConnections = 4;  // links a peer tries to hold
inline constexpr std::uint32_t kMaxConnections = 6;     // offers accepted up to this many
inline constexpr std::int64_t kLinkConnectTimeoutMs = 3500;
inline constexpr std::int64_t kStatusIntervalMs = 10'000;
// Reference peers re-publish their status every 60 s: 2.5 of their intervals.
inline constexpr std::int64_t kMemberTimeoutMs = 150'000;
inline constexpr double kTreeAlpha = 0.8;           // the blend tree (docs/broadcast.md)
inline constexpr std::uint32_t kTreeMaxDepth = 9;   // hops (8 relays)
inline constexpr bool kFallback = true;
inline constexpr bool kRequireSignatures = false;  // docs/security.md
// Receiver tags instead of signature checks in groups of at most this many
// other signing members (docs/security.md "Receiver tags").
inline constexpr std::uint32_t kMaxReceiverTags = 16;
// Per-link send queue bound (link_send_policy.hpp).
inline constexpr std::size_t kLinkQueueBound = 4u << 20;
// Reconnection after a lost server connection: doubles from the first delay
// up to the last, with +-25% jitter, along the URL list.
inline constexpr std::int64_t kReconnectInitialMs = 250;
inline constexpr std::int64_t kReconnectMaxMs = 8000;

}  // namespace p2pmesh::defaults
