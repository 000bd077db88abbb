// libFuzzer target for meshd's frame handling without sockets: an
// in-process meshd (ServerImpl, never listening) and up to 8 fake
// connections (Clients, client.hpp) on one or two event loops. The input is
// a config header and a sequence of steps (meshd_script.hpp): connects,
// subscribes, publishes (statuses, link updates, forged and departure
// updates, garbage, payloads around --max-frame-bytes), unsubscribes, raw and
// text frames, disconnects, clients that stop reading, time passing (held
// messages of clients over their rate are offered again) and the ends of
// event-loop turns (hand-over between loops, writes, closes). Everything
// goes through the real Broker and the real Client logic (strikes, rate
// bucket, holds); the fakes play the socket: a queue bounded like
// WsSession's, a close that completes at the end of the turn.
//
// Checked after every step (a broken invariant aborts with a message):
// - every delivered frame is a topic message on a topic the client is
//   subscribed to (with two loops: was, at the step's start), from a sender
//   that exists; with access rules, an update
//   on <g>.mesh is about its sender;
// - state is bounded: subscriptions and early records per client at most
//   --max-subscriptions, queued bytes at most --max-outbound-bytes;
// - the broker's groups, member counts and topic gauges equal what the
//   clients' subscriptions say;
// - a member that leaves a group (disconnect, unsubscribe, closed) is known
//   to have left (the last update heard from it says left = true: its own,
//   or meshd's departure notice) by every member of the group still open
//   that heard of it;
// - at the end, with every client gone: no group, no topic, no frame alive.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "internal.hpp"
#include "mesh_node_script.hpp"
#include "meshd_script.hpp"
#include "wire.hpp"

namespace meshd {
namespace {

namespace wire = p2pmesh::wire;
using p2pmesh::fuzz::Payload;
using p2pmesh::fuzz::Reader;
using p2pmesh::fuzz::Step;
using p2pmesh::fuzz::TopicKind;

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "meshd_fuzz: invariant broken: %s\n", what);
  std::abort();
}

constexpr std::size_t kMaxClients = 8;
constexpr std::size_t kMaxSteps = 512;
constexpr std::size_t kMaxPendingFrames = 32;  // unread input of a held client (TCP's window)
const char* const kGroups[] = {"g", "h", "other", "h2"};

Config config_from(Reader& in) {
  Config config;
  const std::uint8_t flags = in.u8();
  config.threads = (flags & p2pmesh::fuzz::kTwoLoops) ? 2 : 1;
  config.access_rules = !(flags & p2pmesh::fuzz::kOpen);
  config.max_subscriptions = 1 + in.u8() % 8;
  config.max_topics_per_publish = 1 + in.u8() % 4;
  config.max_outbound_bytes = 64 + std::size_t{in.u8()} * 32;
  config.max_strikes = 1 + in.u8() % 12;
  const std::uint8_t rate = in.u8();
  const std::uint8_t burst = in.u8();
  if (flags & p2pmesh::fuzz::kRate) {
    config.rate_per_second = 1 + rate % 64;
    config.rate_burst = 1 + burst % 16;
  } else {
    config.rate_per_second = 0;
  }
  config.max_frame_bytes = 64 + std::size_t{in.u8()} * 16;
  config.max_rate_delay = std::chrono::milliseconds(20 * in.u8());
  config.idle_timeout = std::chrono::milliseconds(0);
  return config;
}

// One connection: what a WsSession does with its socket, in memory.
class FakeClient final : public Client {
 public:
  FakeClient(EventLoop& loop, PeerId id, const std::set<PeerId>& known)
      : Client(loop, id), known_(known) {}

  enum class State { open, closing, done };

  bool accepting() const override { return state == State::open; }

  void deliver(FrameRef frame) override {
    if (state != State::open) return;  // like WsSession: nothing after a close frame
    check(*frame);
    const std::size_t size = frame->size();
    if (queued + size > server_.config.max_outbound_bytes) {
      loop_->metrics.drop(Drop::slow_consumer);
      queue.clear();
      queued = 0;
      close(boost::beast::websocket::close_code::policy_error, "slow consumer");
      return;
    }
    queued += size;
    queue.push_back(std::move(frame));
  }

