// Wire codec tests. The reference for every byte is libprotobuf, through the
// protoc-generated classes of proto/mesh.proto ("mesh.pb.h", namespace
// p2pmesh): our encoder must produce exactly its bytes, our decoder must read
// its bytes (and hand-built variants it accepts) to the same values.
#include "wire.hpp"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/stubs/logging.h>
#include <google/protobuf/unknown_field_set.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "mesh.pb.h"

namespace w = p2pmesh::wire;
namespace pb = p2pmesh;  // protoc-generated reference classes
namespace gp = google::protobuf;

using w::DecodeError;

namespace {

using Rng = std::mt19937_64;

// ---------------------------------------------------------------------------
// Hand-built protobuf bytes.
// ---------------------------------------------------------------------------

std::string varint(std::uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}

// `value` spread over exactly `bytes` bytes (non-canonical when padded).
std::string long_varint(std::uint64_t value, std::size_t bytes) {
  std::string out;
  for (std::size_t i = 0; i + 1 < bytes; ++i) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value & 0x7F));
  return out;
}

enum WireType : std::uint32_t {
  kVarint = 0,
  kFixed64 = 1,
  kLen = 2,
  kStartGroup = 3,
  kFixed32 = 5
};

std::string tag(std::uint32_t field, WireType type) {
  return varint((std::uint64_t{field} << 3) | type);
}
std::string varint_field(std::uint32_t field, std::uint64_t value) {
  return tag(field, kVarint) + varint(value);
}
std::string len_field(std::uint32_t field, std::string_view body) {
  return tag(field, kLen) + varint(body.size()) + std::string(body);
}
std::string fixed32_field(std::uint32_t field, std::uint32_t value) {
  std::string out = tag(field, kFixed32);
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
  return out;
}
std::string fixed64_field(std::uint32_t field, std::uint64_t value) {
  std::string out = tag(field, kFixed64);
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>(value >> (8 * i)));
  return out;
}

std::string hex(std::string_view bytes) {
  std::string out;
  char buf[4];
  for (const char c : bytes) {
    std::snprintf(buf, sizeof buf, "%02x ", static_cast<unsigned char>(c));
    out += buf;
  }
  return out;
}

// libprotobuf serialization, deterministic mode.
std::string serialize(const gp::Message& message) {
  std::string out;
  {
    gp::io::StringOutputStream stream(&out);
    gp::io::CodedOutputStream coded(&stream);
    coded.SetSerializationDeterministic(true);
    EXPECT_TRUE(message.SerializeToCodedStream(&coded));
  }
  return out;
}

// ---------------------------------------------------------------------------
// Seeded random values: ids of every varint length, 0 and 0xFFFFFFFF
// included; binary payloads; valid UTF-8 topics (proto3 `string`).
// ---------------------------------------------------------------------------

std::uint64_t pick(Rng& rng, std::uint64_t n) { return rng() % n; }

std::uint32_t random_u32(Rng& rng) {
  switch (pick(rng, 8)) {
    case 0: return 0;
    case 1: return 0xFFFFFFFFu;
    case 2: return static_cast<std::uint32_t>(pick(rng, 128));
    case 3: return 127u + static_cast<std::uint32_t>(pick(rng, 3));  // 1/2-byte boundary
    case 4: return 0x80000000u;
    default: {
      const auto bits = static_cast<unsigned>(1 + pick(rng, 32));
      return static_cast<std::uint32_t>(rng()) >> (32 - bits);
    }
  }
}

std::uint64_t random_u64(Rng& rng) {
  switch (pick(rng, 5)) {
    case 0: return 0;
    case 1: return std::numeric_limits<std::uint64_t>::max();
    case 2: return 1 + pick(rng, 1000);
    default: {
      const auto bits = static_cast<unsigned>(1 + pick(rng, 64));
      return rng() >> (64 - bits);
    }
  }
}

std::size_t random_size(Rng& rng, std::size_t large) {
  switch (pick(rng, 4)) {
    case 0: return 0;
    case 1: return 1;
    case 2: return static_cast<std::size_t>(pick(rng, 20));
    default: return static_cast<std::size_t>(pick(rng, large + 1));
  }
}

std::string random_bytes(Rng& rng, std::size_t max_size = 300) {
  std::string out(random_size(rng, max_size), '\0');
  for (char& c : out) c = static_cast<char>(pick(rng, 256));
  return out;
}

std::string random_topic(Rng& rng) {
  static const std::vector<std::string> pieces = {"room", ".", "mesh", "17",   "offer", "a",
                                                  "Z",    "_", "é",    "日本", "🚀",     " "};
  std::string out;
  const std::size_t n = random_size(rng, 12);
  for (std::size_t i = 0; i < n; ++i) out += pieces[pick(rng, pieces.size())];
  return out;
}

std::vector<std::uint32_t> random_u32s(Rng& rng, std::size_t max_size) {
  std::vector<std::uint32_t> out(random_size(rng, max_size));
  for (auto& v : out) v = random_u32(rng);
  return out;
}

// ---------------------------------------------------------------------------
// One Codec<T> per message: random values and conversions to and from the
// libprotobuf reference class.
// ---------------------------------------------------------------------------

template <class T>
struct Codec;

template <>
struct Codec<w::Edge> {
  using Pb = pb::Edge;
  static w::Edge random(Rng& rng) { return {random_u32(rng), random_u32(rng)}; }
  static Pb to_pb(const w::Edge& e) {
    Pb out;
    out.set_u(e.u);
    out.set_v(e.v);
    return out;
  }
  static w::Edge from_pb(const Pb& e) { return {e.u(), e.v()}; }
};

template <>
struct Codec<w::Packet> {
  using Pb = pb::Packet;
  static w::Packet random(Rng& rng) {
    w::Packet p;
    p.source = random_u32(rng);
    p.edges.resize(random_size(rng, pick(rng, 8) == 0 ? 600 : 40));
    for (auto& e : p.edges) e = Codec<w::Edge>::random(rng);
    p.payload = random_bytes(rng);
    p.seq = random_u64(rng);
    p.ping = pick(rng, 4) == 0 ? random_u64(rng) : 0;
    p.pong = pick(rng, 4) == 0 ? random_u64(rng) : 0;
    for (auto* ids : {&p.have, &p.want, &p.gone}) {
      ids->resize(pick(rng, 4) == 0 ? random_size(rng, 20) : 0);
      for (auto& id : *ids) id = {random_u32(rng), random_u64(rng)};
    }
    p.unreliable_seq = pick(rng, 4) == 0 ? random_u64(rng) : 0;
    if (pick(rng, 2) == 0) p.signature = random_bytes(rng, 64);
    if (pick(rng, 3) == 0) p.receiver_tags = random_bytes(rng, 20 * 16);
    return p;
  }
  static Pb to_pb(const w::Packet& p) {
    Pb out;
    out.set_source(p.source);
    for (const auto& e : p.edges) *out.add_edges() = Codec<w::Edge>::to_pb(e);
    out.set_payload(p.payload);
    out.set_seq(p.seq);
    out.set_ping(p.ping);
    out.set_pong(p.pong);
    for (const auto& id : p.have) {
      auto* m = out.add_have();
      m->set_source(id.source);
      m->set_seq(id.seq);
    }
    for (const auto& id : p.want) {
      auto* m = out.add_want();
      m->set_source(id.source);
      m->set_seq(id.seq);
    }
    for (const auto& id : p.gone) {
      auto* m = out.add_gone();
      m->set_source(id.source);
      m->set_seq(id.seq);
    }
    out.set_unreliable_seq(p.unreliable_seq);
    out.set_signature(p.signature);
    out.set_receiver_tags(p.receiver_tags);
    return out;
  }
  static w::Packet from_pb(const Pb& p) {
    w::Packet out;
    out.source = p.source();
    for (const auto& e : p.edges()) out.edges.push_back(Codec<w::Edge>::from_pb(e));
    out.payload = p.payload();
    out.seq = p.seq();
    out.ping = p.ping();
    out.pong = p.pong();
    for (const auto& id : p.have()) out.have.push_back({id.source(), id.seq()});
    for (const auto& id : p.want()) out.want.push_back({id.source(), id.seq()});
    for (const auto& id : p.gone()) out.gone.push_back({id.source(), id.seq()});
    out.unreliable_seq = p.unreliable_seq();
    out.signature = p.signature();
    out.receiver_tags = p.receiver_tags();
    return out;
  }
};

