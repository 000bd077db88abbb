// The simulator's stand-in for meshd: the group snapshot a newcomer gets.

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
  const auto receiver = [&](PeerId to, const std::string& topic, PeerId sender,
                            const std::string& body) {
    Heard h{to, topic, sender, {}};
    ASSERT_EQ(wire::decode(body, h.update), wire::DecodeError::none);
    heard.push_back(h);
  };
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
  broker.disconnect(never_joins);  // no member: no departure notice
  EXPECT_TRUE(heard.empty());
}

}  // namespace
}  // namespace p2pmesh::sim
