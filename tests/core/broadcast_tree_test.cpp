#include "broadcast_tree.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <limits>
#include <map>
#include <numeric>
#include <queue>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace p2pmesh {
namespace {

using Edges = std::vector<wire::Edge>;

struct Link {
  PeerId a;
  PeerId b;
  std::uint32_t weight_us;
};

struct Graph {
  std::vector<PeerId> peers;
  std::vector<Link> links;
};

// A seeded random graph: a few hundred peers at most, ids small, random or
// near UINT32_MAX, connected or not, weights unknown / few distinct values
// (many ties) / wide.
Graph random_graph(std::mt19937_64& rng, std::size_t max_peers) {
  Graph g;
  const std::size_t n = 1 + rng() % max_peers;
  std::set<PeerId> ids;
  const int id_style = static_cast<int>(rng() % 3);
  while (ids.size() < n) {
    PeerId id;
    if (id_style == 0) {
      id = static_cast<PeerId>(1 + rng() % (2 * n));
    } else if (id_style == 1) {
      id = static_cast<PeerId>(rng());
    } else {
      id = static_cast<PeerId>(0xFFFF'FFFFu - rng() % (3 * n));
    }
    if (id != kNoPeer) ids.insert(id);
  }
  g.peers.assign(ids.begin(), ids.end());
  std::shuffle(g.peers.begin(), g.peers.end(), rng);

  const int weight_style = static_cast<int>(rng() % 4);
  const auto weight = [&]() -> std::uint32_t {
    switch (weight_style) {
      case 0: return 0;                                            // all unknown
      case 1: return static_cast<std::uint32_t>(rng() % 4);       // ties + unknown
      case 2: return static_cast<std::uint32_t>(rng() % 100'000);  // wide
      default: return static_cast<std::uint32_t>(rng());           // full range
    }
  };
  std::set<std::pair<PeerId, PeerId>> seen;
  const auto add = [&](PeerId a, PeerId b) {
    if (a == b || !seen.insert({std::min(a, b), std::max(a, b)}).second) return;
    g.links.push_back({a, b, weight()});
  };
  if (n > 1 && rng() % 3 != 0) {  // a random spanning tree: connected
    for (std::size_t i = 1; i < n; ++i) add(g.peers[i], g.peers[rng() % i]);
  }
  const std::size_t extra = n > 1 ? rng() % (3 * n) : 0;
  for (std::size_t i = 0; i < extra; ++i) add(g.peers[rng() % n], g.peers[rng() % n]);
  return g;
}

// Builds the view in a shuffled order (links in random order and direction,
// isolated peers interleaved).
MeshView build_view(const Graph& g, std::mt19937_64& rng) {
  std::vector<Link> links = g.links;
  std::shuffle(links.begin(), links.end(), rng);
  std::vector<PeerId> peers = g.peers;
  std::shuffle(peers.begin(), peers.end(), rng);
  MeshView view;
  std::size_t p = 0;
  for (const Link& l : links) {
    if (p < peers.size() && rng() % 2 == 0) view.add_peer(peers[p++]);
    if (rng() % 2 == 0) {
      EXPECT_TRUE(view.add_link(l.a, l.b, l.weight_us));
    } else {
      EXPECT_TRUE(view.add_link(l.b, l.a, l.weight_us));
    }
  }
  for (; p < peers.size(); ++p) view.add_peer(peers[p]);
  return view;
}

std::uint64_t weight_of(std::uint32_t w, const TreeOptions& options) {
  return w != 0 ? w : options.unknown_weight_us;
}

// The specification, literally: repeatedly scan every frontier edge and take
// the smallest (key, v, u). O(V * E); small graphs only.
BroadcastTree naive_prim(const MeshView& view, PeerId root, const TreeOptions& options) {
  BroadcastTree tree;
  tree.root = root;
  tree.reached.push_back(root);
  const double alpha = std::isnan(options.alpha) ? 0.0 : std::clamp(options.alpha, 0.0, 1.0);
  std::map<PeerId, std::uint64_t> dist{{root, 0}};
  for (;;) {
    bool found = false;
    std::tuple<std::uint64_t, PeerId, PeerId> best{};
    std::uint64_t best_dist = 0;
    for (const auto& [u, du] : dist) {
      for (const Neighbour& n : view.neighbours(u)) {
        if (dist.count(n.peer) != 0) continue;
        const std::uint64_t w = weight_of(n.weight_us, options);
        std::uint64_t key = 1;
        if (options.mode == TreeMode::latency) key = w;
        if (options.mode == TreeMode::blend) {
          key = static_cast<std::uint64_t>(std::floor(alpha * static_cast<double>(du))) + w;
        }
        const std::tuple<std::uint64_t, PeerId, PeerId> candidate{key, n.peer, u};
        if (!found || candidate < best) {
          best = candidate;
          best_dist = du + w;
          found = true;
        }
      }
    }
    if (!found) return tree;
    const PeerId v = std::get<1>(best);
    tree.edges.push_back({std::get<2>(best), v});
    tree.reached.push_back(v);
    dist[v] = best_dist;
  }
}

// Hops from root to every peer of its component (breadth-first).
std::map<PeerId, std::uint32_t> hop_distances(const MeshView& view, PeerId root) {
  std::map<PeerId, std::uint32_t> hops{{root, 0}};
  std::deque<PeerId> queue{root};
  while (!queue.empty()) {
    const PeerId u = queue.front();
    queue.pop_front();
    for (const Neighbour& n : view.neighbours(u)) {
      if (hops.emplace(n.peer, hops[u] + 1).second) queue.push_back(n.peer);
    }
  }
  return hops;
}

std::set<PeerId> bfs_component(const MeshView& view, PeerId root) {
  std::set<PeerId> component;
  for (const auto& [peer, hops] : hop_distances(view, root)) component.insert(peer);
  return component;
}

std::map<PeerId, std::uint64_t> dijkstra(const MeshView& view, PeerId root,
                                         const TreeOptions& options) {
  std::map<PeerId, std::uint64_t> dist;
  using Item = std::pair<std::uint64_t, PeerId>;
  std::priority_queue<Item, std::vector<Item>, std::greater<>> queue;
  queue.push({0, root});
  while (!queue.empty()) {
    const auto [d, u] = queue.top();
    queue.pop();
    if (dist.count(u) != 0) continue;
    dist[u] = d;
    for (const Neighbour& n : view.neighbours(u)) {
      if (dist.count(n.peer) == 0) queue.push({d + weight_of(n.weight_us, options), n.peer});
    }
  }
  return dist;
}

// Kruskal over the links of one component.
std::uint64_t kruskal_weight(const Graph& g, const std::set<PeerId>& component,
                             const TreeOptions& options) {
  std::vector<Link> links;
  for (const Link& l : g.links) {
    // A view keeps a weight above its largest as the largest.
    if (component.count(l.a) != 0) {
      links.push_back({l.a, l.b, std::min(l.weight_us, SlotLink::kMaxWeightUs)});
    }
  }
  std::sort(links.begin(), links.end(), [&](const Link& x, const Link& y) {
    return weight_of(x.weight_us, options) < weight_of(y.weight_us, options);
  });
  std::unordered_map<PeerId, PeerId> parent;
  for (PeerId p : component) parent[p] = p;
  const auto find = [&](PeerId p) {
    while (parent[p] != p) p = parent[p] = parent[parent[p]];
    return p;
  };
  std::uint64_t total = 0;
  for (const Link& l : links) {
    const PeerId ra = find(l.a);
    const PeerId rb = find(l.b);
    if (ra == rb) continue;
    parent[ra] = rb;
    total += weight_of(l.weight_us, options);
  }
  return total;
}

std::uint32_t link_weight(const MeshView& view, PeerId a, PeerId b) {
  for (const Neighbour& n : view.neighbours(a)) {
    if (n.peer == b) return n.weight_us;
  }
  ADD_FAILURE() << "no link " << a << "-" << b;
  return 0;
}

// Structural checks every tree must pass. Returns tree-path distances.
std::map<PeerId, std::uint64_t> check_tree(const MeshView& view, const BroadcastTree& tree,
                                           PeerId root, const TreeOptions& options) {
  std::map<PeerId, std::uint64_t> dist;
  EXPECT_EQ(tree.root, root);
  EXPECT_FALSE(tree.reached.empty());
  if (tree.reached.empty()) return dist;
  EXPECT_EQ(tree.reached.front(), root);
  EXPECT_EQ(tree.edges.size() + 1, tree.reached.size());
  const std::set<PeerId> component = bfs_component(view, root);
  const std::set<PeerId> reached(tree.reached.begin(), tree.reached.end());
  EXPECT_EQ(reached.size(), tree.reached.size()) << "a peer reached twice";
  EXPECT_EQ(reached, component) << "tree does not span root's component";
  dist[root] = 0;
  for (std::size_t i = 0; i < tree.edges.size(); ++i) {
    const wire::Edge& e = tree.edges[i];
    EXPECT_TRUE(view.has_link(e.u, e.v)) << e.u << "->" << e.v << " is not a link";
    EXPECT_EQ(dist.count(e.u), 1u) << "parent " << e.u << " not in the tree before " << e.v;
    EXPECT_EQ(dist.count(e.v), 0u) << e.v << " added twice";
    if (i + 1 < tree.reached.size()) {
      EXPECT_EQ(tree.reached[i + 1], e.v) << "reached order";
    }
    if (dist.count(e.u) == 0) continue;
    dist[e.v] = dist[e.u] + weight_of(link_weight(view, e.u, e.v), options);
  }
  return dist;
}

TreeOptions options_of(TreeMode mode, double alpha = 0.0, std::uint32_t unknown = 50'000) {
  TreeOptions options;
  options.mode = mode;
  options.alpha = alpha;
  options.unknown_weight_us = unknown;
  return options;
}

// --- unit tests --------------------------------------------------------------

TEST(BroadcastTree, RootNotInViewGivesRootOnly) {
  MeshView view;
  view.add_link(1, 2);
  for (TreeMode mode : {TreeMode::unit, TreeMode::latency, TreeMode::blend}) {
    const BroadcastTree tree = compute_broadcast_tree(view, 9, options_of(mode));
    EXPECT_EQ(tree.root, 9u);
    EXPECT_TRUE(tree.edges.empty());
    EXPECT_EQ(tree.reached, std::vector<PeerId>{9});
  }
  const BroadcastTree none = compute_broadcast_tree(view, kNoPeer);
  EXPECT_EQ(none.root, kNoPeer);
  EXPECT_TRUE(none.edges.empty());
  EXPECT_TRUE(none.reached.empty());
}

TEST(BroadcastTree, IsolatedRoot) {
  MeshView view;
  view.add_peer(5);
  view.add_link(1, 2);
  const BroadcastTree tree = compute_broadcast_tree(view, 5);
  EXPECT_TRUE(tree.edges.empty());
  EXPECT_EQ(tree.reached, std::vector<PeerId>{5});
}

TEST(BroadcastTree, UnitModeIsReferencePrim) {
  // From 1: frontier {2, 3} -> 2 (via 1); then 3 via 1 (smaller parent than 2);
  // then 4 via 2 (smaller parent than 3).
  MeshView view;
  view.add_link(3, 4);
  view.add_link(2, 4);
  view.add_link(2, 3);
  view.add_link(1, 3);
  view.add_link(1, 2);
  const BroadcastTree tree = compute_broadcast_tree(view, 1);
  EXPECT_EQ(tree.edges, (Edges{{1, 2}, {1, 3}, {2, 4}}));
  EXPECT_EQ(tree.reached, (std::vector<PeerId>{1, 2, 3, 4}));
}

TEST(BroadcastTree, UnitModeYieldsDeepTreesLikeTheReference) {
  // 9 is a direct neighbour of the root 5, yet the reference takes the
  // smallest id on the frontier each time and reaches 9 last, through 3.
  MeshView view;
  view.add_link(5, 1);
  view.add_link(5, 9);
  view.add_link(1, 2);
  view.add_link(2, 3);
  view.add_link(3, 9);
  const BroadcastTree tree = compute_broadcast_tree(view, 5);
  EXPECT_EQ(tree.edges, (Edges{{5, 1}, {1, 2}, {2, 3}, {3, 9}}));
}

TEST(BroadcastTree, UnitModeIgnoresWeights) {
  MeshView view;
  view.add_link(1, 2, 1'000'000);
  view.add_link(1, 3, 1);
  view.add_link(2, 3, 1);
  EXPECT_EQ(compute_broadcast_tree(view, 1).edges, (Edges{{1, 2}, {1, 3}}));
  EXPECT_EQ(compute_broadcast_tree(view, 1, options_of(TreeMode::latency)).edges,
            (Edges{{1, 3}, {3, 2}}));
}

TEST(BroadcastTree, LatencyModeIsMinimumSpanningTree) {
  //   1 --10-- 2
  //   |  \     |
  //   40  25   5
  //   |     \  |
  //   4 --7--- 3
  MeshView view;
  view.add_link(1, 2, 10);
  view.add_link(1, 4, 40);
  view.add_link(1, 3, 25);
  view.add_link(2, 3, 5);
  view.add_link(3, 4, 7);
  const BroadcastTree tree = compute_broadcast_tree(view, 1, options_of(TreeMode::latency));
  EXPECT_EQ(tree.edges, (Edges{{1, 2}, {2, 3}, {3, 4}}));
}

TEST(BroadcastTree, UnknownLatencyUsesConfiguredWeight) {
  MeshView view;
  view.add_link(1, 2, 0);  // unknown
  view.add_link(1, 3, 100);
  view.add_link(2, 3, 100);
  EXPECT_EQ(compute_broadcast_tree(view, 1, options_of(TreeMode::latency, 0, 50)).edges,
            (Edges{{1, 2}, {1, 3}}));
  EXPECT_EQ(compute_broadcast_tree(view, 1, options_of(TreeMode::latency, 0, 500)).edges,
            (Edges{{1, 3}, {3, 2}}));
}

TEST(BroadcastTree, BlendGoesFromMstToShortestPathTree) {
  // r=1, a=2, b=3: MST is 1-2-3 (20), shortest path to 3 is direct (15).
  MeshView view;
  view.add_link(1, 2, 10);
  view.add_link(2, 3, 10);
  view.add_link(1, 3, 15);
  EXPECT_EQ(compute_broadcast_tree(view, 1, options_of(TreeMode::blend, 0.0)).edges,
            (Edges{{1, 2}, {2, 3}}));
  EXPECT_EQ(compute_broadcast_tree(view, 1, options_of(TreeMode::blend, 0.4)).edges,
            (Edges{{1, 2}, {2, 3}}));  // 0.4*10 + 10 = 14 < 15
  EXPECT_EQ(compute_broadcast_tree(view, 1, options_of(TreeMode::blend, 0.6)).edges,
            (Edges{{1, 2}, {1, 3}}));  // 0.6*10 + 10 = 16 > 15
  EXPECT_EQ(compute_broadcast_tree(view, 1, options_of(TreeMode::blend, 1.0)).edges,
            (Edges{{1, 2}, {1, 3}}));
}

TEST(BroadcastTree, BlendAlphaIsClamped) {
  MeshView view;
  view.add_link(1, 2, 10);
  view.add_link(2, 3, 10);
  view.add_link(1, 3, 15);
  const auto tree_with = [&](double alpha) {
    return compute_broadcast_tree(view, 1, options_of(TreeMode::blend, alpha)).edges;
  };
  EXPECT_EQ(tree_with(7.0), tree_with(1.0));
  EXPECT_EQ(tree_with(std::numeric_limits<double>::infinity()), tree_with(1.0));
  EXPECT_EQ(tree_with(-3.0), tree_with(0.0));
  EXPECT_EQ(tree_with(std::numeric_limits<double>::quiet_NaN()), tree_with(0.0));
}

TEST(BroadcastTree, BlendKeysAreWholeMicroseconds) {
  // alpha * dist is rounded down: via 2, key(3) = floor(0.5 * 3) + 10 = 11,
  // which ties with the direct link (11); the tie goes to the smaller parent.
  MeshView view;
  view.add_link(5, 2, 3);
  view.add_link(2, 3, 10);
  view.add_link(5, 3, 11);
  view.add_link(4, 3, 1);
  view.add_link(4, 2, 100);
  EXPECT_EQ(compute_broadcast_tree(view, 5, options_of(TreeMode::blend, 0.5)).edges,
            (Edges{{5, 2}, {2, 3}, {3, 4}}));
  EXPECT_EQ(compute_broadcast_tree(view, 5, options_of(TreeMode::blend, 0.7)).edges,
            (Edges{{5, 2}, {5, 3}, {3, 4}}));  // floor(2.1) + 10 = 12 > 11
}

TEST(BroadcastTree, BlendWithHugeLatenciesMatchesSpecification) {
  // Tree-path latencies beyond 2^32 us take the wide-key path; same rules.
  // A view keeps weights up to SlotLink::kMaxWeightUs: the huge ones are
  // unknown links, weighed at unknown_weight_us.
  MeshView view;
  const std::uint32_t big = SlotLink::kMaxWeightUs;
  for (PeerId p = 1; p < 40; ++p) {
    view.add_link(p, p + 1, p % 2 == 0 ? 0 : big - p);
    if (p % 3 == 0) view.add_link(p, p + 2, big);
    if (p % 5 == 0) view.add_link(1, p, 0);
  }
  for (double alpha : {0.0, 0.3, 1.0}) {
    const auto options = options_of(TreeMode::blend, alpha, 0xFFFF'FFFFu);
    const BroadcastTree tree = compute_broadcast_tree(view, 1, options);
    EXPECT_EQ(tree.edges, naive_prim(view, 1, options).edges) << alpha;
    if (alpha == 1.0) {
      EXPECT_EQ(check_tree(view, tree, 1, options), dijkstra(view, 1, options));
    }
  }
}

TEST(BroadcastTree, LatencyTiesBrokenByChildThenParentId) {
  // All weights equal: behaves like unit mode.
  MeshView view;
  view.add_link(10, 30, 7);
  view.add_link(10, 20, 7);
  view.add_link(20, 40, 7);
  view.add_link(30, 40, 7);
  view.add_link(30, 25, 7);
  const BroadcastTree tree = compute_broadcast_tree(view, 10, options_of(TreeMode::latency));
  EXPECT_EQ(tree.edges, (Edges{{10, 20}, {10, 30}, {30, 25}, {20, 40}}));
  EXPECT_EQ(tree.edges, compute_broadcast_tree(view, 10).edges);
}

TEST(BroadcastTree, LargeIdsAndRecomputationAfterChurn) {
  MeshView view;
  const PeerId top = 0xFFFF'FFFFu;
  view.add_link(top, top - 1, 3);
  view.add_link(top - 1, 1, 3);
  view.add_link(1, top, 2);
  view.add_link(1, 77, 1);
  view.remove_peer(77);
  view.add_link(top - 2, top, 1);  // reuses 77's slot
  const BroadcastTree tree = compute_broadcast_tree(view, top, options_of(TreeMode::latency));
  EXPECT_EQ(tree.edges, (Edges{{top, top - 2}, {top, 1}, {1, top - 1}}));
  EXPECT_EQ(compute_broadcast_tree(view, top).edges,
            (Edges{{top, 1}, {top, top - 2}, {1, top - 1}}));
}

TEST(BroadcastTree, LongPathDoesNotRecurse) {
  MeshView view;
  const PeerId n = 50'000;
  for (PeerId p = 1; p < n; ++p) view.add_link(p, p + 1, p % 7);
  for (TreeMode mode : {TreeMode::unit, TreeMode::latency, TreeMode::blend}) {
    const BroadcastTree tree = compute_broadcast_tree(view, n / 2, options_of(mode, 1.0));
    ASSERT_EQ(tree.reached.size(), n);
    EXPECT_EQ(tree.edges.size(), n - 1);
  }
}

// --- properties over random graphs -------------------------------------------

struct Case {
  TreeOptions options;
  std::string name;
};

std::vector<Case> random_cases(std::mt19937_64& rng) {
  const std::uint32_t unknown = rng() % 2 == 0 ? 50'000u : static_cast<std::uint32_t>(rng() % 5);
  const double alpha = static_cast<double>(rng() % 1001) / 1000.0;
  return {
      {options_of(TreeMode::unit, 0, unknown), "unit"},
      {options_of(TreeMode::latency, 0, unknown), "latency"},
      {options_of(TreeMode::blend, 0.0, unknown), "blend0"},
      {options_of(TreeMode::blend, alpha, unknown), "blend" + std::to_string(alpha)},
      {options_of(TreeMode::blend, 0.5, unknown), "blend0.5"},
      {options_of(TreeMode::blend, 1.0, unknown), "blend1"},
  };
}

TEST(BroadcastTreeProperty, SpansComponentRootedAndOptimal) {
  int trees = 0;
  for (std::uint64_t seed = 1; seed <= 1500; ++seed) {
    std::mt19937_64 rng(seed);
    const Graph g = random_graph(rng, seed % 10 == 0 ? 300 : 60);
    const MeshView view = build_view(g, rng);
    const PeerId root = g.peers[rng() % g.peers.size()];
    const std::set<PeerId> component = bfs_component(view, root);
    for (const Case& c : random_cases(rng)) {
      SCOPED_TRACE("seed " + std::to_string(seed) + " " + c.name);
      const BroadcastTree tree = compute_broadcast_tree(view, root, c.options);
      const auto dist = check_tree(view, tree, root, c.options);
      ++trees;
      if (c.options.mode == TreeMode::latency ||
          (c.options.mode == TreeMode::blend && c.options.alpha == 0.0)) {
        std::uint64_t total = 0;
        for (const wire::Edge& e : tree.edges) {
          total += weight_of(link_weight(view, e.u, e.v), c.options);
        }
        ASSERT_EQ(total, kruskal_weight(g, component, c.options));
      }
      if (c.options.mode == TreeMode::blend && c.options.alpha == 1.0) {
        ASSERT_EQ(dist, dijkstra(view, root, c.options)) << "not a shortest-path tree";
      }
      if (g.peers.size() <= 60) {
        const BroadcastTree expect = naive_prim(view, root, c.options);
        ASSERT_EQ(tree.edges, expect.edges) << "differs from the literal specification";
        ASSERT_EQ(tree.reached, expect.reached);
      }
      if (::testing::Test::HasFailure()) return;
    }
  }
  EXPECT_GT(trees, 8000);
}

// Depth of every peer in the tree.
std::map<PeerId, std::uint32_t> tree_depths(const BroadcastTree& tree) {
  std::map<PeerId, std::uint32_t> depth{{tree.root, 0}};
  for (const wire::Edge& e : tree.edges) depth[e.v] = depth.at(e.u) + 1;
  return depth;
}
std::uint32_t deepest(const std::map<PeerId, std::uint32_t>& depths) {
  std::uint32_t most = 0;
  for (const auto& [peer, d] : depths) most = std::max(most, d);
  return most;
}

TEST(BroadcastTree, DepthLimitTradesALittleLatencyForFewerRelays) {
  // Root 1. The fast way to 5 is the chain 1-2-3-4-5 (4 x 10, 4 hops); 5 is
  // also one slow hop away (1-5: 100). Breadth-first depth is 2.
  MeshView view;
  view.add_link(1, 2, 10);
  view.add_link(2, 3, 10);
  view.add_link(3, 4, 10);
  view.add_link(4, 5, 10);
  view.add_link(1, 5, 100);
  TreeOptions options = options_of(TreeMode::blend, 1.0);
  EXPECT_EQ(compute_broadcast_tree(view, 1, options).edges,
            (Edges{{1, 2}, {2, 3}, {3, 4}, {4, 5}}));
  options.max_depth = 4;  // the limit is not reached: unchanged
  EXPECT_EQ(compute_broadcast_tree(view, 1, options).edges,
            (Edges{{1, 2}, {2, 3}, {3, 4}, {4, 5}}));
  // 3 deep: 4 still takes the fast chain, 5 cannot.
  options.max_depth = 3;
  EXPECT_EQ(compute_broadcast_tree(view, 1, options).edges,
            (Edges{{1, 2}, {2, 3}, {3, 4}, {1, 5}}));
  // 2 deep, or less than breadth-first allows: as shallow as breadth-first,
  // the faster parent where there is a choice (3 via 2 rather than via 4).
  for (const std::uint32_t depth : {2u, 1u}) {
    options.max_depth = depth;
    EXPECT_EQ(compute_broadcast_tree(view, 1, options).edges,
              (Edges{{1, 2}, {2, 3}, {1, 5}, {5, 4}}));
  }
}

TEST(BroadcastTreeProperty, DepthLimitBoundsDepthAndStillSpansTheComponent) {
  int limited = 0;
  for (std::uint64_t seed = 1; seed <= 600; ++seed) {
    std::mt19937_64 rng(seed * 104729);
    const Graph g = random_graph(rng, seed % 10 == 0 ? 300 : 60);
    const MeshView view = build_view(g, rng);
    const PeerId root = g.peers[rng() % g.peers.size()];
    const std::uint32_t eccentricity = deepest(hop_distances(view, root));
    for (const Case& c : random_cases(rng)) {
      if (c.options.mode == TreeMode::unit) continue;  // the reference's: no limit
      for (const std::uint32_t extra : {0u, 1u, 2u}) {
        for (const std::uint32_t max_depth : {eccentricity + extra, 1 + extra}) {
          SCOPED_TRACE("seed " + std::to_string(seed) + " " + c.name + " max depth " +
                       std::to_string(max_depth));
          TreeOptions options = c.options;
          options.max_depth = max_depth;
          const BroadcastTree tree = compute_broadcast_tree(view, root, options);
          check_tree(view, tree, root, options);
          const std::uint32_t depth = deepest(tree_depths(tree));
          ASSERT_EQ(tree.depth, depth);
          ASSERT_LE(depth, std::max(eccentricity, max_depth));
          if (max_depth <= eccentricity) {
            ASSERT_EQ(depth, eccentricity);
          }
          // Started limited (the previous tree broke the limit): the same
          // bounds, and the same tree where this one was limited too.
          options.start_limited = true;
          const BroadcastTree hinted = compute_broadcast_tree(view, root, options);
          check_tree(view, hinted, root, options);
          ASSERT_TRUE(hinted.depth_limited);
          ASSERT_LE(hinted.depth, std::max(eccentricity, max_depth));
          if (tree.depth_limited) {
            ASSERT_EQ(hinted.edges, tree.edges);
          }
          ++limited;
          if (::testing::Test::HasFailure()) return;
        }
      }
    }
  }
  EXPECT_GT(limited, 16000);
}

TEST(BroadcastTreeProperty, SameViewSameTreeWhateverTheInsertionOrder) {
  for (std::uint64_t seed = 1; seed <= 400; ++seed) {
    std::mt19937_64 rng(seed * 7919);
    const Graph g = random_graph(rng, 200);
    const MeshView first = build_view(g, rng);
    // Same links, other orders; one more built with churn (peers removed and
    // re-added) so that slot numbers differ.
    const MeshView second = build_view(g, rng);
    MeshView churned;
    for (PeerId p : g.peers) churned.add_link(p, 0xABCD'0000u ^ p, 1);
    churned.add_peer(42);
    for (PeerId p : g.peers) churned.remove_peer(0xABCD'0000u ^ p);
    if (std::find(g.peers.begin(), g.peers.end(), 42u) == g.peers.end()) churned.remove_peer(42);
    std::vector<Link> links = g.links;
    std::shuffle(links.begin(), links.end(), rng);
    for (const Link& l : links) churned.add_link(l.b, l.a, l.weight_us);
    for (PeerId p : g.peers) churned.add_peer(p);
    ASSERT_EQ(churned.peers(), first.peers());
    ASSERT_EQ(churned.link_count(), first.link_count());

    const PeerId root = g.peers[rng() % g.peers.size()];
    for (const Case& c : random_cases(rng)) {
      SCOPED_TRACE("seed " + std::to_string(seed) + " " + c.name);
      const BroadcastTree a = compute_broadcast_tree(first, root, c.options);
      const BroadcastTree b = compute_broadcast_tree(second, root, c.options);
      const BroadcastTree d = compute_broadcast_tree(churned, root, c.options);
      ASSERT_EQ(a.edges, b.edges);
      ASSERT_EQ(a.reached, b.reached);
      ASSERT_EQ(a.edges, d.edges);
      ASSERT_EQ(a.reached, d.reached);
    }
  }
}

}  // namespace
}  // namespace p2pmesh
