#pragma once
// One peer of the mesh as a state machine (sans-IO). A driver feeds it events
// (server messages, link events, data, the passing of time) and carries out
// the actions it returns (subscribe, publish, open/close links, send, deliver,
// wake me at T). Every mesh decision is made here, so native peers, browser
// peers and the simulator behave identically.

#include <cstdint>
#include <deque>
#include <set>
#include <string>
#include <unordered_map>
#include <string_view>
#include <utility>
#include <vector>

#include "actions.hpp"
#include "announcement_batcher.hpp"
#include "broadcast_tree.hpp"
#include "clock.hpp"
#include "delivery_order.hpp"
#include "duplicate_filter.hpp"
#include "held_link_downs.hpp"
#include "link_policy.hpp"
#include "link_table.hpp"
#include "membership.hpp"
#include "message_history.hpp"
#include "mesh_counters.hpp"
#include "mesh_config.hpp"
#include "new_link_status.hpp"
#include "random.hpp"
#include "repair_buffer.hpp"
#include "status_pacing.hpp"
#include "wire.hpp"

namespace p2pmesh {

// Protocol feature level announced in our status (MeshStatusMessage.version).
// 1: message ids, keep-alive, RTTs; 2: gap repair (Packet.have / want);
// 3: a source's answer that a pulled message is gone (Packet.gone);
// 4: a link down said by one end ends the link (wire::kVersionLinkDownByOneEnd).
inline constexpr std::uint32_t kProtocolVersion = 4;


// How a broadcast travels (docs/broadcast.md). Reliable: each source's
// messages in order, exactly once, repaired or reported as a gap.
// Unreliable: down the same tree on an unordered channel without
// retransmission; duplicates dropped, nothing repaired, held or kept.
enum class DeliveryMode : std::uint8_t { reliable, unreliable };

class MeshNode {
 public:
  explicit MeshNode(MeshConfig config);
  // Parts of the node refer to its config: it stays where it was made.
  MeshNode(const MeshNode&) = delete;
  MeshNode& operator=(const MeshNode&) = delete;

  // ---- inputs ----
  // One binary WebSocket frame from the server (an encoded ServerMessage,
  // WIRE.md §1): the welcome or a topic message. False for a frame that does
  // not decode (dropped; the driver counts it with its frame counters).
  bool on_server_frame(TimeUs now, std::string_view frame);
  // The same two, decoded (the simulator's broker hands them over so).
  // The welcome (our id) subscribes and announces us.
  void on_welcome(TimeUs now, PeerId id, std::vector<IceServer> ice_servers = {});
  void on_topic_message(TimeUs now, std::string_view topic, PeerId sender, std::string_view body);
  // The server connection is gone. The server forgets us at once (the group
  // hears we left), so the node is done: every link closes and the app hears
  // each link and member go. A new connection needs a new MeshNode.
  void on_server_lost(TimeUs now);
  // The driver created the offer or answer of `link` ({"type":...,"sdp":...}).
  void on_local_description(TimeUs now, LinkId link, std::string description_json);
  // The driver gathered a local ICE candidate (RTCIceCandidateInit JSON).
  void on_local_candidate(TimeUs now, LinkId link, std::string candidate_json);
  void on_link_open(TimeUs now, LinkId link);
  // The link closed or failed (any reason, either side).
  void on_link_closed(TimeUs now, LinkId link);
  void on_link_data(TimeUs now, LinkId link, std::string_view bytes);
  // A round-trip time measured on the link (e.g. from transport stats).
  // Ignored on links the keep-alive pings: one consistent measure per link.
  void on_link_rtt(TimeUs now, LinkId link, std::uint32_t rtt_us);
  // The link's selected candidate pair is (now) of this type.
  void on_link_candidate_type(TimeUs now, LinkId link, CandidateType type);
  // A TURN server refused or did not answer a relay allocation (counted;
  // the link goes on with the candidates it has).
  void on_relay_allocation_failed(TimeUs now);
  void on_tick(TimeUs now);

