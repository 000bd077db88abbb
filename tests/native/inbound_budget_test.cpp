// InboundBudget: received bytes waiting for the loop stay bounded.

#include <gtest/gtest.h>

#include "inbound_budget.hpp"

namespace p2pmesh::native {
namespace {

TEST(InboundBudget, RefusesAndCountsWhatDoesNotFitAndFreesWhatWasHandled) {
  InboundBudget budget(100);
  EXPECT_TRUE(budget.take(60));
  EXPECT_TRUE(budget.take(40));
  EXPECT_FALSE(budget.take(1));
  EXPECT_FALSE(budget.take(200));
  EXPECT_EQ(budget.drops(), 2u);
  EXPECT_EQ(budget.pending(), 100u);
  budget.give_back(60);
  EXPECT_TRUE(budget.take(50));
  EXPECT_EQ(budget.pending(), 90u);
}

}  // namespace
}  // namespace p2pmesh::native
