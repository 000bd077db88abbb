#include "mesh_view.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <random>
#include <set>
#include <utility>
#include <vector>

namespace p2pmesh {
namespace {

std::map<PeerId, std::uint32_t> neighbour_map(const MeshView& view, PeerId peer) {
  std::map<PeerId, std::uint32_t> out;
  for (const Neighbour& n : view.neighbours(peer)) {
    EXPECT_TRUE(out.emplace(n.peer, n.weight_us).second) << "duplicate neighbour " << n.peer;
  }
  return out;
}

TEST(MeshView, EmptyView) {
  const MeshView view;
  EXPECT_EQ(view.peer_count(), 0u);
  EXPECT_EQ(view.link_count(), 0u);
  EXPECT_TRUE(view.peers().empty());
  EXPECT_FALSE(view.has_peer(1));
  EXPECT_FALSE(view.has_link(1, 2));
  EXPECT_TRUE(view.neighbours(1).empty());
  EXPECT_EQ(view.slot_of(1), MeshView::kNoSlot);
}

TEST(MeshView, AddPeer) {
  MeshView view;
  EXPECT_TRUE(view.add_peer(7));
  EXPECT_FALSE(view.add_peer(7));
  EXPECT_FALSE(view.add_peer(kNoPeer));
  EXPECT_TRUE(view.add_peer(0xFFFF'FFFFu));
  EXPECT_EQ(view.peer_count(), 2u);
  EXPECT_TRUE(view.has_peer(7));
  EXPECT_TRUE(view.has_peer(0xFFFF'FFFFu));
  EXPECT_FALSE(view.has_peer(kNoPeer));
  EXPECT_TRUE(view.neighbours(7).empty());
}

TEST(MeshView, AddLinkAddsEndpointsAndIsUndirected) {
  MeshView view;
  EXPECT_TRUE(view.add_link(1, 2, 300));
  EXPECT_EQ(view.peer_count(), 2u);
  EXPECT_EQ(view.link_count(), 1u);
  EXPECT_TRUE(view.has_link(1, 2));
  EXPECT_TRUE(view.has_link(2, 1));
  ASSERT_EQ(view.neighbours(1).size(), 1u);
  EXPECT_EQ(view.neighbours(1)[0].peer, 2u);
  EXPECT_EQ(view.neighbours(1)[0].weight_us, 300u);
  ASSERT_EQ(view.neighbours(2).size(), 1u);
  EXPECT_EQ(view.neighbours(2)[0].peer, 1u);
  EXPECT_EQ(view.neighbours(2)[0].weight_us, 300u);
}

TEST(MeshView, AddLinkRejectsDuplicatesSelfLinksAndNoPeer) {
  MeshView view;
  ASSERT_TRUE(view.add_link(1, 2, 300));
  EXPECT_FALSE(view.add_link(1, 2, 999));
  EXPECT_FALSE(view.add_link(2, 1, 999));
  EXPECT_EQ(view.neighbours(1)[0].weight_us, 300u) << "an existing link keeps its weight";
  EXPECT_FALSE(view.add_link(3, 3));
  EXPECT_FALSE(view.add_link(kNoPeer, 4));
  EXPECT_FALSE(view.add_link(4, kNoPeer));
  EXPECT_FALSE(view.has_peer(3)) << "a rejected link adds no peer";
  EXPECT_FALSE(view.has_peer(4));
  EXPECT_EQ(view.link_count(), 1u);
  EXPECT_EQ(view.peer_count(), 2u);
}

TEST(MeshView, ATagStaysWithItsEndOfTheLink) {
  // Membership keeps a member's claim of a link in the tag at its end: it
  // must follow that end as other links come and go around it.
  MeshView view;
  view.add_link(1, 2);
  view.add_link(1, 3, 40);
  view.add_link(1, 4);
  const std::uint32_t s1 = view.slot_of(1), s2 = view.slot_of(2), s3 = view.slot_of(3);
  EXPECT_EQ(view.tag(s1, s3), 0u) << "a new link's tags are 0";
  view.end_at(s1, s3)->set_tag(7);
  view.end_at(s3, s1)->set_tag(SlotLink::kMaxTag);
  EXPECT_EQ(view.end_at(s2, s3), nullptr) << "no such link";
  EXPECT_EQ(view.tag(s2, s3), 0u);
  view.remove_link(1, 2);  // the last of 1's links moves into its place
  view.add_link(1, 5);
  EXPECT_EQ(view.tag(s1, s3), 7u);
  EXPECT_EQ(view.tag(s3, s1), SlotLink::kMaxTag);
  EXPECT_EQ(view.weight(1, 3), 40u) << "graph data untouched";
  EXPECT_EQ(view.slot_of(3), s3);
  EXPECT_EQ(view.neighbours(3)[0].peer, 1u) << "a full tag leaves the far end's slot alone";
  view.clear_tags(s3);
  EXPECT_EQ(view.tag(s1, s3), 0u);
  EXPECT_EQ(view.tag(s3, s1), 0u);
  EXPECT_TRUE(view.has_link(1, 3));
}

TEST(MeshView, RemoveLink) {
  MeshView view;
  view.add_link(1, 2);
  view.add_link(2, 3);
  EXPECT_FALSE(view.remove_link(1, 3));
  EXPECT_FALSE(view.remove_link(1, 9));
  EXPECT_FALSE(view.remove_link(1, 1));
  EXPECT_TRUE(view.remove_link(2, 1));
  EXPECT_FALSE(view.remove_link(1, 2));
  EXPECT_EQ(view.link_count(), 1u);
  EXPECT_FALSE(view.has_link(1, 2));
  EXPECT_TRUE(view.has_link(3, 2));
  EXPECT_TRUE(view.has_peer(1)) << "removing a link keeps its endpoints";
  EXPECT_TRUE(view.neighbours(1).empty());
  EXPECT_EQ(neighbour_map(view, 2), (std::map<PeerId, std::uint32_t>{{3, 0}}));
}

TEST(MeshView, SetWeight) {
  MeshView view;
  view.add_link(1, 2, 10);
  view.add_link(1, 3, 20);
  EXPECT_TRUE(view.set_weight(2, 1, 55));
  EXPECT_FALSE(view.set_weight(2, 1, 55)) << "unchanged: the view did not change";
  EXPECT_EQ(view.weight(1, 2), 55u);
  EXPECT_EQ(view.weight(2, 3), 0u);
  EXPECT_FALSE(view.set_weight(2, 3, 1));
  EXPECT_FALSE(view.set_weight(2, 2, 1));
  EXPECT_FALSE(view.set_weight(2, 99, 1));
  EXPECT_EQ(neighbour_map(view, 1), (std::map<PeerId, std::uint32_t>{{2, 55}, {3, 20}}));
  EXPECT_EQ(neighbour_map(view, 2), (std::map<PeerId, std::uint32_t>{{1, 55}}));
  EXPECT_FALSE(view.has_link(2, 3)) << "set_weight never creates a link";
}

TEST(MeshView, AWeightAboveTheLargestIsKeptAsTheLargest) {
  // A link end is 8 bytes: weights saturate at 1.05 s instead of wrapping
  // into a short (preferred) link.
  MeshView view;
  view.add_link(1, 2, SlotLink::kMaxWeightUs + 1);
  EXPECT_EQ(view.weight(1, 2), SlotLink::kMaxWeightUs);
  EXPECT_FALSE(view.set_weight(1, 2, 5'000'000)) << "both saturate: unchanged";
  EXPECT_TRUE(view.set_weight(1, 2, 1));
  EXPECT_EQ(view.weight(2, 1), 1u);
  EXPECT_TRUE(view.set_weight(1, 2, 0xFFFF'FFFFu));
  EXPECT_EQ(view.weight(2, 1), SlotLink::kMaxWeightUs);
  EXPECT_EQ(view.neighbours(1)[0].peer, 2u);
}

TEST(MeshView, AFullViewAddsNoPeerAndNoHalfLink) {
  MeshView view(3);
  EXPECT_TRUE(view.add_link(1, 2));
  EXPECT_FALSE(view.add_link(3, 4)) << "room for one endpoint only";
  EXPECT_FALSE(view.has_peer(3)) << "no endpoint left behind";
  EXPECT_TRUE(view.add_peer(3));
  EXPECT_FALSE(view.add_peer(4));
  EXPECT_EQ(view.slot_of(4), MeshView::kNoSlot);
  EXPECT_TRUE(view.add_link(1, 3)) << "links between peers it holds still come";
  EXPECT_TRUE(view.remove_peer(2));
  EXPECT_TRUE(view.add_link(3, 4)) << "a freed slot is room again";
  EXPECT_EQ(view.peer_count(), 3u);
  EXPECT_EQ(view.link_count(), 2u);
}

TEST(MeshView, RemovePeerDropsItsLinks) {
  MeshView view;
  view.add_link(1, 2);
  view.add_link(1, 3);
  view.add_link(2, 3);
  view.add_link(3, 4);
  EXPECT_FALSE(view.remove_peer(9));
  EXPECT_FALSE(view.remove_peer(kNoPeer));
  EXPECT_TRUE(view.remove_peer(3));
  EXPECT_FALSE(view.remove_peer(3));
  EXPECT_EQ(view.peer_count(), 3u);
  EXPECT_EQ(view.link_count(), 1u);
  EXPECT_FALSE(view.has_peer(3));
  EXPECT_FALSE(view.has_link(1, 3));
  EXPECT_TRUE(view.has_link(1, 2));
  EXPECT_TRUE(view.neighbours(4).empty());
  EXPECT_TRUE(view.neighbours(3).empty());
  EXPECT_EQ(view.peers(), (std::vector<PeerId>{1, 2, 4}));
}

TEST(MeshView, NeighboursOfUnknownPeerAreEmpty) {
  MeshView view;
  view.add_link(1, 2);
  EXPECT_TRUE(view.neighbours(100).empty());
  EXPECT_TRUE(view.neighbours(kNoPeer).empty());
  const MeshView other;
  EXPECT_TRUE(other.neighbours(5).empty());
  EXPECT_EQ(other.neighbours(5).begin(), other.neighbours(5).end());
}

TEST(MeshView, PeersAreSorted) {
  MeshView view;
  for (PeerId p : {50u, 0xFFFF'FFFFu, 3u, 1u, 0x8000'0000u}) view.add_peer(p);
  view.add_link(7, 2);
  EXPECT_EQ(view.peers(), (std::vector<PeerId>{1, 2, 3, 7, 50, 0x8000'0000u, 0xFFFF'FFFFu}));
}

TEST(MeshView, SlotsAreDenseAndReused) {
  MeshView view;
  for (PeerId p = 1; p <= 10; ++p) view.add_peer(p * 1000);
  EXPECT_EQ(view.slot_count(), 10u);
  for (PeerId p = 1; p <= 10; ++p) {
    const auto slot = view.slot_of(p * 1000);
    ASSERT_LT(slot, view.slot_count());
    EXPECT_EQ(view.peer_at(slot), p * 1000);
  }
  // Churn: the slot table never grows beyond the peak number of peers.
  for (int round = 0; round < 100; ++round) {
    const PeerId gone = static_cast<PeerId>((round % 10 + 1) * 1000);
    ASSERT_TRUE(view.remove_peer(gone));
    ASSERT_TRUE(view.add_link(gone, gone == 1000 ? 2000 : 1000, 5));
  }
  EXPECT_EQ(view.slot_count(), 10u);
  EXPECT_EQ(view.peer_count(), 10u);
}

TEST(MeshView, LinksAtSlotsMatchNeighbours) {
  MeshView view;
  view.add_link(10, 20, 1);
  view.add_link(10, 30, 2);
  view.add_link(30, 40, 3);
  view.remove_peer(20);
  view.add_link(50, 10, 4);
  for (PeerId p : view.peers()) {
    const auto slot = view.slot_of(p);
    const auto ns = view.neighbours_at(slot);
    const auto ls = view.links_at(slot);
    const auto by_id = view.neighbours(p);
    ASSERT_EQ(ns.size(), ls.size());
    ASSERT_EQ(ns.size(), by_id.size());
    for (std::size_t i = 0; i < ns.size(); ++i) {
      EXPECT_EQ(view.peer_at(ls[i].slot()), ns[i].peer);
      EXPECT_EQ(ls[i].weight_us(), ns[i].weight_us);
      EXPECT_EQ(by_id[i].peer, ns[i].peer);
    }
  }
}

TEST(MeshView, ClearAndReserve) {
  MeshView view;
  view.reserve(1000);
  view.add_link(1, 2);
  view.add_link(2, 3);
  view.clear();
  EXPECT_EQ(view.peer_count(), 0u);
  EXPECT_EQ(view.link_count(), 0u);
  EXPECT_EQ(view.slot_count(), 0u);
  EXPECT_FALSE(view.has_link(1, 2));
  EXPECT_TRUE(view.add_link(1, 2));
  EXPECT_EQ(view.link_count(), 1u);
}

TEST(MeshView, CopyIsIndependent) {
  MeshView a;
  a.add_link(1, 2, 5);
  MeshView b = a;
  b.remove_peer(1);
  b.add_link(2, 3);
  EXPECT_TRUE(a.has_link(1, 2));
  EXPECT_FALSE(a.has_peer(3));
  EXPECT_FALSE(b.has_peer(1));
  EXPECT_TRUE(b.has_link(2, 3));
}

// Random operations against a trivially correct model (std::map/std::set).
TEST(MeshView, MatchesModelUnderRandomOperations) {
  for (std::uint64_t seed = 1; seed <= 40; ++seed) {
    std::mt19937_64 rng(seed);
    const PeerId base = seed % 2 == 0 ? 1u : 0xFFFF'FF00u;
    const auto random_peer = [&] {
      // Mostly valid ids in a small range (so links collide), sometimes kNoPeer.
      const std::uint64_t r = rng() % 41;
      return r == 40 ? kNoPeer : static_cast<PeerId>(base + r);
    };
    MeshView view;
    std::set<PeerId> model_peers;
    std::map<std::pair<PeerId, PeerId>, std::uint32_t> model_links;  // (min, max)
    const auto key = [](PeerId a, PeerId b) { return std::make_pair(std::min(a, b), std::max(a, b)); };

    for (int step = 0; step < 3000; ++step) {
      const PeerId a = random_peer();
      const PeerId b = random_peer();
      const auto w = static_cast<std::uint32_t>(rng() % 1000);
      switch (rng() % 10) {
        case 0: {
          const bool expect = a != kNoPeer && model_peers.insert(a).second;
          ASSERT_EQ(view.add_peer(a), expect);
          break;
        }
        case 1: {
          bool expect = model_peers.erase(a) != 0;
          for (auto it = model_links.begin(); it != model_links.end();) {
            it = (it->first.first == a || it->first.second == a) ? model_links.erase(it) : std::next(it);
          }
          ASSERT_EQ(view.remove_peer(a), expect);
          break;
        }
        case 2:
        case 3:
        case 4:
        case 5: {
          bool expect = false;
          if (a != b && a != kNoPeer && b != kNoPeer) {
            model_peers.insert(a);
            model_peers.insert(b);
            expect = model_links.emplace(key(a, b), w).second;
          }
          ASSERT_EQ(view.add_link(a, b, w), expect);
          break;
        }
        case 6:
        case 7: {
          const bool expect = a != b && model_links.erase(key(a, b)) != 0;
          ASSERT_EQ(view.remove_link(a, b), expect);
          break;
        }
        default: {
          auto it = a != b ? model_links.find(key(a, b)) : model_links.end();
          const bool expect = it != model_links.end() && it->second != w;
          if (it != model_links.end()) it->second = w;
          ASSERT_EQ(view.set_weight(a, b, w), expect);
          if (it != model_links.end()) {
            ASSERT_EQ(view.weight(a, b), w);
          }
          break;
        }
      }
      ASSERT_EQ(view.peer_count(), model_peers.size());
      ASSERT_EQ(view.link_count(), model_links.size());
      ASSERT_LE(view.slot_count(), 41u);
    }
    ASSERT_EQ(view.peers(), std::vector<PeerId>(model_peers.begin(), model_peers.end()));
    for (PeerId p = base; p < base + 40; ++p) {
      std::map<PeerId, std::uint32_t> expect;
      for (const auto& [link, w] : model_links) {
        if (link.first == p) expect[link.second] = w;
        if (link.second == p) expect[link.first] = w;
      }
      ASSERT_EQ(neighbour_map(view, p), expect) << "seed " << seed << " peer " << p;
      for (PeerId q = base; q < base + 40; ++q) {
        ASSERT_EQ(view.has_link(p, q), p != q && model_links.count(key(p, q)) != 0);
      }
    }
  }
}

}  // namespace
}  // namespace p2pmesh
