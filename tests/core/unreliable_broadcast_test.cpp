// Unreliable broadcasts over simulated networks (the very MeshNode code):
// they go down the tree as they come, numbered apart from the reliable ones,
// never wait for a reliable message that is missing, are never repaired or
// kept, and reach each peer at most once.

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "virtual_network.hpp"

namespace p2pmesh {
namespace {

using sim::VirtualNetwork;

MeshConfig test_config() {
  MeshConfig config;
  config.group = "test";
  return config;
}

std::vector<PeerId> join(VirtualNetwork& network, std::size_t count) {
  std::vector<PeerId> ids;
  for (std::size_t i = 0; i < count; ++i) {
    ids.push_back(network.add_peer(test_config()));
    network.run_for(100 * kMillisecond);
  }
  network.run_for(12 * kSecond);  // statuses (versions, RTTs) reach every view
  return ids;
}

const sim::Delivery* find(const VirtualNetwork& network, PeerId peer, const std::string& payload) {
  for (const sim::Delivery& d : network.deliveries(peer)) {
    if (d.payload == payload) return &d;
  }
  return nullptr;
}

TEST(UnreliableBroadcast, ArrivesEverywhereOnceMarkedUnreliableAndNumberedApart) {
  VirtualNetwork network({});
  const std::vector<PeerId> peers = join(network, 20);
  const PeerId source = peers[3];
  EXPECT_EQ(network.broadcast(source, "r1"), 1u);
  EXPECT_EQ(network.broadcast(source, "u1", DeliveryMode::unreliable), 1u);
  EXPECT_EQ(network.broadcast(source, "u2", DeliveryMode::unreliable), 2u);
  EXPECT_EQ(network.broadcast(source, "r2"), 2u) << "reliable seqs do not count unreliable ones";
  network.run_for(2 * kSecond);
  for (const PeerId peer : peers) {
    if (peer == source) continue;
    std::map<std::string, int> copies;
    for (const sim::Delivery& d : network.deliveries(peer)) ++copies[d.payload];
    EXPECT_EQ(copies, (std::map<std::string, int>{{"r1", 1}, {"r2", 1}, {"u1", 1}, {"u2", 1}}))
        << "peer " << peer;
    const sim::Delivery* u2 = find(network, peer, "u2");
    ASSERT_NE(u2, nullptr);
    EXPECT_FALSE(u2->reliable);
    EXPECT_EQ(u2->seq, 2u);
    EXPECT_TRUE(find(network, peer, "r2")->reliable);
    EXPECT_TRUE(network.gaps(peer).empty());
  }
}

TEST(UnreliableBroadcast, IsNotHeldBehindAMissingReliableMessage) {
  VirtualNetwork network({});
  const std::vector<PeerId> peers = join(network, 12);
  const PeerId source = peers.front();
  network.set_drop(1.0);  // the reliable message is lost on every link
  network.broadcast(source, "lost");
  network.run_for(1 * kMillisecond);
  network.set_drop(0);
  network.broadcast(source, "reliable-after");  // waits for "lost" (a hole)
  network.broadcast(source, "now", DeliveryMode::unreliable);
  network.run_for(5 * kSecond);  // the hole is pulled and filled
  std::size_t held = 0;
  for (const PeerId peer : peers) {
    if (peer == source) continue;
    const sim::Delivery* now = find(network, peer, "now");
    const sim::Delivery* lost = find(network, peer, "lost");
    const sim::Delivery* after = find(network, peer, "reliable-after");
    ASSERT_TRUE(now && lost && after) << "peer " << peer;
    EXPECT_LT(now->at, lost->at) << "peer " << peer << ": the unreliable one did not wait";
    EXPECT_LE(lost->at, after->at) << "reliable ones in order";
    held += network.node(peer).counters().held_for_order;
  }
  EXPECT_GT(held, 0u) << "the reliable message after the hole did wait";
}

TEST(UnreliableBroadcast, ALostTransmissionIsNeitherRetransmittedNorRepairedNorKept) {
  sim::NetworkOptions options;
  options.seed = 5;
  options.loss = 0.05;  // the reliable channel retransmits these; the unreliable one does not
  VirtualNetwork network(options);
  const std::vector<PeerId> peers = join(network, 30);
  const PeerId source = peers[7];
  std::set<std::string> sent;
  for (int i = 0; i < 50; ++i) {
    const std::string payload = "u" + std::to_string(i);
    network.broadcast(source, payload, DeliveryMode::unreliable);
    sent.insert(payload);
    network.run_for(20 * kMillisecond);
  }
  network.run_for(5 * kSecond);
  std::size_t got = 0;
  std::size_t expected = 0;
  for (const PeerId peer : peers) {
    if (peer == source) continue;
    expected += sent.size();
    std::set<std::string> seen;
    for (const sim::Delivery& d : network.deliveries(peer)) {
      EXPECT_FALSE(d.reliable);
      EXPECT_TRUE(seen.insert(d.payload).second) << "peer " << peer << " twice: " << d.payload;
      ++got;
    }
    EXPECT_TRUE(network.gaps(peer).empty()) << "no gap events for unreliable messages";
    EXPECT_EQ(network.node(peer).counters().pulls_sent, 0u);
    EXPECT_EQ(network.node(peer).counters().held_for_order, 0u);
    EXPECT_EQ(network.node(peer).history_bytes(), 0u) << "nothing kept to repair";
  }
  EXPECT_LT(got, expected) << "losses stay lost";
  EXPECT_GT(got, expected * 8 / 10) << "most arrive";
  EXPECT_EQ(network.node(source).history_bytes(), 0u);
}

}  // namespace
}  // namespace p2pmesh