  void close(boost::beast::websocket::close_code, std::string_view) override {
    if (state == State::open) state = State::closing;
  }

  // A frame from the client (binary or text): taken now, or after the held one.
  void receive(std::string bytes, bool binary, Clock::time_point now) {
    if (state != State::open) return;
    if (holding()) {
      if (pending.size() < kMaxPendingFrames) pending.push_back({std::move(bytes), binary});
      return;
    }
    take(std::move(bytes), binary, now);
  }

  // Time passed: a held message is offered again when its wait is over.
  void advance(Clock::time_point now) {
    while (state == State::open && holding() && release_at <= now) {
      const Clock::duration wait = take_binary(held, release_at);
      if (wait > Clock::duration::zero()) {
        release_at += wait;
        continue;
      }
      end_hold(release_at);
      while (state == State::open && !holding() && !pending.empty()) {
        auto [bytes, binary] = std::move(pending.front());
        pending.erase(pending.begin());
        take(std::move(bytes), binary, release_at);
      }
    }
  }

  // The socket takes what is queued (unless the client stopped reading).
  void write() {
    if (stalled) return;
    queue.clear();
    queued = 0;
  }

  State state = State::open;
  bool stalled = false;
  std::vector<FrameRef> queue;
  std::size_t queued = 0;
  // Whether the last update received from a member of a group, on the
  // group's mesh topic, said it left: (group, member) -> left. A departure
  // is known when it does (the server's notice, or the member's own).
  std::map<std::pair<std::string, PeerId>, bool> said_left;
  std::set<std::string> subscribed_at_step_start;

 private:
  void take(std::string bytes, bool binary, Clock::time_point now) {
    if (!binary) {
      take_text();
      return;
    }
    const Clock::duration wait = take_binary(bytes, now);
    if (wait > Clock::duration::zero()) {
      held = std::move(bytes);
      release_at = now + wait;
    }
  }

  void check(const Frame& frame) {
    // A complete server frame: FIN + binary, then a 1, 3 or 9 byte length.
    std::string_view bytes = frame.bytes();
    require(bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x82,
            "a delivery is one binary WebSocket frame");
    const unsigned length = static_cast<unsigned char>(bytes[1]);
    bytes.remove_prefix(length < 126 ? 2 : length == 126 ? 4 : 10);
    wire::ServerMessage message;
    require(wire::decode(bytes, message) == wire::DecodeError::none &&
                message.kind == wire::ServerMessage::Kind::topic_message,
            "a delivery decodes as a topic message");
    const auto topic = std::find_if(subscriptions.begin(), subscriptions.end(),
                                    [&](const Topic* t) { return t->name == message.topic; });
    if (topic == subscriptions.end()) {
      // With two loops, another loop's publication is handed over to this
      // one's inbox and may arrive just after the client unsubscribed, in
      // the same turn (docs/meshd.md, "Scaling").
      require(server_.config.threads > 1 && subscribed_at_step_start.count(message.topic) == 1,
              "a delivery is on a topic the client is subscribed to");
      return;
    }
    require(known_.count(message.sender) == 1, "a delivery's sender is a connection of this meshd");
    const Group* group = (*topic)->group;
    if (!group) return;  // not <group>.mesh
    wire::MeshUpdate update;
    const bool decoded = wire::decode(message.body, update) == wire::DecodeError::none;
    if (server_.config.access_rules)
      require(decoded && update.source == message.sender,
              "with access rules, a mesh update is about its sender");
    if (decoded && update.source == message.sender)
      said_left[{group->name, message.sender}] = update.left;
  }

  const std::set<PeerId>& known_;
  std::string held;  // the message waiting for the rate
  Clock::time_point release_at{};
  std::vector<std::pair<std::string, bool>> pending;
};

