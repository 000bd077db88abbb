// p2pmesh::Peer over real libwebrtc data channels and a real meshd, all in
// one process, on 127.0.0.1 only.
#include <gtest/gtest.h>
#include <thread>
#include <mutex>
#include <optional>

#include <type_traits>

#include <array>
#include <bit>
#include <map>
#include <random>
#include <set>

#include "core_counters.hpp"
#include "rtc_link.hpp"
#include "support.hpp"
#include "wire.hpp"

namespace p2pmesh::test {
namespace {

using namespace std::chrono_literals;

// Every delivery a peer saw: (source, payload) -> count.
struct Inbox {
  std::mutex mutex;
  std::map<std::pair<PeerId, std::string>, int> counts;
  void add(PeerId from, const std::string& bytes) {
    std::lock_guard lock(mutex);
    ++counts[{from, bytes}];
  }
  int count(PeerId from, const std::string& bytes) {
    std::lock_guard lock(mutex);
    auto it = counts.find({from, bytes});
    return it == counts.end() ? 0 : it->second;
  }
  std::size_t total() {
    std::lock_guard lock(mutex);
    std::size_t n = 0;
    for (auto& [key, c] : counts) n += c;
    return n;
  }
};

struct TestPeer {
  Inbox inbox;
  std::unique_ptr<Peer> peer;
};

std::unique_ptr<TestPeer> make_peer(const std::string& url, const std::string& group) {
  auto p = std::make_unique<TestPeer>();
  PeerCallbacks callbacks;
  auto* inbox = &p->inbox;
  callbacks.on_message = [inbox](PeerId from, const std::string& bytes) { inbox->add(from, bytes); };
  p->peer = std::make_unique<Peer>(loopback_config(url, group), callbacks);
  p->peer->start();
  return p;
}

std::vector<PeerSnapshot> snapshots(const std::vector<std::unique_ptr<TestPeer>>& peers) {
  std::vector<PeerSnapshot> out;
  for (const auto& p : peers) out.push_back(p->peer->snapshot());
  return out;
}

std::vector<PeerId> ids(const std::vector<std::unique_ptr<TestPeer>>& peers) {
  std::vector<PeerId> out;
  for (const auto& p : peers) out.push_back(p->peer->id());
  return out;
}

TEST(PeerConfigTest, RejectsBadConfig) {
  PeerConfig config;
  EXPECT_THROW(Peer{config}, std::invalid_argument);  // no URL
  config.server_urls = {"http://127.0.0.1:1/service"};
  EXPECT_THROW(Peer{config}, std::invalid_argument);
  config.server_urls = {"ws://127.0.0.1:1/service"};
  config.max_connections = 2;
  config.target_connections = 4;
  EXPECT_THROW(Peer{config}, std::invalid_argument);
  config.max_connections = 6;
  EXPECT_NO_THROW(Peer{config});
  // The mesh's rules are the core's, with its message.
  config.status_interval = std::chrono::milliseconds(5);
  try {
    Peer peer{config};
    ADD_FAILURE() << "a 5 ms status interval was accepted";
  } catch (const std::invalid_argument& error) {
    EXPECT_STREQ(error.what(), "p2pmesh: status_interval must be at least 10 ms, not 5 ms");
  }
}

TEST(PeerConfigTest, APeerMovesAndWorksWhereItMovedTo) {
  static_assert(std::is_nothrow_move_constructible_v<Peer>);
  static_assert(std::is_nothrow_move_assignable_v<Peer>);
  MeshdInProcess meshd;
  PeerConfig config;
  config.server_urls = {meshd.url()};
  config.group = "moved";
  Peer first{config};
  std::vector<Peer> peers;
  peers.push_back(std::move(first));  // a moved-from Peer is only destroyed
  peers.front().start();
  EXPECT_TRUE(peers.front().wait_joined(10s));
  Peer other{config};
  other = std::move(peers.front());
  EXPECT_NE(other.id(), 0u);
  other.stop();
}

// A Peer's error events of one kind (or all), as they come on its thread.
class ErrorLog {
 public:
  explicit ErrorLog(std::optional<PeerError::Kind> kind = std::nullopt) : kind_(kind) {}
  PeerCallbacks callbacks() {
    PeerCallbacks callbacks;
    callbacks.on_error = [this](const PeerError& error) {
      if (kind_ && error.kind != *kind_) return;
      std::lock_guard lock(mutex_);
      errors_.push_back(error);
    };
    return callbacks;
  }
  bool wait_for_one(std::chrono::milliseconds timeout) const {
    return wait_until([this] { return !errors().empty(); }, timeout);
  }
  std::vector<PeerError> errors() const {
    std::lock_guard lock(mutex_);
    return errors_;
  }

