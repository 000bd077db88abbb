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
  // Every peer's full status; members stay 6 intervals before silent ones
  // are forgotten (the live defaults: 10 s and 60 s).
  TimeUs status_interval = 10 * kSecond;
  TimeUs broadcast_interval = 200 * kMillisecond;
  double alpha = 0.8;  // blend of the "ours" tree
  // Mixed groups: this share of the peers (0..1) are reference-like test
  // peers (reference_like.hpp), the others run the strategy.
  double reference_share = 0;
  // Depth limit of the "ours" tree (TreeOptions::max_depth).
  std::uint32_t max_depth = MeshConfig{}.tree.max_depth;
  NetworkOptions network = default_network();

  static NetworkOptions default_network();
  // Defaults that keep big runs tractable; below 2,000 peers they are the
  // fields' defaults. Joins spread over at most 100 s of virtual time;
  // statuses every 60 s from 5,000 peers on (every status reaches every
  // peer, so their cost grows with the square of the group; 60 s is what the
  // issue's mesh workload and bench/meshd_load use).
  static TimeUs join_interval_for(std::size_t peers);
  static TimeUs status_interval_for(std::size_t peers);
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
  double last_delivery_ms = 0;  // mean over broadcasts
  std::size_t overlay_diameter = 0;
  double cpu_ms_per_broadcast = 0;
  double wall_seconds = 0;
  double peak_rss_mb = 0;
  std::size_t churn_events = 0;

  std::string json(const ScenarioOptions& options) const;
};

ScenarioResult run_scenario(const ScenarioOptions& options);

}  // namespace p2pmesh::sim
