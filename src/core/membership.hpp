#pragma once
// Who is in the group and who is linked to whom, from the MeshUpdateMessages
// heard on `<group>.mesh` (WIRE.md §3) plus the local peer's own links.
//
// Every member's claims ("I am connected to X") are kept; a link between two
// other members is in the view when its claim is credible: both sides claim
// it, or a side that speaks our protocol (status version >= 1) does. Links of the local peer come only
// from its own open links, never from others' possibly stale claims, so the
// first hop of a broadcast is always real. A member of version >=
// wire::kVersionLinkDownByOneEnd saying it is disconnected from a peer ends
// the link: the peer's claim of it goes too (in an all-ours group only one
// end announces a link it closed). Departed peers are forgotten
// completely: their claims, the claims about them, their place in the view.
//
// Every peer holds this for the whole mesh, so it is kept compact: a member's
// record lives at its slot of the view (no second index), and a claim of a
// link the view has lives at the claimer's end of it (the view's tag), so
// the members claiming a member are read off the view. Only claims outside
// the view (about peers we do not know yet, not credible, or about us with
// no link) are kept apart, with a reverse index of their own.

#include <array>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "clock.hpp"
#include "mesh_view.hpp"
#include "peer_id.hpp"
#include "wire.hpp"

namespace p2pmesh {

class Membership {
 public:
  // Links kept per member from its incremental connected_to updates.
  static constexpr std::size_t kMaxClaimsPerMember = 256;

  // `max_peers`: the most peers its view holds, itself included (tests ask
  // for few).
  explicit Membership(PeerId self, std::size_t max_peers = MeshView::kMaxPeers);

  struct Outcome {
    bool ignored = false;        // stale status id, or about ourselves
    PeerId joined = kNoPeer;     // a peer we did not know
    PeerId left = kNoPeer;       // the update says the peer left
    // The first status of its source that said its next seq (MeshStatus.next_seq).
    bool first_next_seq = false;
  };
  // Applies an update heard at `now` (its source is the update's subject).
  Outcome apply(const wire::MeshUpdate& update, TimeUs now);

  // One step of loading ahead what applying an update of `peer` reads first
  // (warm.hpp).
  void warm_member(PeerId peer, WarmStep step) const {
    view_.warm_peer(peer, step);
    if (step == WarmStep::tables) warm(&member_at_slot_);
    if (step == WarmStep::slot) {
      if (const std::uint32_t slot = view_.slot_of(peer); slot < member_at_slot_.size()) {
        warm(&member_at_slot_[slot]);
      }
    }
  }

  // Adds a peer we learned of some other way (e.g. it linked to us). False
  // if it is one already, or the view is full (MeshView::kMaxPeers).
  bool add_member(PeerId peer, TimeUs now);
  // Forgets a peer entirely. False if it was not a member.
  bool remove_member(PeerId peer);

  // The local peer's own links (truth from the link layer).
  void set_local_link(PeerId peer, bool up, std::uint32_t rtt_us = 0);

  // Members silent since before `cutoff` (candidates for expiry).
  std::vector<PeerId> silent_since(TimeUs cutoff) const;

  bool is_member(PeerId peer) const { return member_slot(peer) != MeshView::kNoSlot; }
  std::size_t member_count() const { return member_count_; }
  std::vector<PeerId> members() const;  // sorted, without self
  // Protocol feature level announced in the peer's status (0 = reference).
  std::uint32_t version_of(PeerId peer) const;
  // Whether a status of the peer said its next seq (meshd's snapshot does
  // not; every status of ours with reliable delivery does).
  bool said_next_seq(PeerId peer) const {
    const std::uint32_t slot = member_slot(peer);
    return slot != MeshView::kNoSlot && (member_at_slot_[slot].flags & kSaidNextSeq);
  }
  // Members of version 0: reference peers, and members whose status has not
  // come yet.
  std::size_t version0_member_count() const { return members_by_version_[0]; }
  // Members whose status version is below `version` (exact up to 7).
  std::size_t members_below_version(std::uint32_t version) const;

  const MeshView& view() const { return view_; }
  // Grows whenever the view changes; lets callers cache trees.
  std::uint64_t view_generation() const { return view_generation_; }