class Harness {
 public:
  explicit Harness(Config config) : server_(std::move(config)) {}

  ~Harness() {
    // Every connection goes; then nothing of them may be left.
    while (!clients_.empty()) finish(0);
    end_turn();
    require(server_.metrics.list_groups().empty(), "no group without connections");
    require(server_.metrics.groups.get() == 0 && server_.metrics.topics.get() == 0,
            "the group and topic gauges return to zero");
    require(server_.frames.live() == 0, "every frame is released");
  }

  void run(Reader& in) {
    for (std::size_t step = 0; step < kMaxSteps && !in.done(); ++step) {
      const auto known_before = known();
      for (auto& client : clients_) {
        client->subscribed_at_step_start.clear();
        for (const Topic* topic : client->subscriptions)
          client->subscribed_at_step_start.insert(topic->name);
      }
      const auto kind = static_cast<Step>(in.u8() % static_cast<std::uint8_t>(Step::count));
      switch (kind) {
        case Step::connect: connect(in.u8()); break;
        case Step::subscribe: frame_from(in, [&](FakeClient& c) { return subscribe(c, in, true); }); break;
        case Step::unsubscribe: frame_from(in, [&](FakeClient& c) { return subscribe(c, in, false); }); break;
        case Step::publish: frame_from(in, [&](FakeClient& c) { return publish(c, in); }); break;
        case Step::raw: frame_from(in, [&](FakeClient&) { return std::string(in.str()); }); break;
        case Step::text:
          if (FakeClient* c = client(in.u8())) c->receive("{}", false, now_);
          break;
        case Step::disconnect:
          if (FakeClient* c = client(in.u8())) finish(index_of(*c));
          break;
        case Step::stall:
          if (FakeClient* c = client(in.u8())) c->stalled = !c->stalled;
          break;
        case Step::advance:
          now_ += std::chrono::milliseconds(in.u16());
          for (auto& client : clients_) client->advance(now_);
          break;
        case Step::turn: end_turn(); break;
        case Step::count: break;
      }
      // What the step published reaches every loop before the checks.
      hand_over();
      check(known_before);
    }
  }

 private:
  FakeClient* client(std::uint8_t index) {
    if (clients_.empty()) return nullptr;
    return clients_[index % clients_.size()].get();
  }
  std::size_t index_of(const FakeClient& c) const {
    for (std::size_t i = 0; i < clients_.size(); ++i)
      if (clients_[i].get() == &c) return i;
    return clients_.size();
  }

  void connect(std::uint8_t loop) {
    if (clients_.size() >= kMaxClients) return;
    const PeerId id = server_.allocate_id();
    known_.insert(id);
    auto client = std::make_unique<FakeClient>(
        server_.loop(loop % server_.config.threads), id, known_);
    if (tokens_) client->set_grant(grant_);
    clients_.push_back(std::move(client));
  }

  template <class Build>
  void frame_from(Reader& in, Build build) {
    FakeClient* c = client(in.u8());
    if (!c) return;
    std::string bytes = build(*c);
    c->receive(std::move(bytes), true, now_);
  }

  std::string topic_for(Reader& in, const FakeClient& self) {
    const std::uint8_t b = in.u8();
    const std::string group = kGroups[(b >> 3) % 4];
    const char* const channels[] = {"offer", "answer", "candidate", "fallback", "command"};
    const std::string channel = channels[(b >> 5) % 5];
    PeerId other = self.id();
    if (!clients_.empty()) other = clients_[(b >> 5) % clients_.size()]->id();
    switch (static_cast<TopicKind>(b & 7)) {
      case TopicKind::mesh: return group + ".mesh";
      case TopicKind::own_channel: return group + "." + std::to_string(self.id()) + "." + channel;
      case TopicKind::other_channel: return group + "." + std::to_string(other) + "." + channel;
      case TopicKind::report: return group + ".report";
      case TopicKind::raw: return std::string(in.str());
      case TopicKind::odd_id: {
        const char* const ids[] = {"0", "01", "4294967296", "-1", "", "x"};
        return group + "." + ids[(b >> 3) % 6] + "." + channel;
      }
      case TopicKind::long_topic: return std::string(server_.config.max_topic_bytes + 1, 'g');
      case TopicKind::empty: return {};
    }
    return {};
  }

