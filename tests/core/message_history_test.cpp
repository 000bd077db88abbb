// MessageHistory: what a peer keeps for others to pull, bounded by age and
// bytes, and which pullers a copy already sent down the tree covers.

#include <gtest/gtest.h>

#include "message_history.hpp"

namespace p2pmesh {
namespace {

wire::Packet message(std::uint64_t seq, std::size_t payload_bytes = 10) {
  wire::Packet packet;
  packet.source = 1;
  packet.seq = seq;
  packet.payload = std::string(payload_bytes, 'x');
  // The source's tree: 1 -> 2 -> 3 -> 4, 1 -> 5.
  packet.edges = {{1, 2}, {2, 3}, {3, 4}, {1, 5}};
  return packet;
}

TEST(MessageHistory, KeepsMessagesForItsAge) {
  MessageHistory history(10 * kSecond, 1 << 20);
  history.remember(0, message(1));
  history.remember(5 * kSecond, message(2));
  ASSERT_NE(history.find(10 * kSecond, 1, 1), nullptr);
  EXPECT_EQ(history.find(10 * kSecond, 1, 1)->edges.size(), 4u) << "with its route";
  EXPECT_EQ(history.find(10 * kSecond + 1, 1, 1), nullptr);
  EXPECT_NE(history.find(10 * kSecond + 1, 1, 2), nullptr);
  EXPECT_EQ(history.find(0, 1, 3), nullptr);
  EXPECT_EQ(history.find(0, 2, 2), nullptr) << "another source's seq 2";
  EXPECT_EQ(history.find(16 * kSecond, 1, 2), nullptr);
  EXPECT_EQ(history.bytes(), 0u);
}

TEST(MessageHistory, HoldsAtMostItsBytesDroppingTheOldestFirst) {
  MessageHistory history(10 * kSecond, 2000);
  for (std::uint64_t seq = 1; seq <= 20; ++seq) history.remember(0, message(seq, 300));
  EXPECT_LE(history.bytes(), 2000u);
  EXPECT_EQ(history.find(0, 1, 1), nullptr);
  EXPECT_NE(history.find(0, 1, 20), nullptr);
  history.remember(0, message(21, 5000));  // over the whole budget: not kept
  EXPECT_EQ(history.find(0, 1, 21), nullptr);
  EXPECT_NE(history.find(0, 1, 20), nullptr);
}

TEST(MessageHistory, ACopySentToAPeerCoversThePeersBelowItForAWhile) {
  MessageHistory history(10 * kSecond, 1 << 20);
  history.remember(0, message(1));
  history.served(1 * kSecond, 1, 1, 2);
  EXPECT_TRUE(history.covered(1, 1, 2, 500 * kMillisecond));
  EXPECT_TRUE(history.covered(1, 1, 4, 500 * kMillisecond)) << "4 is below 2";
  EXPECT_FALSE(history.covered(1, 1, 5, 500 * kMillisecond)) << "5 is not";
  EXPECT_FALSE(history.covered(1, 1, 4, 2 * kSecond)) << "a copy served before `since`";
  EXPECT_FALSE(history.covered(1, 2, 4, 0)) << "another message";
}

}  // namespace
}  // namespace p2pmesh
