// Cluster: meshd nodes over NATS. See cluster.hpp and docs/cluster.md.

#include "cluster.hpp"

#include <nats/nats.h>
#include <spdlog/spdlog.h>

#include <random>
#include <stdexcept>
#include <vector>

#include "internal.hpp"
#include "topics.hpp"

namespace meshd {

namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kHeaderBytes = 18;
constexpr auto kTick = std::chrono::milliseconds(100);

bool plain(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

void put_u32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<char>(v >> shift));
}
std::uint64_t get_be(std::string_view bytes, std::size_t at, std::size_t n) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
  return v;
}

std::uint64_t fresh_incarnation() {
  std::random_device random;
  const std::uint64_t high = random();
  return (high << 32) | random() | 1;  // never 0
}

}  // namespace

std::string escape_subject(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(text.size() + 8);
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (plain(c)) {
      out.push_back(c);
      continue;
    }
    if (c == '.' && i > 0 && i + 1 < text.size() && text[i - 1] != '.' && text[i + 1] != '.') {
      out.push_back('.');
      continue;
    }
    const auto byte = static_cast<unsigned char>(c);
    out.push_back('%');
    out.push_back(kHex[byte >> 4]);
    out.push_back(kHex[byte & 15]);
  }
  return out;
}

std::string topic_subject(std::string_view topic) { return "p2pmesh.t." + escape_subject(topic); }
std::string node_subject(unsigned node) { return "p2pmesh.n." + std::to_string(node); }

std::string encode_envelope(const Envelope& envelope) {
  std::string out;
  out.reserve(kHeaderBytes + envelope.topic.size() + envelope.body.size());
  out.push_back(static_cast<char>(kVersion));
  out.push_back(static_cast<char>(envelope.kind));
  out.push_back(static_cast<char>(envelope.node));
  out.push_back(static_cast<char>(envelope.member ? 1 : 0));
  put_u32(out, envelope.sender);
  put_u32(out, static_cast<std::uint32_t>(envelope.incarnation >> 32));
  put_u32(out, static_cast<std::uint32_t>(envelope.incarnation));
  out.push_back(static_cast<char>(envelope.topic.size() >> 8));
  out.push_back(static_cast<char>(envelope.topic.size()));
  out += envelope.topic;
  out += envelope.body;
  return out;
}

bool decode_envelope(std::string_view bytes, Envelope& out) {
  if (bytes.size() < kHeaderBytes || static_cast<std::uint8_t>(bytes[0]) != kVersion) return false;
  const auto kind = static_cast<std::uint8_t>(bytes[1]);
  if (kind < 1 || kind > 6) return false;
  out.kind = static_cast<Envelope::Kind>(kind);
  out.node = static_cast<unsigned char>(bytes[2]);
  out.member = (static_cast<unsigned char>(bytes[3]) & 1) != 0;
  out.sender = static_cast<p2pmesh::PeerId>(get_be(bytes, 4, 4));
  out.incarnation = get_be(bytes, 8, 8);
  const auto topic_size = static_cast<std::size_t>(get_be(bytes, 16, 2));
  if (bytes.size() < kHeaderBytes + topic_size) return false;
  out.topic.assign(bytes.substr(kHeaderBytes, topic_size));
  out.body.assign(bytes.substr(kHeaderBytes + topic_size));
  return true;
}

// ---------------------------------------------------------------------------

Cluster::Cluster(ServerImpl& server)
    : server_(server),
      node_(static_cast<unsigned>(server.config.node_id)),
      incarnation_(fresh_incarnation()),
      timer_(std::in_place, server.loop(0).ioc) {}

Cluster::~Cluster() { close(); }

