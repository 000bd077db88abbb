#pragma once
// MemberRecord: what the signaling server keeps of one member's own mesh
// updates in one group, enough to replay its status to a newcomer (the
// snapshot) and to announce its departure. meshd's Broker and mesh-sim's
// broker both keep their members in it, so the simulator's server does what
// meshd does (docs/meshd.md, "Snapshots and departures"): only a peer's own
// updates count, an older status id changes nothing, links claimed one by one
// are bounded, and the departure notice's id never wraps.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "peer_id.hpp"
#include "wire.hpp"

namespace p2pmesh {

struct MemberRecord {
  // Links kept from incremental updates; real peers hold a handful. A peer
  // sending connected_to 1, 2, 3... would otherwise grow its record (and
  // every newcomer's snapshot) without end.
  static constexpr std::size_t kMaxTrackedLinks = 256;

  bool has_update = false;      // at least one mesh update applied
  std::uint32_t status_id = 0;  // last (highest) status id seen
  std::uint32_t version = 0;
  std::vector<PeerId> connected_to;
  std::vector<std::uint32_t> rtt_us;  // parallel to connected_to, or empty
  // Signed broadcasts: the key and policy of its last status, so that a
  // newcomer can verify its messages from the first one.
  std::string public_key;
  bool require_signatures = false;
  // The last update it published said it left (our peers' graceful leave,
  // field 5): the very update the server's departure notice would be, which
  // the server then does not repeat when its connection goes. In arrival
  // order, not by status id, because peers act on it that way: a `left`
  // removes the member whatever its id, any later update brings it back.
  bool left = false;

  // One update the member published about itself.
  void apply(const wire::MeshUpdate& update);
  // `peer` left the group: its link with this member is gone from every
  // view (peers drop a departed member's links on its departure notice, and
  // in all-ours groups nobody publishes the link down), so from the
  // snapshot too, not only from this member's next full status.
  void forget_link(PeerId peer);
  // Its latest status, as if it had just published it (the snapshot); it
  // says `left` if the member did, so a newcomer does not keep it.
  wire::MeshUpdate snapshot(PeerId member) const;
  // The departure notice published in its name: an empty status (reference
  // peers read "no links") with the next status id, and our field 5 `left`.
  wire::MeshUpdate departure(PeerId member) const;
  // Whether the server still owes the group that notice (not when the
  // member said it left itself).
  bool needs_departure_notice() const { return !left; }
};

// The member whose record must also forget its link with `update`'s source:
// the peer a member of version >= wire::kVersionLinkDownByOneEnd (its
// record's `version`) says it is disconnected from (that end may say
// nothing: every view drops the link on one end's word, and so does the
// snapshot). kNoPeer for any other update.
PeerId other_end_of_link_down(const wire::MeshUpdate& update, const MemberRecord& source);

// Whether a body published on <group>.mesh is a mesh update of its sender
// (the server stamps the sender; a peer may only speak for itself).
enum class MeshUpdateCheck : std::uint8_t { own, undecodable, not_own };
MeshUpdateCheck check_mesh_update(std::string_view body, PeerId sender, wire::MeshUpdate& out,
                                  const wire::DecodeLimits& limits = {});

}  // namespace p2pmesh