template <>
struct Codec<w::MeshStatus> {
  using Pb = pb::MeshStatusMessage;
  static w::MeshStatus random(Rng& rng) {
    w::MeshStatus s;
    s.connected_to = random_u32s(rng, pick(rng, 8) == 0 ? 500 : 12);
    s.id = random_u32(rng);
    if (pick(rng, 2) == 0) {
      s.rtt_us.resize(s.connected_to.size());
      for (auto& r : s.rtt_us) r = random_u32(rng);
    } else {
      s.rtt_us = random_u32s(rng, 12);  // not necessarily parallel on the wire
    }
    s.version = random_u32(rng);
    s.next_seq = pick(rng, 2) == 0 ? random_u64(rng) : 0;
    if (pick(rng, 2) == 0) s.public_key = random_bytes(rng, 32);
    s.require_signatures = pick(rng, 2) == 0;
    return s;
  }
  static Pb to_pb(const w::MeshStatus& s) {
    Pb out;
    for (const auto id : s.connected_to) out.add_connected_to(id);
    out.set_id(s.id);
    for (const auto rtt : s.rtt_us) out.add_rtt_us(rtt);
    out.set_version(s.version);
    out.set_next_seq(s.next_seq);
    out.set_public_key(s.public_key);
    out.set_require_signatures(s.require_signatures);
    return out;
  }
  static w::MeshStatus from_pb(const Pb& s) {
    w::MeshStatus out;
    out.connected_to.assign(s.connected_to().begin(), s.connected_to().end());
    out.id = s.id();
    out.rtt_us.assign(s.rtt_us().begin(), s.rtt_us().end());
    out.version = s.version();
    out.next_seq = s.next_seq();
    out.public_key = s.public_key();
    out.require_signatures = s.require_signatures();
    return out;
  }
};

template <>
struct Codec<w::MeshUpdate> {
  using Pb = pb::MeshUpdateMessage;
  using Kind = w::MeshUpdate::Kind;
  static w::MeshUpdate random(Rng& rng) {
    w::MeshUpdate u;
    u.source = random_u32(rng);
    u.left = pick(rng, 4) == 0;
    // Only values that decode again: no oneof member is valid only with `left`.
    const std::uint64_t kinds = u.left ? 4 : 3;
    switch (pick(rng, kinds)) {
      case 0: u.kind = Kind::connected_to; break;
      case 1: u.kind = Kind::disconnected_from; break;
      case 2: u.kind = Kind::status; break;
      default: u.kind = Kind::none; break;
    }
    if (u.kind == Kind::connected_to || u.kind == Kind::disconnected_from) {
      u.peer = random_u32(rng);
    }
    if (u.kind == Kind::status && pick(rng, 5) != 0) u.status = Codec<w::MeshStatus>::random(rng);
    return u;
  }
  static Pb to_pb(const w::MeshUpdate& u) {
    Pb out;
    out.set_source(u.source);
    switch (u.kind) {
      case Kind::none: break;
      case Kind::connected_to: out.set_connected_to(u.peer); break;
      case Kind::disconnected_from: out.set_disconnected_from(u.peer); break;
      case Kind::status: *out.mutable_status() = Codec<w::MeshStatus>::to_pb(u.status); break;
    }
    out.set_left(u.left);
    return out;
  }
  static w::MeshUpdate from_pb(const Pb& u) {
    w::MeshUpdate out;
    out.source = u.source();
    switch (u.data_case()) {
      case Pb::DATA_NOT_SET: break;
      case Pb::kConnectedTo:
        out.kind = Kind::connected_to;
        out.peer = u.connected_to();
        break;
      case Pb::kDisconnectedFrom:
        out.kind = Kind::disconnected_from;
        out.peer = u.disconnected_from();
        break;
      case Pb::kStatus:
        out.kind = Kind::status;
        out.status = Codec<w::MeshStatus>::from_pb(u.status());
        break;
    }
    out.left = u.left();
    return out;
  }
};

template <>
struct Codec<w::ServerMessage> {
  using Pb = pb::ServerMessage;
  using Kind = w::ServerMessage::Kind;
  static w::ServerMessage random(Rng& rng) {
    w::ServerMessage m;
    if (pick(rng, 3) == 0) {
      m.kind = Kind::welcome;
      m.welcome_id = random_u32(rng);
      const std::size_t servers = pick(rng, 3);
      for (std::size_t i = 0; i < servers; ++i) {
        w::IceServer& server = m.ice_servers.emplace_back();
        const std::size_t urls = pick(rng, 3);
        for (std::size_t u = 0; u < urls; ++u) server.urls.push_back(random_topic(rng));
        if (pick(rng, 2) == 0) {
          server.username = random_topic(rng);
          server.credential = random_topic(rng);
        }
      }
    } else if (pick(rng, 2) == 0) {
      m.kind = Kind::topic_message;
      m.topic = random_topic(rng);
      m.sender = random_u32(rng);
      m.body = random_bytes(rng);
    } else {
      m.kind = Kind::topic_batch;
      m.topic = random_topic(rng);
      m.batch.resize(random_size(rng, 20));
      for (w::BatchEntry& entry : m.batch) {
        entry.sender = random_u32(rng);
        entry.body = random_bytes(rng);
      }
    }
    return m;
  }
  static Pb to_pb(const w::ServerMessage& m) {
    Pb out;
    switch (m.kind) {
      case Kind::none: break;
      case Kind::welcome:
        out.mutable_welcome()->set_id(m.welcome_id);
        for (const w::IceServer& server : m.ice_servers) {
          auto* s = out.mutable_welcome()->add_ice_servers();
          for (const std::string& url : server.urls) s->add_urls(url);
          s->set_username(server.username);
          s->set_credential(server.credential);
        }
        break;
      case Kind::topic_message: {
        auto* t = out.mutable_topic_message();
        t->set_topic(m.topic);
        t->set_sender(m.sender);
        t->set_body(m.body);
        break;
      }
      case Kind::topic_batch: {
        auto* b = out.mutable_topic_batch();
        b->set_topic(m.topic);
        for (const w::BatchEntry& entry : m.batch) {
          auto* t = b->add_messages();
          t->set_sender(entry.sender);
          t->set_body(entry.body);
        }
        break;
      }
    }
    return out;
  }
  static w::ServerMessage from_pb(const Pb& m) {
    w::ServerMessage out;
    switch (m.message_case()) {
      case Pb::MESSAGE_NOT_SET: break;
      case Pb::kWelcome:
        out.kind = Kind::welcome;
        out.welcome_id = m.welcome().id();
        for (const auto& server : m.welcome().ice_servers()) {
          w::IceServer& s = out.ice_servers.emplace_back();
          s.urls.assign(server.urls().begin(), server.urls().end());
          s.username = server.username();
          s.credential = server.credential();
        }
        break;
      case Pb::kTopicMessage:
        out.kind = Kind::topic_message;
        out.topic = m.topic_message().topic();
        out.sender = m.topic_message().sender();
        out.body = m.topic_message().body();
        break;
      case Pb::kTopicBatch:
        out.kind = Kind::topic_batch;
        out.topic = m.topic_batch().topic();
        for (const auto& t : m.topic_batch().messages()) out.batch.push_back({t.sender(), t.body()});
        break;
    }
    return out;
  }
};

template <>
struct Codec<w::ClientMessage> {
  using Pb = pb::ClientMessage;
  using Kind = w::ClientMessage::Kind;
  static w::ClientMessage random(Rng& rng) {
    w::ClientMessage m;
    switch (pick(rng, 3)) {
      case 0:
        m.kind = Kind::subscribe;
        m.topic = random_topic(rng);
        if (pick(rng, 2) == 0) m.batch_ms = random_u32(rng);
        break;
      case 1:
        m.kind = Kind::unsubscribe;
        m.topic = random_topic(rng);
        break;
      default:
        m.kind = Kind::publish;
        m.topics.resize(random_size(rng, 30));
        for (auto& t : m.topics) t = random_topic(rng);  // empty topics included
        m.payload = random_bytes(rng);
        break;
    }
    return m;
  }
  static Pb to_pb(const w::ClientMessage& m) {
    Pb out;
    switch (m.kind) {
      case Kind::none: break;
      case Kind::subscribe:
        out.mutable_subscribe_request()->set_topic(m.topic);
        out.mutable_subscribe_request()->set_batch_ms(m.batch_ms);
        break;
      case Kind::unsubscribe: out.mutable_unsubscribe_request()->set_topic(m.topic); break;
      case Kind::publish: {
        auto* p = out.mutable_publish_request();
        for (const auto& t : m.topics) p->add_topics(t);
        p->set_payload(m.payload);
        break;
      }
    }
    return out;
  }
  static w::ClientMessage from_pb(const Pb& m) {
    w::ClientMessage out;
    switch (m.message_case()) {
      case Pb::MESSAGE_NOT_SET: break;
      case Pb::kSubscribeRequest:
        out.kind = Kind::subscribe;
        out.topic = m.subscribe_request().topic();
        out.batch_ms = m.subscribe_request().batch_ms();
        break;
      case Pb::kUnsubscribeRequest:
        out.kind = Kind::unsubscribe;
        out.topic = m.unsubscribe_request().topic();
        break;
      case Pb::kPublishRequest:
        out.kind = Kind::publish;
        out.topics.assign(m.publish_request().topics().begin(), m.publish_request().topics().end());
        out.payload = m.publish_request().payload();
        break;
    }
    return out;
  }
};

