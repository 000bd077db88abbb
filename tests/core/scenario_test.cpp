// mesh-sim's scenario: the three strategies on one seeded scenario. These are
// the targets at a size a test can afford (the figures at 1,000 peers
// are in docs/broadcast.md, made by the bench target).

#include "scenario.hpp"

#include <gtest/gtest.h>

namespace p2pmesh::sim {
namespace {

ScenarioResult run(Strategy strategy, double churn, std::size_t broadcasts) {
  ScenarioOptions options;
  options.peers = 150;
  options.strategy = strategy;
  options.churn_percent_per_minute = churn;
  options.broadcasts = broadcasts;
  options.seed = 3;
  return run_scenario(options);
}

TEST(Scenario, OursDeliversEverythingOnceNearTheOptimumWithFarFewerRoutingBytes) {
  const ScenarioResult ours = run(Strategy::ours, 0, 40);
  const ScenarioResult reference = run(Strategy::reference, 0, 40);
  const ScenarioResult flooding = run(Strategy::flooding, 0, 40);

  EXPECT_EQ(ours.delivery_ratio, 1.0);
  EXPECT_LE(ours.rmr, 0.01);
  EXPECT_LE(ours.latency_ratio, 1.2);
  EXPECT_GE(reference.routing_bytes_per_broadcast, 10 * ours.routing_bytes_per_broadcast);
  EXPECT_LT(ours.last_delivery_ms, reference.last_delivery_ms);

  EXPECT_EQ(reference.delivery_ratio, 1.0);
  EXPECT_EQ(flooding.delivery_ratio, 1.0);
  EXPECT_GT(flooding.rmr, 1.0) << "flooding sends every link's worth";
  EXPECT_EQ(flooding.routing_bytes_per_broadcast, 0.0);
}

TEST(Scenario, OursKeepsDeliveringUnderFivePercentChurnPerMinute) {
  const ScenarioResult ours = run(Strategy::ours, 5, 300);
  EXPECT_GT(ours.churn_events, 3u);
  EXPECT_GE(ours.delivery_ratio, 0.999);
}

TEST(Scenario, MixedGroupDeliversOursExactlyOnceUnderChurnWithNoDuplicateAnywhere) {
  // Half the peers are reference-like (no ids, no repair, phantom links,
  // statuses with unchanged ids): issue #11's target at 300 peers, 5%/min.
  for (const std::uint64_t seed : {4u, 7u}) {
    ScenarioOptions options;
    options.peers = 300;
    options.churn_percent_per_minute = 5;
    options.broadcasts = 300;
    options.reference_share = 0.5;
    options.seed = seed;
    const ScenarioResult mixed = run_scenario(options);
    EXPECT_GT(mixed.reference_peers, 100u);
    EXPECT_GT(mixed.churn_events, 10u);
    EXPECT_EQ(mixed.ours_missed, 0u) << "seed " << seed;
    EXPECT_EQ(mixed.ours_delivery_ratio, 1.0) << "seed " << seed;
    EXPECT_EQ(mixed.duplicates, 0u) << "seed " << seed;
  }
}

}  // namespace
}  // namespace p2pmesh::sim
