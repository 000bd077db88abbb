// meshd protocol behaviour (WIRE.md section 1) and discovery: welcome,
// pub/sub semantics, snapshot for newcomers (also of statuses published
// before subscribing), departure notices.

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "support.hpp"

namespace meshd::test {
namespace {

namespace wire = p2pmesh::wire;
using Kind = wire::ServerMessage::Kind;

Config open_config() {
  Config config = test_config();
  config.access_rules = false;
  return config;
}

TEST(Protocol, WelcomeComesFirstWithFreshNonZeroIds) {
  TestServer server;
  std::vector<std::unique_ptr<WsClient>> clients;
  std::set<p2pmesh::PeerId> ids;
  for (int i = 0; i < 5; ++i) {
    auto client = std::make_unique<WsClient>();
    ASSERT_TRUE(client->connect(server.port())) << client->error();  // checks welcome first
    EXPECT_NE(client->id(), p2pmesh::kNoPeer);
    ids.insert(client->id());
    clients.push_back(std::move(client));
  }
  EXPECT_EQ(ids.size(), 5u);
  // A reconnecting peer gets a fresh id too.
  clients[0]->close();
  WsClient again;
  ASSERT_TRUE(again.connect(server.port()));
  EXPECT_EQ(ids.count(again.id()), 0u);
}

TEST(Protocol, SenderIsStampedByServerAndPublisherGetsItsOwn) {
  TestServer server(open_config());
  WsClient a, b, c;
  ASSERT_TRUE(a.connect(server.port()));
  ASSERT_TRUE(b.connect(server.port()));
  ASSERT_TRUE(c.connect(server.port()));
  a.subscribe("room");
  b.subscribe("room");
  ASSERT_TRUE(a.barrier());
  ASSERT_TRUE(b.barrier());
  c.publish({"room"}, "hello");
  for (WsClient* receiver : {&a, &b}) {
    const auto message = receiver->next();
    ASSERT_TRUE(message);
    EXPECT_EQ(message->kind, Kind::topic_message);
    EXPECT_EQ(message->topic, "room");
    EXPECT_EQ(message->sender, c.id());
    EXPECT_EQ(message->body, "hello");
  }
  // The publisher receives its own publication when subscribed.
  a.publish({"room"}, "mine");
  const auto own = a.next();
  ASSERT_TRUE(own);
  EXPECT_EQ(own->sender, a.id());
  EXPECT_EQ(own->body, "mine");
  // c is not subscribed: nothing for it.
  ASSERT_TRUE(c.barrier());
  EXPECT_TRUE(c.drain().empty());
}

TEST(Protocol, OneTopicMessagePerTopicOfAPublish) {
  TestServer server(open_config());
  WsClient both, one, publisher;
  ASSERT_TRUE(both.connect(server.port()));
  ASSERT_TRUE(one.connect(server.port()));
  ASSERT_TRUE(publisher.connect(server.port()));
  both.subscribe("t1");
  both.subscribe("t2");
  one.subscribe("t2");
  ASSERT_TRUE(both.barrier());
  ASSERT_TRUE(one.barrier());
  publisher.publish({"t1", "t2", "t3"}, "x");
  ASSERT_TRUE(publisher.barrier());
  ASSERT_TRUE(both.barrier());
  ASSERT_TRUE(one.barrier());
  const auto got_both = both.drain();
  ASSERT_EQ(got_both.size(), 2u);
  EXPECT_EQ(got_both[0].topic, "t1");
  EXPECT_EQ(got_both[1].topic, "t2");
  const auto got_one = one.drain();
  ASSERT_EQ(got_one.size(), 1u);
  EXPECT_EQ(got_one[0].topic, "t2");
  EXPECT_EQ(got_one[0].sender, publisher.id());
}

TEST(Protocol, UnsubscribeStopsDelivery) {
  TestServer server(open_config());
  WsClient a, b;
  ASSERT_TRUE(a.connect(server.port()));
  ASSERT_TRUE(b.connect(server.port()));
  a.subscribe("t");
  a.subscribe("sentinel");
  a.unsubscribe("t");
  ASSERT_TRUE(a.barrier());
  b.publish({"t"}, "gone");
  b.publish({"sentinel"}, "s");
  const auto first = a.next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->topic, "sentinel");
}

TEST(Discovery, NewcomerGetsSnapshotOfEveryMember) {
  TestServer server;
  auto a = join(server.port(), "g");
  ASSERT_TRUE(a);
  a->publish({"g.mesh"}, status_update(a->id(), {111, 222}, 5));
  auto own = a->next();  // a is subscribed: its own status comes back
  ASSERT_TRUE(own);
  EXPECT_EQ(own->sender, a->id());

  auto b = join(server.port(), "g");
  ASSERT_TRUE(b);
  auto snapshot = b->drain();  // join() ended with a barrier: the snapshot is there
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot[0].topic, "g.mesh");
  EXPECT_EQ(snapshot[0].sender, a->id());
  auto update = mesh_update(snapshot[0]);
  EXPECT_EQ(update.source, a->id());
  ASSERT_EQ(update.kind, wire::MeshUpdate::Kind::status);
  EXPECT_EQ(update.status.connected_to, (std::vector<p2pmesh::PeerId>{111, 222}));
  EXPECT_EQ(update.status.id, 5u);
  EXPECT_FALSE(update.left);