 private:
  struct Claim {
    PeerId peer;
    std::uint32_t rtt_us;
  };
  struct FoundClaim {
    bool made = false;
    std::uint32_t rtt_us = 0;
  };
  enum SlotFlag : std::uint8_t {
    kMember = 1,
    kHasStatusId = 2,
    kSaidNextSeq = 4,
    kClaimsOutside = 8,  // some of its claims are in claims_outside_
  };
  // What we know of a member, at its view slot. The flags live in it too:
  // the first thing an update checks is whether its source is a member, and
  // every receiver's view is cold then (one cache miss less per lookup).
  // 12 bytes (every peer keeps one per member): when we last heard it is
  // kept as 40 bits of microseconds, compared modulo 2^40 (12.7 days), which
  // is right while the two times compared are within 6.4 days of each other
  // (silent members are dropped after member_timeout, 150 s by default).
  struct Member {
    std::uint32_t last_status_id = 0;  // valid when kHasStatusId
    std::uint32_t heard_low = 0;       // last heard: bits 0-31 ...
    std::uint16_t version = 0;         // announced, capped at kMaxVersion
    std::uint8_t heard_high = 0;       // ... and bits 32-39
    std::uint8_t flags = 0;            // SlotFlag bits; 0: the slot is no member

    void set_heard(TimeUs at) {
      heard_low = static_cast<std::uint32_t>(at);
      heard_high = static_cast<std::uint8_t>(static_cast<std::uint64_t>(at) >> 32);
    }
    // Whether we last heard it before `at`.
    bool heard_before(TimeUs at) const {
      constexpr std::uint64_t kMask = (std::uint64_t{1} << 40) - 1;
      const std::uint64_t heard = (std::uint64_t{heard_high} << 32) | heard_low;
      const std::uint64_t since = (static_cast<std::uint64_t>(at) - heard) & kMask;
      return since != 0 && since < (std::uint64_t{1} << 39);
    }
  };
  static_assert(sizeof(Member) == 12);
  static constexpr std::uint32_t kMaxVersion = 0xFFFF;

  // The view slot of a member, or kNoSlot if `peer` is not a member.
  std::uint32_t member_slot(PeerId peer) const;
  // Grows the per-slot tables to the view's slot count.
  void cover_view_slots();
  void set_claims(PeerId source, std::uint32_t slot, std::span<const Claim> claims);
  void add_claim(PeerId source, std::uint32_t slot, PeerId peer, std::uint32_t rtt_us);
  void remove_claim(PeerId source, std::uint32_t slot, PeerId peer);
  // Where a claim lives: at the claimer's end of the view's link (a tag),
  // or, without that link, in claims_outside_. `peer_slot`: the peer's view
  // slot (kNoSlot if it has none).
  FoundClaim find_claim(std::uint32_t source_slot, PeerId peer, std::uint32_t peer_slot) const;
  void put_claim(std::uint32_t source_slot, PeerId peer, std::uint32_t rtt_us);
  bool erase_claim(std::uint32_t source_slot, PeerId peer);  // false: no such claim
  void claims_of(std::uint32_t source_slot, std::vector<Claim>& out) const;
  std::span<const Claim> outside_claims(std::uint32_t source_slot) const;
  std::size_t claim_count(std::uint32_t source_slot) const;
  // The claims of a-b move to the link's ends when the view gains it, and
  // back out before it loses it.
  void move_claims_into_link(PeerId a, PeerId b);
  void move_claims_out_of_link(PeerId a, PeerId b);
  // The reverse index of claims outside the view: about peers that are not
  // members (yet), or not credible (refresh_pair). It may hold claims that
  // have entered the view since; they leave it with the claim.
  void note_pending_claim(PeerId claimer, PeerId peer);  // if `peer` is no member
  void index_claim_outside_view(PeerId claimer, PeerId peer);
  void drop_pending_claim(PeerId claimer, PeerId peer);
  // Makes the view's link a-b agree with the claims and local links.
  void refresh_pair(PeerId a, PeerId b);
  // Moves a member between the counts by version.
  void count_version(std::uint32_t version, int delta);

  PeerId self_;
  MeshView view_;
  std::vector<Member> member_at_slot_;
  // By claimer slot, its claims the view has no link for: few, and most only
  // for a moment (a newcomer hears claims of members it has not heard yet).
  std::unordered_map<std::uint32_t, std::vector<Claim>> claims_outside_;
  std::size_t member_count_ = 0;
  // Members by status version (the last entry: that version and above).
  std::array<std::size_t, 8> members_by_version_{};
  // For each peer: members whose claim of a link to it is outside the view.
  std::unordered_map<PeerId, std::vector<PeerId>> pending_claimers_;
  std::unordered_map<PeerId, std::uint32_t> local_links_;  // peer -> rtt_us
  std::uint64_t view_generation_ = 0;
  // Scratch lists for status updates (kept to avoid an allocation per update).
  std::vector<Claim> new_claims_;
  std::vector<Claim> old_claims_;
};

}  // namespace p2pmesh
