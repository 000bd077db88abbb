#include "mesh_node.hpp"

#include <algorithm>
#include <iterator>
#include <utility>

#include "candidate_envelope.hpp"
#include "link_keepalive.hpp"
#include "reference_like.hpp"
#include "routing.hpp"
#include "signed_broadcast.hpp"
#include "state_report.hpp"
#include "topics.hpp"

namespace p2pmesh {

namespace {
// Protobuf framing of a publish_request (ClientMessage + its fields) around
// the data, and per topic: a bound, so size checks err on the safe side.
constexpr std::size_t kPublishOverhead = 16;
constexpr std::size_t kPublishOverheadPerTopic = 3;
// Sources of packets that are not (yet) members the duplicate filter keeps.
constexpr std::size_t kUnknownSourceSlack = 256;
}  // namespace

MeshNode::MeshNode(MeshConfig config)
    : config_(std::move(config)),
      membership_(kNoPeer),
      policy_(kNoPeer, config_),
      pacing_(config_.status_interval, config_.emulate_reference ? 0 : config_.status_refresh_per_s),
      new_links_(config_.emulate_reference ? 0 : config_.new_link_wait),
      repair_buffer_(config_.repair_window, 1024, 8u << 20),
      history_(config_.history_age, config_.history_bytes),
      order_(DeliveryOrderLimits{.pull_delay = config_.pull_delay,
                                 .pull_interval = config_.pull_interval,
                                 .max_pull_interval = config_.max_pull_interval,
                                 .give_up_after = config_.history_age,
                                 .max_held_per_source = config_.reorder_max_per_source,
                                 .max_held_bytes = config_.reorder_max_bytes}),
      require_signatures_(config_.require_signatures),
      random_(config_.seed) {
  limits_.max_message_bytes = config_.max_packet_bytes;
  limits_.max_edges = config_.max_route_edges;
}

void MeshNode::on_welcome(TimeUs now, PeerId id, std::vector<IceServer> ice_servers) {
  if (self_ != kNoPeer || id == kNoPeer) return;  // one welcome per connection
  self_ = id;
  if (!ice_servers.empty()) emit(UseIceServers{std::move(ice_servers)});
  membership_ = Membership(id);
  policy_ = LinkPolicy(id, config_);
  // The reference announces itself before it subscribes.
  if (config_.emulate_reference) publish_status(now);
  // A reference peer takes one update per frame.
  const auto batch_ms = static_cast<std::uint32_t>(
      config_.emulate_reference ? 0 : config_.server_batch / kMillisecond);
  emit(Subscribe{mesh_topic(config_.group), batch_ms});
  for (const SignalKind kind :
       {SignalKind::offer, SignalKind::answer, SignalKind::candidate, SignalKind::fallback}) {
    emit(Subscribe{peer_topic(config_.group, self_, kind)});
  }
  if (config_.observer_commands) {
    emit(Subscribe{peer_topic(config_.group, self_, SignalKind::command)});
  }
  if (!config_.emulate_reference) publish_status(now);
  next_status_at_ = now + config_.status_interval;
  if (config_.report_interval > 0) next_report_at_ = now;
  dial_from_ = now + (config_.emulate_reference ? kReferenceDialInterval : config_.snapshot_wait);
  waiting_for_snapshot_ = true;
  schedule_wake();
}

bool MeshNode::on_server_frame(TimeUs now, std::string_view frame) {
  wire::ServerMessage message;
  wire::DecodeLimits limits = limits_;
  // A frame holds a topic message around the largest body we accept.
  limits.max_message_bytes = config_.max_packet_bytes + 4096;
  if (wire::decode(frame, message, limits) != wire::DecodeError::none) return false;
  switch (message.kind) {
    case wire::ServerMessage::Kind::welcome:
      on_welcome(now, message.welcome_id, std::move(message.ice_servers));
      break;
    case wire::ServerMessage::Kind::topic_batch:
      for (const wire::BatchEntry& entry : message.batch)
        on_topic_message(now, message.topic, entry.sender, entry.body);
      break;
    default: on_topic_message(now, message.topic, message.sender, message.body); break;
  }
  return true;
}

void MeshNode::on_server_lost(TimeUs /*now*/) {
  if (left_) return;
  left_ = true;  // nothing more is sent: the server is gone, links close
  if (self_ == kNoPeer) return;  // never joined: nothing to tell
  std::vector<PeerId> up = links_.open_peers();
  std::vector<LinkId> ids;
  for (const Link& link : links_.all()) ids.push_back(link.id);
  for (const LinkId id : ids) {
    links_.erase(id);
    emit(CloseLink{id});
  }
  for (const PeerId peer : up) {
    membership_.set_local_link(peer, false);
    emit(LinkDown{peer});
  }
  for (const PeerId peer : membership_.members()) emit(PeerLeft{peer});
  wake_requested_ = kNever;
  emit(WakeAt{kNever});
}

void MeshNode::on_topic_message(TimeUs now, std::string_view topic, PeerId sender,
                                std::string_view body) {
  if (self_ == kNoPeer || left_) return;
  const auto parsed = parse_topic(config_.group, topic);
  if (!parsed || (!parsed->is_mesh && parsed->peer != self_)) {
    ++counters_.foreign_topics;
    return;
  }
  if (parsed->is_mesh) {
    handle_mesh_update(now, sender, body);
  } else if (sender == self_ || sender == kNoPeer) {
    ++counters_.bad_signals;
  } else {
    switch (parsed->kind) {
      case SignalKind::offer: handle_offer(now, sender, body); break;
      case SignalKind::answer: handle_answer(sender, body); break;
      case SignalKind::candidate: handle_candidate(sender, body); break;
      case SignalKind::fallback: handle_fallback(now, sender, body); break;
      case SignalKind::command:
        if (config_.observer_commands) emit(ObserverCommand{sender, std::string(body)});
        else ++counters_.foreign_topics;
        break;
    }
  }
  schedule_wake();
}

void MeshNode::handle_mesh_update(TimeUs now, PeerId sender, std::string_view body) {
  // Decoded into one update per thread, whose lists keep their capacity:
  // every member decodes every update, a simulator's 10,000 of them in turn
  // (two allocations and frees each otherwise). Nothing here re-enters.
  static thread_local wire::MeshUpdate update;
  if (wire::decode(body, update, limits_) != wire::DecodeError::none) {
    ++counters_.malformed_updates;
    return;
  }
  if (update.source == self_) {
    // Our own, echoed by the server. The first echo of the status we sent
    // after subscribing comes after the server's snapshot of the group: every
    // member is known now, so picks are uniform over all of them.
    if (sender == self_ && dial_from_ > now && !config_.emulate_reference) {
      dial_from_ = now;
      dial(now);
    }
    return;
  }
  if (update.source != sender) {
    ++counters_.forged_updates;
    return;
  }
  if (other_end_ended_link(update) && !recently_claimed(update.source, now)) {
    // It closed the link and told everyone: nothing to add, also if we see
    // the close only later.
    held_link_downs_.release(update.source);
    if (links_.has_any_with(update.source)) {
      held_link_downs_.said_by_other_end(update.source, now + config_.link_down_grace);
    }
  } else if (!update.left && held_link_downs_.release(update.source)) {
    // It speaks, so it is alive: the link failed between two live peers.
    // (Its word that it closed the link, if any, stays: a status it sends
    // meanwhile does not make our link down needed.)
    publish_link_change(wire::MeshUpdate::Kind::disconnected_from, update.source);
  }
  const Membership::Outcome outcome = membership_.apply(update, now);
  if (outcome.ignored) {
    ++counters_.stale_updates;
    return;
  }
  if (update.kind == wire::MeshUpdate::Kind::status) {
    learn_signer(update.source, update.status);
    for (const Link& link : links_.all()) {
      if (link.peer == update.source) links_.find(link.id)->peer_version = update.status.version;
    }
    // Where we start waiting for its messages, in order (the first status
    // we hear of a source that says its next seq: not meshd's snapshot, but
    // its first after joining, or its next); in later ones, the messages it
    // sent that never reached us.
    if (update.status.next_seq != 0 && ordered(update.source) &&
        !order_.status_said(now, update.source, update.status.next_seq, outcome.first_next_seq)) {
      ++counters_.seq_jumps;
    }
  }
  if (outcome.joined != kNoPeer) emit(PeerJoined{outcome.joined});
  if (outcome.left != kNoPeer) peer_left(now, outcome.left);
  dial(now);
}

void MeshNode::handle_offer(TimeUs now, PeerId from, std::string_view body) {
  if (membership_.add_member(from, now)) emit(PeerJoined{from});
  const LinkPolicy::OfferDecision decision = policy_.on_offer(from, links_, membership_, random_, now);
  if (!decision.accept) {
    ++counters_.offers_refused;
    return;
  }
  if (decision.close) {
    const Link* closing = links_.find(*decision.close);
    if (closing && closing->peer != from) {
      ++counters_.links_dropped_for_room;
      policy_.back_off(closing->peer, now);
    }
    drop_link(now, *decision.close, true, LinkEnd::ours);
  }
  const LinkId link = links_.create(from, false, now);
  emit(AcceptLink{link, from, std::string(body)});
}

void MeshNode::handle_answer(PeerId from, std::string_view body) {
  const Link* link = links_.find(from, true);
  if (!link || link->state != LinkState::connecting) {
    ++counters_.bad_signals;
    return;
  }
  emit(ApplyAnswer{link->id, std::string(body)});
}

void MeshNode::handle_candidate(PeerId from, std::string_view body) {
  const auto envelope = unwrap_candidate(body);
  const Link* link = nullptr;
  if (envelope && envelope->initiator == self_) link = links_.find(from, true);
  if (envelope && envelope->initiator == from) link = links_.find(from, false);
  if (!link) {
    ++counters_.bad_signals;
    return;
  }
  emit(AddCandidate{link->id, std::string(envelope->candidate_json)});
}

void MeshNode::on_local_description(TimeUs /*now*/, LinkId id, std::string description_json) {
  const Link* link = links_.find(id);
  if (!link || left_) return;
  const SignalKind kind = link->initiated ? SignalKind::offer : SignalKind::answer;
  publish({peer_topic(config_.group, link->peer, kind)}, std::move(description_json));
  schedule_wake();
}

void MeshNode::on_local_candidate(TimeUs /*now*/, LinkId id, std::string candidate_json) {
  const Link* link = links_.find(id);
  if (!link || left_) return;
  const PeerId initiator = link->initiated ? self_ : link->peer;
  publish({peer_topic(config_.group, link->peer, SignalKind::candidate)},
          wrap_candidate(candidate_json, initiator));
  schedule_wake();
}

void MeshNode::on_link_open(TimeUs now, LinkId id) {
  Link* link = links_.find(id);
  if (!link || link->state == LinkState::open) return;
  const bool first = links_.open_link_to(link->peer) == nullptr;
  link->state = LinkState::open;
  link->opened_at = now;
  link->last_heard_at = now;
  link->next_ping_at = now;  // measure the RTT at once
  link->peer_version = membership_.version_of(link->peer);
  ++counters_.links_opened;
  const PeerId peer = link->peer;
  if (first) {
    if (membership_.add_member(peer, now)) emit(PeerJoined{peer});
    forget_phantom_link(peer);
    held_link_downs_.forget(peer);  // up again: the group never heard it go
    membership_.set_local_link(peer, true, link->rtt_us);
    // One side's claim puts a link in every view (WIRE.md §3): the dialler
    // announces it, halving the group-wide updates a new link costs, in a
    // status with its first RTT and our other new links (NewLinkStatus)
    // when the peer speaks our protocol. Our next status lists it anyway.
    // (Both dialled: both announce, as neither knows which link the other
    // keeps.) A reference dialler's claim alone is not credible
    // (membership.hpp): we confirm it. The reference announces all.
    const bool in_status = new_links_.hold(*link, links_, now);  // see publish_new_links
    if (!in_status && (link->initiated || links_.find(peer, true) ||
                       membership_.version_of(peer) == 0 || config_.emulate_reference)) {
      publish_link_change(wire::MeshUpdate::Kind::connected_to, peer);
    }
    emit(LinkUp{peer});
  }
  if (const auto loser = policy_.duplicate_to_close(peer, links_)) {
    drop_link(now, *loser, true, LinkEnd::ours);
  }
  schedule_wake();
}

void MeshNode::on_link_closed(TimeUs now, LinkId id) {
  const Link* link = links_.find(id);
  if (!link) return;
  if (link->state == LinkState::open && !links_.find(link->peer, !link->initiated)) {
    // The neighbour went away or dropped us: do not dial it again at once.
    policy_.back_off(link->peer, now);
  }
  drop_link(now, id, false, LinkEnd::failed);
  dial(now);
  schedule_wake();
}

void MeshNode::on_link_data(TimeUs now, LinkId id, std::string_view bytes) {
  Link* link = links_.find(id);
  if (!link || link->state != LinkState::open || left_) return;
  link->last_heard_at = now;
  wire::Packet packet;
  if (wire::decode(bytes, packet, limits_) != wire::DecodeError::none) {
    ++counters_.malformed_packets;
  } else if (packet.ping != 0) {
    emit(SendOnLink{id, wire::encode(make_pong(self_, packet))});
  } else if (packet.pong != 0) {
    if (const auto rtt = apply_pong(*link, packet, now)) {
      membership_.set_local_link(link->peer, true, *rtt);
      publish_new_links(now);
    }
  } else if (!packet.have.empty() || !packet.want.empty() || !packet.gone.empty()) {
    handle_repair_control(now, link->peer, packet);
  } else {
    handle_packet(now, link->peer, packet, false);
  }
  schedule_wake();
}

void MeshNode::on_link_rtt(TimeUs /*now*/, LinkId id, std::uint32_t rtt_us) {
  Link* link = links_.find(id);
  if (!link || speaks_keepalive(*link)) return;
  link->rtt_us = rtt_us;
  if (link->state == LinkState::open) membership_.set_local_link(link->peer, true, rtt_us);
  schedule_wake();
}

void MeshNode::on_link_candidate_type(TimeUs /*now*/, LinkId id, CandidateType type) {
  if (Link* link = links_.find(id)) link->candidate_type = type;
}

void MeshNode::on_relay_allocation_failed(TimeUs /*now*/) { ++counters_.relay_allocation_failures; }

void MeshNode::handle_packet(TimeUs now, PeerId via, const wire::Packet& packet,
                             bool from_server) {
  if (validate_route(packet, config_.max_route_edges) != RouteError::none) {
    ++counters_.bad_routes;
    return;
  }
  if (packet.source == self_) {
    ++counters_.duplicate_packets;  // our own broadcast came back
    return;
  }
  if (!from_server && config_.spread == MeshConfig::Spread::tree && !config_.emulate_reference) {
    // On a link the packet must come from our parent in its route (or from
    // its source directly): a neighbour cannot inject others' traffic.
    const auto into_us = std::find_if(packet.edges.begin(), packet.edges.end(),
                                      [this](const wire::Edge& e) { return e.v == self_; });
    const PeerId parent = into_us == packet.edges.end() ? packet.source : into_us->u;
    if (parent != via) {
      ++counters_.misrouted_packets;
      return;
    }
  } else if (from_server) {
    ++counters_.fallback_received;
  }
  if (packet.seq != 0 && packet.unreliable_seq != 0) {
    ++counters_.malformed_packets;  // one message, two numbers: neither can be trusted
    return;
  }
  const SignatureVerdict verdict = signature_verdict(packet, via);
  if (verdict == SignatureVerdict::drop) return;  // counted
  // Unreliable messages are numbered apart: a filter of their own.
  DuplicateFilter& filter = packet.unreliable_seq != 0 ? unreliable_duplicates_ : duplicates_;
  const std::uint64_t number = packet.unreliable_seq != 0 ? packet.unreliable_seq : packet.seq;
  // Members' ids are remembered; other sources (just joined, or forged) only
  // while few, so forged sources cannot grow the filter without bound.
  const bool remember = membership_.is_member(packet.source) ||
                        filter.sources() < membership_.member_count() + kUnknownSourceSlack;
  if (!config_.emulate_reference && !filter.first_time(packet.source, number, remember)) {
    ++counters_.duplicate_packets;
    return;
  }
  if (verdict == SignatureVerdict::from_source) ++counters_.signatures_from_source;
  if (verdict == SignatureVerdict::check) {
    // Relays forward at once (no crypto on the path); we deliver once the
    // driver has checked the signature.
    std::vector<PeerId> children = relay_on(now, packet, via);
    check_signature(packet, via, std::move(children));
    return;
  }
  deliver(now, via, packet, verdict == SignatureVerdict::from_source);
  if (config_.spread == MeshConfig::Spread::flood) {
    flood(packet, via);
  } else {
    announce(now, packet, via, forward(now, packet));
  }
}

void MeshNode::flood(const wire::Packet& packet, PeerId except) {
  std::string bytes;
  for (const Link& link : links_.all()) {
    if (link.state != LinkState::open || link.peer == except || link.peer == packet.source) continue;
    if (bytes.empty()) bytes = wire::encode(packet);
    if (except != kNoPeer) ++counters_.relayed;
    emit(SendOnLink{link.id, bytes});
  }
}

void MeshNode::handle_fallback(TimeUs now, PeerId sender, std::string_view body) {
  wire::Packet packet;
  // Through the server come broadcasts, pulls and a source's answers to
  // them (keep-alives are between neighbours).
  if (wire::decode(body, packet, limits_) != wire::DecodeError::none || packet.ping != 0 ||
      packet.pong != 0) {
    ++counters_.malformed_packets;
    return;
  }
  if (!packet.want.empty() || !packet.gone.empty() || !packet.have.empty()) {
    handle_repair_control(now, sender, packet);
    return;
  }
  handle_packet(now, sender, packet, true);
}

HopFilter MeshNode::hop_filter() {
  // Children we are linked with always get the packet; others only through
  // the server, if they are members, and at most max_connections of them (a
  // real tree gives us no more children than links): a hostile route cannot
  // make us copy or publish its payload without bound.
  return [this, budget = config_.relay_fallback ? config_.max_connections : 0u](
             PeerId next) mutable {
    if (next == self_ || links_.open_link_to(next)) return true;
    if (budget > 0 && membership_.is_member(next)) {
      --budget;
      return true;
    }
    ++counters_.dropped_hops;
    return false;
  };
}

std::vector<PeerId> MeshNode::forward(TimeUs now, const wire::Packet& packet) {
  HopFilter wanted = hop_filter();
  // A child that left before the packet came never got it: its children
  // get it from us (the source's view was older than ours).
  const auto takes = [&](PeerId next) { return recently_departed(next) || wanted(next); };
  std::vector<PeerId> children;
  for (const Hop& hop : plan_relay(packet, self_, config_.prune_routes, takes)) {
    children.push_back(hop.next);
    if (recently_departed(hop.next)) send_around(now, hop.packet, hop.next, false, wanted);
    else send_down(now, hop.next, hop.packet);
  }
  return children;
}

void MeshNode::send_down(TimeUs now, PeerId next, const wire::Packet& packet) {
  // Unreliable messages are never repaired: not kept for it either.
  const bool unreliable = packet.unreliable_seq != 0;
  const bool repairable = config_.repair_window > 0 && !unreliable;
  if (const Link* link = links_.open_link_to(next)) {
    ++counters_.relayed;
    // Our peers (version 2 on) take a second channel; a reference peer has
    // one only, and gets the packet there.
    emit(SendOnLink{link->id, wire::encode(packet), unreliable && link->peer_version >= 2});
    if (repairable) repair_buffer_.remember(now, next, packet);
  } else if (config_.relay_fallback && membership_.is_member(next)) {
    // The route names a link we no longer have: the server carries the
    // packet (with the child's subtree, so it relays on from there).
    ++counters_.fallback_sent;
    publish({peer_topic(config_.group, next, SignalKind::fallback)}, wire::encode(packet));
    // Kept too: should `next` turn out gone, its children get it from us.
    if (repairable) repair_buffer_.remember(now, next, packet);
  } else {
    return;
  }
  // Reference relays below drop what they cannot send on: the children of a
  // peer that already left get it from us instead.
  // (send_around only reads recently_departed_: no copy needed.)
  if (repairable && !drops_repeats(next)) {
    for (const auto& [until, gone] : recently_departed_) {
      if (!recently_departed(gone) || !repairs_fall_to_us(next, packet, gone)) continue;
      HopFilter wanted = hop_filter();
      send_around(now, packet, gone, false, wanted);
    }
  }
}

std::uint64_t MeshNode::broadcast(TimeUs now, std::string payload, DeliveryMode delivery) {
  if (self_ == kNoPeer || left_) return 0;
  if (payload.size() > config_.max_payload_bytes) {
    ++counters_.oversized_broadcasts;
    return 0;
  }
  const bool unreliable = delivery == DeliveryMode::unreliable;
  std::uint64_t& next = unreliable ? next_unreliable_seq_ : next_seq_;
  const std::uint64_t number = config_.message_ids ? next++ : 0;
  ++counters_.broadcasts;
  if (!config_.public_key.empty()) {  // it leaves once the driver has signed it
    const std::uint64_t id = next_signing_id_++;
    emit(SignBroadcast{id, number,
                       broadcast_signing_bytes(config_.group, self_, number, payload, unreliable),
                       tag_receivers()});
    awaiting_signature_.push_back({id, number, delivery, std::move(payload), {}, {}, false});
    return number;
  }
  send_broadcast(now, number, delivery, std::move(payload), {}, {});
  schedule_wake();  // announcements may wait for their batch
  return number;
}

void MeshNode::send_broadcast(TimeUs now, std::uint64_t number, DeliveryMode delivery,
                              std::string payload, std::string signature,
                              std::string receiver_tags) {
  // The packet carries the number in the field of its delivery mode.
  const bool unreliable = delivery == DeliveryMode::unreliable;
  const std::uint64_t seq = unreliable ? 0 : number;
  const std::uint64_t unreliable_seq = unreliable ? number : 0;
  const BroadcastTree& plan = tree();
  if (config_.spread == MeshConfig::Spread::flood) {
    wire::Packet packet;
    packet.source = self_;
    packet.payload = payload;
    packet.seq = seq;
    packet.unreliable_seq = unreliable_seq;
    packet.signature = signature;
    packet.receiver_tags = receiver_tags;
    flood(packet, kNoPeer);
  } else {
    std::vector<PeerId> children;
    for (Hop& hop : plan_broadcast(plan, payload, seq, config_.prune_routes)) {
      children.push_back(hop.next);
      hop.packet.unreliable_seq = unreliable_seq;
      hop.packet.signature = signature;
      hop.packet.receiver_tags = receiver_tags;
      send_down(now, hop.next, hop.packet);  // the tree only uses open links
    }
    if (seq != 0 && config_.reliable_delivery && !config_.emulate_reference) {
      // Kept with the whole tree: a puller gets the subtree below it too.
      wire::Packet own{self_, plan.edges, payload, seq};
      own.signature = signature;
      own.receiver_tags = receiver_tags;
      history_.remember(now, own);
      announce(now, own, kNoPeer, children);
    }
  }
  if (config_.fallback) {
    std::vector<PeerId> reached = plan.reached;
    std::sort(reached.begin(), reached.end());
    std::vector<std::string> topics;
    for (const PeerId member : membership_.members()) {
      if (!std::binary_search(reached.begin(), reached.end(), member)) {
        topics.push_back(peer_topic(config_.group, member, SignalKind::fallback));
      }
    }
    if (!topics.empty()) {
      counters_.fallback_sent += topics.size();
      wire::Packet packet;
      packet.source = self_;
      packet.payload = std::move(payload);
      packet.seq = seq;
      packet.unreliable_seq = unreliable_seq;
      packet.signature = std::move(signature);
      packet.receiver_tags = std::move(receiver_tags);
      publish(std::move(topics), wire::encode(packet));
    }
  }
  schedule_wake();
}

void MeshNode::leave(TimeUs now) {
  if (self_ == kNoPeer || left_) return;
  if (!config_.emulate_reference) {  // the reference just closes its socket
    wire::MeshUpdate update;
    update.source = self_;
    update.kind = wire::MeshUpdate::Kind::status;
    update.status.id = ++status_id_;
    update.status.version = kProtocolVersion;
    update.left = true;
    publish_update(update);
  }
  left_ = true;  // from here on nothing is sent, repairs included
  std::vector<LinkId> ids;
  for (const Link& link : links_.all()) ids.push_back(link.id);
  for (const LinkId id : ids) drop_link(now, id, true, LinkEnd::ours);
}

void MeshNode::on_tick(TimeUs now) {
  if (self_ == kNoPeer || left_) return;
  // Woken far behind the time we asked for: we were not run, so our links'
  // silence may be our own (their packets still queued), not theirs.
  const bool woke_late = wake_requested_ != kNever && now - wake_requested_ > config_.dead_link_timeout / 2;
  wake_requested_ = kNever;  // the wake we asked for has come
  if (woke_late && !config_.emulate_reference) forgive_own_stall(links_, config_, now);
  for (const LinkId id : policy_.timed_out(links_, now)) {
    if (const Link* link = links_.find(id)) policy_.back_off(link->peer, now);
    ++counters_.links_timed_out;
    drop_link(now, id, true, LinkEnd::ours);
  }
  if (!config_.emulate_reference) {  // the reference has no keep-alive
    const KeepAliveDue due = keepalive_due(links_, config_, now);
    for (const LinkId id : due.ping) emit(SendOnLink{id, wire::encode(make_ping(self_, now))});
    for (const LinkId id : due.measure) emit(MeasureRtt{id});
    for (const LinkId id : due.dead) {
      if (const Link* link = links_.find(id)) policy_.back_off(link->peer, now);
      ++counters_.links_dead;
      drop_link(now, id, true, LinkEnd::failed);
    }
  }
  policy_.expire_back_offs(now);
  forget_departed(now);
  publish_due_link_downs(now);
  publish_new_links(now);
  send_pulls(now);
  send_due_announcements(now);
  if (now >= next_status_at_) {
    publish_status(now, true);
    announce_tail();
    next_status_at_ = now + config_.status_interval;
    expire_silent_members(now);
  }
  if (now >= next_report_at_) {
    publish({report_topic(config_.group)}, state_report_json(*this, report_app_json_));
    next_report_at_ = now + config_.report_interval;
  }
  dial(now);
  schedule_wake();
}

void MeshNode::dial(TimeUs now) {
  // The server's snapshot of the group comes one member per message, in its
  // order (oldest first): dialling as they arrive would link every newcomer
  // to the same first few members, which then shed links to make room (a
  // storm of link changes) while the overlay stops being random.
  if (now < dial_from_) return;
  waiting_for_snapshot_ = false;
  if (config_.emulate_reference) dial_from_ = now + kReferenceDialInterval;  // its dial timer
  for (const PeerId peer : policy_.peers_to_dial(links_, membership_, random_, now)) {
    const LinkId link = links_.create(peer, true, now);
    emit(OpenLink{link, peer});
  }
}

void MeshNode::drop_link(TimeUs now, LinkId id, bool tell_driver, LinkEnd why) {
  const Link* link = links_.find(id);
  if (!link) return;
  const PeerId peer = link->peer;
  const bool was_open = link->state == LinkState::open;
  const bool received = !link->initiated;
  links_.erase(id);
  announcements_.forget(id);
  if (tell_driver) emit(CloseLink{id});
  if (was_open && !links_.open_link_to(peer) && config_.emulate_reference && received) {
    // The reference's bug: a received link that closed stays "established".
    if (std::find(phantom_links_.begin(), phantom_links_.end(), peer) == phantom_links_.end()) {
      phantom_links_.push_back(peer);
    }
    return;
  }
  // A link still waiting for our status: the group never heard of it from us.
  const bool announced = !new_links_.forget(id);
  if (was_open && !links_.open_link_to(peer)) {
    repair(now, peer);
    membership_.set_local_link(peer, false);  // our own view knows at once
    // After our `left` notice a link change would make us a member again.
    if (!left_ && announced) link_down(now, peer, why);
    emit(LinkDown{peer});
  }
}

bool MeshNode::link_downs_may_wait() const {
  return config_.link_down_grace > 0 && !config_.emulate_reference &&
         membership_.version0_member_count() == 0;
}

bool MeshNode::other_end_ended_link(const wire::MeshUpdate& update) const {
  return update.kind == wire::MeshUpdate::Kind::disconnected_from && update.peer == self_ &&
         !update.left && link_downs_may_wait() &&
         membership_.version_of(update.source) >= wire::kVersionLinkDownByOneEnd &&
         membership_.members_below_version(wire::kVersionLinkDownByOneEnd) == 0;
}

bool MeshNode::recently_claimed(PeerId peer, TimeUs now) const {
  return pacing_.listed_since(peer, now - config_.link_down_grace);
}

void MeshNode::link_down(TimeUs now, PeerId peer, LinkEnd why) {
  if (why == LinkEnd::ours || !link_downs_may_wait()) {
    publish_link_change(wire::MeshUpdate::Kind::disconnected_from, peer);
  } else if (why == LinkEnd::failed && (!held_link_downs_.take_said_by_other_end(peer, now) ||
                                         recently_claimed(peer, now))) {
    held_link_downs_.hold(peer, now + config_.link_down_grace);
  }
  // LinkEnd::peer_left: the departure notice removed the peer and every
  // link of it from every view (Membership::remove_member).
}

void MeshNode::publish_due_link_downs(TimeUs now) {
  for (const PeerId peer : held_link_downs_.take_due(now)) {
    // Still a member: a link between two live peers failed, the group must
    // hear it. A departed peer's notice said it all.
    if (membership_.is_member(peer) && !links_.open_link_to(peer)) {
      publish_link_change(wire::MeshUpdate::Kind::disconnected_from, peer);
    }
  }
}

void MeshNode::peer_left(TimeUs now, PeerId peer) {
  std::vector<LinkId> ids;
  for (const Link& link : links_.all()) {
    if (link.peer == peer) ids.push_back(link.id);
  }
  for (const LinkId id : ids) drop_link(now, id, true, LinkEnd::peer_left);
  held_link_downs_.forget(peer);  // the notice said it: nothing to add
  forget_phantom_link(peer);
  repair(now, peer);  // also what went through the server to it
  repair_below_reference_relays(now, peer);
  // Relays repair what they sent within repair_window once they notice a
  // child gone (up to dead_link_timeout): copies of the peer's last packets
  // may come that late, and must still be recognised as repeats.
  const TimeUs keep =
      config_.repair_window > 0 ? config_.repair_window + config_.dead_link_timeout : 0;
  if (!recently_departed(peer)) recently_departed_.emplace_back(now + keep, peer);
  forget_departed(now);
  policy_.forget(peer);
  emit(PeerLeft{peer});
}

void MeshNode::forget_phantom_link(PeerId peer) {
  const auto it = std::find(phantom_links_.begin(), phantom_links_.end(), peer);
  if (it == phantom_links_.end()) return;
  phantom_links_.erase(it);
  if (!links_.open_link_to(peer)) membership_.set_local_link(peer, false);
}

void MeshNode::expire_silent_members(TimeUs now) {
  if (config_.member_timeout <= 0) return;
  // Paced statuses: an unchanged member of a large group is silent longer.
  const TimeUs timeout =
      std::max(config_.member_timeout, pacing_.silence_allowed(membership_.member_count()));
  for (const PeerId peer : membership_.silent_since(now - timeout)) {
    if (links_.has_any_with(peer)) continue;
    membership_.remove_member(peer);
    peer_left(now, peer);
  }
}

void MeshNode::publish(std::vector<std::string> topics, std::string data) {
  // meshd drops a publish naming more topics than its limit whole, and closes
  // the connection on a frame over its size limit: split, or drop and count.
  const std::size_t per_publish = std::max<std::uint32_t>(1, config_.max_topics_per_publish);
  for (std::size_t first = 0; first < topics.size(); first += per_publish) {
    const std::size_t last = std::min(topics.size(), first + per_publish);
    std::size_t bytes = data.size() + kPublishOverhead;
    for (std::size_t i = first; i < last; ++i) bytes += topics[i].size() + kPublishOverheadPerTopic;
    if (bytes > config_.max_server_message_bytes) {
      ++counters_.oversized_publishes;
      continue;
    }
    std::vector<std::string> chunk(std::make_move_iterator(topics.begin() + first),
                                   std::make_move_iterator(topics.begin() + last));
    emit(Publish{std::move(chunk), last == topics.size() ? std::move(data) : data});
  }
}

void MeshNode::publish_update(const wire::MeshUpdate& update) {
  publish({mesh_topic(config_.group)}, wire::encode(update));
}

void MeshNode::publish_link_change(wire::MeshUpdate::Kind kind, PeerId peer) {
  wire::MeshUpdate update;
  update.source = self_;
  update.kind = kind;
  update.peer = peer;
  publish_update(update);
}

void MeshNode::publish_status(TimeUs now, bool paced) {
  wire::MeshUpdate update;
  update.source = self_;
  update.kind = wire::MeshUpdate::Kind::status;
  if (config_.emulate_reference) {
    // Version 0, no RTTs, phantoms listed, and a new id only when the links
    // changed: receivers that ignore equal ids hear nothing new.
    std::vector<PeerId> links = links_.open_peers();
    links.insert(links.end(), phantom_links_.begin(), phantom_links_.end());
    std::sort(links.begin(), links.end());
    links.erase(std::unique(links.begin(), links.end()), links.end());
    if (status_id_ == 0 || links != last_status_links_) ++status_id_;
    last_status_links_ = links;
    update.status.id = status_id_;
    update.status.connected_to = std::move(links);
    publish_update(update);
    return;
  }
  update.status.version = kProtocolVersion;
  if (config_.message_ids && config_.reliable_delivery) update.status.next_seq = next_seq_;
  update.status.public_key = config_.public_key;
  update.status.require_signatures = require_signatures_;
  for (const PeerId peer : links_.open_peers()) {
    update.status.connected_to.push_back(peer);
    const Link* link = links_.open_link_to(peer);
    update.status.rtt_us.push_back(link ? link->rtt_us : 0);
  }
  if (std::all_of(update.status.rtt_us.begin(), update.status.rtt_us.end(),
                  [](std::uint32_t rtt) { return rtt == 0; })) {
    update.status.rtt_us.clear();  // nothing measured: keep the message small
  }
  if (paced) {
    std::vector<PeerId> dialled;
    for (const PeerId peer : update.status.connected_to) {
      const Link* link = links_.open_link_to(peer);
      if (link && link->initiated) dialled.push_back(peer);
    }
    if (!pacing_.due(now, update.status, dialled)) return;
  }
  update.status.id = ++status_id_;
  pacing_.published(now, update.status, membership_.member_count(), random_);
  new_links_.published();
  publish_update(update);
}

void MeshNode::publish_new_links(TimeUs now) {
  if (new_links_.due(links_, now)) publish_status(now);
}

void MeshNode::schedule_wake() {
  const TimeUs dial_wake =
      waiting_for_snapshot_ || config_.emulate_reference ? dial_from_ : kNever;
  const TimeUs keepalive_wake =
      config_.emulate_reference ? kNever : next_keepalive_at(links_, config_);
  const TimeUs forget_wake = recently_departed_.empty() ? kNever : recently_departed_.front().first;
  const TimeUs at = std::min({next_status_at_, next_report_at_, policy_.next_deadline(links_),
                             keepalive_wake, dial_wake, forget_wake, order_.next_deadline(),
                             held_link_downs_.next_due(), announcements_.next_due(),
                             new_links_.deadline()});
  if (at != wake_requested_) {
    wake_requested_ = at;
    emit(WakeAt{at});
  }
}

const BroadcastTree& MeshNode::tree() {
  if (tree_generation_ != membership_.view_generation() || tree_.root != self_) {
    // A deep view stays deep: after a tree that broke the depth limit the
    // next goes straight to the limited one, but every kFullTreeEvery-th
    // checks again (the group may have shrunk).
    constexpr std::uint32_t kFullTreeEvery = 16;
    TreeOptions options = config_.tree;
    options.start_limited = tree_.root == self_ && tree_.depth_limited &&
                            ++limited_trees_in_row_ % kFullTreeEvery != 0;
    if (!options.start_limited) limited_trees_in_row_ = 0;
    tree_ = compute_broadcast_tree(membership_.view(), self_, options);
    tree_generation_ = membership_.view_generation();
  }
  return tree_;
}

std::vector<Action> MeshNode::take_actions() {
  std::vector<Action> out;
  out.swap(actions_);
  return out;
}

}  // namespace p2pmesh
