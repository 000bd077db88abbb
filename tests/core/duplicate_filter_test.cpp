#include "duplicate_filter.hpp"

#include <gtest/gtest.h>

namespace p2pmesh {
namespace {

TEST(DuplicateFilter, PassesEachMessageIdOncePerSource) {
  DuplicateFilter filter;
  EXPECT_TRUE(filter.first_time(1, 1));
  EXPECT_FALSE(filter.first_time(1, 1));
  EXPECT_TRUE(filter.first_time(2, 1)) << "ids are per source";
  EXPECT_TRUE(filter.first_time(1, 3));
  EXPECT_TRUE(filter.first_time(1, 2)) << "late but unseen";
  EXPECT_FALSE(filter.first_time(1, 2));
  EXPECT_FALSE(filter.first_time(1, 3));
}

TEST(DuplicateFilter, PacketsWithoutIdAlwaysPass) {
  DuplicateFilter filter;
  EXPECT_TRUE(filter.first_time(1, 0));
  EXPECT_TRUE(filter.first_time(1, 0));
}

TEST(DuplicateFilter, WindowSlidesAndIdsOlderThanItAreDelivered) {
  DuplicateFilter filter;
  EXPECT_TRUE(filter.first_time(1, 5000));
  EXPECT_TRUE(filter.first_time(1, 5000 - 1023));
  EXPECT_FALSE(filter.first_time(1, 5000 - 1023)) << "inside the window: a repeat";
  EXPECT_TRUE(filter.first_time(1, 5000 - 1024)) << "too old to tell: delivered, not lost";
  EXPECT_TRUE(filter.first_time(1, 5001));
  EXPECT_TRUE(filter.first_time(1, 6000)) << "slides";
  EXPECT_TRUE(filter.first_time(1, 5999)) << "skipped ids are unseen";
  EXPECT_FALSE(filter.first_time(1, 5001)) << "still inside the window";
  filter.forget(1);
  EXPECT_EQ(filter.sources(), 0u);
}

TEST(DuplicateFilter, AForgedHugeIdDoesNotSilenceTheRealSource) {
  DuplicateFilter filter;
  for (std::uint64_t seq = 1; seq <= 10; ++seq) EXPECT_TRUE(filter.first_time(7, seq));
  EXPECT_TRUE(filter.first_time(7, ~std::uint64_t{0} - 1));  // forged
  for (std::uint64_t seq = 11; seq <= 20; ++seq) EXPECT_TRUE(filter.first_time(7, seq)) << seq;
}

TEST(DuplicateFilter, NewSourcesAreRememberedOnlyWhenAllowed) {
  DuplicateFilter filter;
  EXPECT_TRUE(filter.first_time(9, 1, false));
  EXPECT_TRUE(filter.first_time(9, 1, false)) << "not remembered";
  EXPECT_EQ(filter.sources(), 0u);
  EXPECT_TRUE(filter.first_time(9, 1, true));
  EXPECT_FALSE(filter.first_time(9, 1, false)) << "known sources are always checked";
  EXPECT_EQ(filter.sources(), 1u);
}

}  // namespace
}  // namespace p2pmesh