  // Link changes keep the stored status current.
  a->publish({"g.mesh"}, link_update(a->id(), 333, true));
  a->publish({"g.mesh"}, link_update(a->id(), 111, false));
  ASSERT_TRUE(a->barrier());
  // b never published: it is not in the snapshot; then it publishes a status.
  b->publish({"g.mesh"}, status_update(b->id(), {a->id()}, 1));
  ASSERT_TRUE(b->barrier());
  // An older status id does not replace the stored one.
  a->publish({"g.mesh"}, status_update(a->id(), {999}, 4));
  ASSERT_TRUE(a->barrier());

  auto c = join(server.port(), "g");
  ASSERT_TRUE(c);
  snapshot = c->drain();
  ASSERT_EQ(snapshot.size(), 2u);
  std::map<p2pmesh::PeerId, wire::MeshUpdate> by_sender;
  for (const auto& message : snapshot) {
    EXPECT_EQ(message.topic, "g.mesh");
    by_sender[message.sender] = mesh_update(message);
  }
  ASSERT_EQ(by_sender.count(a->id()), 1u);
  ASSERT_EQ(by_sender.count(b->id()), 1u);
  EXPECT_EQ(by_sender[a->id()].source, a->id());
  EXPECT_EQ(by_sender[a->id()].status.connected_to, (std::vector<p2pmesh::PeerId>{222, 333}));
  EXPECT_EQ(by_sender[a->id()].status.id, 5u);
  EXPECT_EQ(by_sender[b->id()].status.connected_to, (std::vector<p2pmesh::PeerId>{a->id()}));
  EXPECT_EQ(by_sender[b->id()].status.id, 1u);
  EXPECT_GE(metric(server.port(), "meshd_snapshot_messages_total"), 3);

  // Another group sees nothing of g.
  auto other = join(server.port(), "h");
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->drain().empty());
}

TEST(Discovery, MemberOnlyWithLinkUpdatesIsInSnapshotWithIdZero) {
  TestServer server;
  auto a = join(server.port(), "g");
  ASSERT_TRUE(a);
  a->publish({"g.mesh"}, link_update(a->id(), 42, true));
  ASSERT_TRUE(a->next());
  auto b = join(server.port(), "g");
  ASSERT_TRUE(b);
  const auto snapshot = b->drain();
  ASSERT_EQ(snapshot.size(), 1u);
  const auto update = mesh_update(snapshot[0]);
  EXPECT_EQ(update.status.connected_to, (std::vector<p2pmesh::PeerId>{42}));
  EXPECT_EQ(update.status.id, 0u);
}

