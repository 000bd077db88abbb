#include "scenario.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "overlay_metrics.hpp"
#include "reference_like.hpp"

namespace p2pmesh::sim {

const char* to_string(Strategy strategy) {
  switch (strategy) {
    case Strategy::reference: return "reference";
    case Strategy::ours: return "ours";
    case Strategy::flooding: return "flooding";
  }
  return "?";
}

bool parse_strategy(const std::string& text, Strategy& out) {
  for (const Strategy s : {Strategy::reference, Strategy::ours, Strategy::flooding}) {
    if (text == to_string(s)) {
      out = s;
      return true;
    }
  }
  return false;
}

MeshConfig strategy_config(Strategy strategy, const ScenarioOptions& options) {
  MeshConfig config;
  config.group = "sim";
  config.kind = "sim";
  switch (strategy) {
    case Strategy::reference:
      config.tree.mode = TreeMode::unit;
      config.prune_routes = false;
      config.relay_fallback = false;
      config.repair_window = 0;
      config.message_ids = false;
      config.admit_when_full = false;
      break;
    case Strategy::ours:
      config.tree.mode = TreeMode::blend;
      config.tree.alpha = options.alpha;
      config.tree.max_depth = options.max_depth;
      break;
    case Strategy::flooding:
      config.spread = MeshConfig::Spread::flood;
      break;
  }
  config.pull_delay = options.pull_delay;
  config.pull_interval = options.pull_interval;
  // Routes of the reference's full trees outgrow the live default at scale.
  config.max_route_edges = 1 << 20;
  config.max_packet_bytes = 64 << 20;
  return config;
}

NetworkOptions ScenarioOptions::default_network() {
  NetworkOptions network;
  network.server_latency = 20 * kMillisecond;
  network.link_latency = 2 * kMillisecond;
  network.distance_latency = 80 * kMillisecond;  // corner to corner ~113 ms
  network.link_jitter = 5 * kMillisecond;
  network.relay_delay = 3 * kMillisecond;
  return network;
}

TimeUs ScenarioOptions::join_interval_for(std::size_t peers) {
  const TimeUs spread = 100 * kSecond / static_cast<TimeUs>(std::max<std::size_t>(peers, 1));
  return std::min<TimeUs>(50 * kMillisecond, spread);
}

namespace {

double cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double peak_rss_mb() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB
}

// Shortest-path latency from `source` over the overlay, relays paying their
// processing delay: the best any broadcast could do.
std::unordered_map<PeerId, TimeUs> optimal_latency(const VirtualNetwork& network,
                                                   const Overlay& overlay, PeerId source,
                                                   TimeUs relay_delay) {
  std::unordered_map<PeerId, TimeUs> best;
  using Entry = std::pair<TimeUs, PeerId>;
  std::priority_queue<Entry, std::vector<Entry>, std::greater<Entry>> queue;
  best[source] = 0;
  queue.push({0, source});
  while (!queue.empty()) {
    const auto [dist, at] = queue.top();
    queue.pop();
    if (dist != best[at]) continue;
    const auto it = overlay.find(at);
    if (it == overlay.end()) continue;
    const TimeUs relay = at == source ? 0 : relay_delay;
    for (const PeerId next : it->second) {
      const TimeUs candidate = dist + relay + network.latency(at, next);
      auto known = best.find(next);
      if (known == best.end() || candidate < known->second) {
        best[next] = candidate;
        queue.push({candidate, next});
      }
    }
  }
  return best;
}

struct Sent {
  std::string payload;
  PeerId from;
  TimeUs at;
  std::vector<PeerId> settled;  // peers present and settled at send time
  std::unordered_map<PeerId, TimeUs> optimum;
};

}  // namespace