// libprotobuf's view of `bytes` as one of our values, if it parses them.
template <class T>
bool reference_decode(const std::string& bytes, T& out) {
  typename Codec<T>::Pb message;
  if (!message.ParseFromString(bytes)) return false;
  out = Codec<T>::from_pb(message);
  return true;
}

// Adds unknown fields (numbers our schema does not use, every wire type but
// groups) to `message` and, recursively, to every sub-message set in it.
void add_unknown_fields(gp::Message& message, Rng& rng) {
  const gp::Reflection* reflection = message.GetReflection();
  std::vector<const gp::FieldDescriptor*> fields;
  reflection->ListFields(message, &fields);
  for (const gp::FieldDescriptor* field : fields) {
    if (field->cpp_type() != gp::FieldDescriptor::CPPTYPE_MESSAGE) continue;
    if (field->is_repeated()) {
      for (int i = 0; i < reflection->FieldSize(message, field); ++i) {
        add_unknown_fields(*reflection->MutableRepeatedMessage(&message, field, i), rng);
      }
    } else {
      add_unknown_fields(*reflection->MutableMessage(&message, field), rng);
    }
  }
  gp::UnknownFieldSet* unknown = reflection->MutableUnknownFields(&message);
  const std::uint64_t count = 1 + pick(rng, 4);
  for (std::uint64_t i = 0; i < count; ++i) {
    // Beyond every known field number (the largest is Packet.receiver_tags =
    // 12), up to the largest legal one.
    const int number = pick(rng, 2) == 0 ? static_cast<int>(16 + pick(rng, 200))
                                         : static_cast<int>(20000 + pick(rng, (1 << 29) - 20000));
    switch (pick(rng, 4)) {
      case 0: unknown->AddVarint(number, random_u64(rng)); break;
      case 1: unknown->AddFixed32(number, static_cast<std::uint32_t>(rng())); break;
      case 2: unknown->AddFixed64(number, rng()); break;
      default: unknown->AddLengthDelimited(number, random_bytes(rng, 40)); break;
    }
  }
}

// Random "field soup": mostly well-formed fields with numbers around the
// known ones, random wire types and values, nested soups in length-delimited
// fields. Reaches deep decoder paths far more often than uniform bytes.
std::string random_soup(Rng& rng, int depth) {
  std::string out;
  const std::uint64_t fields = pick(rng, 7);
  for (std::uint64_t i = 0; i < fields; ++i) {
    auto number = static_cast<std::uint32_t>(1 + pick(rng, 7));
    if (pick(rng, 30) == 0) number = static_cast<std::uint32_t>(19000 + pick(rng, 1000));
    if (pick(rng, 30) == 0) {  // an (unknown, unless it is not) group
      out += tag(number, kStartGroup) + (depth > 0 ? random_soup(rng, depth - 1) : "") +
             tag(pick(rng, 8) == 0 ? number + 1 : number, static_cast<WireType>(4));
      continue;
    }
    switch (pick(rng, 8)) {
      case 0:
      case 1:
      case 2:
        out += varint_field(number, pick(rng, 3) == 0 ? random_u64(rng) : random_u32(rng));
        break;
      case 3: out += fixed32_field(number, static_cast<std::uint32_t>(rng())); break;
      case 4: out += fixed64_field(number, rng()); break;
      case 5: out += len_field(number, random_bytes(rng, 12)); break;
      default: out += len_field(number, depth > 0 ? random_soup(rng, depth - 1) : ""); break;
    }
  }
  if (pick(rng, 10) == 0 && !out.empty()) {
    out.resize(static_cast<std::size_t>(pick(rng, out.size())));  // and sometimes cut short
  }
  return out;
}

// Same bytes, randomly damaged: flipped bits, inserted or deleted bytes.
std::string mutate(std::string bytes, Rng& rng) {
  const std::uint64_t edits = 1 + pick(rng, 4);
  for (std::uint64_t i = 0; i < edits; ++i) {
    const std::size_t at = bytes.empty() ? 0 : static_cast<std::size_t>(pick(rng, bytes.size()));
    switch (pick(rng, 4)) {
      case 0:
        if (!bytes.empty()) bytes[at] = static_cast<char>(bytes[at] ^ (1 << pick(rng, 8)));
        break;
      case 1:
        if (!bytes.empty()) bytes[at] = static_cast<char>(pick(rng, 256));
        break;
      case 2: bytes.insert(at, 1, static_cast<char>(pick(rng, 256))); break;
      default:
        if (!bytes.empty()) bytes.erase(at, 1);
        break;
    }
  }
  return bytes;
}

}  // namespace

// Readable failure messages: print our values through libprotobuf's text form.
namespace p2pmesh::wire {
template <class T>
void print_via_reference(const T& value, std::ostream* os) {
  *os << "{" << Codec<T>::to_pb(value).ShortDebugString() << "}";
}
void PrintTo(const Edge& v, std::ostream* os) { print_via_reference(v, os); }
void PrintTo(const Packet& v, std::ostream* os) { print_via_reference(v, os); }
void PrintTo(const MeshStatus& v, std::ostream* os) { print_via_reference(v, os); }
void PrintTo(const MeshUpdate& v, std::ostream* os) { print_via_reference(v, os); }
void PrintTo(const ServerMessage& v, std::ostream* os) { print_via_reference(v, os); }
void PrintTo(const ClientMessage& v, std::ostream* os) { print_via_reference(v, os); }
void PrintTo(DecodeError e, std::ostream* os) { *os << to_string(e); }
}  // namespace p2pmesh::wire

namespace {

// ===========================================================================
// Every message, against libprotobuf.
// ===========================================================================

template <class T>
class WireMessage : public ::testing::Test {};

using AllMessages = ::testing::Types<w::Edge, w::Packet, w::MeshStatus, w::MeshUpdate,
                                     w::ServerMessage, w::ClientMessage>;
class MessageNames {
 public:
  template <class T>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<T, w::Edge>) return "Edge";
    if constexpr (std::is_same_v<T, w::Packet>) return "Packet";
    if constexpr (std::is_same_v<T, w::MeshStatus>) return "MeshStatus";
    if constexpr (std::is_same_v<T, w::MeshUpdate>) return "MeshUpdate";
    if constexpr (std::is_same_v<T, w::ServerMessage>) return "ServerMessage";
    if constexpr (std::is_same_v<T, w::ClientMessage>) return "ClientMessage";
    return "unknown";
  }
};
TYPED_TEST_SUITE(WireMessage, AllMessages, MessageNames);

constexpr int kRandomValues = 3000;

TYPED_TEST(WireMessage, OurBytesAreIdenticalToLibprotobufs) {
  Rng rng(1);
  for (int i = 0; i < kRandomValues; ++i) {
    const TypeParam value = Codec<TypeParam>::random(rng);
    const std::string ours = w::encode(value);
    const std::string reference = serialize(Codec<TypeParam>::to_pb(value));
    ASSERT_EQ(ours, reference) << "value " << ::testing::PrintToString(value) << "\nours "
                               << hex(ours) << "\nlibprotobuf " << hex(reference);
  }
}

TYPED_TEST(WireMessage, LibprotobufBytesDecodeToTheOriginalValue) {
  Rng rng(2);
  for (int i = 0; i < kRandomValues; ++i) {
    const TypeParam value = Codec<TypeParam>::random(rng);
    const std::string reference = serialize(Codec<TypeParam>::to_pb(value));
    TypeParam decoded;
    ASSERT_EQ(w::decode(reference, decoded), DecodeError::none) << hex(reference);
    ASSERT_EQ(decoded, value) << hex(reference);
  }
}

