// Many MeshNodes wired to each other and to an in-memory broker, in virtual
// time: the mesh forms, stays within limits and low-diameter, delivers every
// broadcast exactly once, and heals after crashes.

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>
#include <string>

#include "overlay_metrics.hpp"
#include "reference_like.hpp"
#include "virtual_network.hpp"

namespace p2pmesh {
namespace {

using sim::VirtualNetwork;

MeshConfig default_config() {
  MeshConfig config;
  config.group = "test";
  return config;
}

// The peers with an open link to `peer`.
std::vector<PeerId> neighbours_of(VirtualNetwork& network, PeerId peer) {
  std::vector<PeerId> neighbours;
  for (const PeerId p : network.peers()) {
    if (p != peer && network.node(p).links().open_link_to(peer)) neighbours.push_back(p);
  }
  return neighbours;
}

// How many times each peer got `payload`.
std::map<PeerId, int> receipts(const VirtualNetwork& network, const std::string& payload) {
  std::map<PeerId, int> counts;
  for (const PeerId peer : network.peers()) {
    for (const sim::Delivery& d : network.deliveries(peer)) {
      if (d.payload == payload) ++counts[peer];
    }
  }
  return counts;
}

void expect_every_broadcast_exactly_once(VirtualNetwork& network, std::size_t broadcasts,
                                         std::uint64_t seed) {
  const std::vector<PeerId> peers = network.peers();
  Random random(seed);
  std::map<std::string, PeerId> sent;
  for (std::size_t i = 0; i < broadcasts; ++i) {
    const PeerId from = peers[random.below(peers.size())];
    const std::string payload = "message " + std::to_string(i) + " from " + std::to_string(from);
    network.broadcast(from, payload);
    sent[payload] = from;
    network.run_for(20 * kMillisecond);
  }
  network.run_for(3 * kSecond);
  for (const auto& [payload, from] : sent) {
    const auto counts = receipts(network, payload);
    for (const PeerId peer : peers) {
      const int expected = peer == from ? 0 : 1;
      const auto it = counts.find(peer);
      EXPECT_EQ(it == counts.end() ? 0 : it->second, expected)
          << "peer " << peer << " and '" << payload << "'";
    }
    for (const sim::Delivery& d : network.deliveries(peers.front())) {
      if (d.payload == payload) {
        EXPECT_EQ(d.source, from);
      }
    }
  }
}

TEST(MeshNetwork, FiftyPeersFormOneLowDiameterMeshWithinLinkLimits) {
  VirtualNetwork network({});
  const MeshConfig config = default_config();
  for (int i = 0; i < 50; ++i) {
    network.add_peer(config);
    network.run_for(100 * kMillisecond);
    for (const PeerId peer : network.peers()) {
      ASSERT_LE(network.node(peer).links().size(), config.max_connections + 1u)
          << "peer " << peer << " holds too many links (pending ones included)";
      ASSERT_LE(network.node(peer).links().open_count(), config.max_connections);
    }
  }
  network.run_for(5 * kSecond);

  const sim::OverlayShape shape = sim::measure_overlay(network.overlay());
  EXPECT_EQ(shape.peers, 50u);
  EXPECT_EQ(shape.components, 1u);
  EXPECT_LE(shape.max_degree, config.max_connections);
  EXPECT_GE(shape.min_degree, 2u);
  // A random graph of degree >= 4 has diameter about log(n)/log(3): 4 at 50.
  EXPECT_LE(shape.hop_diameter, 6u);
  for (const PeerId peer : network.peers()) {
    EXPECT_EQ(network.node(peer).tree().reached.size(), 50u) << "tree of peer " << peer;
    EXPECT_EQ(network.node(peer).membership().member_count(), 49u) << "view of peer " << peer;
  }
}

TEST(MeshNetwork, HundredBroadcastsReachEveryOtherPeerExactlyOnce) {
  for (const bool prune : {true, false}) {
    SCOPED_TRACE(prune ? "pruned routes" : "full routes");
    VirtualNetwork network({});
    MeshConfig config = default_config();
    config.prune_routes = prune;
    network.add_peers(50, 100 * kMillisecond, config);
    network.run_for(5 * kSecond);
    expect_every_broadcast_exactly_once(network, 100, 7);
    for (const PeerId peer : network.peers()) {
      // In a settled mesh every peer is in every tree: nothing goes the slow way.
      EXPECT_EQ(network.node(peer).counters().fallback_sent, 0u);
      EXPECT_EQ(network.node(peer).counters().bad_routes, 0u);
    }
  }
}

TEST(MeshNetwork, LatencyAndBlendTreesDeliverExactlyOnceToo) {
  for (const TreeMode mode : {TreeMode::latency, TreeMode::blend}) {
    VirtualNetwork network({});
    MeshConfig config = default_config();
    config.tree.mode = mode;
    config.tree.alpha = 0.5;
    network.add_peers(30, 100 * kMillisecond, config);
    network.run_for(5 * kSecond);
    expect_every_broadcast_exactly_once(network, 30, 11);
  }
}

TEST(MeshNetwork, PeerJoiningLaterGetsTheBroadcastsSentAfterIt) {
  VirtualNetwork network({});
  const MeshConfig config = default_config();
  const auto first = network.add_peers(20, 100 * kMillisecond, config);
  network.run_for(3 * kSecond);
  network.broadcast(first[3], "before");
  network.run_for(1 * kSecond);
  const PeerId late = network.add_peer(config);
  network.run_for(2 * kSecond);
  network.broadcast(first[5], "after");
  network.run_for(1 * kSecond);
  EXPECT_EQ(receipts(network, "before").count(late), 0u);
  EXPECT_EQ(receipts(network, "after")[late], 1);
  EXPECT_EQ(receipts(network, "after").size(), 20u);
}

TEST(MeshNetwork, CrashedPeersAreForgottenAndTheMeshHealsWithinThreeSeconds) {
  VirtualNetwork network({});
  const MeshConfig config = default_config();
  const auto ids = network.add_peers(12, 100 * kMillisecond, config);
  network.run_for(3 * kSecond);
  const std::vector<PeerId> crashed = {ids[1], ids[5], ids[9]};
  for (const PeerId peer : crashed) network.crash(peer);
  network.run_for(3 * kSecond);

  const sim::OverlayShape shape = sim::measure_overlay(network.overlay());
  EXPECT_EQ(shape.peers, 9u);
  EXPECT_EQ(shape.components, 1u);
  for (const PeerId peer : network.peers()) {
    MeshNode& node = network.node(peer);
    for (const PeerId gone : crashed) {
      EXPECT_FALSE(node.membership().is_member(gone)) << peer << " still knows " << gone;
      EXPECT_FALSE(node.membership().view().has_peer(gone)) << peer << " still maps " << gone;
      EXPECT_FALSE(node.links().has_any_with(gone));
    }
    EXPECT_EQ(node.tree().reached.size(), 9u);
  }
  expect_every_broadcast_exactly_once(network, 20, 3);
}

TEST(MeshNetwork, KeepAliveNoticesADeadNeighbourWithinTwoSecondsWhenTheTransportDoesNot) {
  sim::NetworkOptions options;
  options.crash_detection = 60 * kSecond;  // the transport itself stays silent
  VirtualNetwork network(options);
  MeshConfig config = default_config();
  config.member_timeout = 0;  // and no help from expiry
  const auto ids = network.add_peers(8, 100 * kMillisecond, config);
  network.run_for(3 * kSecond);
  const PeerId victim = ids[2];
  const std::vector<PeerId> neighbours = neighbours_of(network, victim);
  ASSERT_FALSE(neighbours.empty());
  // The victim vanishes from its links only; the server still thinks it is there.
  network.isolate(victim);
  network.run_for(2500 * kMillisecond);
  for (const PeerId p : neighbours) {
    EXPECT_EQ(network.node(p).links().open_link_to(victim), nullptr) << p;
    EXPECT_GE(network.node(p).counters().links_dead, 1u) << p;
  }
}

TEST(MeshNetwork, GracefulLeaveIsSeenByEveryoneAtOnce) {
  VirtualNetwork network({});
  const MeshConfig config = default_config();
  const auto ids = network.add_peers(10, 100 * kMillisecond, config);
  network.run_for(2 * kSecond);
  network.leave(ids[4]);
  network.run_for(500 * kMillisecond);
  for (const PeerId peer : network.peers()) {
    EXPECT_FALSE(network.node(peer).membership().is_member(ids[4]));
  }
  network.run_for(3 * kSecond);
  EXPECT_EQ(sim::measure_overlay(network.overlay()).components, 1u);
}

// Crashes and graceful leaves, each replaced by a newcomer, one a second;
// then quiet until every grace has ended. Returns the disconnected_from
// updates published meanwhile.
std::uint64_t churn(VirtualNetwork& network, const MeshConfig& config, std::uint64_t seed) {
  const std::uint64_t downs_before = network.server().mesh_updates().disconnected_from;
  Random random(seed);
  for (int event = 0; event < 8; ++event) {
    const std::vector<PeerId> alive = network.peers();
    const PeerId victim = alive[random.below(alive.size())];
    if (event % 2 == 0) network.crash(victim);
    else network.leave(victim);
    network.add_peer(config);
    network.run_for(kSecond);
  }
  network.run_for(8 * kSecond);
  return network.server().mesh_updates().disconnected_from - downs_before;
}

// Every peer's view has exactly the live peers and the open links between them.
void expect_views_match_the_overlay(VirtualNetwork& network) {
  const auto overlay = network.overlay();
  const std::vector<PeerId> alive = network.peers();
  for (const PeerId p : alive) {
    const Membership& membership = network.node(p).membership();
    std::vector<PeerId> others;
    for (const PeerId q : alive) {
      if (q != p) others.push_back(q);
    }
    EXPECT_EQ(membership.members(), others) << "members at " << p;
    EXPECT_EQ(membership.view().peer_count(), alive.size()) << "departed peers still in " << p << "'s view";
    for (const PeerId a : alive) {
      for (const PeerId b : alive) {
        if (a >= b) continue;
        const auto it = overlay.find(a);
        const bool linked = it != overlay.end() && it->second.count(b) != 0;
        EXPECT_EQ(membership.view().has_link(a, b), linked) << a << "-" << b << " at " << p;
      }
    }
  }
}

TEST(MeshNetwork, UnderChurnEveryViewMatchesTheLinksWithoutAnnouncingLinksToDepartedPeers) {
  // Departure notices remove a departed peer's links from every view: its
  // neighbours' disconnected_from would say nothing new (link_down_grace).
  // The views end up the same as when every link down is announced at once.
  std::uint64_t downs[2] = {0, 0};
  for (const bool announce_at_once : {true, false}) {
    VirtualNetwork network({});
    MeshConfig config = default_config();
    if (announce_at_once) config.link_down_grace = 0;
    network.add_peers(30, 100 * kMillisecond, config);
    network.run_for(3 * kSecond);
    downs[announce_at_once ? 0 : 1] = churn(network, config, 17);
    SCOPED_TRACE(announce_at_once ? "at once" : "with the grace");
    expect_views_match_the_overlay(network);
    expect_every_broadcast_exactly_once(network, 10, 5);
  }
  EXPECT_LT(downs[1], downs[0] / 2) << downs[1] << " against " << downs[0];
  RecordProperty("link_downs_at_once", std::to_string(downs[0]));
  RecordProperty("link_downs_with_grace", std::to_string(downs[1]));
}

TEST(MeshNetwork, ALinkThatDiesBetweenLivePeersLeavesEveryViewWhenTheGraceEnds) {
  sim::NetworkOptions options;
  options.crash_detection = 60 * kSecond;  // the transport itself stays silent
  VirtualNetwork network(options);
  MeshConfig config = default_config();
  const auto ids = network.add_peers(10, 100 * kMillisecond, config);
  network.run_for(3 * kSecond);
  const PeerId victim = ids[3];
  const std::vector<PeerId> neighbours = neighbours_of(network, victim);
  ASSERT_FALSE(neighbours.empty());
  // Its links go silent (the keep-alive declares them dead within 2 s); the
  // server still has it: no departure notice will come.
  network.isolate(victim);
  network.run_for(2 * kSecond + config.dead_link_timeout + config.link_down_grace);
  for (const PeerId p : network.peers()) {
    EXPECT_TRUE(network.node(p).membership().is_member(victim) || p == victim);
    for (const PeerId n : neighbours) {
      if (network.node(victim).links().open_link_to(n)) continue;  // linked again
      EXPECT_FALSE(network.node(p).membership().view().has_link(victim, n))
          << p << " still routes over " << victim << "-" << n;
    }
  }
}

TEST(MeshNetwork, AJoinCostsTheGroupFewLinkChanges) {
  // Every mesh update reaches every member. Newcomers that dialled while
  // meshd's snapshot was still arriving all linked to the oldest members,
  // which shed links, whose peers dialled again: 26 link changes per join
  // at 1,000 peers. Then about 7 (4 new links, announced by the dialler,
  // and links shed by full peers, announced by both ends), then 5.6 (a shed
  // link announced by the end that shed it: status version 4). Now the
  // links a peer dials go out in one status with their RTTs, and what is
  // left of link changes are the shed links, one update each.
  const auto per_join = [](TimeUs new_link_wait) {
    VirtualNetwork network({});
    const std::size_t peers = 300;
    MeshConfig config = default_config();
    config.new_link_wait = new_link_wait;
    network.add_peers(peers, 50 * kMillisecond, config);
    network.run_for(5 * kSecond);
    EXPECT_EQ(sim::measure_overlay(network.overlay()).components, 1u);
    const auto& updates = network.server().mesh_updates();
    return std::pair{static_cast<double>(network.server().link_changes_published()) / peers,
                     static_cast<double>(updates.total()) / peers};
  };
  const auto [changes_at_once, updates_at_once] = per_join(0);
  const auto [changes, updates] = per_join(default_config().new_link_wait);
  EXPECT_LT(changes_at_once, 6.5);
  EXPECT_LT(changes, 2.5);
  // A status instead of 4 connected_to, less the shed links both ends still
  // announce (the shed end's status listed the link within the grace).
  EXPECT_LT(updates, updates_at_once - 2.5);
  RecordProperty("link_changes_per_join", std::to_string(changes));
  RecordProperty("mesh_updates_per_join", std::to_string(updates));
  RecordProperty("mesh_updates_per_join_links_at_once", std::to_string(updates_at_once));
}

TEST(MeshNetwork, ThousandSequentialJoinsKeepHopDiameterAtMostEight) {
  VirtualNetwork network({});
  MeshConfig config = default_config();
  config.status_interval = 30 * kSecond;  // fewer periodic statuses: faster test
  network.add_peers(1000, 50 * kMillisecond, config);
  network.run_for(5 * kSecond);
  const sim::OverlayShape shape = sim::measure_overlay(network.overlay());
  EXPECT_EQ(shape.peers, 1000u);
  EXPECT_EQ(shape.components, 1u);
  EXPECT_LE(shape.max_degree, config.max_connections);
  EXPECT_LE(shape.hop_diameter, 8u);
  RecordProperty("hop_diameter", static_cast<int>(shape.hop_diameter));
}

// ---- Mixed groups: reference-like test peers (reference_like.hpp) beside ours.

struct MixedGroup {
  VirtualNetwork network{sim::NetworkOptions{}};
  std::set<PeerId> reference;
  std::vector<PeerId> joined;  // in join order
  std::map<PeerId, TimeUs> joined_at;

