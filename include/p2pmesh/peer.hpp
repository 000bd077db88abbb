#pragma once
// libp2pmesh: one native peer of a p2pmesh group, over real WebRTC data
// channels (Google libwebrtc) with meshd as the signaling server.
//
//   p2pmesh::PeerConfig config;
//   config.server_urls = {"ws://127.0.0.1:8000/service"};
//   config.group = "chat";
//   p2pmesh::PeerCallbacks callbacks;
//   callbacks.on_message = [](std::uint32_t from, const std::string& bytes) { ... };
//   p2pmesh::Peer peer(config, callbacks);
//   peer.start();
//   peer.broadcast("hello");
//   peer.stop();
//
// Threading: every Peer runs one event-loop thread of its own (started by
// start(), joined by stop()). All callbacks run on that thread, one at a time,
// in the order the mesh produced them. All Peers of a process share one WebRTC
// engine (three libwebrtc threads). Every member function documents from which
// threads it may be called.
//
// This header includes no libwebrtc or Boost header, and of the core only
// its defaults (<p2pmesh/core/defaults.hpp>: one place for every default).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "p2pmesh/core/defaults.hpp"
#include "p2pmesh/core/ice.hpp"

namespace p2pmesh {

// Peer ids are handed out by meshd (non-zero); 0 means "no peer".
using PeerId = std::uint32_t;

// Largest payload of one broadcast (48 KiB): it must fit through the server
// (64 KiB messages) with its route. Larger data: split it in the application.
inline constexpr std::size_t kMaxPayloadBytes = 48 * 1024;

struct PeerConfig {
  // WebSocket URLs of meshd, e.g. "ws://127.0.0.1:8000/service" or
  // "wss://mesh.example.org/service" (TLS; port 443 by default). Tried in
  // order (ws:// and wss:// may be mixed); after a failure or a lost
  // connection the next one is used, with backoff. wss:// verifies the
  // server's certificate, host name included, against the system's CA store
  // (and ca_file); a certificate that fails is a failed connection
  // (PeerError::server_unreachable with the reason), never unverified.
  std::vector<std::string> server_urls;
  // A PEM file of extra CAs trusted for wss:// besides the system's (a
  // private deployment's own CA); empty = the system's only. Read by the
  // constructor: std::invalid_argument when it cannot be.
  std::string ca_file;
  // meshd --auth-key: the JWT (docs/security.md), sent as `Authorization:
  // Bearer` on every connection; empty = none. Refused (HTTP 401): on_error
  // token_rejected and State::rejected, no retries with the same token;
  // Peer::set_token() replaces it (e.g. fresh from the application's auth
  // server) and connects again. Prefer wss://: the token is a credential.
  std::string token;
  std::string group = "default";

  // Signed broadcasts (docs/security.md). Every broadcast is signed with the
  // peer's Ed25519 key, whose public half goes out in its status (and, with
  // meshd --auth-key, must equal the token's `pk` claim). signing_key: the
  // 32-byte Ed25519 seed (private); empty = a fresh key pair for this Peer
  // (Peer::public_key() tells it). Anything but 0 or 32 bytes: the
  // constructor throws std::invalid_argument.
  std::string signing_key;
  // false: no key announced and broadcasts go unsigned (as a reference
  // peer's; members that require signatures drop them). For measurements
  // and groups that do not want the cost.
  bool sign_broadcasts = true;
  // Group policy: broadcasts of members that announced no key (peers of the
  // reference implementation) are dropped and counted too
  // (Counters::unsigned_dropped); badly signed ones, and unsigned ones of a
  // member that announced a key, always are. Announced in the status; a
  // peer adopts it when another member announces it. Without it, messages
  // of members without a key arrive with ReceivedMessage::verified false.
  bool require_signatures = defaults::kRequireSignatures;
  // In a group of at most this many other signing members, each broadcast
  // also carries a 16-byte tag per member (20 bytes on the wire each) that
  // the member checks instead of the signature, about 35x cheaper
  // (docs/security.md "Receiver tags"). 0: never; at most 64.
  std::uint32_t max_receiver_tags = defaults::kMaxReceiverTags;

