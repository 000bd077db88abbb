// meshd as a cluster over NATS (docs/cluster.md), with real processes on
// loopback: two nats-server processes routed to each other and three meshd
// nodes (A and B on the first NATS server, C on the second). Plus the
// subject mapping and the envelope, in-process.

#include <arpa/inet.h>
#include <signal.h>
#include <gtest/gtest.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cluster.hpp"
#include "support.hpp"

#ifndef MESHD_BINARY
#error "MESHD_BINARY must name the meshd program"
#endif
#ifndef NATS_SERVER_BINARY
#error "NATS_SERVER_BINARY must name nats-server (or its NOTFOUND value)"
#endif

namespace meshd::test {
namespace {

namespace wire = p2pmesh::wire;
using Clock = std::chrono::steady_clock;

// --- in-process: subjects and envelopes -------------------------------------

TEST(ClusterSubject, KeepsPlainTopicsReadableAndEscapesTheRest) {
  EXPECT_EQ(topic_subject("room1.mesh"), "p2pmesh.t.room1.mesh");
  EXPECT_EQ(topic_subject("g.16777217.offer"), "p2pmesh.t.g.16777217.offer");
  EXPECT_EQ(topic_subject("a b.*.>"), "p2pmesh.t.a%20b.%2A.%3E");
  EXPECT_EQ(topic_subject(".a..b."), "p2pmesh.t.%2Ea%2E%2Eb%2E");
  EXPECT_EQ(topic_subject("100%"), "p2pmesh.t.100%25");
  EXPECT_EQ(topic_subject("\t\xC3\xA9"), "p2pmesh.t.%09%C3%A9");
  // Injective: the escape character is escaped too.
  EXPECT_NE(topic_subject("a.b"), topic_subject("a%2Eb"));
  EXPECT_EQ(node_subject(7), "p2pmesh.n.7");
}

TEST(ClusterEnvelope, RoundTripsAndRefusesGarbage) {
  Envelope in;
  in.kind = Envelope::Kind::publish;
  in.node = 200;
  in.member = true;
  in.sender = 0xC8000001;
  in.incarnation = 0x0123456789ABCDEFull;
  in.topic = "g.mesh";
  in.body = std::string("\0\x01body", 6);
  Envelope out;
  ASSERT_TRUE(decode_envelope(encode_envelope(in), out));
  EXPECT_EQ(out.kind, in.kind);
  EXPECT_EQ(out.node, in.node);
  EXPECT_EQ(out.member, in.member);
  EXPECT_EQ(out.sender, in.sender);
  EXPECT_EQ(out.incarnation, in.incarnation);
  EXPECT_EQ(out.topic, in.topic);
  EXPECT_EQ(out.body, in.body);
  EXPECT_FALSE(decode_envelope("", out));
  EXPECT_FALSE(decode_envelope("hello, this is not an envelope", out));
  std::string bad_kind = encode_envelope(in);
  bad_kind[1] = 9;
  EXPECT_FALSE(decode_envelope(bad_kind, out));
  std::string short_topic = encode_envelope(in).substr(0, 19);
  EXPECT_FALSE(decode_envelope(short_topic, out));
}

// --- real processes -----------------------------------------------------------

// A loopback port nobody listens on. The sockets of one process stay bound
// until kPorts are picked, so the ports of one test are distinct.
// A meshd node of the cluster on loopback (generic pub/sub, no pages).
std::unique_ptr<MeshdProgram> start_node(const std::string& nats_urls, unsigned node_id,
                                         const char* log_level = "warn") {
  return std::make_unique<MeshdProgram>(
      MESHD_BINARY,
      std::vector<std::string>{"--host", "127.0.0.1", "--port", "0", "--web-root", "", "--open",
                               "--log-level", log_level, "--nats", nats_urls, "--node-id",
                               std::to_string(node_id)});
}

std::uint16_t free_port() {
  static constexpr std::size_t kPorts = 16;
  static std::vector<std::uint16_t> pool;
  if (pool.empty()) {
    std::vector<int> fds;
    for (std::size_t i = 0; i < kPorts; ++i) {
      const int fd = socket(AF_INET, SOCK_STREAM, 0);
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      addr.sin_port = 0;
      socklen_t len = sizeof addr;
      if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
          getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
        pool.push_back(ntohs(addr.sin_port));
      fds.push_back(fd);
    }
    for (const int fd : fds) close(fd);
  }
  const std::uint16_t port = pool.back();
  pool.pop_back();
  return port;
}

struct NatsServer {
  std::uint16_t port = free_port();
  std::uint16_t cluster_port = free_port();
  std::uint16_t monitor_port = free_port();
  std::unique_ptr<MeshdProgram> process;
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port); }
  // advertise = false: clients learn no other server of the cluster (no
  // automatic fail-over), for a real outage.
  void start(std::uint16_t route_to, bool advertise = true) {
    std::vector<std::string> args{"-a", "127.0.0.1", "-p", std::to_string(port), "-m",
                                  std::to_string(monitor_port), "--cluster_name", "meshtest",
                                  "--cluster", "nats://127.0.0.1:" + std::to_string(cluster_port),
                                  "--routes", "nats://127.0.0.1:" + std::to_string(route_to)};
    if (!advertise) args.push_back("--no_advertise");
    process = std::make_unique<MeshdProgram>(NATS_SERVER_BINARY, std::move(args),
                                             /*capture_stderr=*/true);
  }
  bool routed() const {
    const auto result = http_get(monitor_port, "/routez");
    return result.status == 200 && result.body.find("\"num_routes\": 1") != std::string::npos;
  }
};

