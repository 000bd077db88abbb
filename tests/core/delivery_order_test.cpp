// DeliveryOrder: each source's messages reach the application in seq order,
// exactly once, or as an explicit gap; holes are pulled on a schedule; every
// buffer is bounded and hostile seqs cost a counted drop.

#include <gtest/gtest.h>

#include "delivery_order.hpp"

namespace p2pmesh {
namespace {

constexpr PeerId kSource = 5;
// Whether a status is the first of its source to say its next seq.
constexpr bool kFirst = true;
constexpr bool kLater = false;
// Whether a status of the source said its next seq (meshd's snapshot does not).
constexpr bool kSaidNextSeq = true;
constexpr bool kSaidNothing = false;

DeliveryOrderLimits limits() {
  DeliveryOrderLimits l;
  l.pull_delay = 30 * kMillisecond;
  l.pull_interval = 500 * kMillisecond;
  l.max_pull_interval = 2 * kSecond;
  l.give_up_after = 5 * kSecond;
  return l;
}

// What the application got, as text: "m1 m2 gap3-4 m5".
std::string seen(const std::vector<OrderedEvent>& events) {
  std::string out;
  for (const OrderedEvent& e : events) {
    if (!out.empty()) out += ' ';
    if (e.kind == OrderedEvent::Kind::message) {
      out += "m" + std::to_string(e.seq);
      EXPECT_EQ(e.payload, "p" + std::to_string(e.seq));
    } else {
      out += "gap" + std::to_string(e.seq) + "-" + std::to_string(e.to_seq);
    }
  }
  return out;
}

DeliveryOrder::Outcome give(DeliveryOrder& order, TimeUs now, std::uint64_t seq,
                            std::vector<OrderedEvent>& out, PeerId via = 9,
                            bool said_next_seq = kSaidNextSeq) {
  return order.accept(now, kSource, seq, "p" + std::to_string(seq), via, said_next_seq, out);
}

TEST(DeliveryOrder, MessagesThatComeEarlyWaitForOlderOnes) {
  DeliveryOrder order(limits());
  order.status_said(0, kSource, 1, kFirst);
  std::vector<OrderedEvent> out;
  EXPECT_EQ(give(order, 0, 2, out), DeliveryOrder::Outcome::held);
  EXPECT_EQ(give(order, 0, 3, out), DeliveryOrder::Outcome::held);
  EXPECT_EQ(seen(out), "");
  EXPECT_EQ(order.held_messages(), 2u);
  EXPECT_EQ(give(order, 0, 1, out), DeliveryOrder::Outcome::delivered);
  EXPECT_EQ(seen(out), "m1 m2 m3");
  EXPECT_EQ(order.held_messages(), 0u);
  EXPECT_EQ(order.held_bytes(), 0u);
  EXPECT_EQ(order.next_deadline(), kNever);
}

TEST(DeliveryOrder, ASourceWhoseStatusGaveItsNextSeqIsAwaitedFromThere) {
  DeliveryOrder order(limits());
  order.status_said(0, kSource, 10, kFirst);
  std::vector<OrderedEvent> out;
  EXPECT_EQ(give(order, 0, 11, out), DeliveryOrder::Outcome::held) << "10 was announced first";
  EXPECT_EQ(give(order, 0, 10, out), DeliveryOrder::Outcome::delivered);
  // The status overtook 9 on its way: it still reaches the application.
  EXPECT_EQ(give(order, 0, 9, out), DeliveryOrder::Outcome::delivered);
  EXPECT_EQ(seen(out), "m10 m11 m9");
  EXPECT_EQ(order.next_deadline(), kNever);
}

TEST(DeliveryOrder, ALaterStatusRevealsTheLostTailAndItIsPulledThenAGap) {
  DeliveryOrder order(limits());
  order.status_said(0, kSource, 1, kFirst);
  std::vector<OrderedEvent> out;
  give(order, 0, 1, out);
  give(order, 0, 2, out);
  // The source sent 3 and 4, then fell silent: nothing else would tell us.
  EXPECT_TRUE(order.status_said(100 * kMillisecond, kSource, 5, kLater));
  EXPECT_EQ(order.next_deadline(), 130 * kMillisecond);
  std::vector<PullRequest> pulls;
  order.poll(130 * kMillisecond, pulls, out);
  ASSERT_EQ(pulls.size(), 1u);
  EXPECT_EQ(pulls[0].seqs, (std::vector<std::uint64_t>{3, 4}));
  give(order, 200 * kMillisecond, 3, out);  // one repaired, the other never comes
  for (TimeUs now = 630 * kMillisecond; order.next_deadline() != kNever; now += 500 * kMillisecond) {
    order.poll(now, pulls, out);
  }
  EXPECT_EQ(seen(out), "m1 m2 m3 gap4-4");
  // A status saying what we have already is no hole; an absurd one is refused.
  EXPECT_TRUE(order.status_said(5 * kSecond, kSource, 5, kLater));
  EXPECT_EQ(order.next_deadline(), kNever);
  EXPECT_FALSE(order.status_said(5 * kSecond, kSource, 1u << 30, kLater));
  EXPECT_EQ(order.next_deadline(), kNever);
}

TEST(DeliveryOrder, AReconnectResumesWhereTheApplicationStoodNothingTwiceNothingLost) {
  // The application got 1-3 of the source on its first connection.
  DeliveryOrder before(limits());
  before.status_said(0, kSource, 1, kFirst);
  std::vector<OrderedEvent> out;
  for (std::uint64_t seq = 1; seq <= 3; ++seq) give(before, 0, seq, out);
  const auto positions = before.positions();
  ASSERT_EQ(positions.size(), 1u);
  EXPECT_EQ(positions[0], (std::pair<PeerId, std::uint64_t>{kSource, 4}));

  // The new connection: the snapshot's status is stale (next 2), the tree
  // or a pull brings 2 and 3 again, and the source sent 4 and 5 meanwhile.
  DeliveryOrder after(limits());
  after.resume(kSource, 4);
  out.clear();
  EXPECT_TRUE(after.status_said(0, kSource, 2, kFirst));
  EXPECT_EQ(after.next_deadline(), kNever) << "nothing below 4 is waited for";
  EXPECT_EQ(give(after, 0, 2, out), DeliveryOrder::Outcome::late);
  EXPECT_EQ(give(after, 0, 3, out), DeliveryOrder::Outcome::late);
  EXPECT_TRUE(after.status_said(10 * kMillisecond, kSource, 6, kLater));
  std::vector<PullRequest> pulls;
  after.poll(40 * kMillisecond, pulls, out);
  ASSERT_EQ(pulls.size(), 1u);
  EXPECT_EQ(pulls[0].seqs, (std::vector<std::uint64_t>{4, 5}));
  give(after, 50 * kMillisecond, 5, out);
  give(after, 50 * kMillisecond, 4, out);
  EXPECT_EQ(seen(out), "m4 m5");
}

TEST(DeliveryOrder, ASourceThatNeverSentHasEveryMessageInOrder) {
  DeliveryOrder order(limits());
  order.status_said(0, kSource, 1, kFirst);
  std::vector<OrderedEvent> out;
  EXPECT_EQ(give(order, 0, 2, out), DeliveryOrder::Outcome::held);
  EXPECT_EQ(give(order, 0, 1, out), DeliveryOrder::Outcome::delivered);
  EXPECT_EQ(seen(out), "m1 m2");
}

TEST(DeliveryOrder, ASourceThatNeverSentCostsNoEntryAndItsLostTailIsStillPulled) {
  // Most members never send: their first status (next seq 1) keeps nothing.
  DeliveryOrder order(limits());
  for (PeerId source = 1; source <= 100; ++source) order.status_said(0, source, 1, kFirst);
  EXPECT_EQ(order.sources(), 0u);
  EXPECT_FALSE(order.tracks(kSource));
  // Yet it is awaited from 1: its first two messages were lost, a later
  // status says so, and they are pulled.
  EXPECT_TRUE(order.status_said(100 * kMillisecond, kSource, 3, kLater));
  EXPECT_TRUE(order.tracks(kSource));
  EXPECT_EQ(order.next_deadline(), 130 * kMillisecond);
  std::vector<PullRequest> pulls;
  std::vector<OrderedEvent> out;
  order.poll(130 * kMillisecond, pulls, out);
  ASSERT_EQ(pulls.size(), 1u);
  EXPECT_EQ(pulls[0].seqs, (std::vector<std::uint64_t>{1, 2}));
  // A later status saying 1 again is nothing new.
  EXPECT_TRUE(order.status_said(100 * kMillisecond, 7, 1, kLater));
  EXPECT_FALSE(order.tracks(7));
  EXPECT_EQ(give(order, 150 * kMillisecond, 2, out), DeliveryOrder::Outcome::held);
  EXPECT_EQ(give(order, 150 * kMillisecond, 1, out), DeliveryOrder::Outcome::delivered);
  EXPECT_EQ(seen(out), "m1 m2");
}

TEST(DeliveryOrder, ASourceFromBeforeUsStartsAtTheFirstMessageSeenAndOlderOnesStillCome) {
  // No status of it said its next seq (meshd's snapshot): the first message
  // we see sets the start.
  DeliveryOrder order(limits());
  std::vector<OrderedEvent> out;
  EXPECT_EQ(give(order, 0, 10, out, 9, kSaidNothing), DeliveryOrder::Outcome::delivered);
  // Older than the first we saw: we never waited for it, it is not lost.
  EXPECT_EQ(give(order, 0, 9, out, 9, kSaidNothing), DeliveryOrder::Outcome::delivered);
  EXPECT_EQ(give(order, 0, 12, out, 9, kSaidNothing), DeliveryOrder::Outcome::held);
  EXPECT_EQ(give(order, 0, 11, out, 9, kSaidNothing), DeliveryOrder::Outcome::delivered);
  EXPECT_EQ(seen(out), "m10 m9 m11 m12");
}

TEST(DeliveryOrder, AHoleIsPulledAfterTheDelayThenBackingOffThenReportedAsAGapWhenNoCopyIsLeft) {
  DeliveryOrder order(limits());
  order.status_said(0, kSource, 1, kFirst);
  std::vector<OrderedEvent> out;
  give(order, 0, 1, out);
  give(order, 0, 3, out, 7);  // 2 is missing; 7 has 3 (it sent it)
  std::vector<PullRequest> pulls;
  order.poll(29 * kMillisecond, pulls, out);
  EXPECT_TRUE(pulls.empty()) << "a grace for copies still on their way";
  EXPECT_EQ(order.next_deadline(), 30 * kMillisecond);
  order.poll(30 * kMillisecond, pulls, out);
  ASSERT_EQ(pulls.size(), 1u);
  EXPECT_EQ(pulls[0].source, kSource);
  EXPECT_EQ(pulls[0].seqs, std::vector<std::uint64_t>{2});
  EXPECT_EQ(pulls[0].attempt, 1u);
  EXPECT_EQ(pulls[0].holders, (std::vector<PeerId>{9, 7})) << "who sent us its messages, latest last";
  pulls.clear();
  // Then after 500 ms, 1 s, 2 s, 2 s...: unanswered pulls are no reason to
  // pull harder (the answers may be on their way to a loaded peer).
  order.poll(529 * kMillisecond, pulls, out);
  EXPECT_TRUE(pulls.empty());
  order.poll(530 * kMillisecond, pulls, out);
  order.poll(1529 * kMillisecond, pulls, out);
  EXPECT_EQ(pulls.size(), 1u);
  order.poll(1530 * kMillisecond, pulls, out);
  order.poll(3529 * kMillisecond, pulls, out);
  EXPECT_EQ(pulls.size(), 2u);
  order.poll(3530 * kMillisecond, pulls, out);
  ASSERT_EQ(pulls.size(), 3u);
  EXPECT_EQ(pulls[2].attempt, 4u);
  EXPECT_EQ(seen(out), "m1") << "unanswered for 3.5 s is slow, not lost";
  // give_up_after (5 s) since the hole was noticed: no peer holds a copy.
  EXPECT_EQ(order.next_deadline(), 5 * kSecond);
  pulls.clear();
  order.poll(5 * kSecond, pulls, out);
  EXPECT_TRUE(pulls.empty());
  EXPECT_EQ(seen(out), "m1 gap2-2 m3");
  EXPECT_EQ(order.next_deadline(), kNever);
  out.clear();
  EXPECT_EQ(give(order, 6 * kSecond, 2, out), DeliveryOrder::Outcome::late)
      << "a copy after its gap was reported is not delivered";
  EXPECT_EQ(seen(out), "");
}

TEST(DeliveryOrder, TheSourceSayingAMessageIsGoneMakesTheGapAtOnce) {
  DeliveryOrder order(limits());
  order.status_said(0, kSource, 1, kFirst);
  std::vector<OrderedEvent> out;
  give(order, 0, 1, out);
  give(order, 0, 4, out);  // 2 and 3 are missing
  std::vector<PullRequest> pulls;
  order.poll(30 * kMillisecond, pulls, out);
  ASSERT_EQ(pulls.size(), 1u);
  EXPECT_EQ(pulls[0].seqs, (std::vector<std::uint64_t>{2, 3}));
  // The source's history let 2 go (and so everything older): 3 may still come.
  order.gone(40 * kMillisecond, kSource, 2, out);
  EXPECT_EQ(seen(out), "m1 gap2-2");
  EXPECT_NE(order.next_deadline(), kNever) << "3 is still pulled";
  // It cannot make us skip messages we never knew of.
  order.gone(50 * kMillisecond, kSource, 100, out);
  EXPECT_EQ(seen(out), "m1 gap2-2 gap3-3 m4");
  EXPECT_EQ(order.next_deadline(), kNever);
  EXPECT_EQ(give(order, 60 * kMillisecond, 5, out), DeliveryOrder::Outcome::delivered);
  EXPECT_EQ(seen(out), "m1 gap2-2 gap3-3 m4 m5");
}

TEST(DeliveryOrder, AnnouncedSeqsTheSourceSaysItNeverSentAreNoHole) {
  DeliveryOrder order(limits());
  order.status_said(0, kSource, 1, kFirst);
  std::vector<OrderedEvent> out;
  give(order, 0, 1, out);
  ASSERT_TRUE(order.announce(0, kSource, 4, 8, kSaidNextSeq));  // forged (or early): 2..4
  std::vector<PullRequest> pulls;
  order.poll(30 * kMillisecond, pulls, out);
  ASSERT_EQ(pulls.size(), 1u);
  EXPECT_EQ(pulls[0].seqs, (std::vector<std::uint64_t>{2, 3, 4}));
  order.source_sent_up_to(40 * kMillisecond, kSource, 1);
  EXPECT_EQ(order.next_deadline(), kNever) << "nothing to wait for";
  EXPECT_EQ(give(order, 50 * kMillisecond, 2, out), DeliveryOrder::Outcome::delivered);
  // What came is real, whatever the source said before it sent it.
  give(order, 60 * kMillisecond, 4, out);
  order.source_sent_up_to(70 * kMillisecond, kSource, 2);
  EXPECT_TRUE(order.missing(kSource, 3));
  EXPECT_EQ(seen(out), "m1 m2");
  EXPECT_EQ(give(order, 80 * kMillisecond, 3, out), DeliveryOrder::Outcome::delivered);
  EXPECT_EQ(seen(out), "m1 m2 m3 m4");
}

TEST(DeliveryOrder, EachNewOldestHoleGetsItsOwnPullsUnderABurstOfHoles) {
  // A burst on a loaded peer: holes open and fill all the time. Counting
  // their pulls together gave up on holes that had only just been noticed.
  DeliveryOrder order(limits());
  order.status_said(0, kSource, 1, kFirst);
  std::vector<OrderedEvent> out;
  give(order, 0, 1, out);
  give(order, 0, 3, out);
  give(order, 0, 5, out);  // 2 and 4 missing
  std::vector<PullRequest> pulls;
  for (TimeUs now : {30, 530, 1530, 3530}) order.poll(now * kMillisecond, pulls, out);
  EXPECT_EQ(pulls.size(), 4u);
  give(order, 4 * kSecond, 2, out);  // the oldest hole filled: 4 is the oldest now
  EXPECT_EQ(seen(out), "m1 m2 m3");
  EXPECT_EQ(order.next_deadline(), 4030 * kMillisecond) << "its own first pull, after the grace";
  pulls.clear();
  for (TimeUs now = 4030 * kMillisecond; now < 9 * kSecond; now += 100 * kMillisecond) {
    order.poll(now, pulls, out);
  }
  EXPECT_EQ(pulls.front().attempt, 1u);
  EXPECT_EQ(seen(out), "m1 m2 m3") << "4 was noticed as the oldest hole less than 5 s ago";
  order.poll(9030 * kMillisecond, pulls, out);
  EXPECT_EQ(seen(out), "m1 m2 m3 gap4-4 m5");
}

TEST(DeliveryOrder, AnAnnouncedMessageIsMissingUntilItComes) {
  DeliveryOrder order(limits());
  order.status_said(0, kSource, 1, kFirst);
  std::vector<OrderedEvent> out;
  give(order, 0, 1, out);
  EXPECT_TRUE(order.announce(0, kSource, 2, 8, kSaidNextSeq));
  EXPECT_TRUE(order.missing(kSource, 2));
  EXPECT_FALSE(order.missing(kSource, 1));
  std::vector<PullRequest> pulls;
  order.poll(30 * kMillisecond, pulls, out);
  ASSERT_EQ(pulls.size(), 1u);
  EXPECT_EQ(pulls[0].seqs, std::vector<std::uint64_t>{2});
  EXPECT_EQ(pulls[0].holders, (std::vector<PeerId>{9, 8}));
  EXPECT_EQ(give(order, 100 * kMillisecond, 2, out), DeliveryOrder::Outcome::delivered);
  EXPECT_EQ(seen(out), "m1 m2");
  EXPECT_EQ(order.next_deadline(), kNever);
}

TEST(DeliveryOrder, AnImplausibleJumpIsDroppedUnlessTheSourceKeepsJumping) {
  DeliveryOrder order(limits());
  order.status_said(0, kSource, 1, kFirst);
  std::vector<OrderedEvent> out;
  give(order, 0, 1, out);
  EXPECT_EQ(give(order, 0, 1'000'000'000, out), DeliveryOrder::Outcome::jump);
  EXPECT_FALSE(order.announce(0, kSource, 1'000'000'000, 8, kSaidNextSeq));
  EXPECT_EQ(order.next_deadline(), kNever) << "no waiting for a billion messages";
  EXPECT_EQ(give(order, 0, 2, out), DeliveryOrder::Outcome::delivered) << "the real source goes on";
  EXPECT_EQ(give(order, 0, 5000, out), DeliveryOrder::Outcome::jump);
  EXPECT_EQ(give(order, 0, 5001, out), DeliveryOrder::Outcome::jump);
  EXPECT_EQ(give(order, 0, 5002, out), DeliveryOrder::Outcome::delivered);
  EXPECT_EQ(seen(out), "m1 m2 gap3-5001 m5002");
}

TEST(DeliveryOrder, TheReorderBufferIsBoundedTheOldestHoleBecomesAGap) {
  DeliveryOrderLimits l = limits();
  l.max_held_per_source = 4;
  DeliveryOrder order(l);
  order.status_said(0, kSource, 1, kFirst);
  std::vector<OrderedEvent> out;
  give(order, 0, 1, out);
  for (std::uint64_t seq = 3; seq <= 7; ++seq) give(order, 0, seq, out);
  EXPECT_EQ(seen(out), "m1 gap2-2 m3 m4 m5 m6 m7");
  EXPECT_EQ(order.held_messages(), 0u);

  DeliveryOrderLimits by_bytes = limits();
  by_bytes.max_held_bytes = 4;  // two payloads of 2 bytes
  DeliveryOrder small(by_bytes);
  small.status_said(0, kSource, 1, kFirst);
  out.clear();
  for (const std::uint64_t seq : {3u, 5u, 7u}) give(small, 0, seq, out);
  EXPECT_EQ(seen(out), "gap1-2 m3");
  EXPECT_LE(small.held_bytes(), 4u);
}

TEST(DeliveryOrder, ASourceForgottenTurnsItsHolesIntoGaps) {
  DeliveryOrder order(limits());
  order.status_said(0, kSource, 1, kFirst);
  std::vector<OrderedEvent> out;
  give(order, 0, 2, out);
  order.announce(0, kSource, 4, 8, kSaidNextSeq);
  order.forget(kSource, out);
  EXPECT_EQ(seen(out), "gap1-1 m2 gap3-4");
  EXPECT_FALSE(order.tracks(kSource));
  EXPECT_EQ(order.next_deadline(), kNever);
  EXPECT_EQ(order.held_bytes(), 0u);
}

TEST(DeliveryOrder, ForgettingOneSourceLeavesTheOthersWhereTheyWere) {
  // Many sources, each in its own state: forgetting some (from anywhere in
  // the table) must not disturb what the others wait for or hold.
  DeliveryOrder order(limits());
  std::vector<OrderedEvent> out;
  for (PeerId source = 1; source <= 20; ++source) order.status_said(0, source, source, kFirst);
  for (PeerId source = 1; source <= 20; ++source) {
    // Each source's second message comes first: held, its first missing.
    order.accept(0, source, source + 1, "late", 9, kSaidNextSeq, out);
  }
  EXPECT_EQ(order.held_messages(), 20u);
  for (PeerId source = 1; source <= 20; source += 3) order.forget(source, out);
  EXPECT_EQ(order.sources(), 13u);
  out.clear();
  for (PeerId source = 1; source <= 20; ++source) {
    const bool forgotten = (source - 1) % 3 == 0;
    EXPECT_EQ(order.tracks(source), !forgotten) << source;
    if (forgotten) continue;
    EXPECT_TRUE(order.missing(source, source)) << source;
    EXPECT_EQ(order.accept(0, source, source, "first", 9, kSaidNextSeq, out), DeliveryOrder::Outcome::delivered);
  }
  ASSERT_EQ(out.size(), 26u) << "each source left: its first, then the held second";
  for (std::size_t i = 0; i < out.size(); i += 2) {
    EXPECT_EQ(out[i].payload, "first");
    EXPECT_EQ(out[i + 1].payload, "late");
    EXPECT_EQ(out[i + 1].seq, out[i].seq + 1);
  }
  EXPECT_EQ(order.held_messages(), 0u);
  EXPECT_EQ(order.next_deadline(), kNever);
}

TEST(DeliveryOrder, APullNamesAtMostABoundedNumberOfMessages) {
  DeliveryOrder order(limits());
  order.status_said(0, kSource, 1, kFirst);
  std::vector<OrderedEvent> out;
  give(order, 0, 500, out);
  std::vector<PullRequest> pulls;
  order.poll(30 * kMillisecond, pulls, out);
  ASSERT_EQ(pulls.size(), 1u);
  EXPECT_EQ(pulls[0].seqs.size(), DeliveryOrder::kMaxSeqsPerPull);
  EXPECT_EQ(pulls[0].seqs.front(), 1u);
}

}  // namespace
}  // namespace p2pmesh
