// meshd: the p2pmesh signaling and discovery server. See docs/meshd.md.

#include <fmt/format.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <sys/resource.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>

#include "auth.hpp"
#include "cluster.hpp"
#include "config.hpp"
#include "ice_credentials.hpp"
#include "server.hpp"

#ifndef MESHD_BUILD_WEB_DIR
#define MESHD_BUILD_WEB_DIR ""
#endif
#ifndef P2PMESH_VERSION
#define P2PMESH_VERSION "unknown"
#endif

namespace {

namespace fs = std::filesystem;

// Default web root: next to an installed binary (<prefix>/share/p2pmesh/web),
// else the one its build assembled (<build>/web: the source tree's pages and
// the browser peer of the wasm build).
std::string default_web_root() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const fs::path installed = exe.parent_path() / ".." / "share" / "p2pmesh" / "web";
    if (fs::is_directory(installed, ec)) return fs::weakly_canonical(installed, ec).string();
  }
  const fs::path configured(MESHD_BUILD_WEB_DIR);
  if (!configured.empty() && fs::is_directory(configured, ec)) return configured.string();
  return {};
}

void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

// A credentials file: its whole content, one trailing \n or \r\n removed.
bool read_secret(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (!out.empty() && out.back() == '\n') out.pop_back();
  if (!out.empty() && out.back() == '\r') out.pop_back();
  return !out.empty();
}

