#pragma once
// Which links to open, which offers to accept, which links to drop (WIRE.md §4,
// improved). Pure decisions over the link table and the membership view; the
// MeshNode carries them out.
//
// - Hold `target_connections` links: dial that many random distinct candidates
//   at once (not one per round), never a peer we already have a link with or
//   one in back-off (it refused, dropped or failed us recently).
// - Accept offers while fewer than `max_connections` peers are linked.
// - When full, still accept an offer from a peer that has fewer than
//   `target_connections` links, by dropping one of our links (preferably to a
//   neighbour that has links to spare; never one to a reference peer). This is HyParView's active-view rule:
//   without it early peers saturate, late joiners can only link to each other,
//   and the overlay degenerates into a long band with a huge hop diameter.
// - Two links with the same peer (both dialled): the one initiated by the
//   smaller id is kept (WIRE.md §4).

#include <optional>
#include <unordered_map>
#include <vector>

#include "clock.hpp"
#include "link_table.hpp"
#include "membership.hpp"
#include "mesh_config.hpp"
#include "random.hpp"

namespace p2pmesh {

class LinkPolicy {
 public:
  LinkPolicy(PeerId self, const MeshConfig& config) : self_(self), config_(&config) {}

  // Peers to dial now (possibly none).
  std::vector<PeerId> peers_to_dial(const LinkTable& links, const Membership& membership,
                                    Random& random, TimeUs now) const;

  struct OfferDecision {
    bool accept = false;
    std::optional<LinkId> close;  // a link to close first (duplicate or make room)
  };
  // A peer that dials again replaces its previous attempt, unless that one
  // is younger than kRepeatOfferGap: a member flooding offers would otherwise
  // make us build a WebRTC connection per offer.
  static constexpr TimeUs kRepeatOfferGap = 1 * kSecond;
  OfferDecision on_offer(PeerId from, const LinkTable& links, const Membership& membership,
                         Random& random, TimeUs now) const;

  // With two open links to the same peer, the one to close.
  std::optional<LinkId> duplicate_to_close(PeerId peer, const LinkTable& links) const;

  // Pending links whose connect timeout passed.
  std::vector<LinkId> timed_out(const LinkTable& links, TimeUs now) const;

  // Earliest time a pending link times out or a back-off ends (kNever if none).
  TimeUs next_deadline(const LinkTable& links) const;

  void back_off(PeerId peer, TimeUs now);
  void expire_back_offs(TimeUs now);
  void forget(PeerId peer) { backoff_until_.erase(peer); }
  bool in_back_off(PeerId peer, TimeUs now) const;

  // Distinct peers we have a link with, pending or open.
  static std::size_t linked_peer_count(const LinkTable& links);

 private:
  PeerId self_;
  const MeshConfig* config_;  // owned by the MeshNode
  std::unordered_map<PeerId, TimeUs> backoff_until_;
  TimeUs earliest_backoff_end_ = kNever;  // min of backoff_until_
};

}  // namespace p2pmesh
