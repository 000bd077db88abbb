// meshd limits and bad input: frame size, topics per publish, subscriptions,
// rate, slow consumer, max connections, idle timeout, text/undecodable
// frames and the close after repeated abuse.

#include <gtest/gtest.h>

#include "support.hpp"

namespace meshd::test {
namespace {

Config open_config() {
  Config config = test_config();
  config.access_rules = false;
  return config;
}

TEST(Limits, FrameAboveMaxIsClosedWith1009) {
  Config config = open_config();
  config.max_frame_bytes = 1024;
  TestServer server(config);
  WsClient client;
  ASSERT_TRUE(client.connect(server.port()));
  client.publish({"t"}, std::string(900, 'x'));  // fits
  ASSERT_TRUE(client.barrier());
  client.publish({"t"}, std::string(2000, 'x'));
  const auto info = client.wait_closed();
  EXPECT_TRUE(info.closed);
  EXPECT_EQ(info.code, 1009);
  EXPECT_EQ(drops(server.port(), "too_large"), 1);
}

TEST(Limits, TopicsPerPublish) {
  Config config = open_config();
  config.max_topics_per_publish = 2;
  TestServer server(config);
  WsClient client;
  ASSERT_TRUE(client.connect(server.port()));
  client.subscribe("a");
  client.publish({"a", "b", "c"}, "too many");
  client.publish({"a", "b"}, "ok");
  const auto message = client.next();
  ASSERT_TRUE(message);
  EXPECT_EQ(message->body, "ok");
  EXPECT_EQ(drops(server.port(), "too_many_topics"), 1);
}

TEST(Limits, SubscriptionsPerConnection) {
  Config config = open_config();
  config.max_subscriptions = 2;
  TestServer server(config);
  WsClient client;
  ASSERT_TRUE(client.connect(server.port()));
  client.subscribe("a");
  client.subscribe("a");  // a duplicate is not a second subscription
  client.subscribe("b");
  client.subscribe("c");  // over the limit
  client.publish({"c", "b"}, "x");
  const auto message = client.next();
  ASSERT_TRUE(message);
  EXPECT_EQ(message->topic, "b");
  EXPECT_EQ(drops(server.port(), "too_many_subscriptions"), 1);
  // Unsubscribing makes room again.
  client.unsubscribe("a");
  client.subscribe("c");
  client.publish({"c"}, "y");
  const auto again = client.next();
  ASSERT_TRUE(again);
  EXPECT_EQ(again->topic, "c");
}

TEST(Limits, BurstOverTheRateIsDelayedNotDropped) {
  Config config = open_config();
  config.rate_per_second = 40;
  config.rate_burst = 5;
  TestServer server(config);
  WsClient client;
  ASSERT_TRUE(client.connect(server.port()));
  client.subscribe("t");  // one token
  const auto start = std::chrono::steady_clock::now();
  constexpr int kCount = 30;
  for (int i = 0; i < kCount; ++i) client.publish({"t"}, std::to_string(i));
  // Every publication arrives, in order: the excess waits for its tokens.
  for (int i = 0; i < kCount; ++i) {
    const auto message = client.next();
    ASSERT_TRUE(message) << "publication " << i;
    EXPECT_EQ(message->body, std::to_string(i));
  }
  // 31 messages, 5 in the bucket, 40 per second: at least 0.65 s.
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(600));
  EXPECT_EQ(drops(server.port(), "rate_limited"), 0);
  // Within the rate again: served at once, still open.
  client.pump(std::chrono::milliseconds(300));
  client.publish({"t"}, "later");
  const auto later = client.next();
  ASSERT_TRUE(later);
  EXPECT_EQ(later->body, "later");
}

TEST(Limits, SustainedExcessIsClosedWith1008AndAReason) {
  Config config = open_config();
  config.rate_per_second = 50;
  config.rate_burst = 5;
  config.max_rate_delay = std::chrono::milliseconds(300);
  TestServer server(config);
  WsClient flooder, other;
  ASSERT_TRUE(flooder.connect(server.port()));
  ASSERT_TRUE(other.connect(server.port()));
  other.subscribe("t");
  ASSERT_TRUE(other.barrier());
  // 200 messages at once would need 4 s at 50/s: more than 0.3 s held back.
  for (int i = 0; i < 200; ++i) flooder.publish({"t"}, std::to_string(i));
  const auto info = flooder.wait_closed();
  EXPECT_TRUE(info.closed);
  EXPECT_EQ(info.code, 1008);
  EXPECT_EQ(info.reason, "rate limit exceeded");
  EXPECT_EQ(drops(server.port(), "rate_limited"), 1);
  // What passed before the close was delivered, in order, without a gap.
  ASSERT_TRUE(other.barrier());
  const auto received = other.drain();
  EXPECT_GE(received.size(), 5u);
  EXPECT_LT(received.size(), 200u);
  for (std::size_t i = 0; i < received.size(); ++i)
    EXPECT_EQ(received[i].body, std::to_string(i));
  // Other connections are unaffected.
  other.publish({"t"}, "still here");
  const auto echo = other.next();
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->body, "still here");
}

