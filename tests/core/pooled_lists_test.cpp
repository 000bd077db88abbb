#include "pooled_lists.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace p2pmesh {
namespace {

std::vector<int> as_vector(const PooledLists<int>& lists, std::size_t list) {
  const auto span = lists.at(list);
  return {span.begin(), span.end()};
}

TEST(PooledLists, KeepsVectorOrder) {
  PooledLists<int> lists;
  lists.ensure(2);
  for (int i = 1; i <= 5; ++i) lists.push_back(0, i);
  lists.push_back(1, 9);
  lists.swap_erase(0, 1);
  EXPECT_EQ(as_vector(lists, 0), (std::vector<int>{1, 5, 3, 4}));
  lists.erase_ordered(0, 0);
  EXPECT_EQ(as_vector(lists, 0), (std::vector<int>{5, 3, 4}));
  const std::vector<int> values{7, 8};
  lists.assign(1, values);
  EXPECT_EQ(as_vector(lists, 1), values);
  lists.clear(0);
  EXPECT_TRUE(lists.at(0).empty());
  EXPECT_EQ(as_vector(lists, 1), values);
}

// Random operations on many lists against std::vector (compactions included).
TEST(PooledLists, MatchesVectorsUnderRandomOperations) {
  std::mt19937_64 rng(7);
  PooledLists<int> lists;
  std::vector<std::vector<int>> model(50);
  lists.ensure(model.size());
  for (int step = 0; step < 100000; ++step) {
    const std::size_t list = rng() % model.size();
    auto& expect = model[list];
    switch (rng() % 8) {
      case 0:
        if (!expect.empty()) {
          const std::size_t at = rng() % expect.size();
          expect[at] = expect.back();
          expect.pop_back();
          lists.swap_erase(list, at);
        }
        break;
      case 1:
        if (!expect.empty()) {
          const std::size_t at = rng() % expect.size();
          expect.erase(expect.begin() + static_cast<std::ptrdiff_t>(at));
          lists.erase_ordered(list, at);
        }
        break;
      case 2: {
        std::vector<int> values(rng() % 9);
        for (int& v : values) v = static_cast<int>(rng() % 1000);
        expect = values;
        lists.assign(list, values);
        break;
      }
      case 3:
        if (rng() % 10 == 0) {
          expect.clear();
          lists.clear(list);
        }
        break;
      default: {
        const int value = static_cast<int>(rng() % 1000);
        expect.push_back(value);
        lists.push_back(list, value);
        break;
      }
    }
    if (step % 1000 == 0) {
      for (std::size_t i = 0; i < model.size(); ++i) ASSERT_EQ(as_vector(lists, i), model[i]);
    }
  }
  for (std::size_t i = 0; i < model.size(); ++i) ASSERT_EQ(as_vector(lists, i), model[i]);
}

}  // namespace
}  // namespace p2pmesh
