#include "random.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

namespace p2pmesh {
namespace {

TEST(Random, PickDistinctNeverRepeatsAndIsSeeded) {
  std::vector<int> pool(50);
  for (int i = 0; i < 50; ++i) pool[i] = i;
  for (std::uint64_t seed = 1; seed < 500; ++seed) {
    Random random(seed);
    const auto picked = random.pick_distinct(pool, 6);
    ASSERT_EQ(picked.size(), 6u);
    EXPECT_EQ(std::set<int>(picked.begin(), picked.end()).size(), 6u);
    Random again(seed);
    EXPECT_EQ(again.pick_distinct(pool, 6), picked);
  }
  Random random(3);
  EXPECT_EQ(random.pick_distinct(std::vector<int>{1, 2}, 6).size(), 2u);
}

TEST(Random, BelowCoversTheWholeRangeUniformly) {
  Random random(9);
  std::vector<int> counts(7);
  for (int i = 0; i < 70000; ++i) ++counts[random.below(7)];
  for (const int c : counts) EXPECT_NEAR(c, 10000, 500);
}

}  // namespace
}  // namespace p2pmesh