TEST(Discovery, LinksKeptPerMemberAreBounded) {
  TestServer server;
  auto a = join(server.port(), "g");
  ASSERT_TRUE(a);
  for (p2pmesh::PeerId peer = 1000; peer < 1600; ++peer) {
    a->publish({"g.mesh"}, link_update(a->id(), peer, true));
  }
  for (int i = 0; i < 600; ++i) ASSERT_TRUE(a->next()) << i;
  auto b = join(server.port(), "g");
  ASSERT_TRUE(b);
  const auto snapshot = b->drain();
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(mesh_update(snapshot[0]).status.connected_to.size(), 256u);
}

void expect_departure(WsClient& observer, p2pmesh::PeerId departed, std::uint32_t id) {
  // Within 1 s (the bound; in practice immediate).
  const auto message = observer.next(std::chrono::milliseconds(1000));
  ASSERT_TRUE(message) << "no departure notice within 1 s";
  EXPECT_EQ(message->topic, "g.mesh");
  EXPECT_EQ(message->sender, departed);
  const auto update = mesh_update(*message);
  EXPECT_EQ(update.source, departed);
  ASSERT_EQ(update.kind, wire::MeshUpdate::Kind::status);
  EXPECT_TRUE(update.status.connected_to.empty());
  EXPECT_EQ(update.status.id, id);
  EXPECT_TRUE(update.left);
}

TEST(Discovery, DepartureNoticeOnCloseOnDeathAndOnUnsubscribe) {
  TestServer server;
  auto observer = join(server.port(), "g");
  ASSERT_TRUE(observer);
  auto elsewhere = join(server.port(), "h");
  ASSERT_TRUE(elsewhere);

  auto closing = join(server.port(), "g");
  ASSERT_TRUE(closing);
  closing->publish({"g.mesh"}, status_update(closing->id(), {observer->id()}, 7));
  ASSERT_TRUE(observer->next());  // the status itself
  closing->close();
  expect_departure(*observer, closing->id(), 8);

  auto dying = join(server.port(), "g");
  ASSERT_TRUE(dying);
  const auto dying_id = dying->id();
  dying->kill();  // no close frame
  expect_departure(*observer, dying_id, 1);

  auto leaving = join(server.port(), "g");
  ASSERT_TRUE(leaving);
  leaving->unsubscribe("g.mesh");
  expect_departure(*observer, leaving->id(), 1);

  // The departed are gone from the snapshot.
  auto newcomer = join(server.port(), "g");
  ASSERT_TRUE(newcomer);
  EXPECT_TRUE(newcomer->drain().empty());
  // Other groups hear nothing.
  ASSERT_TRUE(elsewhere->barrier());
  EXPECT_TRUE(elsewhere->drain().empty());
  EXPECT_EQ(metric(server.port(), "meshd_departures_total"), 3);
}

// A member of g says it left, as our peers do before they close (an empty
// status with `left`, id 3); an observer of g has read it.
class SaidItLeft : public ::testing::Test {
 protected:
  void SetUp() override {
    observer = join(server.port(), "g");
    ASSERT_TRUE(observer);
    leaving = join(server.port(), "g");
    ASSERT_TRUE(leaving);
    leaving_id = leaving->id();
    wire::MeshUpdate left;
    left.source = leaving_id;
    left.kind = wire::MeshUpdate::Kind::status;
    left.status.id = 3;
    left.left = true;
    leaving->publish({"g.mesh"}, wire::encode(left));
    expect_departure(*observer, leaving_id, 3);  // its own
  }

  TestServer server;
  std::unique_ptr<WsClient> observer;
  std::unique_ptr<WsClient> leaving;
  p2pmesh::PeerId leaving_id = 0;
};

// Our peers say they leave (an empty status with `left`, the departure
// notice's very shape) before they close: meshd does not say it again.
TEST_F(SaidItLeft, GetsNoSecondDepartureNotice) {
  leaving->close();
  // Whatever meshd published for the close comes before this barrier.
  ASSERT_TRUE(wait_metric(server.port(), "meshd_connections", 1));  // out of the broker
  ASSERT_TRUE(observer->barrier());
  EXPECT_TRUE(observer->drain().empty()) << "a second departure notice";
  EXPECT_EQ(metric(server.port(), "meshd_departures_total"), 0);
  auto newcomer = join(server.port(), "g");
  ASSERT_TRUE(newcomer);
  EXPECT_TRUE(newcomer->drain().empty()) << "the departed member is in the snapshot";
}

