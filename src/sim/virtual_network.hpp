#pragma once
// Many MeshNodes in one process, in virtual time, wired to an in-memory broker
// (the server) and to simulated links (the WebRTC data channels). It plays the
// part of every node's driver: it carries out their actions and feeds the
// outcomes back, with latencies. Seeded and reproducible; no sockets.

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "event_queue.hpp"
#include "in_memory_broker.hpp"
#include "mesh_node.hpp"
#include "parallel_batch.hpp"
#include "random.hpp"

namespace p2pmesh::sim {

struct NetworkOptions {
  TimeUs server_latency = 10 * kMillisecond;  // one way, peer <-> server
  TimeUs link_latency = 5 * kMillisecond;     // one way base latency on a link
  TimeUs link_jitter = 20 * kMillisecond;     // per pair, fixed: uniform in [0, jitter)
  // Peers sit at random points of a unit square; a link's latency grows by
  // this much per unit of distance (0 = no geography).
  TimeUs distance_latency = 0;
  // A relay is not free: each data packet a peer handles delays what it then
  // sends (a browser's event loop, a native peer's thread hop).
  TimeUs relay_delay = 0;
  // Probability that a transmission on a link is lost once; the reliable data
  // channel retransmits it after `retransmit_delay`, the unreliable one
  // (SendOnLink::unreliable) does not: lost for good.
  double loss = 0;
  TimeUs retransmit_delay = 200 * kMillisecond;
  // Probability that a transmission on a link is lost for good (no
  // retransmission): what gap repair must make up for.
  double drop = 0;
  TimeUs link_setup = 40 * kMillisecond;      // ICE + DTLS + SCTP after the answer
  TimeUs crash_detection = 1500 * kMillisecond;  // a crashed neighbour's link closes
  std::uint64_t seed = 1;
  // Threads that hand one server publication to its many receivers (results
  // do not depend on it; see parallel_batch.hpp).
  std::size_t threads = 1;
};

struct Delivery {
  PeerId source;
  std::string payload;
  TimeUs at;
  std::uint32_t hops = 0;  // links + server hops crossed from the source
  std::uint64_t seq = 0;   // the source's seq (0: none)
  bool reliable = true;    // its delivery mode
};

// A gap event a peer's application got (messages lost for good).
struct GapEvent {
  PeerId source;
  std::uint64_t from_seq;
  std::uint64_t to_seq;
  TimeUs at;
};

// What the server and the links carried since the network was made, for
// mesh-sim's control-plane figures (they take differences over a window).
struct Traffic {
  // Frames the server delivered to peers: welcomes and every topic message
  // to every subscriber (statuses, link changes, departure notices, snapshot
  // entries, signaling, fallback packets; a publisher hears its own), counted
  // when the server hands them over.
  std::uint64_t server_frames = 0;
  std::uint64_t server_fallback_frames = 0;  // of those, fallback packets (payloads)
  // Keep-alive pings and pongs that reached a peer on a link.
  std::uint64_t link_keepalives = 0;
  // Broadcast trees the nodes computed (Prim runs; see broadcast()).
  std::uint64_t tree_computations = 0;
  // Topic messages the nodes took from the server (a batch frame's entries
  // one by one), and of those, the ones shared out (taken unit by unit on
  // every thread before any node is drained).
  std::uint64_t server_messages = 0;
  std::uint64_t server_messages_in_parallel = 0;
};

// Cost of one broadcast (keyed by payload), for mesh-sim's metrics.
struct BroadcastCost {
  std::uint64_t link_transmissions = 0;    // payload-carrying packets on links
  std::uint64_t server_transmissions = 0;  // fallback copies through the server
  std::uint64_t route_bytes = 0;           // bytes of routes (Packet.edges) sent
};

class VirtualNetwork {
 public:
  explicit VirtualNetwork(NetworkOptions options);

  // Starts a peer now: it connects to the server and gets its welcome. Returns
  // its id. `config.seed` is mixed with the id so peers differ.
  PeerId add_peer(MeshConfig config);
  // `count` peers, one every `every` (time runs on after each); their ids.
  std::vector<PeerId> add_peers(std::size_t count, TimeUs every, const MeshConfig& config);
  void leave(PeerId peer);  // graceful
  void crash(PeerId peer);  // process killed: server and links notice later
  // The peer's links go silent (nothing is delivered either way, no close
  // events); its server connection stays up.
  void isolate(PeerId peer);
  // From now on, links lose this share of transmissions for good.
  void set_drop(double drop) { options_.drop = drop; }
  std::uint64_t broadcast(PeerId from, std::string payload,
                          DeliveryMode mode = DeliveryMode::reliable);

  void run_for(TimeUs duration) { events_.run_until(events_.now() + duration); }
  TimeUs now() const { return events_.now(); }