struct Node {
  unsigned id = 0;
  std::unique_ptr<MeshdProgram> process;
  std::uint16_t port = 0;
};

template <class Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return predicate();
}

class Cluster3 : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (access(NATS_SERVER_BINARY, X_OK) != 0) {
      setup_error_ = std::string("nats-server not found (") + NATS_SERVER_BINARY +
                     "): install it with tools/deps.sh (Debian package nats-server)";
      return;
    }
    nats_[0].start(nats_[1].cluster_port);
    nats_[1].start(nats_[0].cluster_port);
    if (!eventually([] { return nats_[0].routed() && nats_[1].routed(); }, 10s)) {
      setup_error_ = "the two nats-server processes did not route to each other within 10 s";
      return;
    }
    const std::uint16_t nats_of[3] = {0, 0, 1};  // A and B on the first, C on the second
    for (unsigned i = 0; i < 3; ++i) {
      nodes_[i].id = i + 1;
      nodes_[i].process = start_node(nats_[nats_of[i]].url(), nodes_[i].id);
      nodes_[i].port = port_from(nodes_[i].process->first_line());
      if (nodes_[i].port == 0) {
        setup_error_ = "meshd node " + std::to_string(i + 1) + " did not start";
        return;
      }
    }
    // Every node has heard the two others (heartbeats over the route).
    for (auto& node : nodes_)
      if (!wait_metric(node.port, "meshd_cluster_nodes", 3, 10s)) {
        setup_error_ = "node " + std::to_string(node.id) + " did not hear the others in 10 s";
        return;
      }
  }
  static void TearDownTestSuite() {
    for (auto& node : nodes_) node.process.reset();
    for (auto& server : nats_) server.process.reset();
  }
  void SetUp() override { ASSERT_TRUE(setup_error_.empty()) << setup_error_; }

  static std::uint16_t port(int node) { return nodes_[node].port; }

  static inline NatsServer nats_[2];
  static inline Node nodes_[3];
  static inline std::string setup_error_;
};

std::unique_ptr<WsClient> connect(std::uint16_t port) {
  auto client = std::make_unique<WsClient>();
  if (!client->connect(port)) return nullptr;
  return client;
}

// Publishes probes from `publisher` on `topic` until every subscriber got
// one (NATS spreads interest across the route asynchronously), then reads
// everything still in flight so the clients start clean.
bool warm_up(WsClient& publisher, const std::string& topic,
             const std::vector<WsClient*>& subscribers) {
  std::vector<bool> got(subscribers.size(), false);
  const auto deadline = Clock::now() + 10s;
  while (Clock::now() < deadline) {
    publisher.publish({topic}, "probe");
    for (std::size_t i = 0; i < subscribers.size(); ++i)
      while (!got[i]) {
        const auto message = subscribers[i]->next(std::chrono::milliseconds(50));
        if (!message) break;
        if (message->topic == topic && message->body == "probe") got[i] = true;
      }
    if (std::all_of(got.begin(), got.end(), [](bool b) { return b; })) {
      std::this_thread::sleep_for(200ms);  // the last probes land
      publisher.barrier();
      for (WsClient* subscriber : subscribers) {
        subscriber->barrier();
        subscriber->drain();
      }
      return true;
    }
  }
  return false;
}

// Counts the messages with `body` on `topic`: waits up to 3 s for the
// first, then 300 ms more for duplicates.
int count_arrivals(WsClient& client, const std::string& topic, const std::string& body) {
  int count = 0;
  auto deadline = Clock::now() + 3s;
  while (Clock::now() < deadline) {
    const auto message = client.next(std::chrono::milliseconds(20));
    if (message && message->topic == topic && message->body == body && count++ == 0)
      deadline = Clock::now() + 300ms;
  }
  return count;
}