  // ---- application ----
  // Sends `payload` to every member; returns its message id (seq, 0 when
  // message ids are off). A payload over config().max_payload_bytes is not
  // sent (counted; returns 0): drivers refuse it first with a clear error.
  // Unreliable broadcasts are numbered in a sequence of their own.
  std::uint64_t broadcast(TimeUs now, std::string payload,
                          DeliveryMode delivery = DeliveryMode::reliable);
  // Signed broadcasts (mesh_node_signatures.cpp, docs/security.md): the
  // driver's answers to SignBroadcast and VerifySignature. A signature for
  // our broadcast SignBroadcast `id` (empty: the driver could not sign; it
  // goes unsigned); broadcasts go out in order whatever order these come in.
  // `receiver_tags`: Packet.receiver_tags for SignBroadcast's receivers
  // (empty: none; receivers check the signature).
  void on_broadcast_signed(TimeUs now, std::uint64_t id, std::string signature,
                           std::string receiver_tags = {});
  // The signature check of VerifySignature `ticket`: valid, the packet is
  // delivered; not, it is dropped (counted) and a genuine copy still passes.
  void on_signature_checked(TimeUs now, std::uint64_t ticket, bool valid);
  // The group policy in force: our config's, or adopted from a member.
  bool requires_signatures() const { return require_signatures_; }
  // Extra JSON (an object) the app wants in its state reports (e.g. the demo's
  // ping figures); empty = none.
  void set_report_app_json(std::string json) { report_app_json_ = std::move(json); }
  // Leaves gracefully: tells the group, closes every link.
  void leave(TimeUs now);

  // One step of loading ahead what handling a mesh update that names `peer`
  // (its source, the peers it links to) reads first (warm.hpp): for
  // simulators, a few nodes ahead of the one at work.
  void warm_peer(PeerId peer, WarmStep step) const {
    if (step == WarmStep::tables) warm(this);
    membership_.warm_member(peer, step);
  }

  // Actions produced since the last call, in order.
  std::vector<Action> take_actions();
  bool has_actions() const { return !actions_.empty(); }

  // ---- reconnects ----
  // A driver that reconnects makes a new MeshNode (a new peer id) for the
  // same application: it reads where the application stands with each
  // source before the old node is told the server is gone, and hands that
  // to the new one before its welcome, so no message is delivered twice and
  // what was sent meanwhile is pulled (reliable sources only).
  std::vector<std::pair<PeerId, std::uint64_t>> delivery_positions() const {
    return order_.positions();
  }
  void resume_delivery(const std::vector<std::pair<PeerId, std::uint64_t>>& positions) {
    for (const auto& [source, next] : positions) order_.resume(source, next);
  }

  // ---- introspection (dashboards, tests) ----
  PeerId id() const { return self_; }
  const MeshConfig& config() const { return config_; }
  const Membership& membership() const { return membership_; }
  const LinkTable& links() const { return links_; }
  const MeshCounters& counters() const { return counters_; }
  // Gap repair's memory: the message history others may pull from, and
  // the messages waiting for older ones of their source.
  std::size_t history_bytes() const { return history_.bytes(); }
  std::size_t reorder_bytes() const { return order_.held_bytes(); }
  // The current broadcast tree from this peer (cached per view generation).
  const BroadcastTree& tree();