  bool alive(PeerId peer) const { return nodes_.count(peer) != 0; }
  std::vector<PeerId> peers() const;  // alive, sorted
  MeshNode& node(PeerId peer) { return *nodes_.at(peer).node; }
  const std::vector<Delivery>& deliveries(PeerId peer) const {
    return nodes_.at(peer).deliveries;
  }
  const std::vector<GapEvent>& gaps(PeerId peer) const { return nodes_.at(peer).gaps; }
  // Every node's counters summed, those of nodes gone included.
  MeshCounters counter_totals() const;
  // Open links as the simulated transport sees them (both ends open).
  std::map<PeerId, std::set<PeerId>> overlay() const;
  // One-way latency of a link between two peers (the model's truth).
  TimeUs latency(PeerId a, PeerId b) const;
  // Costs of broadcasts whose payload starts with `prefix` (all if empty).
  void track_costs(std::string prefix) {
    tracking_ = true;
    tracked_prefix_ = std::move(prefix);
  }
  const std::unordered_map<std::string, BroadcastCost>& costs() const { return costs_; }
  const InMemoryBroker& server() const { return broker_; }
  const Traffic& traffic() const { return traffic_; }

 private:
  struct Endpoint {
    PeerId peer = kNoPeer;
    LinkId link = 0;
  };
  struct SimNode {
    std::unique_ptr<MeshNode> node;
    std::vector<Delivery> deliveries;
    std::vector<GapEvent> gaps;
    TimeUs wake_at = kNever;
    // link id -> the far end, once the answer paired them
    std::unordered_map<LinkId, Endpoint> remote;
    std::set<LinkId> open;
    bool isolated = false;
    double x = 0, y = 0;  // position in the unit square
    // View generation of the node's last broadcast tree (none yet: max).
    std::uint64_t tree_generation = UINT64_MAX;
  };

  void drain(PeerId peer);
  void carry_out(PeerId peer, SimNode& sim, Action& action);
  void apply_answer(PeerId peer, SimNode& sim, const ApplyAnswer& answer);
  void send_on_link(PeerId peer, SimNode& sim, SendOnLink& send);
  void to_server(PeerId peer, const std::vector<std::string>& topics, const std::string& body);
  void on_server_message(PeerId to, const std::string& topic, PeerId sender,
                         const std::string& body, bool new_frame);
  void close_endpoint(PeerId peer, LinkId link, TimeUs delay);
  void count_cost(const std::string& bytes, bool via_server, std::size_t copies);
  // Runs an input on a node that handles data at `hops`: what it sends then
  // leaves after the relay delay and counts one hop more.
  template <class Fn>
  void handling_data(PeerId peer, std::uint32_t hops, Fn&& fn);
  template <class Fn>
  void with_node(PeerId peer, Fn&& fn);

  NetworkOptions options_;
  ParallelBatch parallel_;
  EventQueue events_;
  InMemoryBroker broker_;
  std::unordered_map<PeerId, SimNode> nodes_;
  // nodes_ by id (ids are handed out in sequence): one lookup without hashing
  // for each of the many deliveries a publication makes. nullptr once gone.
  std::vector<SimNode*> node_by_id_;
  SimNode* find_node(PeerId peer) const {
    return peer < node_by_id_.size() ? node_by_id_[peer] : nullptr;
  }
  void forget_node(PeerId peer);
  std::uint64_t seed_mix_;
  Random random_;
  // Context of the input being handled (sends inherit it).
  std::uint32_t current_hops_ = 0;
  TimeUs current_send_delay_ = 0;
  // Server deliveries of one publication, sent down together.
  struct Downlink {
    PeerId to;
    std::shared_ptr<const std::string> topic;
    PeerId sender;
    std::shared_ptr<const std::string> body;
    std::uint32_t hops;
  };
  // Consecutive downlinks of a batch that one node takes before it is drained.
  struct DownlinkRun {
    std::size_t first;
    std::size_t count;
    bool data;  // a broadcast packet through the server (always alone)
  };
  std::uint32_t batch_hops_ = 0;
  void flush_downlinks();
  static std::vector<DownlinkRun> runs_of(const std::vector<Downlink>& batch);
  void deliver_downlinks(const std::vector<Downlink>& batch);
  // The peers each message of a batch names, if it is a mesh update (its
  // source, the peers it links to): to warm the next receivers ahead.
  struct PeersNamed {
    std::vector<PeerId> peers;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> of_message;  // [begin, end) in peers
    std::unordered_map<const std::string*, std::pair<std::uint32_t, std::uint32_t>> by_body;
  };
  PeersNamed named_;
  void name_peers(const std::vector<Downlink>& batch);
  // with_node for a unit of a server batch (handling_data for a broadcast
  // packet, whose hop count goes with what the node relays).
  template <class Fn>
  void with_unit_node(const Downlink& first, bool data, Fn&& fn);

  std::vector<Downlink> batch_;
  bool tracking_ = false;
  std::string tracked_prefix_;
  std::unordered_map<std::string, BroadcastCost> costs_;
  Traffic traffic_;
  MeshCounters gone_counters_;  // summed over nodes that crashed or left
};

}  // namespace p2pmesh::sim