 private:
  std::optional<PeerError::Kind> kind_;
  mutable std::mutex mutex_;
  std::vector<PeerError> errors_;
};

TEST(PeerErrorTest, AnUnreachableServerIsReportedWithItsReason) {
  PeerConfig config;
  config.server_urls = {"ws://127.0.0.1:1/service"};  // nothing listens on port 1
  ErrorLog log;
  Peer peer{config, log.callbacks()};
  peer.start();
  log.wait_for_one(5s);
  peer.stop();
  const std::vector<PeerError> errors = log.errors();
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].kind, PeerError::Kind::server_unreachable);
  EXPECT_NE(errors[0].reason.find("connect"), std::string::npos) << errors[0].reason;
  EXPECT_STREQ(to_string(errors[0].kind), "server_unreachable");
}

// meshd closes a connection that stays over its rate (1008, "rate limit
// exceeded"): the application hears why, not just that the server went.
TEST(PeerErrorTest, ARateLimitCloseReachesTheApplicationWithItsReason) {
  MeshdInProcess meshd([](meshd::Config& config) {
    config.rate_per_second = 2;  // a joining peer subscribes to more topics than that
    config.rate_burst = 2;
    config.max_rate_delay = std::chrono::milliseconds(1000);
  });
  ErrorLog log;
  Peer peer{loopback_config(meshd.url(), "slow"), log.callbacks()};
  peer.start();
  EXPECT_TRUE(log.wait_for_one(10s));
  peer.stop();
  const std::vector<PeerError> errors = log.errors();
  ASSERT_FALSE(errors.empty());
  EXPECT_EQ(errors[0].kind, PeerError::Kind::server_lost);
  EXPECT_NE(errors[0].reason.find("code 1008"), std::string::npos) << errors[0].reason;
  EXPECT_NE(errors[0].reason.find("rate limit exceeded"), std::string::npos) << errors[0].reason;
}

TEST(PeerErrorTest, AFullSendQueueDropsAndSaysSoOncePerEpisode) {
  MeshdInProcess meshd;
  auto receiver = make_peer(meshd.url(), "burst");
  ASSERT_TRUE(receiver->peer->wait_joined(10s));
  PeerConfig config = loopback_config(meshd.url(), "burst");
  config.max_link_queue_bytes = 64 * 1024;  // beyond libwebrtc's 1 MiB
  // Unsigned: the burst must outrun loopback SCTP, and signing 40 KiB
  // messages on the loop (slow under ASan) let it drain in one CI run.
  config.sign_broadcasts = false;
  ErrorLog log(PeerError::Kind::send_queue_full);
  Peer sender{config, log.callbacks()};
  sender.start();
  ASSERT_TRUE(sender.wait_joined(10s));
  ASSERT_TRUE(wait_until([&] {
    for (const auto& link : sender.snapshot().links) {
      if (link.peer == receiver->peer->id() && link.open) return true;
    }
    return false;
  }, 10s));
  // 40 MB at once, posted far faster than loopback SCTP drains it (8 MB was
  // not always enough): 1 MiB fits libwebrtc's buffer, 64 KiB the queue, the
  // rest is dropped (and the application told, once).
  const std::string payload(40 * 1024, 'x');
  for (int i = 0; i < 1000; ++i) ASSERT_TRUE(sender.broadcast(payload));
  ASSERT_TRUE(wait_until([&] { return sender.snapshot().counters.send_queue_drops > 0; }, 10s));
  std::this_thread::sleep_for(500ms);
  const std::vector<PeerError> errors = log.errors();
  ASSERT_GE(errors.size(), 1u);
  EXPECT_LT(errors.size(), 10u) << "reported per episode, not per packet";
  EXPECT_EQ(errors[0].peer, receiver->peer->id());
  EXPECT_NE(errors[0].reason.find("send queue"), std::string::npos) << errors[0].reason;
}