TEST_F(Cluster3, PeerIdsAreUniqueAcrossNodesAndCarryTheNode) {
  std::set<p2pmesh::PeerId> ids;
  std::vector<std::unique_ptr<WsClient>> clients;
  for (int node = 0; node < 3; ++node)
    for (int i = 0; i < 5; ++i) {
      auto client = connect(port(node));
      ASSERT_TRUE(client);
      EXPECT_NE(client->id(), p2pmesh::kNoPeer);
      EXPECT_EQ(node_of(client->id()), nodes_[node].id) << client->id();
      ids.insert(client->id());
      clients.push_back(std::move(client));
    }
  EXPECT_EQ(ids.size(), 15u);
  EXPECT_NE(http_get(port(1), "/healthz").body.find("cluster: node 2, nats connected"),
            std::string::npos);
}

TEST_F(Cluster3, PublicationReachesEveryNodeExactlyOnce) {
  const std::string topic = "room.chat";
  auto publisher = connect(port(0));
  auto same_node = connect(port(0));
  auto on_b = connect(port(1));
  auto on_c = connect(port(2));
  ASSERT_TRUE(publisher && same_node && on_b && on_c);
  for (WsClient* client : {publisher.get(), same_node.get(), on_b.get(), on_c.get()})
    client->subscribe(topic);
  ASSERT_TRUE(warm_up(*publisher, topic, {publisher.get(), same_node.get(), on_b.get(),
                                          on_c.get()}));
  for (int i = 0; i < 20; ++i) publisher->publish({topic}, "hello " + std::to_string(i));
  // Every client gets the 20 (in order), then nothing more.
  for (WsClient* client : {publisher.get(), same_node.get(), on_b.get(), on_c.get()}) {
    std::vector<std::string> bodies;
    auto deadline = Clock::now() + 3s;
    while (Clock::now() < deadline) {
      const auto message = client->next(std::chrono::milliseconds(20));
      if (!message || message->topic != topic) continue;
      EXPECT_EQ(message->sender, publisher->id());
      bodies.push_back(message->body);
      if (bodies.size() == 20) deadline = Clock::now() + 300ms;  // duplicates?
    }
    ASSERT_EQ(bodies.size(), 20u) << "client " << client->id();
    for (int i = 0; i < 20; ++i) EXPECT_EQ(bodies[i], "hello " + std::to_string(i));
  }
}

TEST_F(Cluster3, TopicsWithCharactersNatsForbidsStillWork) {
  auto publisher = connect(port(2));
  auto on_a = connect(port(0));
  auto plain = connect(port(0));
  ASSERT_TRUE(publisher && on_a && plain);
  for (const std::string topic : {"a b.*.>", "..x", "100%", "tab\there"}) {
    on_a->subscribe(topic);
    ASSERT_TRUE(warm_up(*publisher, topic, {on_a.get()})) << topic;
    publisher->publish({topic}, "payload");
    EXPECT_EQ(count_arrivals(*on_a, topic, "payload"), 1) << topic;
  }
  // The escape stays injective: "a%2Eb" is not "a.b".
  plain->subscribe("a.b");
  ASSERT_TRUE(warm_up(*publisher, "a.b", {plain.get()}));
  publisher->publish({"a%2Eb"}, "other");
  publisher->publish({"a.b"}, "mine");
  EXPECT_EQ(count_arrivals(*plain, "a.b", "mine"), 1);
  plain->barrier();
  for (const auto& message : plain->drain()) EXPECT_NE(message.body, "other");
}

