#pragma once
// The local peer's links: WebRTC connection attempts and open data channels.

#include <cstdint>
#include <vector>

#include "actions.hpp"
#include "clock.hpp"
#include "peer_id.hpp"

namespace p2pmesh {

enum class LinkState : std::uint8_t { connecting, open };

struct Link {
  LinkId id = 0;
  PeerId peer = kNoPeer;
  bool initiated = false;  // we sent the offer
  LinkState state = LinkState::connecting;
  TimeUs created_at = 0;
  TimeUs opened_at = 0;
  std::uint32_t rtt_us = 0;  // smoothed; 0 = not measured
  TimeUs last_heard_at = 0;  // anything received on the link
  TimeUs next_ping_at = 0;
  std::uint32_t peer_version = 0;  // from the peer's status; >= 1 speaks keep-alive
  CandidateType candidate_type = CandidateType::unknown;  // its selected candidate pair
};

class LinkTable {
 public:
  LinkId create(PeerId peer, bool initiated, TimeUs now);
  bool erase(LinkId id);

  Link* find(LinkId id);
  const Link* find(LinkId id) const;
  // The link with `peer` in the given direction, if any.
  Link* find(PeerId peer, bool initiated);
  const Link* find(PeerId peer, bool initiated) const;
  // The open link with `peer`, if any (the one used to send).
  const Link* open_link_to(PeerId peer) const;
  bool has_any_with(PeerId peer) const;

  const std::vector<Link>& all() const { return links_; }
  std::size_t size() const { return links_.size(); }
  std::size_t open_count() const;
  std::vector<PeerId> open_peers() const;  // sorted, distinct

 private:
  std::vector<Link> links_;  // a handful (<= maxConnections + a few pending)
  LinkId next_id_ = 1;
};

}  // namespace p2pmesh
