#include "peer_slot_index.hpp"

#include <gtest/gtest.h>

#include <map>
#include <random>

namespace p2pmesh {
namespace {

TEST(PeerSlotIndex, FindsWhatWasInserted) {
  PeerSlotIndex index;
  EXPECT_EQ(index.find(1), PeerSlotIndex::kNotFound);
  EXPECT_TRUE(index.insert(1, 10));
  EXPECT_TRUE(index.insert(0xFFFF'FFFFu, 11));
  EXPECT_FALSE(index.insert(1, 12)) << "already there";
  EXPECT_FALSE(index.insert(kNoPeer, 13));
  EXPECT_EQ(index.find(1), 10u);
  EXPECT_EQ(index.find(0xFFFF'FFFFu), 11u);
  EXPECT_EQ(index.find(kNoPeer), PeerSlotIndex::kNotFound);
  EXPECT_EQ(index.size(), 2u);
  EXPECT_TRUE(index.erase(1));
  EXPECT_FALSE(index.erase(1));
  EXPECT_EQ(index.find(1), PeerSlotIndex::kNotFound);
  EXPECT_EQ(index.find(0xFFFF'FFFFu), 11u);
  index.clear();
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.find(0xFFFF'FFFFu), PeerSlotIndex::kNotFound);
}

// Random inserts and erases (dense id ranges, so probe runs collide and wrap)
// against std::map.
TEST(PeerSlotIndex, MatchesModelUnderRandomOperations) {
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    const PeerId base = seed % 2 == 0 ? 1u : 0xFFFF'F000u;
    PeerSlotIndex index;
    std::map<PeerId, std::uint32_t> model;
    for (int step = 0; step < 20000; ++step) {
      const PeerId peer = base + static_cast<PeerId>(rng() % 600);
      if (rng() % 3 == 0) {
        ASSERT_EQ(index.erase(peer), model.erase(peer) != 0);
      } else {
        const auto slot = static_cast<std::uint32_t>(step);
        ASSERT_EQ(index.insert(peer, slot), model.emplace(peer, slot).second);
      }
      ASSERT_EQ(index.size(), model.size());
    }
    for (PeerId peer = base; peer < base + 600; ++peer) {
      const auto it = model.find(peer);
      ASSERT_EQ(index.find(peer), it == model.end() ? PeerSlotIndex::kNotFound : it->second);
    }
  }
}

}  // namespace
}  // namespace p2pmesh
