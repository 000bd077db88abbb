// RepairBuffer: what a relay keeps to re-send around a gone child, bounded in
// time, count and bytes.

#include <gtest/gtest.h>

#include "repair_buffer.hpp"

namespace p2pmesh {
namespace {

wire::Packet packet_of(std::size_t payload_bytes, std::uint64_t seq) {
  wire::Packet packet;
  packet.source = 1;
  packet.seq = seq;
  packet.payload = std::string(payload_bytes, 'x');
  return packet;
}

TEST(RepairBuffer, KeepsWhatWasSentToAChildWithinTheWindow) {
  RepairBuffer buffer(3 * kSecond, 16, 1 << 20);
  buffer.remember(0, 7, packet_of(10, 1));
  buffer.remember(1 * kSecond, 8, packet_of(10, 2));
  buffer.remember(2 * kSecond, 7, packet_of(10, 3));
  const auto for7 = buffer.take_sent_to(7, 3500 * kMillisecond);  // seq 1 has expired
  ASSERT_EQ(for7.size(), 1u);
  EXPECT_EQ(for7[0].seq, 3u);
  EXPECT_EQ(buffer.size(), 1u);
  EXPECT_TRUE(buffer.take_sent_to(7, 3500 * kMillisecond).empty()) << "taken once";
}

TEST(RepairBuffer, HoldsAtMostItsBytesDroppingTheOldestFirst) {
  RepairBuffer buffer(3 * kSecond, 1024, 1000);
  for (std::uint64_t seq = 1; seq <= 10; ++seq) buffer.remember(0, 7, packet_of(300, seq));
  EXPECT_LE(buffer.bytes(), 1000u);
  const auto kept = buffer.take_sent_to(7, 0);
  ASSERT_EQ(kept.size(), 3u);
  EXPECT_EQ(kept.front().seq, 8u);
  EXPECT_EQ(buffer.bytes(), 0u);

  buffer.remember(0, 7, packet_of(5000, 11));  // larger than the whole budget
  EXPECT_EQ(buffer.size(), 0u);
}

TEST(RepairBuffer, HoldsAtMostItsCount) {
  RepairBuffer buffer(3 * kSecond, 4, 1 << 20);
  for (std::uint64_t seq = 1; seq <= 10; ++seq) buffer.remember(0, 7, packet_of(1, seq));
  EXPECT_EQ(buffer.size(), 4u);
}

}  // namespace
}  // namespace p2pmesh