// --nats and its companions; an error message, empty when fine.
std::string configure_cluster(meshd::Config& config, const std::string& user_file,
                              const std::string& token_file) {
  if (config.nats_urls.empty()) {
    if (!user_file.empty() || !token_file.empty() || !config.nats_ca_file.empty())
      return "--nats-user-file, --nats-token-file and --nats-ca-file need --nats";
    return {};
  }
  if (!config.nats_ca_file.empty()) {
    std::ifstream ca(config.nats_ca_file);
    if (!ca) return "--nats-ca-file: cannot read '" + config.nats_ca_file + "'";
    if (std::none_of(config.nats_urls.begin(), config.nats_urls.end(),
                     [](const std::string& url) { return url.rfind("tls://", 0) == 0; }))
      return "--nats-ca-file is for tls:// URLs; --nats has none";
  }
  if (config.node_id < 0) return "--nats needs --node-id (0..255, unique in the cluster)";
  for (const auto& url : config.nats_urls)
    if (url.rfind("nats://", 0) != 0 && url.rfind("tls://", 0) != 0)
      return "--nats URL '" + url + "': expected nats://HOST:PORT or tls://HOST:PORT";
  if (!user_file.empty()) {
    std::string line;
    if (!read_secret(user_file, line)) return "--nats-user-file: cannot read '" + user_file + "'";
    const auto colon = line.find(':');
    if (colon == std::string::npos || colon == 0)
      return "--nats-user-file: expected one line USER:PASSWORD";
    config.nats_user = line.substr(0, colon);
    config.nats_password = line.substr(colon + 1);
  }
  if (!token_file.empty() && !read_secret(token_file, config.nats_token))
    return "--nats-token-file: cannot read '" + token_file + "'";
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  meshd::Config config;
  CLI::App app{
      "meshd: signaling and discovery server of p2pmesh (WebSocket pub/sub on /service,\n"
      "group snapshots and departure notices, /healthz, /metrics, static web pages).\n"
      "Every option can also be set by the environment variable shown."};
  app.option_defaults()->always_capture_default();
  app.set_version_flag("--version", "meshd " P2PMESH_VERSION);

  std::string port_file;
  std::string log_level = "info";
  bool open = false;
  double idle_timeout_s = config.idle_timeout.count() / 1000.0;
  double handshake_timeout_s = config.handshake_timeout.count() / 1000.0;
  double handshake_evict_after_s = config.handshake_evict_after.count() / 1000.0;
  double shutdown_timeout_s = config.shutdown_timeout.count() / 1000.0;
  double max_rate_delay_s = config.max_rate_delay.count() / 1000.0;
  std::string web_root = "(auto)";
  std::string turn_secret_file;
  std::string turn_ttl = meshd::format_duration(config.turn_ttl);

  app.add_option("--host", config.host, "Address to listen on")->envname("MESHD_HOST");
  app.add_option("--port", config.port, "Port to listen on (0 = ephemeral)")
      ->envname("MESHD_PORT");
  app.add_option("--port-file", port_file, "Write the bound port to this file")
      ->envname("MESHD_PORT_FILE");
  app.add_option("--web-root", web_root,
                 "Directory of static files ('' = none; auto: <bin>/../share/p2pmesh/web, "
                 "else the build's web root, <build>/web)")
      ->envname("MESHD_WEB_ROOT");
  app.add_option("--threads", config.threads,
                 "Event-loop threads; a connection is accepted on one of them (round robin) and "
                 "moves at most once, to its group's loop (--group-loop-limit)")
      ->envname("MESHD_THREADS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{256}));
  app.add_option("--group-loop-limit", config.group_loop_limit,
                 "With --threads > 1: a group's members move to one loop (its first member's), "
                 "so its messages need no hand-over between threads, up to this many members; "
                 "later ones stay where they were accepted (a big group's writes spread over the "
                 "loops). 0 = connections never move")
      ->envname("MESHD_GROUP_LOOP_LIMIT")
      ->capture_default_str();
  app.add_flag("--open", open, "Turn the access rules off: generic pub/sub on any topic")
      ->envname("MESHD_OPEN");
  app.add_option("--max-frame-bytes", config.max_frame_bytes, "Largest WebSocket message")
      ->envname("MESHD_MAX_FRAME_BYTES")
      ->check(CLI::Range(std::size_t{16}, std::size_t{64} << 20));
  app.add_option("--max-topic-bytes", config.max_topic_bytes, "Longest topic string")
      ->envname("MESHD_MAX_TOPIC_BYTES")
      ->check(CLI::Range(std::size_t{1}, std::size_t{65536}));
  app.add_option("--max-topics-per-publish", config.max_topics_per_publish,
                 "Topics of one publish_request")
      ->envname("MESHD_MAX_TOPICS_PER_PUBLISH")
      ->check(CLI::Range(std::size_t{1}, std::size_t{65536}));
  app.add_option("--max-subscriptions", config.max_subscriptions, "Subscriptions per connection")
      ->envname("MESHD_MAX_SUBSCRIPTIONS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20));
  app.add_option("--rate", config.rate_per_second,
                 "Messages per second per connection, token bucket (0 = unlimited)")
      ->envname("MESHD_RATE")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--burst", config.rate_burst, "Token bucket size (messages)")
      ->envname("MESHD_BURST")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-rate-delay", max_rate_delay_s,
                 "Seconds a connection over the rate is held back (its messages delayed, not "
                 "dropped) before it is closed (1008 \"rate limit exceeded\")")
      ->envname("MESHD_MAX_RATE_DELAY")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-outbound-bytes", config.max_outbound_bytes,
                 "Bytes queued for one connection before it is closed as a slow consumer")
      ->envname("MESHD_MAX_OUTBOUND_BYTES")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 34));
  app.add_option("--max-connections", config.max_connections, "WebSocket connections")
      ->envname("MESHD_MAX_CONNECTIONS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10000000}));
  app.add_option("--max-connections-per-ip", config.max_connections_per_ip,
                 "Connections from one IP address (WebSocket and HTTP; 0 = no limit); more are "
                 "closed at accept, counted as drop per_ip_connections")
      ->envname("MESHD_MAX_CONNECTIONS_PER_IP");
  app.add_option("--max-handshakes-per-ip", config.max_handshakes_per_ip,
                 "Connections from one IP address still in their HTTP/TLS/WebSocket handshake "
                 "(0 = no limit): a slow client holds at most this many of the "
                 "--max-http-connections slots; counted as drop per_ip_handshakes")
      ->envname("MESHD_MAX_HANDSHAKES_PER_IP");
  app.add_option("--max-http-connections", config.max_http_connections,
                 "Plain HTTP connections (and WebSocket handshakes) at once")
      ->envname("MESHD_MAX_HTTP_CONNECTIONS")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}));
  app.add_option("--handshake-evict-after", handshake_evict_after_s,
                 "With every --max-http-connections slot taken, a new connection closes the one "
                 "in its handshake the longest, if for at least this many seconds (0 = refuse "
                 "the new one); counted as drop slow_handshake")
      ->envname("MESHD_HANDSHAKE_EVICT_AFTER")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-strikes", config.max_strikes,
                 "Invalid messages before a connection is closed (1008)")
      ->envname("MESHD_MAX_STRIKES")
      ->check(CLI::Range(1u, 1000000u));
  app.add_option("--idle-timeout", idle_timeout_s,
                 "Seconds without traffic before closing; a ping goes out at half (0 = off)")
      ->envname("MESHD_IDLE_TIMEOUT")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--handshake-timeout", handshake_timeout_s,
                 "Seconds for an HTTP request, a WebSocket handshake or close")
      ->envname("MESHD_HANDSHAKE_TIMEOUT")
      ->check(CLI::PositiveNumber);
  app.add_option("--shutdown-timeout", shutdown_timeout_s,
                 "Seconds a graceful shutdown waits for close handshakes")
      ->envname("MESHD_SHUTDOWN_TIMEOUT")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log-level", log_level, "trace, debug, info, warn, error, critical, off")
      ->envname("MESHD_LOG_LEVEL")
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
  // TLS: both files or neither (load_tls_context checks them after parsing).
  auto* tls_cert = app.add_option("--tls-cert", config.tls_cert,
                                  "PEM certificate chain, server certificate first: the port then "
                                  "speaks TLS only (https://, wss://); SIGHUP reloads it")
                       ->envname("MESHD_TLS_CERT");
  auto* tls_key = app.add_option("--tls-key", config.tls_key, "PEM private key of --tls-cert")
                      ->envname("MESHD_TLS_KEY");
  tls_cert->needs(tls_key);
  tls_key->needs(tls_cert);
  // ICE servers for the welcome (ice_credentials.cpp checks them after parsing).
  app.add_option("--stun", config.stun_urls,
                 "STUN server handed to every peer in the welcome, stun:HOST:PORT "
                 "(repeatable; the variable takes a comma-separated list)")
      ->envname("MESHD_STUN")
      ->delimiter(',');
  app.add_option("--turn", config.turn_urls,
                 "TURN server handed to every peer with fresh credentials (coturn REST API), "
                 "turn:HOST:PORT[?transport=udp|tcp] or turns: (repeatable; needs "
                 "--turn-secret-file)")
      ->envname("MESHD_TURN")
      ->delimiter(',');
  app.add_option("--turn-secret-file", turn_secret_file,
                 "File holding coturn's static-auth-secret (one trailing newline ignored)")
      ->envname("MESHD_TURN_SECRET_FILE");
  app.add_option("--turn-ttl", turn_ttl,
                 "Lifetime of the TURN credentials of a welcome: 1h, 30m, 90s, or seconds")
      ->envname("MESHD_TURN_TTL");

  app.add_option("--auth-key", config.auth_key_file,
                 "Require a JWT on every WebSocket upgrade (?token= or Authorization: Bearer), "
                 "verified with this file: an HS256 secret (>= 32 bytes) or a PEM public key (EC "
                 "P-256: ES256, RSA: RS256, Ed25519: EdDSA); its 'groups' claim bounds the "
                 "groups (docs/security.md)")
      ->envname("MESHD_AUTH_KEY");

  // Cluster over NATS (docs/cluster.md).
  std::string nats_user_file;
  std::string nats_token_file;
  app.add_option("--nats", config.nats_urls,
                 "Join a cluster of meshd nodes over NATS: nats://HOST:PORT (repeatable; the "
                 "variable takes a comma-separated list; tls:// for TLS); needs --node-id")
      ->envname("MESHD_NATS")
      ->delimiter(',');
  app.add_option("--node-id", config.node_id,
                 "This node's number in the cluster, 0..255, unique: the high 8 bits of its "
                 "peer ids")
      ->envname("MESHD_NODE_ID")
      ->check(CLI::Range(0, meshd::kMaxNodeId));
  app.add_option("--nats-user-file", nats_user_file,
                 "File holding USER:PASSWORD for NATS (one trailing newline ignored)")
      ->envname("MESHD_NATS_USER_FILE");
  app.add_option("--nats-token-file", nats_token_file, "File holding the NATS token")
      ->envname("MESHD_NATS_TOKEN_FILE");
  app.add_option("--nats-ca-file", config.nats_ca_file,
                 "PEM file of the CA(s) that signed the NATS servers' certificates, for tls:// "
                 "URLs (default: the system's CAs)")
      ->envname("MESHD_NATS_CA_FILE");

  CLI11_PARSE(app, argc, argv);
  // A key that cannot work stops meshd here; the algorithm is logged once
  // the logger writes to stderr (stdout's first line is the listen address).
  std::string token_algorithm;
  if (!config.auth_key_file.empty()) {
    try {
      token_algorithm = meshd::TokenVerifier::from_file(config.auth_key_file).algorithm();
    } catch (const std::exception& e) {
      std::cerr << "meshd: " << e.what() << '\n';
      return 2;
    }
  }
  if (const auto error = configure_cluster(config, nats_user_file, nats_token_file);
      !error.empty()) {
    std::cerr << "meshd: " << error << '\n';
    return 2;
  }
  if (const auto error = meshd::configure_ice(config, turn_secret_file, turn_ttl); !error.empty()) {
    std::cerr << "meshd: " << error << '\n';
    return 2;
  }

  auto logger = spdlog::stderr_color_mt("meshd");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(log_level));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  if (!token_algorithm.empty())
    spdlog::info("tokens required: {} (--auth-key {})", token_algorithm, config.auth_key_file);

  const auto ms = [](double seconds) {
    return std::chrono::milliseconds(static_cast<long long>(seconds * 1000.0));
  };
  config.access_rules = !open;
  config.idle_timeout = ms(idle_timeout_s);
  config.handshake_timeout = ms(handshake_timeout_s);
  config.handshake_evict_after = ms(handshake_evict_after_s);
  config.max_rate_delay = ms(max_rate_delay_s);
  config.shutdown_timeout = ms(shutdown_timeout_s);
  config.web_root = web_root == "(auto)" ? default_web_root() : web_root;
  config.handle_signals = true;
  raise_fd_limit();

  try {
    meshd::Server server(config);
    const auto port = server.listen();
    if (!port_file.empty()) {
      const std::string tmp = port_file + ".tmp";
      std::ofstream(tmp) << port << '\n';
      std::rename(tmp.c_str(), port_file.c_str());
    }
    std::cout << "meshd listening on " << config.host << ':' << port << std::endl;
    spdlog::info("listening on {}:{} ({} /service, access rules {}, web root '{}', {} threads)",
                 config.host, port, config.tls_cert.empty() ? "ws://" : "TLS only: wss://",
                 config.access_rules ? "on" : "off", config.web_root, config.threads);
    if (!config.stun_urls.empty() || !config.turn_urls.empty())
      spdlog::info("ICE servers in the welcome: STUN [{}], TURN [{}] (credentials valid {})",
                   fmt::join(config.stun_urls, " "), fmt::join(config.turn_urls, " "),
                   meshd::format_duration(config.turn_ttl));
    else if (!config.turn_secret.empty())
      spdlog::warn("--turn-secret-file without --turn: no TURN server is handed out");
    if (!config.nats_urls.empty())
      spdlog::info("cluster node {}: NATS {}", config.node_id, fmt::join(config.nats_urls, ","));
    server.run();
  } catch (const std::exception& e) {
    spdlog::critical("{}", e.what());
    return 1;
  }
  return 0;
}