 private:
  void handle_mesh_update(TimeUs now, PeerId sender, std::string_view body);
  void handle_offer(TimeUs now, PeerId from, std::string_view body);
  void handle_answer(PeerId from, std::string_view body);
  void handle_candidate(PeerId from, std::string_view body);
  void handle_fallback(TimeUs now, PeerId sender, std::string_view body);
  void handle_packet(TimeUs now, PeerId via, const wire::Packet& packet, bool from_server);
  // Relays down the route; returns the peers it sent the packet to.
  std::vector<PeerId> forward(TimeUs now, const wire::Packet& packet);
  // ---- reliable delivery and gap repair (mesh_node_gap_repair.cpp) ----
  // Whether `source`'s messages go through the delivery order (and repair).
  bool ordered(PeerId source) const;
  // A packet seen for the first time: to the application, in order.
  void deliver(TimeUs now, PeerId via, const wire::Packet& packet, bool verified = false);
  void emit_ordered(std::vector<OrderedEvent>& events);
  // Tells neighbours outside the packet's tree that we have it.
  void announce(TimeUs now, const wire::Packet& packet, PeerId via,
                const std::vector<PeerId>& children);
  void send_due_announcements(TimeUs now);  // the batches AnnouncementBatcher says are due
  // Packet.have / want / gone from `from` (a neighbour, or via the server).
  void handle_repair_control(TimeUs now, PeerId from, const wire::Packet& packet);
  void serve_pulls(TimeUs now, PeerId puller, const std::vector<wire::MessageId>& ids);
  // A packet to `to`: over our link, else through the server (if it is a
  // member and fallback is on). False when neither.
  bool send_to_member(PeerId to, const wire::Packet& packet);
  void send_pulls(TimeUs now);
  bool speaks_gap_repair(PeerId peer) const { return membership_.version_of(peer) >= 2; }
  // Understands Packet.gone (an older peer would take it for a broadcast).
  bool hears_gone(PeerId peer) const { return membership_.version_of(peer) >= 3; }
  HopFilter hop_filter();
  // ---- signed broadcasts (mesh_node_signatures.cpp) ----
  // The tree (or flood) part of a broadcast, once its signature is known.
  // `number`: the seq, or the unreliable number, by `delivery`.
  void send_broadcast(TimeUs now, std::uint64_t number, DeliveryMode delivery, std::string payload,
                      std::string signature, std::string receiver_tags);
  // The members our broadcasts carry receiver tags for: every other member
  // with a key, while they are at most MeshConfig::max_receiver_tags.
  std::vector<TagReceiver> tag_receivers() const;
  // What a received packet's signature asks for, decided without crypto
  // before the duplicate filter (a forged copy must not hide the real one).
  // from_source: signed, and it came from its source itself (no check needed).
  enum class SignatureVerdict : std::uint8_t { unverified, check, from_source, drop };
  SignatureVerdict signature_verdict(const wire::Packet& packet, PeerId via);
  // Parks a packet (already forwarded) until its signature is checked.
  void check_signature(const wire::Packet& packet, PeerId via, std::vector<PeerId> children);
  // Relays a packet and tells neighbours outside its tree (gap repair).
  std::vector<PeerId> relay_on(TimeUs now, const wire::Packet& packet, PeerId via);
  void learn_signer(PeerId source, const wire::MeshStatus& status);
  // Sends a packet of the tree to `next`: on its link, else through the server.
  void send_down(TimeUs now, PeerId next, const wire::Packet& packet);
  // Re-sends what we sent a neighbour lately, when our link with it closed.
  void repair(TimeUs now, PeerId peer);
  // Repairs around a departed peer whose parent in a route we sent lately is
  // a reference relay (they do not repair), reached through reference relays.
  void repair_below_reference_relays(TimeUs now, PeerId gone);
  // Whether the nearest of our peers above `gone` in `packet`, which we send
  // (or sent) to `next`, is us: all relays from `next` down to gone's parent
  // are reference peers, which do not repair.
  bool repairs_fall_to_us(PeerId next, const wire::Packet& packet, PeerId gone) const;
  // Sends `packet` to the children `gone` has in its route, in its place;
  // around them too where they are gone, or (`may_have_it`: gone may have
  // relayed it already) where they cannot drop a repeat.
  void send_around(TimeUs now, const wire::Packet& packet, PeerId gone, bool may_have_it,
                   HopFilter& wanted);
  // Whether `peer` drops a repeated packet by its id (our protocol does).
  bool drops_repeats(PeerId peer) const { return membership_.version_of(peer) >= 1; }
  bool recently_departed(PeerId peer) const;
  // Forgets departed peers whose time has come (duplicate windows included).
  void forget_departed(TimeUs now);
  void forget_phantom_link(PeerId peer);  // emulate_reference only
  // Flooding baseline: to every open link but `except` and the source.
  void flood(const wire::Packet& packet, PeerId except);
  // Every publication goes through here: split to the server's topic limit,
  // dropped (and counted) over its size limit.
  void publish(std::vector<std::string> topics, std::string data);
  void publish_update(const wire::MeshUpdate& update);
  // The full status now (`paced`: only when StatusPacing says it is due).
  void publish_status(TimeUs now, bool paced = false);
  // Tells the neighbours our last seq when it moved since we last did.
  void announce_tail();
  void publish_link_change(wire::MeshUpdate::Kind kind, PeerId peer);
  // The status announcing the links we dialled, when NewLinkStatus says so.
  void publish_new_links(TimeUs now);
  void dial(TimeUs now);
  // Why a link goes: we chose to close it (the other end is alive as far as
  // we know), it closed or died by itself, or its peer left the group.
  enum class LinkEnd : std::uint8_t { ours, failed, peer_left };
  // Closes a link we decided to drop (tells the driver) or forgets one that
  // closed by itself; tells the group when it was open (see link_down).
  void drop_link(TimeUs now, LinkId id, bool tell_driver, LinkEnd why);
  // Our last link with `peer` went down: the group hears it now, after a
  // grace (HeldLinkDowns), or not at all (a departure notice says it all).
  void link_down(TimeUs now, PeerId peer, LinkEnd why);
  // Whether link downs may wait for departure notices (link_down_grace):
  // not with reference peers in the group, which keep a claim until its
  // maker withdraws it.
  bool link_downs_may_wait() const;
  // Whether `update` is the other end's word that it closed our link with
  // it, ending it in every view (every member of version >=
  // wire::kVersionLinkDownByOneEnd): then we say nothing of that link.
  bool other_end_ended_link(const wire::MeshUpdate& update) const;
  // Whether a status of ours listing `peer` went out within link_down_grace:
  // it may reach the server after the other end's word and put our claim
  // back in every view, so our own link down must follow after all.
  bool recently_claimed(PeerId peer, TimeUs now) const;
  // Publishes the held link downs whose grace ended.
  void publish_due_link_downs(TimeUs now);
  void peer_left(TimeUs now, PeerId peer);
  void expire_silent_members(TimeUs now);
  void schedule_wake();
  void emit(Action action) { actions_.push_back(std::move(action)); }

