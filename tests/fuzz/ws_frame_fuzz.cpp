// libFuzzer target: meshd's WebSocket frame reader (src/server/ws_frame.hpp)
// on arbitrary client bytes. Input: one byte picking the message size limit
// (1 to 64 KiB), one byte picking how the rest is cut into pieces, then the
// bytes a client sends. Checks:
//  - the events are the same whether the input comes whole, in pieces of
//    the chosen size, or byte by byte (a frame split anywhere parses the same);
//  - a binary message is as long as it says and within the limit, a control
//    payload at most 125 bytes, an error's code one of 1002, 1007, 1009;
//  - need_more only once the input is consumed; after an error, nothing is
//    consumed and the same error repeats;
//  - input that ends with a complete data message leaves the reader idle
//    (no memory) once it is called again.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "ws_frame.hpp"

namespace {

using meshd::ws::Event;
using meshd::ws::FrameReader;

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "ws_frame_fuzz: invariant broken: %s\n", what);
  std::abort();
}

struct Seen {
  Event::Kind kind;
  std::uint16_t code;
  std::string payload;
  std::uint64_t bytes;
  bool operator==(const Seen& other) const {
    return kind == other.kind && code == other.code && payload == other.payload &&
           bytes == other.bytes;
  }
};

std::vector<Seen> run(const std::uint8_t* bytes, std::size_t size, std::size_t max_message,
                      std::size_t piece) {
  FrameReader reader(max_message);
  std::string input(reinterpret_cast<const char*>(bytes), size);
  std::vector<Seen> seen;
  std::size_t at = 0;
  while (at < input.size()) {
    const std::size_t n = std::min(piece, input.size() - at);
    char* data = input.data() + at;
    std::size_t left = n;
    for (;;) {
      const Event event = reader.next(data, left);
      if (event.kind == Event::Kind::need_more) {
        if (left != 0) broken("need_more with input left");
        break;
      }
      switch (event.kind) {
        case Event::Kind::binary:
          if (event.payload.size() != event.message_bytes) broken("binary length");
          if (event.payload.size() > max_message) broken("message above the limit");
          break;
        case Event::Kind::text:
          if (event.message_bytes > max_message) broken("text above the limit");
          break;
        case Event::Kind::ping:
        case Event::Kind::pong:
          if (event.payload.size() > meshd::ws::kMaxControlPayload) broken("control payload");
          break;
        case Event::Kind::close:
          if (event.payload.size() > meshd::ws::kMaxControlPayload - 2) broken("close reason");
          if (event.code != meshd::ws::close_code::no_status && !meshd::ws::valid_close_code(event.code))
            broken("close code");
          break;
        case Event::Kind::error: {
          if (event.code != 1002 && event.code != 1007 && event.code != 1009) broken("error code");
          const std::size_t stuck = left;
          const Event again = reader.next(data, left);
          if (again.kind != Event::Kind::error || again.code != event.code || left != stuck)
            broken("input read after an error");
          seen.push_back({event.kind, event.code, {}, 0});
          return seen;
        }
        default:
          break;
      }
      seen.push_back({event.kind, event.code, std::string(event.payload), event.message_bytes});
    }
    at += n;
  }
  // The last event's storage is freed by the next call.
  std::string none;
  char* data = none.data();
  std::size_t left = 0;
  const Event last = reader.next(data, left);
  if (last.kind != Event::Kind::need_more) broken("event without input");
  return seen;
}

// Input that ends with a complete data message: the reader must hold
// nothing once it is called again.
void check_idle_after_whole(const std::uint8_t* bytes, std::size_t size, std::size_t max_message) {
  FrameReader reader(max_message);
  std::string input(reinterpret_cast<const char*>(bytes), size);
  char* data = input.data();
  std::size_t left = input.size();
  Event::Kind last = Event::Kind::need_more;
  std::size_t consumed_at_last_event = 0;
  for (;;) {
    const Event event = reader.next(data, left);
    if (event.kind == Event::Kind::need_more || event.kind == Event::Kind::error) break;
    last = event.kind;
    consumed_at_last_event = input.size() - left;
  }
  if (last != Event::Kind::binary && last != Event::Kind::text) return;
  if (consumed_at_last_event != input.size()) return;  // ended inside a frame
  std::string none;
  char* empty = none.data();
  std::size_t zero = 0;
  reader.next(empty, zero);
  if (!reader.idle()) broken("memory held after complete input");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::size_t max_message = 1 + static_cast<std::size_t>(data[0]) * 257;  // 1 .. 65536
  const std::size_t piece = 1 + data[1] % 32;
  data += 2;
  size -= 2;
  const auto whole = run(data, size, max_message, size == 0 ? 1 : size);
  if (!(run(data, size, max_message, piece) == whole)) broken("pieces parse differently");
  if (!(run(data, size, max_message, 1) == whole)) broken("bytes parse differently");
  check_idle_after_whole(data, size, max_message);
  return 0;
}
