#include "virtual_network.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <variant>

namespace p2pmesh::sim {

namespace {

// Simulated session descriptions name their maker: {"type":..,"sdp":"sim:P:L"}.
std::string description(const char* type, PeerId peer, LinkId link) {
  return std::string("{\"type\":\"") + type + "\",\"sdp\":\"sim:" + std::to_string(peer) + ":" +
         std::to_string(link) + "\"}";
}

bool parse_description(const std::string& json, PeerId& peer, LinkId& link) {
  const auto at = json.find("sim:");
  if (at == std::string::npos) return false;
  const char* p = json.data() + at + 4;
  const char* end = json.data() + json.size();
  auto r1 = std::from_chars(p, end, peer);
  if (r1.ec != std::errc{} || r1.ptr == end || *r1.ptr != ':') return false;
  auto r2 = std::from_chars(r1.ptr + 1, end, link);
  return r2.ec == std::errc{};
}

// Batches this large are shared among the threads (smaller ones are not
// worth waking them for, nor warming ahead).
constexpr std::size_t kParallelBatch = 64;

bool is_fallback_topic(const std::string& topic) {
  return topic.size() > 9 && topic.compare(topic.size() - 9, 9, ".fallback") == 0;
}

// A keep-alive ping or pong (wire::Packet with only source and ping or
// pong: at most 17 bytes). Payload packets that small are told apart by
// decoding them; bigger ones are never keep-alives.
bool is_keepalive(const std::string& bytes) {
  constexpr std::size_t kMaxKeepaliveBytes = 24;
  if (bytes.size() > kMaxKeepaliveBytes) return false;
  wire::Packet packet;
  return wire::decode(bytes, packet) == wire::DecodeError::none && (packet.ping || packet.pong);
}

void add_counters(MeshCounters& into, const MeshCounters& from) {
  std::vector<std::uint64_t> values;
  for_each_counter(from, [&](const char*, std::uint64_t value) { values.push_back(value); });
  std::size_t i = 0;
  for_each_counter(into, [&](const char*, std::uint64_t& value) { value += values[i++]; });
}

std::uint64_t mix(std::uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

VirtualNetwork::VirtualNetwork(NetworkOptions options)
    : options_(options), parallel_(options.threads), seed_mix_(mix(options.seed)), random_(mix(options.seed + 1)) {
  broker_.set_clock([this] { return events_.now(); },
                    [this](TimeUs due) {
                      events_.at(due, [this] {
                        broker_.flush_batches();
                        flush_downlinks();
                      });
                    });
}

template <class Fn>
void VirtualNetwork::handling_data(PeerId peer, std::uint32_t hops, Fn&& fn) {
  const std::uint32_t saved_hops = current_hops_;
  const TimeUs saved_delay = current_send_delay_;
  current_hops_ = hops;
  current_send_delay_ = options_.relay_delay;
  with_node(peer, std::forward<Fn>(fn));
  current_hops_ = saved_hops;
  current_send_delay_ = saved_delay;
}

void VirtualNetwork::flush_downlinks() {
  if (batch_.empty()) return;
  auto batch = std::make_shared<std::vector<Downlink>>(std::move(batch_));
  batch_.clear();
  events_.after(options_.server_latency, [this, batch] { deliver_downlinks(*batch); });
}

std::vector<VirtualNetwork::DownlinkRun> VirtualNetwork::runs_of(const std::vector<Downlink>& batch) {
  // A broadcast packet through the server stays a unit of its own: its hop
  // count goes with what the node relays.
  std::vector<DownlinkRun> runs;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    const bool data = is_fallback_topic(*batch[i].topic);
    if (!runs.empty() && !data && !runs.back().data && batch[runs.back().first].to == batch[i].to) {
      ++runs.back().count;
    } else {
      runs.push_back({i, 1, data});
    }
  }
  return runs;
}

void VirtualNetwork::deliver_downlinks(const std::vector<Downlink>& batch) {
  // Units: the consecutive messages to one node (the entries of a batch
  // frame, a snapshot). A node takes a unit's messages, then what it does is
  // carried out, as a live driver drains its node after each frame. The same
  // units with one thread or several: results do not depend on the count.
  const std::vector<DownlinkRun> runs = runs_of(batch);
  traffic_.server_messages += batch.size();
  const TimeUs now = events_.now();
  const auto take = [&](const DownlinkRun& run, SimNode& sim) {
    for (std::size_t i = run.first; i < run.first + run.count; ++i) {
      sim.node->on_topic_message(now, *batch[i].topic, batch[i].sender, *batch[i].body);
    }
  };
  // Shared out when there are enough units and no node has two (with one
  // thread too: it then warms the next nodes as well, below).
  bool share_out = runs.size() >= kParallelBatch;
  for (std::size_t r = 1; share_out && r < runs.size(); ++r) {
    share_out = batch[runs[r - 1].first].to < batch[runs[r].first].to;
  }
  if (share_out) {
    // Every node takes its unit first, in parallel (each touches only its
    // own node); then what they do is carried out in batch order. Most
    // nodes only update their view: only those with actions are drained.
    traffic_.server_messages_in_parallel += batch.size();
    std::vector<std::uint8_t> busy(runs.size(), 0);
    // Each node's tables are cold (thousands of views, gigabytes): the next
    // nodes of the chunk are loaded ahead a step at a time (warm.hpp),
    // so their memory waits overlap with this node's work.
    name_peers(batch);
    const auto load_ahead = [&](std::size_t r, std::size_t step) {
      const DownlinkRun& run = runs[r];
      const SimNode* sim = find_node(batch[run.first].to);
      if (!sim) return;
      if (step == 0) {
        warm(sim);
        return;
      }
      const auto what = static_cast<WarmStep>(step - 1);
      if (what == WarmStep::tables) {
        sim->node->warm_peer(kNoPeer, what);
        return;
      }
      // A snapshot names thousands: its node's view is warm anyway.
      constexpr std::size_t kMostPerUnit = 128;
      std::size_t warmed = 0;
      for (std::size_t m = run.first; m < run.first + run.count && warmed < kMostPerUnit; ++m) {
        const auto [begin, end] = named_.of_message[m];
        for (std::uint32_t p = begin; p < end; ++p) sim->node->warm_peer(named_.peers[p], what);
        warmed += end - begin;
      }
    };
    constexpr std::size_t kSteps = 5;  // the SimNode, then WarmStep's 4
    parallel_.run_chunks(runs.size(), [&](std::size_t begin, std::size_t end) {
      for (std::size_t i = begin; i < end + kSteps; ++i) {
        for (std::size_t step = 0; step < kSteps; ++step) {
          if (i >= begin + step && i - step < end) load_ahead(i - step, step);
        }
        if (i < begin + kSteps) continue;
        const std::size_t r = i - kSteps;
        if (SimNode* sim = find_node(batch[runs[r].first].to)) {
          take(runs[r], *sim);
          busy[r] = sim->node->has_actions();
        }
      }
    });
    for (std::size_t r = 0; r < runs.size(); ++r) {
      if (busy[r]) with_unit_node(batch[runs[r].first], runs[r].data, [](SimNode&) {});
    }
    return;
  }
  for (const DownlinkRun& run : runs) {
    with_unit_node(batch[run.first], run.data, [&](SimNode& sim) { take(run, sim); });
  }
}

void VirtualNetwork::name_peers(const std::vector<Downlink>& batch) {
  // Decoded once per body: a group's update reaches every member as the
  // same body. The tables keep their capacity from batch to batch (a batch
  // to 10,000 members would otherwise allocate, and fault in, megabytes).
  named_.peers.clear();
  named_.of_message.assign(batch.size(), {0, 0});
  named_.by_body.clear();
  wire::MeshUpdate update;
  for (std::size_t i = 0; i < batch.size(); ++i) {
    if (is_fallback_topic(*batch[i].topic)) continue;
    auto [it, fresh] = named_.by_body.try_emplace(batch[i].body.get());
    if (fresh) {
      const auto begin = static_cast<std::uint32_t>(named_.peers.size());
      if (wire::decode(*batch[i].body, update) == wire::DecodeError::none) {
        named_.peers.push_back(update.source);
        if (update.peer != kNoPeer) named_.peers.push_back(update.peer);
        const auto& links = update.status.connected_to;
        named_.peers.insert(named_.peers.end(), links.begin(), links.end());
      }
      it->second = {begin, static_cast<std::uint32_t>(named_.peers.size())};
    }
    named_.of_message[i] = it->second;
  }
}

template <class Fn>
void VirtualNetwork::with_unit_node(const Downlink& first, bool data, Fn&& fn) {
  if (data) handling_data(first.to, first.hops, std::forward<Fn>(fn));
  else with_node(first.to, std::forward<Fn>(fn));
}

template <class Fn>
void VirtualNetwork::with_node(PeerId peer, Fn&& fn) {
  SimNode* sim = find_node(peer);
  if (!sim) return;  // crashed or left meanwhile
  fn(*sim);
  drain(peer);
}

std::vector<PeerId> VirtualNetwork::add_peers(std::size_t count, TimeUs every,
                                              const MeshConfig& config) {
  std::vector<PeerId> ids;
  for (std::size_t i = 0; i < count; ++i) {
    ids.push_back(add_peer(config));
    run_for(every);
  }
  return ids;
}

PeerId VirtualNetwork::add_peer(MeshConfig config) {
  const PeerId id = broker_.connect(
      [this](PeerId to, const std::string& topic, PeerId sender, const std::string& body,
             bool new_frame) { on_server_message(to, topic, sender, body, new_frame); });
  config.seed = mix(config.seed ^ seed_mix_ ^ id);
  SimNode& sim = nodes_[id];
  if (node_by_id_.size() <= id) node_by_id_.resize(id + 1, nullptr);
  node_by_id_[id] = &sim;
  sim.node = std::make_unique<MeshNode>(std::move(config));
  sim.x = static_cast<double>(random_.below(1'000'000)) / 1e6;
  sim.y = static_cast<double>(random_.below(1'000'000)) / 1e6;
  ++traffic_.server_frames;  // the welcome
  events_.after(options_.server_latency, [this, id] {
    with_node(id, [&](SimNode& node) { node.node->on_welcome(events_.now(), id); });
  });
  return id;
}

void VirtualNetwork::leave(PeerId peer) {
  with_node(peer, [&](SimNode& sim) { sim.node->leave(events_.now()); });
  forget_node(peer);
  // The socket closes once the goodbye has reached the server.
  events_.after(options_.server_latency + 1, [this, peer] {
    broker_.disconnect(peer);
    flush_downlinks();
  });
}

void VirtualNetwork::crash(PeerId peer) {
  auto it = nodes_.find(peer);
  if (it == nodes_.end()) return;
  for (const auto& [link, far] : it->second.remote) {
    close_endpoint(far.peer, far.link, options_.crash_detection);
  }
  forget_node(peer);
  broker_.disconnect(peer);  // the kernel closes the socket at once
  flush_downlinks();
}

void VirtualNetwork::isolate(PeerId peer) {
  if (auto it = nodes_.find(peer); it != nodes_.end()) it->second.isolated = true;
}

std::uint64_t VirtualNetwork::broadcast(PeerId from, std::string payload, DeliveryMode mode) {
  std::uint64_t seq = 0;
  with_node(from, [&](SimNode& sim) {
    // MeshNode::tree() runs Prim only when the view changed since its last
    // tree (it caches per view generation), and only broadcast() asks for a
    // tree here (state reports are off in the simulator): the same test on
    // the same generation counts exactly the trees it computes.
    const std::uint64_t generation = sim.node->membership().view_generation();
    const std::uint64_t sent_before = sim.node->counters().broadcasts;
    seq = sim.node->broadcast(events_.now(), std::move(payload), mode);
    if (sim.node->counters().broadcasts != sent_before && sim.tree_generation != generation) {
      sim.tree_generation = generation;
      ++traffic_.tree_computations;
    }
  });
  return seq;
}

std::vector<PeerId> VirtualNetwork::peers() const {
  std::vector<PeerId> ids;
  for (const auto& entry : nodes_) ids.push_back(entry.first);
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::map<PeerId, std::set<PeerId>> VirtualNetwork::overlay() const {
  std::map<PeerId, std::set<PeerId>> graph;
  for (const auto& [peer, sim] : nodes_) {
    graph[peer];
    for (const LinkId link : sim.open) {
      const Endpoint& far = sim.remote.at(link);
      auto other = nodes_.find(far.peer);
      if (other != nodes_.end() && other->second.open.count(far.link)) {
        graph[peer].insert(far.peer);
      }
    }
  }
  return graph;
}

MeshCounters VirtualNetwork::counter_totals() const {
  MeshCounters totals = gone_counters_;
  for (const auto& entry : nodes_) add_counters(totals, entry.second.node->counters());
  return totals;
}

void VirtualNetwork::forget_node(PeerId peer) {
  if (const SimNode* sim = find_node(peer)) add_counters(gone_counters_, sim->node->counters());
  nodes_.erase(peer);
  if (peer < node_by_id_.size()) node_by_id_[peer] = nullptr;
}

void VirtualNetwork::drain(PeerId peer) {
  SimNode* found = find_node(peer);
  if (!found) return;
  SimNode& sim = *found;
  for (std::vector<Action> actions = sim.node->take_actions(); !actions.empty();
       actions = sim.node->take_actions()) {
    for (Action& action : actions) carry_out(peer, sim, action);
  }
}

void VirtualNetwork::carry_out(PeerId peer, SimNode& sim, Action& action) {
  const TimeUs now = events_.now();
  std::visit(
      Overloaded{
          [&](Subscribe& a) {
            events_.after(options_.server_latency, [this, peer, topic = std::move(a.topic),
                                                    batch_ms = a.batch_ms] {
              broker_.subscribe(peer, topic, batch_ms);
              flush_downlinks();
            });
          },
          [&](Publish& a) {
            if (!a.topics.empty() && is_fallback_topic(a.topics.front())) {
              count_cost(a.body, true, a.topics.size());
            }
            to_server(peer, a.topics, a.body);
          },
          [&](OpenLink& a) {
            sim.node->on_local_description(now, a.link, description("offer", peer, a.link));
            sim.node->on_local_candidate(now, a.link, "{\"candidate\":\"sim\",\"sdpMid\":\"0\"}");
          },
          [&](AcceptLink& a) {
            Endpoint far;
            if (!parse_description(a.offer_json, far.peer, far.link)) return;
            sim.remote[a.link] = far;
            sim.node->on_local_description(now, a.link, description("answer", peer, a.link));
          },
          [&](ApplyAnswer& a) { apply_answer(peer, sim, a); },
          [&](AddCandidate&) {
            // Simulated links need no ICE; the candidate path is exercised anyway.
          },
          [&](CloseLink& a) {
            auto far = sim.remote.find(a.link);
            if (far != sim.remote.end()) {
              close_endpoint(far->second.peer, far->second.link, latency(peer, far->second.peer));
              sim.remote.erase(far);
            }
            sim.open.erase(a.link);
          },
          [&](SendOnLink& a) { send_on_link(peer, sim, a); },
          [](UseIceServers&) {},  // the model has no NATs: every pair links directly
          [&](MeasureRtt& a) {
            // The transport's answer: the model's round trip on that link.
            auto far = sim.remote.find(a.link);
            if (far == sim.remote.end() || !sim.open.count(a.link)) return;
            const auto rtt = static_cast<std::uint32_t>(2 * latency(peer, far->second.peer));
            sim.node->on_link_rtt(now, a.link, rtt);
          },
          [&](Deliver& a) {
            sim.deliveries.push_back(
                {a.source, std::move(a.payload), now, current_hops_, a.seq, a.reliable});
          },
          [&](Gap& a) { sim.gaps.push_back({a.source, a.from_seq, a.to_seq, now}); },
          [&](WakeAt& a) {
            sim.wake_at = a.at;
            if (a.at == kNever) return;
            const TimeUs at = a.at;
            events_.at(at, [this, peer, at] {
              with_node(peer, [&](SimNode& target) {
                if (target.wake_at == at) target.node->on_tick(events_.now());
              });
            });
          },
          // Application events: the simulation has no application.
          [](PeerJoined&) {}, [](PeerLeft&) {}, [](LinkUp&) {}, [](LinkDown&) {},
          [](ObserverCommand&) {},
          // Simulated peers have no keys (MeshConfig::public_key empty): the
          // core never asks them to sign or verify.
          [](SignBroadcast&) {}, [](VerifySignature&) {},
      },
      action);
}

void VirtualNetwork::apply_answer(PeerId peer, SimNode& sim, const ApplyAnswer& answer) {
  Endpoint far;
  if (!parse_description(answer.answer_json, far.peer, far.link)) return;
  sim.remote[answer.link] = far;
  const LinkId link = answer.link;
  events_.after(options_.link_setup, [this, peer, link, far] {
    auto mine = nodes_.find(peer);
    auto theirs = nodes_.find(far.peer);
    if (mine == nodes_.end() || theirs == nodes_.end()) return;
    auto ours_to_them = mine->second.remote.find(link);
    auto theirs_to_us = theirs->second.remote.find(far.link);
    if (ours_to_them == mine->second.remote.end() ||
        theirs_to_us == theirs->second.remote.end() || theirs_to_us->second.peer != peer ||
        theirs_to_us->second.link != link) {
      return;  // one side gave up meanwhile
    }
    mine->second.open.insert(link);
    theirs->second.open.insert(far.link);
    with_node(peer, [&](SimNode& s) { s.node->on_link_open(events_.now(), link); });
    with_node(far.peer, [&](SimNode& s) { s.node->on_link_open(events_.now(), far.link); });
  });
}

void VirtualNetwork::send_on_link(PeerId peer, SimNode& sim, SendOnLink& send) {
  auto far = sim.remote.find(send.link);
  if (far == sim.remote.end() || !sim.open.count(send.link) || sim.isolated) return;
  const Endpoint to = far->second;
  count_cost(send.bytes, false, 1);
  TimeUs delay = current_send_delay_ + latency(peer, to.peer);
  if (options_.drop > 0 && static_cast<double>(random_.below(1'000'000)) < options_.drop * 1e6) {
    return;  // lost for good (counted as sent above)
  }
  if (options_.loss > 0 && static_cast<double>(random_.below(1'000'000)) < options_.loss * 1e6) {
    if (send.unreliable) return;  // no retransmission on that channel
    delay += options_.retransmit_delay;
  }
  const std::uint32_t hops = current_hops_ + 1;
  events_.after(delay, [this, to, hops, bytes = std::move(send.bytes)] {
    handling_data(to.peer, hops, [&](SimNode& target) {
      if (target.open.count(to.link) && !target.isolated) {
        if (is_keepalive(bytes)) ++traffic_.link_keepalives;
        target.node->on_link_data(events_.now(), to.link, bytes);
      }
    });
  });
}

void VirtualNetwork::to_server(PeerId peer, const std::vector<std::string>& topics,
                               const std::string& body) {
  const std::uint32_t hops = current_hops_ + 1;
  events_.after(current_send_delay_ + options_.server_latency, [this, peer, topics, body, hops] {
    batch_hops_ = hops;
    broker_.publish(peer, topics, body);
    batch_hops_ = 0;
    flush_downlinks();
  });
}

void VirtualNetwork::on_server_message(PeerId to, const std::string& topic, PeerId sender,
                                       const std::string& body, bool new_frame) {
  if (new_frame) ++traffic_.server_frames;
  if (is_fallback_topic(topic)) ++traffic_.server_fallback_frames;
  // One publication reaches many: share its bytes among the deliveries.
  Downlink downlink{to, nullptr, sender, nullptr, batch_hops_};
  if (!batch_.empty() && *batch_.back().topic == topic) downlink.topic = batch_.back().topic;
  else downlink.topic = std::make_shared<const std::string>(topic);
  if (!batch_.empty() && *batch_.back().body == body) downlink.body = batch_.back().body;
  else downlink.body = std::make_shared<const std::string>(body);
  batch_.push_back(std::move(downlink));
}

void VirtualNetwork::count_cost(const std::string& bytes, bool via_server, std::size_t copies) {
  if (!tracking_) return;
  // Count whatever a node sent: the default limits (4096 route edges) would
  // skip the big routes of 5,000+ peer meshes and undercount their cost.
  wire::DecodeLimits limits;
  limits.max_message_bytes = bytes.size();
  limits.max_edges = bytes.size();
  wire::Packet packet;
  if (wire::decode(bytes, packet, limits) != wire::DecodeError::none || packet.ping || packet.pong) {
    return;
  }
  if (packet.payload.compare(0, tracked_prefix_.size(), tracked_prefix_) != 0) return;
  BroadcastCost& cost = costs_[packet.payload];
  if (via_server) cost.server_transmissions += copies;
  else cost.link_transmissions += copies;
  wire::Packet bare = packet;
  bare.edges.clear();
  cost.route_bytes += copies * (bytes.size() - wire::encode(bare).size());
}

void VirtualNetwork::close_endpoint(PeerId peer, LinkId link, TimeUs delay) {
  events_.after(delay, [this, peer, link] {
    with_node(peer, [&](SimNode& sim) {
      sim.remote.erase(link);
      sim.open.erase(link);
      sim.node->on_link_closed(events_.now(), link);
    });
  });
}

TimeUs VirtualNetwork::latency(PeerId a, PeerId b) const {
  TimeUs latency = options_.link_latency;
  if (options_.distance_latency > 0) {
    auto na = nodes_.find(a);
    auto nb = nodes_.find(b);
    if (na != nodes_.end() && nb != nodes_.end()) {
      const double dx = na->second.x - nb->second.x;
      const double dy = na->second.y - nb->second.y;
      latency += static_cast<TimeUs>(std::sqrt(dx * dx + dy * dy) *
                                     static_cast<double>(options_.distance_latency));
    }
  }
  if (options_.link_jitter > 0) {
    const std::uint64_t pair = (std::uint64_t{std::min(a, b)} << 32) | std::max(a, b);
    latency += static_cast<TimeUs>(mix(pair ^ seed_mix_) %
                                   static_cast<std::uint64_t>(options_.link_jitter));
  }
  return latency;
}

}  // namespace p2pmesh::sim
