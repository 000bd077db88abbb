// Abuse of the real meshd program by real WebSocket clients on loopback
// (issue #18): one address opening 5,000 connections, a slowloris of 1,024
// clients from many addresses, a member that never reads while its group is
// busy, a peer flooding another with offers. Throughout each, a group of
// honest peers exchanges statuses and must get every one of them (100%
// delivery); the abuse is refused and counted in /metrics; meshd's resident
// memory (VmRSS in /proc/PID/status) stays within a bound of where it started.

#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace meshd {
namespace {

using namespace test;
using namespace std::chrono_literals;

constexpr int kHonest = 4;
constexpr const char* kGroup = "honest";

// meshd's resident memory, KiB.
std::size_t rss_kib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoul(line.substr(6));
  return 0;
}

class Abuse : public ::testing::Test {
 protected:
  // The real meshd with `flags`, and kHonest peers joined to the group.
  void start(std::vector<std::string> flags) {
    std::vector<std::string> args{"--host", "127.0.0.1", "--port", "0",
                                  "--log-level", "warn", "--web-root", ""};
    args.insert(args.end(), flags.begin(), flags.end());
    meshd_ = std::make_unique<MeshdProgram>(MESHD_BINARY, args);
    port_ = port_from(meshd_->first_line());
    ASSERT_NE(port_, 0);
    for (int i = 0; i < kHonest; ++i) {
      auto peer = join(port_, kGroup);
      ASSERT_TRUE(peer);
      honest_.push_back(std::move(peer));
    }
    honest_round(5);
    baseline_kib_ = rss_kib(meshd_->pid());
    ASSERT_GT(baseline_kib_, 0u);
  }

  // Every honest peer publishes `count` statuses (with `links` links, a few
  // bytes each); every other honest peer must get each one, exactly once.
  void honest_round(int count, std::size_t links = 8) {
    std::vector<p2pmesh::PeerId> linked;
    for (std::size_t i = 0; i < links; ++i) linked.push_back(static_cast<p2pmesh::PeerId>(1000000 + i));
    for (int sent = 0; sent < count;) {
      // A few at a time, then everyone reads: an honest peer is no slow consumer.
      const int chunk = std::min(links > 100 ? 3 : 10, count - sent);
      for (auto& peer : honest_)
        for (int i = 0; i < chunk; ++i)
          peer->publish({std::string(kGroup) + ".mesh"},
                        status_update(peer->id(), linked, ++status_ids_[peer->id()]));
      sent += chunk;
      for (auto& peer : honest_) ASSERT_TRUE(peer->barrier());
    }
    // First every publication is processed, then every delivery is read.
    for (auto& peer : honest_) ASSERT_TRUE(peer->barrier());
    for (auto& peer : honest_) ASSERT_TRUE(peer->barrier());
    for (auto& receiver : honest_) {
      std::map<p2pmesh::PeerId, int> got;
      for (const auto& message : receiver->drain()) {
        if (message.topic == std::string(kGroup) + ".mesh") {
          const auto update = mesh_update(message);
          if (update.source != message.sender) continue;
          if (update.left)
            departed_[receiver->id()].insert(message.sender);
          else
            ++got[message.sender];
        } else if (message.topic.find(".offer") != std::string::npos) {
          offers_[receiver->id()][message.sender]++;
        }
      }
      for (auto& sender : honest_) {
        if (sender->id() == receiver->id()) continue;
        EXPECT_EQ(got[sender->id()], count)
            << "peer " << receiver->id() << " got " << got[sender->id()] << " of " << count
            << " statuses of peer " << sender->id();
      }
    }
    delivered_ += count * kHonest * (kHonest - 1);
    peak_kib_ = std::max(peak_kib_, rss_kib(meshd_->pid()));
  }

  // meshd's memory now and at its peak so far stays within `bound_kib` of
  // where it started.
  void expect_memory_bounded(std::size_t bound_kib) {
    peak_kib_ = std::max(peak_kib_, rss_kib(meshd_->pid()));
    EXPECT_LE(peak_kib_, baseline_kib_ + bound_kib)
        << "meshd's RSS grew from " << baseline_kib_ << " KiB to " << peak_kib_ << " KiB";
    std::printf("meshd RSS: %zu KiB at the start, %zu KiB at the peak; %d honest deliveries\n",
                baseline_kib_, peak_kib_, delivered_);
  }

