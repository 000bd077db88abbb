// WebSocket framing without I/O. See ws_frame.hpp.

#include "ws_frame.hpp"

#include <algorithm>
#include <limits>

namespace meshd::ws {

namespace {

bool is_control(Opcode opcode) { return (static_cast<unsigned>(opcode) & 0x8) != 0; }

bool known_opcode(unsigned opcode) {
  switch (opcode) {
    case 0x0: case 0x1: case 0x2: case 0x8: case 0x9: case 0xA:
      return true;
    default:
      return false;
  }
}

// The header's length once its second byte is known.
std::size_t header_length(unsigned char second) {
  const unsigned length7 = second & 0x7F;
  const std::size_t extended = length7 == 126 ? 2 : length7 == 127 ? 8 : 0;
  const std::size_t mask = (second & 0x80) != 0 ? 4 : 0;
  return 2 + extended + mask;
}

}  // namespace

bool valid_close_code(std::uint16_t code) {
  return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1014) ||
         (code >= 3000 && code <= 4999);
}

FrameReader::FrameReader(std::size_t max_message)
    : max_message_(static_cast<std::uint32_t>(
          std::min<std::size_t>(max_message, std::numeric_limits<std::uint32_t>::max()))) {}

bool FrameReader::idle() const {
  return phase_ == Phase::header && message_opcode_ == Opcode::continuation && !storage_;
}

FrameReader::Storage& FrameReader::storage() {
  if (!storage_) storage_ = std::make_unique<Storage>();
  return *storage_;
}

Event FrameReader::fail(std::uint16_t code, const char* what) {
  phase_ = Phase::failed;
  failed_code_ = code;
  storage_.reset();
  Event event;
  event.kind = Event::Kind::error;
  event.code = code;
  event.what = what;
  return event;
}

void FrameReader::release_finished() {
  // What the previous event pointed to is no longer needed: an idle
  // connection holds no memory.
  if (!storage_) return;
  const bool in_control = phase_ == Phase::payload && is_control(frame_opcode_);
  if (!in_control) std::string().swap(storage_->control);
  if (message_opcode_ == Opcode::continuation) std::string().swap(storage_->message);
  if (storage_->control.empty() && storage_->message.empty() && storage_->header_size == 0)
    storage_.reset();
}

Event FrameReader::next(char*& data, std::size_t& size) {
  if (phase_ == Phase::failed) {
    Event event;
    event.kind = Event::Kind::error;
    event.code = failed_code_;
    event.what = "input after a protocol error";
    return event;
  }
  release_finished();
  for (;;) {
    if (phase_ == Phase::payload) {
      Event event = take_payload(data, size);
      if (event.kind != Event::Kind::need_more || phase_ == Phase::payload) return event;
      continue;  // a data frame ended without completing a message: next header
    }
    // Header. Parsed straight from the input when it is whole there.
    const unsigned char* header = nullptr;
    unsigned char assembled[14];
    const std::size_t partial = storage_ ? storage_->header_size : 0;
    if (partial == 0 && size >= 2 &&
        size >= header_length(static_cast<unsigned char>(data[1]))) {
      header = reinterpret_cast<const unsigned char*>(data);
      const std::size_t length = header_length(header[1]);
      data += length;
      size -= length;
    } else {
      if (size == 0) return {};
      Storage& kept = storage();
      while (size > 0) {
        const std::size_t wanted = kept.header_size < 2 ? 2 : header_length(kept.header[1]);
        if (kept.header_size >= wanted) break;
        const std::size_t n = std::min(wanted - kept.header_size, size);
        std::copy_n(data, n, kept.header + kept.header_size);
        kept.header_size = static_cast<std::uint8_t>(kept.header_size + n);
        data += n;
        size -= n;
      }
      if (kept.header_size < 2 || kept.header_size < header_length(kept.header[1])) return {};
      // Copied out: a failing header frees the storage.
      std::copy_n(kept.header, sizeof assembled, assembled);
      kept.header_size = 0;
      header = assembled;
    }
    Event event = start_frame(header);
    if (event.kind != Event::Kind::need_more) return event;
  }
}

Event FrameReader::start_frame(const unsigned char* header) {
  const bool final = (header[0] & 0x80) != 0;
  if ((header[0] & 0x70) != 0) return fail(close_code::protocol_error, "reserved bits set");
  const unsigned raw_opcode = header[0] & 0x0F;
  if (!known_opcode(raw_opcode)) return fail(close_code::protocol_error, "reserved opcode");
  const auto opcode = static_cast<Opcode>(raw_opcode);
  if ((header[1] & 0x80) == 0) return fail(close_code::protocol_error, "unmasked client frame");

  std::uint64_t length = header[1] & 0x7F;
  std::size_t at = 2;
  if (length == 126) {
    length = static_cast<std::uint64_t>(header[2]) << 8 | header[3];
    at = 4;
    if (length < 126) return fail(close_code::protocol_error, "length not in its shortest form");
  } else if (length == 127) {
    length = 0;
    for (std::size_t i = 0; i < 8; ++i) length = length << 8 | header[2 + i];
    at = 10;
    if ((length >> 63) != 0) return fail(close_code::protocol_error, "length above 2^63");
    if (length <= 0xFFFF) return fail(close_code::protocol_error, "length not in its shortest form");
  }
  std::copy_n(header + at, 4, mask_);
  mask_offset_ = 0;

  if (is_control(opcode)) {
    if (!final) return fail(close_code::protocol_error, "fragmented control frame");
    if (length > kMaxControlPayload)
      return fail(close_code::protocol_error, "control frame above 125 bytes");
  } else if (opcode == Opcode::continuation) {
    if (message_opcode_ == Opcode::continuation)
      return fail(close_code::protocol_error, "continuation frame without a message");
  } else {
    if (message_opcode_ != Opcode::continuation)
      return fail(close_code::protocol_error, "new message inside a fragmented one");
    message_opcode_ = opcode;
    message_length_ = 0;
    text_utf8_.reset();
  }
  if (!is_control(opcode)) {
    // Checked before any of it is read: nothing above the limit is buffered.
    if (length > max_message_ - message_length_)
      return fail(close_code::too_big, "message above the size limit");
    message_length_ += static_cast<std::uint32_t>(length);
  }
  frame_opcode_ = opcode;
  final_ = final;
  remaining_ = static_cast<std::uint32_t>(length);  // control: <= 125; data: within the limit
  phase_ = Phase::payload;
  return {};
}

