// Embind bindings of the sans-IO core for the browser (WebAssembly).
//
// `MeshPeer` wraps one MeshNode. JavaScript calls its inputs with `now` in
// microseconds (performance.now() * 1000, as a Number) and gets back the
// Actions the node produced, as an array of plain JS objects:
//
//   {type:'send', bytes:Uint8Array}           one WebSocket binary frame (an
//                                             encoded ClientMessage)
//   {type:'open', link, peer}                 create a connection as initiator
//   {type:'accept', link, peer, offer}        answer `offer` (JSON text)
//   {type:'answer', link, answer}             apply the remote answer (JSON)
//   {type:'candidate', link, candidate}       add a remote candidate (JSON)
//   {type:'close', link}
//   {type:'data', link, bytes:Uint8Array}     send on the link's data channel
//   {type:'measure-rtt', link}                report the transport's RTT (getStats)
//                                             with linkRtt()
//   {type:'deliver', from, payload:Uint8Array, seq, reliable, verified}
//   {type:'sign', seq, message:Uint8Array}    sign with our Ed25519 key, answer
//                                             with broadcastSigned(now, seq, sig)
//   {type:'verify', ticket, publicKey, message, signature}  (Uint8Arrays) check,
//                                             answer with signatureChecked()
//   {type:'peer-joined', peer} / {type:'peer-left', peer}
//   {type:'link-up', peer} / {type:'link-down', peer}
//   {type:'observer-command', from, body}     a dashboard's command (opt-in)
//   {type:'wake', at}                         call tick() at `at` µs (Infinity: never)
//
// The core decodes the WebSocket protocol's ServerMessage frames and encodes
// its ClientMessage frames (server_protocol.hpp), so JavaScript never touches
// protobuf. Link ids are Numbers (they stay far below 2^53).

#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "link_send_policy.hpp"
#include "mesh_node.hpp"
#include "server_protocol.hpp"
#include "topics.hpp"
#include "wire.hpp"