TYPED_TEST(WireMessage, LibprotobufReadsOurBytesBackToTheOriginalValue) {
  Rng rng(3);
  for (int i = 0; i < kRandomValues; ++i) {
    const TypeParam value = Codec<TypeParam>::random(rng);
    const std::string ours = w::encode(value);
    TypeParam parsed;
    ASSERT_TRUE(reference_decode(ours, parsed)) << hex(ours);
    ASSERT_EQ(parsed, value) << hex(ours);
  }
}

TYPED_TEST(WireMessage, UnknownFieldsFromNewerPeersAreSkippedAtEveryLevel) {
  Rng rng(4);
  for (int i = 0; i < 1000; ++i) {
    const TypeParam value = Codec<TypeParam>::random(rng);
    auto message = Codec<TypeParam>::to_pb(value);
    add_unknown_fields(message, rng);
    // libprotobuf writes unknown fields last; also put some first.
    std::string prefix;
    Rng soup_rng(rng());
    for (int f = 0; f < 3; ++f) {
      prefix +=
          // Past every known field number (Packet's highest is 10).
          varint_field(static_cast<std::uint32_t>(16 + pick(soup_rng, 100)), random_u64(soup_rng));
      prefix += len_field(static_cast<std::uint32_t>(20000 + pick(soup_rng, 1000)),
                          random_bytes(soup_rng, 20));
      prefix += fixed32_field(static_cast<std::uint32_t>(1000 + pick(soup_rng, 100)), 7);
      prefix += fixed64_field(static_cast<std::uint32_t>((1u << 29) - 1), 9);
    }
    const std::string bytes = prefix + serialize(message);
    TypeParam decoded;
    ASSERT_EQ(w::decode(bytes, decoded), DecodeError::none) << hex(bytes);
    ASSERT_EQ(decoded, value) << hex(bytes);
  }
}

// A cut-off message is either rejected or reads as exactly the fields it
// still holds in full: re-encoding gives back the same prefix.
TYPED_TEST(WireMessage, EveryTruncationIsRejectedOrReadsAsTheFieldsBeforeTheCut) {
  Rng rng(5);
  for (int i = 0; i < 300; ++i) {
    const std::string bytes = w::encode(Codec<TypeParam>::random(rng));
    for (std::size_t size = 0; size < bytes.size(); ++size) {
      const std::string prefix = bytes.substr(0, size);
      TypeParam decoded;
      const DecodeError error = w::decode(prefix, decoded);
      if (error == DecodeError::none) {
        ASSERT_EQ(w::encode(decoded), prefix) << "cut at " << size << " of " << hex(bytes);
      } else {
        ASSERT_EQ(decoded, TypeParam{}) << "a rejected message leaves no partial data";
      }
    }
  }
}

// A twin of the reference schema in which every `string` is `bytes`: it parses
// exactly what the real one does, minus proto3's UTF-8 check on strings.
std::unique_ptr<gp::Message> new_bytes_twin(const gp::Descriptor* original) {
  static gp::DescriptorPool pool;
  static gp::DynamicMessageFactory factory(&pool);
  static const bool built = [] {
    gp::FileDescriptorProto file;
    pb::Packet::descriptor()->file()->CopyTo(&file);
    for (auto& message : *file.mutable_message_type()) {
      for (auto& field : *message.mutable_field()) {
        if (field.type() == gp::FieldDescriptorProto::TYPE_STRING) {
          field.set_type(gp::FieldDescriptorProto::TYPE_BYTES);
        }
      }
    }
    return pool.BuildFile(file) != nullptr;
  }();
  EXPECT_TRUE(built);
  const gp::Descriptor* twin = pool.FindMessageTypeByName(original->full_name());
  return std::unique_ptr<gp::Message>(factory.GetPrototype(twin)->New());
}

// Hostile input never crashes (ASan/UBSan runs check memory too), never
// throws, and whenever both we and libprotobuf accept it we agree on it.
template <class T>
void expect_safe_and_consistent(const std::string& bytes, int& accepted, int& agreed) {
  T ours;
  const DecodeError error = w::decode(bytes, ours);
  if (error != DecodeError::none) {
    ASSERT_EQ(ours, T{});
    return;
  }
  ++accepted;
  // What we accept we can re-encode, and that re-encoding is stable.
  T again;
  ASSERT_EQ(w::decode(w::encode(ours), again), DecodeError::none) << hex(bytes);
  ASSERT_EQ(again, ours) << hex(bytes);
  // What we accept, libprotobuf accepts, and reads the same way. The one
  // exception: proto3 `string` fields that are not valid UTF-8, which
  // libprotobuf refuses and we (like a JavaScript peer) pass through.
  T reference;
  if (reference_decode(bytes, reference)) {
    ++agreed;
    ASSERT_EQ(ours, reference) << hex(bytes);
  } else {
    // Then libprotobuf refuses it only for UTF-8: the same schema with
    // `bytes` in place of `string` accepts it, and reads it as we do.
    const std::unique_ptr<gp::Message> twin = new_bytes_twin(Codec<T>::Pb::descriptor());
    ASSERT_TRUE(twin->ParseFromString(bytes))
        << "libprotobuf refuses what we accept: " << hex(bytes);
    twin->DiscardUnknownFields();
    ASSERT_EQ(serialize(*twin), w::encode(ours)) << hex(bytes);
  }
}

TYPED_TEST(WireMessage, RandomGarbageNeverCrashesAndAgreesWithLibprotobuf) {
  const gp::LogSilencer silence;  // libprotobuf logs invalid UTF-8 in strings
  Rng rng(6);
  int accepted = 0;
  int agreed = 0;
  for (int i = 0; i < 5000; ++i) {
    const std::string bytes = random_bytes(rng, 64);
    ASSERT_NO_FATAL_FAILURE(expect_safe_and_consistent<TypeParam>(bytes, accepted, agreed));
  }
  for (int i = 0; i < 10000; ++i) {
    const std::string bytes = random_soup(rng, 3);
    ASSERT_NO_FATAL_FAILURE(expect_safe_and_consistent<TypeParam>(bytes, accepted, agreed));
  }
  this->RecordProperty("accepted", accepted);
  this->RecordProperty("agreed_with_libprotobuf", agreed);
  EXPECT_GT(agreed, 100) << "the generator should reach valid messages too";
}

TYPED_TEST(WireMessage, DamagedValidMessagesNeverCrashAndAgreeWithLibprotobuf) {
  const gp::LogSilencer silence;
  Rng rng(7);
  int accepted = 0;
  int agreed = 0;
  for (int i = 0; i < 1000; ++i) {
    const std::string bytes = w::encode(Codec<TypeParam>::random(rng));
    for (int m = 0; m < 10; ++m) {
      ASSERT_NO_FATAL_FAILURE(
          expect_safe_and_consistent<TypeParam>(mutate(bytes, rng), accepted, agreed));
    }
  }
  EXPECT_GT(agreed, 100);
}

TYPED_TEST(WireMessage, DecodeForgetsWhateverTheOutputHeldBefore) {
  Rng rng(8);
  for (int i = 0; i < 200; ++i) {
    const TypeParam first = Codec<TypeParam>::random(rng);
    const TypeParam second = Codec<TypeParam>::random(rng);
    TypeParam out = first;
    ASSERT_EQ(w::decode(w::encode(second), out), DecodeError::none);
    ASSERT_EQ(out, second);
  }
}

TYPED_TEST(WireMessage, BufferOverTheSizeLimitIsRejectedAsTooLarge) {
  Rng rng(9);
  const TypeParam value = Codec<TypeParam>::random(rng);
  const std::string bytes = w::encode(value);
  TypeParam out;
  w::DecodeLimits limits;
  limits.max_message_bytes = bytes.size();
  EXPECT_EQ(w::decode(bytes, out, limits), DecodeError::none);
  EXPECT_EQ(out, value);
  // One more (unknown, 2-byte) field pushes it over the limit.
  EXPECT_EQ(w::decode(bytes + varint_field(7, 1), out, limits), DecodeError::too_large);
  EXPECT_EQ(out, TypeParam{});
  limits.max_message_bytes = 0;
  EXPECT_EQ(w::decode(bytes + varint_field(7, 1), out, limits), DecodeError::too_large);
}

// ===========================================================================
// Encoding details a reference peer depends on.
// ===========================================================================

TEST(WireEncoding, DefaultValuesAreNotSent) {
  EXPECT_EQ(w::encode(w::Edge{}), "");
  EXPECT_EQ(w::encode(w::Packet{}), "");
  EXPECT_EQ(w::encode(w::MeshStatus{}), "");
  // An edge in a packet is always sent, even the all-zero one.
  w::Packet packet;
  packet.edges.push_back({});
  EXPECT_EQ(w::encode(packet), len_field(2, ""));
}

