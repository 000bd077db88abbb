#include "routing.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace p2pmesh {
namespace {

using Edges = std::vector<wire::Edge>;

wire::Packet packet_of(PeerId source, Edges edges, std::string payload = "x",
                       std::uint64_t seq = 0) {
  wire::Packet p;
  p.source = source;
  p.edges = std::move(edges);
  p.payload = std::move(payload);
  p.seq = seq;
  return p;
}

BroadcastTree tree_of(PeerId root, Edges edges) {
  BroadcastTree tree;
  tree.root = root;
  tree.reached.push_back(root);
  for (const wire::Edge& e : edges) tree.reached.push_back(e.v);
  tree.edges = std::move(edges);
  return tree;
}

// 1 -> {2, 3}, 2 -> {4, 5}, 3 -> {6}, 4 -> {7}
const Edges kTree{{1, 2}, {2, 4}, {1, 3}, {2, 5}, {4, 7}, {3, 6}};

// --- to_string -----------------------------------------------------------------

TEST(Routing, ErrorNames) {
  EXPECT_STREQ(to_string(RouteError::none), "none");
  EXPECT_STREQ(to_string(RouteError::too_many_edges), "too_many_edges");
  EXPECT_STREQ(to_string(RouteError::repeated_target), "repeated_target");
  EXPECT_STREQ(to_string(RouteError::not_rooted), "not_rooted");
  EXPECT_STREQ(to_string(RouteError::self_loop), "self_loop");
  EXPECT_STREQ(to_string(RouteError::no_source), "no_source");
  EXPECT_STREQ(to_string(RouteError::no_target), "no_target");
  EXPECT_STREQ(to_string(static_cast<RouteError>(200)), "unknown");
}

// --- plan_broadcast --------------------------------------------------------------

TEST(Routing, BroadcastUnprunedSendsTheWholeTreeToEachChild) {
  const auto hops = plan_broadcast(tree_of(1, kTree), "hello", 42, false);
  ASSERT_EQ(hops.size(), 2u);
  EXPECT_EQ(hops[0].next, 2u);
  EXPECT_EQ(hops[1].next, 3u);
  for (const Hop& hop : hops) {
    EXPECT_EQ(hop.packet, packet_of(1, kTree, "hello", 42));
  }
}

TEST(Routing, BroadcastPrunedSendsEachChildItsSubtree) {
  const auto hops = plan_broadcast(tree_of(1, kTree), "hello", 42, true);
  ASSERT_EQ(hops.size(), 2u);
  EXPECT_EQ(hops[0].next, 2u);
  EXPECT_EQ(hops[0].packet, packet_of(1, {{1, 2}, {2, 4}, {2, 5}, {4, 7}}, "hello", 42));
  EXPECT_EQ(hops[1].next, 3u);
  EXPECT_EQ(hops[1].packet, packet_of(1, {{1, 3}, {3, 6}}, "hello", 42));
}

TEST(Routing, BroadcastWithoutChildren) {
  EXPECT_TRUE(plan_broadcast(tree_of(1, {}), "x", 1, true).empty());
  EXPECT_TRUE(plan_broadcast(tree_of(1, {}), "x", 1, false).empty());
  EXPECT_TRUE(plan_broadcast(BroadcastTree{}, "x", 1, false).empty());
  BroadcastTree no_root = tree_of(kNoPeer, {{kNoPeer, 2}});
  EXPECT_TRUE(plan_broadcast(no_root, "x", 1, false).empty());
}

TEST(Routing, BroadcastPrunedHandlesEdgesOutOfOrder) {
  // A hand-made tree listing children before parents still prunes right, and
  // keeps the original order.
  const Edges shuffled{{4, 7}, {3, 6}, {2, 5}, {1, 3}, {2, 4}, {1, 2}};
  const auto hops = plan_broadcast(tree_of(1, shuffled), "p", 0, true);
  ASSERT_EQ(hops.size(), 2u);
  EXPECT_EQ(hops[0].next, 3u);
  EXPECT_EQ(hops[0].packet.edges, (Edges{{3, 6}, {1, 3}}));
  EXPECT_EQ(hops[1].next, 2u);
  EXPECT_EQ(hops[1].packet.edges, (Edges{{4, 7}, {2, 5}, {2, 4}, {1, 2}}));
}

// --- plan_relay ----------------------------------------------------------------

TEST(Routing, RelayUnprunedForwardsThePacketUnchanged) {
  const wire::Packet in = packet_of(1, kTree, "data", 9);
  const auto hops = plan_relay(in, 2, false);
  ASSERT_EQ(hops.size(), 2u);
  EXPECT_EQ(hops[0].next, 4u);
  EXPECT_EQ(hops[1].next, 5u);
  EXPECT_EQ(hops[0].packet, in);
  EXPECT_EQ(hops[1].packet, in);
}

TEST(Routing, RelayPrunedKeepsPathFromSourceAndSubtree) {
  const wire::Packet in = packet_of(1, kTree, "data", 9);
  const auto hops = plan_relay(in, 2, true);
  ASSERT_EQ(hops.size(), 2u);
  EXPECT_EQ(hops[0].next, 4u);
  EXPECT_EQ(hops[0].packet, packet_of(1, {{1, 2}, {2, 4}, {4, 7}}, "data", 9));
  EXPECT_EQ(hops[1].next, 5u);
  EXPECT_EQ(hops[1].packet, packet_of(1, {{1, 2}, {2, 5}}, "data", 9));
  // One level further down: the path grows, the route stays rooted.
  const auto deeper = plan_relay(hops[0].packet, 4, true);
  ASSERT_EQ(deeper.size(), 1u);
  EXPECT_EQ(deeper[0].next, 7u);
  EXPECT_EQ(deeper[0].packet.edges, (Edges{{1, 2}, {2, 4}, {4, 7}}));
  EXPECT_EQ(validate_route(deeper[0].packet, 16), RouteError::none);
}

TEST(Routing, RelayWithoutOwnEdgesHasNoHops) {
  const wire::Packet in = packet_of(1, kTree);
  for (bool prune : {false, true}) {
    EXPECT_TRUE(plan_relay(in, 7, prune).empty()) << "a leaf";
    EXPECT_TRUE(plan_relay(in, 99, prune).empty()) << "not in the tree";
    EXPECT_TRUE(plan_relay(in, kNoPeer, prune).empty());
    EXPECT_TRUE(plan_relay(packet_of(1, {}), 1, prune).empty()) << "fallback packet";
  }
}

TEST(Routing, RelayBySourceEqualsBroadcast) {
  const wire::Packet in = packet_of(1, kTree, "z", 3);
  for (bool prune : {false, true}) {
    const auto relay = plan_relay(in, 1, prune);
    const auto broadcast = plan_broadcast(tree_of(1, kTree), "z", 3, prune);
    ASSERT_EQ(relay.size(), broadcast.size());
    for (std::size_t i = 0; i < relay.size(); ++i) {
      EXPECT_EQ(relay[i].next, broadcast[i].next);
      EXPECT_EQ(relay[i].packet, broadcast[i].packet);
    }
  }
}

TEST(Routing, RelayPrunedOnHostilePacketsIsSafe) {
  // Not validated: cycles, repeated targets, dangling edges. Must not hang or
  // crash; every hop still goes to a v of an edge (self, v).
  const std::vector<wire::Packet> hostile{
      packet_of(1, {{2, 3}, {3, 2}, {2, 4}}),
      packet_of(1, {{1, 2}, {2, 3}, {3, 2}, {2, 2}, {2, 9}}),
      packet_of(1, {{5, 2}, {2, 5}, {2, 6}, {1, 2}}),
      packet_of(1, {{1, 2}, {1, 2}, {2, 1}, {2, 3}}),
      packet_of(kNoPeer, {{0, 2}, {2, 0}}),
  };
  for (const wire::Packet& p : hostile) {
    for (bool prune : {false, true}) {
      const auto hops = plan_relay(p, 2, prune);
      for (const Hop& hop : hops) {
        EXPECT_TRUE(std::count(p.edges.begin(), p.edges.end(), wire::Edge{2, hop.next}) > 0);
        EXPECT_LE(hop.packet.edges.size(), p.edges.size());
      }
    }
  }
}

// --- validate_route --------------------------------------------------------------

TEST(Routing, ValidRoutes) {
  EXPECT_EQ(validate_route(packet_of(1, {}), 0), RouteError::none) << "fallback packet";
  EXPECT_EQ(validate_route(packet_of(1, {{1, 2}}), 1), RouteError::none);
  EXPECT_EQ(validate_route(packet_of(1, kTree), 6), RouteError::none);
  // Any order is fine as long as it is a tree rooted at the source.
  EXPECT_EQ(validate_route(packet_of(1, {{4, 7}, {2, 4}, {1, 2}}), 6), RouteError::none);
  const PeerId top = 0xFFFF'FFFFu;
  EXPECT_EQ(validate_route(packet_of(top, {{top, 1}, {1, top - 1}}), 6), RouteError::none);
}

TEST(Routing, NoSource) {
  EXPECT_EQ(validate_route(packet_of(kNoPeer, {}), 10), RouteError::no_source);
  EXPECT_EQ(validate_route(packet_of(kNoPeer, {{kNoPeer, 1}}), 10), RouteError::no_source);
}

TEST(Routing, TooManyEdges) {
  EXPECT_EQ(validate_route(packet_of(1, kTree), 5), RouteError::too_many_edges);
  EXPECT_EQ(validate_route(packet_of(1, kTree), 6), RouteError::none);
  EXPECT_EQ(validate_route(packet_of(1, {{1, 2}}), 0), RouteError::too_many_edges);
}

TEST(Routing, SelfLoop) {
  EXPECT_EQ(validate_route(packet_of(1, {{1, 1}}), 10), RouteError::self_loop);
  EXPECT_EQ(validate_route(packet_of(1, {{1, 2}, {2, 2}}), 10), RouteError::self_loop);
}

TEST(Routing, NoTarget) {
  EXPECT_EQ(validate_route(packet_of(1, {{1, kNoPeer}}), 10), RouteError::no_target);
  EXPECT_EQ(validate_route(packet_of(1, {{1, 2}, {2, kNoPeer}}), 10), RouteError::no_target);
}

TEST(Routing, RepeatedTarget) {
  EXPECT_EQ(validate_route(packet_of(1, {{1, 2}, {1, 2}}), 10), RouteError::repeated_target);
  EXPECT_EQ(validate_route(packet_of(1, {{1, 2}, {1, 3}, {2, 3}}), 10),
            RouteError::repeated_target);
  EXPECT_EQ(validate_route(packet_of(1, {{1, 2}, {2, 1}}), 10), RouteError::repeated_target)
      << "back to the source";
  EXPECT_EQ(validate_route(packet_of(1, {{1, 2}, {2, 3}, {3, 1}}), 10),
            RouteError::repeated_target);
}

TEST(Routing, NotRooted) {
  EXPECT_EQ(validate_route(packet_of(1, {{2, 3}}), 10), RouteError::not_rooted);
  EXPECT_EQ(validate_route(packet_of(1, {{1, 2}, {5, 6}}), 10), RouteError::not_rooted);
  EXPECT_EQ(validate_route(packet_of(1, {{kNoPeer, 2}}), 10), RouteError::not_rooted);
  // Cycles away from the source: every u is some v, yet nothing hangs off 1.
  EXPECT_EQ(validate_route(packet_of(1, {{2, 3}, {3, 2}}), 10), RouteError::not_rooted);
  EXPECT_EQ(validate_route(packet_of(1, {{1, 2}, {3, 4}, {4, 5}, {5, 3}}), 10),
            RouteError::not_rooted);
  // A cycle with a tail hanging off it.
  EXPECT_EQ(validate_route(packet_of(1, {{1, 2}, {6, 7}, {3, 4}, {4, 5}, {5, 3}, {4, 6}}), 10),
            RouteError::not_rooted);
}

TEST(Routing, FirstProblemWins) {
  // Documented precedence: no_source, too_many_edges, per-edge, repeated, rooted.
  EXPECT_EQ(validate_route(packet_of(kNoPeer, {{1, 1}, {1, 1}}), 1), RouteError::no_source);
  EXPECT_EQ(validate_route(packet_of(1, {{1, 1}, {1, 1}}), 1), RouteError::too_many_edges);
  EXPECT_EQ(validate_route(packet_of(1, {{2, 3}, {2, 3}, {4, 4}}), 9), RouteError::self_loop);
  EXPECT_EQ(validate_route(packet_of(1, {{2, 3}, {2, 3}}), 9), RouteError::repeated_target);
}

// --- hostile routes: big, adversarial, must be fast ------------------------------

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

TEST(Routing, HostileRoutesAreRejectedQuickly) {
  const auto start = std::chrono::steady_clock::now();
  std::mt19937_64 rng(2024);
  constexpr std::size_t kHuge = 200'000;

  // A huge list over the limit: rejected without looking at it.
  Edges huge(2'000'000, wire::Edge{1, 2});
  EXPECT_EQ(validate_route(packet_of(1, huge), 4096), RouteError::too_many_edges);

  // Random edges (large ids), no limit: not a tree.
  Edges random_edges(kHuge);
  for (auto& e : random_edges) e = {static_cast<PeerId>(rng() | 1), static_cast<PeerId>(rng() | 2)};
  EXPECT_NE(validate_route(packet_of(1, random_edges), kHuge), RouteError::none);

  // Random edges over a few ids: repeated targets.
  for (auto& e : random_edges) {
    e = {static_cast<PeerId>(1 + rng() % 64), static_cast<PeerId>(65 + rng() % 64)};
  }
  EXPECT_EQ(validate_route(packet_of(1, random_edges), kHuge), RouteError::repeated_target);

  // One long cycle, plus a valid path from the source: not rooted.
  Edges cycle;
  for (PeerId p = 0; p < kHuge; ++p) cycle.push_back({1000 + p, static_cast<PeerId>(1000 + (p + 1) % kHuge)});
  std::shuffle(cycle.begin(), cycle.end(), rng);
  cycle.push_back({1, 2});
  EXPECT_EQ(validate_route(packet_of(1, cycle), 2 * kHuge), RouteError::not_rooted);

  // Many small cycles with ids chosen to collide in a naive hash table
  // (multiples of 2^16): not rooted.
  Edges colliding;
  for (PeerId p = 1; p + 1 < 30'000; p += 2) {
    colliding.push_back({p << 16, (p + 1) << 16});
    colliding.push_back({(p + 1) << 16, p << 16});
  }
  EXPECT_EQ(validate_route(packet_of(1, colliding), kHuge), RouteError::not_rooted);

  // A valid path 1 -> 2 -> ... of huge depth, edges reversed: fine, no recursion.
  Edges path;
  for (PeerId p = 1; p <= kHuge; ++p) path.push_back({p, p + 1});
  std::reverse(path.begin(), path.end());
  EXPECT_EQ(validate_route(packet_of(1, path), kHuge), RouteError::none);
  const auto hops = plan_relay(packet_of(1, path), 1, true);
  ASSERT_EQ(hops.size(), 1u);
  EXPECT_EQ(hops[0].packet.edges.size(), kHuge);
  const auto mid = plan_relay(packet_of(1, path), kHuge / 2, true);
  ASSERT_EQ(mid.size(), 1u);
  EXPECT_EQ(mid[0].packet.edges.size(), kHuge);

  // The same path closed into a cycle through the source.
  path.push_back({kHuge + 1, 1});
  EXPECT_EQ(validate_route(packet_of(1, path), 2 * kHuge), RouteError::repeated_target);

  // Only catches hangs; the real figures are in bench_core.
  EXPECT_LT(seconds_since(start), 20.0);
}

// Random edge lists over a few ids, checked against an obviously correct
// (quadratic) reference.
RouteError reference_validate(const wire::Packet& p, std::size_t max_edges) {
  if (p.source == kNoPeer) return RouteError::no_source;
  if (p.edges.size() > max_edges) return RouteError::too_many_edges;
  for (const wire::Edge& e : p.edges) {
    if (e.u == e.v) return RouteError::self_loop;
    if (e.v == kNoPeer) return RouteError::no_target;
  }
  std::set<PeerId> targets;
  for (const wire::Edge& e : p.edges) {
    if (e.v == p.source || !targets.insert(e.v).second) return RouteError::repeated_target;
  }
  std::set<PeerId> reached{p.source};
  for (bool grew = true; grew;) {
    grew = false;
    for (const wire::Edge& e : p.edges) {
      if (reached.count(e.u) != 0 && reached.insert(e.v).second) grew = true;
    }
  }
  return reached.size() == p.edges.size() + 1 ? RouteError::none : RouteError::not_rooted;
}

TEST(Routing, ValidateMatchesReferenceOnRandomEdgeLists) {
  std::map<RouteError, int> seen;
  for (std::uint64_t seed = 1; seed <= 20'000; ++seed) {
    std::mt19937_64 rng(seed);
    const std::uint64_t ids = 2 + rng() % 12;
    const PeerId base = seed % 3 == 0 ? 0xFFFF'FFF0u : 0;
    const auto id = [&]() -> PeerId {
      const std::uint64_t r = rng() % (ids + 1);
      return r == 0 && rng() % 4 == 0 ? kNoPeer : static_cast<PeerId>(base + 1 + r);
    };
    wire::Packet p = packet_of(id(), {});
    if (rng() % 2 == 0) {
      // Mostly trees with a mutation or two, so all outcomes occur.
      std::vector<PeerId> nodes{p.source};
      const std::size_t n = rng() % 10;
      for (std::size_t i = 0; i < n; ++i) {
        const PeerId v = static_cast<PeerId>(base + 100 + i);
        p.edges.push_back({nodes[rng() % nodes.size()], v});
        nodes.push_back(v);
      }
      std::shuffle(p.edges.begin(), p.edges.end(), rng);
      if (!p.edges.empty() && rng() % 2 == 0) {
        auto& e = p.edges[rng() % p.edges.size()];
        (rng() % 2 == 0 ? e.u : e.v) = nodes[rng() % nodes.size()];
      }
    } else {
      const std::size_t n = rng() % 8;
      for (std::size_t i = 0; i < n; ++i) p.edges.push_back({id(), id()});
    }
    const std::size_t max_edges = rng() % 12;
    const RouteError expect = reference_validate(p, max_edges);
    ASSERT_EQ(validate_route(p, max_edges), expect) << "seed " << seed;
    ++seen[expect];
  }
  for (RouteError e : {RouteError::none, RouteError::too_many_edges, RouteError::repeated_target,
                       RouteError::not_rooted, RouteError::self_loop, RouteError::no_source,
                       RouteError::no_target}) {
    EXPECT_GT(seen[e], 50) << to_string(e);
  }
}

// --- delivery along random meshes --------------------------------------------

struct Graph {
  std::vector<PeerId> peers;
  MeshView view;
};

Graph random_mesh(std::mt19937_64& rng, std::size_t max_peers) {
  Graph g;
  const std::size_t n = 1 + rng() % max_peers;
  std::set<PeerId> ids;
  const bool large = rng() % 2 == 0;
  while (ids.size() < n) {
    const auto id = static_cast<PeerId>(large ? rng() : 1 + rng() % (3 * n));
    if (id != kNoPeer) ids.insert(id);
  }
  g.peers.assign(ids.begin(), ids.end());
  std::shuffle(g.peers.begin(), g.peers.end(), rng);
  for (PeerId p : g.peers) g.view.add_peer(p);
  const bool connected = rng() % 3 != 0;
  const auto weight = [&] { return static_cast<std::uint32_t>(rng() % 5 == 0 ? 0 : rng() % 100'000); };
  if (connected) {
    for (std::size_t i = 1; i < n; ++i) g.view.add_link(g.peers[i], g.peers[rng() % i], weight());
  }
  const std::size_t extra = n > 1 ? rng() % (3 * n) : 0;
  for (std::size_t i = 0; i < extra; ++i) {
    g.view.add_link(g.peers[rng() % n], g.peers[rng() % n], weight());
  }
  return g;
}

std::set<PeerId> component_of(const MeshView& view, PeerId root) {
  std::set<PeerId> seen{root};
  std::deque<PeerId> queue{root};
  while (!queue.empty()) {
    const PeerId u = queue.front();
    queue.pop_front();
    for (const Neighbour& n : view.neighbours(u)) {
      if (seen.insert(n.peer).second) queue.push_back(n.peer);
    }
  }
  return seen;
}

// Expected pruned edges for child c of self: path source..self, (self, c), c's
// subtree, in the order of `edges` (naive, from parent maps).
Edges naive_pruned(const Edges& edges, PeerId source, PeerId self, PeerId child) {
  std::map<PeerId, PeerId> parent;
  for (const wire::Edge& e : edges) parent[e.v] = e.u;
  const auto ancestors = [&](PeerId p) {
    std::set<PeerId> out;
    while (p != source) {
      out.insert(p);
      p = parent.at(p);
    }
    return out;
  };
  const std::set<PeerId> to_self = ancestors(self);
  Edges out;
  for (const wire::Edge& e : edges) {
    if (to_self.count(e.v) != 0 || ancestors(e.v).count(child) != 0) out.push_back(e);
  }
  return out;
}

enum class Relays { pruned, reference, mixed };

TEST(RoutingProperty, EveryReachablePeerGetsThePacketExactlyOnce) {
  int broadcasts = 0;
  std::size_t messages = 0;
  std::size_t pruned_edges = 0;
  std::size_t full_edges = 0;
  for (std::uint64_t seed = 1; seed <= 1500; ++seed) {
    std::mt19937_64 rng(seed);
    const Graph g = random_mesh(rng, seed % 10 == 0 ? 300 : 80);
    const PeerId source = g.peers[rng() % g.peers.size()];
    TreeOptions options;
    options.mode = static_cast<TreeMode>(rng() % 3);
    options.alpha = static_cast<double>(rng() % 11) / 10.0;
    const BroadcastTree tree = compute_broadcast_tree(g.view, source, options);
    const std::set<PeerId> component = component_of(g.view, source);
    ASSERT_EQ(std::set<PeerId>(tree.reached.begin(), tree.reached.end()), component);

    for (Relays relays : {Relays::pruned, Relays::reference, Relays::mixed}) {
      for (bool prune_at_source : {false, true}) {
        SCOPED_TRACE("seed " + std::to_string(seed) + " relays " +
                     std::to_string(static_cast<int>(relays)) + " prune " +
                     std::to_string(prune_at_source));
        ++broadcasts;
        std::map<PeerId, int> delivered;
        struct InFlight {
          PeerId from;
          PeerId to;
          wire::Packet packet;
        };
        std::deque<InFlight> queue;
        const std::string payload = "m" + std::to_string(seed);
        for (Hop& hop : plan_broadcast(tree, payload, seed, prune_at_source)) {
          queue.push_back({source, hop.next, std::move(hop.packet)});
        }
        std::size_t sent = 0;
        while (!queue.empty()) {
          InFlight m = std::move(queue.front());
          queue.pop_front();
          ++messages;
          ASSERT_LE(++sent, component.size()) << "more messages than peers";
          ASSERT_TRUE(g.view.has_link(m.from, m.to)) << m.from << "->" << m.to;
          ASSERT_EQ(m.packet.source, source);
          ASSERT_EQ(m.packet.payload, payload);
          ASSERT_EQ(m.packet.seq, seed);
          ASSERT_EQ(validate_route(m.packet, 4096), RouteError::none);
          ++delivered[m.to];
          const bool prune = relays == Relays::pruned ||
                             (relays == Relays::mixed && (m.to ^ seed) % 2 == 0);
          auto hops = plan_relay(m.packet, m.to, prune);
          if (prune && !hops.empty() && rng() % 8 == 0) {
            for (const Hop& hop : hops) {
              ASSERT_EQ(hop.packet.edges, naive_pruned(m.packet.edges, source, m.to, hop.next));
            }
          }
          for (Hop& hop : hops) {
            (prune ? pruned_edges : full_edges) += hop.packet.edges.size();
            queue.push_back({m.to, hop.next, std::move(hop.packet)});
          }
        }
        ASSERT_EQ(delivered.count(source), 0u) << "the source got its own packet";
        ASSERT_EQ(delivered.size() + 1, component.size());
        for (const auto& [peer, count] : delivered) {
          ASSERT_EQ(count, 1) << peer;
          ASSERT_EQ(component.count(peer), 1u) << peer << " is outside the component";
        }
      }
    }
  }
  EXPECT_EQ(broadcasts, 1500 * 6);
  EXPECT_GT(messages, 100'000u);
  EXPECT_LT(pruned_edges, full_edges) << "pruning should shrink packets";
}

// Gap repair: the copy a peer sends a puller carries its own path, the edge
// to the puller and the puller's subtree, and is a valid route.
TEST(GraftRoute, TheSourceSendsAPullerItsWholeSubtree) {
  // 1 -> 2 -> 3 -> 4, 3 -> 7, 2 -> 5, 1 -> 6
  const wire::Packet held = packet_of(1, {{1, 2}, {2, 3}, {3, 4}, {2, 5}, {1, 6}, {3, 7}});
  const Edges route = graft_route(held, 1, 3);
  EXPECT_EQ(route, (Edges{{1, 3}, {3, 4}, {3, 7}}));
  EXPECT_EQ(validate_route(packet_of(1, route), 100), RouteError::none);
  // The puller relays it on to the peers that lost it with it.
  std::set<PeerId> next;
  for (const Hop& hop : plan_relay(packet_of(1, route), 3, true)) next.insert(hop.next);
  EXPECT_EQ(next, (std::set<PeerId>{4, 7}));
}

TEST(GraftRoute, ARelaySendsItsPathAndWhatItHoldsBelowThePuller) {
  // Relay 2 holds its path and subtree: 1 -> 2 -> 3 -> 4, 2 -> 5.
  const wire::Packet held = packet_of(1, {{1, 2}, {2, 3}, {3, 4}, {2, 5}});
  EXPECT_EQ(graft_route(held, 2, 3), (Edges{{1, 2}, {2, 3}, {3, 4}}));
  // Relay 6 holds 1 -> 6 only: a bare copy for a puller outside its subtree.
  const wire::Packet other = packet_of(1, {{1, 6}});
  const Edges bare = graft_route(other, 6, 3);
  EXPECT_EQ(bare, (Edges{{1, 6}, {6, 3}}));
  EXPECT_EQ(validate_route(packet_of(1, bare), 100), RouteError::none);
  // A copy that came through the server (no route) still names its path.
  EXPECT_EQ(graft_route(packet_of(1, {}), 6, 3), (Edges{{1, 6}, {6, 3}}));
}

TEST(GraftRoute, AHeldChainOfFourThousandEdgesCostsNoQuadraticTime) {
  Edges chain;
  for (PeerId p = 1; p <= 4096; ++p) chain.push_back({p, p + 1});
  const wire::Packet held = packet_of(1, chain);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 32; ++i) {  // what one hostile pull can ask for
    ASSERT_EQ(graft_route(held, 4097, 9999).size(), 4097u);
    ASSERT_EQ(graft_route(held, 1, 2).size(), 4096u);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2)) << "a hang";
}

TEST(GraftRoute, NoRouteForAPullerAboveUsOrForTheSource) {
  const wire::Packet held = packet_of(1, {{1, 2}, {2, 3}, {3, 4}});
  EXPECT_TRUE(graft_route(held, 4, 2).empty());
  EXPECT_TRUE(graft_route(held, 4, 1).empty());
  EXPECT_TRUE(graft_route(held, 4, 4).empty());
}

}  // namespace
}  // namespace p2pmesh