// A member that said it left but is still connected (closing takes a moment)
// is in a newcomer's snapshot as gone; one that spoke again after saying it
// left is a member again and gets its departure notice on close.
TEST_F(SaidItLeft, IsGoneInTheSnapshotAndGetsItsNoticeAfterComingBack) {
  auto newcomer = join(server.port(), "g");
  ASSERT_TRUE(newcomer);
  expect_departure(*newcomer, leaving_id, 3);  // the snapshot says it left

  leaving->publish({"g.mesh"}, link_update(leaving_id, 42, true));  // back
  ASSERT_TRUE(leaving->barrier());
  ASSERT_TRUE(observer->next(std::chrono::milliseconds(1000)));  // the link update
  leaving->close();
  expect_departure(*observer, leaving_id, 4);
  EXPECT_EQ(metric(server.port(), "meshd_departures_total"), 1);
}

// A status published without being a member (the reference peer's first,
// before it subscribes) reaches the members: if that peer goes before it
// joins, they learn it went, as of a member.
TEST(Discovery, AStatusWithoutMembershipIsFollowedByADepartureNoticeOnClose) {
  TestServer server;
  auto observer = join(server.port(), "g");
  ASSERT_TRUE(observer);
  WsClient early;
  ASSERT_TRUE(early.connect(server.port()));
  early.publish({"g.mesh"}, status_update(early.id(), {111}, 4));
  ASSERT_TRUE(early.barrier());
  ASSERT_TRUE(observer->next(std::chrono::milliseconds(1000)));  // its status
  early.close();
  expect_departure(*observer, early.id(), 5);
  EXPECT_EQ(metric(server.port(), "meshd_departures_total"), 1);
}

// The reference browser peer publishes its status in its constructor and
// subscribes to <group>.mesh afterwards (issue 11): that status is about the
// publisher and is in the snapshot as soon as it is a member.
TEST(Discovery, StatusPublishedBeforeSubscribingIsInSnapshot) {
  TestServer server;
  auto earlier = join(server.port(), "g");  // the group exists already
  ASSERT_TRUE(earlier);
  WsClient a;
  ASSERT_TRUE(a.connect(server.port()));
  a.publish({"g.mesh"}, status_update(a.id(), {111, 222}, 1));
  a.publish({"g.mesh"}, link_update(a.id(), 333, true));  // kept up to date meanwhile
  ASSERT_TRUE(a.barrier());
  ASSERT_TRUE(join(a, "g"));
  EXPECT_TRUE(a.drain().empty());  // no snapshot of itself
  ASSERT_TRUE(earlier->barrier());
  EXPECT_EQ(earlier->drain().size(), 2u);  // got both live

  auto b = join(server.port(), "g");
  ASSERT_TRUE(b);
  const auto snapshot = b->drain();
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot[0].topic, "g.mesh");
  EXPECT_EQ(snapshot[0].sender, a.id());
  const auto update = mesh_update(snapshot[0]);
  EXPECT_EQ(update.source, a.id());
  ASSERT_EQ(update.kind, wire::MeshUpdate::Kind::status);
  EXPECT_EQ(update.status.connected_to, (std::vector<p2pmesh::PeerId>{111, 222, 333}));
  EXPECT_EQ(update.status.id, 1u);
  EXPECT_EQ(update.status.version, 0u);
  EXPECT_FALSE(update.left);

  // The record is now the member's: its departure notice follows its status id.
  const auto a_id = a.id();
  a.close();
  expect_departure(*b, a_id, 2);
}