TEST_F(Cluster3, SnapshotHoldsMembersOfEveryNodeAndCleanClosesReachOtherNodes) {
  const std::string group = "spread";
  const std::string mesh = group + ".mesh";
  auto on_b = connect(port(1));
  auto on_c = connect(port(2));
  ASSERT_TRUE(on_b && on_c);
  on_b->subscribe(mesh);
  on_c->subscribe(mesh);
  // Each publishes its status until the other has it (interest across the route).
  bool b_sees_c = false;
  bool c_sees_b = false;
  std::uint32_t status_id = 0;
  const auto deadline = Clock::now() + 10s;
  while (!(b_sees_c && c_sees_b) && Clock::now() < deadline) {
    ++status_id;
    on_b->publish({mesh}, status_update(on_b->id(), {on_c->id()}, status_id));
    on_c->publish({mesh}, status_update(on_c->id(), {on_b->id()}, status_id));
    for (int i = 0; i < 5; ++i) {
      if (auto m = on_b->next(20ms); m && m->sender == on_c->id()) b_sees_c = true;
      if (auto m = on_c->next(20ms); m && m->sender == on_b->id()) c_sees_b = true;
    }
  }
  ASSERT_TRUE(b_sees_c && c_sees_b);

  // A newcomer on A (a node without the group so far) gets both members.
  auto newcomer = connect(port(0));
  ASSERT_TRUE(newcomer);
  newcomer->subscribe(mesh);
  std::map<p2pmesh::PeerId, std::uint32_t> known;
  ASSERT_TRUE(eventually(
      [&] {
        while (auto message = newcomer->next(10ms)) {
          if (message->topic != mesh) continue;
          const auto update = mesh_update(*message);
          EXPECT_EQ(update.source, message->sender);
          if (update.kind == wire::MeshUpdate::Kind::status)
            known[update.source] = update.status.id;
        }
        return known.count(on_b->id()) && known.count(on_c->id());
      },
      5s));
  EXPECT_EQ(known[on_b->id()], status_id);
  EXPECT_EQ(known[on_c->id()], status_id);

  // A clean close on B: the departure notice reaches A within 1 s.
  newcomer->barrier();
  newcomer->drain();
  const auto closed_at = Clock::now();
  on_b->close();
  bool left = false;
  while (!left && Clock::now() < closed_at + 2s) {
    const auto message = newcomer->next(50ms);
    if (!message || message->topic != mesh) continue;
    const auto update = mesh_update(*message);
    if (update.source == on_b->id() && update.left) {
      left = true;
      EXPECT_EQ(message->sender, on_b->id());
      EXPECT_GT(update.status.id, status_id);
      EXPECT_TRUE(update.status.connected_to.empty());
    }
  }
  ASSERT_TRUE(left);
  EXPECT_LT(Clock::now() - closed_at, 1s);

  // A later newcomer on A: C still there, B gone (A kept B's departure).
  auto later = connect(port(0));
  ASSERT_TRUE(later);
  later->subscribe(mesh);
  ASSERT_TRUE(later->barrier());
  std::set<p2pmesh::PeerId> members;
  for (const auto& message : later->drain())
    if (message.topic == mesh) members.insert(message.sender);
  EXPECT_EQ(members, (std::set<p2pmesh::PeerId>{on_c->id()}));
}

// SIGTERM of a node: its graceful shutdown closes its clients, and their
// departure notices still reach the other nodes before it leaves NATS.
TEST_F(Cluster3, GracefulShutdownOfANodeSendsItsDepartures) {
  const std::string mesh = "closing.mesh";
  auto observer = connect(port(0));
  ASSERT_TRUE(observer);
  observer->subscribe(mesh);
  ASSERT_TRUE(observer->barrier());
  auto node_e = start_node(nats_[1].url(), 5);
  const auto port_e = port_from(node_e->first_line());
  ASSERT_NE(port_e, 0);
  auto member = connect(port_e);
  ASSERT_TRUE(member);
  member->subscribe(mesh);
  bool seen = false;
  for (std::uint32_t id = 1; !seen && id < 200; ++id) {
    member->publish({mesh}, status_update(member->id(), {}, id));
    for (int i = 0; i < 5 && !seen; ++i)
      if (auto m = observer->next(20ms); m && m->sender == member->id()) seen = true;
  }
  ASSERT_TRUE(seen);
  const auto stopped_at = Clock::now();
  node_e->signal(SIGTERM);
  std::thread answer([&] { member->wait_closed(); });  // the client answers the close frame
  bool left = false;
  while (!left && Clock::now() < stopped_at + 3s) {
    const auto message = observer->next(50ms);
    if (message && message->topic == mesh) {
      const auto update = mesh_update(*message);
      left = update.source == member->id() && update.left;
    }
  }
  answer.join();
  EXPECT_TRUE(left);
  EXPECT_LT(Clock::now() - stopped_at, 1s + 50ms);
  EXPECT_EQ(node_e->wait_exit(5s), 0);
}

TEST(ClusterOptions, NatsNeedsANodeIdAndANatsUrl) {
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"--port", "0", "--nats", "nats://127.0.0.1:4222"},
           {"--port", "0", "--nats", "http://127.0.0.1:4222", "--node-id", "1"},
           {"--port", "0", "--node-id", "256", "--nats", "nats://127.0.0.1:4222"},
           {"--port", "0", "--nats-token-file", "/nonexistent"}}) {
    MeshdProgram meshd(MESHD_BINARY, args, /*capture_stderr=*/true);
    const int code = meshd.wait_exit(5s);  // 2 from meshd, CLI11's own for a range
    EXPECT_GT(code, 0) << args[2];
    EXPECT_NE(meshd.error_output().find("--n"), std::string::npos) << meshd.error_output();
  }
}

