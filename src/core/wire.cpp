#include "wire.hpp"

#include <cassert>

#include <protozero/exception.hpp>
#include <protozero/pbf_reader.hpp>
#include <protozero/pbf_writer.hpp>
#include <protozero/varint.hpp>

namespace p2pmesh::wire {
namespace {

using protozero::pbf_wire_type;
using Reader = protozero::pbf_reader;
using Writer = protozero::pbf_writer;  // basic_pbf_writer<std::string>

// ---------------------------------------------------------------------------
// Encoding. The output must be byte-identical to libprotobuf's proto3
// serialization: fields in number order, scalars with their default value
// (0 / empty) omitted, except members of a oneof, which are emitted whenever
// they are the set member (even when 0 or an empty sub-message). Repeated
// uint32 fields are packed.
//
// Sub-message sizes are computed up front so each length prefix is written
// once, in its minimal form, with no reserve-then-move (protozero's
// unknown-size sub-writer would also silently drop an empty sub-message,
// which would be wrong for oneof members). All our field numbers are < 16,
// so every tag is exactly one byte.
// ---------------------------------------------------------------------------

constexpr std::size_t kTagBytes = 1;

std::size_t varint_size(std::uint64_t value) {
  return static_cast<std::size_t>(protozero::length_of_varint(value));
}
// An implicit-presence integer field: absent when 0.
std::size_t uint_field_size(std::uint64_t value) {
  return value == 0 ? 0 : kTagBytes + varint_size(value);
}
// A length-delimited field that is always emitted.
std::size_t len_field_size(std::size_t length) { return kTagBytes + varint_size(length) + length; }
// An implicit-presence bytes/string field: absent when empty.
std::size_t bytes_field_size(std::size_t length) {
  return length == 0 ? 0 : len_field_size(length);
}

void put_varint(std::string& out, std::uint64_t value) {
  protozero::add_varint_to_buffer(&out, value);
}
// The tag and length prefix of a length-delimited field whose body follows.
void put_len_header(std::string& out, std::uint32_t field, std::size_t length) {
  put_varint(out, (std::uint64_t{field} << 3U) |
                      static_cast<std::uint64_t>(pbf_wire_type::length_delimited));
  put_varint(out, length);
}
void put_uint32(Writer& writer, std::uint32_t field, std::uint32_t value) {
  if (value != 0) writer.add_uint32(field, value);
}
void put_uint64(Writer& writer, std::uint32_t field, std::uint64_t value) {
  if (value != 0) writer.add_uint64(field, value);
}
void put_bytes(Writer& writer, std::uint32_t field, std::string_view bytes) {
  if (!bytes.empty()) writer.add_bytes(field, bytes.data(), bytes.size());
}

std::size_t packed_body_size(const std::vector<std::uint32_t>& values) {
  std::size_t size = 0;
  for (const std::uint32_t value : values) size += varint_size(value);
  return size;
}
std::size_t packed_field_size(const std::vector<std::uint32_t>& values) {
  return values.empty() ? 0 : len_field_size(packed_body_size(values));
}
void put_packed(std::string& out, std::uint32_t field, const std::vector<std::uint32_t>& values) {
  if (values.empty()) return;
  put_len_header(out, field, packed_body_size(values));
  for (const std::uint32_t value : values) put_varint(out, value);
}

// Edge
std::size_t edge_body_size(const Edge& edge) {
  return uint_field_size(edge.u) + uint_field_size(edge.v);
}
void put_edge_body(std::string& out, const Edge& edge) {
  Writer writer{out};
  put_uint32(writer, 1, edge.u);
  put_uint32(writer, 2, edge.v);
}

// MessageId
std::size_t message_id_body_size(const MessageId& id) {
  return uint_field_size(id.source) + uint_field_size(id.seq);
}
void put_message_id_body(std::string& out, const MessageId& id) {
  Writer writer{out};
  put_uint32(writer, 1, id.source);
  put_uint64(writer, 2, id.seq);
}
std::size_t message_ids_size(const std::vector<MessageId>& ids) {
  std::size_t size = 0;
  for (const MessageId& id : ids) size += len_field_size(message_id_body_size(id));
  return size;
}
void put_message_ids(std::string& out, std::uint32_t field, const std::vector<MessageId>& ids) {
  for (const MessageId& id : ids) {
    put_len_header(out, field, message_id_body_size(id));
    put_message_id_body(out, id);
  }
}

// Packet
std::size_t packet_size(const Packet& packet) {
  std::size_t size = uint_field_size(packet.source);
  for (const Edge& edge : packet.edges) size += len_field_size(edge_body_size(edge));
  return size + bytes_field_size(packet.payload.size()) + uint_field_size(packet.seq) +
         uint_field_size(packet.ping) + uint_field_size(packet.pong) +
         message_ids_size(packet.have) + message_ids_size(packet.want) +
         message_ids_size(packet.gone) +
         bytes_field_size(packet.signature.size()) +
         uint_field_size(packet.unreliable_seq) + bytes_field_size(packet.receiver_tags.size());
}
void put_packet(std::string& out, const Packet& packet) {
  Writer writer{out};
  put_uint32(writer, 1, packet.source);
  for (const Edge& edge : packet.edges) {
    put_len_header(out, 2, edge_body_size(edge));
    put_edge_body(out, edge);
  }
  put_bytes(writer, 3, packet.payload);
  put_uint64(writer, 4, packet.seq);
  put_uint64(writer, 5, packet.ping);
  put_uint64(writer, 6, packet.pong);
  put_message_ids(out, 7, packet.have);
  put_message_ids(out, 8, packet.want);
  put_bytes(writer, 9, packet.signature);
  put_uint64(writer, 10, packet.unreliable_seq);
  put_message_ids(out, 11, packet.gone);
  put_bytes(writer, 12, packet.receiver_tags);
}

// MeshStatusMessage
std::size_t status_size(const MeshStatus& status) {
  return packed_field_size(status.connected_to) + uint_field_size(status.id) +
         packed_field_size(status.rtt_us) + uint_field_size(status.version) +
         uint_field_size(status.next_seq) + bytes_field_size(status.public_key.size()) +
         (status.require_signatures ? kTagBytes + 1 : 0);
}
void put_status(std::string& out, const MeshStatus& status) {
  Writer writer{out};
  put_packed(out, 1, status.connected_to);
  put_uint32(writer, 2, status.id);
  put_packed(out, 3, status.rtt_us);
  put_uint32(writer, 4, status.version);
  put_uint64(writer, 5, status.next_seq);
  put_bytes(writer, 6, status.public_key);
  if (status.require_signatures) writer.add_bool(7, true);
}

// MeshUpdateMessage
std::size_t update_size(const MeshUpdate& update) {
  std::size_t size = uint_field_size(update.source);
  switch (update.kind) {
    case MeshUpdate::Kind::none: break;
    case MeshUpdate::Kind::connected_to:
    case MeshUpdate::Kind::disconnected_from: size += kTagBytes + varint_size(update.peer); break;
    case MeshUpdate::Kind::status: size += len_field_size(status_size(update.status)); break;
  }
  return size + (update.left ? kTagBytes + 1 : 0);
}
void put_update(std::string& out, const MeshUpdate& update) {
  Writer writer{out};
  put_uint32(writer, 1, update.source);
  switch (update.kind) {
    case MeshUpdate::Kind::none: break;
    // A oneof member is emitted even when 0.
    case MeshUpdate::Kind::connected_to: writer.add_uint32(2, update.peer); break;
    case MeshUpdate::Kind::disconnected_from: writer.add_uint32(3, update.peer); break;
    case MeshUpdate::Kind::status:
      put_len_header(out, 4, status_size(update.status));
      put_status(out, update.status);
      break;
  }
  if (update.left) writer.add_bool(5, true);
}

// TopicMessage body (inside ServerMessage field 2)
std::size_t topic_message_body_size(std::string_view topic, PeerId sender, std::string_view body) {
  return bytes_field_size(topic.size()) + uint_field_size(sender) + bytes_field_size(body.size());
}

// A batch entry: TopicMessage without its topic (inside TopicBatch field 2)
std::size_t batch_entry_body_size(PeerId sender, std::string_view body) {
  return uint_field_size(sender) + bytes_field_size(body.size());
}
std::size_t topic_batch_body_size(std::string_view topic, std::string_view entries) {
  return bytes_field_size(topic.size()) + entries.size();
}

// IceServer (inside WelcomeMessage field 2)
std::size_t ice_server_size(const IceServer& server) {
  std::size_t size = 0;
  for (const std::string& url : server.urls) size += len_field_size(url.size());
  return size + bytes_field_size(server.username.size()) +
         bytes_field_size(server.credential.size());
}

// Client requests
std::size_t topic_request_body_size(const ClientMessage& message) {
  const bool subscribe = message.kind == ClientMessage::Kind::subscribe;
  return bytes_field_size(message.topic.size()) + (subscribe ? uint_field_size(message.batch_ms) : 0);
}
std::size_t publish_body_size(const ClientMessage& message) {
  std::size_t size = 0;
  // Every element of a repeated string is emitted, even an empty one.
  for (const std::string& topic : message.topics) size += len_field_size(topic.size());
  return size + bytes_field_size(message.payload.size());
}
std::size_t client_size(const ClientMessage& message) {
  switch (message.kind) {
    case ClientMessage::Kind::none: return 0;
    case ClientMessage::Kind::subscribe:
    case ClientMessage::Kind::unsubscribe: return len_field_size(topic_request_body_size(message));
    case ClientMessage::Kind::publish: return len_field_size(publish_body_size(message));
  }
  return 0;
}

// ---------------------------------------------------------------------------
// Decoding. Every accessor is preceded by a wire-type check (protozero only
// asserts), and protozero's exceptions for truncated buffers and bad varints
// are caught once, at the top of each decode().
// ---------------------------------------------------------------------------

bool has_type(const Reader& reader, pbf_wire_type type) { return reader.wire_type() == type; }

// uint32 fields: protozero decodes the full 64-bit varint and keeps the low
// 32 bits, which is exactly what libprotobuf does for uint32.
DecodeError read_uint32(Reader& reader, std::uint32_t& value) {
  if (!has_type(reader, pbf_wire_type::varint)) return DecodeError::malformed;
  value = reader.get_uint32();
  return DecodeError::none;
}
DecodeError read_uint64(Reader& reader, std::uint64_t& value) {
  if (!has_type(reader, pbf_wire_type::varint)) return DecodeError::malformed;
  value = reader.get_uint64();
  return DecodeError::none;
}
// bool: any non-zero varint is true (protozero's get_bool only looks at the
// first byte, so a non-canonical 0x80 0x00 would read as true).
DecodeError read_bool(Reader& reader, bool& value) {
  if (!has_type(reader, pbf_wire_type::varint)) return DecodeError::malformed;
  value = reader.get_uint64() != 0;
  return DecodeError::none;
}
DecodeError read_view(Reader& reader, std::string_view& value) {
  if (!has_type(reader, pbf_wire_type::length_delimited)) return DecodeError::malformed;
  const protozero::data_view view = reader.get_view();
  value = std::string_view{view.data(), view.size()};
  return DecodeError::none;
}
DecodeError read_bytes(Reader& reader, std::string& value) {
  std::string_view view;
  const DecodeError error = read_view(reader, view);
  if (error == DecodeError::none) value.assign(view.data(), view.size());
  return error;
}
DecodeError read_bytes(Reader& reader, std::string_view& value) { return read_view(reader, value); }

DecodeError read_message(Reader& reader, Reader& message) {
  if (!has_type(reader, pbf_wire_type::length_delimited)) return DecodeError::malformed;
  message = reader.get_message();
  return DecodeError::none;
}

// A repeated uint32 field, packed (one length-delimited run) or not (one
// varint per occurrence); both may be mixed. Never grows past `max`.
DecodeError read_repeated_uint32(Reader& reader, std::vector<std::uint32_t>& values,
                                 std::size_t max) {
  if (has_type(reader, pbf_wire_type::varint)) {
    if (values.size() >= max) return DecodeError::too_many;
    values.push_back(reader.get_uint32());
    return DecodeError::none;
  }
  if (!has_type(reader, pbf_wire_type::length_delimited)) return DecodeError::malformed;
  const auto range = reader.get_packed_uint32();
  for (auto it = range.begin(); it != range.end(); ++it) {
    if (values.size() >= max) return DecodeError::too_many;
    values.push_back(*it);  // throws on a varint truncated by the run's end
  }
  return DecodeError::none;
}

// ---------------------------------------------------------------------------
// Field framing. pbf_reader and libprotobuf disagree on a few framing corner
// cases; we check each tag (and each length prefix) ourselves before handing
// the field to pbf_reader, so that we accept exactly the framing libprotobuf
// accepts:
//  - a tag is a varint of at most 5 bytes, a length one of at most 5 bytes
//    below 2 GiB (protozero reads up to 10 bytes and keeps the low 32 bits,
//    which would let a garbage tag alias a real one);
//  - field numbers 19000-19999 are only reserved in .proto files, they are
//    legal on the wire (protozero throws on them);
//  - an unknown group (wire types 3..4, deprecated but valid) is skipped like
//    any other unknown field (protozero throws on it).
// Known fields still go through pbf_reader, and a known field number with an
// unexpected wire type (groups included) is malformed.
// ---------------------------------------------------------------------------

constexpr std::uint32_t kStartGroup = 3;
constexpr std::uint32_t kEndGroup = 4;
// libprotobuf's recursion limit is 100 and counts sub-messages too; ours nest
// at most 2 deep, so this never accepts what libprotobuf would refuse.
constexpr int kMaxGroupDepth = 96;
// libprotobuf refuses lengths above INT32_MAX - 16 (its "slop" bytes).
constexpr std::uint64_t kMaxLength = 0x7FFF'FFFFu - 16;

// Reads a varint of at most `max_bytes` bytes (bits beyond 64 are dropped,
// like everyone does). False if it is longer or runs past `end`.
bool read_varint(const char*& p, const char* end, int max_bytes, std::uint64_t& value) {
  value = 0;
  for (int i = 0; i < max_bytes && p != end; ++i) {
    const auto byte = static_cast<unsigned char>(*p++);
    value |= std::uint64_t{byte & 0x7FU} << (7 * i);
    if (byte < 0x80) return true;
  }
  return false;
}

bool read_tag(const char*& p, const char* end, std::uint32_t& number, std::uint32_t& type) {
  std::uint64_t tag = 0;
  if (!read_varint(p, end, 5, tag)) return false;
  number = static_cast<std::uint32_t>(tag) >> 3U;  // a 5-byte tag keeps its low 32 bits
  type = static_cast<std::uint32_t>(tag) & 7U;
  return number != 0;
}

bool read_length(const char*& p, const char* end, std::uint64_t& length) {
  return read_varint(p, end, 5, length) && length <= kMaxLength;
}

// Skips the value of a field whose tag was just read; false if malformed.
bool skip_value(const char*& p, const char* end, std::uint32_t number, std::uint32_t type,
                int depth) {
  std::uint64_t value = 0;
  switch (type) {
    case static_cast<std::uint32_t>(pbf_wire_type::varint): return read_varint(p, end, 10, value);
    case static_cast<std::uint32_t>(pbf_wire_type::fixed64): value = 8; break;
    case static_cast<std::uint32_t>(pbf_wire_type::fixed32): value = 4; break;
    case static_cast<std::uint32_t>(pbf_wire_type::length_delimited):
      if (!read_length(p, end, value)) return false;
      break;
    case kStartGroup:
      if (depth <= 0) return false;
      for (;;) {
        std::uint32_t inner_number = 0;
        std::uint32_t inner_type = 0;
        if (!read_tag(p, end, inner_number, inner_type)) return false;
        if (inner_type == kEndGroup) return inner_number == number;
        if (!skip_value(p, end, inner_number, inner_type, depth - 1)) return false;
      }
    default: return false;  // a stray end-group, or wire type 6 or 7
  }
  if (static_cast<std::uint64_t>(end - p) < value) return false;
  p += value;
  return true;
}

// Calls `field(reader)` for every field of a message whose known field
// numbers are 1..known_fields; returns the first error.
template <class Field>
DecodeError for_each_field(Reader reader, std::uint32_t known_fields, Field&& field) {
  for (;;) {
    const protozero::data_view rest = reader.data();
    const char* p = rest.data();
    const char* const end = p + rest.size();
    if (p == end) return DecodeError::none;
    std::uint32_t number = 0;
    std::uint32_t type = 0;
    if (!read_tag(p, end, number, type)) return DecodeError::malformed;
    const bool reserved_number = number >= 19000 && number <= 19999;
    if (type == kStartGroup || reserved_number) {
      if (number <= known_fields) return DecodeError::malformed;  // wrong wire type
      if (!skip_value(p, end, number, type, kMaxGroupDepth)) return DecodeError::malformed;
      reader = Reader{p, static_cast<std::size_t>(end - p)};
      continue;
    }
    if (type == static_cast<std::uint32_t>(pbf_wire_type::length_delimited)) {
      std::uint64_t length = 0;
      if (!read_length(p, end, length)) return DecodeError::malformed;
    }
    // pbf_reader re-reads the tag we just checked; it throws on wire types
    // 4, 6 and 7 and on anything running past the end.
    if (!reader.next()) return DecodeError::none;
    const DecodeError error = field(reader);
    if (error != DecodeError::none) return error;
  }
}

// Back to the default value, keeping the capacity of strings and vectors so a
// decoder that reuses its output object (the server's hot path) does not
// reallocate per message. Must list every field of each struct.
void reset(Edge& edge) { edge = Edge{}; }
void reset(MessageId& id) { id = MessageId{}; }
void reset(Packet& packet) {
  packet.source = kNoPeer;
  packet.edges.clear();
  packet.payload.clear();
  packet.seq = 0;
  packet.ping = 0;
  packet.pong = 0;
  packet.have.clear();
  packet.want.clear();
  packet.signature.clear();
  packet.unreliable_seq = 0;
  packet.gone.clear();
  packet.receiver_tags.clear();
}
void reset(MeshStatus& status) {
  status.connected_to.clear();
  status.id = 0;
  status.rtt_us.clear();
  status.version = 0;
  status.next_seq = 0;
  status.public_key.clear();
  status.require_signatures = false;
}
void reset(MeshUpdate& update) {
  update.source = kNoPeer;
  update.kind = MeshUpdate::Kind::none;
  update.peer = kNoPeer;
  reset(update.status);
  update.left = false;
}
void reset(ServerMessage& message) {
  message.kind = ServerMessage::Kind::none;
  message.welcome_id = kNoPeer;
  message.ice_servers.clear();
  message.topic.clear();
  message.sender = kNoPeer;
  message.body.clear();
  message.batch.clear();
}
void clear(std::string& text) { text.clear(); }
void clear(std::string_view& text) { text = std::string_view{}; }
template <class Message>  // ClientMessage, ClientMessageView
void reset(Message& message) {
  message.kind = ClientMessage::Kind::none;
  clear(message.topic);
  message.batch_ms = 0;
  message.topics.clear();
  clear(message.payload);
}

DecodeError skip(Reader& reader) {
  reader.skip();
  return DecodeError::none;
}

DecodeError parse_edge(Reader reader, Edge& edge) {
  return for_each_field(reader, 2, [&](Reader& r) {
    switch (r.tag()) {
      case 1: return read_uint32(r, edge.u);
      case 2: return read_uint32(r, edge.v);
      default: return skip(r);
    }
  });
}

DecodeError parse_message_id(Reader reader, MessageId& id) {
  return for_each_field(reader, 2, [&](Reader& r) {
    switch (r.tag()) {
      case 1: return read_uint32(r, id.source);
      case 2: return read_uint64(r, id.seq);
      default: return skip(r);
    }
  });
}

DecodeError read_message_id(Reader& r, std::vector<MessageId>& ids, std::size_t limit) {
  Reader message;
  if (const DecodeError error = read_message(r, message); error != DecodeError::none) return error;
  if (ids.size() >= limit) return DecodeError::too_many;
  return parse_message_id(message, ids.emplace_back());
}

DecodeError parse_packet(Reader reader, Packet& packet, const DecodeLimits& limits) {
  return for_each_field(reader, 9, [&](Reader& r) {
    switch (r.tag()) {
      case 1: return read_uint32(r, packet.source);
      case 2: {
        Reader message;
        if (const DecodeError error = read_message(r, message); error != DecodeError::none) {
          return error;
        }
        if (packet.edges.size() >= limits.max_edges) return DecodeError::too_many;
        return parse_edge(message, packet.edges.emplace_back());
      }
      case 3: return read_bytes(r, packet.payload);
      case 4: return read_uint64(r, packet.seq);
      case 5: return read_uint64(r, packet.ping);
      case 6: return read_uint64(r, packet.pong);
      case 7: return read_message_id(r, packet.have, limits.max_message_ids);
      case 8: return read_message_id(r, packet.want, limits.max_message_ids);
      case 9: return read_bytes(r, packet.signature);
      case 10: return read_uint64(r, packet.unreliable_seq);
      case 11: return read_message_id(r, packet.gone, limits.max_message_ids);
      case 12: return read_bytes(r, packet.receiver_tags);
      default: return skip(r);
    }
  });
}

// Parses into `status` without clearing it: a repeated occurrence of a
// sub-message merges into the previous one (protobuf semantics).
DecodeError parse_status(Reader reader, MeshStatus& status, const DecodeLimits& limits) {
  return for_each_field(reader, 7, [&](Reader& r) {
    switch (r.tag()) {
      case 1: return read_repeated_uint32(r, status.connected_to, limits.max_connected);
      case 2: return read_uint32(r, status.id);
      case 3: return read_repeated_uint32(r, status.rtt_us, limits.max_connected);
      case 4: return read_uint32(r, status.version);
      case 5: return read_uint64(r, status.next_seq);
      case 6: return read_bytes(r, status.public_key);
      case 7: return read_bool(r, status.require_signatures);
      default: return skip(r);
    }
  });
}

DecodeError parse_update(Reader reader, MeshUpdate& update, const DecodeLimits& limits) {
  const DecodeError error = for_each_field(reader, 5, [&](Reader& r) {
    switch (r.tag()) {
      case 1: return read_uint32(r, update.source);
      case 2:
      case 3: {
        // Setting a oneof member clears the previous one.
        const auto kind =
            r.tag() == 2 ? MeshUpdate::Kind::connected_to : MeshUpdate::Kind::disconnected_from;
        if (const DecodeError e = read_uint32(r, update.peer); e != DecodeError::none) return e;
        update.kind = kind;
        reset(update.status);
        return DecodeError::none;
      }
      case 4: {
        Reader message;
        if (const DecodeError e = read_message(r, message); e != DecodeError::none) return e;
        if (update.kind != MeshUpdate::Kind::status) {
          update.kind = MeshUpdate::Kind::status;
          update.peer = kNoPeer;
          reset(update.status);
        }
        return parse_status(message, update.status, limits);
      }
      case 5: return read_bool(r, update.left);
      default: return skip(r);
    }
  });
  if (error != DecodeError::none) return error;
  // A bare "left" notice is meaningful on its own; anything else needs data.
  if (update.kind == MeshUpdate::Kind::none && !update.left) return DecodeError::missing_field;
  return DecodeError::none;
}

DecodeError parse_ice_server(Reader& field, std::vector<IceServer>& servers,
                             const DecodeLimits& limits) {
  if (servers.size() >= limits.max_ice_servers) return DecodeError::too_many;
  Reader body;
  if (const DecodeError e = read_message(field, body); e != DecodeError::none) return e;
  IceServer& server = servers.emplace_back();
  return for_each_field(body, 3, [&](Reader& f) {
    switch (f.tag()) {
      case 1:
        if (server.urls.size() >= limits.max_ice_server_urls) return DecodeError::too_many;
        return read_bytes(f, server.urls.emplace_back());
      case 2: return read_bytes(f, server.username);
      case 3: return read_bytes(f, server.credential);
      default: return skip(f);
    }
  });
}

DecodeError parse_server(Reader reader, ServerMessage& message, const DecodeLimits& limits) {
  const DecodeError error = for_each_field(reader, 3, [&](Reader& r) {
    Reader body;
    switch (r.tag()) {
      case 1: {
        if (const DecodeError e = read_message(r, body); e != DecodeError::none) return e;
        if (message.kind != ServerMessage::Kind::welcome) {
          reset(message);
          message.kind = ServerMessage::Kind::welcome;
        }
        return for_each_field(body, 2, [&](Reader& f) {
          switch (f.tag()) {
            case 1: return read_uint32(f, message.welcome_id);
            case 2: return parse_ice_server(f, message.ice_servers, limits);
            default: return skip(f);
          }
        });
      }
      case 2: {
        if (const DecodeError e = read_message(r, body); e != DecodeError::none) return e;
        if (message.kind != ServerMessage::Kind::topic_message) {
          reset(message);
          message.kind = ServerMessage::Kind::topic_message;
        }
        return for_each_field(body, 3, [&](Reader& f) {
          switch (f.tag()) {
            case 1: return read_bytes(f, message.topic);
            case 2: return read_uint32(f, message.sender);
            case 3: return read_bytes(f, message.body);
            default: return skip(f);
          }
        });
      }
      case 3: {
        if (const DecodeError e = read_message(r, body); e != DecodeError::none) return e;
        if (message.kind != ServerMessage::Kind::topic_batch) {
          reset(message);
          message.kind = ServerMessage::Kind::topic_batch;
        }
        return for_each_field(body, 2, [&](Reader& f) {
          switch (f.tag()) {
            case 1: return read_bytes(f, message.topic);
            case 2: {
              Reader entry;
              if (const DecodeError e = read_message(f, entry); e != DecodeError::none) return e;
              if (message.batch.size() >= limits.max_batch_entries) return DecodeError::too_many;
              BatchEntry& out = message.batch.emplace_back();
              return for_each_field(entry, 3, [&](Reader& g) {
                switch (g.tag()) {
                  case 2: return read_uint32(g, out.sender);
                  case 3: return read_bytes(g, out.body);
                  default: return skip(g);  // a topic here is the batch's
                }
              });
            }
            default: return skip(f);
          }
        });
      }
      default: return skip(r);
    }
  });
  if (error != DecodeError::none) return error;
  if (message.kind == ServerMessage::Kind::none) return DecodeError::missing_field;
  return DecodeError::none;
}

// Shared by ClientMessage (owning strings) and ClientMessageView (views).
template <class Message>
DecodeError parse_client(Reader reader, Message& message, const DecodeLimits& limits) {
  using Kind = ClientMessage::Kind;
  const DecodeError error = for_each_field(reader, 3, [&](Reader& r) {
    Kind kind = Kind::none;
    switch (r.tag()) {
      case 1: kind = Kind::subscribe; break;
      case 2: kind = Kind::publish; break;
      case 3: kind = Kind::unsubscribe; break;
      default: return skip(r);
    }
    Reader body;
    if (const DecodeError e = read_message(r, body); e != DecodeError::none) return e;
    if (message.kind != kind) {
      reset(message);
      message.kind = kind;
    }
    if (kind != Kind::publish) {
      return for_each_field(body, 2, [&](Reader& f) {
        switch (f.tag()) {
          case 1: return read_bytes(f, message.topic);
          case 2:  // SubscribeRequest only
            return kind == Kind::subscribe ? read_uint32(f, message.batch_ms) : skip(f);
          default: return skip(f);
        }
      });
    }
    return for_each_field(body, 2, [&](Reader& f) {
      switch (f.tag()) {
        case 1: {
          std::string_view topic;
          if (const DecodeError e = read_view(f, topic); e != DecodeError::none) return e;
          if (message.topics.size() >= limits.max_topics) return DecodeError::too_many;
          message.topics.emplace_back(topic);
          return DecodeError::none;
        }
        case 2: return read_bytes(f, message.payload);
        default: return skip(f);
      }
    });
  });
  if (error != DecodeError::none) return error;
  if (message.kind == Kind::none) return DecodeError::missing_field;
  return DecodeError::none;
}

// Common frame of every decode(): reset, size limit, exception boundary.
// On any error `out` is left equal to a default-constructed value.
// protozero reports truncated input by throwing, so a WebAssembly build
// needs exception catching enabled (-fwasm-exceptions, or Emscripten's
// -sDISABLE_EXCEPTION_CATCHING=0); without it a hostile buffer would abort.
template <class Message, class Parse>
DecodeError decode_with(std::string_view bytes, Message& out, const DecodeLimits& limits,
                        Parse&& parse) {
  reset(out);
  if (bytes.size() > limits.max_message_bytes) return DecodeError::too_large;
  DecodeError error = DecodeError::none;
  try {
    error = parse(Reader{bytes.data(), bytes.size()});
  } catch (const protozero::exception&) {
    error = DecodeError::malformed;  // truncated, bad varint, bad tag or wire type
  }
  if (error != DecodeError::none) reset(out);
  return error;
}

template <class Body>
std::string encode_sized(std::size_t size, Body&& body) {
  std::string out;
  out.reserve(size);
  body(out);
  assert(out.size() == size);  // the size pass and the write pass agree
  return out;
}

}  // namespace

const char* to_string(DecodeError error) {
  switch (error) {
    case DecodeError::none: return "none";
    case DecodeError::malformed: return "malformed";
    case DecodeError::too_many: return "too_many";
    case DecodeError::too_large: return "too_large";
    case DecodeError::missing_field: return "missing_field";
  }
  return "unknown";
}

std::string encode(const Edge& edge) {
  return encode_sized(edge_body_size(edge), [&](std::string& out) { put_edge_body(out, edge); });
}

std::string encode(const MessageId& id) {
  return encode_sized(message_id_body_size(id),
                      [&](std::string& out) { put_message_id_body(out, id); });
}

std::string encode(const Packet& packet) {
  return encode_sized(packet_size(packet), [&](std::string& out) { put_packet(out, packet); });
}

std::string encode(const MeshStatus& status) {
  return encode_sized(status_size(status), [&](std::string& out) { put_status(out, status); });
}

std::string encode(const MeshUpdate& update) {
  return encode_sized(update_size(update), [&](std::string& out) { put_update(out, update); });
}

std::string encode(const ServerMessage& message) {
  std::string out;
  switch (message.kind) {
    case ServerMessage::Kind::none: break;
    case ServerMessage::Kind::welcome:
      append_welcome(out, message.welcome_id, message.ice_servers);
      break;
    case ServerMessage::Kind::topic_message:
      out.reserve(
          len_field_size(topic_message_body_size(message.topic, message.sender, message.body)));
      append_topic_message(out, message.topic, message.sender, message.body);
      break;
    case ServerMessage::Kind::topic_batch: {
      std::string entries;
      for (const BatchEntry& entry : message.batch) append_batch_entry(entries, entry.sender, entry.body);
      append_topic_batch(out, message.topic, entries);
      break;
    }
  }
  return out;
}

std::string encode(const ClientMessage& message) {
  return encode_sized(client_size(message), [&](std::string& out) {
    Writer writer{out};
    switch (message.kind) {
      case ClientMessage::Kind::none: break;
      case ClientMessage::Kind::subscribe:
      case ClientMessage::Kind::unsubscribe:
        put_len_header(out, message.kind == ClientMessage::Kind::subscribe ? 1 : 3,
                       topic_request_body_size(message));
        put_bytes(writer, 1, message.topic);
        if (message.kind == ClientMessage::Kind::subscribe) put_uint32(writer, 2, message.batch_ms);
        break;
      case ClientMessage::Kind::publish:
        put_len_header(out, 2, publish_body_size(message));
        for (const std::string& topic : message.topics) {
          writer.add_string(1, topic.data(), topic.size());
        }
        put_bytes(writer, 2, message.payload);
        break;
    }
  });
}

// No reserve() here: callers append many messages to one buffer, and an exact
// reserve per call would defeat the string's geometric growth (libc++).
void append_topic_message(std::string& out, std::string_view topic, PeerId sender,
                          std::string_view body) {
  put_len_header(out, 2, topic_message_body_size(topic, sender, body));
  Writer writer{out};
  put_bytes(writer, 1, topic);
  put_uint32(writer, 2, sender);
  put_bytes(writer, 3, body);
}

void append_batch_entry(std::string& entries, PeerId sender, std::string_view body) {
  put_len_header(entries, 2, batch_entry_body_size(sender, body));
  Writer writer{entries};
  put_uint32(writer, 2, sender);
  put_bytes(writer, 3, body);
}

std::size_t batch_entry_size(PeerId sender, std::string_view body) {
  return len_field_size(batch_entry_body_size(sender, body));
}

void append_topic_batch(std::string& out, std::string_view topic, std::string_view entries) {
  put_len_header(out, 3, topic_batch_body_size(topic, entries));
  Writer writer{out};
  put_bytes(writer, 1, topic);
  out.append(entries);
}

void append_welcome(std::string& out, PeerId id, const std::vector<IceServer>& ice_servers) {
  std::size_t body = uint_field_size(id);
  for (const IceServer& server : ice_servers) body += len_field_size(ice_server_size(server));
  put_len_header(out, 1, body);
  Writer writer{out};
  put_uint32(writer, 1, id);
  for (const IceServer& server : ice_servers) {
    put_len_header(out, 2, ice_server_size(server));
    for (const std::string& url : server.urls) writer.add_string(1, url.data(), url.size());
    put_bytes(writer, 2, server.username);
    put_bytes(writer, 3, server.credential);
  }
}

DecodeError decode(std::string_view bytes, Edge& out, const DecodeLimits& limits) {
  return decode_with(bytes, out, limits, [&](Reader reader) { return parse_edge(reader, out); });
}

DecodeError decode(std::string_view bytes, MessageId& out, const DecodeLimits& limits) {
  return decode_with(bytes, out, limits, [&](Reader reader) { return parse_message_id(reader, out); });
}

DecodeError decode(std::string_view bytes, Packet& out, const DecodeLimits& limits) {
  return decode_with(bytes, out, limits,
                     [&](Reader reader) { return parse_packet(reader, out, limits); });
}

DecodeError decode(std::string_view bytes, MeshStatus& out, const DecodeLimits& limits) {
  return decode_with(bytes, out, limits,
                     [&](Reader reader) { return parse_status(reader, out, limits); });
}

DecodeError decode(std::string_view bytes, MeshUpdate& out, const DecodeLimits& limits) {
  return decode_with(bytes, out, limits,
                     [&](Reader reader) { return parse_update(reader, out, limits); });
}

DecodeError decode(std::string_view bytes, ServerMessage& out, const DecodeLimits& limits) {
  return decode_with(bytes, out, limits,
                     [&](Reader reader) { return parse_server(reader, out, limits); });
}

DecodeError decode(std::string_view bytes, ClientMessage& out, const DecodeLimits& limits) {
  return decode_with(bytes, out, limits,
                     [&](Reader reader) { return parse_client(reader, out, limits); });
}

DecodeError decode(std::string_view bytes, ClientMessageView& out, const DecodeLimits& limits) {
  return decode_with(bytes, out, limits,
                     [&](Reader reader) { return parse_client(reader, out, limits); });
}

}  // namespace p2pmesh::wire