  // Defaults: the core's (p2pmesh/core/defaults.hpp), as the browser's.
  std::uint32_t target_connections = defaults::kTargetConnections;  // links the peer tries to hold
  std::uint32_t max_connections = defaults::kMaxConnections;  // offers accepted up to this many
  // Full status re-published this often.
  std::chrono::milliseconds status_interval{defaults::kStatusIntervalMs};
  // A pending link is given up after this long.
  std::chrono::milliseconds link_connect_timeout{defaults::kLinkConnectTimeoutMs};
  // Silent members are forgotten after this long (0 = never).
  std::chrono::milliseconds member_timeout{defaults::kMemberTimeoutMs};

  // ICE servers, e.g. {"stun:stun.example.org:3478"} or {{"turn:turn.example.org:3478"},
  // "user", "password"}. Empty (the default): the ones meshd hands out in its
  // welcome (meshd --stun/--turn, TURN credentials fresh at every connection),
  // if any; set, they replace meshd's.
  std::vector<IceServer> ice_servers;
  // Peers the broadcast tree cannot reach get the packet through the server.
  bool fallback = defaults::kFallback;

  enum class TreeMode : std::uint8_t { unit, latency, blend };
  // Default: the blend over measured link RTTs (docs/broadcast.md); unit is
  // the reference's tree.
  TreeMode tree_mode = TreeMode::blend;
  double tree_alpha = defaults::kTreeAlpha;  // blend only: 0 = MST, 1 = shortest-path tree
  // latency and blend: no peer more than this many hops from the sender,
  // unless it is that far on the shortest path; -1 = no limit.
  int tree_max_depth = static_cast<int>(defaults::kTreeMaxDepth);

  // Gather only 127.0.0.1 candidates (tests, benchmarks, one-machine demos).
  // Otherwise every non-loopback interface is used, as a browser would.
  bool loopback_only = false;

  // Per-link send queue bound. Packets that do not fit are dropped and
  // counted (PeerSnapshot::Counters::send_queue_drops): a slow neighbour never
  // makes memory grow without bound.
  std::size_t max_link_queue_bytes = defaults::kLinkQueueBound;
  // Bound of bytes received on links and not yet handled (all links): past
  // it messages are dropped and counted (Counters::receive_drops).
  std::size_t max_inbound_bytes = 16u << 20;

  // Reconnect backoff after a lost or failed server connection: doubles from
  // the initial delay up to the maximum (with +-25% jitter).
  std::chrono::milliseconds reconnect_initial{defaults::kReconnectInitialMs};
  std::chrono::milliseconds reconnect_max{defaults::kReconnectMaxMs};

  // Seeds the mesh's random choices; 0 = from the system's entropy.
  std::uint64_t seed = 0;

  // Observers (the dashboard): a JSON state report published on
  // `<group>.report` every report_interval (0 = never), and, with
  // observer_commands, messages on `<group>.<id>.command` passed to
  // PeerCallbacks::on_observer_command.
  std::chrono::milliseconds report_interval{0};
  bool observer_commands = false;
};

// A copy of the peer's state at one moment (see Peer::snapshot()).
struct PeerSnapshot {
  enum class State : std::uint8_t {
    idle,          // not started
    connecting,    // connecting to the server (first time)
    joined,        // welcomed: has an id, in the group
    reconnecting,  // server connection lost; links closed; retrying
    stopped,       // stop() done
    rejected,      // the server refused the token: waits for set_token()
  };
  State state = State::idle;
  PeerId id = 0;           // 0 until welcomed; a new one after each reconnect
  std::string server_url;  // the URL in use (empty when not connected)
  // Why the last server connection failed or was lost (the reason given to
  // on_error), e.g. "TLS handshake with wss://... failed: certificate verify
  // failed (...)"; empty once a connection is welcomed.
  std::string last_error;
  std::uint64_t reconnects = 0;

