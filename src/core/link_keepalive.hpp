#pragma once
// Keep-alive on open links with peers that speak our protocol (version >= 1,
// from their status): pings measure the round-trip time (which weights the
// broadcast tree) and a link silent for `dead_link_timeout` is declared dead,
// long before SCTP or ICE would notice a vanished peer. Reference peers get no
// pings: they would deliver them to their application.

#include <cstdint>
#include <optional>
#include <vector>

#include "clock.hpp"
#include "link_table.hpp"
#include "mesh_config.hpp"
#include "wire.hpp"

namespace p2pmesh {

struct KeepAliveDue {
  std::vector<LinkId> ping;     // send a ping on these now
  std::vector<LinkId> dead;     // close these: silent too long
  std::vector<LinkId> measure;  // no keep-alive: ask the driver for the transport's RTT
};

// True for an open link the keep-alive pings (its peer's version is >= 1).
bool speaks_keepalive(const Link& link);

// Which links need a ping or are dead at `now`, and which (links with
// reference peers, every transport_rtt_interval) need their RTT measured by
// the driver; advances next_ping_at.
KeepAliveDue keepalive_due(LinkTable& links, const MeshConfig& config, TimeUs now);

// After this node itself was not run for a while (a starved process, a
// suspended machine or tab), what its links sent meanwhile may still be
// queued, unread: each link gets a ping now and one ping interval to answer
// before its silence counts.
void forgive_own_stall(LinkTable& links, const MeshConfig& config, TimeUs now);

// Earliest keep-alive deadline or RTT probe among open links (kNever if none).
TimeUs next_keepalive_at(const LinkTable& links, const MeshConfig& config);

wire::Packet make_ping(PeerId self, TimeUs now);
wire::Packet make_pong(PeerId self, const wire::Packet& ping);

// Folds a pong into the link's smoothed RTT (EWMA 1/8, like TCP's SRTT).
// Returns the new RTT, or nullopt for an answer we cannot have asked for.
std::optional<std::uint32_t> apply_pong(Link& link, const wire::Packet& pong, TimeUs now);

}  // namespace p2pmesh
