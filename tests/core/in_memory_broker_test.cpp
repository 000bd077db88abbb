// The simulator's stand-in for meshd: the group snapshot a newcomer gets, and
// meshd's rules on mesh updates (its MemberRecord).

#include "in_memory_broker.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace p2pmesh::sim {
namespace {

struct Heard {
  PeerId to;
  std::string topic;
  PeerId sender;
  wire::MeshUpdate update;
};

// A receiver that decodes every mesh update it gets into `heard`.
InMemoryBroker::Receiver recorder(std::vector<Heard>& heard) {
  return [&heard](PeerId to, const std::string& topic, PeerId sender, const std::string& body,
                  bool /*new_frame*/) {
    Heard h{to, topic, sender, {}};
    ASSERT_EQ(wire::decode(body, h.update), wire::DecodeError::none);
    heard.push_back(h);
  };
}

std::string status_body(PeerId source, std::vector<PeerId> links) {
  wire::MeshUpdate update;
  update.source = source;
  update.kind = wire::MeshUpdate::Kind::status;
  update.status.id = 1;
  update.status.connected_to = std::move(links);
  return wire::encode(update);
}

TEST(InMemoryBroker, AStatusPublishedBeforeSubscribingIsInLaterSnapshotsOnceItJoins) {
  // The reference peer publishes its first status, then subscribes.
  InMemoryBroker broker;
  std::vector<Heard> heard;
  const InMemoryBroker::Receiver receiver = recorder(heard);
  const PeerId early = broker.connect(receiver);
  broker.publish(early, {"g.mesh"}, status_body(early, {7, 8}));
  const PeerId never_joins = broker.connect(receiver);
  broker.publish(never_joins, {"g.mesh"}, status_body(never_joins, {9}));
  broker.subscribe(early, "g.mesh");

  const PeerId newcomer = broker.connect(receiver);
  broker.subscribe(newcomer, "g.mesh");
  ASSERT_EQ(heard.size(), 1u) << "the snapshot: the early member only";
  EXPECT_EQ(heard[0].to, newcomer);
  EXPECT_EQ(heard[0].sender, early);
  EXPECT_EQ(heard[0].update.status.connected_to, (std::vector<PeerId>{7, 8}));

  heard.clear();
  broker.disconnect(never_joins);  // nobody heard its status: no departure notice
  EXPECT_TRUE(heard.empty());
}

// As meshd: a status some member heard from a connection that never joined
// is followed by a departure notice when it goes; a departed member's links
// leave the others' records, so the next snapshot lists none with it.
TEST(InMemoryBroker, AnnouncesHeardNonMembersAndForgetsDepartedLinks) {
  InMemoryBroker broker;
  std::vector<Heard> heard;
  const InMemoryBroker::Receiver receiver = recorder(heard);
  const PeerId member = broker.connect(receiver);
  broker.subscribe(member, "g.mesh");
  const PeerId outsider = broker.connect(receiver);
  broker.publish(outsider, {"g.mesh"}, status_body(outsider, {member}));
  heard.clear();
  broker.disconnect(outsider);
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0].to, member);
  EXPECT_EQ(heard[0].sender, outsider);
  EXPECT_TRUE(heard[0].update.left);

  const PeerId departing = broker.connect(receiver);
  broker.subscribe(departing, "g.mesh");
  broker.publish(member, {"g.mesh"}, status_body(member, {departing, 77}));
  broker.disconnect(departing);
  heard.clear();
  const PeerId newcomer = broker.connect(receiver);
  broker.subscribe(newcomer, "g.mesh");
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0].sender, member);
  EXPECT_EQ(heard[0].update.status.connected_to, (std::vector<PeerId>{77}));
}

// As meshd: a member of version 4 saying it closed a link takes the link out
// of the other end's record too (that end says nothing in an all-version-4
// group), so a newcomer's snapshot has no link that is gone.
TEST(InMemoryBroker, ALinkDownSaidByOneEndLeavesBothRecords) {
  InMemoryBroker broker;
  std::vector<Heard> heard;
  const InMemoryBroker::Receiver receiver = recorder(heard);
  const PeerId a = broker.connect(receiver);
  const PeerId b = broker.connect(receiver);
  broker.subscribe(a, "g.mesh");
  broker.subscribe(b, "g.mesh");
  const auto v4_status = [](PeerId source, std::vector<PeerId> links) {
    wire::MeshUpdate update;
    update.source = source;
    update.kind = wire::MeshUpdate::Kind::status;
    update.status.id = 1;
    update.status.version = wire::kVersionLinkDownByOneEnd;
    update.status.connected_to = std::move(links);
    return wire::encode(update);
  };
  broker.publish(a, {"g.mesh"}, v4_status(a, {b, 77}));
  broker.publish(b, {"g.mesh"}, v4_status(b, {a, 78}));
  wire::MeshUpdate down;
  down.source = a;
  down.kind = wire::MeshUpdate::Kind::disconnected_from;
  down.peer = b;
  broker.publish(a, {"g.mesh"}, wire::encode(down));
  heard.clear();
  const PeerId newcomer = broker.connect(receiver);
  broker.subscribe(newcomer, "g.mesh");
  ASSERT_EQ(heard.size(), 2u);
  for (const Heard& h : heard) {
    const std::vector<PeerId> left{h.sender == a ? PeerId{77} : PeerId{78}};
    EXPECT_EQ(h.update.status.connected_to, left) << "the record of " << h.sender;
  }
}

TEST(InMemoryBroker, KeepsMeshdsRulesOnMeshUpdates) {
  InMemoryBroker broker;
  std::vector<Heard> heard;
  const InMemoryBroker::Receiver receiver = recorder(heard);
  const PeerId member = broker.connect(receiver);
  const PeerId other = broker.connect(receiver);
  broker.subscribe(member, "g.mesh");
  broker.subscribe(other, "g.mesh");
  wire::MeshUpdate update;
  update.source = member;
  update.kind = wire::MeshUpdate::Kind::status;
  update.status.id = 2;
  update.status.connected_to = {other};
  update.status.rtt_us = {1500};
  broker.publish(member, {"g.mesh"}, wire::encode(update));
  update.status.id = 1;  // overtaken: changes nothing
  update.status.connected_to = {};
  broker.publish(member, {"g.mesh"}, wire::encode(update));
  heard.clear();
  broker.publish(other, {"g.mesh"}, status_body(member, {99}));  // not its own: refused
  EXPECT_TRUE(heard.empty());

  const PeerId newcomer = broker.connect(receiver);
  broker.subscribe(newcomer, "g.mesh");
  ASSERT_EQ(heard.size(), 1u) << "the member's status; the other published none";
  EXPECT_EQ(heard[0].update.status.id, 2u);
  EXPECT_EQ(heard[0].update.status.connected_to, (std::vector<PeerId>{other}));
  EXPECT_EQ(heard[0].update.status.rtt_us, (std::vector<std::uint32_t>{1500}));

  heard.clear();
  broker.disconnect(member);
  ASSERT_EQ(heard.size(), 2u) << "the departure to both who stay";
  EXPECT_TRUE(heard[0].update.left);
  EXPECT_EQ(heard[0].update.status.id, 3u);
}

}  // namespace
}  // namespace p2pmesh::sim
