#pragma once
// Who is in the group and who is linked to whom, from the MeshUpdateMessages
// heard on `<group>.mesh` (WIRE.md §3) plus the local peer's own links.
//
// Every member's claims ("I am connected to X") are kept; a link between two
// other members is in the view when either side claims it (as a reference
// peer's symmetric matrix would have it). Links of the local peer come only
// from its own open links, never from others' possibly stale claims, so the
// first hop of a broadcast is always real. Departed peers are forgotten
// completely: their claims, the claims about them, their place in the view.

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "clock.hpp"
#include "mesh_view.hpp"
#include "peer_id.hpp"
#include "wire.hpp"

namespace p2pmesh {

class Membership {
 public:
  explicit Membership(PeerId self);

  struct Outcome {
    bool ignored = false;        // stale status id, or about ourselves
    PeerId joined = kNoPeer;     // a peer we did not know
    PeerId left = kNoPeer;       // the update says the peer left
  };
  // Applies an update heard at `now` (its source is the update's subject).
  Outcome apply(const wire::MeshUpdate& update, TimeUs now);

  // Adds a peer we learned of some other way (e.g. it linked to us).
  bool add_member(PeerId peer, TimeUs now);
  // Forgets a peer entirely. False if it was not a member.
  bool remove_member(PeerId peer);

  // The local peer's own links (truth from the link layer).
  void set_local_link(PeerId peer, bool up, std::uint32_t rtt_us = 0);

  // Members silent since before `cutoff` (candidates for expiry).
  std::vector<PeerId> silent_since(TimeUs cutoff) const;

  bool is_member(PeerId peer) const { return members_.count(peer) != 0; }
  std::size_t member_count() const { return members_.size(); }
  std::vector<PeerId> members() const;  // sorted, without self
  // Protocol feature level announced in the peer's status (0 = reference).
  std::uint32_t version_of(PeerId peer) const;

  const MeshView& view() const { return view_; }
  // Grows whenever the view changes; lets callers cache trees.
  std::uint64_t view_generation() const { return view_generation_; }

 private:
  struct Claim {
    PeerId peer;
    std::uint32_t rtt_us;
  };
  struct Member {
    std::vector<Claim> claims;
    std::optional<std::uint32_t> last_status_id;
    std::uint32_t version = 0;
    TimeUs last_heard = 0;
  };

  void set_claims(PeerId source, std::vector<Claim> claims);
  void add_claim(PeerId source, PeerId peer, std::uint32_t rtt_us);
  void remove_claim(PeerId source, PeerId peer);
  void erase_claimed_by(PeerId claimer, PeerId peer);
  const Claim* find_claim(PeerId source, PeerId peer) const;
  // Makes the view's link a-b agree with the claims and local links.
  void refresh_pair(PeerId a, PeerId b);

  PeerId self_;
  std::unordered_map<PeerId, Member> members_;
  // Reverse index: for each peer, the members that claim a link to it.
  std::unordered_map<PeerId, std::vector<PeerId>> claimed_by_;
  std::unordered_map<PeerId, std::uint32_t> local_links_;  // peer -> rtt_us
  MeshView view_;
  std::uint64_t view_generation_ = 0;
};

}  // namespace p2pmesh
