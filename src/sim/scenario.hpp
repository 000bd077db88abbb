#pragma once
// One mesh-sim experiment: peers join one after another, the mesh settles,
// then broadcasts from random peers while peers churn; the same scenario and
// seed can be run with each broadcast strategy and compared.

#include <cstdint>
#include <string>

#include "mesh_config.hpp"
#include "virtual_network.hpp"

namespace p2pmesh::sim {

enum class Strategy : std::uint8_t {
  reference,  // unit-weight Prim tree, full route in every packet, no repair
  ours,       // latency-aware blend tree, pruned routes, ids, repair
  flooding,   // relay to every neighbour, drop duplicates by id
};
const char* to_string(Strategy strategy);
bool parse_strategy(const std::string& text, Strategy& out);


struct ScenarioOptions {
  std::size_t peers = 1000;
  Strategy strategy = Strategy::ours;
  double churn_percent_per_minute = 0;  // crashes + graceful leaves, replaced by joins
  std::uint64_t seed = 1;
  std::size_t broadcasts = 50;
  TimeUs join_interval = 50 * kMillisecond;
  // Every peer's full status, at every group size (the live default unless
  // set); silent members are forgotten after as many intervals as live
  // peers wait (150 s / 10 s).
  TimeUs status_interval = MeshConfig{}.status_interval;
  // Status pacing (MeshConfig::status_refresh_per_s; 0: a status every
  // interval from every peer, as before pacing).
  double status_refresh_per_s = MeshConfig{}.status_refresh_per_s;
  // Mesh updates in batches from the server (MeshConfig::server_batch; 0:
  // one frame per update, as before batching).
  TimeUs server_batch = MeshConfig{}.server_batch;
  // Link downs wait for departure notices (MeshConfig::link_down_grace; 0:
  // announced at once).
  TimeUs link_down_grace = MeshConfig{}.link_down_grace;
  // Dialled links announced together with their first RTTs
  // (MeshConfig::new_link_wait; 0: a connected_to each at once).
  TimeUs new_link_wait = MeshConfig{}.new_link_wait;
  // Gap repair's announcements, one packet per link and window
  // (MeshConfig::announce_window; 0: one packet each).
  TimeUs announce_window = MeshConfig{}.announce_window;
  TimeUs broadcast_interval = 200 * kMillisecond;
  double alpha = 0.8;  // blend of the "ours" tree
  // Mixed groups: this share of the peers (0..1) are reference-like test
  // peers (reference_like.hpp), the others run the strategy.
  double reference_share = 0;
  // Depth limit of the "ours" tree (TreeOptions::max_depth).
  std::uint32_t max_depth = MeshConfig{}.tree.max_depth;
  NetworkOptions network = default_network();
  // Gap repair's grace before pulling (MeshConfig::pull_delay).
  TimeUs pull_delay = MeshConfig{}.pull_delay;
  TimeUs pull_interval = MeshConfig{}.pull_interval;

  static NetworkOptions default_network();
  // The join interval that keeps big runs tractable; below 2,000 peers it is
  // the field's default. Joins spread over at most 100 s of virtual time.
  // (Statuses have no such switch: every status reaches every peer, so big
  // runs pay for them with the square of the group, as a server would.)
  static TimeUs join_interval_for(std::size_t peers);
};

// The MeshConfig a strategy stands for.
MeshConfig strategy_config(Strategy strategy, const ScenarioOptions& options);

struct ScenarioResult {
  std::size_t peers = 0;
  std::size_t broadcasts = 0;
  double delivery_ratio = 0;   // deliveries / (broadcasts x peers alive throughout)
  double rmr = 0;              // transmissions / (peers reached - 1) - 1, mean
  double latency_ratio = 0;    // last delivery / shortest-path optimum, mean
  double routing_bytes_per_broadcast = 0;
  // Mixed groups: broadcasts of our peers delivered to our peers alive
  // throughout (the share that reached them, and the count that did not).
  double ours_delivery_ratio = 0;
  std::size_t ours_missed = 0;
  // Copies of a broadcast a peer got after its first (at any peer).
  std::size_t duplicates = 0;
  std::size_t reference_peers = 0;  // reference-like peers that took part
  std::size_t max_hops = 0;
  double mean_hops = 0;  // links + server hops of a delivery, mean over deliveries
  // Control plane, over the broadcast window (first broadcast to 5 s after
  // the last, as the delivery figures), per simulated second:
  // frames the server delivered to peers (VirtualNetwork's Traffic);
  double server_deliveries_per_s = 0;
  // what a peer received that carried no broadcast payload (server frames
  // but fallback packets, plus keep-alive pings and pongs), per live peer;
  double control_msgs_per_peer_per_s = 0;
  double keepalives_per_peer_per_s = 0;  // of those, link keep-alive pings and pongs
  // broadcast trees the nodes computed (Prim runs) per broadcast sent.
  double tree_computations_per_broadcast = 0;
  // Mesh updates published on <group>.mesh in the window (each reaches every
  // member), per churn event (a departure and a newcomer): all of them, and
  // by kind. Statuses include the paced refreshes, which churn does not cause.
  double mesh_updates_per_churn_event = 0;
  double statuses_per_churn_event = 0;
  double connected_to_per_churn_event = 0;
  double disconnected_from_per_churn_event = 0;
  double departures_per_churn_event = 0;
  double last_delivery_ms = 0;  // mean over broadcasts
  std::size_t overlay_diameter = 0;
  double cpu_ms_per_broadcast = 0;
  double wall_seconds = 0;
  double peak_rss_mb = 0;
  std::size_t churn_events = 0;
  // Reliable delivery (docs/broadcast.md, "Delivery guarantees"):
  std::size_t order_violations = 0;  // a source's message after a later one of it, at a peer
  std::size_t gap_events = 0;        // gaps reported to applications (peers alive at the end)
  std::size_t gap_messages = 0;      // messages those gaps cover
  // Per broadcast sent: pull requests (Packet.want), copies sent to pullers,
  // local repair copies (around a gone neighbour), announcements (Packet.have).
  double pulls_per_broadcast = 0;
  double pulled_copies_per_broadcast = 0;
  double local_repairs_per_broadcast = 0;
  double announcements_per_broadcast = 0;
  // Memory of gap repair per peer, sampled at each broadcast over live peers:
  // the message history (mean and max) and the reorder buffer (max).
  double history_kb_mean = 0;
  double history_kb_max = 0;
  double reorder_kb_max = 0;

  std::string json(const ScenarioOptions& options) const;
};

ScenarioResult run_scenario(const ScenarioOptions& options);

}  // namespace p2pmesh::sim