// A member's stored links lose a departed member at its departure, as every
// live view does (our peers publish no link down for it in all-ours
// groups): a newcomer's snapshot does not wait for the member's next status.
TEST(Discovery, ASnapshotHasNoLinkWithADepartedMember) {
  TestServer server;
  auto a = join(server.port(), "g");
  ASSERT_TRUE(a);
  auto b = join(server.port(), "g");
  ASSERT_TRUE(b);
  const auto b_id = b->id();
  wire::MeshUpdate status;
  status.source = a->id();
  status.kind = wire::MeshUpdate::Kind::status;
  status.status.id = 1;
  status.status.connected_to = {b_id, 77};
  status.status.rtt_us = {1500, 900};
  a->publish({"g.mesh"}, wire::encode(status));
  ASSERT_TRUE(a->barrier());
  a->drain();  // its own, if echoed
  ASSERT_TRUE(b->next(std::chrono::milliseconds(1000)));  // a's status
  b->close();
  expect_departure(*a, b_id, 1);

  auto newcomer = join(server.port(), "g");
  ASSERT_TRUE(newcomer);
  const auto snapshot = newcomer->drain();
  ASSERT_EQ(snapshot.size(), 1u);
  const auto update = mesh_update(snapshot[0]);
  EXPECT_EQ(update.source, a->id());
  EXPECT_EQ(update.status.connected_to, (std::vector<p2pmesh::PeerId>{77}));
  EXPECT_EQ(update.status.rtt_us, (std::vector<std::uint32_t>{900}));
  EXPECT_EQ(update.status.id, 1u);
}

// A member of version 4 that closed a link says so alone (its other end
// stays silent in an all-version-4 group, and every view drops the link on
// one end's word): meshd's record of the other end loses the link too, so
// a newcomer's snapshot has no link that is gone.
TEST(Discovery, ALinkDownSaidByOneEndLeavesTheOtherEndsStoredLinks) {
  TestServer server;
  auto a = join(server.port(), "g");
  ASSERT_TRUE(a);
  auto b = join(server.port(), "g");
  ASSERT_TRUE(b);
  const auto status_of = [](p2pmesh::PeerId source, std::uint32_t id,
                            std::vector<p2pmesh::PeerId> links, std::uint32_t version) {
    wire::MeshUpdate status;
    status.source = source;
    status.kind = wire::MeshUpdate::Kind::status;
    status.status.id = id;
    status.status.version = version;
    status.status.connected_to = std::move(links);
    status.status.rtt_us = std::vector<std::uint32_t>(status.status.connected_to.size(), 1000);
    return wire::encode(status);
  };
  const auto down = [](p2pmesh::PeerId source, p2pmesh::PeerId peer) {
    wire::MeshUpdate update;
    update.source = source;
    update.kind = wire::MeshUpdate::Kind::disconnected_from;
    update.peer = peer;
    return wire::encode(update);
  };
  const auto snapshot_links = [&] {
    std::map<p2pmesh::PeerId, std::vector<p2pmesh::PeerId>> links;
    auto newcomer = join(server.port(), "g");
    EXPECT_TRUE(newcomer);
    if (!newcomer) return links;
    for (const auto& message : newcomer->drain()) {
      const auto update = mesh_update(message);
      links[update.source] = update.status.connected_to;
    }
    return links;
  };
  // Version 3: each end speaks for itself.
  a->publish({"g.mesh"}, status_of(a->id(), 1, {b->id(), 77}, 3));
  b->publish({"g.mesh"}, status_of(b->id(), 1, {a->id(), 78}, 3));
  a->publish({"g.mesh"}, down(a->id(), b->id()));
  ASSERT_TRUE(a->barrier());
  ASSERT_TRUE(b->barrier());
  auto links = snapshot_links();
  EXPECT_EQ(links[a->id()], (std::vector<p2pmesh::PeerId>{77}));
  EXPECT_EQ(links[b->id()], (std::vector<p2pmesh::PeerId>{a->id(), 78})) << "b's to say";

  // Version 4: a's word is enough.
  auto c = join(server.port(), "g");
  ASSERT_TRUE(c);
  a->publish({"g.mesh"}, status_of(a->id(), 2, {c->id(), 77}, wire::kVersionLinkDownByOneEnd));
  c->publish({"g.mesh"}, status_of(c->id(), 1, {a->id(), 79}, wire::kVersionLinkDownByOneEnd));
  ASSERT_TRUE(c->barrier());
  a->publish({"g.mesh"}, down(a->id(), c->id()));
  ASSERT_TRUE(a->barrier());
  links = snapshot_links();
  EXPECT_EQ(links[a->id()], (std::vector<p2pmesh::PeerId>{77}));
  EXPECT_EQ(links[c->id()], (std::vector<p2pmesh::PeerId>{79}));
}

