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

TEST(DuplicateFilter, WindowSlidesAndTooOldIdsAreDropped) {
  DuplicateFilter filter;
  EXPECT_TRUE(filter.first_time(1, 1000));
  EXPECT_TRUE(filter.first_time(1, 1000 - 63));
  EXPECT_FALSE(filter.first_time(1, 1000 - 64)) << "too old to tell: dropped";
  EXPECT_TRUE(filter.first_time(1, 5000));
  EXPECT_FALSE(filter.first_time(1, 1000));
  filter.forget(1);
  EXPECT_EQ(filter.sources(), 0u);
}

}  // namespace
}  // namespace p2pmesh
