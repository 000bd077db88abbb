#pragma once
// Every tunable of a peer, with its default in this one place. Drivers expose
// them as flags, env vars and API fields.

#include <cstdint>
#include <string>

#include "broadcast_tree.hpp"
#include "clock.hpp"
#include "defaults.hpp"

namespace p2pmesh {

// Largest broadcast payload: it must fit a server message (64 KiB) with a
// route beside it (fallback), and a data channel message (256 KiB in browsers).
inline constexpr std::uint32_t kDefaultMaxPayloadBytes = 48 * 1024;

struct MeshConfig {
  std::string group = "default";
  std::uint32_t target_connections = defaults::kTargetConnections;  // links a peer tries to hold
  std::uint32_t max_connections = defaults::kMaxConnections;  // offers accepted up to this many
  // A pending link is given up after this long.
  TimeUs link_connect_timeout = defaults::kLinkConnectTimeoutMs * kMillisecond;
  // A newcomer dials once the server's snapshot of the group is in: when the
  // echo of its first status arrives (it follows the snapshot), or after
  // this long for a server that does not echo.
  TimeUs snapshot_wait = 1 * kSecond;
  TimeUs status_interval = defaults::kStatusIntervalMs * kMillisecond;  // full status re-published
  // Status pacing (StatusPacing, docs/membership.md): at each interval a full
  // status goes out only when it says something new (RTTs past a threshold,
  // the next broadcast seq; links are announced as they change), plus an
  // unchanged refresh every max(status_interval, members / status_refresh_per_s)
  // seconds: the group's refreshes at this rate in all. 0: every interval.
  double status_refresh_per_s = 10;
  // Mesh updates may come from the server this late, several in one frame
  // (SubscribeRequest.batch_ms; meshd sends an update at once when it sent
  // none in the last window): in a large group a member gets a few frames a
  // second, whatever the churn (docs/membership.md). 0: one frame each.
  TimeUs server_batch = 200 * kMillisecond;
  // A link that closed by itself is announced (disconnected_from) only after
  // this grace, and not at all if meshd's departure notice of the other end
  // comes meanwhile: that notice already removes the peer and its links from
  // every view. Ours close links with departed peers on the notice without
  // announcing them either. Published at once when the other end shows it is
  // alive, and always in groups with reference peers (their views keep a
  // claim until its maker withdraws it). meshd sends the notice within a
  // second of the socket closing, plus up to a server_batch window: 2 s
  // covers both (docs/membership.md, "Link downs"). 0: at once, as before.
  TimeUs link_down_grace = 2 * kSecond;
  // Links we dial to peers of our protocol are announced together in one
  // status once their first RTTs are in (one round trip after opening) and
  // no dial of ours is still connecting, at most this long after the first
  // opened (NewLinkStatus; docs/membership.md, "New links in one status").
  // 0: a connected_to per link at once, as before.
  TimeUs new_link_wait = 1 * kSecond;
  // A member we hear nothing from for this long (and have no link with) is
  // forgotten. Covers servers without departure notices; 0 disables.
  TimeUs member_timeout = defaults::kMemberTimeoutMs * kMillisecond;
  // A peer that refused or dropped a link is not picked again for this long.
  TimeUs candidate_backoff = 10 * kSecond;
  // Keep-alive on links with peers of our protocol (version >= 1): a ping
  // every interval measures the RTT; a link silent for the timeout is dead.
  // One ping a second: half a second doubled an idle peer's CPU (0.4% -> 0.7%).
  TimeUs ping_interval = 1000 * kMillisecond;
  TimeUs dead_link_timeout = 2 * kSecond;
  // Links with reference peers get no pings: their RTT (for weighted trees)
  // comes from the transport, asked for this often (MeasureRtt actions).
  TimeUs transport_rtt_interval = 10 * kSecond;
  // How a broadcast spreads: source-routed down the tree (the design), or
  // flooded to every neighbour with duplicates dropped by message id (the
  // gossip baseline mesh-sim compares against).
  enum class Spread : std::uint8_t { tree, flood };
  Spread spread = Spread::tree;
  // Broadcast tree: the Prim-Dijkstra blend over measured link RTTs, at most
  // 9 hops deep (8 relays) unless the mesh is wider than that: the winner of
  // mesh-sim's comparison (docs/broadcast.md).
  TreeOptions tree{.mode = TreeMode::blend,
                   .alpha = defaults::kTreeAlpha,
                   .max_depth = defaults::kTreeMaxDepth};
  bool prune_routes = true;  // send each child only its path + subtree
  bool fallback = defaults::kFallback;  // peers the tree cannot reach get packets via the server
  // Repair: a relay whose route names a child it has no open link with (it
  // just closed) sends that child its packet through the server instead.
  bool relay_fallback = true;
  // Repair: packets sent to a neighbour in the last `repair_window` are re-sent
  // to its children when it turns out gone (repair_buffer.hpp). 0 = off.
  TimeUs repair_window = 3 * kSecond;
  bool message_ids = true;  // Packet.seq on our broadcasts (reference peers: none)
  // Reliable delivery (docs/broadcast.md, "Delivery guarantees"): each
  // source's messages reach the application in order, exactly once, or as
  // an explicit gap; lost ones are pulled (gap repair). Applies to sources of
  // our protocol version 2 and up; others are delivered as they come.
  bool reliable_delivery = true;
  // Gap repair: a peer tells its neighbours outside the message's tree which
  // messages it has (Packet.have: a few bytes each) so that one whose copy
  // was lost learns of it; after `pull_delay` without it, the peer pulls it
  // from the source (which sends it with the subtree below the puller) or
  // from a neighbour that has it, after `pull_interval`, then backing off
  // (doubling) up to `max_pull_interval`; the application gets a gap when
  // the source answers that it no longer holds the message, when the source
  // leaves, or when the hole is `history_age` old (no peer holds a copy).
  bool announce_messages = true;
  // A link's announcements go out at once when it sent none within this
  // window, else together at its end (AnnouncementBatcher). 0 = one packet
  // per announcement.
  TimeUs announce_window = 20 * kMillisecond;
  TimeUs pull_delay = 30 * kMillisecond;
  TimeUs pull_interval = 250 * kMillisecond;
  TimeUs max_pull_interval = 2 * kSecond;
  // What a peer keeps for others to pull: every message it sent or received,
  // for this long, within this many bytes (payload + route).
  TimeUs history_age = 20 * kSecond;
  std::uint32_t history_bytes = 2u << 20;
  // Messages that came before older ones of their source wait, within these
  // bounds (beyond them the oldest hole becomes a gap).
  std::uint32_t reorder_max_per_source = 256;
  std::uint32_t reorder_max_bytes = 4u << 20;
  // Signed broadcasts (docs/security.md). `public_key`: our Ed25519 public
  // key (32 bytes), announced in our status; set, every broadcast waits for
  // the driver's signature (SignBroadcast). Empty: unsigned (the simulator).
  std::string public_key;
  // Group policy: broadcasts whose source announced no key are dropped and
  // counted too (badly signed ones, and unsigned ones of a source that
  // announced a key, always are). Announced in our status; a peer adopts it
  // when a member announces it (a policy only tightens). Without it messages
  // of sources without a key are delivered with verified = false.
  bool require_signatures = defaults::kRequireSignatures;
  // Receiver tags (docs/security.md): a signing source whose group has at
  // most this many other members with keys also tags each broadcast for
  // each of them (20 bytes per member on the wire), and they check the tag
  // instead of the signature. 0: never (every receiver checks signatures).
  std::uint32_t max_receiver_tags = defaults::kMaxReceiverTags;
  // Received packets waiting for the driver's signature check, at most.
  std::uint32_t max_pending_verifications = 1024;
  // A full peer admits a peer short of links by dropping one of its own
  // (keeps the overlay low-diameter); the reference refuses offers when full.
  bool admit_when_full = true;
  std::uint32_t max_route_edges = 4096;
  std::uint32_t max_packet_bytes = 1 << 20;
  // The server's limits (meshd's defaults): a publish names at most this many
  // topics (more are split) and fits one WebSocket message (a bigger one
  // would cost the connection: it is dropped and counted instead).
  std::uint32_t max_topics_per_publish = 16;
  std::uint32_t max_server_message_bytes = 64 * 1024;
  std::uint32_t max_payload_bytes = kDefaultMaxPayloadBytes;
  std::uint64_t seed = 1;  // randomness (candidate picks) is seeded
  // Observers: every interval the node publishes its state report (JSON, see
  // state_report.hpp) on `<group>.report`. 0 = never.
  TimeUs report_interval = 0;
  // Observers may send this peer commands on `<group>.<id>.command`; they
  // reach the app as ObserverCommand actions (the demo's "send trace").
  bool observer_commands = false;
  std::string kind = "native";  // shown in reports: native, browser, sim
  // Test peers only (reference_like.hpp): behave at the wire like the
  // reference implementation, quirks included: status published before
  // subscribing and re-published with an unchanged id, version 0, no
  // keep-alive, no duplicate filter nor parent check, dials on a 30 s timer
  // only, and a received link that closed stays claimed (and used) for good.
  bool emulate_reference = false;

  // The only rules a config must follow (every driver reports these
  // messages): "" when valid, else the first problem, in words for people.
  std::string validate() const;
};

}  // namespace p2pmesh
