// TopicBatcher and the batch frames (SubscribeRequest.batch_ms): when a
// batch is due, and how its messages are framed.

#include "topic_batcher.hpp"

#include <gtest/gtest.h>

namespace p2pmesh {
namespace {

constexpr TimeUs kWindow = 200 * kMillisecond;

TEST(TopicBatcher, AQuietTopicSendsAtOnceABusyOneOncePerWindow) {
  TopicBatcher batcher;
  EXPECT_FALSE(batcher.pending());
  // Nothing sent yet: due at once.
  EXPECT_EQ(batcher.add(1000, kWindow, 7, "a"), 1000);
  EXPECT_EQ(batcher.take(1000).size(), 1u);
  // Within the window after that: due at its end, with what comes meanwhile.
  EXPECT_EQ(batcher.add(1000 + 10 * kMillisecond, kWindow, 7, "b"), 1000 + kWindow);
  EXPECT_EQ(batcher.add(1000 + 50 * kMillisecond, kWindow, 8, "c"), 1000 + kWindow);
  EXPECT_EQ(batcher.oldest(), 1000 + 10 * kMillisecond);
  const auto batch = batcher.take(1000 + kWindow);
  ASSERT_EQ(batch.size(), 2u);
  EXPECT_EQ(batch[0], (wire::BatchEntry{7, "b"}));
  EXPECT_EQ(batch[1], (wire::BatchEntry{8, "c"}));
  EXPECT_FALSE(batcher.pending());
  // Quiet for a window again: at once.
  const TimeUs later = 1000 + 3 * kWindow;
  EXPECT_EQ(batcher.add(later, kWindow, 7, "d"), later);
}

TEST(TopicBatcher, FramesStayBelowTheLimitInOrderAndALoneMessageIsPlain) {
  std::vector<wire::BatchEntry> entries;
  for (PeerId i = 1; i <= 100; ++i) entries.push_back({i, std::string(500, 'x')});
  const auto frames = encode_batches("g.mesh", entries, 4096);
  ASSERT_GT(frames.size(), 10u);
  PeerId next = 1;
  for (const std::string& bytes : frames) {
    EXPECT_LE(bytes.size(), 4096u);
    wire::ServerMessage message;
    ASSERT_EQ(wire::decode(bytes, message), wire::DecodeError::none);
    EXPECT_EQ(message.topic, "g.mesh");
    ASSERT_EQ(message.kind, wire::ServerMessage::Kind::topic_batch);
    for (const auto& entry : message.batch) EXPECT_EQ(entry.sender, next++);
  }
  EXPECT_EQ(next, 101u);
  std::size_t counted = 0;
  for (const std::size_t n : split_batches("g.mesh", entries, 4096)) counted += n;
  EXPECT_EQ(counted, entries.size());

  // One message, or one larger than a frame: a plain TopicMessage each.
  const auto alone = encode_batches("g.mesh", {{5, std::string(10000, 'y')}, {6, "z"}}, 4096);
  ASSERT_EQ(alone.size(), 2u);
  for (const std::string& bytes : alone) {
    wire::ServerMessage message;
    ASSERT_EQ(wire::decode(bytes, message), wire::DecodeError::none);
    EXPECT_EQ(message.kind, wire::ServerMessage::Kind::topic_message);
  }
  EXPECT_TRUE(encode_batches("g.mesh", {}).empty());
}

}  // namespace
}  // namespace p2pmesh
