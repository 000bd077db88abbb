#pragma once
// The byte format mesh_node_fuzz reads and fuzz_seeds writes: a MeshNode
// config header, then events, each an opcode byte and its fields, read front
// to back. Reading past the end yields zeros, so any byte string is a script.
//
// Header: flags1 flags2 connections seed (one byte each; see config_from()).
// A peer field is one byte: 0xFF + u32 (any id), 0xFE (kNoPeer), 0xFD (the
// node's own id), else peer 1 + b % 12. A link field is one byte: 0xF0 + n
// (link id n, 0..15, existing or not), else an index into the node's links
// (with none: that link id).
// Strings are a length byte + that many bytes. Numbers are little-endian.
// `how` (server messages): bit 0 set = as an encoded frame (on_server_frame),
// else decoded (on_welcome / on_topic_message).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace p2pmesh::fuzz {

enum class Op : std::uint8_t {
  server_bytes,         // str: a raw server frame
  welcome,              // how, peer, count (% 3), count x str (ICE URLs)
  mesh_update,          // how, kind, source, [sender], [peer], [status]: see mesh_node_fuzz.cpp
  signal,               // how, kind (% 5), from, to_other, body: see mesh_node_fuzz.cpp
  topic_raw,            // how, str topic, sender, str body
  link_open,            // link
  link_closed,          // link
  link_bytes,           // link, str: raw data channel message
  link_packet,          // link, packet (a well-formed Packet, usually a valid route)
  link_rtt,             // link, u32
  link_candidate_type,  // link, u8 (% 5)
  local_description,    // link, str
  local_candidate,      // link, str
  broadcast,            // mode: even = str payload, odd = a payload near max_payload_bytes;
                        // bit 16: unreliable
  tick,                 // u16: time jump, (t & 0x3FFF) x {1 us, 1 ms, 100 ms, 10 s}[t >> 14]
  tick_to_wake,         // -: on_tick at the last WakeAt (if later than now)
  leave,
  server_lost,
  relay_failed,
  count
};

class Reader {
 public:
  explicit Reader(std::string_view bytes) : bytes_(bytes) {}
  bool done() const { return pos_ >= bytes_.size(); }
  std::uint8_t u8() { return done() ? 0 : static_cast<std::uint8_t>(bytes_[pos_++]); }
  std::uint16_t u16() { return static_cast<std::uint16_t>(u8() | (u8() << 8)); }
  std::uint32_t u32() { return u16() | (static_cast<std::uint32_t>(u16()) << 16); }
  std::string_view str() {
    const std::size_t want = u8();
    const std::size_t n = std::min(want, bytes_.size() - std::min(pos_, bytes_.size()));
    const std::string_view out = bytes_.substr(std::min(pos_, bytes_.size()), n);
    pos_ += n;
    return out;
  }

 private:
  std::string_view bytes_;
  std::size_t pos_ = 0;
};

class Writer {
 public:
  Writer& u8(std::uint8_t v) {
    out_ += static_cast<char>(v);
    return *this;
  }
  Writer& op(Op v) { return u8(static_cast<std::uint8_t>(v)); }
  Writer& u16(std::uint16_t v) { return u8(v & 0xFF).u8(v >> 8); }
  Writer& u32(std::uint32_t v) { return u16(v & 0xFFFF).u16(v >> 16); }
  Writer& str(std::string_view s) {
    u8(static_cast<std::uint8_t>(std::min<std::size_t>(s.size(), 255)));
    out_ += s.substr(0, 255);
    return *this;
  }
  const std::string& bytes() const { return out_; }

 private:
  std::string out_;
};

// Peer field values.
inline constexpr std::uint8_t kAnyPeer = 0xFF;
inline constexpr std::uint8_t kNoPeerByte = 0xFE;
inline constexpr std::uint8_t kSelfPeer = 0xFD;
inline constexpr std::uint8_t kLinkIdBase = 0xF0;

}  // namespace p2pmesh::fuzz