TEST(WireEncoding, WelcomeWithIdZeroIsStillAWelcome) {
  w::ServerMessage welcome;
  welcome.kind = w::ServerMessage::Kind::welcome;
  EXPECT_EQ(w::encode(welcome), len_field(1, ""));
  pb::ServerMessage reference;
  reference.mutable_welcome();
  EXPECT_EQ(serialize(reference), len_field(1, ""));

  w::ServerMessage decoded;
  ASSERT_EQ(w::decode(len_field(1, ""), decoded), DecodeError::none);
  EXPECT_EQ(decoded, welcome);
}

TEST(WireEncoding, EmptyStatusAndZeroPeerUpdatesAreStillSent) {
  w::MeshUpdate update;
  update.kind = w::MeshUpdate::Kind::status;
  EXPECT_EQ(w::encode(update), len_field(4, ""));
  update.kind = w::MeshUpdate::Kind::connected_to;
  EXPECT_EQ(w::encode(update), varint_field(2, 0));
  update.kind = w::MeshUpdate::Kind::disconnected_from;
  EXPECT_EQ(w::encode(update), varint_field(3, 0));
  // meshd's "peer left" notice: an empty status plus `left`.
  update.source = 9;
  update.kind = w::MeshUpdate::Kind::status;
  update.left = true;
  EXPECT_EQ(w::encode(update), varint_field(1, 9) + len_field(4, "") + varint_field(5, 1));
  EXPECT_EQ(w::encode(update), serialize(Codec<w::MeshUpdate>::to_pb(update)));
}

TEST(WireEncoding, EmptyRequestsAndEmptyTopicsAreStillSent) {
  w::ClientMessage subscribe;
  subscribe.kind = w::ClientMessage::Kind::subscribe;
  EXPECT_EQ(w::encode(subscribe), len_field(1, ""));
  w::ClientMessage publish;
  publish.kind = w::ClientMessage::Kind::publish;
  publish.topics = {"", "a"};
  EXPECT_EQ(w::encode(publish), len_field(2, len_field(1, "") + len_field(1, "a")));
  EXPECT_EQ(w::encode(publish), serialize(Codec<w::ClientMessage>::to_pb(publish)));
}

TEST(WireEncoding, PeerListsAreSentPacked) {
  w::MeshStatus status;
  status.connected_to = {1, 300, 0xFFFFFFFFu};
  status.rtt_us = {0, 5};
  const std::string packed_ids = varint(1) + varint(300) + varint(0xFFFFFFFFu);
  EXPECT_EQ(w::encode(status), len_field(1, packed_ids) + len_field(3, varint(0) + varint(5)));
}

TEST(WireEncoding, MessagesWithNothingSetEncodeToNothing) {
  EXPECT_EQ(w::encode(w::ServerMessage{}), "");
  EXPECT_EQ(w::encode(w::ClientMessage{}), "");
  EXPECT_EQ(w::encode(w::MeshUpdate{}), "");
}

TEST(WireEncoding, ServerAppendsPublicationsAfterWhatIsAlreadyInTheBuffer) {
  Rng rng(20);
  for (int i = 0; i < 500; ++i) {
    w::ServerMessage message = Codec<w::ServerMessage>::random(rng);
    message.kind = w::ServerMessage::Kind::topic_message;
    message.welcome_id = 0;
    std::string out = "previous frame";
    w::append_topic_message(out, message.topic, message.sender, message.body);
    ASSERT_EQ(out, "previous frame" + w::encode(message));

    std::string welcome_out = "x";
    const std::uint32_t id = random_u32(rng);
    w::append_welcome(welcome_out, id);
    w::ServerMessage welcome;
    welcome.kind = w::ServerMessage::Kind::welcome;
    welcome.welcome_id = id;
    ASSERT_EQ(welcome_out, "x" + w::encode(welcome));
    ASSERT_EQ(welcome_out, "x" + serialize(Codec<w::ServerMessage>::to_pb(welcome)));
  }
}

TEST(WireEncoding, ServerGrowsATopicBatchMessageByMessage) {
  Rng rng(21);
  for (int i = 0; i < 200; ++i) {
    w::ServerMessage batch;
    batch.kind = w::ServerMessage::Kind::topic_batch;
    batch.topic = random_topic(rng);
    std::string entries;
    const std::size_t count = random_size(rng, 50);
    for (std::size_t e = 0; e < count; ++e) {
      w::BatchEntry entry{random_u32(rng), random_bytes(rng)};
      w::append_batch_entry(entries, entry.sender, entry.body);
      batch.batch.push_back(std::move(entry));
    }
    std::string out = "y";
    w::append_topic_batch(out, batch.topic, entries);
    ASSERT_EQ(out, "y" + serialize(Codec<w::ServerMessage>::to_pb(batch)));
    w::ServerMessage decoded;
    ASSERT_EQ(w::decode(std::string_view(out).substr(1), decoded), w::DecodeError::none);
    ASSERT_EQ(decoded, batch);
  }
}

TEST(WireDecoding, ATopicBatchIsBoundedAndItsEntriesTopicsAreTheBatchs) {
  // A topic inside an entry (libprotobuf's encoder would write one) is not
  // a second topic: the batch's is the one that counts.
  pb::ServerMessage reference;
  reference.mutable_topic_batch()->set_topic("g.mesh");
  auto* entry = reference.mutable_topic_batch()->add_messages();
  entry->set_topic("other.mesh");
  entry->set_sender(7);
  entry->set_body("b");
  w::ServerMessage decoded;
  ASSERT_EQ(w::decode(serialize(reference), decoded), w::DecodeError::none);
  EXPECT_EQ(decoded.topic, "g.mesh");
  ASSERT_EQ(decoded.batch.size(), 1u);
  EXPECT_EQ(decoded.batch[0].sender, 7u);

  std::string entries;
  for (int i = 0; i < 11; ++i) w::append_batch_entry(entries, 1, "x");
  std::string frame;
  w::append_topic_batch(frame, "g.mesh", entries);
  w::DecodeLimits limits;
  limits.max_batch_entries = 10;
  EXPECT_EQ(w::decode(frame, decoded, limits), w::DecodeError::too_many);
  EXPECT_EQ(decoded, w::ServerMessage{});
  limits.max_batch_entries = 11;
  EXPECT_EQ(w::decode(frame, decoded, limits), w::DecodeError::none);
}

TEST(WireEncoding, LargestPacketThatFitsTheDefaultLimitRoundTrips) {
  w::Packet packet;
  packet.source = 0xFFFFFFFFu;
  packet.seq = std::numeric_limits<std::uint64_t>::max();
  packet.edges.assign(4096, w::Edge{0xFFFFFFFFu, 0xFFFFFFFFu});
  packet.payload.assign((1u << 20) - 4096 * 14 - 64, '\xAB');
  const std::string bytes = w::encode(packet);
  ASSERT_LE(bytes.size(), std::size_t{1} << 20);
  EXPECT_EQ(bytes, serialize(Codec<w::Packet>::to_pb(packet)));
  w::Packet decoded;
  ASSERT_EQ(w::decode(bytes, decoded), DecodeError::none);
  EXPECT_EQ(decoded, packet);
}

// ===========================================================================
// Decoding details: what we accept, what we reject, as libprotobuf would.
// ===========================================================================

TEST(WireDecoding, UnpackedPeerListsFromOtherEncodersAreAccepted) {
  // connected_to unpacked, then packed, then unpacked again; rtt_us unpacked.
  const std::string bytes = varint_field(1, 5) + len_field(1, varint(6) + varint(70000)) +
                            varint_field(3, 11) + varint_field(1, 0) + varint_field(2, 42) +
                            varint_field(3, 12) + len_field(1, "");
  w::MeshStatus decoded;
  ASSERT_EQ(w::decode(bytes, decoded), DecodeError::none);
  EXPECT_EQ(decoded.connected_to, (std::vector<std::uint32_t>{5, 6, 70000, 0}));
  EXPECT_EQ(decoded.rtt_us, (std::vector<std::uint32_t>{11, 12}));
  EXPECT_EQ(decoded.id, 42u);
  w::MeshStatus reference;
  ASSERT_TRUE(reference_decode(bytes, reference));
  EXPECT_EQ(decoded, reference);

  // The same inside a MeshUpdate's status.
  w::MeshUpdate update;
  ASSERT_EQ(w::decode(varint_field(1, 3) + len_field(4, bytes), update), DecodeError::none);
  EXPECT_EQ(update.status, decoded);
}

