#pragma once
// MeshRecord: what meshd keeps of one peer's own MeshUpdateMessages in one
// group, enough to replay its status to a newcomer (the snapshot, see
// docs/meshd.md). A member's record lives on its Member; updates a peer
// publishes before it joins the group wait on its session (EarlyRecord).

#include <cstdint>
#include <string>
#include <vector>

#include "peer_id.hpp"
#include "wire.hpp"

namespace meshd {

struct MeshRecord {
  bool has_update = false;      // at least one mesh update applied
  std::uint32_t status_id = 0;  // last (highest) status id seen
  std::uint32_t version = 0;
  std::vector<p2pmesh::PeerId> connected_to;
  std::vector<std::uint32_t> rtt_us;  // parallel to connected_to, or empty
  // Signed broadcasts: the key and policy of its last status, so that a
  // newcomer can verify its messages from the first one.
  std::string public_key;
  bool require_signatures = false;

  // One update the peer published about itself.
  void apply(const p2pmesh::wire::MeshUpdate& update);
};

// The reference browser peer publishes its status before it subscribes to
// <group>.mesh. Until it joins, the record is in no snapshot (a non-member
// gets no departure notice); join_group moves it into the peer's Member.
struct EarlyRecord {
  std::string group;
  MeshRecord record;
};

}  // namespace meshd