  bool is_reference(PeerId peer) const { return reference.count(peer) != 0; }
  PeerId add(bool reference_like_peer) {
    const MeshConfig config =
        reference_like_peer ? reference_like(default_config()) : default_config();
    const PeerId id = network.add_peer(config);
    if (reference_like_peer) reference.insert(id);
    joined.push_back(id);
    joined_at[id] = network.now();
    return id;
  }
};

// Broadcasts `count` messages 50 ms apart from random settled peers, with
// `during(i)` run before each (crashes, say); returns payload -> source.
template <class During>
std::map<std::string, PeerId> broadcast_from(MixedGroup& group, const std::string& tag,
                                             std::size_t count, std::uint64_t seed,
                                             During&& during) {
  Random random(seed);
  std::map<std::string, PeerId> sent;
  for (std::size_t i = 0; i < count; ++i) {
    during(i);
    std::vector<PeerId> settled;  // a newcomer knows the group 1 s after joining
    for (const PeerId p : group.network.peers()) {
      if (group.joined_at.at(p) + 2 * kSecond <= group.network.now()) settled.push_back(p);
    }
    const PeerId from = settled[random.below(settled.size())];
    const std::string payload = tag + std::to_string(i) + " from " + std::to_string(from);
    group.network.broadcast(from, payload);
    sent[payload] = from;
    group.network.run_for(50 * kMillisecond);
  }
  group.network.run_for(8 * kSecond);  // past every repair and the departed sources' windows
  return sent;
}

// Exactly once at every peer of ours alive throughout for broadcasts of our
// peers; never twice anywhere (a reference peer cannot drop a repeat).
void expect_exactly_once_at_ours_and_never_twice(const MixedGroup& group,
                                                 const std::map<std::string, PeerId>& sent,
                                                 const std::vector<PeerId>& alive_throughout) {
  std::size_t checked = 0;
  for (const auto& [payload, from] : sent) {
    const auto counts = receipts(group.network, payload);
    for (const PeerId peer : alive_throughout) {
      if (peer == from) continue;
      const auto it = counts.find(peer);
      const int got = it == counts.end() ? 0 : it->second;
      EXPECT_LE(got, 1) << "peer " << peer << (group.is_reference(peer) ? " (reference)" : "")
                        << " got '" << payload << "' twice";
      if (!group.is_reference(from) && !group.is_reference(peer)) {
        EXPECT_EQ(got, 1) << "peer " << peer << " and '" << payload << "'";
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 0u);
}

TEST(MixedGroup, OurPeersLearnEveryMemberWithinASecondReferencePeersIncluded) {
  // Reference peers publish their status before subscribing: meshd (and the
  // simulator's broker) keep it for newcomers' snapshots.
  MixedGroup group;
  for (int i = 0; i < 12; ++i) {
    const PeerId id = group.add(i % 2 == 0);
    group.network.run_for(1 * kSecond);
    if (group.is_reference(id)) continue;
    EXPECT_EQ(group.network.node(id).membership().member_count(), group.joined.size() - 1)
        << "peer " << id << " a second after joining";
  }
}

TEST(MixedGroup, FormsWithinTheReferenceDialTimerAndDeliversOursExactlyOnceNoDuplicates) {
  MixedGroup group;
  for (int i = 0; i < 12; ++i) {
    group.add(i % 2 == 1);
    group.network.run_for(100 * kMillisecond);
  }
  // Our peers link at once; reference peers dial on their 30 s timer.
  group.network.run_for(kReferenceDialInterval + 2 * kSecond);
  const sim::OverlayShape shape = sim::measure_overlay(group.network.overlay());
  EXPECT_EQ(shape.peers, 12u);
  EXPECT_EQ(shape.components, 1u);
  for (const PeerId peer : group.network.peers()) {
    EXPECT_EQ(group.network.node(peer).membership().member_count(), 11u) << "view of " << peer;
  }
  const auto sent = broadcast_from(group, "steady ", 60, 5, [](std::size_t) {});
  expect_exactly_once_at_ours_and_never_twice(group, sent, group.network.peers());
}

TEST(MixedGroup, AfterCrashesOursStillGetEveryBroadcastOnceAndNobodyTwice) {
  for (const std::uint64_t seed : {1u, 2u, 3u}) {
    SCOPED_TRACE("seed " + std::to_string(seed));
    MixedGroup group;
    for (int i = 0; i < 16; ++i) {
      group.add(i % 2 == 1);
      group.network.run_for(100 * kMillisecond);
    }
    group.network.run_for(kReferenceDialInterval + 2 * kSecond);
    // Crash an ours and a reference peer that relay, in the middle of a
    // stream of broadcasts, then a newcomer of each kind joins.
    Random random(seed);
    std::vector<PeerId> crashed;
    const auto sent = broadcast_from(group, "churn ", 80, seed, [&](std::size_t i) {
      if (i != 20 && i != 45) return;
      for (const bool reference : {false, true}) {
        std::vector<PeerId> candidates;
        for (const PeerId p : group.network.peers()) {
          if (group.is_reference(p) == reference && group.network.node(p).links().open_count() >= 2) {
            candidates.push_back(p);
          }
        }
        if (candidates.empty()) continue;
        const PeerId victim = candidates[random.below(candidates.size())];
        group.network.crash(victim);
        crashed.push_back(victim);
      }
      group.add(false);
      group.add(true);
    });
    ASSERT_EQ(crashed.size(), 4u);
    std::vector<PeerId> alive_throughout;
    for (const PeerId p : group.joined) {
      if (group.network.alive(p) && p <= group.joined[15]) alive_throughout.push_back(p);
    }
    expect_exactly_once_at_ours_and_never_twice(group, sent, alive_throughout);
  }
}

}  // namespace
}  // namespace p2pmesh
