#pragma once
// What a MeshNode asks its driver to do. The driver carries these out and
// reports the outcome back as MeshNode inputs; it makes no decision itself.

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "clock.hpp"
#include "ice.hpp"
#include "peer_id.hpp"

namespace p2pmesh {

// Identifies one WebRTC connection attempt; unique within a MeshNode. Two
// links with the same peer may briefly coexist (both sides dialled).
using LinkId = std::uint64_t;

// Requests to the server (WIRE.md §1). Drivers write server_frame(action)
// (server_protocol.hpp) on the WebSocket; the simulator's broker takes them
// as they are.
// batch_ms (ours): the server may hold the topic's messages this long and
// send several in one frame (SubscribeRequest.batch_ms); 0: one per frame.
struct Subscribe {
  std::string topic;
  std::uint32_t batch_ms = 0;
};
// One publish_request: `body` goes to every topic (WIRE.md §1).
struct Publish { std::vector<std::string> topics; std::string body; };

// Create a connection to `peer` as the initiator: a data channel `data`, an
// offer; report it with MeshNode::on_local_description.
struct OpenLink { LinkId link; PeerId peer; };
// Answer `offer_json` ({"type":"offer","sdp":...}) from `peer`; report the
// answer with MeshNode::on_local_description.
struct AcceptLink { LinkId link; PeerId peer; std::string offer_json; };
// Apply the remote answer ({"type":"answer","sdp":...}).
struct ApplyAnswer { LinkId link; std::string answer_json; };
// Add a remote ICE candidate (RTCIceCandidateInit JSON). The driver queues it
// until the remote description is set.
struct AddCandidate { LinkId link; std::string candidate_json; };
struct CloseLink { LinkId link; };
// Send one Packet (already encoded) on an open link's data channel; with
// `unreliable`, on its second channel (label `unreliable`, unordered, no
// retransmission), which the driver opens on first use and the far end
// accepts. Until that channel is open the driver may use the first one.
struct SendOnLink {
  LinkId link;
  std::string bytes;
  bool unreliable = false;
};
// Measure the link's round-trip time with the transport (ICE candidate pair
// stats) and report it with MeshNode::on_link_rtt; the keep-alive cannot
// ping this link (a reference peer). Drivers that cannot measure ignore it.
struct MeasureRtt { LinkId link; };

// The server's STUN/TURN servers, with credentials fresh for this
// connection (the welcome): links opened from now on use them, unless the
// application configured ICE servers of its own. Emitted at each welcome.
struct UseIceServers { std::vector<IceServer> servers; };

// Signed broadcasts (docs/security.md). The core holds no key and does no
// crypto: the driver signs and verifies with Ed25519 and reports back.
// Sign `message` (broadcast_signing_bytes of our broadcast `seq`) with our
// key; report with MeshNode::on_broadcast_signed(id) (the broadcast waits).
// `seq` is the broadcast's number in its mode (for the driver's reports).
// With `receivers` (a small group, MeshConfig::max_receiver_tags), also
// answer each one's receiver tag of `message` (signed_broadcast.hpp); a
// driver that cannot answers none, and receivers check the signature.
struct TagReceiver {
  PeerId peer;
  std::string public_key;  // its Ed25519 key, from its status
};
struct SignBroadcast {
  std::uint64_t id;
  std::uint64_t seq;
  std::string message;
  std::vector<TagReceiver> receivers{};
};
// Check `signature` over `message` with `public_key` (the source's, from its
// status); report with MeshNode::on_signature_checked (delivery waits).
// With `receiver_tag` (the source's tag for us), a driver may check that
// instead, the signature only when the tag does not check out.
struct VerifySignature {
  std::uint64_t ticket;
  std::string public_key;
  std::string message;
  std::string signature;
  std::string receiver_tag{};
};

// Application events.
// A message of `source`. `seq` is its number at the source (0: the source
// sends none, a reference peer); reliable messages of a source come in seq
// order, exactly once (docs/broadcast.md).
struct Deliver {
  PeerId source;
  std::string payload;
  std::uint64_t seq = 0;
  bool reliable = true;
  // Signed by the source's announced key, and the signature (or our
  // receiver tag) checked out, or it came straight from the source.
  // False: unsigned (a reference peer) or the source's key is unknown.
  bool verified = false;
};
// Messages from_seq..to_seq of `source` were lost for good (no peer could
// repair them): the application hears so instead of silence. Later messages
// of the source follow.
struct Gap { PeerId source; std::uint64_t from_seq; std::uint64_t to_seq; };
struct PeerJoined { PeerId peer; };
struct PeerLeft { PeerId peer; };
struct LinkUp { PeerId peer; };
struct LinkDown { PeerId peer; };

// A request from an observer (MeshConfig::observer_commands), for the app.
struct ObserverCommand { PeerId from; std::string body; };

// Call MeshNode::on_tick at `at` (replaces any earlier request).
// Pushed rather than queried (quinn's next_wake() shape): the node emits one
// only when its deadline changes, so a driver re-arms its timer rarely,
// where a query would be asked after every input by every driver (the
// simulator's 10,000 nodes included). The price is one line per driver: a
// timer that fires for a replaced WakeAt is ignored (compare `at`).
struct WakeAt { TimeUs at; };

using Action = std::variant<Subscribe, Publish, OpenLink, AcceptLink, ApplyAnswer, AddCandidate,
                            CloseLink, SendOnLink, MeasureRtt, UseIceServers, Deliver, Gap, PeerJoined,
                            PeerLeft, LinkUp, LinkDown, ObserverCommand, WakeAt, SignBroadcast,
                            VerifySignature>;

// Drivers carry actions out with std::visit over one handler per kind:
//   std::visit(Overloaded{[&](Subscribe& a) {...}, [&](Publish& a) {...}, ...}, action);
// so an action kind added here fails to compile in every driver until each
// one handles it (a catch-all `auto&` handler would defeat that: use none).
template <class... Handlers>
struct Overloaded : Handlers... {
  using Handlers::operator()...;
};
template <class... Handlers>
Overloaded(Handlers...) -> Overloaded<Handlers...>;

}  // namespace p2pmesh
