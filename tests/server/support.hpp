#pragma once
// Test helpers for meshd: an in-process server on 127.0.0.1 port 0, a real
// WebSocket client (Boost.Beast, loopback only), a tiny HTTP client and
// builders for WIRE.md messages. Waits are bounded by generous timeouts that
// only catch hangs; ordering is established with WebSocket ping/pong (the
// server answers a ping only after it has processed every earlier message of
// that connection).

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "config.hpp"
#include "server.hpp"
#include "wire.hpp"

namespace meshd::test {

using namespace std::chrono_literals;
inline constexpr auto kTimeout = 5s;  // only catches hangs

// Defaults for tests: loopback, ephemeral port, no static files; event-loop
// threads from MESHD_TEST_THREADS (default 1).
Config test_config();

class TestServer {
 public:
  explicit TestServer(Config config = test_config());
  ~TestServer();
  std::uint16_t port() const { return port_; }
  // Starts a graceful stop without waiting.
  void request_stop() { server_->stop(); }
  // Graceful stop; returns true when run() returned within the timeout.
  bool stop(std::chrono::milliseconds timeout = kTimeout);

 private:
  std::unique_ptr<Server> server_;
  std::thread thread_;
  std::uint16_t port_ = 0;
  bool stopped_ = false;
};

struct HttpResult {
  int status = 0;
  std::string body;
};
// One request on a fresh connection; `target` is sent verbatim.
HttpResult http_get(std::uint16_t port, const std::string& target);
// The value of one sample of /metrics, e.g. "meshd_connections" or
// "meshd_drops_total{reason=\"text_frame\"}"; -1 when absent.
double metric(std::uint16_t port, const std::string& sample);
// Polls /metrics until `sample` equals `value` (for state that changes after
// the client side has already finished, e.g. a connection's cleanup).
bool wait_metric(std::uint16_t port, const std::string& sample, double value,
                 std::chrono::milliseconds timeout = kTimeout);
// Writes raw bytes on a fresh connection and returns what the server sent
// back before closing (or the timeout).
std::string raw_exchange(std::uint16_t port, const std::string& bytes);
inline double drops(std::uint16_t port, const std::string& reason) {
  return metric(port, "meshd_drops_total{reason=\"" + reason + "\"}");
}

struct CloseInfo {
  bool closed = false;
  int code = -1;  // WebSocket close code received, -1 when none
  std::string reason;
};

class WsClient {
 public:
  WsClient();
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  // Connects and completes the handshake; by default also reads the first
  // message and checks that it is a welcome (see id()).
  bool connect(std::uint16_t port, bool expect_welcome = true, std::size_t recv_buffer = 0);
  // Handshake result as text (for refused connections).
  const std::string& error() const;
  p2pmesh::PeerId id() const;

  void subscribe(const std::string& topic);
  void unsubscribe(const std::string& topic);
  void publish(const std::vector<std::string>& topics, const std::string& payload);
  void send_binary(const std::string& bytes);
  void send_text(const std::string& text);

  // Sends a ping and processes input until its pong: every message the
  // server produced for this client before the pong has then been read.
  bool barrier();
  // Next received ServerMessage (binary frames), waiting up to `timeout`.
  std::optional<p2pmesh::wire::ServerMessage> next(std::chrono::milliseconds timeout = kTimeout);
  // Messages already received (after a barrier), without waiting.
  std::vector<p2pmesh::wire::ServerMessage> drain();
  // Processes input (answering pings) for `duration`.
  void pump(std::chrono::milliseconds duration);
  // Waits until the server closes the connection.
  CloseInfo wait_closed(std::chrono::milliseconds timeout = kTimeout);
  // Closes the connection gracefully (close frame 1000).
  void close();
  // Drops the TCP connection without a close frame.
  void kill();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Restricted-mode convenience: a client that has joined group `group`
// (subscribed to <group>.mesh and its own offer/answer/candidate/fallback
// topics) and synchronised with a barrier.
std::unique_ptr<WsClient> join(std::uint16_t port, const std::string& group);
// The same subscriptions for a client already connected (a peer that
// publishes before it subscribes, like the reference browser peer).
bool join(WsClient& client, const std::string& group);

// WIRE.md builders and readers.
std::string status_update(p2pmesh::PeerId source, std::vector<p2pmesh::PeerId> links,
                          std::uint32_t id);
std::string link_update(p2pmesh::PeerId source, p2pmesh::PeerId peer, bool connected);
p2pmesh::wire::MeshUpdate mesh_update(const p2pmesh::wire::ServerMessage& message);
std::string topic(const std::string& group, p2pmesh::PeerId peer, const char* channel);

}  // namespace meshd::test
