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

// Receiver tags (Packet.receiver_tags, docs/security.md): in a small group
// the source also proves a broadcast to each receiver with a 16-byte tag
// under the key the two share (X25519 of their Ed25519 keys), which the
// receiver checks in about 2 us instead of the signature's 60-100. The core
// only lays the entries out; the driver computes and checks the tags.
inline constexpr std::size_t kReceiverTagBytes = 16;
inline constexpr std::size_t kReceiverTagEntryBytes = 4 + kReceiverTagBytes;
inline constexpr std::size_t kMaxReceiverTagEntries = 64;  // entries a packet may carry
// Appends `receiver`'s entry: its id (u32, big-endian), then `tag`.
void append_receiver_tag(std::string& tags, PeerId receiver, std::string_view tag);
// `receiver`'s tag in `tags`; empty when it has none, or when `tags` is not
// a whole number of entries (then no entry is trusted to be where it seems)
// or more than kMaxReceiverTagEntries (a relay's padding costs no scan).
std::string_view find_receiver_tag(std::string_view tags, PeerId receiver);

}  // namespace p2pmesh
