// meshd's WebSocket framing (src/server/ws_frame.hpp) without a socket:
// Autobahn-style cases (RFC 6455 sections 5 and 7): fragmentation with
// control frames in between, control frame limits, masking, reserved bits
// and opcodes, 16/64-bit lengths, the message size limit, UTF-8 in text and
// close reasons, close codes, zero-length frames, input split anywhere.
// Also the opening handshake's accept key and request checks.

#include <gtest/gtest.h>

#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "utf8.hpp"
#include "ws_frame.hpp"
#include "ws_handshake.hpp"

namespace meshd::ws {
namespace {

using Kind = Event::Kind;

struct Spec {
  bool fin = true;
  unsigned opcode = 0x2;
  unsigned rsv = 0;        // bits 4..6 of the first byte
  bool masked = true;
  int length_form = 0;     // 0: shortest; 126 or 127: that form, whatever the length
  std::uint64_t declared = std::numeric_limits<std::uint64_t>::max();  // else: this length
};

// A client frame as a browser would send it (masked), or bent by `spec`.
std::string client_frame(std::string_view payload, Spec spec = {}) {
  std::string out;
  out += static_cast<char>((spec.fin ? 0x80 : 0) | (spec.rsv << 4) | spec.opcode);
  const std::uint64_t length =
      spec.declared != std::numeric_limits<std::uint64_t>::max() ? spec.declared : payload.size();
  const int form = spec.length_form != 0 ? spec.length_form
                   : length < 126         ? 0
                   : length <= 0xFFFF     ? 126
                                          : 127;
  const char mask_bit = spec.masked ? static_cast<char>(0x80) : 0;
  if (form == 0) {
    out += static_cast<char>(mask_bit | static_cast<char>(length));
  } else if (form == 126) {
    out += static_cast<char>(mask_bit | 126);
    out += static_cast<char>(length >> 8);
    out += static_cast<char>(length & 0xFF);
  } else {
    out += static_cast<char>(mask_bit | 127);
    for (int shift = 56; shift >= 0; shift -= 8) out += static_cast<char>(length >> shift);
  }
  const char key[4] = {'\x12', '\x9a', '\x5c', '\xe1'};
  if (spec.masked) out.append(key, 4);
  for (std::size_t i = 0; i < payload.size(); ++i)
    out += spec.masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i];
  return out;
}

std::string close_payload(std::uint16_t code, std::string_view reason = {}) {
  std::string out;
  out += static_cast<char>(code >> 8);
  out += static_cast<char>(code & 0xFF);
  out += reason;
  return out;
}

struct Seen {
  Kind kind;
  std::uint16_t code;
  std::string payload;
  std::uint64_t bytes;
  bool operator==(const Seen& other) const {
    return kind == other.kind && code == other.code && payload == other.payload &&
           bytes == other.bytes;
  }
};

std::ostream& operator<<(std::ostream& out, const Seen& seen) {
  return out << "{kind " << static_cast<int>(seen.kind) << ", code " << seen.code << ", "
             << seen.payload.size() << " bytes}";
}

// Feeds `input` in pieces of `piece` bytes and records every event, up to
// the first error.
std::vector<Seen> feed(FrameReader& reader, std::string input,
                       std::size_t piece = std::numeric_limits<std::size_t>::max()) {
  std::vector<Seen> seen;
  std::size_t at = 0;
  do {
    const std::size_t n = std::min(piece, input.size() - at);
    char* data = input.data() + at;
    std::size_t size = n;
    for (;;) {
      const Event event = reader.next(data, size);
      if (event.kind == Kind::need_more) break;
      seen.push_back({event.kind, event.code, std::string(event.payload), event.message_bytes});
      if (event.kind == Kind::error) return seen;
    }
    EXPECT_EQ(size, 0u) << "need_more with input left";
    at += n;
  } while (at < input.size());
  return seen;
}

std::vector<Seen> feed_all(std::string input, std::size_t max_message = 1 << 20) {
  FrameReader reader(max_message);
  return feed(reader, std::move(input));
}

Seen error(std::uint16_t code) { return {Kind::error, code, "", 0}; }
Seen binary(std::string payload) {
  const auto size = payload.size();
  return {Kind::binary, 0, std::move(payload), size};
}

TEST(WsFrame, AWholeFrameIsOneMessageReadInPlace) {
  std::string input = client_frame("hello");
  FrameReader reader(1024);
  char* data = input.data();
  std::size_t size = input.size();
  const Event event = reader.next(data, size);
  ASSERT_EQ(event.kind, Kind::binary);
  EXPECT_EQ(event.payload, "hello");
  // Unmasked in the input itself: no copy.
  EXPECT_GE(event.payload.data(), input.data());
  EXPECT_LE(event.payload.data() + event.payload.size(), input.data() + input.size());
  EXPECT_EQ(size, 0u);
  EXPECT_EQ(reader.next(data, size).kind, Kind::need_more);
  EXPECT_TRUE(reader.idle());
}

TEST(WsFrame, SeveralFramesInOneInputAreSeveralEvents) {
  const auto seen = feed_all(client_frame("a") + client_frame("bc") +
                             client_frame("p", {.opcode = 0x9}) + client_frame("d"));
  EXPECT_EQ(seen, (std::vector<Seen>{binary("a"), binary("bc"), {Kind::ping, 0, "p", 0},
                                     binary("d")}));
}

TEST(WsFrame, FragmentsWithControlFramesBetweenThemMakeOneMessage) {
  const std::string input = client_frame("ab", {.fin = false}) +
                            client_frame("ping", {.opcode = 0x9}) +
                            client_frame("cd", {.fin = false, .opcode = 0x0}) +
                            client_frame("", {.opcode = 0xA}) +
                            client_frame("ef", {.opcode = 0x0}) + client_frame("next");
  const std::vector<Seen> expected{{Kind::ping, 0, "ping", 0}, {Kind::pong, 0, "", 0},
                                   binary("abcdef"), binary("next")};
  EXPECT_EQ(feed_all(input), expected);
  // Split anywhere: byte by byte, and every split into two pieces.
  FrameReader bytewise(1024);
  EXPECT_EQ(feed(bytewise, input, 1), expected);
  EXPECT_TRUE(bytewise.idle());
  for (std::size_t split = 1; split < input.size(); ++split) {
    FrameReader reader(1024);
    auto seen = feed(reader, input.substr(0, split));
    const auto rest = feed(reader, input.substr(split));
    seen.insert(seen.end(), rest.begin(), rest.end());
    EXPECT_EQ(seen, expected) << "split at " << split;
    EXPECT_TRUE(reader.idle()) << "split at " << split;
  }
}

TEST(WsFrame, SixteenAndSixtyFourBitLengths) {
  for (const std::size_t size : {125u, 126u, 127u, 1000u, 65535u, 65536u, 200000u}) {
    const std::string payload(size, 'x');
    const std::string frame = client_frame(payload);
    EXPECT_EQ(feed_all(frame), std::vector<Seen>{binary(payload)}) << size;
    FrameReader reader(1 << 20);
    EXPECT_EQ(feed(reader, frame, 7), std::vector<Seen>{binary(payload)}) << size;
  }
}

TEST(WsFrame, LengthsNotInTheirShortestFormAreProtocolErrors) {
  EXPECT_EQ(feed_all(client_frame("abc", {.length_form = 126})), std::vector{error(1002)});
  EXPECT_EQ(feed_all(client_frame(std::string(300, 'x'), {.length_form = 127})),
            std::vector{error(1002)});
  // 64-bit length with its top bit set.
  EXPECT_EQ(feed_all(client_frame("", {.length_form = 127, .declared = 1ull << 63})),
            std::vector{error(1002)});
}

TEST(WsFrame, UnmaskedClientFramesAreProtocolErrors) {
  EXPECT_EQ(feed_all(client_frame("hi", {.masked = false})), std::vector{error(1002)});
  EXPECT_EQ(feed_all(client_frame("", {.opcode = 0x9, .masked = false})), std::vector{error(1002)});
}

TEST(WsFrame, ReservedBitsAreProtocolErrors) {
  for (unsigned rsv : {1u, 2u, 4u, 7u})
    EXPECT_EQ(feed_all(client_frame("x", {.rsv = rsv})), std::vector{error(1002)}) << rsv;
}

TEST(WsFrame, ReservedOpcodesAreProtocolErrors) {
  for (unsigned opcode : {3u, 4u, 5u, 6u, 7u, 0xBu, 0xCu, 0xDu, 0xEu, 0xFu})
    EXPECT_EQ(feed_all(client_frame("x", {.opcode = opcode})), std::vector{error(1002)}) << opcode;
}

TEST(WsFrame, ControlFramesAreShortAndWhole) {
  // 125 bytes is the limit.
  const std::string most(125, 'p');
  EXPECT_EQ(feed_all(client_frame(most, {.opcode = 0x9})),
            (std::vector<Seen>{{Kind::ping, 0, most, 0}}));
  EXPECT_EQ(feed_all(client_frame(std::string(126, 'p'), {.opcode = 0x9})), std::vector{error(1002)});
  EXPECT_EQ(feed_all(client_frame(std::string(126, 'p'), {.opcode = 0xA})), std::vector{error(1002)});
  EXPECT_EQ(feed_all(client_frame("", {.fin = false, .opcode = 0x9})), std::vector{error(1002)});
  EXPECT_EQ(feed_all(client_frame(close_payload(1000), {.fin = false, .opcode = 0x8})),
            std::vector{error(1002)});
}

TEST(WsFrame, ContinuationsNeedAMessageAndMessagesDoNotNest) {
  EXPECT_EQ(feed_all(client_frame("x", {.opcode = 0x0})), std::vector{error(1002)});
  EXPECT_EQ(feed_all(client_frame("a", {.fin = false}) + client_frame("b")), std::vector{error(1002)});
  EXPECT_EQ(feed_all(client_frame("a", {.fin = false}) + client_frame("b", {.opcode = 0x1})),
            std::vector{error(1002)});
}

TEST(WsFrame, MessagesAboveTheLimitFailWith1009BeforeTheyAreRead) {
  EXPECT_EQ(feed_all(client_frame(std::string(100, 'x')), 100),
            std::vector<Seen>{binary(std::string(100, 'x'))});
  // Only the header of a frame above the limit: the error comes at once.
  const std::string header = client_frame(std::string(101, 'x')).substr(0, 6);
  EXPECT_EQ(feed_all(header, 100), std::vector{error(1009)});
  // The fragments add up.
  EXPECT_EQ(feed_all(client_frame(std::string(60, 'x'), {.fin = false}) +
                         client_frame(std::string(41, 'x'), {.opcode = 0x0}),
                     100),
            std::vector{error(1009)});
  // A 64-bit length far above it.
  EXPECT_EQ(feed_all(client_frame("", {.length_form = 127, .declared = 1ull << 40}), 100),
            std::vector{error(1009)});
  // Text counts too.
  EXPECT_EQ(feed_all(client_frame(std::string(101, 'x'), {.opcode = 0x1}), 100),
            std::vector{error(1009)});
}

TEST(WsFrame, TextIsCheckedForUtf8AndNotKept) {
  EXPECT_EQ(feed_all(client_frame("h\xc3\xa9llo", {.opcode = 0x1})),
            (std::vector<Seen>{{Kind::text, 0, "", 6}}));
  // A character split between fragments.
  EXPECT_EQ(feed_all(client_frame("\xce\xba\xe1", {.fin = false, .opcode = 0x1}) +
                     client_frame("\xbd\xb9", {.opcode = 0x0})),
            (std::vector<Seen>{{Kind::text, 0, "", 5}}));
  EXPECT_EQ(feed_all(client_frame("\xff", {.opcode = 0x1})), std::vector{error(1007)});
  EXPECT_EQ(feed_all(client_frame("\xed\xa0\x80", {.opcode = 0x1})), std::vector{error(1007)});
  // Invalid in the first fragment: fails before the message ends.
  EXPECT_EQ(feed_all(client_frame("\xc0\xaf", {.fin = false, .opcode = 0x1})),
            std::vector{error(1007)});
  // Ends inside a character.
  EXPECT_EQ(feed_all(client_frame("\xce", {.opcode = 0x1})), std::vector{error(1007)});
}

TEST(WsFrame, CloseFramesCarryAValidCodeAndAUtf8Reason) {
  EXPECT_EQ(feed_all(client_frame("", {.opcode = 0x8})),
            (std::vector<Seen>{{Kind::close, 1005, "", 0}}));
  EXPECT_EQ(feed_all(client_frame(close_payload(1000, "bye"), {.opcode = 0x8})),
            (std::vector<Seen>{{Kind::close, 1000, "bye", 0}}));
  EXPECT_EQ(feed_all(client_frame(close_payload(4000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"),
                                  {.opcode = 0x8})),
            (std::vector<Seen>{
                {Kind::close, 4000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", 0}}));
  for (std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999,
                             4000, 4999}) {
    const auto seen = feed_all(client_frame(close_payload(code), {.opcode = 0x8}));
    ASSERT_EQ(seen.size(), 1u);
    EXPECT_EQ(seen[0].kind, Kind::close) << code;
    EXPECT_EQ(seen[0].code, code);
  }
  // Never on the wire (1005, 1006, 1015), reserved, or out of range.
  for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535})
    EXPECT_EQ(feed_all(client_frame(close_payload(code), {.opcode = 0x8})), std::vector{error(1002)})
        << code;
  // One byte: half a code.
  EXPECT_EQ(feed_all(client_frame("\x03", {.opcode = 0x8})), std::vector{error(1002)});
  // A reason that is not UTF-8.
  EXPECT_EQ(feed_all(client_frame(close_payload(1000, "\xff\xfe"), {.opcode = 0x8})),
            std::vector{error(1007)});
  EXPECT_EQ(feed_all(client_frame(close_payload(1000, "ok\xce"), {.opcode = 0x8})),
            std::vector{error(1007)});
}

TEST(WsFrame, ZeroLengthFrames) {
  EXPECT_EQ(feed_all(client_frame("")), std::vector<Seen>{binary("")});
  EXPECT_EQ(feed_all(client_frame("", {.fin = false}) + client_frame("", {.fin = false, .opcode = 0}) +
                     client_frame("x", {.opcode = 0})),
            std::vector<Seen>{binary("x")});
  EXPECT_EQ(feed_all(client_frame("", {.opcode = 0x1})), (std::vector<Seen>{{Kind::text, 0, "", 0}}));
  EXPECT_EQ(feed_all(client_frame("", {.opcode = 0x9})), (std::vector<Seen>{{Kind::ping, 0, "", 0}}));
}

TEST(WsFrame, AfterAnErrorNothingMoreIsRead) {
  FrameReader reader(1024);
  std::string input = client_frame("x", {.rsv = 1}) + client_frame("y");
  char* data = input.data();
  std::size_t size = input.size();
  EXPECT_EQ(reader.next(data, size).kind, Kind::error);
  const std::size_t left = size;
  const Event again = reader.next(data, size);
  EXPECT_EQ(again.kind, Kind::error);
  EXPECT_EQ(again.code, 1002);
  EXPECT_EQ(size, left);
}

TEST(WsFrame, NoMemoryIsHeldOnceAMessageIsComplete) {
  FrameReader reader(1 << 20);
  const std::string big(5000, 'x');
  const std::string input = client_frame(big, {.fin = false}) + client_frame(big, {.opcode = 0});
  // Split: the first piece is assembled on the heap.
  auto seen = feed(reader, input.substr(0, 3000));
  EXPECT_TRUE(seen.empty());
  EXPECT_FALSE(reader.idle());
  seen = feed(reader, input.substr(3000));
  EXPECT_EQ(seen, std::vector<Seen>{binary(big + big)});
  // The message stays valid until the next call, which frees it.
  std::string none;
  char* data = none.data();
  std::size_t size = 0;
  EXPECT_EQ(reader.next(data, size).kind, Kind::need_more);
  EXPECT_TRUE(reader.idle());
}

// A server frame, parsed back: opcode, payload.
std::pair<unsigned, std::string> parse_server_frame(const std::string& frame) {
  EXPECT_GE(frame.size(), 2u);
  const auto* bytes = reinterpret_cast<const unsigned char*>(frame.data());
  EXPECT_EQ(bytes[0] & 0xF0, 0x80) << "FIN, no RSV";
  EXPECT_EQ(bytes[1] & 0x80, 0) << "server frames are unmasked";
  std::uint64_t length = bytes[1] & 0x7F;
  std::size_t at = 2;
  if (length == 126) {
    length = static_cast<std::uint64_t>(bytes[2]) << 8 | bytes[3];
    at = 4;
  } else if (length == 127) {
    length = 0;
    for (int i = 0; i < 8; ++i) length = length << 8 | bytes[2 + i];
    at = 10;
  }
  EXPECT_EQ(at + length, frame.size());
  return {bytes[0] & 0x0Fu, frame.substr(at)};
}

TEST(WsFrame, ServerFramesAreUnmaskedAndMinimal) {
  for (const std::size_t size : {0u, 125u, 126u, 65535u, 65536u}) {
    std::string frame;
    append_frame(frame, Opcode::binary, std::string(size, 'z'));
    const std::size_t header = size < 126 ? 2 : size <= 65535 ? 4 : 10;
    EXPECT_EQ(frame.size(), header + size);
    EXPECT_EQ(parse_server_frame(frame), std::make_pair(2u, std::string(size, 'z')));
  }
  std::string close;
  append_close(close, 1008, "slow consumer");
  EXPECT_EQ(parse_server_frame(close), std::make_pair(8u, close_payload(1008, "slow consumer")));
}

TEST(WsFrame, ALongCloseReasonIsCutAtACharacterBoundary) {
  std::string reason;
  for (int i = 0; i < 100; ++i) reason += "\xce\xba";  // 200 bytes of 2-byte characters
  std::string close;
  append_close(close, 1000, reason);
  const auto [opcode, payload] = parse_server_frame(close);
  EXPECT_EQ(opcode, 8u);
  EXPECT_LE(payload.size(), 125u);
  EXPECT_EQ(payload.size(), 2u + 122u);
  EXPECT_TRUE(Utf8Validator::valid(std::string_view(payload).substr(2)));
}

TEST(Utf8, RejectsOverlongSurrogatesAndAboveTheLastCodePoint) {
  EXPECT_TRUE(Utf8Validator::valid(""));
  EXPECT_TRUE(Utf8Validator::valid("plain ascii"));
  EXPECT_TRUE(Utf8Validator::valid("\xf0\x9f\x98\x80"));  // U+1F600
  EXPECT_TRUE(Utf8Validator::valid("\xf4\x8f\xbf\xbf"));  // U+10FFFF
  EXPECT_TRUE(Utf8Validator::valid("\xed\x9f\xbf"));      // U+D7FF
  EXPECT_FALSE(Utf8Validator::valid("\xc0\xaf"));         // overlong '/'
  EXPECT_FALSE(Utf8Validator::valid("\xe0\x80\xaf"));     // overlong
  EXPECT_FALSE(Utf8Validator::valid("\xf0\x80\x80\xaf"));  // overlong
  EXPECT_FALSE(Utf8Validator::valid("\xed\xa0\x80"));     // U+D800
  EXPECT_FALSE(Utf8Validator::valid("\xf4\x90\x80\x80"));  // U+110000
  EXPECT_FALSE(Utf8Validator::valid("\x80"));             // continuation first
  EXPECT_FALSE(Utf8Validator::valid("\xce"));             // cut
  Utf8Validator split;
  EXPECT_TRUE(split.feed("\xf0\x9f"));
  EXPECT_FALSE(split.complete());
  EXPECT_TRUE(split.feed("\x98\x80"));
  EXPECT_TRUE(split.complete());
}

namespace http = boost::beast::http;

http::request<http::string_body> upgrade_request() {
  http::request<http::string_body> request{http::verb::get, "/service", 11};
  request.set(http::field::host, "localhost");
  request.set(http::field::upgrade, "websocket");
  request.set(http::field::connection, "Upgrade");
  request.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
  request.set(http::field::sec_websocket_version, "13");
  return request;
}

TEST(WsHandshake, TheAcceptKeyOfRfc6455) {
  EXPECT_EQ(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  const std::string response = switching_protocols("dGhlIHNhbXBsZSBub25jZQ==");
  EXPECT_EQ(response.rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u);
  EXPECT_NE(response.find("\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            std::string::npos);
  EXPECT_EQ(response.substr(response.size() - 4), "\r\n\r\n");
}

TEST(WsHandshake, RequestsAreChecked) {
  EXPECT_TRUE(check_upgrade(upgrade_request()).ok());
  auto no_key = upgrade_request();
  no_key.erase(http::field::sec_websocket_key);
  EXPECT_EQ(check_upgrade(no_key).status, http::status::bad_request);
  auto bad_key = upgrade_request();
  bad_key.set(http::field::sec_websocket_key, "short");
  EXPECT_EQ(check_upgrade(bad_key).status, http::status::bad_request);
  auto old_version = upgrade_request();
  old_version.set(http::field::sec_websocket_version, "8");
  EXPECT_EQ(check_upgrade(old_version).status, http::status::upgrade_required);
  auto no_host = upgrade_request();
  no_host.erase(http::field::host);
  EXPECT_EQ(check_upgrade(no_host).status, http::status::bad_request);
}

}  // namespace
}  // namespace meshd::ws