void Cluster::start() {
  const auto& config = server_.config;
  natsOptions* options = nullptr;
  std::vector<const char*> urls;
  for (const auto& url : config.nats_urls) urls.push_back(url.c_str());
  const std::string name = "meshd-node-" + std::to_string(node_);
  natsStatus s = natsOptions_Create(&options);
  if (s == NATS_OK) s = natsOptions_SetServers(options, urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetName(options, name.c_str());
  if (s == NATS_OK) s = natsOptions_SetNoEcho(options, true);
  // The URLs in the order given: the first is this node's NATS server, the others its fall-backs.
  if (s == NATS_OK) s = natsOptions_SetNoRandomize(options, true);
  if (s == NATS_OK) s = natsOptions_UseGlobalMessageDelivery(options, true);
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(options, -1);
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(options, 250);
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(options, &Cluster::on_disconnected, this);
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(options, &Cluster::on_connected, this);
  if (s == NATS_OK) s = natsOptions_SetClosedCB(options, &Cluster::on_closed, this);
  if (s == NATS_OK && !config.nats_user.empty())
    s = natsOptions_SetUserInfo(options, config.nats_user.c_str(), config.nats_password.c_str());
  if (s == NATS_OK && !config.nats_token.empty())
    s = natsOptions_SetToken(options, config.nats_token.c_str());
  if (s == NATS_OK && !config.nats_ca_file.empty())
    s = natsOptions_LoadCATrustedCertificates(options, config.nats_ca_file.c_str());
  if (s == NATS_OK) {
    {
      const std::lock_guard lock(mutex_);
      open_ = true;
    }
    // A first attempt in the foreground: a server that answers and refuses
    // (credentials, TLS verification) is a configuration error, reported
    // and fatal; none answering, or one too slow to finish the handshake in
    // time (a loaded machine, a server still starting), is an outage,
    // retried in the background.
    s = natsConnection_Connect(&connection_, options);
    if (s == NATS_NO_SERVER || s == NATS_TIMEOUT) {
      s = natsOptions_SetRetryOnFailedConnect(options, true, &Cluster::on_connected, this);
      if (s == NATS_OK) s = natsConnection_Connect(&connection_, options);
      if (s == NATS_NOT_YET_CONNECTED) {
        spdlog::warn("NATS not reachable yet: node {} keeps trying in the background", node_);
        s = NATS_OK;
      }
    } else if (s == NATS_OK) {
      connected_.store(true);
      server_.metrics.nats_connected.set(1);
    }
  }
  if (s != NATS_OK) {
    const char* reason = nats_GetLastError(nullptr);
    natsOptions_Destroy(options);
    {
      const std::lock_guard lock(mutex_);
      open_ = false;
    }
    throw std::runtime_error(std::string("--nats: ") + natsStatus_GetText(s) +
                             (reason && *reason ? std::string(": ") + reason : std::string()));
  }
  natsOptions_Destroy(options);
  server_.metrics.cluster = true;
  {
    const std::lock_guard lock(mutex_);
    for (const std::string& subject :
         {node_subject(node_), std::string(kHeartbeatSubject), std::string(kSnapshotSubject)})
      if (auto* sub = subscribe(subject)) subscriptions_.emplace(subject, sub);
  }
  spdlog::info("cluster: node {} on NATS {}", node_, fmt::join(config.nats_urls, ","));
  tick();
}

void Cluster::stop_timers() {
  timers_stopped_ = true;
  if (timer_) timer_->cancel();
}

void Cluster::close() {
  // The timer lives on loop 0's io_context: gone before it, also when NATS
  // was never open (start() refused: meshd exits; ASan saw the timer
  // destroyed after its io_context).
  timers_stopped_ = true;
  timer_.reset();
  {
    const std::lock_guard lock(mutex_);
    if (!open_ && !connection_) return;
    open_ = false;
    for (auto& [subject, sub] : subscriptions_) natsSubscription_Destroy(sub);
    subscriptions_.clear();
  }
  if (connection_) {
    // The departure notices of the shutdown are still queued.
    natsConnection_FlushTimeout(connection_, 1000);
    natsConnection_Close(connection_);
    natsConnection_Destroy(connection_);
    connection_ = nullptr;
    // cnats calls back (closed/disconnected events, messages in flight) on
    // its own threads, even after the close: wait until they are gone, so
    // none runs into a destroyed Cluster. (One cluster per process.)
    nats_CloseAndWait(2000);
  }
}

natsSubscription* Cluster::subscribe(const std::string& subject) {
  natsSubscription* sub = nullptr;
  const natsStatus s =
      natsConnection_Subscribe(&sub, connection_, subject.c_str(), &Cluster::on_message, this);
  if (s != NATS_OK) {
    spdlog::warn("cluster: cannot subscribe to {}: {}", subject, natsStatus_GetText(s));
    return nullptr;
  }
  // Bounded like a WebSocket's queue: a stuck loop drops (cnats counts) instead of growing.
  natsSubscription_SetPendingLimits(sub, 65536, 64 << 20);
  return sub;
}

void Cluster::interest(std::string_view topic, bool on) {
  const std::lock_guard lock(mutex_);
  if (!open_) return;
  const std::string subject = topic_subject(topic);
  if (on) {
    if (subscriptions_.count(subject)) return;
    if (auto* sub = subscribe(subject)) subscriptions_.emplace(subject, sub);
    return;
  }
  const auto it = subscriptions_.find(subject);
  if (it == subscriptions_.end()) return;
  natsSubscription_Unsubscribe(it->second);
  natsSubscription_Destroy(it->second);
  subscriptions_.erase(it);
}

void Cluster::send(const std::string& subject, const Envelope& envelope) {
  if (!connection_) return;
  const std::string bytes = encode_envelope(envelope);
  const natsStatus s = natsConnection_Publish(connection_, subject.c_str(), bytes.data(),
                                              static_cast<int>(bytes.size()));
  if (s == NATS_OK) {
    server_.metrics.cluster_out.add();
  } else {
    server_.metrics.cluster_send_failures.add();
    spdlog::debug("cluster: publish on {} failed: {}", subject, natsStatus_GetText(s));
  }
}

Envelope Cluster::publication(Envelope::Kind kind, std::string_view topic,
                              p2pmesh::PeerId sender, bool member, std::string_view body) const {
  Envelope envelope;
  envelope.kind = kind;
  envelope.node = node_;
  envelope.member = member;
  envelope.sender = sender;
  envelope.incarnation = incarnation_;
  envelope.topic.assign(topic);
  envelope.body.assign(body);
  return envelope;
}

void Cluster::publish(Envelope::Kind kind, std::string_view topic, p2pmesh::PeerId sender,
                      bool member, std::string_view body) {
  send(topic_subject(topic), publication(kind, topic, sender, member, body));
}

void Cluster::request_snapshot(std::string_view mesh_topic, int to_node) {
  Envelope envelope;
  envelope.kind = Envelope::Kind::snapshot_request;
  envelope.node = node_;
  envelope.incarnation = incarnation_;
  envelope.topic.assign(mesh_topic);
  send(to_node < 0 ? std::string(kSnapshotSubject) : node_subject(static_cast<unsigned>(to_node)),
       envelope);
}

void Cluster::reply_snapshot(unsigned to_node, std::string_view mesh_topic,
                             p2pmesh::PeerId sender, std::string_view body) {
  // A member's status, as a publication, to the node that asked only.
  send(node_subject(to_node), publication(Envelope::Kind::publish, mesh_topic, sender, true, body));
}

void Cluster::end_snapshot(unsigned to_node, std::string_view mesh_topic,
                           const std::vector<p2pmesh::PeerId>& members) {
  Envelope envelope;
  envelope.kind = Envelope::Kind::snapshot_end;
  envelope.node = node_;
  envelope.incarnation = incarnation_;
  envelope.topic.assign(mesh_topic);
  for (const p2pmesh::PeerId id : members) put_u32(envelope.body, id);
  send(node_subject(to_node), envelope);
}

// cnats' threads.
void Cluster::on_message(natsConnection*, natsSubscription*, natsMsg* msg, void* self) {
  const char* data = natsMsg_GetData(msg);
  const int size = natsMsg_GetDataLength(msg);
  static_cast<Cluster*>(self)->receive(
      natsMsg_GetSubject(msg), std::string_view(data ? data : "", static_cast<std::size_t>(size)));
  natsMsg_Destroy(msg);
}

void Cluster::on_disconnected(natsConnection*, void* self) {
  auto& cluster = *static_cast<Cluster*>(self);
  cluster.connected_.store(false);
  cluster.server_.metrics.nats_connected.set(0);
  const std::lock_guard lock(cluster.mutex_);
  if (cluster.open_)  // not our own close() at shutdown
    spdlog::warn("cluster: NATS connection lost (node {}), reconnecting", cluster.node_);
}

// cnats gave up for good (refused on a reconnection: credentials or
// certificate changed on the NATS side). The node serves its own clients
// only; /healthz says disconnected.
void Cluster::on_closed(natsConnection* connection, void* self) {
  auto& cluster = *static_cast<Cluster*>(self);
  cluster.connected_.store(false);
  cluster.server_.metrics.nats_connected.set(0);
  const std::lock_guard lock(cluster.mutex_);
  if (!cluster.open_) return;  // our own close() at shutdown
  const char* reason = nullptr;
  natsConnection_GetLastError(connection, &reason);
  spdlog::error("cluster: NATS closed the connection for good (node {}): {}; serving local "
                "clients only until meshd is restarted",
                cluster.node_, reason && *reason ? reason : "no reason given");
}

void Cluster::on_connected(natsConnection*, void* self) {
  auto& cluster = *static_cast<Cluster*>(self);
  cluster.connected_.store(true);
  cluster.server_.metrics.nats_connected.set(1);
  spdlog::info("cluster: NATS connected (node {}): resynchronising groups", cluster.node_);
  // cnats re-sends the subscriptions; the group state is ours to refresh.
  const std::lock_guard lock(cluster.mutex_);
  if (cluster.open_)
    asio::post(cluster.server_.loop(0).ioc, [&cluster] {
      cluster.reconnected_ = true;
      cluster.heard_since_reconnect_.clear();
      cluster.server_.broker.resync(-1);
    });
}

void Cluster::receive(std::string_view subject, std::string_view data) {
  LoopMetrics& metrics = server_.metrics.loop(0);  // counters are atomic
  const auto& config = server_.config;
  Envelope envelope;
  if (!decode_envelope(data, envelope)) {
    metrics.drop(Drop::cluster_undecodable);
    return;
  }
  if (envelope.node == node_) return;  // our own (no-echo makes this rare)
  server_.metrics.cluster_in.add();
  if (envelope.kind == Envelope::Kind::heartbeat) {
    const std::lock_guard lock(mutex_);
    if (open_)
      asio::post(server_.loop(0).ioc, [this, node = envelope.node, inc = envelope.incarnation] {
        heard(node, inc);
      });
    return;
  }
  if (envelope.body.size() > config.max_frame_bytes) {
    metrics.drop(Drop::cluster_too_large);
    return;
  }
  if (envelope.topic.empty() || envelope.topic.size() > config.max_topic_bytes ||
      (config.access_rules && parse_topic(envelope.topic).kind == TopicKind::other)) {
    metrics.drop(Drop::cluster_bad_topic);
    return;
  }
  // The subject must be the one of its topic (or our node's, for snapshot replies).
  const bool to_me = subject == node_subject(node_);
  if (envelope.kind == Envelope::Kind::snapshot_request) {
    if (parse_topic(envelope.topic).kind != TopicKind::mesh ||
        (subject != kSnapshotSubject && !to_me)) {
      metrics.drop(Drop::cluster_bad_topic);
      return;
    }
  } else if (!to_me && subject != topic_subject(envelope.topic)) {
    metrics.drop(Drop::cluster_bad_topic);
    return;
  }
  if (envelope.sender == p2pmesh::kNoPeer && envelope.kind != Envelope::Kind::snapshot_request &&
      envelope.kind != Envelope::Kind::snapshot_end) {
    metrics.drop(Drop::cluster_undecodable);
    return;
  }
  const std::lock_guard lock(mutex_);
  if (!open_) return;
  asio::post(server_.loop(0).ioc, [this, envelope = std::move(envelope)]() mutable {
    heard(envelope.node, 0);
    if (envelope.kind == Envelope::Kind::snapshot_request)
      server_.broker.on_snapshot_request(envelope.topic, envelope.node);
    else if (envelope.kind == Envelope::Kind::snapshot_end)
      server_.broker.on_snapshot_end(envelope, server_.loop(0));
    else
      server_.broker.on_remote(envelope, server_.loop(0));
  });
}

// Loop 0: heartbeats out, silent nodes declared dead.
void Cluster::tick() {
  if (timers_stopped_ || !timer_) return;
  const auto now = std::chrono::steady_clock::now();
  if (now - last_heartbeat_ >= kHeartbeatInterval) {
    last_heartbeat_ = now;
    Envelope beat;
    beat.kind = Envelope::Kind::heartbeat;
    beat.node = node_;
    beat.incarnation = incarnation_;
    send(kHeartbeatSubject, beat);
  }
  // Cut off from NATS, we hear no one: that says nothing about the others.
  // Their silence counts from the reconnection on.
  if (!connected())
    for (auto& [node, state] : nodes_) state.last_heard = now;
  for (auto it = nodes_.begin(); it != nodes_.end();) {
    if (now - it->second.last_heard > kNodeDeadAfter) {
      const unsigned dead = it->first;
      it = nodes_.erase(it);
      spdlog::warn("cluster: node {} silent for {} ms: its members left", dead,
                   kNodeDeadAfter.count());
      server_.broker.forget_node(dead, server_.loop(0));
    } else {
      ++it;
    }
  }
  server_.metrics.cluster_nodes.set(nodes_.size() + 1);
  timer_->expires_after(kTick);
  timer_->async_wait([this](boost::system::error_code ec) {
    if (!ec) tick();
  });
}

// Loop 0. incarnation 0: any message (not a heartbeat) from that node.
void Cluster::heard(unsigned node, std::uint64_t incarnation) {
  const auto now = std::chrono::steady_clock::now();
  auto [it, fresh] = nodes_.try_emplace(node);
  if (!fresh && incarnation != 0 && it->second.incarnation != 0 &&
      it->second.incarnation != incarnation) {
    // Restarted within the dead-node delay: its old members are gone.
    spdlog::warn("cluster: node {} restarted: its former members left", node);
    server_.broker.forget_node(node, server_.loop(0));
  }
  if (incarnation != 0) it->second.incarnation = incarnation;
  it->second.last_heard = now;
  if (reconnected_ && heard_since_reconnect_.try_emplace(node, true).second)
    server_.broker.resync(static_cast<int>(node));
  if (fresh) spdlog::info("cluster: node {} joined", node);
}

}  // namespace meshd
