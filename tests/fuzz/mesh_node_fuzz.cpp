// libFuzzer target for MeshNode: the input is a config header and a sequence
// of events (mesh_node_script.hpp): server frames, raw or built from the
// fuzz bytes so that the fuzzer gets past the decoder (welcome, updates and
// statuses on `<group>.mesh`, offers, answers, candidates, fallbacks and
// commands on the node's topics), link open/close/data (garbage, or Packets
// with valid routes), RTTs, candidate types, broadcasts, leave, server loss
// and ticks with monotonic time jumps. The node's actions are drained after
// every event and checked against invariants a driver relies on; a broken one
// aborts with a message on stderr.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "candidate_envelope.hpp"
#include "mesh_node.hpp"
#include "mesh_node_script.hpp"
#include "signed_broadcast.hpp"
#include "topics.hpp"
#include "wire.hpp"

namespace p2pmesh {
namespace {

using fuzz::Op;

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "mesh_node_fuzz: invariant broken: %s\n", what);
  std::abort();
}

constexpr std::size_t kMaxEvents = 1024;
// P2PMESH_FUZZ_TRACE=1 build/fuzz/bin/mesh_node_fuzz FILE prints each event
// and the kinds of the actions it produced (to read a reproducer).
const bool kTrace = std::getenv("P2PMESH_FUZZ_TRACE") != nullptr;
constexpr const char* kOpNames[] = {
    "server_bytes", "welcome",     "mesh_update",         "signal",
    "topic_raw",    "link_open",   "link_closed",         "link_bytes",
    "link_packet",  "link_rtt",    "link_candidate_type", "local_description",
    "local_candidate", "broadcast", "tick",               "tick_to_wake",
    "leave",        "server_lost", "relay_failed"};
static_assert(std::size(kOpNames) == static_cast<std::size_t>(fuzz::Op::count));
constexpr const char* kActionNames[] = {
    "Subscribe", "Publish",  "OpenLink",      "AcceptLink", "ApplyAnswer", "AddCandidate",
    "CloseLink", "SendOnLink", "MeasureRtt",  "UseIceServers", "Deliver",  "Gap", "PeerJoined",
    "PeerLeft",  "LinkUp",   "LinkDown",      "ObserverCommand", "WakeAt", "SignBroadcast",
    "VerifySignature"};
static_assert(std::size(kActionNames) == std::variant_size_v<Action>);
// MeshNode's repair buffer keeps at most this many packets (mesh_node.cpp):
// one event (a link closing) may re-send each of them around the lost peer.
constexpr std::size_t kRepairEntries = 1024;

MeshConfig config_from(fuzz::Reader& in) {
  const std::uint8_t f1 = in.u8();
  const std::uint8_t f2 = in.u8();
  const std::uint8_t connections = in.u8();
  MeshConfig config;
  config.group = "g";
  config.seed = in.u8();
  config.spread = f1 & 1 ? MeshConfig::Spread::flood : MeshConfig::Spread::tree;
  config.emulate_reference = f1 & 2;
  config.observer_commands = f1 & 4;
  config.report_interval = f1 & 8 ? 100 * kMillisecond : 0;
  config.prune_routes = !(f1 & 16);
  config.relay_fallback = !(f1 & 32);
  config.fallback = !(f1 & 64);
  config.message_ids = !(f1 & 128);
  config.admit_when_full = !(f2 & 1);
  config.repair_window = f2 & 2 ? 0 : 3 * kSecond;
  config.max_topics_per_publish = f2 & 4 ? 2 : 16;
  if (f2 & 8) {
    config.max_server_message_bytes = 4096;
    config.max_payload_bytes = 2048;
  }
  config.max_route_edges = f2 & 16 ? 16 : 4096;
  config.member_timeout = f2 & 32 ? 0 : config.member_timeout;
  if (f2 & 64) {  // short timers: more of them fire within an input
    config.link_connect_timeout = 100 * kMillisecond;
    config.ping_interval = 50 * kMillisecond;
    config.dead_link_timeout = 200 * kMillisecond;
    config.transport_rtt_interval = 100 * kMillisecond;
    config.status_interval = 500 * kMillisecond;
    config.snapshot_wait = 10 * kMillisecond;
  }
  if (f2 & 128) {  // signed broadcasts (the harness answers for the driver)
    config.public_key = std::string(kPublicKeyBytes, 'k');
    config.require_signatures = connections & 16;
  }
  config.target_connections = 1 + (connections & 3);
  config.max_connections = config.target_connections + ((connections >> 2) & 3);
  return config;
}