TEST(WireDecoding, OversizedNumbersInIdFieldsKeepTheLow32BitsLikeLibprotobuf) {
  const std::vector<std::string> numbers = {
      varint(0x1'2345'6789ull),          // 33 bits
      varint(0xFFFF'FFFF'FFFF'FFFFull),  // 10 bytes
      varint(0x8000'0000'0000'0001ull),  // only bit 63 and bit 0
      long_varint(5, 10),                // non-canonical padding
      long_varint(0xFFFF'FFFFull, 7),
      std::string("\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 10),  // 10th byte > 1
  };
  for (const std::string& number : numbers) {
    SCOPED_TRACE(hex(number));
    const std::string id_field = tag(1, kVarint) + number;
    // Edge.u, Packet.source, welcome id, MeshUpdate.source/peer, status lists.
    const std::vector<std::string> u_cases = {id_field, id_field + varint_field(2, 1)};
    for (const auto& bytes : u_cases) {
      w::Edge ours;
      w::Edge reference;
      ASSERT_EQ(w::decode(bytes, ours), DecodeError::none);
      ASSERT_TRUE(reference_decode(bytes, reference));
      EXPECT_EQ(ours, reference);
    }
    {
      w::Packet ours;
      w::Packet reference;
      const std::string bytes = id_field + len_field(2, tag(2, kVarint) + number);
      ASSERT_EQ(w::decode(bytes, ours), DecodeError::none);
      ASSERT_TRUE(reference_decode(bytes, reference));
      EXPECT_EQ(ours, reference);
    }
    {
      w::ServerMessage ours;
      w::ServerMessage reference;
      const std::string bytes = len_field(1, id_field);
      ASSERT_EQ(w::decode(bytes, ours), DecodeError::none);
      ASSERT_TRUE(reference_decode(bytes, reference));
      EXPECT_EQ(ours, reference);
    }
    for (const std::uint32_t field : {2u, 3u}) {
      w::MeshUpdate ours;
      w::MeshUpdate reference;
      const std::string bytes = id_field + tag(field, kVarint) + number;
      ASSERT_EQ(w::decode(bytes, ours), DecodeError::none);
      ASSERT_TRUE(reference_decode(bytes, reference));
      EXPECT_EQ(ours, reference);
    }
    {
      w::MeshStatus ours;
      w::MeshStatus reference;
      const std::string bytes = id_field + len_field(1, number + number) + tag(3, kVarint) +
                                number + len_field(3, number) + tag(4, kVarint) + number;
      ASSERT_EQ(w::decode(bytes, ours), DecodeError::none);
      ASSERT_TRUE(reference_decode(bytes, reference));
      EXPECT_EQ(ours, reference);
      EXPECT_EQ(ours.connected_to.size(), 3u);
    }
  }
}

TEST(WireDecoding, NumbersLongerThanTenBytesAreMalformedForUsAndLibprotobuf) {
  const std::string eleven = std::string(10, '\x80') + '\x01';
  for (const std::string& bytes : {tag(1, kVarint) + eleven, len_field(1, eleven)}) {
    w::MeshStatus ours;
    EXPECT_EQ(w::decode(bytes, ours), DecodeError::malformed) << hex(bytes);
    pb::MeshStatusMessage reference;
    EXPECT_FALSE(reference.ParseFromString(bytes)) << hex(bytes);
  }
}

TEST(WireDecoding, LeftFlagIsTrueForAnyNonZeroNumberLikeLibprotobuf) {
  const std::vector<std::pair<std::string, bool>> cases = {
      {varint(0), false},
      {varint(1), true},
      {varint(2), true},
      {std::string("\x80\x00", 2), false},  // non-canonical zero
      {long_varint(0, 10), false},
      {varint(1ull << 63), true},  // only the last bit of a 10-byte number
      {varint(1ull << 32), true},
  };
  for (const auto& [number, expected] : cases) {
    const std::string bytes = len_field(4, "") + tag(5, kVarint) + number;
    w::MeshUpdate ours;
    ASSERT_EQ(w::decode(bytes, ours), DecodeError::none) << hex(bytes);
    EXPECT_EQ(ours.left, expected) << hex(bytes);
    w::MeshUpdate reference;
    ASSERT_TRUE(reference_decode(bytes, reference));
    EXPECT_EQ(ours, reference) << hex(bytes);
  }
}

TEST(WireDecoding, KnownFieldWithTheWrongWireTypeIsMalformed) {
  const std::vector<std::pair<std::string, std::function<DecodeError(const std::string&)>>> cases =
      {
          {len_field(1, "x"),
           [](const std::string& b) {
             w::Edge m;
             return w::decode(b, m);
           }},
          {fixed32_field(2, 1),
           [](const std::string& b) {
             w::Edge m;
             return w::decode(b, m);
           }},
          {len_field(1, "x"),
           [](const std::string& b) {
             w::Packet m;
             return w::decode(b, m);
           }},
          {varint_field(2, 1),
           [](const std::string& b) {
             w::Packet m;
             return w::decode(b, m);
           }},
          {len_field(2, varint_field(1, 1) + fixed64_field(2, 1)),
           [](const std::string& b) {
             w::Packet m;
             return w::decode(b, m);
           }},
          {varint_field(3, 1),
           [](const std::string& b) {
             w::Packet m;
             return w::decode(b, m);
           }},
          {fixed64_field(4, 1),
           [](const std::string& b) {
             w::Packet m;
             return w::decode(b, m);
           }},
          {fixed32_field(1, 1),
           [](const std::string& b) {
             w::MeshStatus m;
             return w::decode(b, m);
           }},
          {len_field(2, ""),
           [](const std::string& b) {
             w::MeshStatus m;
             return w::decode(b, m);
           }},
          {len_field(2, "\x01"),
           [](const std::string& b) {
             w::MeshUpdate m;
             return w::decode(b, m);
           }},
          {varint_field(4, 0),
           [](const std::string& b) {
             w::MeshUpdate m;
             return w::decode(b, m);
           }},
          {len_field(4, "") + len_field(5, ""),
           [](const std::string& b) {
             w::MeshUpdate m;
             return w::decode(b, m);
           }},
          {varint_field(1, 5),
           [](const std::string& b) {
             w::ServerMessage m;
             return w::decode(b, m);
           }},
          {len_field(1, len_field(1, "")),
           [](const std::string& b) {
             w::ServerMessage m;
             return w::decode(b, m);
           }},
          {len_field(2, varint_field(1, 3)),
           [](const std::string& b) {
             w::ServerMessage m;
             return w::decode(b, m);
           }},
          {varint_field(2, 5),
           [](const std::string& b) {
             w::ClientMessage m;
             return w::decode(b, m);
           }},
          {len_field(2, varint_field(1, 3)),
           [](const std::string& b) {
             w::ClientMessage m;
             return w::decode(b, m);
           }},
          {len_field(1, fixed32_field(1, 3)),
           [](const std::string& b) {
             w::ClientMessageView m;
             return w::decode(b, m);
           }},
      };
  for (const auto& [bytes, decode] : cases) {
    EXPECT_EQ(decode(bytes), DecodeError::malformed) << hex(bytes);
  }
}

TEST(WireDecoding, BrokenFramingIsMalformedForUsAndLibprotobuf) {
  const std::string end_group = tag(9, static_cast<WireType>(4));
  const std::vector<std::string> cases = {
      varint_field(0, 1),                                        // field number 0
      tag(0, kLen) + varint(0),                                  // field number 0, other type
      tag(1, static_cast<WireType>(6)) + varint(0),              // wire type 6
      tag(9, static_cast<WireType>(7)) + varint(0),              // wire type 7
      end_group,                                                 // end of a group never started
      tag(9, kStartGroup) + varint_field(1, 1),                  // group never ended
      tag(9, kStartGroup) + tag(8, static_cast<WireType>(4)),    // ended with another number
      long_varint((1 << 3) | kVarint, 6) + varint(1),            // 6-byte tag (would alias field 1)
      long_varint((9 << 3) | kVarint, 10) + varint(1),           // 10-byte tag
      tag(3, kLen) + long_varint(1, 6) + "x",                    // 6-byte length
      tag(3, kLen) + long_varint(1ull << 31, 5),                 // 2 GiB length
      tag(9, kLen) + long_varint(3 + (1ull << 32), 10) + "abc",  // length aliasing 3
  };
  for (const std::string& bytes : cases) {
    w::Packet ours;
    EXPECT_EQ(w::decode(bytes, ours), DecodeError::malformed) << hex(bytes);
    pb::Packet reference;
    EXPECT_FALSE(reference.ParseFromString(bytes)) << hex(bytes);
  }
  // A known field number sent as a group is a wrong wire type for us
  // (libprotobuf would keep it as an unknown field).
  w::Packet ours;
  EXPECT_EQ(w::decode(tag(2, kStartGroup) + tag(2, static_cast<WireType>(4)), ours),
            DecodeError::malformed);
}

TEST(WireDecoding, UnknownGroupsAndReservedFieldNumbersAreSkippedLikeLibprotobuf) {
  // Numbers no message of ours uses (Packet: 9 is the signature, 10 kept).
  const std::string group_end = tag(11, static_cast<WireType>(4));
  const std::string nested = tag(12, kStartGroup) + varint_field(1, 5) + len_field(2, "zz") +
                             tag(12, static_cast<WireType>(4));
  const std::vector<std::string> extras = {
      tag(11, kStartGroup) + group_end,
      tag(11, kStartGroup) + varint_field(1, 7) + fixed32_field(2, 1) + fixed64_field(3, 2) +
          len_field(4, "abc") + nested + group_end,
      varint_field(19000, 1) + len_field(19500, "xyz") + fixed32_field(19999, 3),
      tag(19123, kStartGroup) + tag(19123, static_cast<WireType>(4)),
      tag((1u << 29) - 1, kStartGroup) + tag((1u << 29) - 1, static_cast<WireType>(4)),
  };
  w::Packet packet;
  packet.source = 4;
  packet.edges = {{1, 2}, {2, 3}};
  packet.payload = "hi";
  for (const std::string& extra : extras) {
    // Before, between and after the known fields, and inside an edge.
    const std::string bytes =
        extra + varint_field(1, 4) +
        len_field(2, extra + varint_field(1, 1) + varint_field(2, 2) + extra) + extra +
        len_field(2, varint_field(1, 2) + varint_field(2, 3)) + len_field(3, "hi") + extra;
    w::Packet ours;
    ASSERT_EQ(w::decode(bytes, ours), DecodeError::none) << hex(bytes);
    EXPECT_EQ(ours, packet);
    w::Packet reference;
    ASSERT_TRUE(reference_decode(bytes, reference)) << hex(bytes);
    EXPECT_EQ(reference, packet);
  }
  // Groups nested beyond any sane depth are refused, as libprotobuf does.
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += tag(9, kStartGroup);
  for (int i = 0; i < 200; ++i) deep += tag(9, static_cast<WireType>(4));
  w::Packet ours;
  EXPECT_EQ(w::decode(deep, ours), DecodeError::malformed);
  pb::Packet reference;
  EXPECT_FALSE(reference.ParseFromString(deep));
}

TEST(WireDecoding, LengthRunningPastTheEndIsMalformed) {
  w::Packet packet;
  EXPECT_EQ(w::decode(tag(3, kLen) + varint(5) + "abcd", packet), DecodeError::malformed);
  EXPECT_EQ(w::decode(tag(3, kLen) + varint(0xFFFFFFFFu) + "abcd", packet), DecodeError::malformed);
  EXPECT_EQ(w::decode(tag(3, kLen) + varint(0xFFFFFFFF'FFFFFFFFull), packet),
            DecodeError::malformed);
  // A packed run whose last number is cut by the run's own end.
  w::MeshStatus status;
  EXPECT_EQ(w::decode(len_field(1, "\x05\x80"), status), DecodeError::malformed);
  // An edge whose own length is fine but whose content is cut.
  EXPECT_EQ(w::decode(len_field(2, "\x08"), packet), DecodeError::malformed);
}

TEST(WireDecoding, UpdateWithoutDataIsMissingAFieldUnlessItAnnouncesALeave) {
  w::MeshUpdate update;
  EXPECT_EQ(w::decode("", update), DecodeError::missing_field);
  EXPECT_EQ(w::decode(varint_field(1, 7), update), DecodeError::missing_field);
  EXPECT_EQ(w::decode(varint_field(1, 7) + varint_field(5, 0), update), DecodeError::missing_field);
  ASSERT_EQ(w::decode(varint_field(1, 7) + varint_field(5, 1), update), DecodeError::none);
  EXPECT_EQ(update.source, 7u);
  EXPECT_TRUE(update.left);
  EXPECT_EQ(update.kind, w::MeshUpdate::Kind::none);
}

TEST(WireDecoding, ServerAndClientMessagesWithoutAMemberAreMissingAField) {
  w::ServerMessage server;
  w::ClientMessage client;
  w::ClientMessageView view;
  for (const std::string& bytes : {std::string(), varint_field(7, 1), len_field(9, "abc")}) {
    EXPECT_EQ(w::decode(bytes, server), DecodeError::missing_field);
    EXPECT_EQ(w::decode(bytes, client), DecodeError::missing_field);
    EXPECT_EQ(w::decode(bytes, view), DecodeError::missing_field);
  }
}

TEST(WireDecoding, LaterOneofMemberReplacesTheEarlierOneLikeLibprotobuf) {
  const std::string status = len_field(4, len_field(1, varint(5) + varint(6)) + varint_field(2, 9));
  const std::vector<std::string> updates = {
      varint_field(2, 4) + status,
      status + varint_field(3, 8),
      status + varint_field(2, 4) + len_field(4, varint_field(2, 10)),
      varint_field(3, 1) + varint_field(2, 2),
  };
  for (const auto& bytes : updates) {
    w::MeshUpdate ours;
    w::MeshUpdate reference;
    ASSERT_EQ(w::decode(bytes, ours), DecodeError::none) << hex(bytes);
    ASSERT_TRUE(reference_decode(bytes, reference));
    EXPECT_EQ(ours, reference) << hex(bytes);
  }
  const std::string welcome = len_field(1, varint_field(1, 3));
  const std::string topic =
      len_field(2, len_field(1, "t") + varint_field(2, 4) + len_field(3, "b"));
  for (const auto& bytes : {welcome + topic, topic + welcome, topic + welcome + topic}) {
    w::ServerMessage ours;
    w::ServerMessage reference;
    ASSERT_EQ(w::decode(bytes, ours), DecodeError::none) << hex(bytes);
    ASSERT_TRUE(reference_decode(bytes, reference));
    EXPECT_EQ(ours, reference) << hex(bytes);
  }
  const std::string subscribe = len_field(1, len_field(1, "s"));
  const std::string publish = len_field(2, len_field(1, "p") + len_field(2, "pay"));
  const std::string unsubscribe = len_field(3, len_field(1, "u"));
  for (const auto& bytes : {subscribe + publish, publish + unsubscribe, unsubscribe + subscribe,
                            publish + subscribe + publish}) {
    w::ClientMessage ours;
    w::ClientMessage reference;
    ASSERT_EQ(w::decode(bytes, ours), DecodeError::none) << hex(bytes);
    ASSERT_TRUE(reference_decode(bytes, reference));
    EXPECT_EQ(ours, reference) << hex(bytes);
  }
}

TEST(WireDecoding, RepeatedSubMessageOfTheSameMemberMergesLikeLibprotobuf) {
  // protobuf merges a second occurrence of the same message-typed member.
  const std::string update = varint_field(1, 1) +
                             len_field(4, len_field(1, varint(5)) + varint_field(2, 9)) +
                             len_field(4, varint_field(1, 6) + varint_field(4, 2));
  w::MeshUpdate ours;
  w::MeshUpdate reference;
  ASSERT_EQ(w::decode(update, ours), DecodeError::none);
  ASSERT_TRUE(reference_decode(update, reference));
  EXPECT_EQ(ours, reference);
  EXPECT_EQ(ours.status.connected_to, (std::vector<std::uint32_t>{5, 6}));
  EXPECT_EQ(ours.status.id, 9u);
  EXPECT_EQ(ours.status.version, 2u);

  const std::string server = len_field(2, len_field(1, "t") + len_field(3, "body")) +
                             len_field(2, varint_field(2, 4) + len_field(1, "u"));
  w::ServerMessage server_ours;
  w::ServerMessage server_reference;
  ASSERT_EQ(w::decode(server, server_ours), DecodeError::none);
  ASSERT_TRUE(reference_decode(server, server_reference));
  EXPECT_EQ(server_ours, server_reference);
  EXPECT_EQ(server_ours.topic, "u");
  EXPECT_EQ(server_ours.body, "body");

  const std::string client =
      len_field(2, len_field(1, "a") + len_field(2, "x")) + len_field(2, len_field(1, "b"));
  w::ClientMessage client_ours;
  w::ClientMessage client_reference;
  ASSERT_EQ(w::decode(client, client_ours), DecodeError::none);
  ASSERT_TRUE(reference_decode(client, client_reference));
  EXPECT_EQ(client_ours, client_reference);
  EXPECT_EQ(client_ours.topics, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(client_ours.payload, "x");
}

// ===========================================================================
// Limits: a small buffer can never make the decoder allocate without bound.
// ===========================================================================

std::string packet_with_edges(std::size_t count) {
  w::Packet packet;
  packet.source = 1;
  for (std::size_t i = 0; i < count; ++i) {
    packet.edges.push_back({static_cast<std::uint32_t>(i), static_cast<std::uint32_t>(i + 1)});
  }
  return w::encode(packet);
}

TEST(WireLimits, PacketWithOneEdgeTooManyIsRejected) {
  const w::DecodeLimits defaults;
  w::Packet packet;
  EXPECT_EQ(w::decode(packet_with_edges(defaults.max_edges), packet), DecodeError::none);
  EXPECT_EQ(packet.edges.size(), defaults.max_edges);
  EXPECT_EQ(w::decode(packet_with_edges(defaults.max_edges + 1), packet), DecodeError::too_many);
  EXPECT_TRUE(packet.edges.empty());

  w::DecodeLimits small;
  small.max_edges = 3;
  EXPECT_EQ(w::decode(packet_with_edges(3), packet, small), DecodeError::none);
  EXPECT_EQ(w::decode(packet_with_edges(4), packet, small), DecodeError::too_many);
  // Empty edges cost 2 bytes each: 500 KB of them is still capped.
  std::string flood;
  for (int i = 0; i < 250000; ++i) flood += len_field(2, "");
  EXPECT_EQ(w::decode(flood, packet), DecodeError::too_many);
}

TEST(WireLimits, StatusWithTooManyPeersOrRttsIsRejected) {
  w::DecodeLimits limits;
  limits.max_connected = 4;
  w::MeshStatus status;
  const std::string four_packed = len_field(1, std::string(4, '\x07'));
  const std::string four_rtts = len_field(3, std::string(4, '\x07'));
  ASSERT_EQ(w::decode(four_packed + four_rtts, status, limits), DecodeError::none);
  EXPECT_EQ(status.connected_to.size(), 4u);
  EXPECT_EQ(status.rtt_us.size(), 4u);
  // packed, unpacked, and split across several packed runs
  EXPECT_EQ(w::decode(len_field(1, std::string(5, '\x07')), status, limits), DecodeError::too_many);
  EXPECT_EQ(w::decode(four_packed + varint_field(1, 1), status, limits), DecodeError::too_many);
  EXPECT_EQ(w::decode(len_field(1, "\x01\x02") + len_field(1, "\x03\x04\x05"), status, limits),
            DecodeError::too_many);
  EXPECT_EQ(w::decode(four_rtts + varint_field(3, 1), status, limits), DecodeError::too_many);
  // ... also inside a MeshUpdate, also when the status is split in two.
  w::MeshUpdate update;
  EXPECT_EQ(w::decode(len_field(4, four_packed) + len_field(4, varint_field(1, 9)), update, limits),
            DecodeError::too_many);
  // The default cap is 4096.
  EXPECT_EQ(w::decode(len_field(1, std::string(4097, '\x07')), status), DecodeError::too_many);
  EXPECT_EQ(w::decode(len_field(1, std::string(4096, '\x07')), status), DecodeError::none);
}

TEST(WireLimits, PublishToTooManyTopicsIsRejected) {
  w::DecodeLimits limits;
  limits.max_topics = 2;
  std::string body;
  for (int i = 0; i < 3; ++i) body += len_field(1, "t" + std::to_string(i));
  w::ClientMessage message;
  w::ClientMessageView view;
  EXPECT_EQ(w::decode(len_field(2, body), message, limits), DecodeError::too_many);
  EXPECT_EQ(w::decode(len_field(2, body), view, limits), DecodeError::too_many);
  EXPECT_EQ(w::decode(len_field(2, body.substr(0, 8)), message, limits), DecodeError::none);
  // Split over two publish requests, which merge.
  EXPECT_EQ(
      w::decode(len_field(2, body.substr(0, 8)) + len_field(2, body.substr(8)), message, limits),
      DecodeError::too_many);
  std::string many;
  for (int i = 0; i < 65; ++i) many += len_field(1, "");
  EXPECT_EQ(w::decode(len_field(2, many), message), DecodeError::too_many);
}

TEST(WireLimits, WelcomeWithTooManyIceServersOrUrlsIsRejected) {
  // A welcome from a hostile server cannot make a peer hold unbounded lists.
  const std::string server = len_field(1, "stun:192.0.2.1:3478");
  std::string welcome = "\x08\x07";  // id 7
  for (int i = 0; i < 8; ++i) welcome += len_field(2, server);
  w::ServerMessage message;
  ASSERT_EQ(w::decode(len_field(1, welcome), message), DecodeError::none);
  EXPECT_EQ(message.ice_servers.size(), 8u);
  EXPECT_EQ(w::decode(len_field(1, welcome + len_field(2, server)), message), DecodeError::too_many);
  std::string urls;
  for (int i = 0; i < 9; ++i) urls += server;
  EXPECT_EQ(w::decode(len_field(1, "\x08\x07" + len_field(2, urls)), message), DecodeError::too_many);
}

// ===========================================================================
// ClientMessageView: the server's zero-copy path.
// ===========================================================================

bool points_into(std::string_view part, const std::string& buffer) {
  if (part.empty()) return true;  // nothing to point at
  const char* begin = buffer.data();
  const char* end = begin + buffer.size();
  return part.data() >= begin && part.data() + part.size() <= end;
}

TEST(WireClientView, ViewPointsIntoTheReceivedBufferWithoutCopying) {
  Rng rng(30);
  for (int i = 0; i < 2000; ++i) {
    const w::ClientMessage message = Codec<w::ClientMessage>::random(rng);
    const std::string bytes = w::encode(message);
    w::ClientMessageView view;
    ASSERT_EQ(w::decode(bytes, view), DecodeError::none);
    EXPECT_EQ(view.kind, message.kind);
    EXPECT_EQ(view.topic, message.topic);
    EXPECT_EQ(view.payload, message.payload);
    ASSERT_EQ(view.topics.size(), message.topics.size());
    for (std::size_t t = 0; t < view.topics.size(); ++t) {
      EXPECT_EQ(view.topics[t], message.topics[t]);
      EXPECT_TRUE(points_into(view.topics[t], bytes));
    }
    EXPECT_TRUE(points_into(view.topic, bytes));
    EXPECT_TRUE(points_into(view.payload, bytes));
  }
}

TEST(WireClientView, ViewAndOwningDecodeAgreeOnHostileInput) {
  Rng rng(31);
  for (int i = 0; i < 10000; ++i) {
    const std::string bytes = i % 2 == 0
                                  ? random_soup(rng, 2)
                                  : mutate(w::encode(Codec<w::ClientMessage>::random(rng)), rng);
    w::ClientMessage message;
    w::ClientMessageView view;
    const DecodeError error = w::decode(bytes, message);
    ASSERT_EQ(w::decode(bytes, view), error) << hex(bytes);
    if (error != DecodeError::none) continue;
    EXPECT_EQ(view.kind, message.kind);
    EXPECT_EQ(view.topic, message.topic);
    EXPECT_EQ(view.payload, message.payload);
    ASSERT_EQ(view.topics.size(), message.topics.size());
    for (std::size_t t = 0; t < view.topics.size(); ++t)
      EXPECT_EQ(view.topics[t], message.topics[t]);
  }
}

TEST(WireErrors, EveryErrorHasADistinctReadableName) {
  const std::vector<DecodeError> errors = {DecodeError::none, DecodeError::malformed,
                                           DecodeError::too_many, DecodeError::too_large,
                                           DecodeError::missing_field};
  std::vector<std::string> names;
  for (const DecodeError e : errors) {
    const std::string name = w::to_string(e);
    EXPECT_FALSE(name.empty());
    for (const auto& other : names) EXPECT_NE(name, other);
    names.push_back(name);
  }
  EXPECT_STRNE(w::to_string(static_cast<DecodeError>(200)), "");
}

}  // namespace
