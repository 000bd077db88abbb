#pragma once
// WebSocket framing (RFC 6455 section 5), without I/O: meshd's own, in place
// of Boost.Beast's websocket::stream, whose per-connection state (a fixed
// read buffer, timers, handler slots: 3.1 KiB with its read pending) was
// most of an idle connection's memory (docs/meshd.md, issue #15).
//
// FrameReader parses what clients send, incrementally, from whatever bytes
// the socket gave: one byte at a time or many frames at once. It holds no
// buffer while idle; only a message that arrives in pieces (fragments, or a
// frame split across reads) is assembled on the heap, and that memory is
// freed when the message is complete. A frame that is whole in the input is
// unmasked in place and returned without a copy.
//
// The server's frames (unmasked, never fragmented) are written by
// write_header / append_frame / append_close.
//
// No extension is negotiated, so the RSV bits must be 0. Errors are the
// close codes RFC 6455 7.4.1 names: 1002 (protocol), 1007 (invalid UTF-8),
// 1009 (message above the limit).

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "utf8.hpp"

namespace meshd::ws {

enum class Opcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

namespace close_code {
constexpr std::uint16_t normal = 1000;
constexpr std::uint16_t going_away = 1001;
constexpr std::uint16_t protocol_error = 1002;
constexpr std::uint16_t no_status = 1005;  // never on the wire: a close frame without a code
constexpr std::uint16_t bad_payload = 1007;
constexpr std::uint16_t policy = 1008;
constexpr std::uint16_t too_big = 1009;
}  // namespace close_code

// A close code a peer may send (RFC 6455 7.4, IANA registry): 1000-1003,
// 1007-1014, 3000-4999. 1004-1006 and 1015 are reserved, never on the wire.
bool valid_close_code(std::uint16_t code);

constexpr std::size_t kMaxControlPayload = 125;
constexpr std::size_t kMaxServerHeader = 10;  // unmasked, 64-bit length

// What FrameReader::next found.
struct Event {
  enum class Kind : std::uint8_t {
    need_more,  // all input consumed; nothing complete yet
    binary,     // a complete binary message: payload
    text,       // a complete text message (valid UTF-8; its bytes are not kept)
    ping,       // payload: the ping's, for the pong
    pong,
    close,      // code (no_status when the frame had none) and reason (payload)
    error,      // the connection must fail: close with `code`; `what` for the log
  };
  Kind kind = Kind::need_more;
  std::uint16_t code = 0;
  std::string_view payload;
  std::uint64_t message_bytes = 0;  // binary and text: the message's length
  const char* what = "";
};

class FrameReader {
 public:
  // max_message: the largest message (all its fragments) accepted; above
  // it the connection fails with 1009, before any of it is buffered.
  explicit FrameReader(std::size_t max_message);

  // Parses input from `data` (`size` bytes) up to the next event, advancing
  // both past what it consumed. Payload bytes are unmasked in place, so the
  // input must be writable. An event's payload points into the input or
  // into the reader's own storage and is valid until the next call. After
  // an error, every call returns the same error and consumes nothing.
  Event next(char*& data, std::size_t& size);

  // No partial frame or message held (and no memory).
  bool idle() const;

 private:
  enum class Phase : std::uint8_t { header, payload, failed };

  Event fail(std::uint16_t code, const char* what);
  // The header is complete in `header`: checks it and starts the frame.
  Event start_frame(const unsigned char* header);
  // The current frame's payload, as much of it as the input holds.
  Event take_payload(char*& data, std::size_t& size);
  Event finish_control(std::string_view payload);
  void unmask(char* data, std::size_t size);
  void release_finished();

  // Only while something arrives in pieces (an idle connection holds none):
  // a binary message in fragments or split across inputs, a control frame's
  // payload or a header split across inputs.
  struct Storage {
    std::string message;
    std::string control;
    unsigned char header[14] = {};
    std::uint8_t header_size = 0;
  };
  Storage& storage();
  std::unique_ptr<Storage> storage_;
  // Both within max_message_ (checked before a frame is read).
  std::uint32_t remaining_ = 0;       // payload bytes of the current frame not yet read
  std::uint32_t message_length_ = 0;  // bytes of the current message's frames so far
  std::uint32_t max_message_;
  unsigned char mask_[4] = {};
  std::uint8_t mask_offset_ = 0;  // where the current frame's payload is in the mask cycle
  Phase phase_ = Phase::header;
  Opcode frame_opcode_ = Opcode::continuation;
  Opcode message_opcode_ = Opcode::continuation;  // continuation: no message in progress
  bool final_ = false;
  Utf8Validator text_utf8_;  // the text message in progress
  std::uint16_t failed_code_ = 0;
};

// Writes the header of a final, unmasked server frame; returns its length
// (at most kMaxServerHeader). Inline: every publication is sealed with it.
inline std::size_t write_header(unsigned char* out, Opcode opcode, std::uint64_t payload_length) {
  std::size_t n = 0;
  out[n++] = static_cast<unsigned char>(0x80 | static_cast<unsigned>(opcode));  // FIN
  if (payload_length < 126) {
    out[n++] = static_cast<unsigned char>(payload_length);
  } else if (payload_length <= 0xFFFF) {
    out[n++] = 126;
    out[n++] = static_cast<unsigned char>(payload_length >> 8);
    out[n++] = static_cast<unsigned char>(payload_length);
  } else {
    out[n++] = 127;
    for (int shift = 56; shift >= 0; shift -= 8)
      out[n++] = static_cast<unsigned char>(payload_length >> shift);
  }
  return n;
}
// Appends a complete server frame.
void append_frame(std::string& out, Opcode opcode, std::string_view payload);
// Appends a close frame: code and reason (cut to 123 bytes, at a character boundary).
void append_close(std::string& out, std::uint16_t code, std::string_view reason);

}  // namespace meshd::ws