class Harness {
 public:
  Harness(fuzz::Reader& in, MeshConfig config) : in_(in), node_(std::move(config)) {
    require(node_.config().validate().empty(), "the harness builds valid configs");
  }

  void run() {
    for (std::size_t events = 0; events < kMaxEvents && !in_.done(); ++events) step();
  }

 private:
  const std::string& group() const { return node_.config().group; }

  PeerId peer() {
    const std::uint8_t b = in_.u8();
    if (b == fuzz::kAnyPeer) return in_.u32();
    if (b == fuzz::kNoPeerByte) return kNoPeer;
    if (b == fuzz::kSelfPeer) return node_.id();
    return 1 + b % 12;
  }

  LinkId link() {
    const std::uint8_t b = in_.u8();
    if (b >= fuzz::kLinkIdBase) return b - fuzz::kLinkIdBase;
    const auto& all = node_.links().all();
    return all.empty() ? b : all[b % all.size()].id;
  }

  // A Packet whose route is a tree rooted at its source (usually), with us
  // below `via` when asked, so that it passes the route and parent checks.
  wire::Packet packet(PeerId via) {
    const std::uint8_t flags = in_.u8();
    wire::Packet p;
    p.source = flags & 1 ? via : peer();
    if (flags & 2) p.ping = in_.u32();
    if (flags & 4) p.pong = in_.u32();
    std::vector<PeerId> nodes{p.source};
    if (flags & 8 && node_.id() != kNoPeer) {
      if (via != p.source) {
        p.edges.push_back({p.source, via});
        nodes.push_back(via);
      }
      p.edges.push_back({via, node_.id()});
      nodes.push_back(node_.id());
    }
    const std::size_t extra = in_.u8() % 8;
    for (std::size_t i = 0; i < extra; ++i) {
      const PeerId u = nodes[in_.u8() % nodes.size()];
      const PeerId v = peer();
      p.edges.push_back({u, v});
      nodes.push_back(v);
    }
    p.seq = in_.u16();
    // An unreliable message (its number in field 10), or one with both
    // numbers (malformed), from flag bits that cost no input of their own.
    if (flags & 16) {
      p.unreliable_seq = p.seq;
      if (!(flags & 32)) p.seq = 0;
    }
    p.payload = std::string(in_.str());
    if (flags & 16) p.signature = std::string(flags & 32 ? kSignatureBytes : 7, 's');
    // Receiver tags: whole entries (ours among them, maybe), or ragged bytes.
    if (flags & 64) p.receiver_tags = std::string(in_.str());
    return p;
  }

  void deliver(bool as_frame, std::string_view topic, PeerId sender, std::string_view body) {
    if (as_frame) {
      std::string frame;
      wire::append_topic_message(frame, topic, sender, body);
      require(node_.on_server_frame(now_, frame), "a well-formed topic frame decodes");
    } else {
      node_.on_topic_message(now_, topic, sender, body);
    }
  }

  void welcome() {
    const bool as_frame = in_.u8() & 1;
    const PeerId id = peer();
    std::vector<IceServer> servers(in_.u8() % 3);
    for (IceServer& server : servers) server = IceServer{std::string(in_.str())};
    if (as_frame) {
      std::string frame;
      wire::append_welcome(frame, id, servers);
      require(node_.on_server_frame(now_, frame), "a well-formed welcome decodes");
    } else {
      node_.on_welcome(now_, id, std::move(servers));
    }
  }

