#pragma once
// What a peer counts: drops by reason, traffic, link life. One list: every
// surface that shows counters (state reports, the browser's counters(), the
// native snapshot, mesh-peer) walks it with for_each_counter, by these names.

#include <cstdint>

namespace p2pmesh {

struct MeshCounters {
  // Drops, by reason.
  std::uint64_t malformed_packets = 0;    // undecodable Packet bytes
  std::uint64_t bad_routes = 0;           // route failed validate_route
  std::uint64_t misrouted_packets = 0;    // not sent by our parent in the route
  std::uint64_t duplicate_packets = 0;    // (source, seq) seen before
  std::uint64_t malformed_updates = 0;    // undecodable MeshUpdateMessage
  std::uint64_t forged_updates = 0;       // source differs from the server-stamped sender
  std::uint64_t stale_updates = 0;        // status id not newer
  std::uint64_t bad_signals = 0;          // offer/answer/candidate that fits no link
  std::uint64_t foreign_topics = 0;       // topic of another group or unknown form
  std::uint64_t dropped_hops = 0;         // route children neither linked nor members, or
                                          // past the relay-fallback budget of a packet
  std::uint64_t oversized_broadcasts = 0; // broadcast() payloads over max_payload_bytes
  std::uint64_t oversized_publishes = 0;  // publications over max_server_message_bytes
  // Traffic and link life.
  std::uint64_t broadcasts = 0;
  std::uint64_t delivered = 0;
  std::uint64_t relayed = 0;              // packets forwarded on links
  std::uint64_t fallback_sent = 0;        // packets sent through the server
  std::uint64_t fallback_received = 0;
  std::uint64_t offers_refused = 0;
  std::uint64_t links_opened = 0;
  std::uint64_t links_timed_out = 0;
  std::uint64_t links_dead = 0;           // keep-alive silent too long
  std::uint64_t repaired = 0;             // packets re-sent around a gone neighbour
  std::uint64_t links_dropped_for_room = 0;
  std::uint64_t relay_allocation_failures = 0;  // TURN refused or unreachable (e.g. expired
                                                // credentials): links go without relay
  // Reliable delivery and gap repair.
  std::uint64_t held_for_order = 0;       // messages that waited for older ones of their source
  std::uint64_t gaps = 0;                 // gap events: messages given up as lost
  std::uint64_t late_after_gap = 0;       // copies that came after their gap was reported (or
                                          // older than the seq a source's status said was next)
  std::uint64_t seq_jumps = 0;            // seqs implausibly far ahead, dropped
  std::uint64_t announcements_sent = 0;   // Packet.have messages to neighbours
  std::uint64_t pulls_sent = 0;           // Packet.want messages (links or server)
  std::uint64_t pulls_served = 0;         // copies sent to a puller
  std::uint64_t pulls_unanswerable = 0;   // asked for what we no longer hold (or cannot route)
  // Signed broadcasts (docs/security.md).
  std::uint64_t unsigned_dropped = 0;     // unsigned though its source announced a key, or
                                          // (require_signatures) its source announced none
  std::uint64_t bad_signatures = 0;       // signature did not verify (a forgery): dropped
  std::uint64_t verify_backlog_drops = 0; // too many packets awaiting their check: dropped
  std::uint64_t signatures_checked = 0;   // signed packets handed to the driver to check
  std::uint64_t signatures_from_source = 0;  // signed packets straight from their source:
                                             // delivered verified without a check
};

namespace detail {
template <class Counters, class Visit>
void visit_mesh_counters(Counters& counters, Visit& visit) {
  static_assert(sizeof(MeshCounters) == 37 * sizeof(std::uint64_t),
                "a counter was added to MeshCounters: list it here too");
  visit("malformed_packets", counters.malformed_packets);
  visit("bad_routes", counters.bad_routes);
  visit("misrouted_packets", counters.misrouted_packets);
  visit("duplicate_packets", counters.duplicate_packets);
  visit("malformed_updates", counters.malformed_updates);
  visit("forged_updates", counters.forged_updates);
  visit("stale_updates", counters.stale_updates);
  visit("bad_signals", counters.bad_signals);
  visit("foreign_topics", counters.foreign_topics);
  visit("dropped_hops", counters.dropped_hops);
  visit("oversized_broadcasts", counters.oversized_broadcasts);
  visit("oversized_publishes", counters.oversized_publishes);
  visit("broadcasts", counters.broadcasts);
  visit("delivered", counters.delivered);
  visit("relayed", counters.relayed);
  visit("fallback_sent", counters.fallback_sent);
  visit("fallback_received", counters.fallback_received);
  visit("offers_refused", counters.offers_refused);
  visit("links_opened", counters.links_opened);
  visit("links_timed_out", counters.links_timed_out);
  visit("links_dead", counters.links_dead);
  visit("repaired", counters.repaired);
  visit("links_dropped_for_room", counters.links_dropped_for_room);
  visit("relay_allocation_failures", counters.relay_allocation_failures);
  visit("held_for_order", counters.held_for_order);
  visit("gaps", counters.gaps);
  visit("late_after_gap", counters.late_after_gap);
  visit("seq_jumps", counters.seq_jumps);
  visit("announcements_sent", counters.announcements_sent);
  visit("pulls_sent", counters.pulls_sent);
  visit("pulls_served", counters.pulls_served);
  visit("pulls_unanswerable", counters.pulls_unanswerable);
  visit("unsigned_dropped", counters.unsigned_dropped);
  visit("bad_signatures", counters.bad_signatures);
  visit("verify_backlog_drops", counters.verify_backlog_drops);
  visit("signatures_checked", counters.signatures_checked);
  visit("signatures_from_source", counters.signatures_from_source);
}
}  // namespace detail

// Calls visit(name, value) for every counter, in declaration order; names
// are the fields' (snake_case; the browser shows them in camelCase). The
// non-const form lets a caller set counters by name.
template <class Visit>
void for_each_counter(const MeshCounters& counters, Visit&& visit) {
  detail::visit_mesh_counters(counters, visit);
}
template <class Visit>
void for_each_counter(MeshCounters& counters, Visit&& visit) {
  detail::visit_mesh_counters(counters, visit);
}

}  // namespace p2pmesh