  // What every mesh update touches comes first, together: a simulator hands
  // each update to thousands of nodes in turn, and each node's state is cold
  // by then (fewer cache lines per update). The RNG's 2.5 KB state goes last.
  MeshConfig config_;
  PeerId self_ = kNoPeer;
  bool left_ = false;
  wire::DecodeLimits limits_;
  Membership membership_;
  LinkTable links_;
  LinkPolicy policy_;
  MeshCounters counters_;
  std::uint32_t status_id_ = 0;
  StatusPacing pacing_{0, 0};
  NewLinkStatus new_links_{0};
  std::uint64_t next_seq_ = 1;
  std::uint64_t tail_announced_ = 1;  // next_seq_ when announce_tail last ran
  std::uint64_t next_unreliable_seq_ = 1;
  TimeUs next_status_at_ = kNever;
  TimeUs next_report_at_ = kNever;
  TimeUs wake_requested_ = kNever;
  // No dialling before the group's snapshot is in (see dial()): until the
  // echo of our first status, or snapshot_wait after the welcome.
  TimeUs dial_from_ = 0;
  bool waiting_for_snapshot_ = false;
  std::vector<Action> actions_;
  HeldLinkDowns held_link_downs_;
  AnnouncementBatcher announcements_;

  DuplicateFilter duplicates_;
  DuplicateFilter unreliable_duplicates_;  // by Packet.unreliable_seq
  // Peers that left, until the time given: their duplicate windows are kept
  // (repaired copies of their last packets may still be on the way) and
  // routes naming them are served around them.
  std::deque<std::pair<TimeUs, PeerId>> recently_departed_;
  RepairBuffer repair_buffer_;
  MessageHistory history_;
  DeliveryOrder order_;
  // emulate_reference only: received links that closed, still claimed (and
  // routed over) as the reference does; and the link set of its last status.
  std::vector<PeerId> phantom_links_;
  std::vector<PeerId> last_status_links_;
  std::string report_app_json_;
  // Signed broadcasts: our broadcasts waiting for their signature (in seq
  // order), received packets waiting for their check, members' public keys,
  // ordered messages delivered unverified (their Deliver says so), policy.
  struct AwaitingSignature {
    std::uint64_t id = 0;      // SignBroadcast::id
    std::uint64_t number = 0;  // its seq, or unreliable number
    DeliveryMode delivery = DeliveryMode::reliable;
    std::string payload;
    std::string signature;
    std::string receiver_tags;
    bool signed_ = false;
  };

  std::deque<AwaitingSignature> awaiting_signature_;
  struct AwaitingCheck {
    std::uint64_t ticket = 0;
    PeerId via = kNoPeer;
    wire::Packet packet;
    std::vector<PeerId> children;
  };
  std::deque<AwaitingCheck> awaiting_check_;
  std::uint64_t next_ticket_ = 1;
  std::uint64_t next_signing_id_ = 1;
  std::unordered_map<PeerId, std::string> signer_keys_;
  std::set<std::pair<PeerId, std::uint64_t>> unverified_;
  bool require_signatures_ = false;
  BroadcastTree tree_;
  std::uint64_t tree_generation_ = UINT64_MAX;
  std::uint32_t limited_trees_in_row_ = 0;  // trees started limited (see tree())
  Random random_;
};

}  // namespace p2pmesh
