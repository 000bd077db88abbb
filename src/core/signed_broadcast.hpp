#pragma once
// Signed broadcasts (docs/security.md): what a source signs with its Ed25519
// key and receivers verify with the key of its status. The core only builds
// these bytes; drivers own the keys and the crypto (libsodium natively,
// WebCrypto in browsers), so the core stays crypto-free and builds for wasm.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "peer_id.hpp"

namespace p2pmesh {

inline constexpr std::size_t kPublicKeyBytes = 32;  // Ed25519
inline constexpr std::size_t kSignatureBytes = 64;

// The canonical bytes of broadcast (group, source, seq, payload), integers
// big-endian:
//   "p2pmesh broadcast v1" 0x00 | u32 len(group) | group | u32 source |
//   u64 seq | u32 len(payload) | payload
// The group binds a message to its group (no replay into another one), the
// source and seq to its sender and place (no replay as another message).
// An unreliable broadcast (numbered apart, Packet.unreliable_seq) signs
// "p2pmesh unreliable v1" 0x00 instead, then the same fields with its
// number as seq: neither mode's message passes for the other's.
std::string broadcast_signing_bytes(std::string_view group, PeerId source, std::uint64_t seq,
                                    std::string_view payload, bool unreliable = false);

}  // namespace p2pmesh
