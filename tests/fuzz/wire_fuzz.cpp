// libFuzzer target for the wire codec: decodes the input as every message
// type, checks that whatever decodes re-encodes to bytes that decode to the
// same value (and encode identically again), and that a rejected input leaves
// a default value behind; and that the server's zero-copy decode and append_*
// encoders agree with the owning ones. Built by the `fuzz` preset (README.md).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "wire.hpp"

namespace w = p2pmesh::wire;

namespace {

void require(bool ok) {
  if (!ok) std::abort();
}

template <class T>
void round_trip(std::string_view bytes, const w::DecodeLimits& limits) {
  T value;
  if (w::decode(bytes, value, limits) != w::DecodeError::none) {
    require(value == T{});
    return;
  }
  const std::string encoded = w::encode(value);
  T again;
  require(w::decode(encoded, again, limits) == w::DecodeError::none);
  require(again == value);
  require(w::encode(again) == encoded);
}

// The server's zero-copy decode must agree with the owning one.
void client_view(std::string_view bytes, const w::DecodeLimits& limits) {
  w::ClientMessage message;
  w::ClientMessageView view;
  const w::DecodeError error = w::decode(bytes, message, limits);
  require(w::decode(bytes, view, limits) == error);
  if (error != w::DecodeError::none) return;
  require(view.kind == message.kind && view.topic == message.topic &&
          view.batch_ms == message.batch_ms && view.payload == message.payload &&
          view.topics.size() == message.topics.size());
  const char* begin = bytes.data();
  const char* end = begin + bytes.size();
  for (std::size_t i = 0; i < view.topics.size(); ++i) {
    require(view.topics[i] == message.topics[i]);
    require(view.topics[i].empty() ||
            (view.topics[i].data() >= begin && view.topics[i].data() + view.topics[i].size() <= end));
  }
}

// append_topic_message / append_welcome / append_topic_batch build the same
// bytes as encode().
void server_append(std::string_view bytes, const w::DecodeLimits& limits) {
  w::ServerMessage message;
  if (w::decode(bytes, message, limits) != w::DecodeError::none) return;
  std::string out = "prefix";
  if (message.kind == w::ServerMessage::Kind::welcome) {
    w::append_welcome(out, message.welcome_id, message.ice_servers);
  } else if (message.kind == w::ServerMessage::Kind::topic_batch) {
    std::string entries;
    for (const w::BatchEntry& entry : message.batch) w::append_batch_entry(entries, entry.sender, entry.body);
    w::append_topic_batch(out, message.topic, entries);
  } else {
    w::append_topic_message(out, message.topic, message.sender, message.body);
  }
  require(out == "prefix" + w::encode(message));
}

void all(std::string_view bytes, const w::DecodeLimits& limits) {
  round_trip<w::Edge>(bytes, limits);
  round_trip<w::Packet>(bytes, limits);
  round_trip<w::MeshStatus>(bytes, limits);
  round_trip<w::MeshUpdate>(bytes, limits);
  round_trip<w::ServerMessage>(bytes, limits);
  round_trip<w::ClientMessage>(bytes, limits);
  client_view(bytes, limits);
  server_append(bytes, limits);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  all(bytes, w::DecodeLimits{});
  // Tiny limits, so the too_many / too_large paths are reached as well.
  w::DecodeLimits tiny;
  tiny.max_message_bytes = 64;
  tiny.max_edges = 2;
  tiny.max_connected = 3;
  tiny.max_topics = 2;
  all(bytes, tiny);
  return 0;
}
