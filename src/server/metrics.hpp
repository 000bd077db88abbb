#pragma once
// meshd's counters and the fan-out latency histogram, rendered in the
// Prometheus text exposition format on /metrics.
//
// Threads: every event loop has its own LoopMetrics (written by that loop
// only, so the hot counters never bounce between cores); /metrics, on any
// thread, sums them. Counters are relaxed atomics: readers see a recent
// value, never a torn one. The broker's gauges are written under its lock.

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth.hpp"  // AuthFailure

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
  per_ip_connections,  // refused at accept: --max-connections-per-ip
  per_ip_handshakes,   // refused at accept: --max-handshakes-per-ip
  handshake_timeout,   // an HTTP request or TLS handshake not done within --handshake-timeout
  slow_handshake,      // closed for a new connection, all HTTP slots taken: --handshake-evict-after
  abuse,               // connection closed after --max-strikes invalid messages
  cluster_undecodable, // a NATS message that is not a node's envelope (docs/cluster.md)
  cluster_bad_topic,   // a NATS message whose topic is invalid or not its subject's
  cluster_too_large,   // a NATS message whose body is above --max-frame-bytes
  wrong_key,           // --auth-key: a status whose public key is not the token's pk claim
  protocol_error,      // a frame RFC 6455 forbids: connection closed, 1002
  invalid_utf8,        // a text message or close reason that is not UTF-8: closed, 1007
  count
};
const char* to_string(Drop drop);

// A counter (or a gauge, through wrap-around subtraction) readable from any thread.
class Counter {
 public:
  void add(std::uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  void sub(std::uint64_t n = 1) { value_.fetch_sub(n, std::memory_order_relaxed); }
  void set(std::uint64_t n) { value_.store(n, std::memory_order_relaxed); }
  std::uint64_t get() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class LatencyHistogram {
 public:
  static constexpr std::array<double, 14> kBounds{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
      0.01,    0.025,  0.05,    0.1,    0.25,  0.5,    1.0};
  static constexpr std::size_t kBuckets = kBounds.size() + 1;  // the last one is +Inf

  void observe(std::chrono::nanoseconds latency) {
    const double seconds = std::chrono::duration<double>(latency).count();
    std::size_t i = 0;
    while (i < kBounds.size() && seconds > kBounds[i]) ++i;
    buckets_[i].add();
    sum_ns_.add(static_cast<std::uint64_t>(latency.count() > 0 ? latency.count() : 0));
  }
  std::uint64_t bucket(std::size_t i) const { return buckets_[i].get(); }
  std::uint64_t sum_ns() const { return sum_ns_.get(); }

 private:
  std::array<Counter, kBuckets> buckets_{};
  Counter sum_ns_;
};

// The counters of one event loop. Aligned so two loops never share a cache line.
struct alignas(64) LoopMetrics {
  Counter connections;        // open WebSocket connections (gauge)
  Counter connections_total;  // accepted WebSocket connections
  Counter http_requests;
  Counter messages_in;        // WebSocket messages received
  Counter bytes_in;
  Counter messages_out;       // welcome + topic messages handed to the kernel
  Counter bytes_out;          // all bytes written on WebSocket connections
  Counter publishes;          // accepted (publish, topic) pairs
  Counter departures;         // departure notices published
  Counter snapshots;          // snapshot messages sent to newcomers
  Counter turn_credentials;   // welcomes with TURN credentials (--turn)
  Counter tls_handshake_failures;  // TLS handshakes failed or timed out (--tls-cert)
  Counter moves_in;           // connections moved onto this loop (their group's)
  // --auth-key: upgrades refused with 401, by AuthFailure.
  std::array<Counter, kAuthFailureCount> auth_failures{};
  std::array<Counter, static_cast<std::size_t>(Drop::count)> drops{};
  LatencyHistogram fanout_latency;  // publish received -> delivery written

  void drop(Drop d) { drops[static_cast<std::size_t>(d)].add(); }
};

class Metrics {
 public:
  explicit Metrics(std::size_t loops);

  LoopMetrics& loop(std::size_t index) { return *loops_[index]; }

  Counter groups;  // groups with at least one member (gauge, broker lock)
  Counter topics;  // topics with at least one subscriber (gauge, broker lock)
  // TLS (rendered only when `tls` is set): certificate reloads on SIGHUP.
  bool tls = false;
  Counter tls_reloads_ok;
  Counter tls_reloads_error;
  // Tokens (rendered only when `auth` is set, with --auth-key).
  bool auth = false;
  // Cluster (rendered only when `cluster` is set, with --nats).
  bool cluster = false;
  Counter nats_connected;        // 1 while connected to a NATS server
  Counter cluster_nodes;         // nodes heard from within the dead-node delay, this one included
  Counter cluster_in;            // envelopes received from other nodes
  Counter cluster_out;           // envelopes published to NATS
  Counter cluster_send_failures; // publishes cnats refused (not connected, buffer full)
  Counter cluster_departures;    // departure notices for the members of dead nodes
  // Set by the broker: (group, members) sorted by name, for GET /groups.
  // Thread-safe (takes the broker's lock).
  std::function<std::vector<std::pair<std::string, std::size_t>>()> list_groups;
  // Set by the broker: the members of one group, (id, the `sub` claim of
  // its token, empty without one) sorted by id, for GET /groups/<group>.
  std::function<std::vector<std::pair<std::uint32_t, std::string>>(std::string_view group)>
      list_members;

  // Sums over the event loops.
  std::uint64_t connections() const;
  std::string render() const;

 private:
  std::vector<std::unique_ptr<LoopMetrics>> loops_;
};

}  // namespace meshd