  double drops_of(const char* reason) { return drops(port_, reason); }

  std::unique_ptr<MeshdProgram> meshd_;
  std::uint16_t port_ = 0;
  std::vector<std::unique_ptr<WsClient>> honest_;
  std::map<p2pmesh::PeerId, std::uint32_t> status_ids_;
  std::map<p2pmesh::PeerId, std::map<p2pmesh::PeerId, int>> offers_;  // receiver -> sender -> n
  std::map<p2pmesh::PeerId, std::set<p2pmesh::PeerId>> departed_;     // receiver -> left
  std::size_t baseline_kib_ = 0;
  std::size_t peak_kib_ = 0;
  int delivered_ = 0;
};

const std::string kUpgrade =
    "GET /service HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

// 5,000 complete WebSocket upgrades from one address (127.0.0.2), 50 allowed:
// the rest are closed at accept and counted, the honest peers (127.0.0.1)
// lose nothing, meshd's memory stays put, and the address gets in again
// once its connections are closed.
TEST_F(Abuse, OneAddressOpening5000ConnectionsGetsItsShareAndHonestPeersLoseNothing) {
  ASSERT_GE(raise_fd_limit(4096), 1200u);
  start({"--max-connections-per-ip", "50"});
  std::vector<int> flood;
  for (int i = 0; i < 5000; ++i) {
    const int fd = connect_from("127.0.0.2", port_);
    if (fd < 0) continue;
    (void)!::send(fd, kUpgrade.data(), kUpgrade.size(), MSG_NOSIGNAL);
    flood.push_back(fd);
    if (flood.size() >= 900) {  // the test's own descriptors stay bounded
      for (std::size_t k = 50; k < flood.size(); ++k) ::close(flood[k]);
      flood.resize(50);
    }
    if (i % 1000 == 999) honest_round(20);
  }
  EXPECT_TRUE(wait_metric(port_, "meshd_connections", kHonest + 50));
  EXPECT_GE(drops_of("per_ip_connections"), 4900);
  honest_round(20);
  expect_memory_bounded(16 * 1024);
  for (const int fd : flood) ::close(fd);
  EXPECT_TRUE(wait_metric(port_, "meshd_connections", kHonest));
  WsClient again;
  ASSERT_TRUE(again.connect(port_));
}