// kill -9 of a node: every survivor tells its own subscribers that the dead
// node's members left, within 3 s (heartbeats every 0.5 s, dead after 2 s).
TEST_F(Cluster3, MembersOfAKilledNodeLeaveWithin3s) {
  const std::string mesh = "doomed.mesh";
  auto observer = connect(port(0));
  ASSERT_TRUE(observer);
  observer->subscribe(mesh);
  ASSERT_TRUE(observer->barrier());
  auto node_d = start_node(nats_[1].url(), 4);
  const auto port_d = port_from(node_d->first_line());
  ASSERT_NE(port_d, 0);
  ASSERT_TRUE(wait_metric(port(0), "meshd_cluster_nodes", 4, 10s));
  auto member = connect(port_d);
  ASSERT_TRUE(member);
  EXPECT_EQ(node_of(member->id()), 4u);
  member->subscribe(mesh);
  bool seen = false;
  for (std::uint32_t id = 1; !seen && id < 200; ++id) {
    member->publish({mesh}, status_update(member->id(), {}, id));
    for (int i = 0; i < 5 && !seen; ++i)
      if (auto m = observer->next(20ms); m && m->sender == member->id()) seen = true;
  }
  ASSERT_TRUE(seen);

  const auto killed_at = Clock::now();
  node_d.reset();  // SIGKILL
  bool left = false;
  while (!left && Clock::now() < killed_at + 5s) {
    const auto message = observer->next(50ms);
    if (!message || message->topic != mesh) continue;
    const auto update = mesh_update(*message);
    left = update.source == member->id() && update.left;
  }
  ASSERT_TRUE(left);
  EXPECT_LT(Clock::now() - killed_at, 3s);
  EXPECT_TRUE(wait_metric(port(0), "meshd_cluster_nodes", 3, 5s));
  // Exactly once: no second notice.
  observer->pump(500ms);
  observer->barrier();
  for (const auto& message : observer->drain())
    if (message.topic == mesh) {
      EXPECT_FALSE(mesh_update(message).left);
    }
}

// Bad input straight from NATS: counted drops on the receiving node, which
// keeps serving.
TEST_F(Cluster3, BadNatsMessagesAreCountedDrops) {
  const std::string topic = "bad.input";
  auto on_a = connect(port(0));
  auto probe = connect(port(1));
  ASSERT_TRUE(on_a && probe);
  on_a->subscribe(topic);
  ASSERT_TRUE(warm_up(*probe, topic, {on_a.get()}));

  natsConnection* nc = nullptr;
  ASSERT_EQ(natsConnection_ConnectTo(&nc, nats_[1].url().c_str()), NATS_OK);
  const std::string subject = topic_subject(topic);
  const auto undecodable = drops(port(0), "cluster_undecodable");
  const auto bad_topic = drops(port(0), "cluster_bad_topic");
  const auto too_large = drops(port(0), "cluster_too_large");
  const std::string garbage = "not an envelope at all";
  natsConnection_Publish(nc, subject.c_str(), garbage.data(), static_cast<int>(garbage.size()));
  Envelope wrong;
  wrong.node = 99;
  wrong.sender = (99u << 24) | 1;
  wrong.topic = "another.topic";  // not this subject's topic
  wrong.body = "x";
  const std::string wrong_bytes = encode_envelope(wrong);
  natsConnection_Publish(nc, subject.c_str(), wrong_bytes.data(),
                         static_cast<int>(wrong_bytes.size()));
  Envelope big = wrong;
  big.topic = topic;
  big.body.assign(64 * 1024 + 1, 'x');
  const std::string big_bytes = encode_envelope(big);
  natsConnection_Publish(nc, subject.c_str(), big_bytes.data(),
                         static_cast<int>(big_bytes.size()));
  natsConnection_Flush(nc);
  natsConnection_Destroy(nc);
  EXPECT_TRUE(wait_metric(port(0), "meshd_drops_total{reason=\"cluster_undecodable\"}",
                          undecodable + 1));
  EXPECT_TRUE(wait_metric(port(0), "meshd_drops_total{reason=\"cluster_bad_topic\"}",
                          bad_topic + 1));
  EXPECT_TRUE(wait_metric(port(0), "meshd_drops_total{reason=\"cluster_too_large\"}",
                          too_large + 1));
  // Nothing of it reached the client; the node still delivers.
  probe->publish({topic}, "after");
  EXPECT_EQ(count_arrivals(*on_a, topic, "after"), 1);
}

