// Batches of <group>.mesh updates (SubscribeRequest.batch_ms, ours): a
// subscriber that asks gets a quiet group's updates at once and a busy
// group's in a few TopicBatch frames, in order, nothing lost; the snapshot
// and departures too. Subscribers that do not ask (reference peers) get one
// frame per update as before.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "support.hpp"

namespace meshd::test {
namespace {

namespace wire = p2pmesh::wire;
using Kind = wire::ServerMessage::Kind;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::unique_ptr<WsClient> join_batched(std::uint16_t port, const std::string& group,
                                       std::uint32_t batch_ms) {
  auto client = std::make_unique<WsClient>();
  if (!client->connect(port)) return nullptr;
  for (const char* channel : {"offer", "answer", "candidate", "fallback"})
    client->subscribe(topic(group, client->id(), channel));
  client->subscribe(group + ".mesh", batch_ms);
  if (!client->barrier()) return nullptr;
  return client;
}

struct Received {
  std::vector<wire::ServerMessage> frames;
  std::vector<wire::BatchEntry> updates;  // every update, in arrival order
  std::vector<Clock::time_point> arrived;  // per frame
};

// Reads frames until `count` updates came (or the timeout passed).
Received receive(WsClient& client, std::size_t count, milliseconds timeout = milliseconds(3000)) {
  Received out;
  const auto deadline = Clock::now() + timeout;
  while (out.updates.size() < count && Clock::now() < deadline) {
    auto message = client.next(std::chrono::duration_cast<milliseconds>(deadline - Clock::now()));
    if (!message) break;
    out.arrived.push_back(Clock::now());
    if (message->kind == Kind::topic_batch) {
      for (const auto& entry : message->batch) out.updates.push_back(entry);
    } else if (message->kind == Kind::topic_message) {
      out.updates.push_back({message->sender, message->body});
    }
    out.frames.push_back(std::move(*message));
  }
  return out;
}

wire::MeshUpdate decoded(const wire::BatchEntry& entry) {
  wire::MeshUpdate update;
  EXPECT_EQ(wire::decode(entry.body, update), wire::DecodeError::none);
  return update;
}

TEST(Batches, ABusyGroupReachesABatchSubscriberInFewFramesInOrder) {
  TestServer server;
  auto reference = join(server.port(), "g");  // asks for no batches
  ASSERT_TRUE(reference);
  auto batched = join_batched(server.port(), "g", 300);
  ASSERT_TRUE(batched);
  auto publisher = join(server.port(), "g");
  ASSERT_TRUE(publisher);

  constexpr std::size_t kUpdates = 60;
  // meshd cannot send anything of these before this instant, nor the batch
  // before a whole window after it (its timer never fires early).
  const auto before = Clock::now();
  for (std::size_t i = 0; i < kUpdates; ++i)
    publisher->publish({"g.mesh"}, link_update(publisher->id(), 1000 + i, true));

  // The batch subscriber (read first: arrival times are when it reads): the
  // first update at once (the group was quiet), the rest together one
  // window later, in order.
  const Received together = receive(*batched, kUpdates);
  ASSERT_EQ(together.updates.size(), kUpdates);
  EXPECT_LE(together.frames.size(), 3u);
  EXPECT_EQ(together.frames.back().kind, Kind::topic_batch);
  EXPECT_EQ(together.frames.back().topic, "g.mesh");
  for (std::size_t i = 0; i < kUpdates; ++i) {
    EXPECT_EQ(together.updates[i].sender, publisher->id());
    EXPECT_EQ(decoded(together.updates[i]).peer, 1000 + i) << "update " << i << " out of order";
  }
  EXPECT_LT(together.arrived.front() - before, milliseconds(250)) << "a quiet group waits for nothing";
  EXPECT_GE(together.arrived.back() - before, milliseconds(300)) << "the rest waits for the window";
  EXPECT_LT(together.arrived.back() - before, milliseconds(1500));

  // The reference subscriber: one frame per update.
  const Received one_by_one = receive(*reference, kUpdates);
  ASSERT_EQ(one_by_one.updates.size(), kUpdates);
  EXPECT_EQ(one_by_one.frames.size(), kUpdates);
}

TEST(Batches, SnapshotAndDeparturesComeInBatches) {
  TestServer server;
  std::vector<std::unique_ptr<WsClient>> members;
  for (int i = 0; i < 30; ++i) {
    auto member = join(server.port(), "g");
    ASSERT_TRUE(member);
    member->publish({"g.mesh"}, status_update(member->id(), {}, 1));
    ASSERT_TRUE(member->barrier());
    members.push_back(std::move(member));
  }
  auto newcomer = join_batched(server.port(), "g", 200);
  ASSERT_TRUE(newcomer);
  // join ended with a barrier: the snapshot is there, one batch frame.
  const auto snapshot = newcomer->drain();
  ASSERT_EQ(snapshot.size(), 1u);
  ASSERT_EQ(snapshot[0].kind, Kind::topic_batch);
  ASSERT_EQ(snapshot[0].batch.size(), members.size());
  for (std::size_t i = 0; i < members.size(); ++i) {
    const wire::MeshUpdate update = decoded(snapshot[0].batch[i]);
    EXPECT_EQ(update.source, snapshot[0].batch[i].sender);
    EXPECT_EQ(update.kind, wire::MeshUpdate::Kind::status);
  }

  // Ten members die at once (their sockets drop): their departures reach
  // the newcomer, each once, in a few frames (the first at once, the rest
  // one window later).
  std::vector<p2pmesh::PeerId> gone;
  for (int i = 0; i < 10; ++i) {
    gone.push_back(members.back()->id());
    members.back()->kill();
    members.pop_back();
  }
  const Received departures = receive(*newcomer, gone.size());
  ASSERT_EQ(departures.updates.size(), gone.size());
  EXPECT_LE(departures.frames.size(), 3u);
  std::vector<p2pmesh::PeerId> heard;
  for (const auto& entry : departures.updates) {
    const wire::MeshUpdate update = decoded(entry);
    EXPECT_TRUE(update.left);
    heard.push_back(update.source);
  }
  std::sort(heard.begin(), heard.end());
  std::sort(gone.begin(), gone.end());
  EXPECT_EQ(heard, gone);
}

TEST(Batches, OnlyMeshTopicsAreBatched) {
  // Signaling waits for nothing: a batch_ms on another topic is ignored.
  TestServer server;
  auto receiver = std::make_unique<WsClient>();
  ASSERT_TRUE(receiver->connect(server.port()));
  receiver->subscribe(topic("g", receiver->id(), "offer"), 1000);
  ASSERT_TRUE(receiver->barrier());
  auto sender = join(server.port(), "g");
  ASSERT_TRUE(sender);
  for (int i = 0; i < 3; ++i) sender->publish({topic("g", receiver->id(), "offer")}, "{}");
  const Received offers = receive(*receiver, 3, milliseconds(500));
  EXPECT_EQ(offers.updates.size(), 3u);
  EXPECT_EQ(offers.frames.size(), 3u);
  for (const auto& frame : offers.frames) EXPECT_EQ(frame.kind, Kind::topic_message);
}

}  // namespace
}  // namespace meshd::test
