#include "link_keepalive.hpp"

#include <algorithm>

namespace p2pmesh {

bool speaks_keepalive(const Link& link) {
  return link.state == LinkState::open && link.peer_version >= 1;
}

KeepAliveDue keepalive_due(LinkTable& links, const MeshConfig& config, TimeUs now) {
  KeepAliveDue due;
  for (const Link& l : links.all()) {
    if (l.state != LinkState::open) continue;
    Link& link = *links.find(l.id);
    if (!speaks_keepalive(link)) {
      // Only the transport knows this link's RTT: ask the driver now and then.
      if (now >= link.next_ping_at) {
        due.measure.push_back(link.id);
        link.next_ping_at = now + config.transport_rtt_interval;
      }
      continue;
    }
    if (now - link.last_heard_at >= config.dead_link_timeout) {
      due.dead.push_back(link.id);
    } else if (now >= link.next_ping_at) {
      due.ping.push_back(link.id);
      link.next_ping_at = now + config.ping_interval;
    }
  }
  return due;
}

void forgive_own_stall(LinkTable& links, const MeshConfig& config, TimeUs now) {
  const TimeUs counted_from = now - config.dead_link_timeout + config.ping_interval;
  for (const Link& l : links.all()) {
    if (!speaks_keepalive(l)) continue;
    Link& link = *links.find(l.id);
    link.last_heard_at = std::max(link.last_heard_at, counted_from);
    link.next_ping_at = std::min(link.next_ping_at, now);
  }
}

TimeUs next_keepalive_at(const LinkTable& links, const MeshConfig& config) {
  TimeUs next = kNever;
  for (const Link& link : links.all()) {
    if (link.state != LinkState::open) continue;
    if (!speaks_keepalive(link)) {
      next = std::min(next, link.next_ping_at);  // the next transport RTT probe
      continue;
    }
    next = std::min({next, link.next_ping_at, link.last_heard_at + config.dead_link_timeout});
  }
  return next;
}

wire::Packet make_ping(PeerId self, TimeUs now) {
  wire::Packet ping;
  ping.source = self;
  ping.ping = static_cast<std::uint64_t>(now);
  return ping;
}

wire::Packet make_pong(PeerId self, const wire::Packet& ping) {
  wire::Packet pong;
  pong.source = self;
  pong.pong = ping.ping;
  return pong;
}

std::optional<std::uint32_t> apply_pong(Link& link, const wire::Packet& pong, TimeUs now) {
  const auto sent = static_cast<TimeUs>(pong.pong);
  if (sent <= 0 || sent > now || now - sent > 60 * kSecond) return std::nullopt;
  const auto sample = static_cast<std::uint32_t>(std::max<TimeUs>(now - sent, 1));
  link.rtt_us = link.rtt_us == 0 ? sample : link.rtt_us - link.rtt_us / 8 + sample / 8;
  if (link.rtt_us == 0) link.rtt_us = 1;
  return link.rtt_us;
}

}  // namespace p2pmesh