// kill -9 of a nats-server: the node on it moves to the other server (its
// --nats list), keeps delivering both ways, and is not declared dead.
TEST(ClusterFailover, NodeMovesToTheOtherNatsServer) {
  ASSERT_EQ(access(NATS_SERVER_BINARY, X_OK), 0)
      << "nats-server not found (" << NATS_SERVER_BINARY
      << "): install it with tools/deps.sh (Debian package nats-server)";
  NatsServer nats[2];
  nats[0].start(nats[1].cluster_port);
  nats[1].start(nats[0].cluster_port);
  ASSERT_TRUE(eventually([&] { return nats[0].routed() && nats[1].routed(); }, 10s));
  Node nodes[2];
  for (unsigned i = 0; i < 2; ++i) {
    nodes[i].id = 10 + i;
    nodes[i].process = start_node(nats[i].url() + "," + nats[1 - i].url(), nodes[i].id, "error");
    nodes[i].port = port_from(nodes[i].process->first_line());
    ASSERT_NE(nodes[i].port, 0);
  }
  for (auto& node : nodes) ASSERT_TRUE(wait_metric(node.port, "meshd_cluster_nodes", 2, 10s));
  auto on_a = connect(nodes[0].port);
  auto on_b = connect(nodes[1].port);
  ASSERT_TRUE(on_a && on_b);
  on_a->subscribe("x.y");
  on_b->subscribe("x.y");
  ASSERT_TRUE(warm_up(*on_a, "x.y", {on_b.get()}));
  ASSERT_TRUE(warm_up(*on_b, "x.y", {on_a.get()}));

  nats[1].process.reset();  // SIGKILL: node B's server
  // B reconnects to the first server; its subscriptions follow.
  EXPECT_TRUE(wait_metric(nodes[1].port, "meshd_nats_connected", 1, 10s));
  ASSERT_TRUE(warm_up(*on_a, "x.y", {on_b.get()}));
  ASSERT_TRUE(warm_up(*on_b, "x.y", {on_a.get()}));
  on_a->publish({"x.y"}, "after failover");
  EXPECT_EQ(count_arrivals(*on_b, "x.y", "after failover"), 1);
  EXPECT_NE(http_get(nodes[1].port, "/healthz").body.find("nats connected"), std::string::npos);
  // The move took less than the dead-node delay: no one was declared dead.
  EXPECT_EQ(metric(nodes[0].port, "meshd_cluster_dead_node_departures_total"), 0);
  EXPECT_EQ(metric(nodes[0].port, "meshd_cluster_nodes"), 2);
}

// Two nats-servers routed to each other that advertise nothing (a node
// whose server dies has no other: a real outage), and a node on each, with
// ids first_id and first_id + 1, that have heard each other.
void start_cut_off_pair(NatsServer (&nats)[2], Node (&nodes)[2], unsigned first_id) {
  ASSERT_EQ(access(NATS_SERVER_BINARY, X_OK), 0)
      << "nats-server not found (" << NATS_SERVER_BINARY
      << "): install it with tools/deps.sh (Debian package nats-server)";
  nats[0].start(nats[1].cluster_port, false);
  nats[1].start(nats[0].cluster_port, false);
  ASSERT_TRUE(eventually([&] { return nats[0].routed() && nats[1].routed(); }, 10s));
  for (unsigned i = 0; i < 2; ++i) {
    nodes[i].id = first_id + i;
    nodes[i].process = start_node(nats[i].url(), nodes[i].id, "error");
    nodes[i].port = port_from(nodes[i].process->first_line());
    ASSERT_NE(nodes[i].port, 0);
  }
  for (auto& node : nodes) ASSERT_TRUE(wait_metric(node.port, "meshd_cluster_nodes", 2, 10s));
}

// A node cut off from NATS keeps serving, says so on /healthz, and
// resynchronises when NATS is back: a departure it missed meanwhile reaches
// its subscribers then.
TEST(ClusterResync, DepartureMissedDuringAnOutageArrivesAfterReconnect) {
  NatsServer nats[2];
  Node nodes[2];
  ASSERT_NO_FATAL_FAILURE(start_cut_off_pair(nats, nodes, 20));
  const std::string mesh = "outage.mesh";
  auto observer = connect(nodes[1].port);
  auto member = connect(nodes[0].port);
  ASSERT_TRUE(observer && member);
  observer->subscribe(mesh);
  member->subscribe(mesh);
  bool seen = false;
  for (std::uint32_t id = 1; !seen && id < 200; ++id) {
    member->publish({mesh}, status_update(member->id(), {}, id));
    for (int i = 0; i < 5 && !seen; ++i)
      if (auto m = observer->next(20ms); m && m->sender == member->id()) seen = true;
  }
  ASSERT_TRUE(seen);

  nats[1].process.reset();  // SIGKILL: B's only NATS server
  ASSERT_TRUE(eventually(
      [&] {
        return http_get(nodes[1].port, "/healthz").body.find("nats disconnected") !=
               std::string::npos;
      },
      5s));
  EXPECT_TRUE(wait_metric(nodes[1].port, "meshd_nats_connected", 0));
  member->close();  // A publishes the notice; B cannot hear it
  std::this_thread::sleep_for(300ms);
  observer->barrier();
  for (const auto& message : observer->drain())
    EXPECT_FALSE(message.topic == mesh && mesh_update(message).left) << "heard during the outage";

  nats[1].start(nats[0].cluster_port, false);  // back on the same ports
  const auto restarted_at = Clock::now();
  bool left = false;
  while (!left && Clock::now() < restarted_at + 10s) {
    const auto message = observer->next(50ms);
    if (message && message->topic == mesh) {
      const auto update = mesh_update(*message);
      left = update.source == member->id() && update.left;
    }
  }
  EXPECT_TRUE(left);
  EXPECT_TRUE(wait_metric(nodes[1].port, "meshd_nats_connected", 1));
  // And a newcomer on B no longer gets it in the snapshot.
  auto newcomer = connect(nodes[1].port);
  ASSERT_TRUE(newcomer);
  newcomer->subscribe(mesh);
  ASSERT_TRUE(newcomer->barrier());
  for (const auto& message : newcomer->drain()) EXPECT_NE(message.sender, member->id());
}

