#pragma once
// Cluster: meshd nodes joined over NATS (--nats, --node-id). See
// docs/cluster.md for the design; in short:
//   - a publication goes to the local subscribers at once (as without a
//     cluster) and once to NATS, on the subject of its topic; NATS routes it
//     to the nodes that have a local subscriber of that topic (a node holds
//     one NATS subscription per topic with local subscribers);
//   - a node never hears itself (NATS no-echo, and the origin node travels
//     in every message and is checked);
//   - group state: <group>.mesh statuses travel as publications; each node
//     keeps remote members' latest statuses next to its own (Broker), asks
//     the other nodes for theirs when a group appears on it (snapshot
//     request), and publishes departure notices for its own clients;
//   - heartbeats: a node silent for kNodeDeadAfter is dead: every survivor
//     tells its own local members that the dead node's members left.
//
// Threads: cnats calls back on its own threads. Those only decode and post
// into event loop 0; every piece of broker or loop state is touched there
// (or under the broker's lock). The Broker calls publish/interest under its
// lock, from any loop (cnats' calls are thread-safe).

#include <atomic>
#include <boost/asio.hpp>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "peer_id.hpp"

struct __natsConnection;
struct __natsSubscription;
struct __natsMsg;

namespace meshd {

class ServerImpl;

// --- peer ids (docs/cluster.md): node in the high 8 bits, counter in the low 24.
inline constexpr unsigned kNodeBits = 8;
inline constexpr unsigned kCounterBits = 32 - kNodeBits;
inline constexpr std::uint32_t kCounterMask = (std::uint32_t{1} << kCounterBits) - 1;
inline constexpr int kMaxNodeId = (1 << kNodeBits) - 1;
inline unsigned node_of(p2pmesh::PeerId id) { return id >> kCounterBits; }

// --- subjects (docs/cluster.md). Bytes outside [A-Za-z0-9_-] become %HH
// (uppercase hex), except a '.' between two other characters, which stays
// a token separator: "room1.mesh" -> "p2pmesh.t.room1.mesh",
// "a b.*" -> "p2pmesh.t.a%20b.%2A". Injective, never an empty token.
std::string escape_subject(std::string_view text);
std::string topic_subject(std::string_view topic);     // p2pmesh.t.<escaped topic>
std::string node_subject(unsigned node);               // p2pmesh.n.<node>
inline constexpr const char* kHeartbeatSubject = "p2pmesh.hb";
// Snapshot requests, to every node: each answers, if only with an empty
// snapshot_end, so that the asker also learns about nodes that lost the group.
inline constexpr const char* kSnapshotSubject = "p2pmesh.s";

// --- the envelope of every message between nodes.
//   0 version (1)   1 kind   2 origin node   3 flags (bit 0: sender is a member)
//   4..7 sender (big endian)   8..15 incarnation of the origin (big endian)
//   16..17 topic length (big endian)   topic   body (the rest)
struct Envelope {
  enum class Kind : std::uint8_t {
    publish = 1,   // a publication: delivered, and recorded when a status
    record = 2,    // a member's status to keep (a join after an early status): not delivered
    heartbeat = 3,
    snapshot_request = 4,  // topic = "<group>.mesh": send me your members' statuses
    snapshot_end = 5,      // after the replies: body = the ids of all the node's members (u32 BE)
    // A member's status re-sent after a reconnection: kept, and delivered
    // where the member was unknown (declared dead during the outage, or
    // joined meanwhile), so that those peers take it back.
    announce = 6,
  };
  Kind kind = Kind::publish;
  unsigned node = 0;
  bool member = false;
  p2pmesh::PeerId sender = 0;
  std::uint64_t incarnation = 0;
  std::string topic;
  std::string body;
};
std::string encode_envelope(const Envelope& envelope);
// False when the bytes are not an envelope (short, bad version or kind).
bool decode_envelope(std::string_view bytes, Envelope& out);

class Cluster {
 public:
  static constexpr auto kHeartbeatInterval = std::chrono::milliseconds(500);
  static constexpr auto kNodeDeadAfter = std::chrono::milliseconds(2000);

  explicit Cluster(ServerImpl& server);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Connects (in the background when NATS is not reachable yet) and starts
  // the heartbeats. Throws std::runtime_error on a bad URL or option.
  void start();
  // Loop 0, at the end of a shutdown: no more heartbeats.
  void stop_timers();
  // After the loops stopped: flushes what is queued (departure notices) and closes.
  void close();

  unsigned node() const { return node_; }
  bool connected() const { return connected_.load(std::memory_order_relaxed); }

  // Under the broker's lock, any loop.
  void interest(std::string_view topic, bool on);
  void publish(Envelope::Kind kind, std::string_view topic, p2pmesh::PeerId sender, bool member,
               std::string_view body);
  // To every node, or (to_node >= 0) to one.
  void request_snapshot(std::string_view mesh_topic, int to_node = -1);
  void reply_snapshot(unsigned to_node, std::string_view mesh_topic, p2pmesh::PeerId sender,
                      std::string_view body);
  void end_snapshot(unsigned to_node, std::string_view mesh_topic,
                    const std::vector<p2pmesh::PeerId>& members);

 private:
  static void on_message(__natsConnection*, __natsSubscription*, __natsMsg* msg, void* self);
  static void on_disconnected(__natsConnection*, void* self);
  static void on_connected(__natsConnection*, void* self);
  static void on_closed(__natsConnection*, void* self);
  void receive(std::string_view subject, std::string_view data);
  void send(const std::string& subject, const Envelope& envelope);
  // An envelope of ours carrying `body` published on `topic` by `sender`.
  Envelope publication(Envelope::Kind kind, std::string_view topic, p2pmesh::PeerId sender,
                       bool member, std::string_view body) const;
  __natsSubscription* subscribe(const std::string& subject);
  void tick();  // loop 0
  void heard(unsigned node, std::uint64_t incarnation);  // loop 0

  ServerImpl& server_;
  const unsigned node_;
  const std::uint64_t incarnation_;
  __natsConnection* connection_ = nullptr;
  std::atomic<bool> connected_{false};

  std::mutex mutex_;  // guards subscriptions_ and open_
  bool open_ = false;  // messages are posted into loop 0 while open
  std::unordered_map<std::string, __natsSubscription*> subscriptions_;  // by subject

  // Loop 0.
  struct NodeState {
    std::uint64_t incarnation = 0;
    std::chrono::steady_clock::time_point last_heard;
  };
  std::unordered_map<unsigned, NodeState> nodes_;
  // After a reconnection: the nodes heard since. The first message of each
  // proves the way to it works again (routes may come back after us): it
  // gets the group resync of its own then.
  bool reconnected_ = false;
  std::unordered_map<unsigned, bool> heard_since_reconnect_;
  std::chrono::steady_clock::time_point last_heartbeat_{};
  std::optional<boost::asio::steady_timer> timer_;  // reset by close(), before loop 0 dies
  bool timers_stopped_ = false;
};

}  // namespace meshd
