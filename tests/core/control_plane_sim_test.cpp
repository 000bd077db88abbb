// mesh-sim's control-plane figures (issue #17): what the server delivers,
// what a peer receives besides broadcast payloads, how many broadcast trees
// the nodes compute, how many hops a delivery takes. Small groups, short
// runs: the assertions follow from the model (every status reaches every
// member), so they fail if the counting breaks, not if the figures move.

#include <gtest/gtest.h>

#include <string>

#include "scenario.hpp"
#include "virtual_network.hpp"

namespace p2pmesh::sim {
namespace {

// Joins take 1-2 s here, so the peers' statuses go out in step: the
// measuring window (75 broadcasts 200 ms apart + 5 s) spans two whole
// intervals of 10 s, or four of 5 s.
// Without server batches unless asked: one frame per update, the model the
// first tests check.
ScenarioResult run(std::size_t peers, TimeUs status_interval = MeshConfig{}.status_interval,
                   double status_refresh_per_s = MeshConfig{}.status_refresh_per_s,
                   TimeUs server_batch = 0) {
  ScenarioOptions options;
  options.peers = peers;
  options.broadcasts = 75;
  options.seed = 5;
  options.status_interval = status_interval;
  options.status_refresh_per_s = status_refresh_per_s;
  options.server_batch = server_batch;
  options.network.threads = 1;
  return run_scenario(options);
}

double status_seconds() { return static_cast<double>(MeshConfig{}.status_interval) / kSecond; }

TEST(ControlPlaneSim, ServerDeliveriesGrowWithTheSquareOfTheGroup) {
  const ScenarioResult small = run(20);
  const ScenarioResult big = run(40);
  // Each member's status every interval, to every member: N^2 / interval,
  // plus link changes and signaling (few without churn).
  for (const ScenarioResult* r : {&small, &big}) {
    const double n = static_cast<double>(r->peers);
    EXPECT_GE(r->server_deliveries_per_s, 0.9 * n * n / status_seconds()) << n << " peers";
    EXPECT_LE(r->server_deliveries_per_s, 2.0 * n * n / status_seconds()) << n << " peers";
  }
  const double ratio = big.server_deliveries_per_s / small.server_deliveries_per_s;
  EXPECT_GT(ratio, 3.0);
  EXPECT_LT(ratio, 5.5);
}

TEST(ControlPlaneSim, ControlMessagesPerPeerGrowLinearlyWithTheGroup) {
  const ScenarioResult small = run(20);
  const ScenarioResult big = run(40);
  // Per peer: every member's status (N / interval) plus keep-alive pings and
  // pongs on its few links (about as many at any size): the slope is one
  // status per member and interval.
  for (const ScenarioResult* r : {&small, &big}) {
    const double n = static_cast<double>(r->peers);
    EXPECT_GE(r->control_msgs_per_peer_per_s, 0.9 * n / status_seconds()) << n << " peers";
    // Server frames reach each live peer; keep-alives add a few per link.
    EXPECT_GE(r->control_msgs_per_peer_per_s, 0.9 * r->server_deliveries_per_s / n) << n;
    EXPECT_GT(r->keepalives_per_peer_per_s, 0.0) << n;
    EXPECT_LT(r->keepalives_per_peer_per_s, r->control_msgs_per_peer_per_s) << n;
  }
  // Keep-alives go per link, and a peer has about as many links at any size.
  const double keepalive_ratio = big.keepalives_per_peer_per_s / small.keepalives_per_peer_per_s;
  EXPECT_GT(keepalive_ratio, 0.7);
  EXPECT_LT(keepalive_ratio, 1.4);
  const double slope = (big.control_msgs_per_peer_per_s - small.control_msgs_per_peer_per_s) /
                       static_cast<double>(big.peers - small.peers);
  EXPECT_GT(slope, 0.7 / status_seconds());
  EXPECT_LT(slope, 1.5 / status_seconds());
}

TEST(ControlPlaneSim, StatusesTwiceAsOftenCostTwiceTheServerDeliveries) {
  // The status interval is the same at every size unless set (no switch at
  // 5,000 peers), and the figures follow it.
  EXPECT_EQ(ScenarioOptions{}.status_interval, MeshConfig{}.status_interval);
  const ScenarioResult slow = run(30, 10 * kSecond);
  const ScenarioResult fast = run(30, 5 * kSecond);
  const double ratio = fast.server_deliveries_per_s / slow.server_deliveries_per_s;
  EXPECT_GT(ratio, 1.6);
  EXPECT_LT(ratio, 2.1);
}

TEST(ControlPlaneSim, TreesAndHopsArePlausibleAndInTheJson) {
  ScenarioOptions options;
  options.peers = 40;
  options.broadcasts = 50;
  options.seed = 5;
  const ScenarioResult r = run_scenario(options);
  // Only a broadcast's source computes a tree, at most once per broadcast;
  // keep-alive RTTs change every view within seconds, so most do.
  EXPECT_GE(r.tree_computations_per_broadcast, 1.0 / static_cast<double>(r.peers));
  EXPECT_LE(r.tree_computations_per_broadcast, 1.0);
  EXPECT_GE(r.mean_hops, 1.5) << "40 peers with at most 6 links each are not all neighbours";
  EXPECT_LE(r.mean_hops, static_cast<double>(r.max_hops));
  const std::string json = r.json(options);
  for (const char* field : {"\"server_deliveries_per_s\":", "\"control_msgs_per_peer_per_s\":",
                            "\"tree_computations_per_broadcast\":", "\"keepalives_per_peer_per_s\":",
                            "\"broadcast_depth\":",
                            "\"mean_hops\":", "\"max_hops\":"}) {
    EXPECT_NE(json.find(field), std::string::npos) << field << " in " << json;
  }
}

TEST(ControlPlaneSim, ATreeIsCountedOncePerViewChangeAndKeepAlivesAsTheyArrive) {
  VirtualNetwork network({});
  MeshConfig config;
  config.group = "test";
  config.server_batch = 0;  // a frame per status (counted below)
  for (int i = 0; i < 12; ++i) {
    network.add_peer(config);
    network.run_for(100 * kMillisecond);
  }
  network.run_for(5 * kSecond);
  const PeerId source = network.peers().front();
  const Traffic before = network.traffic();
  network.broadcast(source, "one");
  network.broadcast(source, "two");  // same instant, same view: the cached tree
  EXPECT_EQ(network.traffic().tree_computations, before.tree_computations + 1);
  // Refreshes that say nothing new (every member's first full status after
  // its links' comes 10 s after its welcome) leave the view and the tree.
  network.run_for(5 * kSecond);
  EXPECT_GT(network.traffic().link_keepalives, before.link_keepalives);
  EXPECT_GE(network.traffic().server_frames - before.server_frames, 12u * 12u);
  network.broadcast(source, "three");
  EXPECT_EQ(network.traffic().tree_computations, before.tree_computations + 1);
  // A newcomer and its links change the view: one tree more.
  network.add_peer(config);
  network.run_for(2 * kSecond);
  network.broadcast(source, "four");
  network.broadcast(source, "five");
  EXPECT_EQ(network.traffic().tree_computations, before.tree_computations + 2);
}

TEST(ControlPlaneSim, PacedStatusesCutTheServersDeliveriesAndLoseNothing) {
  // 40 members refreshing 1 status/s in all: each every 40 s instead of 10.
  // Links settle within seconds, keep-alive RTTs on the virtual network stay
  // within the threshold: most ticks publish nothing.
  const ScenarioResult every = run(40, MeshConfig{}.status_interval, 0);
  const ScenarioResult paced = run(40, MeshConfig{}.status_interval, 1);
  EXPECT_LT(paced.server_deliveries_per_s, 0.5 * every.server_deliveries_per_s)
      << paced.server_deliveries_per_s << " against " << every.server_deliveries_per_s;
  EXPECT_LT(paced.control_msgs_per_peer_per_s, every.control_msgs_per_peer_per_s);
  EXPECT_EQ(paced.delivery_ratio, 1.0);
  EXPECT_EQ(every.delivery_ratio, 1.0);
}

TEST(ControlPlaneSim, ServerBatchesCutTheFramesAPeerGetsAndLoseNothing) {
  // Statuses every interval (no pacing), in step: 40 updates within a
  // second or two reach a peer in a few batch frames (the first at once,
  // then one per 200 ms window) instead of one frame each.
  const TimeUs interval = MeshConfig{}.status_interval;
  const ScenarioResult single = run(40, interval, 0, 0);
  const ScenarioResult batched = run(40, interval, 0, 200 * kMillisecond);
  EXPECT_LT(batched.server_deliveries_per_s, 0.5 * single.server_deliveries_per_s)
      << batched.server_deliveries_per_s << " against " << single.server_deliveries_per_s;
  EXPECT_LT(batched.control_msgs_per_peer_per_s - batched.keepalives_per_peer_per_s,
            0.5 * (single.control_msgs_per_peer_per_s - single.keepalives_per_peer_per_s));
  EXPECT_EQ(batched.delivery_ratio, 1.0);
  EXPECT_EQ(single.delivery_ratio, 1.0);
}

}  // namespace
}  // namespace p2pmesh::sim