  void mesh_update() {
    const bool as_frame = in_.u8() & 1;
    const std::uint8_t kind = in_.u8();
    wire::MeshUpdate update;
    update.kind = static_cast<wire::MeshUpdate::Kind>(kind & 3);
    update.left = kind & 4;
    update.source = peer();
    const PeerId sender = kind & 8 ? peer() : update.source;
    if (update.kind == wire::MeshUpdate::Kind::connected_to ||
        update.kind == wire::MeshUpdate::Kind::disconnected_from) {
      update.peer = peer();
    } else if (update.kind == wire::MeshUpdate::Kind::status) {
      update.status.id = in_.u8();
      update.status.version = in_.u8() % 3;
      const std::size_t n = in_.u8() % 9;
      for (std::size_t i = 0; i < n; ++i) update.status.connected_to.push_back(peer());
      if (kind & 16) {
        for (std::size_t i = 0; i < n; ++i) update.status.rtt_us.push_back(in_.u16());
      }
      if (kind & 32) update.status.public_key = std::string(kPublicKeyBytes, 'k');
      update.status.require_signatures = kind & 64;
    }
    deliver(as_frame, mesh_topic(group()), sender, wire::encode(update));
  }

  void signal() {
    const bool as_frame = in_.u8() & 1;
    const auto kind = static_cast<SignalKind>(in_.u8() % 5);
    const PeerId from = peer();
    const PeerId to = in_.u8() & 1 ? peer() : node_.id();
    std::string body;
    switch (kind) {
      case SignalKind::offer:
      case SignalKind::answer: {
        const std::string_view custom = in_.str();
        body = custom.empty() ? (kind == SignalKind::offer ? R"({"type":"offer","sdp":"v=0"})"
                                                           : R"({"type":"answer","sdp":"v=0"})")
                              : std::string(custom);
        break;
      }
      case SignalKind::candidate: {
        const std::uint8_t mode = in_.u8() % 4;
        const std::string_view candidate = in_.str();
        const std::string json = candidate.empty() ? R"({"candidate":"c"})" : std::string(candidate);
        if (mode == 0) body = wrap_candidate(json, node_.id());
        else if (mode == 1) body = wrap_candidate(json, from);
        else if (mode == 2) body = wrap_candidate(json, peer());
        else body = std::string(candidate);
        break;
      }
      case SignalKind::fallback:
        body = in_.u8() & 1 ? std::string(in_.str()) : wire::encode(packet(from));
        break;
      case SignalKind::command: body = std::string(in_.str()); break;
    }
    deliver(as_frame, peer_topic(group(), to, kind), from, body);
  }

  void broadcast() {
    const std::uint8_t mode = in_.u8();
    std::string payload;
    if (mode & 1) {
      payload.assign(node_.config().max_payload_bytes - 4 + (mode >> 1) % 8, 'p');
    } else {
      payload = std::string(in_.str());
    }
    node_.broadcast(now_, std::move(payload),
                    mode & 16 ? DeliveryMode::unreliable : DeliveryMode::reliable);
  }

  void advance(std::uint16_t t) {
    static constexpr TimeUs kUnits[] = {1, kMillisecond, 100 * kMillisecond, 10 * kSecond};
    now_ += static_cast<TimeUs>(t & 0x3FFF) * kUnits[t >> 14];
  }

  void step() {
    const auto op = static_cast<Op>(in_.u8() % static_cast<std::uint8_t>(Op::count));
    const bool joined_before = node_.id() != kNoPeer;
    const std::size_t members_before = node_.membership().member_count();
    bool ticked = false;
    switch (op) {
      case Op::server_bytes: node_.on_server_frame(now_, in_.str()); break;
      case Op::welcome:
        // After losing the server a driver makes a new MeshNode for the next
        // connection: this one never hears a welcome again.
        if (!lost_) welcome();
        break;
      case Op::mesh_update: mesh_update(); break;
      case Op::signal: signal(); break;
      case Op::topic_raw: {
        const bool as_frame = in_.u8() & 1;
        const std::string topic(in_.str());
        const PeerId sender = peer();
        deliver(as_frame, topic, sender, in_.str());
        break;
      }
      case Op::link_open: node_.on_link_open(now_, link()); break;
      case Op::link_closed: node_.on_link_closed(now_, link()); break;
      case Op::link_bytes: {
        const LinkId id = link();
        node_.on_link_data(now_, id, in_.str());
        break;
      }
      case Op::link_packet: {
        const LinkId id = link();
        const Link* l = node_.links().find(id);
        node_.on_link_data(now_, id, wire::encode(packet(l ? l->peer : peer())));
        break;
      }
      case Op::link_rtt: {
        const LinkId id = link();
        node_.on_link_rtt(now_, id, in_.u32());
        break;
      }
      case Op::link_candidate_type: {
        const LinkId id = link();
        node_.on_link_candidate_type(now_, id, static_cast<CandidateType>(in_.u8() % 5));
        break;
      }
      case Op::local_description: {
        const LinkId id = link();
        node_.on_local_description(now_, id, std::string(in_.str()));
        break;
      }
      case Op::local_candidate: {
        const LinkId id = link();
        node_.on_local_candidate(now_, id, std::string(in_.str()));
        break;
      }
      case Op::broadcast: broadcast(); break;
      case Op::tick:
      case Op::tick_to_wake:
        if (op == Op::tick) advance(in_.u16());
        else if (wake_at_ != kNever) now_ = std::max(now_, wake_at_);
        // The node forgets the wake it asked for at each tick (it asks anew).
        ticked = joined_before && !gone_;
        if (ticked) wake_at_ = kNever;
        node_.on_tick(now_);
        break;
      case Op::leave: node_.leave(now_); break;
      case Op::server_lost:
        lost_ = true;
        node_.on_server_lost(now_);
        break;
      case Op::relay_failed: node_.on_relay_allocation_failed(now_); break;
      case Op::count: break;
    }
    const std::vector<Action> actions = node_.take_actions();
    if (kTrace) trace(op, actions);
    check(actions, joined_before, members_before, ticked, op == Op::leave || op == Op::server_lost);
    answer_signatures(actions);
  }