TEST(Limits, ClosedLoopClientAboveTheRateIsClosed) {
  // Like a load generator: a few messages in flight, the next one sent when
  // an echo comes back; held back all along, so one run of excess.
  Config config = open_config();
  config.rate_per_second = 100;
  config.rate_burst = 5;
  config.max_rate_delay = std::chrono::milliseconds(500);
  TestServer server(config);
  WsClient client;
  ASSERT_TRUE(client.connect(server.port()));
  client.subscribe("t");
  int sent = 0;
  for (; sent < 4; ++sent) client.publish({"t"}, std::to_string(sent));
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(4);
  while (std::chrono::steady_clock::now() < deadline) {
    const auto echo = client.next(std::chrono::milliseconds(500));
    if (!echo) break;  // closed
    client.publish({"t"}, std::to_string(sent++));
  }
  const auto info = client.wait_closed();
  EXPECT_TRUE(info.closed);
  EXPECT_EQ(info.code, 1008);
  EXPECT_EQ(info.reason, "rate limit exceeded");
  EXPECT_LT(sent, 4 + 100);  // closed after ~0.5 s of 100/s, not at the end
}

TEST(Limits, BurstsWithPausesAreDelayedNotClosed) {
  Config config = open_config();
  config.rate_per_second = 50;
  config.rate_burst = 5;
  config.max_rate_delay = std::chrono::milliseconds(600);
  TestServer server(config);
  WsClient client;
  ASSERT_TRUE(client.connect(server.port()));
  client.subscribe("t");
  // Two bursts, each held ~0.4 s, 1.5 s apart: 0.8 s held in all, but not
  // in one run.
  int next = 0;
  for (int burst = 0; burst < 2; ++burst) {
    for (int i = 0; i < 25; ++i) client.publish({"t"}, std::to_string(next + i));
    for (int i = 0; i < 25; ++i) {
      const auto message = client.next();
      ASSERT_TRUE(message) << "burst " << burst << " message " << i;
      EXPECT_EQ(message->body, std::to_string(next + i));
    }
    next += 25;
    client.pump(std::chrono::milliseconds(1500));
  }
  EXPECT_EQ(drops(server.port(), "rate_limited"), 0);
}

TEST(Limits, ShutdownWhileAConnectionIsHeldForItsRate) {
  Config config = open_config();
  config.rate_per_second = 10;
  config.rate_burst = 2;
  TestServer server(config);
  WsClient client;
  ASSERT_TRUE(client.connect(server.port()));
  client.subscribe("t");
  for (int i = 0; i < 30; ++i) client.publish({"t"}, std::to_string(i));  // 3 s at 10/s
  const auto first = client.next();
  ASSERT_TRUE(first);
  EXPECT_EQ(first->body, "0");  // the rest is held back
  server.request_stop();
  const auto info = client.wait_closed();
  EXPECT_TRUE(info.closed);
  EXPECT_EQ(info.code, 1001);
  EXPECT_TRUE(server.stop());
}

TEST(Limits, SlowConsumerIsDisconnectedAndCounted) {
  Config config = open_config();
  config.max_outbound_bytes = 64 * 1024;
  config.rate_per_second = 0;
  TestServer server(config);
  WsClient slow, publisher;
  ASSERT_TRUE(slow.connect(server.port(), true, 4096));
  ASSERT_TRUE(publisher.connect(server.port()));
  slow.subscribe("t");
  ASSERT_TRUE(slow.barrier());
  // `slow` stops reading (its event loop is not run); kernel buffers fill up,
  // then meshd's bounded queue.
  const std::string payload(16 * 1024, 'p');
  bool counted = false;
  for (int round = 0; round < 200 && !counted; ++round) {
    for (int i = 0; i < 20; ++i) publisher.publish({"t"}, payload);
    ASSERT_TRUE(publisher.barrier());
    counted = drops(server.port(), "slow_consumer") >= 1;
  }
  ASSERT_TRUE(counted);
  // The publisher is unaffected; the slow one is closed (1008) once it reads.
  publisher.subscribe("t");
  publisher.publish({"t"}, "still here");
  const auto echo = publisher.next();
  ASSERT_TRUE(echo);
  EXPECT_EQ(echo->body, "still here");
  const auto info = slow.wait_closed(std::chrono::seconds(20));
  EXPECT_TRUE(info.closed);
  if (info.code != -1) {
    EXPECT_EQ(info.code, 1008);
    EXPECT_EQ(info.reason, "slow consumer");
  }
}

