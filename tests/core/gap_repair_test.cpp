// Reliable delivery over simulated networks (the very MeshNode code): under
// transmissions lost for good, every peer gets every message of every
// source, in the order sent, exactly once; what nobody can repair reaches
// the application as a gap, before the messages that follow it.

#include <gtest/gtest.h>

#include <map>
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

std::vector<PeerId> join(VirtualNetwork& network, std::size_t count, const MeshConfig& config) {
  std::vector<PeerId> ids = network.add_peers(count, 100 * kMillisecond, config);
  network.run_for(12 * kSecond);  // statuses (versions, RTTs) reach every view
  return ids;
}

// The payloads `peer` got from `source`, in order.
std::vector<std::string> got_from(const VirtualNetwork& network, PeerId peer, PeerId source) {
  std::vector<std::string> out;
  for (const sim::Delivery& d : network.deliveries(peer)) {
    if (d.source == source) out.push_back(d.payload);
  }
  return out;
}

// The source's message "lost" reaches nobody; 1 s later its message
// "after" goes out (and shows the hole). Returns when "after" was sent.
TimeUs lose_one_then_send_another(VirtualNetwork& network, PeerId source) {
  network.set_drop(1.0);
  network.broadcast(source, "lost");
  network.run_for(1 * kMillisecond);
  network.set_drop(0);
  network.run_for(1 * kSecond);
  const TimeUs sent_at = network.now();
  network.broadcast(source, "after");
  return sent_at;
}

TEST(GapRepair, UnderFivePercentLossEveryPeerGetsEverySourcesMessagesInOrderExactlyOnce) {
  sim::NetworkOptions options;
  options.seed = 3;
  VirtualNetwork network(options);
  const std::vector<PeerId> peers = join(network, 40, test_config());
  network.set_drop(0.05);  // 5% of link transmissions lost for good, repairs included
  const std::vector<PeerId> sources{peers[0], peers[17], peers[39]};
  std::map<PeerId, std::vector<std::string>> sent;
  for (int i = 0; i < 40; ++i) {
    for (const PeerId source : sources) {
      const std::string payload = std::to_string(source) + ":" + std::to_string(i);
      const std::uint64_t seq = network.broadcast(source, payload);
      EXPECT_EQ(seq, static_cast<std::uint64_t>(i + 1)) << "broadcast returns the seq";
      sent[source].push_back(payload);
    }
    network.run_for(30 * kMillisecond);  // bursts: messages of a source overtake each other
  }
  network.set_drop(0);
  network.run_for(5 * kSecond);
  std::uint64_t pulled = 0;
  for (const PeerId peer : network.peers()) {
    EXPECT_TRUE(network.gaps(peer).empty()) << "peer " << peer;
    for (const PeerId source : sources) {
      if (source == peer) continue;
      EXPECT_EQ(got_from(network, peer, source), sent[source])
          << "peer " << peer << " from " << source;
    }
    for (const sim::Delivery& d : network.deliveries(peer)) EXPECT_NE(d.seq, 0u);
    pulled += network.node(peer).counters().pulls_served;
  }
  EXPECT_GT(pulled, 0u) << "the losses were repaired by pulls";
}

TEST(GapRepair, AHoleInASourcesSeqsIsPulledFromTheSourceAndDeliveredInOrder) {
  VirtualNetwork network({});
  const std::vector<PeerId> peers = join(network, 12, test_config());
  const PeerId source = peers.front();  // its status told everyone its next seq, 1
  network.set_drop(1.0);               // the first message is lost on every link
  network.broadcast(source, "first");
  network.run_for(1 * kMillisecond);
  network.set_drop(0);
  network.run_for(1 * kSecond);  // nobody knows of it: nobody has it
  network.broadcast(source, "second");
  network.run_for(3 * kSecond);
  for (const PeerId peer : peers) {
    if (peer == source) continue;
    EXPECT_EQ(got_from(network, peer, source), (std::vector<std::string>{"first", "second"}))
        << "peer " << peer;
    EXPECT_TRUE(network.gaps(peer).empty());
  }
}