  std::string subscribe(FakeClient& c, Reader& in, bool subscribe) {
    wire::ClientMessage message;
    message.kind = subscribe ? wire::ClientMessage::Kind::subscribe
                             : wire::ClientMessage::Kind::unsubscribe;
    message.topic = topic_for(in, c);
    return wire::encode(message);
  }

  PeerId peer_from(std::uint8_t b, const FakeClient& self) const {
    if (b == 0xFF || clients_.empty()) return self.id();
    return clients_[b % clients_.size()]->id();
  }

  std::string publish(FakeClient& c, Reader& in) {
    wire::ClientMessage message;
    message.kind = wire::ClientMessage::Kind::publish;
    const std::size_t count = 1 + in.u8() % 6;
    for (std::size_t i = 0; i < count; ++i) message.topics.push_back(topic_for(in, c));
    wire::MeshUpdate update;
    update.source = c.id();
    const std::uint8_t kind = in.u8();
    switch (static_cast<Payload>(kind % static_cast<std::uint8_t>(Payload::count))) {
      case Payload::status: {
        update.kind = wire::MeshUpdate::Kind::status;
        update.status.id = in.u8();
        const std::size_t links = in.u8() % 6;
        for (std::size_t i = 0; i < links; ++i) update.status.connected_to.push_back(peer_from(in.u8(), c));
        if (kind & 0x80) update.status.rtt_us.assign(links, 1000);
        message.payload = wire::encode(update);
        break;
      }
      case Payload::connected:
      case Payload::disconnected:
        update.kind = static_cast<Payload>(kind % static_cast<std::uint8_t>(Payload::count)) ==
                              Payload::connected
                          ? wire::MeshUpdate::Kind::connected_to
                          : wire::MeshUpdate::Kind::disconnected_from;
        update.peer = peer_from(in.u8(), c);
        message.payload = wire::encode(update);
        break;
      case Payload::forged:
        update.source = peer_from(in.u8(), c) + (kind >> 7);
        update.kind = wire::MeshUpdate::Kind::status;
        update.status.id = 1000;
        message.payload = wire::encode(update);
        break;
      case Payload::left:
        update.kind = wire::MeshUpdate::Kind::status;
        update.left = true;
        message.payload = wire::encode(update);
        break;
      case Payload::raw:
        message.payload = std::string(in.str());
        break;
      case Payload::big:
        // Around --max-frame-bytes: some fit, some are refused by the decoder.
        message.payload.assign(server_.config.max_frame_bytes - 32 + in.u8() % 64, 'x');
        break;
      case Payload::count:
        break;
    }
    return wire::encode(message);
  }

  // The socket of client `index` goes away (WsSession::finish).
  void finish(std::size_t index) {
    FakeClient& c = *clients_[index];
    c.state = FakeClient::State::done;
    server_.broker.remove_session(c, true);
    c.loop().drain_inbox();  // entries for it are gone before it is
    auto gone = std::move(clients_[index]);
    clients_.erase(clients_.begin() + static_cast<std::ptrdiff_t>(index));
  }

  // What other loops handed over reaches its loop (the drains they posted).
  void hand_over() {
    if (server_.config.threads > 1) server_.broker.end_turn();
    for (std::size_t i = 0; i < server_.config.threads; ++i) server_.loop(i).ioc.poll();
  }

  // The end of a turn: writes, and closes that complete.
  void end_turn() {
    hand_over();
    for (auto& client : clients_) client->write();
    for (std::size_t i = 0; i < clients_.size();) {
      if (clients_[i]->state == FakeClient::State::closing) {
        finish(i);
        hand_over();
      } else {
        ++i;
      }
    }
  }