const int kStartGapMs = std::getenv("P2PMESH_TEST_START_GAP_MS") ? std::atoi(std::getenv("P2PMESH_TEST_START_GAP_MS")) : 100;

TEST(PeerMeshTest, TwelvePeersConnectBroadcastExactlyOnceAndLateJoiner) {
  MeshdInProcess meshd;
  std::vector<std::unique_ptr<TestPeer>> peers;
  // Started one after another (100 ms apart), as peers joining a room do.
  for (int i = 0; i < 12; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(kStartGapMs));
    peers.push_back(make_peer(meshd.url(), "twelve"));
  }
  const auto last_started = Clock::now();
  for (auto& p : peers) ASSERT_TRUE(p->peer->wait_joined(10s));
  const auto all_joined = Clock::now() - last_started;
  if (std::getenv("P2PMESH_TEST_TRACE")) {
    for (int t = 0; t < 40; ++t) {
      std::size_t complete = 0, links = 0, members = 0;
      const auto all = ids(peers);
      for (const auto& s : snapshots(peers)) {
        complete += all_trees_complete({s}, all);
        for (const auto& l : s.links) links += l.open;
        members += s.members.size();
      }
      std::printf("t=%lld ms complete=%zu open_links=%zu members=%zu\n",
                  static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - last_started).count()),
                  complete, links, members);
      if (t == 15) {
        for (const auto& s : snapshots(peers)) {
          std::printf("peer %u reach=%zu refused=%llu bad_signals=%llu failures=%llu links:", s.id, s.reachable.size(),
                      (unsigned long long)s.counters.offers_refused, (unsigned long long)s.counters.bad_signals,
                      (unsigned long long)s.counters.link_failures);
          for (const auto& l : s.links) std::printf(" %u%s%s", l.peer, l.initiated ? ">" : "<", l.open ? "" : "(pending)");
          std::printf("\n");
        }
      }
      if (complete == peers.size()) break;
      std::this_thread::sleep_for(100ms);
    }
  }

  // Every peer's tree reaches all others within 3 s after the last start.
  const bool complete =
      wait_until([&] { return all_trees_complete(snapshots(peers), ids(peers)); }, 10s);
  const auto connected_after = Clock::now() - last_started;
  ASSERT_TRUE(complete) << "mesh never connected";
  std::printf("12 peers in one process: every tree complete %lld ms after the last start\n",
              static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(connected_after).count()));
  EXPECT_LT(connected_after, 3s) << "connected after "
                                 << std::chrono::duration_cast<std::chrono::milliseconds>(connected_after).count()
                                 << " ms (all joined after "
                                 << std::chrono::duration_cast<std::chrono::milliseconds>(all_joined).count()
                                 << " ms)";

  // 200 broadcasts from random peers, each delivered once to every other.
  std::mt19937 rng(42);
  std::vector<std::pair<PeerId, std::string>> sent;
  for (int i = 0; i < 200; ++i) {
    auto& from = peers[rng() % peers.size()];
    std::string payload = "msg-" + std::to_string(i);
    ASSERT_TRUE(from->peer->broadcast(payload));
    sent.emplace_back(from->peer->id(), payload);
  }
  const std::size_t expected = 200 * 11;
  auto delivered = [&] {
    std::size_t n = 0;
    for (auto& p : peers) n += p->inbox.total();
    return n;
  };
  EXPECT_TRUE(wait_until([&] { return delivered() >= expected; }, 20s)) << delivered();
  std::this_thread::sleep_for(200ms);  // a duplicate would show up by now
  for (auto& p : peers) {
    const PeerId self = p->peer->id();
    for (const auto& [source, payload] : sent) {
      EXPECT_EQ(p->inbox.count(source, payload), source == self ? 0 : 1)
          << "peer " << self << " message " << payload << " from " << source;
    }
  }

  // A late joiner receives what is broadcast after it joined.
  peers.push_back(make_peer(meshd.url(), "twelve"));
  auto& late = *peers.back();
  ASSERT_TRUE(late.peer->wait_joined(10s));
  ASSERT_TRUE(wait_until([&] { return all_trees_complete(snapshots(peers), ids(peers)); }, 10s));
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(peers[static_cast<std::size_t>(i) % 12]->peer->broadcast("late-" + std::to_string(i)));
  }
  EXPECT_TRUE(wait_until(
      [&] {
        for (int i = 0; i < 20; ++i) {
          if (late.inbox.count(peers[static_cast<std::size_t>(i) % 12]->peer->id(),
                               "late-" + std::to_string(i)) != 1) {
            return false;
          }
        }
        return true;
      },
      10s));
  EXPECT_EQ(late.inbox.total(), 20u);
  for (auto& p : peers) p->peer->stop();
}