  // The driver's part of signed broadcasts: a signature for each of our
  // broadcasts, a verdict (from the input) for each check.
  void answer_signatures(const std::vector<Action>& actions) {
    bool answered = false;
    const std::size_t members = node_.membership().member_count();
    for (const Action& action : actions) {
      if (const auto* sign = std::get_if<SignBroadcast>(&action)) {
        require(!node_.config().public_key.empty(), "only a peer with a key is asked to sign");
        require(sign->receivers.size() <= node_.config().max_receiver_tags,
                "tags only for a small group");
        std::string tags;
        for (const TagReceiver& r : sign->receivers) {
          require(r.peer != node_.id() && r.public_key.size() == kPublicKeyBytes,
                  "tags for other members with keys");
          append_receiver_tag(tags, r.peer, "t");
        }
        node_.on_broadcast_signed(now_, sign->id, std::string(kSignatureBytes, 's'), tags);
        answered = true;
      } else if (const auto* verify = std::get_if<VerifySignature>(&action)) {
        require(verify->public_key.size() == kPublicKeyBytes &&
                    verify->signature.size() == kSignatureBytes,
                "only well-formed signatures are checked");
        require(verify->receiver_tag.empty() || verify->receiver_tag.size() == kReceiverTagBytes,
                "a receiver tag is whole or none");
        node_.on_signature_checked(now_, verify->ticket, in_.u8() & 1);
        answered = true;
      }
    }
    if (answered) check(node_.take_actions(), true, members, false, false);
  }

  void trace(Op op, const std::vector<Action>& actions) const {
    std::fprintf(stderr, "t=%lld %s ->", static_cast<long long>(now_),
                 kOpNames[static_cast<std::size_t>(op)]);
    for (const Action& action : actions) std::fprintf(stderr, " %s", kActionNames[action.index()]);
    std::fprintf(stderr, "\n  links:");
    for (const Link& l : node_.links().all()) {
      std::fprintf(stderr, " #%llu peer %u %s %s", static_cast<unsigned long long>(l.id), l.peer,
                   l.initiated ? "ours" : "theirs",
                   l.state == LinkState::open ? "open" : "connecting");
    }
    std::fprintf(stderr, "; members %zu\n", node_.membership().member_count());
  }

