// The real programs: meshd + mesh-peer processes on 127.0.0.1, driven through
// stdin/stdout exactly as a script would. Every child is killed at the end.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "mesh_node.hpp"  // MeshCounters
#include "processes.hpp"  // Child, MeshdProcess
#include "support.hpp"    // RawNeighbour
#include "wire.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace json = boost::json;

using p2pmesh::test::Child;
using p2pmesh::test::wait_until;
using Meshd = p2pmesh::test::MeshdProcess;

struct PeerProcess {
  std::unique_ptr<Child> child;
  std::uint32_t id() {
    for (const auto& line : child->lines()) {
      const auto v = json::parse(line);
      if (v.at("event") == "welcome") return static_cast<std::uint32_t>(v.at("id").as_int64());
    }
    return 0;
  }
  // From the latest view line: "reachable" or "members".
  std::vector<std::uint32_t> view(const char* field) {
    std::vector<std::uint32_t> out;
    for (const auto& line : child->lines()) {
      const auto v = json::parse(line);
      if (v.at("event") != "view") continue;
      out.clear();
      for (const auto& r : v.at(field).as_array()) out.push_back(static_cast<std::uint32_t>(r.as_int64()));
    }
    return out;
  }
  // (from, data) -> count of message lines.
  std::map<std::pair<std::uint32_t, std::string>, int> messages() {
    std::map<std::pair<std::uint32_t, std::string>, int> out;
    for (const auto& line : child->lines()) {
      const auto v = json::parse(line);
      if (v.at("event") != "message") continue;
      ++out[{static_cast<std::uint32_t>(v.at("from").as_int64()), std::string(v.at("data").as_string())}];
    }
    return out;
  }
};

std::unique_ptr<PeerProcess> start_peer(const std::string& url, const std::string& group) {
  auto p = std::make_unique<PeerProcess>();
  p->child = std::make_unique<Child>(std::vector<std::string>{
      MESH_PEER_BINARY, "--url", url, "--group", group, "--loopback", "--print-view",
      "--view-interval-ms", "20"});
  return p;
}

bool trees_complete(std::vector<std::unique_ptr<PeerProcess>>& peers) {
  std::vector<std::uint32_t> all;
  for (auto& p : peers) all.push_back(p->id());
  std::sort(all.begin(), all.end());
  for (auto& p : peers) {
    std::vector<std::uint32_t> others;
    for (auto id : all) {
      if (id != p->id()) others.push_back(id);
    }
    if (p->id() == 0 || p->view("reachable") != others || p->view("members") != others) return false;
  }
  return true;
}

void expect_each_delivered_once(std::vector<std::unique_ptr<PeerProcess>>& peers,
                                const std::vector<std::pair<std::uint32_t, std::string>>& sent) {
  const std::size_t expected = sent.size() * (peers.size() - 1);
  auto delivered = [&] {
    std::size_t n = 0;
    for (auto& p : peers) {
      for (auto& [key, count] : p->messages()) {
        if (std::find(sent.begin(), sent.end(), key) != sent.end()) n += static_cast<std::size_t>(count);
      }
    }
    return n;
  };
  EXPECT_TRUE(wait_until([&] { return delivered() >= expected; }, 30s)) << delivered() << " of " << expected;
  std::this_thread::sleep_for(300ms);
  for (auto& p : peers) {
    const auto got = p->messages();
    bool complete = true;
    for (const auto& key : sent) {
      const auto it = got.find(key);
      const int count = it == got.end() ? 0 : it->second;
      EXPECT_EQ(count, key.first == p->id() ? 0 : 1)
          << "peer " << p->id() << " message " << key.second << " from " << key.first;
      complete = complete && count == (key.first == p->id() ? 0 : 1);
    }
    // What that peer saw besides messages and views: links, gaps, departures
    // and, as it leaves, its counters.
    if (!complete) {
      p->child->terminate(5s);
      for (const std::string& line : p->child->lines()) {
        if (line.find("\"event\":\"message\"") == std::string::npos &&
            line.find("\"event\":\"view\"") == std::string::npos) {
          std::printf("peer %u: %s\n", p->id(), line.c_str());
        }
      }
    }
  }
}

long long ms(Clock::duration d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); }