TEST(Limits, MaxConnections) {
  Config config = open_config();
  config.max_connections = 2;
  TestServer server(config);
  WsClient a, b, c;
  ASSERT_TRUE(a.connect(server.port()));
  ASSERT_TRUE(b.connect(server.port()));
  EXPECT_FALSE(c.connect(server.port()));
  EXPECT_NE(c.error().find("503"), std::string::npos) << c.error();
  EXPECT_EQ(drops(server.port(), "max_connections"), 1);
  // A slot frees when a connection ends.
  a.close();
  ASSERT_TRUE(wait_metric(server.port(), "meshd_connections", 1));
  WsClient d;
  EXPECT_TRUE(d.connect(server.port())) << d.error();
}

TEST(Limits, IdleConnectionIsPingedAndClosed) {
  Config config = open_config();
  config.idle_timeout = std::chrono::milliseconds(400);
  TestServer server(config);
  WsClient silent, alive;
  ASSERT_TRUE(silent.connect(server.port()));
  ASSERT_TRUE(alive.connect(server.port()));
  // `alive` runs its event loop, so Beast answers the server's pings.
  alive.pump(std::chrono::milliseconds(1500));
  ASSERT_TRUE(alive.barrier());
  // `silent` did not run its loop: no pong, so meshd closed it.
  EXPECT_TRUE(wait_metric(server.port(), "meshd_connections", 1));
  const auto info = silent.wait_closed();
  EXPECT_TRUE(info.closed);
}

TEST(BadInput, TextUndecodableAndUnknownFramesAreCountedDrops) {
  Config config = open_config();
  TestServer server(config);
  WsClient client;
  ASSERT_TRUE(client.connect(server.port()));
  client.subscribe("t");
  client.send_text("hello");
  client.send_binary("\xff\xff\xff\xff");
  client.send_binary(std::string("\x4a\x00", 2));  // field 9: no known member
  client.send_binary("");
  client.publish({"t"}, "after");
  const auto message = client.next();
  ASSERT_TRUE(message);
  EXPECT_EQ(message->body, "after");  // the connection survived
  EXPECT_EQ(drops(server.port(), "text_frame"), 1);
  EXPECT_EQ(drops(server.port(), "undecodable"), 1);
  EXPECT_EQ(drops(server.port(), "unknown_kind"), 2);
}

TEST(BadInput, RepeatedAbuseIsClosedWithPolicyViolation) {
  Config config = test_config();
  config.max_strikes = 3;
  TestServer server(config);
  WsClient client;
  ASSERT_TRUE(client.connect(server.port()));
  client.send_text("1");
  client.send_binary("\xff");
  client.subscribe("not a topic");
  const auto info = client.wait_closed();
  EXPECT_TRUE(info.closed);
  EXPECT_EQ(info.code, 1008);
  EXPECT_EQ(info.reason, "too many invalid messages");
  EXPECT_EQ(drops(server.port(), "abuse"), 1);
  // The server is fine.
  WsClient next;
  EXPECT_TRUE(next.connect(server.port()));
}

TEST(BadInput, GarbageInsteadOfAHandshake) {
  Config config = test_config();
  config.handshake_timeout = std::chrono::milliseconds(500);
  TestServer server(config);
  const auto tls = raw_exchange(server.port(), "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03");
  EXPECT_EQ(tls.find("101"), std::string::npos);
  const auto bad_upgrade = raw_exchange(
      server.port(), "GET /service HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\n\r\n");  // no Sec-WebSocket-Key
  EXPECT_EQ(bad_upgrade.find("101 Switching"), std::string::npos);
  WsClient client;
  EXPECT_TRUE(client.connect(server.port()));
  EXPECT_EQ(http_get(server.port(), "/healthz").status, 200);
}

}  // namespace
}  // namespace meshd::test
