// MemberRecord: the server's record of a member (meshd's Broker and mesh-sim's
// broker keep the same one): snapshots, departures and the rules on mesh updates.

#include "member_record.hpp"

#include <gtest/gtest.h>

#include <limits>

namespace p2pmesh {
namespace {

wire::MeshUpdate status(std::uint32_t id, std::vector<PeerId> links, std::vector<std::uint32_t> rtt = {}) {
  wire::MeshUpdate update;
  update.source = 4;
  update.kind = wire::MeshUpdate::Kind::status;
  update.status.id = id;
  update.status.version = 2;
  update.status.connected_to = std::move(links);
  update.status.rtt_us = std::move(rtt);
  return update;
}

wire::MeshUpdate link(wire::MeshUpdate::Kind kind, PeerId peer) {
  wire::MeshUpdate update;
  update.source = 4;
  update.kind = kind;
  update.peer = peer;
  return update;
}

TEST(MemberRecord, TheSnapshotIsTheLatestStatusWithLinkChangesAndRtts) {
  MemberRecord record;
  EXPECT_FALSE(record.has_update);
  record.apply(status(3, {7, 8}, {100, 200}));
  record.apply(link(wire::MeshUpdate::Kind::disconnected_from, 7));
  record.apply(link(wire::MeshUpdate::Kind::connected_to, 9));
  const wire::MeshUpdate snapshot = record.snapshot(4);
  EXPECT_EQ(snapshot.source, 4u);
  EXPECT_EQ(snapshot.kind, wire::MeshUpdate::Kind::status);
  EXPECT_EQ(snapshot.status.id, 3u);
  EXPECT_EQ(snapshot.status.version, 2u);
  EXPECT_EQ(snapshot.status.connected_to, (std::vector<PeerId>{8, 9}));
  EXPECT_EQ(snapshot.status.rtt_us, (std::vector<std::uint32_t>{200, 0}));  // 9: not measured yet
  EXPECT_FALSE(snapshot.left);
}

TEST(MemberRecord, AnOlderStatusChangesNothing) {
  MemberRecord record;
  record.apply(status(5, {7}));
  record.apply(status(4, {1, 2, 3}));
  EXPECT_EQ(record.snapshot(4).status.connected_to, (std::vector<PeerId>{7}));
  EXPECT_EQ(record.status_id, 5u);
}

TEST(MemberRecord, LinksClaimedOneByOneAreBounded) {
  MemberRecord record;
  for (PeerId peer = 1; peer <= 10 * MemberRecord::kMaxTrackedLinks; ++peer) {
    record.apply(link(wire::MeshUpdate::Kind::connected_to, peer));
  }
  EXPECT_EQ(record.connected_to.size(), MemberRecord::kMaxTrackedLinks);
}

TEST(MemberRecord, TheDepartureIsNewerThanTheLastStatusAndNeverWraps) {
  MemberRecord record;
  record.apply(status(6, {7}));
  const wire::MeshUpdate notice = record.departure(4);
  EXPECT_EQ(notice.source, 4u);
  EXPECT_EQ(notice.status.id, 7u);
  EXPECT_TRUE(notice.status.connected_to.empty());
  EXPECT_TRUE(notice.left);
  record.apply(status(std::numeric_limits<std::uint32_t>::max(), {}));
  EXPECT_EQ(record.departure(4).status.id, std::numeric_limits<std::uint32_t>::max());
}

// Peers act on `left` in arrival order (it removes the member whatever its
// id; any later update brings it back), so the record does too.
TEST(MemberRecord, LeftFollowsTheLastUpdateAndIsInTheSnapshot) {
  MemberRecord record;
  record.apply(status(6, {7}));
  EXPECT_TRUE(record.needs_departure_notice());
  wire::MeshUpdate left = status(7, {});
  left.left = true;
  record.apply(left);
  EXPECT_FALSE(record.needs_departure_notice());
  EXPECT_TRUE(record.snapshot(4).left) << "a newcomer must not keep it";
  record.apply(link(wire::MeshUpdate::Kind::connected_to, 9));  // back
  EXPECT_TRUE(record.needs_departure_notice());
  EXPECT_FALSE(record.snapshot(4).left);
  wire::MeshUpdate stale_left = status(2, {});
  stale_left.left = true;
  record.apply(stale_left);  // an old id, but peers drop the member on it
  EXPECT_FALSE(record.needs_departure_notice());
  EXPECT_EQ(record.status_id, 7u);
}

TEST(MemberRecord, ADepartedPeersLinkIsForgottenWithItsRtt) {
  MemberRecord record;
  record.apply(status(3, {7, 8, 9}, {100, 200, 300}));
  record.forget_link(8);
  record.forget_link(42);  // not a link: nothing
  const wire::MeshUpdate snapshot = record.snapshot(4);
  EXPECT_EQ(snapshot.status.connected_to, (std::vector<PeerId>{7, 9}));
  EXPECT_EQ(snapshot.status.rtt_us, (std::vector<std::uint32_t>{100, 300}));
  EXPECT_EQ(snapshot.status.id, 3u);
}

TEST(MemberRecord, ALinkDownOfVersion4NamesTheOtherEndsRecordToForgetIt) {
  MemberRecord record;
  record.apply(status(1, {7}));  // version 2: the other end speaks for itself
  const wire::MeshUpdate down = link(wire::MeshUpdate::Kind::disconnected_from, 7);
  record.apply(down);
  EXPECT_EQ(other_end_of_link_down(down, record), kNoPeer);
  wire::MeshUpdate v4 = status(2, {7});
  v4.status.version = wire::kVersionLinkDownByOneEnd;
  record.apply(v4);
  record.apply(down);
  EXPECT_EQ(other_end_of_link_down(down, record), 7u);
  EXPECT_EQ(other_end_of_link_down(link(wire::MeshUpdate::Kind::connected_to, 7), record), kNoPeer);
  EXPECT_EQ(other_end_of_link_down(v4, record), kNoPeer);
}

TEST(MemberRecord, OnlyASendersOwnDecodableUpdateCounts) {
  wire::MeshUpdate out;
  const std::string own = wire::encode(status(1, {7}));
  EXPECT_EQ(check_mesh_update(own, 4, out), MeshUpdateCheck::own);
  EXPECT_EQ(check_mesh_update(own, 5, out), MeshUpdateCheck::not_own);
  EXPECT_EQ(check_mesh_update("\xff\xff\xff", 4, out), MeshUpdateCheck::undecodable);
}

}  // namespace
}  // namespace p2pmesh