// 1,024 slow clients (headers that never end) from 128 addresses, 8 each
// (within --max-handshakes-per-ip): they take every --max-http-connections
// slot. A new connection closes the one in its handshake the longest
// (--handshake-evict-after), so new peers still join at once and the
// honest ones lose nothing; the rest meet --handshake-timeout. Both counted.
TEST_F(Abuse, SlowlorisOf1024ClientsFromManyAddressesDoesNotLockNewPeersOut) {
  ASSERT_GE(raise_fd_limit(4096), 1200u);
  start({"--max-http-connections", "1024", "--max-handshakes-per-ip", "8",
         "--handshake-timeout", "4", "--handshake-evict-after", "0.5"});
  std::vector<int> slow;
  for (int address = 1; address <= 128; ++address) {
    const std::string from = "127.0.1." + std::to_string(address);
    for (int i = 0; i < 8; ++i) {
      const int fd = connect_from(from.c_str(), port_);
      ASSERT_GE(fd, 0);
      (void)!::send(fd, "GET /service HTTP/1.1\r\nHost: x\r\n", 32, MSG_NOSIGNAL);  // never ends
      slow.push_back(fd);
    }
  }
  std::this_thread::sleep_for(1s);  // past --handshake-evict-after
  std::vector<std::unique_ptr<WsClient>> newcomers;
  for (int i = 0; i < 16; ++i) {
    auto peer = join(port_, kGroup);
    ASSERT_TRUE(peer) << "newcomer " << i << " locked out";
    peer->drain();  // the snapshot of the group
    newcomers.push_back(std::move(peer));
  }
  // One closed slow handshake is enough: the newcomer's slot is free again
  // once it is a WebSocket.
  EXPECT_GE(drops_of("slow_handshake"), 1);
  EXPECT_EQ(drops_of("max_connections"), 0);
  for (auto& peer : newcomers) honest_.push_back(std::move(peer));
  honest_round(20);
  // The others meet --handshake-timeout (4 s after they connected).
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (drops_of("handshake_timeout") + drops_of("slow_handshake") < 1024 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  EXPECT_GE(drops_of("handshake_timeout") + drops_of("slow_handshake"), 1024);
  honest_round(5);
  expect_memory_bounded(32 * 1024);
  for (const int fd : slow) ::close(fd);
}

// A member that stops reading while its group is busy (about 9 MB of
// statuses): meshd queues at most --max-outbound-bytes for it, then closes
// it as a slow consumer and tells the group it left; the honest members get
// every status, and meshd's memory stays bounded.
TEST_F(Abuse, MemberThatNeverReadsIsClosedAndTheBusyGroupLosesNothing) {
  start({"--max-outbound-bytes", "262144", "--rate", "0"});
  WsClient stalled;
  ASSERT_TRUE(stalled.connect(port_, true, 4096));
  ASSERT_TRUE(join(stalled, kGroup));
  const p2pmesh::PeerId stalled_id = stalled.id();
  // From here on `stalled` never reads: its loop is not run again.
  for (int round = 0; round < 10 && drops_of("slow_consumer") < 1; ++round)
    honest_round(50, 2000);  // statuses of about 6 KB
  EXPECT_EQ(drops_of("slow_consumer"), 1);
  honest_round(10);
  // Its departure reached the group at once (not after its close handshake's
  // --handshake-timeout: it does not read its close frame either).
  for (auto& peer : honest_)
    EXPECT_EQ(departed_[peer->id()].count(stalled_id), 1u) << "peer " << peer->id();
  expect_memory_bounded(32 * 1024);
}

// A member floods another with offers (as fast as TCP takes them): meshd
// holds it to --rate, then closes it (1008, counted); the target gets no
// more offers than the rate allows and keeps working, the group loses nothing.
TEST_F(Abuse, PeerFloodingOffersIsHeldToTheRateThenClosedAndTheTargetKeepsWorking) {
  start({"--rate", "200", "--burst", "100", "--max-rate-delay", "1"});
  WsClient flooder;
  ASSERT_TRUE(flooder.connect(port_));
  ASSERT_TRUE(join(flooder, kGroup));
  const p2pmesh::PeerId target = honest_[0]->id();
  const auto started = std::chrono::steady_clock::now();
  std::atomic<int> sent{0};
  CloseInfo closed;
  std::thread flood([&] {
    const std::string offer = R"({"type":"offer","sdp":"v=0 flood"})";
    const auto stop = std::chrono::steady_clock::now() + 8s;
    while (std::chrono::steady_clock::now() < stop && !flooder.closed()) {
      for (int i = 0; i < 100; ++i) flooder.publish({topic(kGroup, target, "offer")}, offer);
      sent += 100;
    }
    closed = flooder.wait_closed(10s);
  });
  // Within the rate: 10 statuses per peer every 100 ms at most.
  while (std::chrono::steady_clock::now() - started < 3s) {
    honest_round(10);
    std::this_thread::sleep_for(100ms);
  }
  flood.join();
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  EXPECT_TRUE(closed.closed);
  EXPECT_EQ(closed.code, 1008);
  EXPECT_EQ(closed.reason, "rate limit exceeded");
  EXPECT_EQ(drops_of("rate_limited"), 1);
  honest_round(10);
  const int offers = offers_[target][flooder.id()];
  EXPECT_GT(offers, 0);
  EXPECT_LE(offers, 100 + 200 * seconds) << "offers beyond the rate reached the target";
  std::printf("flooder sent %d offers, the target got %d in %.1f s\n", sent.load(), offers, seconds);
  expect_memory_bounded(16 * 1024);
}

}  // namespace
}  // namespace meshd
