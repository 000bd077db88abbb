#include "metrics.hpp"

#include <fmt/format.h>

namespace meshd {

const char* to_string(Drop drop) {
  switch (drop) {
    case Drop::text_frame: return "text_frame";
    case Drop::undecodable: return "undecodable";
    case Drop::unknown_kind: return "unknown_kind";
    case Drop::too_large: return "too_large";
    case Drop::too_many_topics: return "too_many_topics";
    case Drop::too_many_subscriptions: return "too_many_subscriptions";
    case Drop::bad_topic: return "bad_topic";
    case Drop::forbidden: return "forbidden";
    case Drop::bad_mesh_update: return "bad_mesh_update";
    case Drop::rate_limited: return "rate_limited";
    case Drop::slow_consumer: return "slow_consumer";
    case Drop::max_connections: return "max_connections";
    case Drop::per_ip_connections: return "per_ip_connections";
    case Drop::per_ip_handshakes: return "per_ip_handshakes";
    case Drop::handshake_timeout: return "handshake_timeout";
    case Drop::slow_handshake: return "slow_handshake";
    case Drop::abuse: return "abuse";
    case Drop::cluster_undecodable: return "cluster_undecodable";
    case Drop::cluster_bad_topic: return "cluster_bad_topic";
    case Drop::cluster_too_large: return "cluster_too_large";
    case Drop::wrong_key: return "wrong_key";
    case Drop::protocol_error: return "protocol_error";
    case Drop::invalid_utf8: return "invalid_utf8";
    case Drop::count: break;
  }
  return "unknown";
}

Metrics::Metrics(std::size_t loops) {
  loops_.reserve(loops);
  for (std::size_t i = 0; i < loops; ++i) loops_.push_back(std::make_unique<LoopMetrics>());
}

std::uint64_t Metrics::connections() const {
  std::uint64_t total = 0;
  for (const auto& loop : loops_) total += loop->connections.get();
  return total;
}

namespace {

void metric(std::string& out, const char* name, const char* type, const char* help,
            std::uint64_t value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}

}  // namespace

std::string Metrics::render() const {
  const auto sum = [this](Counter LoopMetrics::*field) {
    std::uint64_t total = 0;
    for (const auto& loop : loops_) total += ((*loop).*field).get();
    return total;
  };
  std::string out;
  out.reserve(4096);
  metric(out, "meshd_connections", "gauge", "Open WebSocket connections.", connections());
  metric(out, "meshd_connections_total", "counter", "Accepted WebSocket connections.",
         sum(&LoopMetrics::connections_total));
  metric(out, "meshd_http_requests_total", "counter", "Plain HTTP requests served.",
         sum(&LoopMetrics::http_requests));
  metric(out, "meshd_groups", "gauge", "Groups with at least one member.", groups.get());
  metric(out, "meshd_topics", "gauge", "Topics with at least one subscriber.", topics.get());
  metric(out, "meshd_messages_in_total", "counter", "WebSocket messages received.",
         sum(&LoopMetrics::messages_in));
  metric(out, "meshd_bytes_in_total", "counter", "WebSocket message bytes received.",
         sum(&LoopMetrics::bytes_in));
  metric(out, "meshd_messages_out_total", "counter",
         "Welcome and topic messages written to connections.", sum(&LoopMetrics::messages_out));
  metric(out, "meshd_bytes_out_total", "counter", "Bytes written to WebSocket connections.",
         sum(&LoopMetrics::bytes_out));
  metric(out, "meshd_publishes_total", "counter", "Accepted publications (one per topic).",
         sum(&LoopMetrics::publishes));
  metric(out, "meshd_departures_total", "counter", "Departure notices published.",
         sum(&LoopMetrics::departures));
  metric(out, "meshd_snapshot_messages_total", "counter",
         "Status messages sent to newcomers of a group.", sum(&LoopMetrics::snapshots));
  metric(out, "meshd_turn_credentials_issued_total", "counter",
         "Welcomes sent with TURN credentials (--turn).", sum(&LoopMetrics::turn_credentials));
  if (loops_.size() > 1) {
    metric(out, "meshd_connection_moves_total", "counter",
           "WebSocket connections moved to their group's event loop (--group-loop-limit).",
           sum(&LoopMetrics::moves_in));
    out += "# HELP meshd_loop_connections Open WebSocket connections per event loop.\n";
    out += "# TYPE meshd_loop_connections gauge\n";
    for (std::size_t i = 0; i < loops_.size(); ++i)
      out += fmt::format("meshd_loop_connections{{loop=\"{}\"}} {}\n", i,
                         loops_[i]->connections.get());
  }
  if (tls) {
    metric(out, "meshd_tls_handshake_failures_total", "counter",
           "TLS handshakes that failed or timed out (plaintext clients included).",
           sum(&LoopMetrics::tls_handshake_failures));
    out += "# HELP meshd_tls_reloads_total Certificate reloads on SIGHUP, by result.\n";
    out += "# TYPE meshd_tls_reloads_total counter\n";
    out += fmt::format("meshd_tls_reloads_total{{result=\"ok\"}} {}\n", tls_reloads_ok.get());
    out += fmt::format("meshd_tls_reloads_total{{result=\"error\"}} {}\n",
                       tls_reloads_error.get());
  }
  if (auth) {
    out += "# HELP meshd_auth_failures_total WebSocket upgrades refused (401) by --auth-key, by reason.\n";
    out += "# TYPE meshd_auth_failures_total counter\n";
    for (std::size_t i = 0; i < kAuthFailureCount; ++i) {
      std::uint64_t total = 0;
      for (const auto& loop : loops_) total += loop->auth_failures[i].get();
      out += fmt::format("meshd_auth_failures_total{{reason=\"{}\"}} {}\n",
                         to_string(static_cast<AuthFailure>(i)), total);
    }
  }
  if (cluster) {
    metric(out, "meshd_nats_connected", "gauge", "1 while connected to a NATS server (--nats).",
           nats_connected.get());
    metric(out, "meshd_cluster_nodes", "gauge",
           "Nodes heard from recently, this one included.", cluster_nodes.get());
    metric(out, "meshd_cluster_messages_in_total", "counter", "Messages from other nodes.",
           cluster_in.get());
    metric(out, "meshd_cluster_messages_out_total", "counter", "Messages published to NATS.",
           cluster_out.get());
    metric(out, "meshd_cluster_send_failures_total", "counter",
           "Messages that could not be published to NATS.", cluster_send_failures.get());
    metric(out, "meshd_cluster_dead_node_departures_total", "counter",
           "Departure notices sent for other nodes' members: node silent, or gone at a resync.",
           cluster_departures.get());
  }

  out += "# HELP meshd_drops_total Messages or connections dropped, by reason.\n";
  out += "# TYPE meshd_drops_total counter\n";
  for (std::size_t i = 0; i < static_cast<std::size_t>(Drop::count); ++i) {
    std::uint64_t total = 0;
    for (const auto& loop : loops_) total += loop->drops[i].get();
    out += fmt::format("meshd_drops_total{{reason=\"{}\"}} {}\n", to_string(static_cast<Drop>(i)),
                       total);
  }

  const char* name = "meshd_fanout_latency_seconds";
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name,
                     "Time from a publication's arrival to its delivery being written.", name);
  std::uint64_t cumulative = 0;
  std::uint64_t sum_ns = 0;
  for (std::size_t b = 0; b < LatencyHistogram::kBuckets; ++b) {
    for (const auto& loop : loops_) cumulative += loop->fanout_latency.bucket(b);
    if (b < LatencyHistogram::kBounds.size())
      out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, LatencyHistogram::kBounds[b],
                         cumulative);
    else
      out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, cumulative);
  }
  for (const auto& loop : loops_) sum_ns += loop->fanout_latency.sum_ns();
  // The count is the +Inf bucket, so the exposition stays consistent.
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, static_cast<double>(sum_ns) * 1e-9, name,
                     cumulative);
  return out;
}

}  // namespace meshd