TEST(GapRepair, WhatNobodyHoldsAnyMoreReachesTheApplicationAsAGapBeforeWhatFollows) {
  VirtualNetwork network({});
  MeshConfig config = test_config();
  config.history_age = 0;  // nobody keeps anything to pull
  const std::vector<PeerId> peers = join(network, 12, config);
  const PeerId source = peers.back();
  const TimeUs after_sent = lose_one_then_send_another(network, source);
  network.run_for(10 * kSecond);
  for (const PeerId peer : peers) {
    if (peer == source) continue;
    ASSERT_EQ(network.gaps(peer).size(), 1u) << "peer " << peer;
    const sim::GapEvent& gap = network.gaps(peer).front();
    EXPECT_EQ(gap.source, source);
    EXPECT_EQ(gap.from_seq, 1u);
    EXPECT_EQ(gap.to_seq, 1u);
    EXPECT_LT(gap.at - after_sent, 500 * kMillisecond) << "no copy to wait for";
    const std::vector<std::string> got = got_from(network, peer, source);
    ASSERT_EQ(got, std::vector<std::string>{"after"});
    // The gap first, then the message after it.
    for (const sim::Delivery& d : network.deliveries(peer)) {
      if (d.payload == "after") {
        EXPECT_GE(d.at, gap.at);
      }
    }
  }
}

TEST(GapRepair, TheSourceSaysAtOnceThatItsHistoryLetAMessageGo) {
  VirtualNetwork network({});
  MeshConfig config = test_config();
  config.history_bytes = 1;  // every message is let go at once: the source answers `gone`
  const std::vector<PeerId> peers = join(network, 12, config);
  const PeerId source = peers.back();
  const TimeUs after_sent = lose_one_then_send_another(network, source);
  network.run_for(1 * kSecond);  // far less than history_age (20 s): no timeout involved
  for (const PeerId peer : peers) {
    if (peer == source) continue;
    ASSERT_EQ(network.gaps(peer).size(), 1u) << "peer " << peer;
    EXPECT_EQ(network.gaps(peer).front().from_seq, 1u);
    EXPECT_LT(network.gaps(peer).front().at - after_sent, 500 * kMillisecond) << "peer " << peer;
    EXPECT_EQ(got_from(network, peer, source), std::vector<std::string>{"after"});
  }
  EXPECT_GT(network.node(source).counters().pulls_unanswerable, 0u);
}

// Every message a peer gets is announced to its neighbours outside the
// message's tree; a burst goes out as one announcement per link and window,
// not one per message and link, and still repairs what a loss cut off.
TEST(GapRepair, ABurstIsAnnouncedInBatchesAndItsLossesAreStillRepaired) {
  auto run_burst = [](TimeUs window) {
    sim::NetworkOptions options;
    options.seed = 5;
    VirtualNetwork network(options);
    MeshConfig config = test_config();
    config.announce_window = window;
    const std::vector<PeerId> peers = join(network, 16, config);
    std::uint64_t before = 0;
    for (const PeerId peer : peers) before += network.node(peer).counters().announcements_sent;
    network.set_drop(0.05);
    constexpr int kMessages = 50;
    for (int i = 0; i < kMessages; ++i) network.broadcast(peers[3], "m" + std::to_string(i));
    network.run_for(10 * kMillisecond);
    network.set_drop(0);
    network.run_for(5 * kSecond);
    std::uint64_t announcements = 0;
    for (const PeerId peer : peers) {
      announcements += network.node(peer).counters().announcements_sent;
      if (peer == peers[3]) continue;
      EXPECT_EQ(got_from(network, peer, peers[3]).size(), static_cast<std::size_t>(kMessages))
          << "peer " << peer << ", window " << window;
      EXPECT_TRUE(network.gaps(peer).empty());
    }
    return announcements - before;
  };
  const std::uint64_t one_by_one = run_burst(0);
  const std::uint64_t batched = run_burst(20 * kMillisecond);
  EXPECT_GT(one_by_one, 50u * 16u) << "about 2-4 per message and peer";
  EXPECT_LT(batched * 10, one_by_one) << batched << " batched, " << one_by_one << " one by one";
}

}  // namespace
}  // namespace p2pmesh
