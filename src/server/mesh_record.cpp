#include "mesh_record.hpp"

#include <algorithm>
#include <cstddef>

namespace meshd {

namespace wire = p2pmesh::wire;

namespace {
// Links kept per record from incremental updates; real peers hold a handful.
constexpr std::size_t kMaxTrackedLinks = 256;
}  // namespace

void MeshRecord::apply(const wire::MeshUpdate& update) {
  has_update = true;
  auto& links = connected_to;
  switch (update.kind) {
    case wire::MeshUpdate::Kind::connected_to:
      // Bounded: a peer sending connected_to 1, 2, 3... would otherwise
      // grow its record (and every newcomer's snapshot) without end.
      if (links.size() < kMaxTrackedLinks &&
          std::find(links.begin(), links.end(), update.peer) == links.end()) {
        links.push_back(update.peer);
        if (!rtt_us.empty()) rtt_us.push_back(0);
      }
      break;
    case wire::MeshUpdate::Kind::disconnected_from: {
      const auto it = std::find(links.begin(), links.end(), update.peer);
      if (it != links.end()) {
        const auto index = static_cast<std::size_t>(it - links.begin());
        links.erase(it);
        if (index < rtt_us.size())
          rtt_us.erase(rtt_us.begin() + static_cast<std::ptrdiff_t>(index));
      }
      break;
    }
    case wire::MeshUpdate::Kind::status:
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

}  // namespace meshd