ScenarioResult run_scenario(const ScenarioOptions& options) {
  const auto wall_start = std::chrono::steady_clock::now();
  ScenarioResult result;
  VirtualNetwork network(options.network);
  MeshConfig config = strategy_config(options.strategy, options);
  config.seed = options.seed;
  config.status_interval = options.status_interval;
  config.status_refresh_per_s = options.status_refresh_per_s;
  config.server_batch = options.server_batch;
  config.link_down_grace = options.link_down_grace;
  config.new_link_wait = options.new_link_wait;
  config.announce_window = options.announce_window;
  // Silent members expire after as many status intervals as live peers wait.
  config.member_timeout =
      MeshConfig{}.member_timeout / MeshConfig{}.status_interval * options.status_interval;
  MeshConfig reference_config = reference_like(config);

  // Mixed groups: which newcomers are reference-like (own seed: the rest of
  // the scenario stays the same whatever the share).
  Random kinds(options.seed ^ 0x4ef5ULL);
  std::unordered_set<PeerId> reference_peers;
  const auto add_peer = [&] {
    const bool reference =
        static_cast<double>(kinds.below(1'000'000)) < options.reference_share * 1e6;
    const PeerId id = network.add_peer(reference ? reference_config : config);
    if (reference) reference_peers.insert(id);
    return id;
  };

  std::unordered_map<PeerId, TimeUs> joined_at;
  for (std::size_t i = 0; i < options.peers; ++i) {
    joined_at[add_peer()] = network.now();
    network.run_for(options.join_interval);
  }
  // Long enough for every status (and its link RTTs) to reach every view.
  network.run_for(config.status_interval + 2 * kSecond);
  result.overlay_diameter = measure_overlay(network.overlay()).hop_diameter;

  network.track_costs("b:");
  const Traffic traffic_start = network.traffic();
  const InMemoryBroker::MeshUpdateCounts updates_start = network.server().mesh_updates();
  const TimeUs window_start = network.now();
  double live_peer_samples = 0;
  double history_bytes_sum = 0;
  const MeshCounters counters_start = network.counter_totals();
  Random random(options.seed ^ 0x5eedULL);
  const double churn_per_interval = options.churn_percent_per_minute / 100.0 *
                                    static_cast<double>(options.peers) *
                                    static_cast<double>(options.broadcast_interval) /
                                    static_cast<double>(60 * kSecond);
  double churn_credit = 0;
  const TimeUs settle = 2 * kSecond;  // a newcomer links up within this
  std::vector<Sent> sent;
  const double cpu_start = cpu_seconds();
  for (std::size_t b = 0; b < options.broadcasts; ++b) {
    churn_credit += churn_per_interval;
    while (churn_credit >= 1) {
      churn_credit -= 1;
      const std::vector<PeerId> alive = network.peers();
      const PeerId victim = alive[random.below(alive.size())];
      if (result.churn_events % 2 == 0) network.crash(victim);
      else network.leave(victim);
      joined_at.erase(victim);
      joined_at[add_peer()] = network.now();
      ++result.churn_events;
    }
    Sent s;
    const std::vector<PeerId> alive = network.peers();
    live_peer_samples += static_cast<double>(alive.size());
    for (const PeerId p : alive) {
      const MeshNode& node = network.node(p);
      const auto history = static_cast<double>(node.history_bytes()) / 1024;
      history_bytes_sum += history;
      result.history_kb_max = std::max(result.history_kb_max, history);
      result.reorder_kb_max =
          std::max(result.reorder_kb_max, static_cast<double>(node.reorder_bytes()) / 1024);
    }
    for (const PeerId p : alive) {
      if (joined_at.at(p) + settle <= network.now()) s.settled.push_back(p);
    }
    s.from = s.settled[random.below(s.settled.size())];
    s.at = network.now();
    s.payload = "b:" + std::to_string(b);
    s.optimum = optimal_latency(network, network.overlay(), s.from, options.network.relay_delay);
    network.broadcast(s.from, s.payload);
    sent.push_back(std::move(s));
    network.run_for(options.broadcast_interval);
  }
  network.run_for(5 * kSecond);
  const double cpu_used = cpu_seconds() - cpu_start;
  const Traffic& traffic_end = network.traffic();
  const double window_s = static_cast<double>(network.now() - window_start) / kSecond;
  const double live_peers = sent.empty() ? 0 : live_peer_samples / static_cast<double>(sent.size());
  const auto in_window = [&](std::uint64_t Traffic::*field) {
    return static_cast<double>(traffic_end.*field - traffic_start.*field);
  };
  if (window_s > 0) {
    result.server_deliveries_per_s = in_window(&Traffic::server_frames) / window_s;
    if (live_peers > 0) {
      result.keepalives_per_peer_per_s = in_window(&Traffic::link_keepalives) / window_s / live_peers;
      result.control_msgs_per_peer_per_s =
          (in_window(&Traffic::server_frames) - in_window(&Traffic::server_fallback_frames) +
           in_window(&Traffic::link_keepalives)) /
          window_s / live_peers;
    }
  }
  if (result.churn_events > 0) {
    const InMemoryBroker::MeshUpdateCounts& updates_end = network.server().mesh_updates();
    const auto per_event = [&](std::uint64_t end, std::uint64_t start) {
      return static_cast<double>(end - start) / static_cast<double>(result.churn_events);
    };
    result.mesh_updates_per_churn_event = per_event(updates_end.total(), updates_start.total());
    result.statuses_per_churn_event = per_event(updates_end.statuses, updates_start.statuses);
    result.connected_to_per_churn_event =
        per_event(updates_end.connected_to, updates_start.connected_to);
    result.disconnected_from_per_churn_event =
        per_event(updates_end.disconnected_from, updates_start.disconnected_from);
    result.departures_per_churn_event = per_event(updates_end.departures, updates_start.departures);
  }
  if (live_peer_samples > 0) result.history_kb_mean = history_bytes_sum / live_peer_samples;
  if (!sent.empty()) {
    const MeshCounters counters_end = network.counter_totals();
    const auto per_broadcast = [&](std::uint64_t MeshCounters::*field) {
      return static_cast<double>(counters_end.*field - counters_start.*field) /
             static_cast<double>(sent.size());
    };
    result.pulls_per_broadcast = per_broadcast(&MeshCounters::pulls_sent);
    result.pulled_copies_per_broadcast = per_broadcast(&MeshCounters::pulls_served);
    result.local_repairs_per_broadcast = per_broadcast(&MeshCounters::repaired);
    result.announcements_per_broadcast = per_broadcast(&MeshCounters::announcements_sent);
    result.tree_computations_per_broadcast =
        in_window(&Traffic::tree_computations) / static_cast<double>(sent.size());
  }

  // Who got what, when, after how many hops.
  struct Got {
    TimeUs at;
    std::uint32_t hops;
  };
  std::unordered_map<std::string, std::unordered_map<PeerId, Got>> got;
  for (const PeerId p : network.peers()) {
    std::unordered_map<PeerId, std::uint64_t> last_seq;  // per source, at p
    for (const Delivery& d : network.deliveries(p)) {
      if (d.seq != 0) {
        std::uint64_t& last = last_seq[d.source];
        if (d.seq < last) ++result.order_violations;
        last = std::max(last, d.seq);
      }
      if (d.payload.rfind("b:", 0) != 0) continue;
      if (!got[d.payload].emplace(p, Got{d.at, d.hops}).second) ++result.duplicates;
    }
    for (const GapEvent& gap : network.gaps(p)) {
      ++result.gap_events;
      result.gap_messages += gap.to_seq - gap.from_seq + 1;
    }
  }
  std::size_t targets = 0, delivered = 0, measured = 0, ours_targets = 0;
  double rmr_sum = 0, ratio_sum = 0, last_sum = 0, route_bytes = 0, hops_sum = 0;
  for (const Sent& s : sent) {
    const auto& receipts = got[s.payload];
    TimeUs last = 0, optimum = 0;
    const bool ours_source = !reference_peers.count(s.from);
    for (const PeerId target : s.settled) {
      if (target == s.from || !network.alive(target)) continue;  // not alive throughout
      ++targets;
      const bool ours_to_ours = ours_source && !reference_peers.count(target);
      ours_targets += ours_to_ours;
      if (ours_to_ours && !receipts.count(target)) ++result.ours_missed;
      if (auto it = receipts.find(target); it != receipts.end()) {
        ++delivered;
        last = std::max(last, it->second.at - s.at);
        result.max_hops = std::max<std::size_t>(result.max_hops, it->second.hops);
        hops_sum += it->second.hops;
        if (auto o = s.optimum.find(target); o != s.optimum.end()) {
          optimum = std::max(optimum, o->second);
        }
      }
    }
    const BroadcastCost cost =
        network.costs().count(s.payload) ? network.costs().at(s.payload) : BroadcastCost{};
    route_bytes += static_cast<double>(cost.route_bytes);
    if (!receipts.empty()) {
      rmr_sum += static_cast<double>(cost.link_transmissions + cost.server_transmissions) /
                     static_cast<double>(receipts.size()) -
                 1.0;
      last_sum += static_cast<double>(last) / kMillisecond;
      if (optimum > 0) ratio_sum += static_cast<double>(last) / static_cast<double>(optimum);
      ++measured;
    }
  }
  result.peers = options.peers;
  result.broadcasts = sent.size();
  result.delivery_ratio = targets ? static_cast<double>(delivered) / static_cast<double>(targets) : 0;
  result.ours_delivery_ratio =
      ours_targets ? 1.0 - static_cast<double>(result.ours_missed) / static_cast<double>(ours_targets)
                   : 0;
  result.reference_peers = reference_peers.size();
  result.mean_hops = delivered ? hops_sum / static_cast<double>(delivered) : 0;
  if (measured) {
    result.rmr = rmr_sum / static_cast<double>(measured);
    result.latency_ratio = ratio_sum / static_cast<double>(measured);
    result.last_delivery_ms = last_sum / static_cast<double>(measured);
  }
  result.routing_bytes_per_broadcast = sent.empty() ? 0 : route_bytes / static_cast<double>(sent.size());
  result.cpu_ms_per_broadcast = sent.empty() ? 0 : cpu_used * 1000 / static_cast<double>(sent.size());
  result.peak_rss_mb = peak_rss_mb();
  result.wall_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - wall_start).count();
  return result;
}