  std::vector<PeerId> members;  // every other peer of the group it knows, sorted

  struct Link {
    PeerId peer = 0;
    bool initiated = false;  // this peer sent the offer
    bool open = false;       // data channel open (else still connecting)
    std::uint32_t rtt_us = 0;  // 0 = not measured
    std::chrono::milliseconds age{0};
    std::size_t queued_bytes = 0;  // waiting in this link's send queue
    // The path of the selected ICE candidate pair: host (direct), srflx/prflx
    // (through a NAT mapping), relay (through TURN: costs the operator
    // bandwidth); unknown until ICE has chosen (p2pmesh/core/ice.hpp).
    CandidateType candidate_type = CandidateType::unknown;
    // The second data channel (unreliable broadcasts) is open; it opens on
    // the first unreliable broadcast that crosses the link, from either end.
    bool unreliable_channel = false;
  };
  std::vector<Link> links;

  // The mesh as this peer sees it: undirected links (a < b), sorted.
  struct Edge {
    PeerId a = 0;
    PeerId b = 0;
  };
  std::vector<Edge> mesh;

  // Its current broadcast tree (directed parent -> child) and the peers the
  // tree reaches (without itself), sorted.
  struct TreeEdge {
    PeerId parent = 0;
    PeerId child = 0;
  };
  std::vector<TreeEdge> tree;
  std::vector<PeerId> reachable;