TEST(Discovery, FirstPeerOfAGroupPublishingBeforeSubscribingIsInSnapshot) {
  TestServer server;
  WsClient a;
  ASSERT_TRUE(a.connect(server.port()));
  a.publish({"g.mesh"}, status_update(a.id(), {7, 8}, 3));  // no topic g.mesh yet
  ASSERT_TRUE(a.barrier());
  ASSERT_TRUE(join(a, "g"));
  EXPECT_TRUE(a.drain().empty());

  auto b = join(server.port(), "g");
  ASSERT_TRUE(b);
  const auto snapshot = b->drain();
  ASSERT_EQ(snapshot.size(), 1u);
  EXPECT_EQ(snapshot[0].sender, a.id());
  const auto update = mesh_update(snapshot[0]);
  EXPECT_EQ(update.source, a.id());
  EXPECT_EQ(update.status.connected_to, (std::vector<p2pmesh::PeerId>{7, 8}));
  EXPECT_EQ(update.status.id, 3u);
  // Only the group it was published to.
  auto other = join(server.port(), "h");
  ASSERT_TRUE(other);
  EXPECT_TRUE(other->drain().empty());
}

// A peer that is not a member gets no departure notice, so it must not be in
// a snapshot either: its early status waits until it subscribes.
TEST(Discovery, StatusOfAPeerThatNeverSubscribesIsNotInSnapshot) {
  TestServer server;
  WsClient never;
  ASSERT_TRUE(never.connect(server.port()));
  never.publish({"g.mesh"}, status_update(never.id(), {1}, 1));
  ASSERT_TRUE(never.barrier());
  WsClient elsewhere;  // publishes for g, joins h
  ASSERT_TRUE(elsewhere.connect(server.port()));
  elsewhere.publish({"g.mesh"}, status_update(elsewhere.id(), {2}, 1));
  ASSERT_TRUE(elsewhere.barrier());
  ASSERT_TRUE(join(elsewhere, "h"));

  auto b = join(server.port(), "g");
  ASSERT_TRUE(b);
  EXPECT_TRUE(b->drain().empty());
  never.close();
  auto c = join(server.port(), "g");
  ASSERT_TRUE(c);
  EXPECT_TRUE(c->drain().empty());
  ASSERT_TRUE(b->barrier());
  EXPECT_TRUE(b->drain().empty());  // no departure notice: nobody heard its status
  EXPECT_EQ(metric(server.port(), "meshd_departures_total"), 0);
}

// Without access rules: only updates about the publisher are kept, and for
// at most max_subscriptions groups it has not joined.
TEST(Discovery, EarlyRecordsAreOwnAndBounded) {
  Config config = open_config();
  config.max_subscriptions = 2;
  TestServer server(config);
  WsClient a;
  ASSERT_TRUE(a.connect(server.port()));
  a.publish({"g1.mesh"}, status_update(999, {9}, 9));  // about another peer
  a.publish({"g1.mesh", "g2.mesh", "g3.mesh"}, status_update(a.id(), {5}, 1));
  a.subscribe("g1.mesh");
  a.subscribe("g3.mesh");
  ASSERT_TRUE(a.barrier());

  WsClient b, c;
  ASSERT_TRUE(b.connect(server.port()));
  ASSERT_TRUE(c.connect(server.port()));
  b.subscribe("g1.mesh");
  c.subscribe("g3.mesh");
  ASSERT_TRUE(b.barrier());
  ASSERT_TRUE(c.barrier());
  const auto snapshot = b.drain();
  ASSERT_EQ(snapshot.size(), 1u);
  const auto update = mesh_update(snapshot[0]);
  EXPECT_EQ(update.source, a.id());
  EXPECT_EQ(update.status.connected_to, (std::vector<p2pmesh::PeerId>{5}));
  EXPECT_EQ(update.status.id, 1u);
  EXPECT_TRUE(c.drain().empty());  // g3's record was over the bound
}

}  // namespace
}  // namespace meshd::test
