#pragma once
// Test helpers for meshd: an in-process server on 127.0.0.1 port 0, a real
// WebSocket client (Boost.Beast, loopback only), a tiny HTTP client and
// builders for WIRE.md messages. Waits are bounded by generous timeouts that
// only catch hangs; ordering is established with WebSocket ping/pong (the
// server answers a ping only after it has processed every earlier message of
// that connection).

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <jwt.h>

#include "config.hpp"
#include "server.hpp"
#include "wire.hpp"

namespace meshd::test {

using namespace std::chrono_literals;
inline constexpr auto kTimeout = 5s;  // only catches hangs

// What a TLS client trusts: meshd's certificate must chain to `ca_file` and
// name `host` (a DNS name, also sent as SNI, or an IP address).
struct TlsClient {
  std::string ca_file;
  std::string host = "localhost";
};

// A throwaway PKI from tests/support/make_test_pki.sh (a CA; a server
// certificate for localhost and 127.0.0.1 with the CA after it; its key) in
// a fresh temporary directory, removed with the object.
class TestPki {
 public:
  TestPki();
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;
  bool ok() const { return ok_; }
  const std::string& dir() const { return dir_; }
  std::string ca() const { return dir_ + "/ca.pem"; }
  std::string cert() const { return dir_ + "/server.pem"; }
  std::string key() const { return dir_ + "/server.key"; }
  TlsClient client(std::string host = "localhost") const { return {ca(), std::move(host)}; }

 private:
  std::string dir_;
  bool ok_ = false;
};

// With MESHD_TEST_TLS set (ctest's tls.* runs): this process's PKI, made at
// the first call, else null. Then test_config() turns TLS on, and
// WsClient::connect, http_get and raw_exchange speak TLS and verify it: the
// same tests, over TLS.
const TestPki* env_tls_pki();

// Defaults for tests: loopback, ephemeral port, no static files; event-loop
// threads from MESHD_TEST_THREADS (default 1); TLS with MESHD_TEST_TLS.
Config test_config();

// Writes `text` to `dir`/`name`; its path, or "" if it cannot be written.
std::string write_file(const std::string& dir, const std::string& name, const std::string& text);

// A JWT signed with `alg` and `key` (a secret or a private key PEM; none for
// JWT_ALG_NONE), with the claims `claims_json` (a JSON object), by libjwt.
std::string make_token(jwt_alg_t alg, const std::string& key, const std::string& claims_json);

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

// The real meshd program as a child process: stdout on a pipe (its first
// line gives the port), stderr to the test's stderr or, with
// capture_stderr, to a file (error_output()).
class MeshdProgram {
 public:
  MeshdProgram(const std::string& binary, std::vector<std::string> args,
               bool capture_stderr = false);
  ~MeshdProgram();  // kills it if it still runs
  MeshdProgram(const MeshdProgram&) = delete;
  MeshdProgram& operator=(const MeshdProgram&) = delete;
  // The first stdout line (blocks until meshd prints it or exits).
  std::string first_line();
  std::string all_output();
  void signal(int number);
  // Exit status, -1 when killed by a signal; -2 when it still ran after
  // `timeout` (it is killed then).
  int wait_exit(std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // What it wrote on stderr (capture_stderr).
  std::string error_output() const;
  int pid() const { return pid_; }

 private:
  int pid_ = -1;
  std::FILE* out_ = nullptr;
  std::string stderr_file_;
  bool reaped_ = false;
};
// The port of "meshd listening on 127.0.0.1:PORT"; 0 for any other line.
std::uint16_t port_from(const std::string& line);

struct HttpResult {
  int status = 0;
  std::string body;
};
// One request on a fresh connection; `target` is sent verbatim.
HttpResult http_get(std::uint16_t port, const std::string& target);
// The same over TLS; status 0 when the handshake fails.
HttpResult https_get(std::uint16_t port, const std::string& target, const TlsClient& tls);
// The value of one sample of /metrics, e.g. "meshd_connections" or
// "meshd_drops_total{reason=\"text_frame\"}"; -1 when absent.
double metric(std::uint16_t port, const std::string& sample);
double metric(std::uint16_t port, const std::string& sample, const TlsClient& tls);
// Polls /metrics until `sample` equals `value` (for state that changes after
// the client side has already finished, e.g. a connection's cleanup).
bool wait_metric(std::uint16_t port, const std::string& sample, double value,
                 std::chrono::milliseconds timeout = kTimeout);
bool wait_metric(std::uint16_t port, const std::string& sample, double value,
                 const TlsClient& tls, std::chrono::milliseconds timeout = kTimeout);
// Writes raw bytes on a fresh connection and returns what the server sent
// back before closing (or the timeout).
std::string raw_exchange(std::uint16_t port, const std::string& bytes);
// A plain TCP connection to 127.0.0.1:port (a descriptor, for byte-level
// tests) whose reads give up after 5 s; -1 on failure.
int connect_tcp(std::uint16_t port);
// A TCP connection from `from` (a loopback address such as 127.0.0.2) to
// 127.0.0.1:port; the descriptor, -1 on failure.
int connect_from(const char* from, std::uint16_t port);
// Raises this process's soft RLIMIT_NOFILE to the hard limit, and the hard
// one to `at_least` when allowed (root); the soft limit reached.
std::size_t raise_fd_limit(std::size_t at_least = 0);
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
  // The same over TLS (wss://), verifying meshd's certificate.
  bool connect_tls(std::uint16_t port, const TlsClient& tls, bool expect_welcome = true);
  // The upgrade request of the next connect: target (default "/service",
  // e.g. "/service?token=...") and an Authorization header value.
  void set_request(std::string target, std::string authorization = "");
  // Handshake result as text (for refused connections).
  const std::string& error() const;
  p2pmesh::PeerId id() const;
  // The bytes of the last message next() returned (the welcome after connect).
  const std::string& last_bytes() const;

  // batch_ms (ours): <group>.mesh messages may come that late, in batches.
  void subscribe(const std::string& topic, std::uint32_t batch_ms = 0);
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
  // The server closed the connection (seen while this client ran).
  bool closed() const;
  // Waits until the server closes the connection.
  CloseInfo wait_closed(std::chrono::milliseconds timeout = kTimeout);
  // Closes the connection gracefully (close frame 1000).
  void close();
  // Drops the TCP connection without a close frame.
  void kill();

 private:
  bool open(std::uint16_t port, bool expect_welcome, std::size_t recv_buffer,
            const TlsClient* tls);
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