  struct Counters {
    // From the mesh core: every one of its counters, in its order, named as
    // in the state reports (docs/native.md). Per session: they start again at
    // 0 with the new id after a reconnect.
    // Drops, by reason.
    std::uint64_t malformed_packets = 0;     // undecodable packets
    std::uint64_t bad_routes = 0;            // route not a tree rooted at the source
    std::uint64_t misrouted_packets = 0;     // not sent by our parent in the route
    std::uint64_t duplicate_packets = 0;     // (source, seq) seen before
    std::uint64_t malformed_updates = 0;     // undecodable mesh status updates
    std::uint64_t forged_updates = 0;        // status of another peer than its sender
    std::uint64_t stale_updates = 0;         // status not newer than the last one
    std::uint64_t bad_signals = 0;           // offer/answer/candidate that fits no link
    std::uint64_t foreign_topics = 0;        // topic of another group or unknown form
    std::uint64_t dropped_hops = 0;          // route children we cannot reach (not
                                             // linked, not members, or over budget)
    std::uint64_t oversized_broadcasts = 0;  // payloads over kMaxPayloadBytes (0: broadcast() throws first)
    std::uint64_t oversized_publishes = 0;   // publications over the server's message limit
    // Traffic and link life.
    std::uint64_t broadcasts = 0;
    std::uint64_t delivered = 0;
    std::uint64_t relayed = 0;               // packets forwarded on links
    std::uint64_t fallback_sent = 0;         // packets sent through the server
    std::uint64_t fallback_received = 0;
    std::uint64_t offers_refused = 0;
    std::uint64_t links_opened = 0;
    std::uint64_t links_timed_out = 0;       // not open within link_connect_timeout
    std::uint64_t links_dead = 0;            // keep-alive silent too long
    std::uint64_t repaired = 0;              // packets re-sent after their link closed (to the
                                             // neighbour through the server, or to its children)
    std::uint64_t links_dropped_for_room = 0;
    std::uint64_t relay_allocation_failures = 0;  // TURN refused or unreachable (e.g. expired
                                                  // credentials): links go without relay
    // Reliable delivery and gap repair (docs/broadcast.md).
    std::uint64_t held_for_order = 0;      // messages that waited for older ones of their source
    std::uint64_t gaps = 0;                // on_gap events: messages lost for good
    std::uint64_t late_after_gap = 0;      // copies that came after their gap was reported
    std::uint64_t seq_jumps = 0;           // seqs implausibly far ahead, dropped
    std::uint64_t announcements_sent = 0;  // "I have" messages to neighbours
    std::uint64_t pulls_sent = 0;          // requests for missing messages
    std::uint64_t pulls_served = 0;        // copies sent to peers that asked
    std::uint64_t pulls_unanswerable = 0;  // asked for what this peer no longer holds
    // Signed broadcasts (docs/security.md).
    std::uint64_t unsigned_dropped = 0;    // unsigned from a member with a key; or (require_
                                           // signatures) from one without
    std::uint64_t bad_signatures = 0;      // signature did not verify (forged or altered)
    std::uint64_t verify_backlog_drops = 0;  // too many packets awaiting their check
    std::uint64_t signatures_checked = 0;    // signed packets checked (by the driver: receiver
                                             // tag or Ed25519, below)
    std::uint64_t signatures_from_source = 0;  // signed, straight from their source: no check
    // From the driver (cumulative over reconnects).
    std::uint64_t send_queue_drops = 0;    // packets dropped: link queue full
    std::uint64_t receive_drops = 0;       // link messages dropped: max_inbound_bytes waiting
    std::uint64_t server_frames_in = 0;
    std::uint64_t server_frames_out = 0;
    std::uint64_t bad_server_frames = 0;   // undecodable frames from the server
    std::uint64_t link_failures = 0;       // WebRTC errors (bad SDP, failed ICE...)
    std::uint64_t link_bytes_in = 0;
    std::uint64_t link_bytes_out = 0;
    // Checks of signed packets answered by the source's receiver tag for
    // this peer (no Ed25519 check; docs/security.md) / tags that did not
    // check out (the signature was checked instead).
    std::uint64_t receiver_tags_checked = 0;
    std::uint64_t receiver_tags_failed = 0;
  };
  Counters counters;
};

const char* to_string(PeerSnapshot::State state);

// Calls visit(name, value) for every counter: the core's (named as in the
// state reports, in camelCase in the browser), then the driver's. The
// non-const form sets counters by name. mesh-peer prints them so.
namespace detail {
template <class Counters, class Visit>
void visit_peer_counters(Counters& c, Visit& visit) {
  static_assert(sizeof(PeerSnapshot::Counters) == 47 * sizeof(std::uint64_t),
                "a counter was added to PeerSnapshot::Counters: list it here too");
  visit("malformed_packets", c.malformed_packets);
  visit("bad_routes", c.bad_routes);
  visit("misrouted_packets", c.misrouted_packets);
  visit("duplicate_packets", c.duplicate_packets);
  visit("malformed_updates", c.malformed_updates);
  visit("forged_updates", c.forged_updates);
  visit("stale_updates", c.stale_updates);
  visit("bad_signals", c.bad_signals);
  visit("foreign_topics", c.foreign_topics);
  visit("dropped_hops", c.dropped_hops);
  visit("oversized_broadcasts", c.oversized_broadcasts);
  visit("oversized_publishes", c.oversized_publishes);
  visit("broadcasts", c.broadcasts);
  visit("delivered", c.delivered);
  visit("relayed", c.relayed);
  visit("fallback_sent", c.fallback_sent);
  visit("fallback_received", c.fallback_received);
  visit("offers_refused", c.offers_refused);
  visit("links_opened", c.links_opened);
  visit("links_timed_out", c.links_timed_out);
  visit("links_dead", c.links_dead);
  visit("repaired", c.repaired);
  visit("links_dropped_for_room", c.links_dropped_for_room);
  visit("relay_allocation_failures", c.relay_allocation_failures);
  visit("held_for_order", c.held_for_order);
  visit("gaps", c.gaps);
  visit("late_after_gap", c.late_after_gap);
  visit("seq_jumps", c.seq_jumps);
  visit("announcements_sent", c.announcements_sent);
  visit("pulls_sent", c.pulls_sent);
  visit("pulls_served", c.pulls_served);
  visit("pulls_unanswerable", c.pulls_unanswerable);
  visit("unsigned_dropped", c.unsigned_dropped);
  visit("bad_signatures", c.bad_signatures);
  visit("verify_backlog_drops", c.verify_backlog_drops);
  visit("signatures_checked", c.signatures_checked);
  visit("signatures_from_source", c.signatures_from_source);
  visit("send_queue_drops", c.send_queue_drops);
  visit("receive_drops", c.receive_drops);
  visit("server_frames_in", c.server_frames_in);
  visit("server_frames_out", c.server_frames_out);
  visit("bad_server_frames", c.bad_server_frames);
  visit("link_failures", c.link_failures);
  visit("link_bytes_in", c.link_bytes_in);
  visit("link_bytes_out", c.link_bytes_out);
  visit("receiver_tags_checked", c.receiver_tags_checked);
  visit("receiver_tags_failed", c.receiver_tags_failed);
}
}  // namespace detail
template <class Visit>
void for_each_counter(const PeerSnapshot::Counters& counters, Visit&& visit) {
  detail::visit_peer_counters(counters, visit);
}
template <class Visit>
void for_each_counter(PeerSnapshot::Counters& counters, Visit&& visit) {
  detail::visit_peer_counters(counters, visit);
}

// Something went wrong, with the reason in words (for logs and users). The
// peer goes on by itself: it reconnects (backoff, next URL) and re-links.
struct PeerError {
  enum class Kind : std::uint8_t {
    server_unreachable,  // no connection to a server (refused, timed out, bad handshake,
                         // TLS certificate not trusted)
    server_lost,         // the server connection closed after the welcome
    link_failed,         // a WebRTC link failed or closed (ICE, DTLS, SCTP, far end)
    send_queue_full,     // a link's send queue is full: packets to `peer` are dropped
                         // (once per episode: again after the queue has drained)
    token_rejected,      // meshd (--auth-key) refused the token (HTTP 401: expired, invalid,
                         // no groups...): the peer stops retrying (State::rejected) until
                         // set_token() gives it another one
    relay_unavailable,   // a TURN server refused or did not answer a relay allocation
                         // (e.g. expired credentials): links that need a relay will not
                         // form (once per server session; every failure is counted in
                         // Counters::relay_allocation_failures)
  };
  Kind kind;
  std::string reason;  // e.g. "connect: Connection refused", "data channel closed"
  PeerId peer = 0;     // link_failed: the far end
};
const char* to_string(PeerError::Kind kind);

// Callbacks run on the peer's loop thread. They may call broadcast(),
// snapshot() and id() of the same Peer, but never stop() or the destructor.
// Keep them short: the mesh waits while they run. Any may be left empty.
// A message as the application gets it (PeerCallbacks::on_received).
struct ReceivedMessage {
  PeerId source = 0;
  // Its number at the source (Peer::broadcast returned it there); 0 when the
  // source sends none (a peer of the reference implementation).
  std::uint64_t seq = 0;
  // Delivery mode: reliable messages of a source come in the order sent,
  // exactly once, or after an on_gap naming those that were lost for good;
  // unreliable ones (BroadcastOptions::reliable false) as they came, never
  // held behind a reliable one.
  bool reliable = true;
  // Signed by the source's announced key and the signature (or the source's
  // receiver tag for this peer, docs/security.md) checked out; or it came
  // straight from the source. False: unsigned (a reference peer) or the
  // source announced no key; never false under require_signatures (such
  // messages are dropped).
  bool verified = false;
  std::string bytes;
};

// How a broadcast travels (docs/native.md has the guarantees of each mode).
struct BroadcastOptions {
  // true: each receiver gets a source's messages in the order sent, exactly
  // once, or an on_gap; a lost packet is retransmitted or pulled again, and
  // later messages of the source wait for it.
  // false (real-time state: positions, cursors): down the same tree on a
  // second data channel per link, unordered, never retransmitted; at most
  // once, as it comes, no gap events: a loss is a message that never comes,
  // and nothing waits for it. Numbered apart (ReceivedMessage::seq).
  bool reliable = true;
};

struct PeerCallbacks {
  // A broadcast from `source` (each message once; a source's reliable
  // messages in the order it sent them).
  std::function<void(PeerId source, const std::string& bytes)> on_message;
  // The same with its seq and delivery mode; when set, it is called instead
  // of on_message.
  std::function<void(const ReceivedMessage& message)> on_received;
  // Messages from_seq..to_seq of `source` were lost for good (no peer could
  // repair them): the messages of `source` that follow come next.
  std::function<void(PeerId source, std::uint64_t from_seq, std::uint64_t to_seq)> on_gap;
  // A peer entered / left this peer's view of the group.
  std::function<void(PeerId peer)> on_peer_joined;
  std::function<void(PeerId peer)> on_peer_left;
  // The first data channel with `peer` opened / the last one closed.
  std::function<void(PeerId peer)> on_link_up;
  std::function<void(PeerId peer)> on_link_down;
  // The state changed; `id` is the current id (0 unless joined).
  std::function<void(PeerSnapshot::State state, PeerId id)> on_state;
  // A message on `<group>.<id>.command` (PeerConfig::observer_commands);
  // `from` is the server-stamped sender.
  std::function<void(PeerId from, const std::string& body)> on_observer_command;
  // A failure the peer recovers from by itself, with its reason.
  std::function<void(const PeerError& error)> on_error;
};

class Peer {
 public:
  // Throws std::invalid_argument when the config is unusable (no URL, an URL
  // that is not ws[s]://host[:port]/path, a ca_file that cannot be read,
  // max < target...). Any thread.
  explicit Peer(PeerConfig config, PeerCallbacks callbacks = {});
  // Calls stop(). Not from a callback.
  ~Peer();
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  // Movable (not from a callback); a moved-from Peer may only be destroyed
  // or assigned to. Assigning stops the Peer assigned to first.
  Peer(Peer&&) noexcept;
  Peer& operator=(Peer&&) noexcept;

