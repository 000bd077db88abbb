// Unreliable broadcasts (BroadcastOptions::reliable = false) between real
// Peers over libwebrtc on 127.0.0.1, with a real meshd: they arrive marked
// unreliable with their own seqs, over a second data channel that opens on
// first use only, and never wait behind a reliable message that is missing.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "support.hpp"
#include "topics.hpp"
#include "wire.hpp"

namespace p2pmesh::test {
namespace {

using namespace std::chrono_literals;

// What one peer's application got, in order.
struct Received {
  std::mutex mutex;
  std::vector<ReceivedMessage> messages;
  struct GapSeen {
    PeerId source;
    std::uint64_t from;
    std::uint64_t to;
    std::size_t after_messages;  // how many messages came before it
  };
  std::vector<GapSeen> gaps;

  PeerCallbacks callbacks() {
    PeerCallbacks c;
    c.on_received = [this](const ReceivedMessage& m) {
      std::lock_guard lock(mutex);
      messages.push_back(m);
    };
    c.on_gap = [this](PeerId source, std::uint64_t from, std::uint64_t to) {
      std::lock_guard lock(mutex);
      gaps.push_back({source, from, to, messages.size()});
    };
    return c;
  }
  std::vector<ReceivedMessage> copy() {
    std::lock_guard lock(mutex);
    return messages;
  }
  const ReceivedMessage* find(const std::vector<ReceivedMessage>& all, const std::string& bytes) {
    for (const ReceivedMessage& m : all) {
      if (m.bytes == bytes) return &m;
    }
    return nullptr;
  }
};

bool unreliable_channel_open(const Peer& peer, PeerId with) {
  for (const PeerSnapshot::Link& link : peer.snapshot().links) {
    if (link.peer == with && link.open) return link.unreliable_channel;
  }
  return false;
}

TEST(UnreliablePeerTest, TheSecondChannelOpensOnFirstUseAndCarriesMessagesMarkedUnreliable) {
  MeshdInProcess meshd;
  Received at_a;
  Received at_b;
  Peer a(loopback_config(meshd.url(), "unreliable"), at_a.callbacks());
  Peer b(loopback_config(meshd.url(), "unreliable"), at_b.callbacks());
  a.start();
  ASSERT_TRUE(a.wait_joined(10s));
  b.start();
  ASSERT_TRUE(b.wait_joined(10s));
  const auto linked = [](const Peer& p) {
    const PeerSnapshot s = p.snapshot();
    return s.links.size() == 1 && s.links[0].open;
  };
  ASSERT_TRUE(wait_until([&] { return linked(a) && linked(b); }, 10s)) << "no link";

  // Reliable traffic alone never opens it.
  for (int i = 1; i <= 5; ++i) EXPECT_EQ(a.broadcast("r" + std::to_string(i)), std::uint64_t(i));
  ASSERT_TRUE(wait_until([&] { return at_b.copy().size() == 5; }, 5s));
  std::this_thread::sleep_for(200ms);
  EXPECT_FALSE(unreliable_channel_open(a, b.id()));
  EXPECT_FALSE(unreliable_channel_open(b, a.id()));

  // The first unreliable broadcast opens it (a's side; b accepts it).
  EXPECT_EQ(a.broadcast("u1", {false}), 1u) << "unreliable messages are numbered apart";
  EXPECT_TRUE(wait_until([&] { return unreliable_channel_open(a, b.id()); }, 5s));
  EXPECT_TRUE(wait_until([&] { return unreliable_channel_open(b, a.id()); }, 5s))
      << "the far end accepts the channel without sending on it";
  for (std::uint64_t i = 2; i <= 20; ++i) {
    EXPECT_EQ(a.broadcast("u" + std::to_string(i), {false}), i);
    std::this_thread::sleep_for(2ms);
  }
  EXPECT_EQ(a.broadcast("r6"), 6u);
  // b answers on the same channel kind.
  EXPECT_EQ(b.broadcast("from b", {false}), 1u);

  // Loopback loses nothing: all of them arrive, once each.
  ASSERT_TRUE(wait_until([&] { return at_b.copy().size() == 26; }, 5s)) << at_b.copy().size();
  ASSERT_TRUE(wait_until([&] { return at_a.copy().size() == 1; }, 5s));
  std::this_thread::sleep_for(200ms);
  const std::vector<ReceivedMessage> got = at_b.copy();
  EXPECT_EQ(got.size(), 26u) << "no duplicates";
  std::map<std::string, int> copies;
  for (const ReceivedMessage& m : got) {
    ++copies[m.bytes];
    EXPECT_EQ(m.source, a.id());
    EXPECT_EQ(m.reliable, m.bytes[0] == 'r') << m.bytes;
    EXPECT_EQ(m.bytes.substr(0, 1) + std::to_string(m.seq), m.bytes) << "seq of its own mode";
    EXPECT_TRUE(m.verified) << m.bytes << ": peers sign in both modes (the default)";
  }
  for (const auto& [bytes, n] : copies) EXPECT_EQ(n, 1) << bytes;
  const std::vector<ReceivedMessage> back = at_a.copy();
  EXPECT_EQ(back[0].bytes, "from b");
  EXPECT_FALSE(back[0].reliable);
  EXPECT_TRUE(back[0].verified);
  EXPECT_EQ(back[0].seq, 1u);
  EXPECT_TRUE(at_a.gaps.empty());
  EXPECT_TRUE(at_b.gaps.empty());
  a.stop();
  b.stop();
}

// A neighbour of ours announces itself (version 3, next seq 1) and then
// sends its reliable message 2 without 1: the peer holds 2 for 1. An
// unreliable message sent after it is delivered at once all the same; 2
// comes only after the gap for 1 (the neighbour, its source, answers the
// pull: its history no longer holds 1).
TEST(UnreliablePeerTest, AnUnreliableMessageIsNotHeldBehindAReliableGap) {
  MeshdInProcess meshd;
  Received got;
  Peer target(loopback_config(meshd.url(), "hole"), got.callbacks());
  target.start();
  ASSERT_TRUE(target.wait_joined(10s));
  RawNeighbour raw(meshd.url(), "hole", false);
  ASSERT_NE(raw.id(), 0u);
  raw.offer_to(target.id());
  ASSERT_TRUE(wait_until([&] { return raw.is_open(); }, 10s)) << "link never opened";
  wire::MeshUpdate status;
  status.source = raw.id();
  status.kind = wire::MeshUpdate::Kind::status;
  status.status.connected_to = {target.id()};
  status.status.id = 1;
  status.status.version = 3;
  status.status.next_seq = 1;
  raw.publish(mesh_topic("hole"), wire::encode(status));
  // Taken once message 2 is held below (without it, 2 would come at once).
  std::this_thread::sleep_for(300ms);

  wire::Packet second;
  second.source = raw.id();
  second.seq = 2;
  second.payload = "reliable 2";
  raw.send(wire::encode(second));
  ASSERT_TRUE(wait_until([&] { return target.snapshot().counters.held_for_order == 1; }, 5s))
      << "message 2 waits for 1";
  wire::Packet fresh;
  fresh.source = raw.id();
  fresh.unreliable_seq = 1;
  fresh.payload = "unreliable 1";
  raw.send(wire::encode(fresh));
  ASSERT_TRUE(wait_until([&] { return got.copy().size() == 1; }, 5s));
  {
    const std::vector<ReceivedMessage> now = got.copy();
    EXPECT_EQ(now[0].bytes, "unreliable 1") << "delivered while reliable 2 still waits";
    EXPECT_FALSE(now[0].reliable);
    EXPECT_EQ(now[0].seq, 1u);
    std::lock_guard lock(got.mutex);
    EXPECT_TRUE(got.gaps.empty()) << "the hole is still being pulled";
  }
  // The peer pulls 1 from its source, which says it is gone: a gap, then 2.
  const auto pulled_for_1 = [&] {
    for (const std::string& bytes : raw.received()) {
      wire::Packet packet;
      if (wire::decode(bytes, packet) != wire::DecodeError::none) continue;
      for (const wire::MessageId& id : packet.want) {
        if (id.source == raw.id() && id.seq == 1) return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(wait_until(pulled_for_1, 5s)) << "no pull for message 1";
  EXPECT_EQ(got.copy().size(), 1u) << "2 still waits while 1 is pulled";
  wire::Packet gone;
  gone.source = raw.id();
  gone.gone = {{raw.id(), 1}};
  raw.send(wire::encode(gone));
  ASSERT_TRUE(wait_until([&] { return got.copy().size() == 2; }, 5s));
  const std::vector<ReceivedMessage> all = got.copy();
  EXPECT_EQ(all[1].bytes, "reliable 2");
  EXPECT_TRUE(all[1].reliable);
  std::lock_guard lock(got.mutex);
  ASSERT_EQ(got.gaps.size(), 1u);
  EXPECT_EQ(got.gaps[0].source, raw.id());
  EXPECT_EQ(got.gaps[0].from, 1u);
  EXPECT_EQ(got.gaps[0].to, 1u);
  EXPECT_EQ(got.gaps[0].after_messages, 1u) << "the gap after the unreliable one, before 2";
  target.stop();
}

}  // namespace
}  // namespace p2pmesh::test
