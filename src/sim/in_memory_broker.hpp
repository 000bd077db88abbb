#pragma once
// A minimal in-memory stand-in for meshd (no sockets): ids, pub/sub with the
// sender stamped, the newcomer snapshot and the departure notice. Members'
// statuses are kept in meshd's own MemberRecord (src/core/member_record.hpp),
// with its rules on mesh updates. Delivery is synchronous: the VirtualNetwork
// adds latency around it.

#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "clock.hpp"
#include "member_record.hpp"
#include "topic_batcher.hpp"
#include "peer_id.hpp"
#include "wire.hpp"

namespace p2pmesh::sim {

class InMemoryBroker {
 public:
  // `new_frame` is false for the second and later messages of one batch
  // frame (SubscribeRequest.batch_ms): what a peer pays per frame, it pays once.
  using Receiver = std::function<void(PeerId to, const std::string& topic, PeerId sender,
                                      const std::string& body, bool new_frame)>;

  // A new connection: returns its fresh id (the welcome).
  PeerId connect(Receiver receiver);
  void disconnect(PeerId client);
  void subscribe(PeerId client, const std::string& topic, std::uint32_t batch_ms = 0);
  void publish(PeerId client, const std::vector<std::string>& topics, const std::string& body);

  // Batches as meshd makes them (TopicBatcher): the simulated clock, and how
  // the broker asks to be called back (flush_batches) when one is due.
  // Without them nothing waits.
  void set_clock(std::function<TimeUs()> now, std::function<void(TimeUs due)> wake);
  void flush_batches();

  std::uint64_t messages_delivered() const { return delivered_; }
  // Mesh updates published on <group>.mesh (each reaches the whole group),
  // by kind: what every member decodes.
  struct MeshUpdateCounts {
    std::uint64_t statuses = 0;
    std::uint64_t connected_to = 0;
    std::uint64_t disconnected_from = 0;
    std::uint64_t departures = 0;  // a peer's own `left`, and the server's notices
    std::uint64_t total() const { return statuses + connected_to + disconnected_from + departures; }
  };
  const MeshUpdateCounts& mesh_updates() const { return mesh_updates_; }
  // connected_to / disconnected_from updates published (what a join costs everyone).
  std::uint64_t link_changes_published() const {
    return mesh_updates_.connected_to + mesh_updates_.disconnected_from;
  }

 private:
  struct Client {
    Receiver receiver;
    std::vector<std::string> topics;
    // What it said about itself in groups it has not joined yet (a reference
    // peer publishes its status before it subscribes): moved into the group
    // when it does, so newcomers' snapshots include it; if it goes first and
    // a member heard it, the group gets its departure notice (as meshd does).
    struct Early {
      MemberRecord record;
      bool heard = false;
    };
    std::map<std::string, Early> early;
  };
  void deliver(const std::string& topic, PeerId sender, const std::string& body);
  void flush_batch(const std::string& topic);
  // Entries to one client, `frames` (split_batches) of them in each frame,
  // as meshd frames them.
  void deliver_batches(PeerId to, Client& client, const std::string& topic,
                       const std::vector<wire::BatchEntry>& entries,
                       const std::vector<std::size_t>& frames);
  struct Batching {
    std::map<PeerId, std::uint32_t> subscribers;  // -> batch_ms
    TopicBatcher batcher;
  };
  // Keeps a member's own mesh update; false (refused) when it is not one.
  bool track_mesh_update(const std::string& topic, PeerId sender, const std::string& body);

  PeerId next_id_ = 1;
  std::unordered_map<PeerId, Client> clients_;
  std::map<std::string, std::set<PeerId>> subscribers_;  // one frame per message
  std::map<std::string, Batching> batching_;             // <group>.mesh batch subscribers
  std::function<TimeUs()> now_;
  std::function<void(TimeUs)> wake_;
  // group -> member -> its latest status (kept current from link updates)
  std::map<std::string, std::map<PeerId, MemberRecord>> groups_;
  std::uint64_t delivered_ = 0;
  MeshUpdateCounts mesh_updates_;
};

}  // namespace p2pmesh::sim