  // Starts the loop thread and connects to the server. Once; any thread
  // (not a callback). Throws std::logic_error when called twice.
  void start();

  // A new token (meshd --auth-key) for the next connections; after a
  // rejection (State::rejected) it also connects again. Any thread.
  void set_token(std::string token);

  // Leaves gracefully: tells the group, closes every link and the server
  // connection (waits at most ~1 s for the server to take the goodbye), then
  // joins the loop thread. Idempotent. Any thread except the loop thread
  // (throws std::logic_error there). The browser's Mesh.leave(); stop() is
  // the same.
  void leave();
  void stop();

  // Sends `payload` to every member of the group (each receives it once,
  // reliably: in order, or an on_gap; or, with options.reliable = false,
  // at most once, as it comes: see BroadcastOptions). Returns its seq (what
  // receivers see in ReceivedMessage::seq; they number from 1 each session,
  // reliable and unreliable messages apart), or 0 when the peer is not
  // joined (the message is dropped). Thread-safe; from another
  // thread it waits for the loop to take the message (a few microseconds
  // when idle). Links whose send queue is full drop it:
  // on_error(send_queue_full) says so. Throws std::length_error for a
  // payload over kMaxPayloadBytes.
  std::uint64_t broadcast(std::string payload, BroadcastOptions options = {});

  // The peer's state. Thread-safe; from another thread it waits for the loop
  // (a few microseconds when idle).
  PeerSnapshot snapshot() const;

  // Sets the "app" member of the state reports (a JSON value; empty = null).
  // Kept across reconnects. Thread-safe, non-blocking. The browser's
  // Mesh.setReportInfo(object); set_report_app_json() is the same.
  void set_report_info(std::string json);
  void set_report_app_json(std::string json);

  // The current id (0 when not joined). Thread-safe, non-blocking.
  PeerId id() const;

  // This peer's Ed25519 public key (32 bytes), which signs its broadcasts
  // (PeerConfig::signing_key): what a token's `pk` claim must hold.
  // Thread-safe, non-blocking.
  std::string public_key() const;

  // Waits until the peer is joined, up to `timeout`. Not from a callback.
  bool wait_joined(std::chrono::milliseconds timeout) const;

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace p2pmesh