TEST(MeshPeerProcessTest, HelpAndBadArguments) {
  Child help({MESH_PEER_BINARY, "--help"});
  ASSERT_TRUE(wait_until([&] { return !help.lines().empty(); }, 10s));
  pid_t pid = fork();
  if (pid == 0) {
    const int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 2);
    execl(MESH_PEER_BINARY, MESH_PEER_BINARY, "--group", "g", "--target-connections", "x", nullptr);
    _exit(127);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
}

TEST(MeshPeerProcessTest, TwelveProcessesConnectBroadcastAndLateJoiner) {
  Meshd meshd;
  std::vector<std::unique_ptr<PeerProcess>> peers;
  // Started one after another (100 ms after the previous one's welcome), as
  // peers joining a room do.
  for (int i = 0; i < 12; ++i) {
    if (i > 0) std::this_thread::sleep_for(100ms);
    peers.push_back(start_peer(meshd.url(), "procs"));
    // The next one starts once this one is in (a process takes a moment to
    // start; without this a loaded machine turns the sequence into a burst).
    ASSERT_TRUE(wait_until([&] { return peers.back()->id() != 0; }, 10s));
  }
  const auto last_started = Clock::now();
  ASSERT_TRUE(wait_until([&] { return trees_complete(peers); }, 15s)) << "mesh never connected";
  const auto took = Clock::now() - last_started;
  EXPECT_LT(took, 3s) << "connected " << ms(took) << " ms after the last start";
  std::printf("12 processes: every tree complete %lld ms after the last start\n", ms(took));

  std::mt19937 rng(7);
  std::vector<std::pair<std::uint32_t, std::string>> sent;
  for (int i = 0; i < 200; ++i) {
    auto& from = peers[rng() % peers.size()];
    const std::string payload = "line " + std::to_string(i) + " \"quoted\" \xc3\xa9";
    from->child->write_line(payload);
    sent.emplace_back(from->id(), payload);
  }
  expect_each_delivered_once(peers, sent);

  peers.push_back(start_peer(meshd.url(), "procs"));
  ASSERT_TRUE(wait_until([&] { return trees_complete(peers); }, 15s));
  std::vector<std::pair<std::uint32_t, std::string>> after;
  for (int i = 0; i < 20; ++i) {
    auto& from = peers[static_cast<std::size_t>(i) % 12];
    from->child->write_line("after " + std::to_string(i));
    after.emplace_back(from->id(), "after " + std::to_string(i));
  }
  expect_each_delivered_once(peers, after);

  // A graceful leave on SIGTERM: exit status 0, and the others drop it.
  const std::uint32_t leaving = peers[0]->id();
  EXPECT_EQ(peers[0]->child->terminate(5s), 0);
  // Its last line: the session's counters, every one by name.
  std::string left;
  EXPECT_TRUE(wait_until([&] {
    for (const std::string& line : peers[0]->child->lines()) {
      if (line.find("\"event\":\"left\"") != std::string::npos) left = line;
    }
    return !left.empty();
  }, 5s));
  EXPECT_NE(left.find("\"counters\":{\"malformed_packets\":0"), std::string::npos) << left;
  EXPECT_NE(left.find("\"repaired\":"), std::string::npos) << left;
  EXPECT_NE(left.find("\"link_bytes_out\":"), std::string::npos) << left;
  peers.erase(peers.begin());
  EXPECT_TRUE(wait_until([&] { return trees_complete(peers); }, 10s)) << "peer " << leaving << " not dropped";
}

TEST(MeshPeerProcessTest, KillNineOfThreeSurvivorsReconnectAndDeliver) {
  Meshd meshd;
  std::vector<std::unique_ptr<PeerProcess>> peers;
  for (int i = 0; i < 12; ++i) {
    if (i > 0) std::this_thread::sleep_for(100ms);
    peers.push_back(start_peer(meshd.url(), "crash"));
    // The next one starts once this one is in (a process takes a moment to
    // start; without this a loaded machine turns the sequence into a burst).
    ASSERT_TRUE(wait_until([&] { return peers.back()->id() != 0; }, 10s));
  }
  ASSERT_TRUE(wait_until([&] { return trees_complete(peers); }, 15s));

  std::mt19937 rng(3);
  std::shuffle(peers.begin(), peers.end(), rng);
  for (int i = 0; i < 3; ++i) peers[static_cast<std::size_t>(i)]->child->kill9();
  const auto killed_at = Clock::now();
  peers.erase(peers.begin(), peers.begin() + 3);
  ASSERT_TRUE(wait_until([&] { return trees_complete(peers); }, 15s)) << "survivors never reconnected";
  const auto took = Clock::now() - killed_at;
  EXPECT_LT(took, 3s) << "mesh connected again " << ms(took) << " ms after kill -9";
  std::printf("kill -9 of 3: survivors' trees complete again after %lld ms\n", ms(took));

  std::vector<std::pair<std::uint32_t, std::string>> sent;
  for (int i = 0; i < 30; ++i) {
    auto& from = peers[rng() % peers.size()];
    from->child->write_line("survivor " + std::to_string(i));
    sent.emplace_back(from->id(), "survivor " + std::to_string(i));
  }
  expect_each_delivered_once(peers, sent);
}

