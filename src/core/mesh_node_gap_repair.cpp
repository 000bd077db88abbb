// MeshNode's reliable delivery: each source's messages to the application in
// seq order, exactly once, or a gap; and gap repair, Plumtree style: every
// peer tells its neighbours outside a message's tree that it has it (a
// Packet.have of a few bytes), a peer that learns so of a message it lacks
// (or sees a hole in a source's seqs) pulls it (Packet.want) after a short
// grace, first from the source, which sends it with the whole subtree below
// the puller (one copy repairs the subtree a lost transmission cut off), or
// from a neighbour that has it. Sources and relays keep what they saw in a
// MessageHistory bounded by age and bytes; a source asked for one of its
// messages it no longer holds says so (Packet.gone), and the puller reports
// the gap at once. See docs/broadcast.md.

#include <algorithm>

#include "mesh_node.hpp"
#include "topics.hpp"

namespace p2pmesh {

namespace {
// Copies one pull can cost the peer that serves it (a pull names at most
// DeliveryOrder::kMaxSeqsPerPull ids of one source; a hostile one more).
constexpr std::size_t kMaxServedPerPull = DeliveryOrder::kMaxSeqsPerPull;
// A copy served to a peer reaches the peers below it within about this long;
// their pulls meanwhile are not served (the pullers of a subtree cut off by
// one lost transmission ask at about the same time). A later pull is served:
// the copy may have gone to a peer that had it already, which drops it.
constexpr TimeUs kCoverWindow = 150 * kMillisecond;
}  // namespace

bool MeshNode::ordered(PeerId source) const {
  return config_.reliable_delivery && !config_.emulate_reference && source != self_ &&
         speaks_gap_repair(source);
}

void MeshNode::deliver(TimeUs now, PeerId via, const wire::Packet& packet, bool verified) {
  if (packet.unreliable_seq != 0) {  // as it comes: no order, no history
    ++counters_.delivered;
    emit(Deliver{packet.source, packet.payload, packet.unreliable_seq, false, verified});
    return;
  }
  if (packet.seq == 0 || !ordered(packet.source)) {
    ++counters_.delivered;
    emit(Deliver{packet.source, packet.payload, packet.seq, true, verified});
    return;
  }
  history_.remember(now, packet);
  std::vector<OrderedEvent> events;
  // What waits in the order is verified but for these (rare: no policy, and
  // no key announced or no signature).
  const std::pair<PeerId, std::uint64_t> id{packet.source, packet.seq};
  if (!verified) unverified_.insert(id);
  switch (order_.accept(now, packet.source, packet.seq, packet.payload, via,
                        membership_.said_next_seq(packet.source), events)) {
    case DeliveryOrder::Outcome::delivered: break;
    case DeliveryOrder::Outcome::held: ++counters_.held_for_order; break;
    case DeliveryOrder::Outcome::late: ++counters_.late_after_gap; unverified_.erase(id); break;
    case DeliveryOrder::Outcome::jump: ++counters_.seq_jumps; unverified_.erase(id); break;
  }
  emit_ordered(events);
}

void MeshNode::emit_ordered(std::vector<OrderedEvent>& events) {
  for (OrderedEvent& event : events) {
    if (event.kind == OrderedEvent::Kind::message) {
      ++counters_.delivered;
      const bool verified =
          unverified_.empty() || unverified_.erase({event.source, event.seq}) == 0;
      emit(Deliver{event.source, std::move(event.payload), event.seq, true, verified});
    } else {
      ++counters_.gaps;
      emit(Gap{event.source, event.seq, event.to_seq});
    }
  }
  events.clear();
}

void MeshNode::announce(TimeUs now, const wire::Packet& packet, PeerId via,
                        const std::vector<PeerId>& children) {
  if (!config_.announce_messages || packet.seq == 0 || config_.emulate_reference ||
      !config_.reliable_delivery || (packet.source != self_ && !ordered(packet.source))) {
    return;
  }
  for (const Link& link : links_.all()) {
    if (link.state != LinkState::open || link.peer_version < 2 || link.peer == via ||
        link.peer == packet.source || links_.open_link_to(link.peer) != &link ||
        std::find(children.begin(), children.end(), link.peer) != children.end()) {
      continue;
    }
    announcements_.add(now, config_.announce_window, link.id, {packet.source, packet.seq});
  }
  send_due_announcements(now);
}

void MeshNode::send_due_announcements(TimeUs now) {
  for (auto& [id, ids] : announcements_.take_due(now)) {
    const Link* link = links_.find(id);
    if (!link || link->state != LinkState::open) continue;
    wire::Packet have;
    have.source = self_;
    have.have = std::move(ids);
    ++counters_.announcements_sent;
    emit(SendOnLink{id, wire::encode(have)});
  }
}

void MeshNode::announce_tail() {
  // The last messages before a source falls silent: no later message shows
  // their loss (a burst dropped by a full send queue, say), and the paced
  // status may not say next_seq for long. A `have` of the last seq to each
  // neighbour of our protocol does; they pull what they lack, or report a gap.
  if (!config_.reliable_delivery || config_.emulate_reference || !config_.message_ids ||
      next_seq_ == 1 || tail_announced_ == next_seq_) {
    return;
  }
  tail_announced_ = next_seq_;
  wire::Packet have;
  have.source = self_;
  have.have.push_back({self_, next_seq_ - 1});
  const std::string bytes = wire::encode(have);
  for (const Link& link : links_.all()) {
    if (link.state != LinkState::open || link.peer_version < 2 ||
        links_.open_link_to(link.peer) != &link) {
      continue;
    }
    ++counters_.announcements_sent;
    emit(SendOnLink{link.id, bytes});
  }
}

void MeshNode::handle_repair_control(TimeUs now, PeerId from, const wire::Packet& packet) {
  for (const wire::MessageId& id : packet.have) {
    // The source on itself: what it has sent so far (its answer to a pull of
    // messages it never sent, or its tail). Announcements of later seqs by
    // others were early or forged.
    if (id.source == from && ordered(from)) order_.source_sent_up_to(now, from, id.seq);
    if (id.seq == 0 || !ordered(id.source) || duplicates_.seen(id.source, id.seq)) continue;
    if (!order_.announce(now, id.source, id.seq, from, membership_.said_next_seq(id.source))) {
      ++counters_.seq_jumps;
    }
  }
  if (!packet.want.empty()) serve_pulls(now, from, packet.want);
  // Only the source can say its message is gone (`from` is the link's peer
  // or the sender the server stamped): nobody else can make us skip it.
  std::vector<OrderedEvent> events;
  for (const wire::MessageId& id : packet.gone) {
    if (id.source == from && ordered(id.source)) order_.gone(now, id.source, id.seq, events);
  }
  emit_ordered(events);
}

bool MeshNode::send_to_member(PeerId to, const wire::Packet& packet) {
  if (const Link* link = links_.open_link_to(to)) {
    emit(SendOnLink{link->id, wire::encode(packet)});
  } else if (config_.relay_fallback && membership_.is_member(to)) {
    publish({peer_topic(config_.group, to, SignalKind::fallback)}, wire::encode(packet));
  } else {
    return false;
  }
  return true;
}

void MeshNode::serve_pulls(TimeUs now, PeerId puller, const std::vector<wire::MessageId>& ids) {
  if (!config_.reliable_delivery || config_.emulate_reference || left_) return;
  // Each id costs a lookup and maybe a route: a pull names at most
  // kMaxServedPerPull ids (ours never more); a hostile one gets no more.
  const std::size_t count = std::min(ids.size(), kMaxServedPerPull);
  wire::Packet answer;  // what we can say about our own messages we do not send
  answer.source = self_;
  for (std::size_t i = 0; i < count; ++i) {
    const wire::MessageId& id = ids[i];
    const wire::Packet* held = history_.find(now, id.source, id.seq);
    if (!held) {
      ++counters_.pulls_unanswerable;
      if (id.source != self_ || !hears_gone(puller)) continue;
      if (id.seq < next_seq_) {
        answer.gone.push_back(id);  // our history let it go: it will never come
      } else if (answer.have.empty()) {
        // Never sent (a forged or early announcement named it): say how far
        // we are, so the puller stops waiting for it.
        answer.have.push_back({self_, next_seq_ - 1});
      }
      continue;
    }
    // A copy we sent lately to a peer above the puller is on its way down.
    if (history_.covered(id.source, id.seq, puller, now - kCoverWindow)) continue;
    std::vector<wire::Edge> route = graft_route(*held, self_, puller);
    if (route.empty()) {
      ++counters_.pulls_unanswerable;
      continue;
    }
    wire::Packet copy{held->source, std::move(route), held->payload, held->seq};
    copy.signature = held->signature;
    copy.receiver_tags = held->receiver_tags;
    if (!send_to_member(puller, copy)) continue;
    history_.served(now, id.source, id.seq, puller);
    ++counters_.pulls_served;
  }
  if (!answer.gone.empty() || !answer.have.empty()) send_to_member(puller, answer);
}

void MeshNode::send_pulls(TimeUs now) {
  std::vector<PullRequest> pulls;
  std::vector<OrderedEvent> events;
  order_.poll(now, pulls, events);
  emit_ordered(events);
  for (const PullRequest& pull : pulls) {
    // The source first (its copy carries the subtree below us), then the
    // neighbours that have the messages, in turn.
    std::vector<PeerId> targets;
    if (membership_.is_member(pull.source) && speaks_gap_repair(pull.source)) {
      targets.push_back(pull.source);
    }
    for (const PeerId holder : pull.holders) {
      if (holder != pull.source && speaks_gap_repair(holder) && links_.open_link_to(holder)) {
        targets.push_back(holder);
      }
    }
    if (targets.empty()) continue;  // the pull count runs on: a gap in the end
    const PeerId target = targets[(pull.attempt - 1) % targets.size()];
    wire::Packet want;
    want.source = self_;
    for (const std::uint64_t seq : pull.seqs) want.want.push_back({pull.source, seq});
    // A target is the source while a member, or a holder over an open link.
    if (send_to_member(target, want)) ++counters_.pulls_sent;
  }
}

}  // namespace p2pmesh
