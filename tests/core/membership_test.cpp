#include "membership.hpp"

#include <gtest/gtest.h>

namespace p2pmesh {
namespace {

wire::MeshUpdate status(PeerId source, std::uint32_t id, std::vector<PeerId> links,
                        std::vector<std::uint32_t> rtts = {}) {
  wire::MeshUpdate u;
  u.source = source;
  u.kind = wire::MeshUpdate::Kind::status;
  u.status.id = id;
  u.status.connected_to = std::move(links);
  u.status.rtt_us = std::move(rtts);
  return u;
}
// A status of a peer of our protocol (version 1): its claims alone count.
wire::MeshUpdate ours(PeerId source, std::uint32_t id, std::vector<PeerId> links,
                      std::vector<std::uint32_t> rtts = {}) {
  wire::MeshUpdate u = status(source, id, std::move(links), std::move(rtts));
  u.status.version = 1;
  return u;
}
wire::MeshUpdate link_update(PeerId source, PeerId peer, bool up) {
  wire::MeshUpdate u;
  u.source = source;
  u.kind = up ? wire::MeshUpdate::Kind::connected_to : wire::MeshUpdate::Kind::disconnected_from;
  u.peer = peer;
  return u;
}

TEST(Membership, ALinkClaimedByEitherMemberOfOurProtocolIsInTheView) {
  Membership m(1);
  m.apply(ours(2, 1, {3}), 0);
  EXPECT_FALSE(m.view().has_link(2, 3)) << "3 unknown yet";
  EXPECT_EQ(m.apply(ours(3, 1, {}), 0).joined, 3u);
  EXPECT_TRUE(m.view().has_link(2, 3));
  m.apply(link_update(2, 3, false), 0);
  EXPECT_FALSE(m.view().has_link(2, 3));
  m.apply(link_update(3, 2, true), 0);
  EXPECT_TRUE(m.view().has_link(2, 3));
}

TEST(Membership, ALinkDownSaidByOneEndOfVersion4EndsTheLink) {
  // In an all-version-4 group only the end that closed a link announces it:
  // its word must take the other end's claim with it.
  Membership m(1);
  wire::MeshUpdate a = ours(2, 1, {3});
  wire::MeshUpdate b = ours(3, 1, {2});
  a.status.version = b.status.version = wire::kVersionLinkDownByOneEnd;
  m.apply(a, 0);
  m.apply(b, 0);
  ASSERT_TRUE(m.view().has_link(2, 3));
  m.apply(link_update(2, 3, false), 0);
  EXPECT_FALSE(m.view().has_link(2, 3)) << "3 still claims it in its last status";
  m.apply(link_update(3, 2, true), 0);
  EXPECT_TRUE(m.view().has_link(2, 3)) << "a new link of theirs";

  // Before version 4 the other end speaks for itself: its claim stands.
  Membership old(1);
  old.apply(ours(2, 1, {3}), 0);
  old.apply(ours(3, 1, {2}), 0);
  old.apply(link_update(2, 3, false), 0);
  EXPECT_TRUE(old.view().has_link(2, 3));
  old.apply(link_update(3, 2, false), 0);
  EXPECT_FALSE(old.view().has_link(2, 3));
}

TEST(Membership, CountsMembersByVersion) {
  Membership m(1);
  m.apply(status(2, 1, {}), 0);
  m.apply(ours(3, 1, {}), 0);
  wire::MeshUpdate v4 = ours(4, 1, {});
  v4.status.version = 4;
  m.apply(v4, 0);
  wire::MeshUpdate v9 = ours(5, 1, {});
  v9.status.version = 9;
  m.apply(v9, 0);
  EXPECT_EQ(m.version0_member_count(), 1u);
  EXPECT_EQ(m.members_below_version(1), 1u);
  EXPECT_EQ(m.members_below_version(4), 2u);
  EXPECT_EQ(m.members_below_version(5), 3u);
  v4.status.id = 2;
  v4.status.version = 1;  // a member may announce another version
  m.apply(v4, 0);
  EXPECT_EQ(m.members_below_version(4), 3u);
  m.remove_member(2);
  m.remove_member(4);
  EXPECT_EQ(m.version0_member_count(), 0u);
  EXPECT_EQ(m.members_below_version(4), 1u);
  // A version past what a member record keeps counts as the highest kept.
  wire::MeshUpdate huge = ours(6, 1, {});
  huge.status.version = 0x12345678;
  m.apply(huge, 0);
  EXPECT_EQ(m.version_of(6), 0xFFFFu);
  EXPECT_EQ(m.members_below_version(4), 1u);
  EXPECT_EQ(m.version_of(5), 9u);
}

TEST(Membership, KnowsWhetherAStatusOfAMemberSaidItsNextSeq) {
  // meshd's snapshot gives no next seq; the member's own statuses do. The
  // first that does is flagged (reliable delivery starts waiting there).
  Membership m(1);
  const auto said = [](PeerId source, std::uint32_t id, std::uint64_t next_seq) {
    wire::MeshUpdate u = ours(source, id, {});
    u.status.next_seq = next_seq;
    return u;
  };
  EXPECT_FALSE(m.apply(said(2, 1, 0), 0).first_next_seq);
  EXPECT_FALSE(m.said_next_seq(2));
  EXPECT_TRUE(m.apply(said(2, 2, 1), 0).first_next_seq);
  EXPECT_TRUE(m.said_next_seq(2));
  EXPECT_FALSE(m.apply(said(2, 3, 4), 0).first_next_seq);
  EXPECT_FALSE(m.apply(said(2, 3, 5), 0).first_next_seq) << "a stale id is no status";
  EXPECT_FALSE(m.said_next_seq(3));
  m.remove_member(2);
  EXPECT_FALSE(m.said_next_seq(2));
  EXPECT_TRUE(m.apply(said(2, 4, 6), 0).first_next_seq) << "a new member record";
}

TEST(Membership, AClaimOutsideTheViewKeepsItsRttUntilItsLinkComesBack) {
  // A claim of a link the view has lives at the claimer's end of it; when
  // the link leaves the view (no longer credible) the claim, with its RTT,
  // must stay for when the other end claims the link again.
  Membership m(1);
  m.apply(status(2, 1, {3}, {500}), 0);  // reference peers: one claim alone is not enough
  m.apply(status(3, 1, {2}, {700}), 0);
  EXPECT_EQ(m.view().weight(2, 3), 500u) << "the smaller of the two RTTs";
  m.apply(status(3, 2, {}), 0);
  EXPECT_FALSE(m.view().has_link(2, 3));
  m.apply(status(3, 3, {2}, {900}), 0);
  EXPECT_EQ(m.view().weight(2, 3), 500u) << "2's claim came back with its RTT";
  m.apply(status(2, 2, {3}, {800}), 0);
  EXPECT_EQ(m.view().weight(2, 3), 800u);
  // A claim about us stays outside until our own link exists, then moves in.
  m.apply(ours(4, 1, {1}, {300}), 0);
  EXPECT_FALSE(m.view().has_link(1, 4));
  m.set_local_link(4, true, 250);
  EXPECT_EQ(m.view().weight(1, 4), 250u) << "our measurement, not its claim";
  m.set_local_link(4, false);
  EXPECT_FALSE(m.view().has_link(1, 4));
  m.set_local_link(4, true);
  m.apply(ours(4, 2, {1, 2}, {300, 100}), 0);
  EXPECT_TRUE(m.view().has_link(1, 4));
  EXPECT_EQ(m.view().weight(2, 4), 100u);
  // Gone with the member: its claims and the claims about it.
  m.remove_member(2);
  EXPECT_FALSE(m.view().has_peer(2));
  m.apply(status(5, 1, {}), 0);
  m.apply(ours(4, 3, {1, 5}), 0);
  EXPECT_TRUE(m.view().has_link(4, 5));
  EXPECT_FALSE(m.view().has_link(2, 4));
}

TEST(Membership, AClaimedRttAboveTheViewsLargestWeightStaysTheLargestInAndOut) {
  Membership m(1);
  m.apply(status(2, 1, {3}, {3'000'000}), 0);
  m.apply(status(3, 1, {2}, {4'000'000}), 0);
  EXPECT_EQ(m.view().weight(2, 3), SlotLink::kMaxWeightUs);
  m.apply(status(3, 2, {}), 0);  // out of the view: 2's claim waits outside
  m.apply(status(3, 3, {2}, {0}), 0);
  EXPECT_EQ(m.view().weight(2, 3), SlotLink::kMaxWeightUs) << "2's claim came back saturated";
  m.apply(status(2, 2, {3}, {1'000}), 0);
  EXPECT_EQ(m.view().weight(2, 3), 1'000u);
}

TEST(Membership, SilenceIsToldAcrossTheWrapOfItsClock) {
  // A member record keeps 40 bits of the time it was last heard.
  const TimeUs wrap = TimeUs{1} << 40;
  Membership m(1);
  m.apply(ours(2, 1, {}), wrap - 1'000);
  m.apply(ours(3, 1, {}), wrap + 1'000);
  EXPECT_EQ(m.silent_since(wrap - 1'000), std::vector<PeerId>{});
  EXPECT_EQ(m.silent_since(wrap), std::vector<PeerId>{2});
  EXPECT_EQ(m.silent_since(wrap + 1'001), (std::vector<PeerId>{2, 3}));
  m.apply(ours(2, 1, {}), wrap + 2'000);  // the same status id: still heard
  EXPECT_EQ(m.silent_since(wrap + 1'001), std::vector<PeerId>{3});
  m.apply(ours(3, 1, {}), wrap - 5'000);  // late: it was heard later than that
  EXPECT_EQ(m.silent_since(wrap + 1'000), std::vector<PeerId>{});
  Membership early(1);
  early.apply(ours(2, 1, {}), 0);
  EXPECT_EQ(early.silent_since(-30'000'000), std::vector<PeerId>{}) << "a cutoff before the clock began";
  EXPECT_EQ(early.silent_since(1), std::vector<PeerId>{2});
}

TEST(Membership, AFullViewLeavesANewPeerUnknown) {
  Membership m(1, 3);  // us and two members
  EXPECT_EQ(m.apply(ours(2, 1, {3}), 0).joined, 2u);
  EXPECT_EQ(m.apply(ours(3, 1, {2}), 0).joined, 3u);
  const Membership::Outcome outcome = m.apply(ours(4, 1, {2}), 0);
  EXPECT_TRUE(outcome.ignored);
  EXPECT_EQ(outcome.joined, kNoPeer);
  EXPECT_FALSE(m.is_member(4));
  EXPECT_FALSE(m.add_member(5, 0));
  EXPECT_EQ(m.member_count(), 2u);
  EXPECT_TRUE(m.view().has_link(2, 3));
  m.remove_member(3);
  EXPECT_EQ(m.apply(ours(4, 2, {2}), 0).joined, 4u) << "room again";
  EXPECT_TRUE(m.view().has_link(2, 4));
}

TEST(Membership, AReferencePeersClaimCountsOnlyOnceTheOtherEndMakesItToo) {
  // Reference peers (version 0) keep claiming links whose offer went
  // unanswered or that the other end closed: trees must not use those.
  Membership m(1);
  m.apply(status(2, 1, {3, 4}), 0);
  m.apply(status(3, 1, {}), 0);
  m.apply(ours(4, 1, {}), 0);
  EXPECT_FALSE(m.view().has_link(2, 3)) << "only 2 claims it";
  EXPECT_FALSE(m.view().has_link(2, 4)) << "4 speaks our protocol and does not claim it";
  m.apply(link_update(3, 2, true), 0);
  EXPECT_TRUE(m.view().has_link(2, 3));
  m.apply(ours(4, 2, {2}), 0);
  EXPECT_TRUE(m.view().has_link(2, 4));
  m.apply(link_update(4, 2, false), 0);
  EXPECT_FALSE(m.view().has_link(2, 4)) << "4 closed it; 2 still claims it";
  // A status revealing our protocol makes the member's own claims count.
  m.apply(ours(2, 2, {3, 4}), 0);
  EXPECT_TRUE(m.view().has_link(2, 4));
}

TEST(Membership, AClaimThatWasNotCredibleLeavesWithThePeerItNames) {
  Membership m(1);
  m.apply(status(2, 1, {3}), 0);
  m.apply(ours(3, 1, {}), 0);
  wire::MeshUpdate gone = status(3, 2, {});
  gone.left = true;
  m.apply(gone, 0);
  // Were 2's claim about 3 still held, 3's own claim would now confirm it.
  m.apply(status(3, 3, {2}), 0);
  EXPECT_FALSE(m.view().has_link(2, 3));
}

TEST(Membership, AStatusWithAnUnchangedIdIsStillASignOfLife) {
  Membership m(1);
  m.apply(status(2, 5, {}), 1000);
  EXPECT_TRUE(m.apply(status(2, 5, {}), 9000).ignored);  // reference peers re-publish so
  EXPECT_TRUE(m.silent_since(5000).empty());
  EXPECT_EQ(m.silent_since(9001), std::vector<PeerId>{2});
}

TEST(Membership, LinksClaimedByOneMemberAreBounded) {
  Membership m(1);
  for (PeerId peer = 1000; peer < 1600; ++peer) m.apply(status(peer, 1, {}), 0);
  m.apply(ours(2, 1, {}), 0);
  for (PeerId peer = 1000; peer < 1600; ++peer) m.apply(link_update(2, peer, true), 0);
  EXPECT_EQ(m.view().neighbours(2).size(), Membership::kMaxClaimsPerMember);
  m.apply(link_update(2, 1000, false), 0);
  m.apply(link_update(2, 1599, true), 0);
  EXPECT_TRUE(m.view().has_link(2, 1599)) << "room again after a link went";
}

TEST(Membership, OthersClaimsNeverMakeLinksOfOurOwn) {
  Membership m(1);
  m.apply(status(2, 1, {1}), 0);
  EXPECT_FALSE(m.view().has_link(1, 2)) << "only our open links count for us";
  m.set_local_link(2, true, 800);
  EXPECT_TRUE(m.view().has_link(1, 2));
  m.set_local_link(2, false);
  EXPECT_FALSE(m.view().has_link(1, 2));
}

TEST(Membership, OlderOrEqualStatusIdsAreIgnored) {
  Membership m(1);
  m.apply(status(3, 0, {}), 0);
  m.apply(ours(2, 5, {3}), 0);
  EXPECT_TRUE(m.apply(ours(2, 5, {}), 0).ignored);
  EXPECT_TRUE(m.apply(ours(2, 4, {}), 0).ignored);
  EXPECT_TRUE(m.view().has_link(2, 3));
  EXPECT_FALSE(m.apply(ours(2, 6, {}), 0).ignored);
  EXPECT_FALSE(m.view().has_link(2, 3));
}

TEST(Membership, LinkWeightsComeFromReportedRtts) {
  Membership m(1);
  m.apply(status(3, 1, {}), 0);
  m.apply(ours(2, 1, {3}, {4000}), 0);
  ASSERT_EQ(m.view().neighbours(2).size(), 1u);
  EXPECT_EQ(m.view().neighbours(2)[0].weight_us, 4000u);
}

TEST(Membership, DepartedPeerLeavesNoTrace) {
  Membership m(1);
  m.apply(ours(2, 1, {3, 4}), 0);
  m.apply(ours(3, 1, {2}), 0);
  m.apply(ours(4, 1, {2, 3}), 0);
  wire::MeshUpdate gone = status(2, 2, {});
  gone.left = true;
  EXPECT_EQ(m.apply(gone, 0).left, 2u);
  EXPECT_FALSE(m.is_member(2));
  EXPECT_FALSE(m.view().has_peer(2));
  EXPECT_TRUE(m.view().has_link(3, 4));
  EXPECT_EQ(m.view().link_count(), 1u);
  // 3's stale claim about 2 does not bring it back.
  m.apply(link_update(3, 4, true), 0);
  EXPECT_FALSE(m.view().has_peer(2));
}

TEST(Membership, SilentMembersAreFoundForExpiry) {
  Membership m(1);
  m.apply(status(2, 1, {}), 1000);
  m.apply(status(3, 1, {}), 5000);
  EXPECT_EQ(m.silent_since(2000), std::vector<PeerId>{2});
  EXPECT_TRUE(m.remove_member(2));
  EXPECT_FALSE(m.remove_member(2));
  EXPECT_EQ(m.members(), std::vector<PeerId>{3});
}

}  // namespace
}  // namespace p2pmesh