// mesh-peer's state reports (`<group>.report`, --report-ms) carry every
// counter of the core, by its name (the snapshot's, docs/native.md).
TEST(MeshPeerProcessTest, StateReportsCarryEveryCounter) {
  Meshd meshd;
  PeerProcess peer;
  peer.child = std::make_unique<Child>(std::vector<std::string>{
      MESH_PEER_BINARY, "--url", meshd.url(), "--group", "reports", "--loopback", "--report-ms", "100"});
  ASSERT_TRUE(wait_until([&] { return peer.id() != 0; }, 10s));
  const std::uint32_t id = peer.id();

  // An observer of the reports that is also a raw neighbour: it sends a
  // misrouted packet and one whose route names a child mesh-peer cannot reach.
  p2pmesh::test::RawNeighbour raw(meshd.url(), "reports", false);
  ASSERT_NE(raw.id(), 0u);
  raw.subscribe("reports.report");
  raw.offer_to(id);
  ASSERT_TRUE(wait_until([&] { return raw.is_open(); }, 10s)) << "link never opened";
  p2pmesh::wire::Packet misrouted;
  misrouted.source = raw.id() + 1000;
  misrouted.seq = 1;
  misrouted.payload = "misrouted";
  raw.send(p2pmesh::wire::encode(misrouted));
  p2pmesh::wire::Packet hop;
  hop.source = raw.id();
  hop.seq = 1;
  hop.edges = {{raw.id(), id}, {id, 4000000000u}};
  hop.payload = "dropped hop";
  raw.send(p2pmesh::wire::encode(hop));

  json::object counters;
  const auto latest = [&] {
    for (const auto& message : raw.topic_messages("reports.report")) {
      if (message.sender != id) continue;
      const json::value report = json::parse(message.body);
      counters = report.at("counters").as_object();
    }
    return counters.contains("dropped_hops") && counters.at("dropped_hops") == 1 &&
           counters.contains("misrouted_packets") && counters.at("misrouted_packets") == 1;
  };
  ASSERT_TRUE(wait_until(latest, 10s)) << json::serialize(counters);

  const std::vector<std::string> expected = {
      "malformed_packets", "bad_routes", "misrouted_packets", "duplicate_packets",
      "malformed_updates", "forged_updates", "stale_updates", "bad_signals", "foreign_topics",
      "dropped_hops", "oversized_broadcasts", "oversized_publishes", "broadcasts", "delivered",
      "relayed", "fallback_sent", "fallback_received", "offers_refused", "links_opened",
      "links_timed_out", "links_dead", "repaired", "links_dropped_for_room",
      "relay_allocation_failures", "held_for_order", "gaps", "late_after_gap", "seq_jumps",
      "announcements_sent", "pulls_sent", "pulls_served", "pulls_unanswerable",
      "unsigned_dropped", "bad_signatures", "verify_backlog_drops", "signatures_checked",
      "signatures_from_source"};
  std::vector<std::string> names;
  for (const auto& [name, value] : counters) {
    names.emplace_back(name);
    EXPECT_TRUE(value.is_int64() || value.is_uint64()) << name;
  }
  EXPECT_EQ(names, expected);
  EXPECT_EQ(names.size(), sizeof(p2pmesh::MeshCounters) / sizeof(std::uint64_t))
      << "a counter of MeshCounters is missing from the state report";
  EXPECT_EQ(counters.at("repaired"), 0);
  EXPECT_EQ(counters.at("delivered"), 1);
  EXPECT_EQ(counters.at("links_opened"), 1);
  EXPECT_TRUE(wait_until([&] { return peer.messages()[{raw.id(), "dropped hop"}] == 1; }, 5s));
}

}  // namespace