namespace {

using emscripten::val;
using namespace p2pmesh;

TimeUs to_time(double now_us) {
  if (!std::isfinite(now_us) || now_us < 0) return 0;
  if (now_us >= 9.0e18) return kNever;
  return static_cast<TimeUs>(now_us);
}

// A fresh Uint8Array holding a copy of `bytes` (not a view into the heap,
// which memory growth would invalidate).
val to_bytes(const std::string& bytes) {
  const val view(emscripten::typed_memory_view(bytes.size(),
                                               reinterpret_cast<const std::uint8_t*>(bytes.data())));
  return val::global("Uint8Array").new_(view);
}

template <class T>
val to_array(const std::vector<T>& items) {
  val out = val::array();
  for (std::size_t i = 0; i < items.size(); ++i) out.set(i, val(items[i]));
  return out;
}

val typed(const char* type) {
  val object = val::object();
  object.set("type", val(type));
  return object;
}

val link_number(LinkId link) { return val(static_cast<double>(link)); }

// Reads an optional numeric member of a JS options object.
template <class T>
void read_number(const val& options, const char* name, T& out) {
  const val value = options[name];
  if (value.isNumber()) out = static_cast<T>(value.as<double>());
}

void read_ms(const val& options, const char* name, TimeUs& out) {
  const val value = options[name];
  if (value.isNumber()) out = static_cast<TimeUs>(value.as<double>() * kMillisecond);
}

void read_bool(const val& options, const char* name, bool& out) {
  const val value = options[name];
  if (!value.isUndefined() && !value.isNull()) out = value.as<bool>();
}

MeshConfig config_from(const val& options) {
  MeshConfig config;
  config.kind = "browser";
  if (options.isUndefined() || options.isNull()) return config;
  if (options["group"].isString()) config.group = options["group"].as<std::string>();
  read_number(options, "targetConnections", config.target_connections);
  read_number(options, "maxConnections", config.max_connections);
  read_ms(options, "linkTimeoutMs", config.link_connect_timeout);
  read_ms(options, "statusIntervalMs", config.status_interval);
  read_ms(options, "memberTimeoutMs", config.member_timeout);
  read_ms(options, "candidateBackoffMs", config.candidate_backoff);
  read_ms(options, "pingIntervalMs", config.ping_interval);
  read_ms(options, "deadLinkTimeoutMs", config.dead_link_timeout);
  // Reliable delivery: how long messages are kept for others to pull, and
  // how long a hole is waited for before it is a gap.
  read_ms(options, "historyAgeMs", config.history_age);
  // State reports on `<group>.report` for observers (dashboard); 0 = off.
  read_ms(options, "reportIntervalMs", config.report_interval);
  // Commands from observers on `<group>.<id>.command` (the 'command' event).
  read_bool(options, "observerCommands", config.observer_commands);
  read_bool(options, "pruneRoutes", config.prune_routes);
  read_bool(options, "fallback", config.fallback);
  read_number(options, "maxPacketBytes", config.max_packet_bytes);
  const val tree_mode = options["treeMode"];
  if (tree_mode.isString()) {
    const std::string mode = tree_mode.as<std::string>();
    if (mode == "unit") config.tree.mode = TreeMode::unit;
    if (mode == "latency") config.tree.mode = TreeMode::latency;
    if (mode == "blend") config.tree.mode = TreeMode::blend;
  }
  read_number(options, "treeAlpha", config.tree.alpha);
  double max_depth = -1;  // mesh.js checks it is a non-negative integer
  read_number(options, "treeMaxDepth", max_depth);
  if (max_depth >= 0) config.tree.max_depth = static_cast<std::uint32_t>(std::min(max_depth, 1e6));
  // A seed is a Number below 2^53 (the JS layer draws one from crypto).
  read_number(options, "seed", config.seed);
  // Signed broadcasts: mesh.js holds the WebCrypto key pair and gives the
  // raw public key (Uint8Array, 32 bytes); it signs and verifies for the core.
  if (!options["publicKey"].isUndefined() && !options["publicKey"].isNull()) {
    config.public_key = options["publicKey"].as<std::string>();
  }
  read_bool(options, "requireSignatures", config.require_signatures);
  // WebCrypto has no Ed25519-to-X25519 conversion: a browser peer makes no
  // receiver tags (it checks signatures, and its own are checked so).
  config.max_receiver_tags = 0;
  return config;
}

// snake_case (the core's names) to camelCase (JavaScript's).
std::string camel_case(std::string_view name) {
  std::string out;
  bool upper = false;
  for (const char c : name) {
    if (c == '_') {
      upper = true;
    } else {
      out += upper && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
      upper = false;
    }
  }
  return out;
}

// MeshConfig::validate names MeshConfig's fields: in JS, Mesh.join's options.
std::string with_option_names(std::string message) {
  static const std::pair<const char*, const char*> kNames[] = {
      {"target_connections", "targetConnections"}, {"max_connections", "maxConnections"},
      {"link_connect_timeout", "linkTimeoutMs"},   {"status_interval", "statusIntervalMs"},
      {"ping_interval", "pingIntervalMs"},         {"dead_link_timeout", "deadLinkTimeoutMs"},
      {"member_timeout", "memberTimeoutMs"},       {"candidate_backoff", "candidateBackoffMs"},
      {"report_interval", "reportIntervalMs"},     {"max_packet_bytes", "maxPacketBytes"},
      {"tree.alpha", "treeAlpha"},                 {"tree.max_depth", "treeMaxDepth"},
      {"require_signatures", "requireSignatures"}, {"public_key", "publicKey"},
      {"history_age", "historyAgeMs"},
  };
  for (const auto& [cpp, js] : kNames) {
    for (std::size_t at = message.find(cpp); at != std::string::npos; at = message.find(cpp, at)) {
      message.replace(at, std::string_view(cpp).size(), js);
      at += std::string_view(js).size();
    }
  }
  return message;
}

// MeshConfig's defaults under Mesh.join's option names (the only copy).
val default_options() {
  const MeshConfig config;
  val out = val::object();
  out.set("group", val(config.group));
  out.set("targetConnections", val(config.target_connections));
  out.set("maxConnections", val(config.max_connections));
  const auto ms = [](TimeUs t) { return val(static_cast<double>(t) / kMillisecond); };
  out.set("linkTimeoutMs", ms(config.link_connect_timeout));
  out.set("statusIntervalMs", ms(config.status_interval));
  out.set("memberTimeoutMs", ms(config.member_timeout));
  out.set("candidateBackoffMs", ms(config.candidate_backoff));
  out.set("pingIntervalMs", ms(config.ping_interval));
  out.set("deadLinkTimeoutMs", ms(config.dead_link_timeout));
  out.set("historyAgeMs", ms(config.history_age));
  out.set("reportIntervalMs", ms(config.report_interval));
  out.set("observerCommands", val(config.observer_commands));
  out.set("pruneRoutes", val(config.prune_routes));
  out.set("fallback", val(config.fallback));
  out.set("requireSignatures", val(config.require_signatures));
  out.set("maxPacketBytes", val(config.max_packet_bytes));
  out.set("maxPayloadBytes", val(config.max_payload_bytes));
  out.set("treeMode", val(config.tree.mode == TreeMode::unit      ? "unit"
                          : config.tree.mode == TreeMode::latency ? "latency"
                                                                  : "blend"));
  out.set("treeAlpha", val(config.tree.alpha));
  out.set("treeMaxDepth", val(config.tree.max_depth));
  out.set("reconnectInitialMs", val(static_cast<double>(defaults::kReconnectInitialMs)));
  out.set("reconnectMaxMs", val(static_cast<double>(defaults::kReconnectMaxMs)));
  return out;
}

class MeshPeer {
 public:
  explicit MeshPeer(val options) : node_(config_from(options)) {}