  // group -> members (ids), from the clients' own subscriptions.
  std::map<std::string, std::set<PeerId>> members() const {
    std::map<std::string, std::set<PeerId>> out;
    for (const auto& client : clients_)
      for (const Topic* topic : client->subscriptions)
        if (topic->group) out[topic->group->name].insert(client->id());
    return out;
  }

  // group -> who its members know of: its members, and connections that
  // published a status on <group>.mesh without being one (the reference
  // peer's status before it subscribes, or one after it unsubscribed).
  std::map<std::string, std::set<PeerId>> known() const {
    auto out = members();
    for (const auto& client : clients_)
      for (const EarlyRecord& held : client->early_records)
        if (held.heard && !held.record.left) out[held.group].insert(client->id());
    return out;
  }

  void check(const std::map<std::string, std::set<PeerId>>& before) {
    const Config& config = server_.config;
    std::set<std::string> topics;
    for (const auto& client : clients_) {
      require(client->subscriptions.size() <= config.max_subscriptions,
              "subscriptions per connection at most --max-subscriptions");
      require(client->early_records.size() <= config.max_subscriptions,
              "early mesh records per connection at most --max-subscriptions");
      require(client->queued <= config.max_outbound_bytes,
              "queued bytes at most --max-outbound-bytes");
      for (const Topic* topic : client->subscriptions) topics.insert(topic->name);
      // Out of a group, a peer forgets its view of it.
      std::erase_if(client->said_left, [&](const auto& entry) {
        return std::none_of(client->subscriptions.begin(), client->subscriptions.end(),
                            [&](const Topic* t) { return t->group && t->group->name == entry.first.first; });
      });
    }
    const auto now = members();
    const auto listed = server_.metrics.list_groups();
    require(listed.size() == now.size(), "the broker's groups are the members' groups");
    for (const auto& [name, count] : listed) {
      const auto it = now.find(name);
      require(it != now.end() && it->second.size() == count,
              "a group's member count is its subscribers to <group>.mesh");
    }
    require(server_.metrics.groups.get() == now.size(), "the groups gauge counts groups");
    require(server_.metrics.topics.get() == topics.size(), "the topics gauge counts topics");
    // Departures: every open member left that knew whoever left a group
    // knows it left.
    const auto known_now = known();
    for (const auto& [group, ids] : before) {
      const auto after = known_now.find(group);
      for (const PeerId departed : ids) {
        if (after != known_now.end() && after->second.count(departed)) continue;
        if (after == known_now.end()) continue;
        for (const PeerId member : after->second) {
          const FakeClient* c = by_id(member);
          if (!c || !c->accepting() || !ids.count(member)) continue;
          // One that never heard of it (it published nothing while this
          // member listened, nor was in its snapshot) has nothing to forget.
          const auto heard = c->said_left.find({group, departed});
          require(heard == c->said_left.end() || heard->second,
                  "every open member of the group that knew a member learns that it left");
        }
      }
    }
  }

  const FakeClient* by_id(PeerId id) const {
    for (const auto& client : clients_)
      if (client->id() == id) return client.get();
    return nullptr;
  }

 public:
  bool tokens_ = false;
  std::shared_ptr<const Grant> grant_;

 private:
  ServerImpl server_;
  std::set<PeerId> known_;
  // Destroyed before the server (declared after it).
  std::vector<std::unique_ptr<FakeClient>> clients_;
  Clock::time_point now_ = Clock::time_point{} + std::chrono::hours(1);
};

}  // namespace
}  // namespace meshd

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  spdlog::set_level(spdlog::level::off);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  p2pmesh::fuzz::Reader in(std::string_view(reinterpret_cast<const char*>(data), size));
  const std::uint8_t flags = size > 0 ? data[0] : 0;
  meshd::Harness harness(meshd::config_from(in));
  if (flags & p2pmesh::fuzz::kTokens) {
    auto grant = std::make_shared<meshd::Grant>();
    grant->groups = {"g", "h*"};
    harness.grant_ = std::move(grant);
    harness.tokens_ = true;
  }
  harness.run(in);
  return 0;
}