// The other direction: a node cut off longer than the dead-node delay is
// declared dead by the others, whose subscribers hear its members leave.
// When it is back, its members are announced again (and one that joined
// during the outage for the first time) to those subscribers, so peers take
// them back without waiting for their next status.
TEST(ClusterResync, MembersDeclaredDeadDuringAnOutageAreAnnouncedAgain) {
  NatsServer nats[2];
  Node nodes[2];
  ASSERT_NO_FATAL_FAILURE(start_cut_off_pair(nats, nodes, 30));
  const std::string mesh = "cutoff.mesh";
  auto observer = connect(nodes[0].port);
  auto member = connect(nodes[1].port);
  ASSERT_TRUE(observer && member);
  observer->subscribe(mesh);
  member->subscribe(mesh);
  std::uint32_t status_id = 0;
  bool seen = false;
  while (!seen && status_id < 200) {
    member->publish({mesh}, status_update(member->id(), {}, ++status_id));
    for (int i = 0; i < 5 && !seen; ++i)
      if (auto m = observer->next(20ms); m && m->sender == member->id()) seen = true;
  }
  ASSERT_TRUE(seen);

  nats[1].process.reset();  // SIGKILL: B's only NATS server; A declares B dead
  bool left = false;
  const auto cut_at = Clock::now();
  while (!left && Clock::now() < cut_at + 5s) {
    const auto message = observer->next(50ms);
    if (message && message->topic == mesh) {
      const auto update = mesh_update(*message);
      left = update.source == member->id() && update.left;
    }
  }
  ASSERT_TRUE(left) << "A did not declare B's member gone";
  // Meanwhile a newcomer joins on B (its status reaches no other node).
  auto newcomer = connect(nodes[1].port);
  ASSERT_TRUE(newcomer);
  newcomer->subscribe(mesh);
  newcomer->publish({mesh}, status_update(newcomer->id(), {member->id()}, 1));

  nats[1].start(nats[0].cluster_port, false);  // back on the same ports
  std::map<p2pmesh::PeerId, std::uint32_t> announced;
  ASSERT_TRUE(eventually(
      [&] {
        while (auto message = observer->next(10ms)) {
          if (message->topic != mesh) continue;
          const auto update = mesh_update(*message);
          EXPECT_EQ(update.source, message->sender);
          if (update.kind == wire::MeshUpdate::Kind::status && !update.left)
            announced[update.source] = update.status.id;
        }
        return announced.count(member->id()) && announced.count(newcomer->id());
      },
      10s))
      << "B's members were not announced to A's subscriber after the outage";
  EXPECT_EQ(announced[member->id()], status_id);
  EXPECT_EQ(announced[newcomer->id()], 1u);
  // Announced once: a second resync message does not repeat them.
  std::this_thread::sleep_for(500ms);
  observer->barrier();
  for (const auto& message : observer->drain())
    EXPECT_FALSE(message.topic == mesh && message.sender == member->id()) << "announced twice";
}

// --- credentials and TLS towards NATS -------------------------------------

// One nats-server alone (no cluster) with `extra` arguments.
std::unique_ptr<MeshdProgram> start_lone_nats(std::uint16_t port, std::vector<std::string> extra) {
  std::vector<std::string> args{"-a", "127.0.0.1", "-p", std::to_string(port)};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<MeshdProgram>(NATS_SERVER_BINARY, std::move(args),
                                        /*capture_stderr=*/true);
}