  // ---- inputs; each returns the actions it produced ----
  // One binary WebSocket frame from the server (an encoded ServerMessage).
  val server_frame(double now, const std::string& bytes) {
    if (!node_.on_server_frame(to_time(now), bytes)) ++malformed_frames_;
    return actions();
  }
  // Reconnects (MeshNode::delivery_positions): [[source, next seq], ...],
  // read before serverLost and handed to the next MeshPeer of the page.
  val delivery_positions() const {
    val out = val::array();
    for (const auto& [source, next] : node_.delivery_positions()) {
      val pair = val::array();
      pair.call<void>("push", val(source));
      pair.call<void>("push", val(static_cast<double>(next)));
      out.call<void>("push", pair);
    }
    return out;
  }
  void resume_delivery(val positions) {
    std::vector<std::pair<PeerId, std::uint64_t>> list;
    const auto count = positions["length"].as<unsigned>();
    for (unsigned i = 0; i < count; ++i) {
      list.emplace_back(positions[i][0].as<unsigned>(),
                        static_cast<std::uint64_t>(positions[i][1].as<double>()));
    }
    node_.resume_delivery(list);
  }
  // The WebSocket closed: every link closes, every link and member is gone.
  val server_lost(double now) {
    node_.on_server_lost(to_time(now));
    return actions();
  }
  val local_description(double now, double link, const std::string& json) {
    node_.on_local_description(to_time(now), static_cast<LinkId>(link), json);
    return actions();
  }
  val local_candidate(double now, double link, const std::string& json) {
    node_.on_local_candidate(to_time(now), static_cast<LinkId>(link), json);
    return actions();
  }
  val link_open(double now, double link) {
    node_.on_link_open(to_time(now), static_cast<LinkId>(link));
    return actions();
  }
  val link_closed(double now, double link) {
    node_.on_link_closed(to_time(now), static_cast<LinkId>(link));
    return actions();
  }
  val link_data(double now, double link, const std::string& bytes) {
    node_.on_link_data(to_time(now), static_cast<LinkId>(link), bytes);
    return actions();
  }
  val link_rtt(double now, double link, double rtt_us) {
    const double clamped = std::fmin(std::fmax(rtt_us, 0.0), 4.0e9);
    node_.on_link_rtt(to_time(now), static_cast<LinkId>(link),
                      static_cast<std::uint32_t>(clamped));
    return actions();
  }
  // `type`: the selected pair's path ("host", "srflx", "prflx", "relay").
  val link_candidate_type(double now, double link, const std::string& type) {
    node_.on_link_candidate_type(to_time(now), static_cast<LinkId>(link),
                                 candidate_type_from(type).value_or(CandidateType::unknown));
    return actions();
  }
  val relay_allocation_failed(double now) {
    node_.on_relay_allocation_failed(to_time(now));
    return actions();
  }
  val tick(double now) {
    node_.on_tick(to_time(now));
    return actions();
  }
  // Returns {seq, actions}; seq is 0 when not joined (or after leave).
  // `reliable` false: an unreliable broadcast (numbered apart).
  val broadcast(double now, const std::string& payload, bool reliable) {
    const std::uint64_t seq = node_.broadcast(
        to_time(now), payload, reliable ? DeliveryMode::reliable : DeliveryMode::unreliable);
    val out = val::object();
    out.set("seq", val(static_cast<double>(seq)));
    out.set("actions", actions());
    return out;
  }
  val leave(double now) {
    node_.leave(to_time(now));
    return actions();
  }
  // Signed broadcasts: the answers to 'sign' and 'verify' actions.
  val broadcast_signed(double now, double id, const std::string& signature) {
    node_.on_broadcast_signed(to_time(now), static_cast<std::uint64_t>(id), signature);
    return actions();
  }
  val signature_checked(double now, double ticket, bool valid) {
    node_.on_signature_checked(to_time(now), static_cast<std::uint64_t>(ticket), valid);
    return actions();
  }
  bool requires_signatures() const { return node_.requires_signatures(); }