TEST(PeerMeshTest, MalformedPacketsFromANeighbourAreDroppedAndCounted) {
  MeshdInProcess meshd;
  auto target = make_peer(meshd.url(), "bad");
  ASSERT_TRUE(target->peer->wait_joined(10s));
  RawNeighbour raw(meshd.url(), "bad", false);
  ASSERT_NE(raw.id(), 0u);
  raw.offer_to(target->peer->id());
  ASSERT_TRUE(wait_until([&] { return raw.is_open(); }, 10s)) << "link never opened";

  const std::vector<std::string> garbage = {
      std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11),  // bad varint
      std::string("\x0a\x05\x08", 3),                                    // truncated
      std::string("\x1a\xff\xff\xff\x7f", 5),                            // huge length
      "not a protobuf at all",
  };
  for (const auto& bytes : garbage) raw.send(bytes);
  EXPECT_TRUE(wait_until(
      [&] { return target->peer->snapshot().counters.malformed_packets >= garbage.size(); }, 5s))
      << target->peer->snapshot().counters.malformed_packets;

  // Well-formed packets dropped for other reasons reach the snapshot's
  // counters too, each under its own name.
  const PeerId target_id = target->peer->id();
  wire::Packet misrouted;  // another source, and the raw neighbour is not its parent
  misrouted.source = raw.id() + 1000;
  misrouted.seq = 1;
  misrouted.payload = "misrouted";
  raw.send(wire::encode(misrouted));
  wire::Packet bad_route;  // a self-loop
  bad_route.source = raw.id();
  bad_route.seq = 10;
  bad_route.edges = {{raw.id(), target_id}, {target_id, target_id}};
  bad_route.payload = "bad route";
  raw.send(wire::encode(bad_route));
  wire::Packet hop;  // delivered; the child it names is no member and no link of target
  hop.source = raw.id();
  hop.seq = 11;
  hop.edges = {{raw.id(), target_id}, {target_id, 4000000000u}};
  hop.payload = "dropped hop";
  raw.send(wire::encode(hop));
  raw.send(wire::encode(hop));  // and again: a duplicate
  EXPECT_TRUE(wait_until([&] { return target->peer->snapshot().counters.duplicate_packets >= 1; }, 5s));
  {
    const PeerSnapshot::Counters c = target->peer->snapshot().counters;
    EXPECT_EQ(c.misrouted_packets, 1u);
    EXPECT_EQ(c.bad_routes, 1u);
    EXPECT_EQ(c.dropped_hops, 1u);
    EXPECT_EQ(c.duplicate_packets, 1u);
    EXPECT_EQ(c.delivered, 1u);
    EXPECT_EQ(c.repaired, 0u);
  }
  EXPECT_EQ(target->inbox.count(raw.id(), "dropped hop"), 1);
  EXPECT_EQ(target->inbox.count(raw.id() + 1000, "misrouted"), 0);

  // Still working: a well-formed packet from the same neighbour is delivered.
  wire::Packet packet;
  packet.source = raw.id();
  packet.seq = 1;
  packet.payload = "still here";
  raw.send(wire::encode(packet));
  EXPECT_TRUE(wait_until([&] { return target->inbox.count(raw.id(), "still here") == 1; }, 5s));
  EXPECT_EQ(target->peer->snapshot().state, PeerSnapshot::State::joined);
  target->peer->stop();
}

