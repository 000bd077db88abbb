#pragma once
// Every tunable of meshd with its default, in one place. main.cpp maps each
// field to a CLI11 flag and an environment variable (see docs/meshd.md).

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace meshd {

struct Config {
  std::string host = "0.0.0.0";
  std::uint16_t port = 8000;  // 0 = pick an ephemeral port
  std::string web_root;       // empty = no static files
  std::size_t threads = 1;    // event loops, one thread each
  // With several loops: a group's first members move to one loop (its
  // first member's), up to this many; later ones stay where they were
  // accepted. 0 = never move (every connection stays on its accept loop).
  std::size_t group_loop_limit = 256;

  // Access rules (WIRE.md topics only, own-id checks). false = generic pub/sub.
  bool access_rules = true;

  std::size_t max_frame_bytes = 64 * 1024;     // one WebSocket message
  std::size_t max_topic_bytes = 128;           // one topic string
  std::size_t max_topics_per_publish = 16;     // topics of one publish_request
  std::size_t max_subscriptions = 64;          // per connection
  double rate_per_second = 1000;               // messages per connection (0 = unlimited)
  double rate_burst = 2000;                    // token bucket size
  // Messages over the rate wait for their tokens (the connection is not read
  // meanwhile: TCP slows the sender down); a connection held back longer than
  // this without a break is closed (1008 "rate limit exceeded").
  std::chrono::milliseconds max_rate_delay{5000};
  std::size_t max_outbound_bytes = 1 << 20;    // queued per connection before it is a slow consumer
  std::size_t max_connections = 10000;         // WebSocket connections
  std::size_t max_http_connections = 1024;     // plain HTTP connections at once
  std::size_t max_connections_per_ip = 0;      // connections from one address (0 = no limit)
  std::size_t max_handshakes_per_ip = 0;       // of them still in their handshake (0 = no limit)
  // With every --max-http-connections slot taken, a new connection closes
  // the one that has been in its HTTP/TLS/WebSocket handshake (or between
  // two HTTP requests) the longest, if for at least this long: slow clients
  // from many addresses cannot lock new ones out. 0 = refuse the new one.
  std::chrono::milliseconds handshake_evict_after{1000};
  std::uint32_t max_strikes = 10;              // invalid messages before the connection is closed
  std::chrono::milliseconds idle_timeout{60000};      // no traffic -> ping at half, close at full
  std::chrono::milliseconds handshake_timeout{10000}; // WebSocket/HTTP handshake and close
  std::chrono::milliseconds shutdown_timeout{3000};   // graceful shutdown hard deadline

  // ICE servers handed out in every welcome (ice_credentials.hpp).
  std::vector<std::string> stun_urls;  // stun:HOST:PORT
  std::vector<std::string> turn_urls;  // turn:HOST:PORT[?transport=udp|tcp], turns:
  std::string turn_secret;             // coturn's static-auth-secret: never logged or sent
  std::chrono::seconds turn_ttl{3600}; // lifetime of a welcome's TURN credentials

  // TLS: both set = the port speaks https:// and wss:// only (PEM files: the
  // certificate chain, server certificate first, and its private key).
  std::string tls_cert;
  std::string tls_key;

  // Cluster over NATS (docs/cluster.md): empty = a single server, as always.
  // --auth-key: upgrades need a JWT verified with this key (auth.hpp); empty = open.
  std::string auth_key_file;
  std::vector<std::string> nats_urls;  // nats://HOST:PORT (tls:// for TLS)
  int node_id = -1;                    // 0..255, needed with nats_urls; -1 = none
  std::string nats_user;               // with nats_password, from --nats-user-file
  std::string nats_password;
  std::string nats_token;              // from --nats-token-file
  std::string nats_ca_file;            // --nats-ca-file: CAs for tls:// (default: the system's)

  // SIGINT/SIGTERM -> graceful stop; with TLS, SIGHUP -> reload the
  // certificate and key (the program sets it).
  bool handle_signals = false;
};

}  // namespace meshd
