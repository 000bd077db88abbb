// Writes the structured seed corpora of the fuzz targets:
//   build/fuzz/bin/fuzz_seeds tests/fuzz/corpus
// wire/: encoded messages of every type; candidate_envelope/: envelopes;
// mesh_node/: event scripts (mesh_node_script.hpp) that join a group, link
// with peers, relay, broadcast, lose links and leave; meshd/: scripts
// (meshd_script.hpp) of connections that join, signal, flood, stall, send
// garbage and leave. Files are overwritten;
// hand-made or minimized seeds with other names stay.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>
#include <vector>

#include "candidate_envelope.hpp"
#include "mesh_node_script.hpp"
#include "meshd_script.hpp"
#include "wire.hpp"

namespace {

using namespace p2pmesh;
using fuzz::Op;
using fuzz::Writer;

std::filesystem::path root;

void write(const std::string& dir, const std::string& name, const std::string& bytes) {
  const std::filesystem::path path = root / dir / name;
  std::filesystem::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

void wire_seeds() {
  write("wire", "edge", wire::encode(wire::Edge{3, 4}));
  wire::Packet packet;
  packet.source = 1;
  packet.edges = {{1, 2}, {2, 3}, {1, 4}};
  packet.payload = "hello";
  packet.seq = 7;
  write("wire", "packet", wire::encode(packet));
  wire::Packet ping;
  ping.source = 2;
  ping.ping = 123456;
  write("wire", "ping", wire::encode(ping));
  wire::MeshUpdate status;
  status.source = 5;
  status.kind = wire::MeshUpdate::Kind::status;
  status.status = {{1, 2, 3}, 9, {1000, 2000, 0}, 1};
  write("wire", "status", wire::encode(status));
  wire::Packet signed_packet = packet;  // signed broadcasts: Packet.signature (9)
  signed_packet.signature = std::string(64, '\x5a');
  write("wire", "signed_packet", wire::encode(signed_packet));
  wire::MeshUpdate signed_status = status;  // MeshStatus.public_key (6), require_signatures (7)
  signed_status.status.public_key = std::string(32, '\x4b');
  signed_status.status.require_signatures = true;
  write("wire", "signed_status", wire::encode(signed_status));
  wire::MeshUpdate connected;
  connected.source = 5;
  connected.kind = wire::MeshUpdate::Kind::connected_to;
  connected.peer = 6;
  write("wire", "connected", wire::encode(connected));
  wire::MeshUpdate left;
  left.source = 5;
  left.kind = wire::MeshUpdate::Kind::status;
  left.left = true;
  write("wire", "left", wire::encode(left));
  wire::ServerMessage welcome;
  welcome.kind = wire::ServerMessage::Kind::welcome;
  welcome.welcome_id = 42;
  welcome.ice_servers = {IceServer{"stun:192.0.2.1:3478"},
                         IceServer{{"turn:192.0.2.1:3478?transport=udp"}, "u", "p"}};
  write("wire", "welcome", wire::encode(welcome));
  wire::ServerMessage message;
  message.kind = wire::ServerMessage::Kind::topic_message;
  message.topic = "g.mesh";
  message.sender = 5;
  message.body = wire::encode(status);
  write("wire", "topic_message", wire::encode(message));
  wire::ClientMessage subscribe;
  subscribe.kind = wire::ClientMessage::Kind::subscribe;
  subscribe.topic = "g.42.offer";
  write("wire", "subscribe", wire::encode(subscribe));
  wire::ClientMessage publish;
  publish.kind = wire::ClientMessage::Kind::publish;
  publish.topics = {"g.mesh", "g.7.fallback"};
  publish.payload = wire::encode(packet);
  write("wire", "publish", wire::encode(publish));
  wire::ClientMessage unsubscribe;
  unsubscribe.kind = wire::ClientMessage::Kind::unsubscribe;
  unsubscribe.topic = "g.mesh";
  write("wire", "unsubscribe", wire::encode(unsubscribe));
}

void envelope_seeds() {
  const std::string candidate =
      R"({"candidate":"candidate:1 1 udp 2122260223 192.0.2.7 54321 typ host",)"
      R"("sdpMid":"0","sdpMLineIndex":0})";
  write("candidate_envelope", "browser", wrap_candidate(candidate, 17));
  write("candidate_envelope", "spaced",
        " { \"initiator\" : 4294967295 , \"candidate\" : [1, \"a\\\"b\", {\"x\":null}] } ");
  write("candidate_envelope", "extra_member",
        R"({"candidate":{"candidate":""},"usernameFragment":"abc","initiator":0})");
  write("candidate_envelope", "nested", R"({"candidate":[[[[[[[[{"a":[true,false]}]]]]]]]],"initiator":3})");
}

// Peer field of a script: peer 1..12.
std::uint8_t peer(std::uint8_t id) { return static_cast<std::uint8_t>(id - 1); }
constexpr std::uint8_t kSelf = 5;

Writer header(std::uint8_t f1 = 0, std::uint8_t f2 = 0, std::uint8_t connections = 0x07) {
  Writer w;
  w.u8(f1).u8(f2).u8(connections).u8(1);
  return w;
}

// The welcome as a frame, then the echo of our status (we may dial).
void join(Writer& w) {
  w.op(Op::welcome).u8(1).u8(peer(kSelf)).u8(0);
  w.op(Op::mesh_update).u8(1).u8(3).u8(fuzz::kSelfPeer).u8(1).u8(1).u8(0);
}

// A status of `source` (version 1) listing `links`, as a frame.
void status(Writer& w, std::uint8_t source, std::uint8_t id, std::vector<std::uint8_t> links) {
  w.op(Op::mesh_update).u8(1).u8(3).u8(peer(source)).u8(id).u8(1).u8(
      static_cast<std::uint8_t>(links.size()));
  for (const std::uint8_t l : links) w.u8(peer(l));
}

void offer(Writer& w, std::uint8_t from) {
  w.op(Op::signal).u8(1).u8(0).u8(peer(from)).u8(0).str("");
}

void mesh_node_seeds() {
  {  // Join, hear two members, dial them, open one link, answer + candidates.
    Writer w = header();
    join(w);
    status(w, 1, 1, {2});
    status(w, 2, 1, {1});
    w.op(Op::tick).u16(0x4000 | 1000);  // 1 s
    w.op(Op::local_description).u8(0).str(R"({"type":"offer","sdp":"v=0"})");
    w.op(Op::signal).u8(1).u8(1).u8(peer(1)).u8(0).str("");  // answer from 1
    w.op(Op::signal).u8(0).u8(2).u8(peer(1)).u8(0).u8(0).str("");  // candidate (we initiated)
    w.op(Op::local_candidate).u8(0).str(R"({"candidate":"c"})");
    w.op(Op::link_open).u8(0);
    w.op(Op::link_rtt).u8(0).u32(20000);
    w.op(Op::link_candidate_type).u8(0).u8(3);
    w.op(Op::tick_to_wake);
    w.op(Op::broadcast).u8(0).str("hi");
    write("mesh_node", "dial_and_open", w.bytes());
  }
  {  // Signed broadcasts, the group requiring them: members announce keys;
     // a signed packet checks out, a forgery does not, an unsigned one is
     // dropped, the genuine one comes after the forgery; our broadcast is signed.
    Writer w = header(0, 128, 0x07 | 16);
    join(w);
    offer(w, 3);
    offer(w, 4);
    w.op(Op::link_open).u8(0);
    w.op(Op::link_open).u8(1);
    for (const std::uint8_t source : {3, 4}) {  // status (kind 3) with a key (32), version 2
      w.op(Op::mesh_update).u8(1).u8(3 | 32).u8(peer(source)).u8(1).u8(2).u8(1).u8(peer(kSelf));
    }
    // flags: source = the link's peer (1), route (8), a 64-byte signature (16 | 32);
    // the last byte is the driver's verdict on the signature check.
    w.op(Op::link_packet).u8(0).u8(1 | 8 | 16 | 32).u8(1).u8(1).u8(peer(4)).u16(1).str("signed").u8(1);
    w.op(Op::link_packet).u8(0).u8(1 | 8 | 16 | 32).u8(0).u16(2).str("forged").u8(0);
    w.op(Op::link_packet).u8(0).u8(1 | 8).u8(0).u16(2).str("unsigned");
    w.op(Op::link_packet).u8(0).u8(1 | 8 | 16 | 32).u8(0).u16(2).str("genuine").u8(1);
    w.op(Op::broadcast).u8(0).str("ours, signed");
    write("mesh_node", "signed_relay", w.bytes());
  }
  {  // Accept offers, relay a packet down a route, receive a fallback.
    Writer w = header();
    join(w);
    offer(w, 3);
    offer(w, 4);
    w.op(Op::link_open).u8(0);
    w.op(Op::link_open).u8(1);
    status(w, 3, 1, {kSelf});
    status(w, 4, 1, {kSelf});
    // From 3: source 3, route 3 -> self, then self -> 4.
    w.op(Op::link_packet).u8(0).u8(1 | 8).u8(1).u8(1).u8(peer(4)).u16(1).str("relay me");
    // A ping on the link.
    w.op(Op::link_packet).u8(0).u8(1 | 2).u32(777).u8(0).u16(0).str("");
    // A fallback from 6 (through the server).
    w.op(Op::signal).u8(1).u8(3).u8(peer(6)).u8(0).u8(0).u8(1).u8(0).u16(3).str("via server");
    w.op(Op::link_bytes).u8(1).str("\x0a\x02garbage");
    w.op(Op::link_closed).u8(1);
    w.op(Op::tick).u16(0x8000 | 30);  // 3 s
    write("mesh_node", "accept_and_relay", w.bytes());
  }
  {  // A full node admits newcomers, timers run, members leave, we leave.
    Writer w = header(0, 64, 0x00);  // 1 link at most, short timers
    join(w);
    offer(w, 2);
    w.op(Op::link_open).u8(0);
    status(w, 2, 1, {kSelf, 7, 8, 9});
    offer(w, 3);
    w.op(Op::tick).u16(0x8000 | 5);
    w.op(Op::tick_to_wake);
    w.op(Op::tick_to_wake);
    w.op(Op::mesh_update).u8(1).u8(3 | 4).u8(peer(2)).u8(2).u8(1).u8(0);  // 2 left
    w.op(Op::tick).u16(0xC000 | 20);  // 200 s: members time out
    w.op(Op::leave);
    write("mesh_node", "full_timers_leave", w.bytes());
  }
  {  // Flooding spread, a reference-like peer, observer commands and reports.
    Writer w = header(1 | 4 | 8);
    join(w);
    w.op(Op::mesh_update).u8(0).u8(3).u8(peer(9)).u8(1).u8(0).u8(1).u8(peer(kSelf));
    offer(w, 9);
    w.op(Op::link_open).u8(0);
    w.op(Op::signal).u8(0).u8(4).u8(peer(9)).u8(0).str("trace");
    w.op(Op::topic_raw).u8(1).str("g.report").u8(peer(9)).str("{}");
    w.op(Op::tick).u16(0x4000 | 150);
    w.op(Op::broadcast).u8(3);
    w.op(Op::server_bytes).str("\x12\x03\x0a\x01g");
    w.op(Op::server_lost);
    write("mesh_node", "flood_observer_lost", w.bytes());
  }
}

// meshd_fuzz scripts. Header: flags, max_subscriptions, max_topics, outbound
// (64 + 32 x), strikes, rate, burst, frame (64 + 16 x), rate delay (20 ms x).
namespace meshd_script {
using fuzz::Step;
Writer meshd_header(std::uint8_t flags, std::uint8_t outbound = 255, std::uint8_t strikes = 9,
              std::uint8_t rate = 0, std::uint8_t burst = 0, std::uint8_t delay = 50) {
  Writer w;
  w.u8(flags).u8(7).u8(3).u8(outbound).u8(strikes).u8(rate).u8(burst).u8(255).u8(delay);
  return w;
}
// Topic bytes: kind in the low 3 bits, group (g, h, other, h2) in bits 3-4,
// channel (offer, answer, ...) and the other client in bits 5-7.
constexpr std::uint8_t kMeshG = 0, kMeshH = 8, kOwnOffer = 1, kReportG = 3, kLong = 6, kEmpty = 7;
constexpr std::uint8_t other_offer(std::uint8_t client) {
  return static_cast<std::uint8_t>(2 | (client << 5));
}
Writer& step(Writer& w, Step s) { return w.op(static_cast<Op>(s)); }
Writer& status(Writer& w, std::uint8_t client, std::uint8_t id, std::uint8_t link) {
  step(w, Step::publish).u8(client).u8(0).u8(kMeshG);
  return w.u8(static_cast<std::uint8_t>(fuzz::Payload::status)).u8(id).u8(1).u8(link);
}
Writer& join(Writer& w, std::uint8_t clients, std::uint8_t loops = 1) {
  for (std::uint8_t c = 0; c < clients; ++c) step(w, Step::connect).u8(c % loops);
  for (std::uint8_t c = 0; c < clients; ++c) step(w, Step::subscribe).u8(c).u8(kMeshG);
  for (std::uint8_t c = 0; c < clients; ++c) step(w, Step::subscribe).u8(c).u8(kOwnOffer);
  return step(w, Step::turn);
}
}  // namespace meshd_script

void meshd_seeds() {
  using namespace meshd_script;
  using fuzz::Payload;
  {
    // Three members: statuses, an offer, one disconnects, one unsubscribes.
    Writer w = meshd_header(0);
    join(w, 3);
    status(w, 0, 1, 1);
    status(w, 1, 1, 0);
    step(w, Step::publish).u8(0).u8(0).u8(other_offer(1)).u8(static_cast<std::uint8_t>(Payload::raw));
    w.str(R"({"type":"offer","sdp":"v=0"})");
    step(w, Step::turn);
    step(w, Step::disconnect).u8(0);
    step(w, Step::turn);
    step(w, Step::unsubscribe).u8(0).u8(kMeshG);
    step(w, Step::turn);
    write("meshd", "join_signal_leave", w.bytes());
  }
  {
    // Two event loops: deliveries cross loops through the inboxes.
    Writer w = meshd_header(fuzz::kTwoLoops);
    join(w, 4, 2);
    for (std::uint8_t c = 0; c < 4; ++c) status(w, c, 1, static_cast<std::uint8_t>(c + 1));
    step(w, Step::subscribe).u8(2).u8(kMeshH);
    step(w, Step::disconnect).u8(1);
    step(w, Step::turn);
    step(w, Step::disconnect).u8(0);
    write("meshd", "two_loops", w.bytes());
  }
  {
    // Over the rate (3/s, burst 1): held, offered again as time passes; then
    // a flood longer than the rate delay is closed.
    Writer w = meshd_header(fuzz::kRate, 255, 9, 2, 0, 10);
    join(w, 2);
    for (std::uint8_t i = 0; i < 6; ++i) status(w, 0, static_cast<std::uint8_t>(i + 2), 1);
    step(w, Step::advance).u16(400);
    step(w, Step::turn);
    step(w, Step::advance).u16(2000);
    for (std::uint8_t i = 0; i < 12; ++i) status(w, 1, static_cast<std::uint8_t>(i + 2), 0);
    step(w, Step::advance).u16(300);
    step(w, Step::turn);
    write("meshd", "rate_hold_close", w.bytes());
  }
  {
    // A member that stops reading while its group is busy: a slow consumer.
    Writer w = meshd_header(0, 2);
    join(w, 3);
    step(w, Step::stall).u8(2);
    for (std::uint8_t i = 0; i < 8; ++i) {
      step(w, Step::publish).u8(0).u8(0).u8(kMeshG).u8(static_cast<std::uint8_t>(Payload::big)).u8(0);
      status(w, 1, static_cast<std::uint8_t>(i + 1), 0);
    }
    step(w, Step::turn);
    write("meshd", "slow_consumer", w.bytes());
  }
  {
    // Garbage, text, bad and forbidden topics, forged updates: strikes.
    Writer w = meshd_header(0, 255, 4);
    join(w, 2);
    step(w, Step::raw).u8(0).str("\x0a\xff\xff");
    step(w, Step::text).u8(0);
    step(w, Step::subscribe).u8(1).u8(kLong);
    step(w, Step::subscribe).u8(1).u8(kEmpty);
    step(w, Step::subscribe).u8(1).u8(other_offer(0));
    step(w, Step::publish).u8(1).u8(1).u8(kMeshG).u8(kReportG)
        .u8(static_cast<std::uint8_t>(Payload::forged)).u8(0);
    step(w, Step::publish).u8(1).u8(0).u8(kMeshG).u8(static_cast<std::uint8_t>(Payload::left));
    step(w, Step::turn);
    write("meshd", "garbage_strikes", w.bytes());
  }
  {
    // Tokens (groups g and h*) on an --open meshd.
    Writer w = meshd_header(fuzz::kTokens | fuzz::kOpen);
    join(w, 2);
    step(w, Step::subscribe).u8(0).u8(kMeshH);
    step(w, Step::subscribe).u8(1).u8(16);  // other.mesh: not granted
    status(w, 0, 1, 1);
    step(w, Step::disconnect).u8(0);
    write("meshd", "tokens_open", w.bytes());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_seeds CORPUS_DIR (tests/fuzz/corpus)\n");
    return 2;
  }
  root = argv[1];
  wire_seeds();
  envelope_seeds();
  mesh_node_seeds();
  meshd_seeds();
  return 0;
}
