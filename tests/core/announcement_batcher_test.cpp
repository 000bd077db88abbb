// AnnouncementBatcher: a quiet link announces at once, a busy one once per
// window with everything that came meanwhile, in order.

#include "announcement_batcher.hpp"

#include <gtest/gtest.h>

namespace p2pmesh {
namespace {

constexpr TimeUs kWindow = 20 * kMillisecond;

std::vector<std::uint64_t> seqs(const std::vector<wire::MessageId>& ids) {
  std::vector<std::uint64_t> out;
  for (const wire::MessageId& id : ids) out.push_back(id.seq);
  return out;
}

TEST(AnnouncementBatcher, AQuietLinkAnnouncesAtOnceABusyOneOncePerWindow) {
  AnnouncementBatcher batcher;
  const TimeUs t0 = 5 * kSecond;
  batcher.add(t0, kWindow, 1, {9, 1});
  EXPECT_EQ(batcher.next_due(), t0);
  auto due = batcher.take_due(t0);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].first, 1u);
  EXPECT_EQ(seqs(due[0].second), (std::vector<std::uint64_t>{1}));

  // Within the window: they wait for its end, together, in order.
  batcher.add(t0 + 1 * kMillisecond, kWindow, 1, {9, 2});
  batcher.add(t0 + 5 * kMillisecond, kWindow, 1, {9, 3});
  EXPECT_EQ(batcher.next_due(), t0 + kWindow);
  EXPECT_TRUE(batcher.take_due(t0 + kWindow - 1).empty());
  due = batcher.take_due(t0 + kWindow);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(seqs(due[0].second), (std::vector<std::uint64_t>{2, 3}));
  EXPECT_EQ(batcher.next_due(), kNever);

  // Quiet for a window again: at once.
  const TimeUs later = t0 + 3 * kWindow;
  batcher.take_due(later);
  batcher.add(later, kWindow, 1, {9, 4});
  EXPECT_EQ(batcher.next_due(), later);
}

TEST(AnnouncementBatcher, LinksAreIndependentAndAFullBatchGoesAtOnce) {
  AnnouncementBatcher batcher;
  const TimeUs t0 = kSecond;
  batcher.add(t0, kWindow, 1, {9, 1});
  batcher.take_due(t0);
  batcher.add(t0, kWindow, 2, {9, 1});  // another link: its first, at once
  EXPECT_EQ(batcher.next_due(), t0);
  EXPECT_EQ(batcher.take_due(t0).size(), 1u);

  for (std::uint64_t seq = 2; seq < 2 + AnnouncementBatcher::kMaxIds; ++seq) {
    batcher.add(t0 + 1, kWindow, 1, {9, seq});
  }
  EXPECT_EQ(batcher.next_due(), t0 + 1) << "full";
  const auto due = batcher.take_due(t0 + 1);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].second.size(), AnnouncementBatcher::kMaxIds);
}

TEST(AnnouncementBatcher, AClosedLinksAnnouncementsGoNowhereAndAZeroWindowNeverWaits) {
  AnnouncementBatcher batcher;
  const TimeUs t0 = kSecond;
  batcher.add(t0, kWindow, 1, {9, 1});
  batcher.take_due(t0);
  batcher.add(t0 + 1, kWindow, 1, {9, 2});
  batcher.forget(1);
  EXPECT_EQ(batcher.next_due(), kNever);
  EXPECT_TRUE(batcher.take_due(t0 + kWindow).empty());

  for (std::uint64_t seq = 1; seq <= 3; ++seq) {
    batcher.add(t0 + 2, 0, 3, {9, seq});
    EXPECT_EQ(batcher.next_due(), t0 + 2);
    EXPECT_EQ(batcher.take_due(t0 + 2).size(), 1u);
  }
}

}  // namespace
}  // namespace p2pmesh