  // Extra JSON object the page wants in its state reports ("" = none).
  void set_report_app_json(const std::string& json) { node_.set_report_app_json(json); }

  // ---- introspection ----
  double id() const { return node_.id(); }
  std::string group() const { return node_.config().group; }

  // {self, peers:[ids sorted], links:[[a,b],...] (a<b), adjacency:{id:[ids]}}
  val view() const {
    const MeshView& view = node_.membership().view();
    val out = val::object();
    out.set("self", val(node_.id()));
    const std::vector<PeerId> peers = view.peers();
    out.set("peers", to_array(peers));
    val links = val::array();
    val adjacency = val::object();
    std::size_t count = 0;
    for (const PeerId peer : peers) {
      std::vector<PeerId> neighbours;
      for (const Neighbour& n : view.neighbours(peer)) {
        neighbours.push_back(n.peer);
        if (peer < n.peer) {
          val pair = val::array();
          pair.set(0, val(peer));
          pair.set(1, val(n.peer));
          pair.set(2, val(n.weight_us));
          links.set(count++, pair);
        }
      }
      std::sort(neighbours.begin(), neighbours.end());
      adjacency.set(std::to_string(peer), to_array(neighbours));
    }
    out.set("links", links);
    out.set("adjacency", adjacency);
    return out;
  }

  // The local links: [{link, peer, initiated, open, rttUs, candidateType}]
  val links() const {
    val out = val::array();
    std::size_t i = 0;
    for (const Link& link : node_.links().all()) {
      val entry = val::object();
      entry.set("link", link_number(link.id));
      entry.set("peer", val(link.peer));
      entry.set("initiated", val(link.initiated));
      entry.set("open", val(link.state == LinkState::open));
      entry.set("rttUs", val(link.rtt_us));
      entry.set("candidateType", val(std::string(to_string(link.candidate_type))));
      out.set(i++, entry);
    }
    return out;
  }