// The snapshot carries every counter of the core, each under its own name: a
// counter added to MeshCounters but not to PeerSnapshot::Counters (or not
// copied) fails here.
TEST(PeerMeshTest, BroadcastReturnsItsSeqAndReceiversGetEachSendersMessagesInThatOrder) {
  MeshdInProcess meshd;
  std::mutex mutex;
  std::map<std::size_t, std::vector<ReceivedMessage>> received;  // by receiver's index
  std::vector<std::unique_ptr<Peer>> peers;
  for (int i = 0; i < 3; ++i) {
    if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(kStartGapMs));
    PeerCallbacks callbacks;
    const std::size_t index = peers.size();
    callbacks.on_received = [&mutex, &received, index](const ReceivedMessage& m) {
      std::lock_guard lock(mutex);
      received[index].push_back(m);
    };
    callbacks.on_message = [](PeerId, const std::string&) { ADD_FAILURE() << "on_received wins"; };
    callbacks.on_gap = [](PeerId, std::uint64_t, std::uint64_t) { ADD_FAILURE() << "no gap here"; };
    peers.push_back(std::make_unique<Peer>(loopback_config(meshd.url(), "seq"), callbacks));
    peers.back()->start();
  }
  std::vector<PeerId> all;
  for (auto& p : peers) {
    ASSERT_TRUE(p->wait_joined(10s));
    all.push_back(p->id());
  }
  ASSERT_TRUE(wait_until(
      [&] {
        std::vector<PeerSnapshot> s;
        for (auto& p : peers) s.push_back(p->snapshot());
        return all_trees_complete(s, all);
      },
      10s));
  for (std::uint64_t i = 1; i <= 20; ++i) {
    EXPECT_EQ(peers[0]->broadcast("m" + std::to_string(i)), i) << "the sender's seq, from 1";
  }
  const PeerId sender = peers[0]->id();
  ASSERT_TRUE(wait_until(
      [&] {
        std::lock_guard lock(mutex);
        return received[1].size() == 20 && received[2].size() == 20;
      },
      10s));
  std::lock_guard lock(mutex);
  for (const int r : {1, 2}) {
    const auto& got = received[static_cast<std::size_t>(r)];
    for (std::size_t i = 0; i < got.size(); ++i) {
      EXPECT_EQ(got[i].source, sender);
      EXPECT_EQ(got[i].seq, i + 1);
      EXPECT_TRUE(got[i].reliable);
      EXPECT_EQ(got[i].bytes, "m" + std::to_string(i + 1));
    }
  }
  for (auto& p : peers) p->stop();
}

