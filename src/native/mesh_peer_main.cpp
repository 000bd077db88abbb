// mesh-peer: one native peer on the command line. Joins a group on meshd,
// prints JSON lines on stdout (first {"event":"welcome","id":ID}, then peer,
// link and message events), broadcasts every line read on stdin, and leaves
// gracefully on SIGINT/SIGTERM or at the end of input. See docs/native.md.
// --demo (used by mesh-demo, docs/dashboard.md): pings the group now and then,
// answers pings, obeys the dashboard's "ping"/"trace" commands and puts the
// results into its state reports.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <map>
#include <random>
#include <set>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>
#include <fstream>
#include <boost/json.hpp>

#include "p2pmesh/peer.hpp"

#ifndef P2PMESH_VERSION
#define P2PMESH_VERSION "unknown"
#endif

namespace json = boost::json;

namespace {

std::mutex out_mutex;

void emit(const json::object& object) {
  const std::string line = json::serialize(object);
  std::lock_guard lock(out_mutex);
  std::fwrite(line.data(), 1, line.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
}

void emit_event(const char* name, const char* key, std::uint32_t value) {
  json::object object;
  object["event"] = name;
  object[key] = value;
  emit(object);
}

// Strict UTF-8 check (no overlongs, no surrogates, <= U+10FFFF).
bool valid_utf8(const std::string& s) {
  std::size_t i = 0;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  while (i < s.size()) {
    const unsigned char c = p[i];
    int extra = 0;
    std::uint32_t cp = 0;
    if (c < 0x80) { ++i; continue; }
    if (c >= 0xC2 && c <= 0xDF) { extra = 1; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { extra = 2; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { extra = 3; cp = c & 0x07; }
    else return false;
    if (i + extra >= s.size()) return false;
    for (int k = 1; k <= extra; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3F);
    }
    if ((extra == 2 && cp < 0x800) || (extra == 3 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF)) {
      return false;
    }
    i += extra + 1;
  }
  return true;
}

std::string base64(const std::string& in) {
  static const char* table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const std::uint32_t n = (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8) | std::uint8_t(in[i + 2]);
    out += table[n >> 18];
    out += table[(n >> 12) & 63];
    out += table[(n >> 6) & 63];
    out += table[n & 63];
  }
  if (i + 1 == in.size()) {
    const std::uint32_t n = std::uint8_t(in[i]) << 16;
    out += table[n >> 18];
    out += table[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    const std::uint32_t n = (std::uint8_t(in[i]) << 16) | (std::uint8_t(in[i + 1]) << 8);
    out += table[n >> 18];
    out += table[(n >> 12) & 63];
    out += table[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

json::array to_array(const std::vector<p2pmesh::PeerId>& ids) {
  json::array out;
  for (const auto id : ids) out.push_back(id);
  return out;
}

json::object view_event(const p2pmesh::PeerSnapshot& s) {
  json::object object;
  object["event"] = "view";
  object["id"] = s.id;
  object["members"] = to_array(s.members);
  object["reachable"] = to_array(s.reachable);
  std::vector<p2pmesh::PeerId> open;
  for (const auto& link : s.links) {
    if (link.open) open.push_back(link.peer);
  }
  object["links"] = to_array(open);
  // The path of each open link: host, srflx, prflx, relay (or unknown).
  json::object candidates;
  for (const auto& link : s.links) {
    if (link.open) candidates[std::to_string(link.peer)] = p2pmesh::to_string(link.candidate_type);
  }
  object["candidates"] = std::move(candidates);
  return object;
}

// The demo protocol (app layer, JSON broadcasts):
//   {"type":"ping","ping":N,"origin":ID}   every peer answers with
//   {"type":"pong","ping":N,"to":ID}       (a broadcast; only `to` reads it)
//   {"type":"trace","trace":"T","origin":ID}
// Commands from the dashboard on <group>.<id>.command: {"cmd":"ping"} or
// {"cmd":"trace","trace":"T"}. The report's "app" member:
//   {"demo":true,"last_ping":{"ping","targets","responses","avg_rtt_ms",
//    "missing":[..]},"last_trace":{"trace","origin"}}
class DemoApp {
 public:
  using Clock = std::chrono::steady_clock;
  DemoApp(p2pmesh::Peer& peer, std::chrono::milliseconds ping_interval,
          std::chrono::milliseconds ping_timeout)
      : peer_(peer), interval_(ping_interval), timeout_(ping_timeout) {}

  // Returns true when the message belongs to the demo protocol.
  bool on_message(p2pmesh::PeerId from, const std::string& bytes) {
    if (bytes.empty() || bytes[0] != '{') return false;
    boost::system::error_code ec;
    const json::value value = json::parse(bytes, ec);
    if (ec || !value.is_object()) return false;
    const auto& object = value.as_object();
    const auto* type = object.if_contains("type");
    if (!type || !type->is_string()) return false;
    const std::string_view kind = type->as_string();
    if (kind == "ping") {
      const auto* ping = object.if_contains("ping");
      if (!ping || !ping->is_int64()) return true;
      json::object pong;
      pong["type"] = "pong";
      pong["ping"] = ping->as_int64();
      pong["to"] = from;
      peer_.broadcast(json::serialize(pong));
      return true;
    }
    if (kind == "pong") {
      const auto* ping = object.if_contains("ping");
      const auto* to = object.if_contains("to");
      if (!ping || !ping->is_int64() || !to || !to->is_int64()) return true;
      std::lock_guard lock(mutex_);
      if (static_cast<std::uint32_t>(to->as_int64()) != peer_.id() || !pending_ ||
          ping->as_int64() != pending_->number) {
        return true;
      }
      if (pending_->targets.count(from) && !pending_->rtt_ms.count(from)) {
        pending_->rtt_ms[from] =
            std::chrono::duration<double, std::milli>(Clock::now() - pending_->sent).count();
        if (pending_->rtt_ms.size() == pending_->targets.size()) finish_ping_locked();
      }
      return true;
    }
    if (kind == "trace") {
      const auto* trace = object.if_contains("trace");
      if (!trace || !trace->is_string()) return true;
      std::lock_guard lock(mutex_);
      last_trace_ = json::object{{"trace", trace->as_string()}, {"origin", from}};
      publish_locked();
      return true;
    }
    return false;
  }

  void on_command(p2pmesh::PeerId /*from*/, const std::string& body) {
    boost::system::error_code ec;
    const json::value value = json::parse(body, ec);
    if (ec || !value.is_object()) return;
    const auto* cmd = value.as_object().if_contains("cmd");
    if (!cmd || !cmd->is_string()) return;
    if (cmd->as_string() == "ping") {
      ping_now();
    } else if (cmd->as_string() == "trace") {
      std::string trace;
      const auto* t = value.as_object().if_contains("trace");
      if (t && t->is_string()) trace = std::string(t->as_string());
      if (trace.empty()) trace = std::to_string(peer_.id()) + "-" + std::to_string(++traces_);
      json::object message{{"type", "trace"}, {"trace", trace}, {"origin", peer_.id()}};
      if (!peer_.broadcast(json::serialize(message))) return;
      std::lock_guard lock(mutex_);
      last_trace_ = json::object{{"trace", trace}, {"origin", peer_.id()}};
      publish_locked();
    }
  }

  void ping_now() {
    const auto snapshot = peer_.snapshot();
    if (snapshot.state != p2pmesh::PeerSnapshot::State::joined) return;
    std::lock_guard lock(mutex_);
    if (pending_) finish_ping_locked();
    Pending ping;
    ping.number = ++pings_;
    ping.sent = Clock::now();
    ping.targets.insert(snapshot.members.begin(), snapshot.members.end());
    json::object message{{"type", "ping"}, {"ping", ping.number}, {"origin", snapshot.id}};
    pending_ = std::move(ping);
    if (pending_->targets.empty()) {
      finish_ping_locked();
      return;
    }
    peer_.broadcast(json::serialize(message));
  }

  // Pings every interval (first one after a random part of it) and closes
  // pings after the timeout, until stopped.
  void run() {
    std::mt19937 rng(std::random_device{}());
    auto next = Clock::now() + std::chrono::milliseconds(
                                   std::uniform_int_distribution<long>(500, interval_.count())(rng));
    std::unique_lock lock(mutex_);
    while (!done_) {
      cv_.wait_for(lock, std::chrono::milliseconds(100));
      if (done_) break;
      if (pending_ && Clock::now() - pending_->sent > timeout_) finish_ping_locked();
      if (Clock::now() >= next) {
        next = Clock::now() + interval_;
        lock.unlock();
        ping_now();
        lock.lock();
      }
    }
  }
  void stop() {
    std::lock_guard lock(mutex_);
    done_ = true;
    cv_.notify_all();
  }
  void start_reports() {
    std::lock_guard lock(mutex_);
    publish_locked();
  }

 private:
  struct Pending {
    std::int64_t number = 0;
    Clock::time_point sent;
    std::set<p2pmesh::PeerId> targets;
    std::map<p2pmesh::PeerId, double> rtt_ms;
  };

  void finish_ping_locked() {
    if (!pending_) return;
    double sum = 0;
    for (const auto& [peer, rtt] : pending_->rtt_ms) sum += rtt;
    json::array missing;
    for (const auto peer : pending_->targets)
      if (!pending_->rtt_ms.count(peer)) missing.push_back(peer);
    json::object result;
    result["ping"] = pending_->number;
    result["targets"] = pending_->targets.size();
    result["responses"] = pending_->rtt_ms.size();
    result["avg_rtt_ms"] =
        pending_->rtt_ms.empty() ? 0.0
                                 : std::round(sum / static_cast<double>(pending_->rtt_ms.size()) * 100) / 100;
    result["missing"] = std::move(missing);
    last_ping_ = std::move(result);
    pending_.reset();
    publish_locked();
  }

  void publish_locked() {
    json::object app{{"demo", true}, {"last_ping", last_ping_}, {"last_trace", last_trace_}};
    peer_.set_report_info(json::serialize(app));
  }

  p2pmesh::Peer& peer_;
  const std::chrono::milliseconds interval_;
  const std::chrono::milliseconds timeout_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::int64_t pings_ = 0;
  std::atomic<std::int64_t> traces_{0};
  std::optional<Pending> pending_;
  json::value last_ping_ = nullptr;
  json::value last_trace_ = nullptr;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "mesh-peer: one native p2pmesh peer. Prints JSON lines on stdout (first "
      "{\"event\":\"welcome\",\"id\":ID,\"public_key\":KEY}); broadcasts each stdin line; leaves on "
      "SIGINT/SIGTERM or end of input."};
  app.set_version_flag("--version", "mesh-peer " P2PMESH_VERSION);
  p2pmesh::PeerConfig config;
  // Defaults: PeerConfig's, which are the core's (p2pmesh/core/defaults.hpp).
  auto status_ms = static_cast<std::uint32_t>(config.status_interval.count());
  auto connect_timeout_ms = static_cast<std::uint32_t>(config.link_connect_timeout.count());
  auto member_timeout_ms = static_cast<std::uint32_t>(config.member_timeout.count());
  std::string tree = "blend";
  bool no_fallback = false, stay = false, print_view = false, unreliable = false;
  std::uint32_t view_interval_ms = 100;
  app.add_option("--url", config.server_urls,
                 "meshd WebSocket URL (repeat for fallbacks): ws://HOST:PORT/service, or "
                 "wss://HOST[:PORT]/service for TLS (port 443 by default; the certificate is "
                 "verified against the system's CAs and --ca-file)")
      ->required()
      ->envname("MESH_PEER_URL");
  app.add_option("--ca-file", config.ca_file,
                 "PEM file of extra CAs trusted for wss:// (a private deployment's CA), besides the "
                 "system's")
      ->envname("MESH_PEER_CA_FILE");
  std::string signing_key_file;
  app.add_option("--signing-key-file", signing_key_file,
                 "File holding the Ed25519 seed that signs our broadcasts: 64 hex digits (one "
                 "trailing newline ignored); default a fresh key per process. The welcome line "
                 "gives the public key (base64url, what a token's pk claim holds)")
      ->envname("MESH_PEER_SIGNING_KEY_FILE");
  std::string token_file;
  app.add_option("--token-file", token_file,
                 "File holding the JWT meshd --auth-key asks for (one trailing newline ignored); "
                 "a refused token ends mesh-peer with exit code 3")
      ->envname("MESH_PEER_TOKEN_FILE");
  app.add_option("--group", config.group, "Group (room) to join")->envname("MESH_PEER_GROUP")->capture_default_str();
  app.add_option("--target-connections", config.target_connections, "Links the peer tries to hold")
      ->envname("MESH_PEER_TARGET_CONNECTIONS")->check(CLI::Range(1u, 1000u))->capture_default_str();
  app.add_option("--max-connections", config.max_connections, "Offers accepted up to this many links")
      ->envname("MESH_PEER_MAX_CONNECTIONS")->check(CLI::Range(1u, 1000u))->capture_default_str();
  app.add_option("--status-interval-ms", status_ms, "Full status re-published every N ms")
      ->envname("MESH_PEER_STATUS_INTERVAL_MS")->check(CLI::Range(10u, 3600000u))->capture_default_str();
  app.add_option("--connect-timeout-ms", connect_timeout_ms, "A link not open after N ms is dropped")
      ->envname("MESH_PEER_CONNECT_TIMEOUT_MS")->check(CLI::Range(10u, 600000u))->capture_default_str();
  app.add_option("--member-timeout-ms", member_timeout_ms, "Silent members forgotten after N ms (0 = never)")
      ->envname("MESH_PEER_MEMBER_TIMEOUT_MS")->capture_default_str();
  app.add_option("--tree", tree, "Broadcast tree: unit, latency or blend")
      ->envname("MESH_PEER_TREE")->check(CLI::IsMember({"unit", "latency", "blend"}))->capture_default_str();
  app.add_option("--tree-alpha", config.tree_alpha, "blend tree: 0 = MST .. 1 = shortest paths")
      ->envname("MESH_PEER_TREE_ALPHA")->check(CLI::Range(0.0, 1.0))->capture_default_str();
  app.add_option("--tree-max-depth", config.tree_max_depth,
                 "latency/blend tree: no peer more than N hops from the sender unless the mesh is "
                 "that wide (-1 = no limit)")
      ->envname("MESH_PEER_TREE_MAX_DEPTH")->check(CLI::Range(-1, 1 << 20))->capture_default_str();
  std::vector<std::string> ice_server_urls;
  app.add_option("--ice-server", ice_server_urls,
                 "ICE server URL, e.g. stun:HOST:PORT (repeatable); replaces the STUN/TURN servers "
                 "meshd hands out (default: meshd's)")
      ->envname("MESH_PEER_ICE_SERVERS");
  app.add_flag("--unreliable", unreliable,
               "Broadcast stdin lines unreliably: unordered, never retransmitted, nothing waits "
               "for a lost one (docs/native.md)")
      ->envname("MESH_PEER_UNRELIABLE");
  app.add_flag("--no-fallback", no_fallback, "Never send packets through the server")->envname("MESH_PEER_NO_FALLBACK");
  app.add_flag("--loopback", config.loopback_only, "Use only 127.0.0.1 for WebRTC (tests, one machine)")
      ->envname("MESH_PEER_LOOPBACK");
  app.add_option("--max-link-queue-bytes", config.max_link_queue_bytes, "Send queue bound per link")
      ->envname("MESH_PEER_MAX_LINK_QUEUE_BYTES")->check(CLI::PositiveNumber)->capture_default_str();
  app.add_option("--seed", config.seed, "Seed of the mesh's random choices (0 = random)")->envname("MESH_PEER_SEED");
  app.add_flag("--require-signatures", config.require_signatures,
               "Group policy: drop unsigned and badly signed broadcasts (docs/security.md)")
      ->envname("MESH_PEER_REQUIRE_SIGNATURES");
  app.add_option("--max-receiver-tags", config.max_receiver_tags,
                 "Tag broadcasts for each member in groups of at most N other signing members, "
                 "checked instead of the signature (0 = never; docs/security.md)")
      ->envname("MESH_PEER_MAX_RECEIVER_TAGS")->check(CLI::Range(0u, 64u))->capture_default_str();
  app.add_flag("--stay", stay, "Stay in the group after the end of input (until a signal)")->envname("MESH_PEER_STAY");
  app.add_flag("--print-view", print_view,
               "Print {\"event\":\"view\",...} (members, reachable, links) whenever it changes")
      ->envname("MESH_PEER_PRINT_VIEW");
  std::uint32_t report_ms = 0, ping_ms = 5000;
  bool demo = false;
  app.add_option("--report-ms", report_ms, "Publish a state report on <group>.report every N ms (0 = off; --demo: 1000)")
      ->envname("MESH_PEER_REPORT_MS")->check(CLI::Range(0u, 3600000u));
  app.add_flag("--demo", demo,
               "Demo mode (mesh-demo): ping the group every --ping-ms, answer pings, obey the dashboard's "
               "commands, report the results")
      ->envname("MESH_PEER_DEMO");
  app.add_option("--ping-ms", ping_ms, "--demo: ping interval")
      ->envname("MESH_PEER_PING_MS")->check(CLI::Range(100u, 3600000u))->capture_default_str();
  app.add_option("--view-interval-ms", view_interval_ms, "How often the view is checked for --print-view")
      ->check(CLI::Range(10u, 60000u))->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (!signing_key_file.empty()) {
    std::ifstream in(signing_key_file);
    std::string hex;
    const auto nibble = [](char c) {
      return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                          : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    };
    if (in) std::getline(in, hex);
    if (!hex.empty() && hex.back() == '\r') hex.pop_back();
    const bool valid = hex.size() == 64 && std::all_of(hex.begin(), hex.end(),
                                                       [&](char c) { return nibble(c) >= 0; });
    if (!valid) {
      std::cerr << "mesh-peer: --signing-key-file: '" << signing_key_file
                << "' does not hold an Ed25519 seed of 64 hex digits\n";
      return 2;
    }
    for (std::size_t i = 0; i < hex.size(); i += 2) {
      config.signing_key.push_back(static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
    }
  }
  if (!token_file.empty()) {
    std::ifstream in(token_file);
    if (!in || !std::getline(in, config.token) || config.token.empty()) {
      std::cerr << "mesh-peer: --token-file: cannot read a token from '" << token_file << "'\n";
      return 2;
    }
    if (!config.token.empty() && config.token.back() == '\r') config.token.pop_back();
  }
  config.ice_servers.assign(ice_server_urls.begin(), ice_server_urls.end());
  config.status_interval = std::chrono::milliseconds(status_ms);
  config.link_connect_timeout = std::chrono::milliseconds(connect_timeout_ms);
  config.member_timeout = std::chrono::milliseconds(member_timeout_ms);
  config.fallback = !no_fallback;
  if (demo && report_ms == 0 && app.count("--report-ms") == 0) report_ms = 1000;
  config.report_interval = std::chrono::milliseconds(report_ms);
  config.observer_commands = demo;
  config.tree_mode = tree == "latency" ? p2pmesh::PeerConfig::TreeMode::latency
                     : tree == "blend" ? p2pmesh::PeerConfig::TreeMode::blend
                                       : p2pmesh::PeerConfig::TreeMode::unit;

  // Signals are taken by one thread with sigwait; every other thread blocks them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  p2pmesh::PeerCallbacks callbacks;
  std::unique_ptr<DemoApp> demo_app;  // set before start(), used by callbacks
  callbacks.on_received = [&demo_app](const p2pmesh::ReceivedMessage& message) {
    const p2pmesh::PeerId from = message.source;
    const std::string& bytes = message.bytes;
    if (demo_app && demo_app->on_message(from, bytes)) return;  // not printed
    json::object object;
    object["event"] = "message";
    object["from"] = from;
    object["seq"] = message.seq;
    object["reliable"] = message.reliable;
    object["verified"] = message.verified;
    if (valid_utf8(bytes)) {
      object["data"] = bytes;
    } else {
      // Binary payloads: `data` holds the bytes read as Latin-1 would be
      // misleading, so it is replaced by U+FFFD and the exact bytes go in
      // `base64`.
      object["data"] = "\xEF\xBF\xBD";
      object["base64"] = base64(bytes);
    }
    emit(object);
  };
  callbacks.on_gap = [](p2pmesh::PeerId from, std::uint64_t from_seq, std::uint64_t to_seq) {
    json::object object;
    object["event"] = "gap";
    object["from"] = from;
    object["from_seq"] = from_seq;
    object["to_seq"] = to_seq;
    emit(object);
  };
  callbacks.on_observer_command = [&demo_app](p2pmesh::PeerId from, const std::string& body) {
    if (demo_app) demo_app->on_command(from, body);
  };
  callbacks.on_peer_joined = [](p2pmesh::PeerId joined) { emit_event("peer_joined", "peer", joined); };
  callbacks.on_peer_left = [](p2pmesh::PeerId left) { emit_event("peer_left", "peer", left); };
  std::unique_ptr<p2pmesh::Peer> peer;
  // link_up names the link's path (the snapshot is safe to take in a callback).
  callbacks.on_link_up = [&peer](p2pmesh::PeerId up) {
    json::object object;
    object["event"] = "link_up";
    object["peer"] = up;
    p2pmesh::CandidateType type = p2pmesh::CandidateType::unknown;
    for (const auto& link : peer->snapshot().links) {
      if (link.peer == up && link.open) type = link.candidate_type;
    }
    object["candidate"] = p2pmesh::to_string(type);
    emit(object);
  };
  callbacks.on_link_down = [](p2pmesh::PeerId down) { emit_event("link_down", "peer", down); };
  // Failures it recovers from, with their reasons: for people (stderr), not
  // for the JSON lines on stdout.
  callbacks.on_error = [](const p2pmesh::PeerError& error) {
    std::string line = std::string("mesh-peer: ") + p2pmesh::to_string(error.kind);
    if (error.peer) line += " (peer " + std::to_string(error.peer) + ")";
    line += ": " + error.reason + "\n";
    std::fputs(line.c_str(), stderr);
    if (error.kind == p2pmesh::PeerError::Kind::token_rejected) {
      // A command-line peer has no other token to offer: done.
      json::object object;
      object["event"] = "rejected";
      object["reason"] = error.reason;
      emit(object);
      std::fflush(stdout);
      std::_Exit(3);
    }
  };
  std::string public_key;  // base64url, set before start()
  callbacks.on_state = [&public_key](p2pmesh::PeerSnapshot::State state, p2pmesh::PeerId id) {
    if (state == p2pmesh::PeerSnapshot::State::joined) {
      json::object object;
      object["event"] = "welcome";
      object["id"] = id;
      object["public_key"] = public_key;
      emit(object);
    } else if (state == p2pmesh::PeerSnapshot::State::reconnecting) {
      json::object object;
      object["event"] = "disconnected";
      emit(object);
    }
  };

  try {
    peer = std::make_unique<p2pmesh::Peer>(config, callbacks);
  } catch (const std::exception& e) {
    std::cerr << "mesh-peer: " << e.what() << "\n";
    return 2;
  }
  // base64url without padding (RFC 4648 section 5): a token's `pk` claim.
  public_key = base64(peer->public_key());
  for (char& c : public_key) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!public_key.empty() && public_key.back() == '=') public_key.pop_back();
  std::thread demo_thread;
  if (demo) {
    demo_app = std::make_unique<DemoApp>(*peer, std::chrono::milliseconds(ping_ms),
                                         std::chrono::milliseconds(std::max<std::uint32_t>(2000, ping_ms / 2)));
    demo_app->start_reports();
  }
  peer->start();
  if (demo) demo_thread = std::thread([&] { demo_app->run(); });

  std::mutex stop_mutex;
  auto leave = [&](const char* why) {
    std::lock_guard lock(stop_mutex);
    peer->stop();
    json::object object;
    object["event"] = "left";
    object["reason"] = why;
    // Every counter of the session that ended, by name (for_each_counter).
    json::object counters;
    p2pmesh::for_each_counter(peer->snapshot().counters,
                              [&](const char* name, std::uint64_t value) { counters[name] = value; });
    object["counters"] = std::move(counters);
    emit(object);
  };

  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    leave("signal");
    std::fflush(stdout);
    std::_Exit(0);  // main may be blocked reading stdin
  });
  signal_thread.detach();

  std::thread view_thread;
  std::atomic<bool> view_done{false};
  if (print_view) {
    view_thread = std::thread([&] {
      std::string last;
      while (!view_done) {
        std::this_thread::sleep_for(std::chrono::milliseconds(view_interval_ms));
        const auto s = peer->snapshot();
        if (s.state != p2pmesh::PeerSnapshot::State::joined) continue;
        const std::string line = json::serialize(view_event(s));
        if (line != last) {
          last = line;
          emit(view_event(s));
        }
      }
    });
  }

  std::string line;
  while (std::getline(std::cin, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.size() > p2pmesh::kMaxPayloadBytes) {
      std::cerr << "mesh-peer: a line of " << line.size() << " bytes is over the "
                << p2pmesh::kMaxPayloadBytes << "-byte limit of a broadcast: not sent\n";
      continue;
    }
    // Lines read before the welcome wait for it (up to 10 s).
    const p2pmesh::BroadcastOptions options{!unreliable};
    if (!peer->broadcast(line, options) && peer->wait_joined(std::chrono::seconds(10))) {
      peer->broadcast(line, options);
    }
  }
  if (stay) {
    for (;;) std::this_thread::sleep_for(std::chrono::hours(1));  // until a signal
  }
  view_done = true;
  if (view_thread.joinable()) view_thread.join();
  if (demo_app) demo_app->stop();
  if (demo_thread.joinable()) demo_thread.join();
  leave("end of input");
  return 0;
}