  // The broadcast tree from this peer: {root, edges:[[parent, child],...]}.
  val tree() {
    const BroadcastTree& tree = node_.tree();
    val out = val::object();
    out.set("root", val(tree.root));
    val edges = val::array();
    std::size_t i = 0;
    for (const wire::Edge& edge : tree.edges) {
      val pair = val::array();
      pair.set(0, val(edge.u));
      pair.set(1, val(edge.v));
      edges.set(i++, pair);
    }
    out.set("edges", edges);
    return out;
  }

  // The driver's malformedFrames, then every counter of the core
  // (for_each_counter), in camelCase.
  val counters() const {
    val out = val::object();
    out.set("malformedFrames", val(static_cast<double>(malformed_frames_)));
    for_each_counter(node_.counters(), [&out](const char* name, std::uint64_t value) {
      out.set(camel_case(name), val(static_cast<double>(value)));
    });
    return out;
  }

 private:
  val actions() {
    val out = val::array();
    std::size_t i = 0;
    for (Action& action : node_.take_actions()) out.set(i++, to_js(action));
    return out;
  }

  static val client_frame(std::string frame) {
    val out = typed("send");
    out.set("bytes", to_bytes(frame));
    return out;
  }

  static val on_link(const char* type, LinkId link) {
    val out = typed(type);
    out.set("link", link_number(link));
    return out;
  }

  static val about_peer(const char* type, PeerId peer) {
    val out = typed(type);
    out.set("peer", val(peer));
    return out;
  }

  static val to_js(Action& action) {
    return std::visit(
        Overloaded{
            [](Subscribe& a) { return client_frame(p2pmesh::server_frame(a)); },
            [](Publish& a) { return client_frame(p2pmesh::server_frame(a)); },
            [](OpenLink& a) {
              val out = on_link("open", a.link);
              out.set("peer", val(a.peer));
              return out;
            },
            [](AcceptLink& a) {
              val out = on_link("accept", a.link);
              out.set("peer", val(a.peer));
              out.set("offer", val(a.offer_json));
              return out;
            },
            [](ApplyAnswer& a) {
              val out = on_link("answer", a.link);
              out.set("answer", val(a.answer_json));
              return out;
            },
            [](AddCandidate& a) {
              val out = on_link("candidate", a.link);
              out.set("candidate", val(a.candidate_json));
              return out;
            },
            [](CloseLink& a) { return on_link("close", a.link); },
            [](SendOnLink& a) {
              val out = on_link("data", a.link);
              out.set("bytes", to_bytes(a.bytes));
              out.set("unreliable", val(a.unreliable));
              return out;
            },
            [](MeasureRtt& a) { return on_link("measure-rtt", a.link); },
            [](UseIceServers& a) {
              // RTCIceServer dictionaries: {urls, username?, credential?}
              val servers = val::array();
              std::size_t i = 0;
              for (const IceServer& server : a.servers) {
                val entry = val::object();
                val urls = val::array();
                std::size_t u = 0;
                for (const std::string& url : server.urls) urls.set(u++, val(url));
                entry.set("urls", urls);
                if (!server.username.empty()) entry.set("username", val(server.username));
                if (!server.credential.empty()) entry.set("credential", val(server.credential));
                servers.set(i++, entry);
              }
              val out = typed("ice-servers");
              out.set("servers", servers);
              return out;
            },
            [](Deliver& a) {
              val out = typed("deliver");
              out.set("from", val(a.source));
              out.set("payload", to_bytes(a.payload));
              out.set("seq", val(static_cast<double>(a.seq)));
              out.set("reliable", val(a.reliable));
              out.set("verified", val(a.verified));
              return out;
            },
            [](Gap& a) {
              val out = typed("gap");
              out.set("from", val(a.source));
              out.set("fromSeq", val(static_cast<double>(a.from_seq)));
              out.set("toSeq", val(static_cast<double>(a.to_seq)));
              return out;
            },
            [](PeerJoined& a) { return about_peer("peer-joined", a.peer); },
            [](PeerLeft& a) { return about_peer("peer-left", a.peer); },
            [](LinkUp& a) { return about_peer("link-up", a.peer); },
            [](LinkDown& a) { return about_peer("link-down", a.peer); },
            [](ObserverCommand& a) {
              val out = typed("observer-command");
              out.set("from", val(a.from));
              out.set("body", val(a.body));
              return out;
            },
            [](SignBroadcast& a) {
              val out = typed("sign");
              out.set("id", val(static_cast<double>(a.id)));
              out.set("seq", val(static_cast<double>(a.seq)));
              out.set("message", to_bytes(a.message));
              return out;
            },
            [](VerifySignature& a) {
              val out = typed("verify");
              out.set("ticket", val(static_cast<double>(a.ticket)));
              out.set("publicKey", to_bytes(a.public_key));
              out.set("message", to_bytes(a.message));
              out.set("signature", to_bytes(a.signature));
              return out;
            },
            [](WakeAt& a) {
              val out = typed("wake");
              out.set("at", val(a.at == kNever ? std::numeric_limits<double>::infinity()
                                               : static_cast<double>(a.at)));
              return out;
            },
        },
        action);
  }