TEST(PeerSnapshotTest, CountersCarryEveryCoreCounter) {
  constexpr std::size_t kCore = sizeof(MeshCounters) / sizeof(std::uint64_t);
  static_assert(sizeof(MeshCounters) == kCore * sizeof(std::uint64_t), "MeshCounters: uint64_t only");
  constexpr std::size_t kAll = sizeof(PeerSnapshot::Counters) / sizeof(std::uint64_t);
  static_assert(sizeof(PeerSnapshot::Counters) == kAll * sizeof(std::uint64_t));
  ASSERT_GE(kAll, kCore);

  std::array<std::uint64_t, kCore> values{};
  for (std::size_t i = 0; i < kCore; ++i) values[i] = 1000 + i;
  const auto core = std::bit_cast<MeshCounters>(values);
  PeerSnapshot::Counters snapshot;
  snapshot.send_queue_drops = 7;  // the driver's are left alone
  native::copy_core_counters(core, snapshot);

  // The core's counters come first, in the core's order; then the driver's.
  const auto out = std::bit_cast<std::array<std::uint64_t, kAll>>(snapshot);
  for (std::size_t i = 0; i < kCore; ++i) EXPECT_EQ(out[i], 1000 + i) << "core counter #" << i;
  EXPECT_EQ(kAll - kCore, 10u) << "PeerSnapshot::Counters has a field MeshCounters lacks";
  EXPECT_EQ(snapshot.send_queue_drops, 7u);

  // By name, every one: the core's visitor and the snapshot's agree.
  std::map<std::string, std::uint64_t> by_name;
  for_each_counter(snapshot, [&](const char* name, std::uint64_t value) { by_name[name] = value; });
  EXPECT_EQ(by_name.size(), kAll) << "a name listed twice, or a field not listed";
  std::size_t core_names = 0;
  for_each_counter(core, [&](const char* name, std::uint64_t value) {
    ++core_names;
    ASSERT_TRUE(by_name.count(name)) << name << " is not in the snapshot";
    EXPECT_EQ(by_name[name], value) << name;
  });
  EXPECT_EQ(core_names, kCore);
}

TEST(PeerMeshTest, ReferenceBrowserOfferWithAudioIsAnsweredAndTheLinkOpens) {
  MeshdInProcess meshd;
  auto target = make_peer(meshd.url(), "ref");
  ASSERT_TRUE(target->peer->wait_joined(10s));
  RawNeighbour raw(meshd.url(), "ref", /*chromium_offer=*/true);
  raw.offer_to(target->peer->id());
  ASSERT_TRUE(wait_until([&] { return raw.is_open(); }, 10s)) << "link never opened";
  const std::string answer = raw.last_answer_sdp();
  EXPECT_NE(answer.find("m=audio 0 "), std::string::npos) << answer;  // audio rejected
  EXPECT_NE(answer.find("m=application 9 "), std::string::npos) << answer;
  EXPECT_TRUE(wait_until(
      [&] {
        const auto s = target->peer->snapshot();
        return s.links.size() == 1 && s.links[0].open && s.links[0].peer == raw.id();
      },
      5s));
  wire::Packet packet;
  packet.source = raw.id();
  packet.payload = "hello from a browser";  // reference peers send no seq
  raw.send(wire::encode(packet));
  EXPECT_TRUE(wait_until([&] { return target->inbox.count(raw.id(), "hello from a browser") == 1; }, 5s));
  target->peer->stop();
}

TEST(SdpTest, RejectsEveryMediaSectionButTheDataChannel) {
  const std::string offer = to_chromium_offer(
      "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
      "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:u\r\na=ice-pwd:p\r\n"
      "a=fingerprint:sha-256 AA\r\na=mid:0\r\na=sctp-port:5000\r\n");
  EXPECT_NE(offer.find("a=group:BUNDLE 0 1"), std::string::npos);
  EXPECT_LT(offer.find("m=audio 9 "), offer.find("m=application 9 "));
  const std::string rejected = native::reject_media_sections(offer);
  EXPECT_NE(rejected.find("m=audio 0 UDP/TLS/RTP/SAVPF 111"), std::string::npos);
  EXPECT_NE(rejected.find("m=application 9 UDP/DTLS/SCTP"), std::string::npos);
}

}  // namespace
}  // namespace p2pmesh::test
