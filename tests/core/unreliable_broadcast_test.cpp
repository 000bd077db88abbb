// Unreliable broadcasts over simulated networks (the very MeshNode code):
// they go down the tree as they come, numbered apart from the reliable ones,
// never wait for a reliable message that is missing, are never repaired or
// kept, and reach each peer at most once.

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <string>
#include <variant>
#include <vector>

#include "topics.hpp"
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
  std::vector<PeerId> ids = network.add_peers(count, 100 * kMillisecond, test_config());
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


// One node with two neighbours: 7 (a peer of ours, version 2) and 8 (a
// reference peer, version 0); 7 sends packets whose route goes on to 8.
class UnreliableRelayTest : public ::testing::Test {
 protected:
  static constexpr PeerId kSelf = 50;

  UnreliableRelayTest() : node_(test_config()) {
    node_.on_welcome(now_, kSelf);
    hear_status(kSelf, {}, 2);
    hear_status(7, {kSelf}, 2);
    hear_status(8, {kSelf}, 0);
    from7_ = accept_and_open(7);
    to8_ = accept_and_open(8);
    node_.take_actions();
  }
  void hear_status(PeerId peer, std::vector<PeerId> links, std::uint32_t version) {
    wire::MeshUpdate update;
    update.source = peer;
    update.kind = wire::MeshUpdate::Kind::status;
    update.status.connected_to = std::move(links);
    update.status.id = 1;
    update.status.version = version;
    node_.on_topic_message(now_, "test.mesh", peer, wire::encode(update));
  }
  LinkId accept_and_open(PeerId peer) {
    node_.on_topic_message(now_, peer_topic("test", kSelf, SignalKind::offer), peer,
                           R"({"type":"offer","sdp":"v=0"})");
    LinkId link = 0;
    for (const Action& action : node_.take_actions()) {
      if (const auto* accept = std::get_if<AcceptLink>(&action)) link = accept->link;
    }
    EXPECT_NE(link, 0u);
    node_.on_link_open(now_, link);
    return link;
  }
  wire::Packet from7(std::uint64_t seq, std::uint64_t unreliable_seq, std::string payload) {
    wire::Packet packet;
    packet.source = 7;
    packet.edges = {{7, kSelf}, {kSelf, 8}};
    packet.seq = seq;
    packet.unreliable_seq = unreliable_seq;
    packet.payload = std::move(payload);
    return packet;
  }
  template <class T>
  std::vector<T> taken() {
    std::vector<T> out;
    for (Action& action : node_.take_actions()) {
      if (auto* a = std::get_if<T>(&action)) out.push_back(std::move(*a));
    }
    return out;
  }

  TimeUs now_ = 1 * kSecond;
  MeshNode node_;
  LinkId from7_ = 0;
  LinkId to8_ = 0;
};

TEST_F(UnreliableRelayTest, DeliveredAsItComesRelayedOnTheSecondChannelOnlyToPeersOfOurs) {
  node_.on_link_data(now_, from7_, wire::encode(from7(0, 1, "u1")));
  node_.on_link_data(now_, from7_, wire::encode(from7(0, 1, "u1")));  // a repeat
  const std::vector<Action> actions = node_.take_actions();
  std::vector<Deliver> delivered;
  std::vector<SendOnLink> sent;
  for (const Action& action : actions) {
    if (const auto* d = std::get_if<Deliver>(&action)) delivered.push_back(*d);
    if (const auto* s = std::get_if<SendOnLink>(&action); s && s->link == to8_) sent.push_back(*s);
  }
  ASSERT_EQ(delivered.size(), 1u) << "the repeat is dropped";
  EXPECT_EQ(delivered[0].payload, "u1");
  EXPECT_EQ(delivered[0].seq, 1u);
  EXPECT_FALSE(delivered[0].reliable);
  EXPECT_EQ(node_.counters().duplicate_packets, 1u);
  ASSERT_EQ(sent.size(), 1u) << "relayed down the route once";
  EXPECT_FALSE(sent[0].unreliable) << "a reference peer has one channel only";
  wire::Packet relayed;
  ASSERT_EQ(wire::decode(sent[0].bytes, relayed), wire::DecodeError::none);
  EXPECT_EQ(relayed.unreliable_seq, 1u) << "relayed in its mode";
  EXPECT_EQ(relayed.seq, 0u);

  // Reliable message 1 of the same source is another message.
  node_.on_link_data(now_, from7_, wire::encode(from7(1, 0, "r1")));
  const auto reliable = taken<Deliver>();
  ASSERT_EQ(reliable.size(), 1u);
  EXPECT_TRUE(reliable[0].reliable);
  EXPECT_EQ(reliable[0].seq, 1u);

  // Both numbers at once: malformed, dropped.
  node_.on_link_data(now_, from7_, wire::encode(from7(2, 2, "both")));
  EXPECT_TRUE(taken<Deliver>().empty());
  EXPECT_EQ(node_.counters().malformed_packets, 1u);
}

TEST_F(UnreliableRelayTest, OurOwnUnreliableBroadcastTakesTheSecondChannelWithPeersOfOurs) {
  EXPECT_EQ(node_.broadcast(now_, "mine", DeliveryMode::unreliable), 1u);
  std::map<LinkId, bool> channel;  // link -> unreliable
  for (const SendOnLink& s : taken<SendOnLink>()) {
    wire::Packet packet;
    ASSERT_EQ(wire::decode(s.bytes, packet), wire::DecodeError::none);
    if (packet.payload == "mine") channel[s.link] = s.unreliable;
  }
  EXPECT_EQ(channel, (std::map<LinkId, bool>{{from7_, true}, {to8_, false}}));
  EXPECT_EQ(node_.history_bytes(), 0u);
  EXPECT_EQ(node_.broadcast(now_, "reliable"), 1u) << "numbered apart";
}

}  // namespace
}  // namespace p2pmesh
