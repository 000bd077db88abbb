#pragma once
// The byte format meshd_fuzz reads and fuzz_seeds writes (with the Reader and
// Writer of mesh_node_script.hpp): a config header, then steps, each an
// opcode byte (modulo Step::count) and its fields. Reading past the end
// yields zeros, so any byte string is a script.
//
// Header: flags, max_subscriptions, max_topics_per_publish, outbound, strikes,
// rate, burst, frame, rate_delay (one byte each; see config_from() in
// meshd_fuzz.cpp). A client field is one byte: index into the live clients.
// A topic field is one byte (see topic_for() in meshd_fuzz.cpp), followed by
// a string when it asks for raw bytes.

#include <cstdint>

namespace p2pmesh::fuzz {

enum class Step : std::uint8_t {
  connect,      // u8 loop
  subscribe,    // client, topic
  unsubscribe,  // client, topic
  publish,      // client, u8 topic count, topics, payload (u8 kind, fields)
  raw,          // client, str: any binary frame
  text,         // client: a text frame
  disconnect,   // client: the socket goes away
  stall,        // client: stops (or starts again) reading what meshd sends it
  advance,      // u16 ms: time passes (held messages are offered again)
  turn,         // -: the end of an event loop turn (hand-over, writes, closes)
  count
};

// Header flag bits.
inline constexpr std::uint8_t kTwoLoops = 1;
inline constexpr std::uint8_t kOpen = 2;       // --open (no access rules)
inline constexpr std::uint8_t kTokens = 4;     // every client has a grant for g and h*
inline constexpr std::uint8_t kRate = 8;       // a rate limit (else unlimited)

// Topic byte: kind in the low 3 bits.
enum class TopicKind : std::uint8_t { mesh, own_channel, other_channel, report, raw, odd_id, long_topic, empty };
// Payload kinds of a publish.
enum class Payload : std::uint8_t { status, connected, disconnected, forged, left, raw, big, count };

}  // namespace p2pmesh::fuzz