bool port_open(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// A node started against `nats_url` with `extra` options: connected (its
// /healthz says so), or refused (exit 1, the reason on stderr).
struct NodeOutcome {
  bool connected = false;
  int exit_code = 0;
  std::string stderr_text;
};
NodeOutcome try_node(const std::string& nats_url, std::vector<std::string> extra) {
  std::vector<std::string> args{"--host", "127.0.0.1", "--port", "0", "--web-root", "",
                                "--log-level", "warn", "--nats", nats_url, "--node-id", "40"};
  args.insert(args.end(), extra.begin(), extra.end());
  MeshdProgram meshd(MESHD_BINARY, std::move(args), /*capture_stderr=*/true);
  NodeOutcome outcome;
  const std::uint16_t port = port_from(meshd.first_line());
  if (port == 0) {
    outcome.exit_code = meshd.wait_exit(5s);
    outcome.stderr_text = meshd.error_output();
    return outcome;
  }
  outcome.connected = eventually(
      [&] {
        return http_get(port, "/healthz").body.find("nats connected") != std::string::npos;
      },
      5s);
  return outcome;
}

TEST(ClusterCredentials, UserPasswordAndTokenFromFilesAndAClearRefusal) {
  ASSERT_EQ(access(NATS_SERVER_BINARY, X_OK), 0) << "nats-server not found: tools/deps.sh";
  TestPki files;  // a private temporary directory
  ASSERT_TRUE(files.ok());
  const std::string good = test::write_file(files.dir(), "good", "meshd:s3cret\n");
  const std::string bad = test::write_file(files.dir(), "bad", "meshd:wrong\n");
  {
    const std::uint16_t port = free_port();
    auto nats = start_lone_nats(port, {"--user", "meshd", "--pass", "s3cret"});
    ASSERT_TRUE(eventually([&] { return port_open(port); }, 10s));
    const std::string url = "nats://127.0.0.1:" + std::to_string(port);
    EXPECT_TRUE(try_node(url, {"--nats-user-file", good}).connected);
    const NodeOutcome refused = try_node(url, {"--nats-user-file", bad});
    EXPECT_FALSE(refused.connected);
    EXPECT_EQ(refused.exit_code, 1);
    EXPECT_NE(refused.stderr_text.find("Authorization Violation"), std::string::npos)
        << refused.stderr_text;
    EXPECT_EQ(try_node(url, {}).exit_code, 1) << "no credentials: refused too";
  }
  {
    const std::uint16_t port = free_port();
    auto nats = start_lone_nats(port, {"--auth", "t0ken"});
    ASSERT_TRUE(eventually([&] { return port_open(port); }, 10s));
    const std::string url = "nats://127.0.0.1:" + std::to_string(port);
    EXPECT_TRUE(
        try_node(url, {"--nats-token-file", test::write_file(files.dir(), "token", "t0ken\n")}).connected);
    EXPECT_EQ(try_node(url, {"--nats-token-file", bad}).exit_code, 1);
  }
}

// A NATS server that accepts but does not finish the handshake in time (a
// loaded machine, a server still starting) is an outage, not a refusal: the
// node starts, says it is disconnected, and keeps trying.
TEST(ClusterCredentials, ASilentNatsServerIsAnOutageNotAFatalError) {
  const int silent = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(silent, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(silent, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(listen(silent, 16), 0);  // connections complete in the backlog; nobody answers
  socklen_t length = sizeof addr;
  ASSERT_EQ(getsockname(silent, reinterpret_cast<sockaddr*>(&addr), &length), 0);
  const std::string url = "nats://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  MeshdProgram meshd(MESHD_BINARY,
                     {"--host", "127.0.0.1", "--port", "0", "--web-root", "", "--log-level", "warn",
                      "--nats", url, "--node-id", "41"},
                     /*capture_stderr=*/true);
  const std::uint16_t port = port_from(meshd.first_line());
  ASSERT_NE(port, 0) << "the node did not start: " << meshd.error_output();
  EXPECT_NE(http_get(port, "/healthz").body.find("nats disconnected"), std::string::npos);
  close(silent);
}

// tls:// verifies the NATS server's certificate: against --nats-ca-file (a
// private CA), else the system's CAs, which do not know the test CA.
TEST(ClusterCredentials, TlsToNatsVerifiesTheServerCertificate) {
  ASSERT_EQ(access(NATS_SERVER_BINARY, X_OK), 0) << "nats-server not found: tools/deps.sh";
  TestPki pki;
  ASSERT_TRUE(pki.ok());
  const std::uint16_t port = free_port();
  auto nats = start_lone_nats(port, {"--tls", "--tlscert", pki.cert(), "--tlskey", pki.key()});
  ASSERT_TRUE(eventually([&] { return port_open(port); }, 10s));
  const std::string url = "tls://127.0.0.1:" + std::to_string(port);
  EXPECT_TRUE(try_node(url, {"--nats-ca-file", pki.ca()}).connected);
  EXPECT_TRUE(try_node("tls://localhost:" + std::to_string(port), {"--nats-ca-file", pki.ca()})
                  .connected);
  const NodeOutcome untrusted = try_node(url, {});
  EXPECT_FALSE(untrusted.connected);
  EXPECT_EQ(untrusted.exit_code, 1);
  EXPECT_NE(untrusted.stderr_text.find("SSL"), std::string::npos) << untrusted.stderr_text;
  // --nats-ca-file without a tls:// URL is a mistake worth a clear word.
  const NodeOutcome misused = try_node("nats://127.0.0.1:" + std::to_string(port),
                                       {"--nats-ca-file", pki.ca()});
  EXPECT_EQ(misused.exit_code, 2);
  EXPECT_NE(misused.stderr_text.find("--nats-ca-file"), std::string::npos);
}

}  // namespace
}  // namespace meshd::test