void FrameReader::unmask(char* data, std::size_t size) {
  unsigned char key[4];
  for (std::size_t i = 0; i < 4; ++i) key[i] = mask_[(mask_offset_ + i) & 3];
  for (std::size_t i = 0; i < size; ++i) data[i] = static_cast<char>(data[i] ^ key[i & 3]);
  mask_offset_ = static_cast<std::uint8_t>((mask_offset_ + size) & 3);
}

Event FrameReader::take_payload(char*& data, std::size_t& size) {
  const std::size_t available = std::min<std::size_t>(remaining_, size);
  char* const chunk = data;
  unmask(chunk, available);
  data += available;
  size -= available;
  remaining_ -= static_cast<std::uint32_t>(available);

  if (is_control(frame_opcode_)) {
    // Whole in the input: no copy. Else assembled in storage (125 bytes at most).
    const bool whole = remaining_ == 0 && (!storage_ || storage_->control.empty());
    if (whole) {
      phase_ = Phase::header;
      return finish_control(std::string_view(chunk, available));
    }
    std::string& control = storage().control;
    control.append(chunk, available);
    if (remaining_ > 0) return {};
    phase_ = Phase::header;
    return finish_control(control);
  }

  if (message_opcode_ == Opcode::text) {
    // meshd takes no text (WIRE.md: binary only), so its bytes are checked
    // and dropped, never kept.
    if (!text_utf8_.feed(reinterpret_cast<const unsigned char*>(chunk), available))
      return fail(close_code::bad_payload, "text message not UTF-8");
    if (remaining_ > 0) return {};
    phase_ = Phase::header;
    if (!final_) return {};
    if (!text_utf8_.complete()) return fail(close_code::bad_payload, "text message not UTF-8");
    message_opcode_ = Opcode::continuation;
    Event event;
    event.kind = Event::Kind::text;
    event.message_bytes = message_length_;
    return event;
  }

  // Binary: a message whole in one frame, and whole in the input, is not copied.
  const bool whole = final_ && remaining_ == 0 && available == message_length_;
  if (!whole && available > 0) storage().message.append(chunk, available);
  if (remaining_ > 0) return {};
  phase_ = Phase::header;
  if (!final_) return {};
  message_opcode_ = Opcode::continuation;  // its storage is freed at the next call
  Event event;
  event.kind = Event::Kind::binary;
  event.payload = whole || !storage_ ? std::string_view(chunk, available)
                                     : std::string_view(storage_->message);
  event.message_bytes = message_length_;
  return event;
}

Event FrameReader::finish_control(std::string_view payload) {
  Event event;
  event.payload = payload;
  switch (frame_opcode_) {
    case Opcode::ping:
      event.kind = Event::Kind::ping;
      return event;
    case Opcode::pong:
      event.kind = Event::Kind::pong;
      return event;
    default:
      break;
  }
  // Close: empty, or a code and a UTF-8 reason (RFC 6455 5.5.1).
  event.kind = Event::Kind::close;
  if (payload.empty()) {
    event.code = close_code::no_status;
    return event;
  }
  if (payload.size() == 1) return fail(close_code::protocol_error, "close frame of one byte");
  event.code = static_cast<std::uint16_t>(static_cast<unsigned char>(payload[0]) << 8 |
                                          static_cast<unsigned char>(payload[1]));
  if (!valid_close_code(event.code)) return fail(close_code::protocol_error, "invalid close code");
  event.payload = payload.substr(2);
  if (!Utf8Validator::valid(event.payload))
    return fail(close_code::bad_payload, "close reason not UTF-8");
  return event;
}

void append_frame(std::string& out, Opcode opcode, std::string_view payload) {
  unsigned char header[kMaxServerHeader];
  const std::size_t n = write_header(header, opcode, payload.size());
  out.append(reinterpret_cast<const char*>(header), n);
  out.append(payload);
}

void append_close(std::string& out, std::uint16_t code, std::string_view reason) {
  constexpr std::size_t kMaxReason = kMaxControlPayload - 2;
  if (reason.size() > kMaxReason) {
    std::size_t cut = kMaxReason;
    // Not inside a character: back up over continuation bytes (10xxxxxx).
    while (cut > 0 && (static_cast<unsigned char>(reason[cut]) & 0xC0) == 0x80) --cut;
    reason = reason.substr(0, cut);
  }
  char payload[kMaxControlPayload];
  payload[0] = static_cast<char>(code >> 8);
  payload[1] = static_cast<char>(code & 0xFF);
  std::copy(reason.begin(), reason.end(), payload + 2);
  append_frame(out, Opcode::close, std::string_view(payload, 2 + reason.size()));
}

}  // namespace meshd::ws
