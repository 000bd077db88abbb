// StatusPacing: a full status goes out when it says something new or a
// refresh is due, and refreshes spread out as the group grows.

#include "status_pacing.hpp"

#include <gtest/gtest.h>

namespace p2pmesh {
namespace {

constexpr TimeUs kInterval = 10 * kSecond;

wire::MeshStatus status(std::vector<PeerId> links, std::vector<std::uint32_t> rtt, std::uint64_t next_seq = 1) {
  wire::MeshStatus s;
  s.connected_to = std::move(links);
  s.rtt_us = std::move(rtt);
  s.next_seq = next_seq;
  return s;
}

TEST(StatusPacing, WithoutPacingEveryTickPublishes) {
  StatusPacing pacing(kInterval, 0);
  Random random(1);
  const wire::MeshStatus s = status({2, 3}, {5000, 6000});
  pacing.published(0, s, 10000, random);
  EXPECT_TRUE(pacing.due(kInterval, s, {}));
  EXPECT_EQ(pacing.refresh_period(10000), kInterval);
}

TEST(StatusPacing, AnUnchangedStatusWaitsForItsRefresh) {
  StatusPacing pacing(kInterval, 10);
  Random random(1);
  const wire::MeshStatus s = status({2, 3}, {5000, 6000});
  EXPECT_TRUE(pacing.due(0, s, {})) << "the first one always goes";
  pacing.published(0, s, 1000, random);  // 1,000 members: one refresh per 100 s
  EXPECT_EQ(pacing.refresh_period(1000), 100 * kSecond);
  EXPECT_FALSE(pacing.due(kInterval, s, {}));
  // Within noise: 5,000 -> 5,900 us is under 25%.
  EXPECT_FALSE(pacing.due(kInterval, status({2, 3}, {5900, 6000}), {}));
  // What the group does not know goes out at the next tick.
  EXPECT_TRUE(pacing.due(kInterval, status({2, 3}, {9000, 6000}), {})) << "an RTT past the threshold";
  EXPECT_FALSE(pacing.due(kInterval, status({2, 3}, {5000, 6000}, 7), {}))
      << "broadcasts sent: the neighbours hear of the tail (MeshNode::announce_tail)";
  // Links are announced as they change: only a new link's RTT is news, told
  // by the end that dialled it.
  EXPECT_FALSE(pacing.due(kInterval, status({2}, {5000}), {}));
  EXPECT_FALSE(pacing.due(kInterval, status({2, 3, 4}, {5000, 6000, 0}), {4})) << "not measured yet";
  EXPECT_FALSE(pacing.due(kInterval, status({2, 3, 4}, {5000, 6000, 800}), {}));
  EXPECT_TRUE(pacing.due(kInterval, status({2, 3, 4}, {5000, 6000, 800}), {4}));
  EXPECT_TRUE(pacing.due(kInterval, status({3, 4}, {9000, 800}), {})) << "matched by peer, not index";
  // The refresh comes within 2 periods (jittered), and on average after one.
  EXPECT_TRUE(pacing.due(200 * kSecond, s, {}));
}

TEST(StatusPacing, RefreshesSpreadOutAndAverageThePeriod) {
  StatusPacing pacing(kInterval, 10);
  Random random(3);
  const wire::MeshStatus s = status({2}, {5000});
  TimeUs now = 0;
  int published = 0;
  for (int tick = 0; tick < 100000; ++tick, now += kInterval) {
    if (pacing.due(now, s, {})) {
      pacing.published(now, s, 500, random);  // period 50 s
      ++published;
    }
  }
  const double mean_s = static_cast<double>(now) / kSecond / published;
  EXPECT_GT(mean_s, 45);
  EXPECT_LT(mean_s, 55);
  EXPECT_EQ(pacing.silence_allowed(500), 150 * kSecond);
}

TEST(StatusPacing, AnRttChangeCountsPastBothBounds) {
  EXPECT_FALSE(StatusPacing::rtt_changed(2000, 2900)) << "45% but under 1 ms";
  EXPECT_TRUE(StatusPacing::rtt_changed(2000, 3000));
  EXPECT_FALSE(StatusPacing::rtt_changed(40000, 49000)) << "9 ms but under 25%";
  EXPECT_TRUE(StatusPacing::rtt_changed(40000, 30000));
  EXPECT_TRUE(StatusPacing::rtt_changed(0, 500)) << "first measurement";
  EXPECT_FALSE(StatusPacing::rtt_changed(700, 700));
}

}  // namespace
}  // namespace p2pmesh
