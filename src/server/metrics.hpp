#pragma once
// meshd's counters and the fan-out latency histogram, rendered in the
// Prometheus text exposition format on /metrics. Single-threaded: only the
// server's event loop touches them.

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace meshd {

enum class Drop : std::uint8_t {
  text_frame,          // a text frame (WIRE.md: binary only)
  undecodable,         // a binary frame that is not a ClientMessage
  unknown_kind,        // a ClientMessage with no known member of the oneof
  too_large,           // frame above --max-frame-bytes (connection closed, 1009)
  too_many_topics,     // publish with more than --max-topics-per-publish topics
  too_many_subscriptions,
  bad_topic,           // topic too long or not a WIRE.md topic (access rules)
  forbidden,           // access rule: not your id / not your topic
  bad_mesh_update,     // payload on <g>.mesh is not a MeshUpdateMessage
  rate_limited,        // token bucket empty
  slow_consumer,       // outbound queue full: connection closed
  max_connections,     // refused at the handshake (HTTP 503)
  abuse,               // connection closed after --max-strikes invalid messages
  count
};
const char* to_string(Drop drop);

class LatencyHistogram {
 public:
  static constexpr std::array<double, 14> kBounds{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
      0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1.0};
  void observe(std::chrono::nanoseconds latency) {
    const double seconds = std::chrono::duration<double>(latency).count();
    std::size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    ++buckets_[i];
    sum_ += seconds;
    ++count_;
  }
  void render(std::string& out, const char* name, const char* help) const;
  std::uint64_t count() const { return count_; }

 private:
  std::array<std::uint64_t, kBounds.size() + 1> buckets_{};
  double sum_ = 0;
  std::uint64_t count_ = 0;
};

struct Metrics {
  std::uint64_t connections = 0;        // open WebSocket connections (gauge)
  std::uint64_t connections_total = 0;  // accepted WebSocket connections
  std::uint64_t http_requests = 0;
  std::uint64_t groups = 0;             // groups with at least one member (gauge)
  std::uint64_t topics = 0;             // topics with at least one subscriber (gauge)
  std::uint64_t messages_in = 0;        // WebSocket messages received
  std::uint64_t bytes_in = 0;
  std::uint64_t messages_out = 0;       // welcome + topic messages handed to the kernel
  std::uint64_t bytes_out = 0;          // all bytes written on WebSocket connections
  std::uint64_t publishes = 0;          // accepted (publish, topic) pairs
  std::uint64_t departures = 0;         // departure notices published
  std::uint64_t snapshots = 0;          // snapshot messages sent to newcomers
  std::array<std::uint64_t, static_cast<std::size_t>(Drop::count)> drops{};
  LatencyHistogram fanout_latency;      // publish received -> delivery written
  // Set by the broker: (group, members) sorted by name, for GET /groups.
  std::function<std::vector<std::pair<std::string, std::size_t>>()> list_groups;

  void drop(Drop d) { ++drops[static_cast<std::size_t>(d)]; }
  std::uint64_t dropped(Drop d) const { return drops[static_cast<std::size_t>(d)]; }
  std::string render() const;
};

}  // namespace meshd
