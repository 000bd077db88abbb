// meshd access rules (on by default) and --open (generic pub/sub).

#include <gtest/gtest.h>

#include "support.hpp"

namespace meshd::test {
namespace {

namespace wire = p2pmesh::wire;

TEST(Access, SubscribeOnlyToGroupMeshAndOwnTopics) {
  TestServer server;
  auto victim = join(server.port(), "g");
  auto spy = join(server.port(), "g");
  auto sender = join(server.port(), "g");
  ASSERT_TRUE(victim && spy && sender);
  const double forbidden_before = drops(server.port(), "forbidden");
  spy->subscribe(topic("g", victim->id(), "offer"));  // someone else's topic
  ASSERT_TRUE(spy->barrier());
  EXPECT_EQ(drops(server.port(), "forbidden"), forbidden_before + 1);

  sender->publish({topic("g", victim->id(), "offer")}, R"({"type":"offer","sdp":"v"})");
  sender->publish({topic("g", spy->id(), "offer")}, R"({"type":"offer","sdp":"s"})");
  const auto to_victim = victim->next();
  ASSERT_TRUE(to_victim);
  EXPECT_EQ(to_victim->topic, topic("g", victim->id(), "offer"));
  EXPECT_EQ(to_victim->sender, sender->id());
  const auto to_spy = spy->next();  // its own offer only, not the victim's
  ASSERT_TRUE(to_spy);
  EXPECT_EQ(to_spy->topic, topic("g", spy->id(), "offer"));
}

TEST(Access, TopicAndGroupNamesAreChecked) {
  Config config = test_config();
  config.max_strikes = 100;  // this test is deliberately wrong many times
  TestServer server(config);
  WsClient client;
  ASSERT_TRUE(client.connect(server.port()));
  const std::string id = std::to_string(client.id());
  const std::vector<std::string> bad = {
      "plain",
      "bad group.mesh",
      "g/x.mesh",
      std::string(65, 'a') + ".mesh",
      ".mesh",
      "g.mesh.extra",
      "g.0.offer",
      "g.0" + id + ".offer",
      "g." + id + ".video",
      "g." + id,
      "g.99999999999.offer",
      std::string(200, 'x'),
  };
  const double before = drops(server.port(), "bad_topic");
  for (const auto& name : bad) client.subscribe(name);
  ASSERT_TRUE(client.barrier());
  EXPECT_EQ(drops(server.port(), "bad_topic"), before + static_cast<double>(bad.size()));
  // Valid names are accepted: 64 characters of the safe set.
  const std::string group = std::string(62, 'a') + "_-";
  client.subscribe(group + ".mesh");
  client.subscribe(group + "." + id + ".fallback");
  ASSERT_TRUE(client.barrier());
  EXPECT_EQ(drops(server.port(), "bad_topic"), before + static_cast<double>(bad.size()));
  EXPECT_EQ(metric(server.port(), "meshd_groups"), 1);
}

TEST(Access, MeshUpdatesOnlyAboutOneself) {
  TestServer server;
  auto a = join(server.port(), "g");
  auto b = join(server.port(), "g");
  ASSERT_TRUE(a && b);
  const double forbidden = drops(server.port(), "forbidden");
  const double bad_update = drops(server.port(), "bad_mesh_update");
  a->publish({"g.mesh"}, status_update(b->id(), {}, 9));  // pretends to be b
  a->publish({"g.mesh"}, "\xff\xff not a MeshUpdateMessage");
  a->publish({"g.mesh"}, status_update(a->id(), {b->id()}, 1));
  const auto first = b->next();
  ASSERT_TRUE(first);
  EXPECT_EQ(mesh_update(*first).source, a->id());
  EXPECT_EQ(drops(server.port(), "forbidden"), forbidden + 1);
  EXPECT_EQ(drops(server.port(), "bad_mesh_update"), bad_update + 1);
}

TEST(Access, PublishOnlyToOtherPeersChannels) {
  TestServer server;
  auto a = join(server.port(), "g");
  auto b = join(server.port(), "g");
  ASSERT_TRUE(a && b);
  const double forbidden = drops(server.port(), "forbidden");
  const double bad_topic = drops(server.port(), "bad_topic");
  a->publish({topic("g", a->id(), "answer")}, "to myself");  // own channel: refused
  a->publish({"anything"}, "not a WIRE.md topic");
  for (const char* channel : {"offer", "answer", "candidate", "fallback"})
    b->publish({topic("g", a->id(), channel)}, channel);
  ASSERT_TRUE(b->barrier());
  for (const char* channel : {"offer", "answer", "candidate", "fallback"}) {
    const auto message = a->next();
    ASSERT_TRUE(message);
    EXPECT_EQ(message->topic, topic("g", a->id(), channel));
    EXPECT_EQ(message->body, channel);
    EXPECT_EQ(message->sender, b->id());
  }
  EXPECT_EQ(drops(server.port(), "forbidden"), forbidden + 1);
  EXPECT_EQ(drops(server.port(), "bad_topic"), bad_topic + 1);
}

TEST(Access, OpenModeIsGenericPubSub) {
  Config config = test_config();
  config.access_rules = false;
  TestServer server(config);
  WsClient a, b;
  ASSERT_TRUE(a.connect(server.port()));
  ASSERT_TRUE(b.connect(server.port()));
  a.subscribe("any topic / at all");
  a.subscribe(topic("g", b.id(), "offer"));
  ASSERT_TRUE(a.barrier());
  b.publish({"any topic / at all"}, "1");
  b.publish({topic("g", b.id(), "offer")}, "2");
  const auto first = a.next();
  const auto second = a.next();
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->body, "1");
  EXPECT_EQ(second->body, "2");
  // The topic length limit still applies.
  const double before = drops(server.port(), "bad_topic");
  a.subscribe(std::string(config.max_topic_bytes + 1, 't'));
  ASSERT_TRUE(a.barrier());
  EXPECT_EQ(drops(server.port(), "bad_topic"), before + 1);
}

}  // namespace
}  // namespace meshd::test
