#include "pooled_lists.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <vector>

// Counts the test binary's heap allocations (PacksInPlace... asserts none).
static std::atomic<std::size_t> g_allocations{0};
void* operator new(std::size_t bytes) {
  ++g_allocations;
  if (void* p = std::malloc(bytes == 0 ? 1 : bytes)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

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

// Lists that keep moving (each push_back moves its list to the end of the
// pool) while their total stays the same: the holes are packed in place,
// with no allocation, and the pool keeps the size the live elements needed.
TEST(PooledLists, PacksInPlaceWhenTheLiveSizeStaysTheSame) {
  PooledLists<int> lists;
  std::vector<std::vector<int>> model(100);
  lists.ensure(model.size());
  for (std::size_t list = 0; list < model.size(); ++list) {
    for (int i = 0; i < 5; ++i) {
      lists.push_back(list, i);
      model[list].push_back(i);
    }
  }
  std::size_t capacity = 0;
  std::size_t allocations = 0;
  for (int step = 0; step < 20000; ++step) {
    const std::size_t list = static_cast<std::size_t>(step * 37) % model.size();
    lists.swap_erase(list, 0);
    model[list][0] = model[list].back();
    model[list].pop_back();
    lists.push_back(list, step);
    model[list].push_back(step);
    if (step == 1000) {
      capacity = lists.pool_capacity();
      allocations = g_allocations;
    }
  }
  EXPECT_EQ(g_allocations - allocations, 0u) << "the pool was packed into new memory";
  EXPECT_EQ(lists.pool_capacity(), capacity);
  EXPECT_LE(capacity, 500u + 500u / 8 + 16);
  for (std::size_t list = 0; list < model.size(); ++list) {
    EXPECT_EQ(as_vector(lists, list), model[list]) << list;
  }
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