std::string ScenarioResult::json(const ScenarioOptions& options) const {
  char text[3072];
  std::snprintf(text, sizeof text,
                "{\"peers\":%zu,\"strategy\":\"%s\",\"churn\":%g,\"seed\":%llu,\"broadcasts\":%zu,"
                "\"delivery_ratio\":%.6f,\"rmr\":%.4f,\"latency_ratio\":%.3f,"
                "\"routing_bytes_per_broadcast\":%.0f,\"max_hops\":%zu,\"broadcast_depth\":%zu,"
                "\"last_delivery_ms\":%.1f,"
                "\"overlay_diameter\":%zu,\"cpu_ms_per_broadcast\":%.2f,\"wall_seconds\":%.1f,"
                "\"peak_rss_mb\":%.1f,\"memory_per_node_kb\":%.1f,\"churn_events\":%zu,"
                "\"reference_share\":%g,\"reference_peers\":%zu,\"ours_delivery_ratio\":%.6f,"
                "\"ours_missed\":%zu,\"duplicates\":%zu,\"mean_hops\":%.3f,"
                "\"server_deliveries_per_s\":%.1f,\"control_msgs_per_peer_per_s\":%.3f,"
                "\"keepalives_per_peer_per_s\":%.3f,"
                "\"tree_computations_per_broadcast\":%.4f,\"mesh_updates_per_churn_event\":%.2f,"
                "\"statuses_per_churn_event\":%.2f,\"connected_to_per_churn_event\":%.2f,"
                "\"disconnected_from_per_churn_event\":%.2f,\"departures_per_churn_event\":%.2f,"
                "\"status_interval_s\":%g,"
                "\"status_refresh_per_s\":%g,\"server_batch_ms\":%g,\"link_down_grace_ms\":%g,"
                "\"new_link_wait_ms\":%g,\"announce_window_ms\":%g,"
                "\"drop\":%g,\"order_violations\":%zu,\"gap_events\":%zu,\"gap_messages\":%zu,"
                "\"pulls_per_broadcast\":%.3f,\"pulled_copies_per_broadcast\":%.3f,"
                "\"local_repairs_per_broadcast\":%.3f,\"announcements_per_broadcast\":%.1f,"
                "\"history_kb_mean\":%.1f,\"history_kb_max\":%.1f,\"reorder_kb_max\":%.1f}",
                peers, to_string(options.strategy), options.churn_percent_per_minute,
                static_cast<unsigned long long>(options.seed), broadcasts, delivery_ratio, rmr,
                latency_ratio, routing_bytes_per_broadcast, max_hops, max_hops ? max_hops - 1 : 0,
                last_delivery_ms,
                overlay_diameter, cpu_ms_per_broadcast, wall_seconds, peak_rss_mb,
                peers ? peak_rss_mb * 1024 / static_cast<double>(peers) : 0, churn_events,
                options.reference_share, reference_peers, ours_delivery_ratio, ours_missed,
                duplicates, mean_hops, server_deliveries_per_s, control_msgs_per_peer_per_s,
                keepalives_per_peer_per_s,
                tree_computations_per_broadcast, mesh_updates_per_churn_event,
                statuses_per_churn_event, connected_to_per_churn_event,
                disconnected_from_per_churn_event, departures_per_churn_event,
                static_cast<double>(options.status_interval) / kSecond,
                options.status_refresh_per_s,
                static_cast<double>(options.server_batch) / kMillisecond,
                static_cast<double>(options.link_down_grace) / kMillisecond,
                static_cast<double>(options.new_link_wait) / kMillisecond,
                static_cast<double>(options.announce_window) / kMillisecond, options.network.drop,
                order_violations, gap_events, gap_messages, pulls_per_broadcast,
                pulled_copies_per_broadcast, local_repairs_per_broadcast,
                announcements_per_broadcast, history_kb_mean, history_kb_max, reorder_kb_max);
  return text;
}

}  // namespace p2pmesh::sim