  MeshNode node_;
  std::uint64_t malformed_frames_ = 0;
};

}  // namespace

EMSCRIPTEN_BINDINGS(p2pmesh) {
  // The group-name rule of the core (and meshd), for Mesh.join's checks.
  emscripten::function("validGroupName",
                       +[](const std::string& group) { return valid_group_name(group); });
  // The config's rules (MeshConfig::validate), for Mesh.join: "" or the problem.
  emscripten::function("configProblem", +[](val options) {
    return with_option_names(config_from(options).validate());
  });
  emscripten::function("defaultOptions", &default_options);
  // Backpressure on a data channel (link_send_policy.hpp): mesh.js follows it.
  emscripten::function("sendPolicy", +[] {
    val out = val::object();
    out.set("highWater", val(static_cast<double>(kChannelHighWater)));
    out.set("lowWater", val(static_cast<double>(kChannelLowWater)));
    out.set("queueBound", val(static_cast<double>(kLinkQueueBound)));
    return out;
  });
  emscripten::class_<MeshPeer>("MeshPeer")
      .constructor<val>()
      .function("serverFrame", &MeshPeer::server_frame)
      .function("serverLost", &MeshPeer::server_lost)
      .function("deliveryPositions", &MeshPeer::delivery_positions)
      .function("resumeDelivery", &MeshPeer::resume_delivery)
      .function("localDescription", &MeshPeer::local_description)
      .function("localCandidate", &MeshPeer::local_candidate)
      .function("linkOpen", &MeshPeer::link_open)
      .function("linkClosed", &MeshPeer::link_closed)
      .function("linkData", &MeshPeer::link_data)
      .function("linkRtt", &MeshPeer::link_rtt)
      .function("linkCandidateType", &MeshPeer::link_candidate_type)
      .function("relayAllocationFailed", &MeshPeer::relay_allocation_failed)
      .function("tick", &MeshPeer::tick)
      .function("broadcast", &MeshPeer::broadcast)
      .function("leave", &MeshPeer::leave)
      .function("broadcastSigned", &MeshPeer::broadcast_signed)
      .function("signatureChecked", &MeshPeer::signature_checked)
      .function("requiresSignatures", &MeshPeer::requires_signatures)
      .function("setReportAppJson", &MeshPeer::set_report_app_json)
      .function("id", &MeshPeer::id)
      .function("group", &MeshPeer::group)
      .function("view", &MeshPeer::view)
      .function("links", &MeshPeer::links)
      .function("tree", &MeshPeer::tree)
      .function("counters", &MeshPeer::counters);
}