  void check(const std::vector<Action>& actions, bool joined_before, std::size_t members_before,
             bool ticked, bool leaving) {
    const MeshConfig& config = node_.config();
    const std::size_t members = std::max(members_before, node_.membership().member_count());
    require(actions.size() <= 256 + 4 * members +
                                  kRepairEntries * (2 * config.max_connections + 2),
            "actions per event are bounded");
    if (!joined_before && node_.id() == kNoPeer) {
      require(actions.empty(), "no action before the welcome");
    }
    if (gone_) {
      for (const Action& action : actions) {
        const bool quiet = std::holds_alternative<Subscribe>(action) ||
                           std::holds_alternative<Publish>(action) ||
                           std::holds_alternative<OpenLink>(action) ||
                           std::holds_alternative<AcceptLink>(action) ||
                           std::holds_alternative<SendOnLink>(action);
        require(!quiet, "nothing is sent after leave / server loss");
      }
    }

    // Links: the driver may be told to send only on a link that is open (or
    // that closes later in this batch), never on one it was told to close.
    std::set<LinkId> closed;
    std::vector<LinkId> sends;
    const PeerId self = node_.id();
    for (const Action& action : actions) {
      // Every kind spelled out: a new action kind fails to compile here.
      std::visit(Overloaded{
                     [&](const CloseLink& a) {
                       closed.insert(a.link);
                       sends.erase(std::remove(sends.begin(), sends.end(), a.link), sends.end());
                     },
                     [&](const SendOnLink& a) {
                       require(!closed.count(a.link), "no send on a link after closing it");
                       sends.push_back(a.link);
                     },
                     [&](const OpenLink& a) {
                       require(a.peer != kNoPeer && a.peer != self, "links go to other peers");
                     },
                     [&](const AcceptLink& a) {
                       require(a.peer != kNoPeer && a.peer != self, "links come from other peers");
                     },
                     [&](const Deliver& a) {
                       require(a.source != self, "our own broadcast is not delivered to us");
                     },
                     [&](const Gap& a) {
                       require(a.source != self, "no gap in our own messages");
                       require(a.from_seq >= 1 && a.from_seq <= a.to_seq,
                               "a gap names a range of seqs");
                     },
                     [&](const Publish& a) {
                       require(!a.topics.empty() && a.topics.size() <= config.max_topics_per_publish,
                               "a publish names 1 to max_topics_per_publish topics");
                       require(a.body.size() <= config.max_server_message_bytes,
                               "a publish fits the server's message limit");
                     },
                     [&](const WakeAt& a) { wake_at_ = a.at; },
                     [](const Subscribe&) {}, [](const ApplyAnswer&) {},
                     [](const AddCandidate&) {}, [](const MeasureRtt&) {},
                     [](const UseIceServers&) {}, [](const PeerJoined&) {},
                     [](const PeerLeft&) {}, [](const LinkUp&) {}, [](const LinkDown&) {},
                     [](const ObserverCommand&) {},
                     [](const SignBroadcast&) {}, [](const VerifySignature&) {},
                 },
                 action);
    }
    for (const LinkId id : sends) {
      const Link* l = node_.links().find(id);
      require(l && l->state == LinkState::open, "sends go on open links");
    }
    if (ticked && wake_at_ != kNever) {
      require(wake_at_ > now_, "a tick never asks to be woken at or before now (a busy loop)");
    }

    const auto& all = node_.links().all();
    std::set<std::pair<PeerId, bool>> directions;
    std::set<LinkId> ids;
    std::set<PeerId> peers;
    for (const Link& l : all) {
      require(ids.insert(l.id).second, "link ids are unique");
      require(directions.insert({l.peer, l.initiated}).second,
              "at most one link per peer and direction");
      require(l.peer != kNoPeer && l.peer != node_.id(), "links are with other peers");
      peers.insert(l.peer);
    }
    require(peers.size() <= config.max_connections, "linked peers <= max_connections");
    require(node_.history_bytes() <= config.history_bytes, "the message history stays bounded");
    require(node_.reorder_bytes() <= config.reorder_max_bytes, "the reorder buffer stays bounded");
    if (leaving && node_.id() != kNoPeer) gone_ = true;
    if (gone_) require(all.empty(), "no link after leave / server loss");
  }

  fuzz::Reader& in_;
  MeshNode node_;
  TimeUs now_ = 1 * kSecond;
  TimeUs wake_at_ = kNever;
  bool gone_ = false;  // left, or lost the server, after the welcome
  bool lost_ = false;  // on_server_lost was called
};

}  // namespace
}  // namespace p2pmesh

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  p2pmesh::fuzz::Reader in(std::string_view(reinterpret_cast<const char*>(data), size));
  p2pmesh::MeshConfig config = p2pmesh::config_from(in);
  p2pmesh::Harness harness(in, std::move(config));
  harness.run();
  return 0;
}
