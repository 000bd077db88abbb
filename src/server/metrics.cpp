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
    case Drop::abuse: return "abuse";
    case Drop::count: break;
  }
  return "unknown";
}

void LatencyHistogram::render(std::string& out, const char* name, const char* help) const {
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < kBounds.size(); ++i) {
    cumulative += buckets_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, kBounds[i], cumulative);
  }
  cumulative += buckets_.back();
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, cumulative);
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, sum_, name, count_);
}

namespace {
void metric(std::string& out, const char* name, const char* type, const char* help,
            std::uint64_t value) {
  out += fmt::format("# HELP {} {}\n# TYPE {} {}\n{} {}\n", name, help, name, type, name, value);
}
}  // namespace

std::string Metrics::render() const {
  std::string out;
  out.reserve(4096);
  metric(out, "meshd_connections", "gauge", "Open WebSocket connections.", connections);
  metric(out, "meshd_connections_total", "counter", "Accepted WebSocket connections.",
         connections_total);
  metric(out, "meshd_http_requests_total", "counter", "Plain HTTP requests served.",
         http_requests);
  metric(out, "meshd_groups", "gauge", "Groups with at least one member.", groups);
  metric(out, "meshd_topics", "gauge", "Topics with at least one subscriber.", topics);
  metric(out, "meshd_messages_in_total", "counter", "WebSocket messages received.",
         messages_in);
  metric(out, "meshd_bytes_in_total", "counter", "WebSocket message bytes received.", bytes_in);
  metric(out, "meshd_messages_out_total", "counter",
         "Welcome and topic messages written to connections.", messages_out);
  metric(out, "meshd_bytes_out_total", "counter", "Bytes written to WebSocket connections.",
         bytes_out);
  metric(out, "meshd_publishes_total", "counter", "Accepted publications (one per topic).",
         publishes);
  metric(out, "meshd_departures_total", "counter", "Departure notices published.", departures);
  metric(out, "meshd_snapshot_messages_total", "counter",
         "Status messages sent to newcomers of a group.", snapshots);
  out += "# HELP meshd_drops_total Messages or connections dropped, by reason.\n";
  out += "# TYPE meshd_drops_total counter\n";
  for (std::size_t i = 0; i < drops.size(); ++i)
    out += fmt::format("meshd_drops_total{{reason=\"{}\"}} {}\n",
                       to_string(static_cast<Drop>(i)), drops[i]);
  fanout_latency.render(out, "meshd_fanout_latency_seconds",
                        "Time from a publication's arrival to its delivery being written.");
  return out;
}

}  // namespace meshd
