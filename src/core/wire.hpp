#pragma once
// Wire codec for every message of WIRE.md (protobuf proto3 encoding via
// protozero). Field numbers are a compatibility contract with the reference
// browser implementation; new behaviour only uses NEW optional fields, which
// old peers skip. See proto/mesh.proto for the schema.
//
// Decoding is strict and bounded: a truncated or hostile buffer yields a
// DecodeError, never a crash, and repeated fields are capped by DecodeLimits
// so a small buffer can never make us allocate without bound.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ice.hpp"
#include "peer_id.hpp"

namespace p2pmesh::wire {

struct Edge {
  PeerId u = kNoPeer;  // 1
  PeerId v = kNoPeer;  // 2
  friend bool operator==(const Edge&, const Edge&) = default;
};

// One broadcast message: its source and the source's seq (gap repair).
struct MessageId {
  PeerId source = kNoPeer;  // 1
  std::uint64_t seq = 0;    // 2
  friend bool operator==(const MessageId&, const MessageId&) = default;
};

struct Packet {
  PeerId source = kNoPeer;   // 1: original sender
  std::vector<Edge> edges;   // 2: broadcast tree (u -> v)
  std::string payload;       // 3: application bytes
  std::uint64_t seq = 0;     // 4 (ours, optional): per-source message id, 0 = absent
  // 5, 6 (ours, optional): link keep-alive. A packet with ping or pong set is
  // a control message between two neighbours, never delivered or relayed; it
  // is only sent to peers whose status announced version >= 1.
  std::uint64_t ping = 0;    // 5: the sender's clock (us) when sent
  std::uint64_t pong = 0;    // 6: the ping value being answered
  // 7, 8 (ours, optional): gap repair (message_history.hpp, delivery_order.hpp).
  // A packet with either set is a control message, never delivered or
  // relayed; only sent to peers whose status announced version >= 2.
  std::vector<MessageId> have{};  // 7: messages the sender holds (lazy announcement)
  std::vector<MessageId> want{};  // 8: messages the sender lacks (pull request)
  // 9 (ours, optional): Ed25519 signature (64 bytes) by the source over
  // broadcast_signing_bytes(group, source, seq, payload) (signed_broadcast.hpp);
  // empty = unsigned. Relays forward it unchanged.
  std::string signature{};
  // 10 (ours, optional): an unreliable broadcast's number at its source, in
  // a sequence of its own (seq stays 0: peers that do not know this field
  // take it for a message without id and deliver it as it comes).
  std::uint64_t unreliable_seq = 0;
  // 11 (ours, optional): the sender's answer to a pull of its own messages
  // that it no longer holds (history expired); the puller reports them as a
  // gap at once. A control message like have/want; only sent to peers whose
  // status announced version >= 3.
  std::vector<MessageId> gone{};
  // 12 (ours, optional): receiver tags, a cheaper proof than the signature
  // for small groups: entries of 20 bytes (u32 receiver id, big-endian, and
  // a 16-byte keyed BLAKE2b of the signed bytes under the key the source
  // shares with that receiver; signed_broadcast.hpp). Relays forward it
  // unchanged.
  std::string receiver_tags{};
  friend bool operator==(const Packet&, const Packet&) = default;
};

struct MeshStatus {
  std::vector<PeerId> connected_to;  // 1
  std::uint32_t id = 0;              // 2: grows per source
  // 3 (ours, optional): measured round-trip time in microseconds of each link,
  // parallel to connected_to (0 = unknown). Empty when not measured.
  std::vector<std::uint32_t> rtt_us;
  // 4 (ours, optional): protocol feature level of the sender; 0 = reference
  // peer. Lets our peers use extensions (e.g. link pings) only with peers that
  // understand them.
  std::uint32_t version = 0;
  // 5 (ours, optional): the seq the sender's next broadcast will carry (0 =
  // not said). A newcomer waits for its messages from there on, in order.
  std::uint64_t next_seq = 0;
  // 6 (ours, optional): the sender's Ed25519 public key (32 bytes), which
  // verifies its broadcasts' signatures; empty = it does not sign.
  std::string public_key{};
  // 7 (ours, optional): the sender enforces the group policy "signatures
  // required" (unsigned or badly signed broadcasts dropped); members adopt it.
  bool require_signatures = false;
  friend bool operator==(const MeshStatus&, const MeshStatus&) = default;
};

struct MeshUpdate {
  enum class Kind : std::uint8_t { none, connected_to, disconnected_from, status };
  PeerId source = kNoPeer;  // 1: the peer the update is about
  Kind kind = Kind::none;   // which member of the oneof is set
  PeerId peer = kNoPeer;    // 2 or 3 when kind is connected_to / disconnected_from
  MeshStatus status;        // 4 when kind is status
  // 5 (ours, optional): `source` has left the group (sent by meshd together
  // with an empty status so reference peers read it as "no links").
  bool left = false;
  friend bool operator==(const MeshUpdate&, const MeshUpdate&) = default;
};

// From this status version on, a member's `disconnected_from` ends the link
// in every view, the other end's claim included (and in meshd's snapshot):
// in a group where every member is of this version, a link one end closed is
// announced by that end only (docs/membership.md, "Link downs").
inline constexpr std::uint32_t kVersionLinkDownByOneEnd = 4;

using p2pmesh::IceServer;  // ice.hpp

// One message of a topic batch (a TopicMessage without its topic).
struct BatchEntry {
  PeerId sender = kNoPeer;  // 2
  std::string body;         // 3
  friend bool operator==(const BatchEntry&, const BatchEntry&) = default;
};

struct ServerMessage {
  enum class Kind : std::uint8_t { none, welcome, topic_message, topic_batch };
  Kind kind = Kind::none;
  PeerId welcome_id = kNoPeer;  // 1.1 when kind is welcome
  std::vector<IceServer> ice_servers;  // 1.2 (ours) when kind is welcome
  std::string topic;            // 2.1 when kind is topic_message; 3.1 when topic_batch
  PeerId sender = kNoPeer;      // 2.2
  std::string body;             // 2.3
  // 3.2 (ours) when kind is topic_batch: the topic's messages in the order
  // the server took them, for a subscriber that asked for batches.
  std::vector<BatchEntry> batch;
  friend bool operator==(const ServerMessage&, const ServerMessage&) = default;
};

struct ClientMessage {
  enum class Kind : std::uint8_t { none, subscribe, publish, unsubscribe };
  Kind kind = Kind::none;
  std::string topic;                // 1.1 / 3.1 when subscribe / unsubscribe
  std::uint32_t batch_ms = 0;       // 1.2 (ours): batches welcome, this late at most
  std::vector<std::string> topics;  // 2.1 when publish
  std::string payload;              // 2.2 when publish
  friend bool operator==(const ClientMessage&, const ClientMessage&) = default;
};

// Zero-copy view of a ClientMessage for the server's hot path: every
// string_view points into the decoded buffer and is valid while it lives.
struct ClientMessageView {
  ClientMessage::Kind kind = ClientMessage::Kind::none;
  std::string_view topic;
  std::uint32_t batch_ms = 0;
  std::vector<std::string_view> topics;
  std::string_view payload;
};

enum class DecodeError : std::uint8_t {
  none,
  malformed,      // truncated buffer, bad varint, wrong wire type for a known field
  too_many,       // a repeated field exceeds its limit
  too_large,      // the buffer or a string exceeds its size limit
  missing_field,  // no member of a required oneof is set
};
const char* to_string(DecodeError error);

struct DecodeLimits {
  std::size_t max_message_bytes = 1 << 20;
  std::size_t max_edges = 4096;
  std::size_t max_connected = 4096;
  std::size_t max_topics = 64;
  std::size_t max_message_ids = 256;     // Packet.have / Packet.want, each
  std::size_t max_ice_servers = 8;       // per welcome
  std::size_t max_ice_server_urls = 8;   // per ICE server
  std::size_t max_batch_entries = 4096;  // per topic batch
};

std::string encode(const Edge& edge);
std::string encode(const MessageId& id);
std::string encode(const Packet& packet);
std::string encode(const MeshStatus& status);
std::string encode(const MeshUpdate& update);
std::string encode(const ServerMessage& message);
std::string encode(const ClientMessage& message);

// Appends a complete ServerMessage{topic_message} to `out`; lets the server
// encode a publication once and share the bytes among all subscribers.
void append_topic_message(std::string& out, std::string_view topic, PeerId sender,
                          std::string_view body);
void append_welcome(std::string& out, PeerId id, const std::vector<IceServer>& ice_servers = {});
// A topic batch in two steps, so the server grows it message by message:
// append_batch_entry adds one message to `entries`; append_topic_batch
// appends the complete ServerMessage{topic_batch} holding them to `out`.
void append_batch_entry(std::string& entries, PeerId sender, std::string_view body);
// The bytes append_batch_entry adds.
std::size_t batch_entry_size(PeerId sender, std::string_view body);
void append_topic_batch(std::string& out, std::string_view topic, std::string_view entries);

DecodeError decode(std::string_view bytes, Edge& out, const DecodeLimits& limits = {});
DecodeError decode(std::string_view bytes, MessageId& out, const DecodeLimits& limits = {});
DecodeError decode(std::string_view bytes, Packet& out, const DecodeLimits& limits = {});
DecodeError decode(std::string_view bytes, MeshStatus& out, const DecodeLimits& limits = {});
DecodeError decode(std::string_view bytes, MeshUpdate& out, const DecodeLimits& limits = {});
DecodeError decode(std::string_view bytes, ServerMessage& out, const DecodeLimits& limits = {});
DecodeError decode(std::string_view bytes, ClientMessage& out, const DecodeLimits& limits = {});
DecodeError decode(std::string_view bytes, ClientMessageView& out,
                   const DecodeLimits& limits = {});

}  // namespace p2pmesh::wire
