#include "member_record.hpp"

#include <algorithm>
#include <limits>

namespace p2pmesh {

void MemberRecord::apply(const wire::MeshUpdate& update) {
  has_update = true;
  left = update.left;
  auto& links = connected_to;
  switch (update.kind) {
    case wire::MeshUpdate::Kind::connected_to:
      if (links.size() < kMaxTrackedLinks &&
          std::find(links.begin(), links.end(), update.peer) == links.end()) {
        links.push_back(update.peer);
        if (!rtt_us.empty()) rtt_us.push_back(0);
      }
      break;
    case wire::MeshUpdate::Kind::disconnected_from:
      forget_link(update.peer);
      break;
    case wire::MeshUpdate::Kind::status:
      // A status overtaken by a newer one (another path, a replay) is old news.
      if (update.status.id > status_id || status_id == 0) {
        links = update.status.connected_to;
        rtt_us = update.status.rtt_us;
        if (rtt_us.size() != links.size()) rtt_us.clear();
        status_id = update.status.id;
        version = update.status.version;
        // At most a key's size: the record lives as long as the member.
        if (update.status.public_key.size() <= 32) public_key = update.status.public_key;
        require_signatures = update.status.require_signatures;
      }
      break;
    case wire::MeshUpdate::Kind::none:
      break;
  }
}

PeerId other_end_of_link_down(const wire::MeshUpdate& update, const MemberRecord& source) {
  if (update.kind != wire::MeshUpdate::Kind::disconnected_from || update.left ||
      source.version < wire::kVersionLinkDownByOneEnd || update.peer == update.source) {
    return kNoPeer;
  }
  return update.peer;
}

void MemberRecord::forget_link(PeerId peer) {
  const auto it = std::find(connected_to.begin(), connected_to.end(), peer);
  if (it == connected_to.end()) return;
  const auto index = static_cast<std::size_t>(it - connected_to.begin());
  connected_to.erase(it);
  if (index < rtt_us.size()) rtt_us.erase(rtt_us.begin() + static_cast<std::ptrdiff_t>(index));
}

wire::MeshUpdate MemberRecord::snapshot(PeerId member) const {
  wire::MeshUpdate update;
  update.source = member;
  update.kind = wire::MeshUpdate::Kind::status;
  update.status.connected_to = connected_to;
  update.status.id = status_id;
  update.status.rtt_us = rtt_us;
  update.status.version = version;
  update.status.public_key = public_key;
  update.status.require_signatures = require_signatures;
  update.left = left;
  return update;
}

wire::MeshUpdate MemberRecord::departure(PeerId member) const {
  wire::MeshUpdate update;
  update.source = member;
  update.kind = wire::MeshUpdate::Kind::status;
  // Newer than its last status, so that no peer drops it as stale.
  update.status.id = status_id < std::numeric_limits<std::uint32_t>::max() ? status_id + 1 : status_id;
  update.left = true;
  return update;
}

MeshUpdateCheck check_mesh_update(std::string_view body, PeerId sender, wire::MeshUpdate& out,
                                  const wire::DecodeLimits& limits) {
  if (wire::decode(body, out, limits) != wire::DecodeError::none) return MeshUpdateCheck::undecodable;
  return out.source == sender ? MeshUpdateCheck::own : MeshUpdateCheck::not_own;
}

}  // namespace p2pmesh
