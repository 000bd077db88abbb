#include "reference_like.hpp"

namespace p2pmesh {

MeshConfig reference_like(MeshConfig config) {
  config.emulate_reference = true;
  config.tree = TreeOptions{};  // unit weights, no depth limit
  config.prune_routes = false;
  config.relay_fallback = false;
  config.repair_window = 0;
  config.message_ids = false;
  config.admit_when_full = false;
  config.status_interval = kReferenceStatusInterval;
  config.member_timeout = 0;  // it forgets peers only when the server says so
  return config;
}

}  // namespace p2pmesh
