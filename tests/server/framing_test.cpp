// meshd's WebSocket framing against raw TCP clients: messages fragmented and
// split at every byte across writes, control frames between fragments, the
// close handshake and protocol errors as the bytes on the wire show them.

#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "support.hpp"
#include "wire.hpp"

namespace meshd::test {
namespace {

namespace wire = p2pmesh::wire;

Config open_config() {
  Config config = test_config();
  config.access_rules = false;
  return config;
}

std::string masked(unsigned char first, std::string_view payload) {
  std::string out;
  out += static_cast<char>(first);
  if (payload.size() < 126) {
    out += static_cast<char>(0x80 | payload.size());
  } else {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>(payload.size() >> 8);
    out += static_cast<char>(payload.size() & 0xFF);
  }
  const char key[4] = {'\x37', '\xfa', '\x21', '\x3d'};
  out.append(key, 4);
  for (std::size_t i = 0; i < payload.size(); ++i) out += static_cast<char>(payload[i] ^ key[i % 4]);
  return out;
}

struct ServerFrame {
  unsigned opcode = 0;
  std::string payload;
};

// A raw WebSocket connection: the upgrade done by hand, then bytes.
class RawClient {
 public:
  explicit RawClient(std::uint16_t port) : fd_(connect_tcp(port)) {
    if (fd_ < 0) return;
    const std::string request =
        "GET /service HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    send(request);
    while (in_.find("\r\n\r\n") == std::string::npos && fill()) {
    }
    const auto end = in_.find("\r\n\r\n");
    if (end == std::string::npos) return;
    upgraded_ = in_.rfind("HTTP/1.1 101", 0) == 0 &&
                in_.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") < end;
    in_.erase(0, end + 4);
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool upgraded() const { return upgraded_; }
  void send(std::string_view bytes) { (void)!::write(fd_, bytes.data(), bytes.size()); }

  // The next server frame; nullopt at the end of the connection (or after 5 s).
  std::optional<ServerFrame> next() {
    for (;;) {
      if (in_.size() >= 2) {
        const auto* b = reinterpret_cast<const unsigned char*>(in_.data());
        EXPECT_EQ(b[1] & 0x80, 0) << "server frames are unmasked";
        std::uint64_t length = b[1] & 0x7F;
        std::size_t at = 2;
        if (length == 126 && in_.size() >= 4) {
          length = static_cast<std::uint64_t>(b[2]) << 8 | b[3];
          at = 4;
        } else if (length == 127 && in_.size() >= 10) {
          length = 0;
          for (int i = 0; i < 8; ++i) length = length << 8 | b[2 + i];
          at = 10;
        }
        if (length < 126 || at > 2) {
          if (in_.size() >= at + length) {
            ServerFrame frame{b[0] & 0x0Fu, in_.substr(at, length)};
            in_.erase(0, at + length);
            return frame;
          }
        }
      }
      if (!fill()) return std::nullopt;
    }
  }
  // Frames until one with `opcode` (returned), skipping the others.
  std::optional<ServerFrame> next_of(unsigned opcode) {
    while (auto frame = next())
      if (frame->opcode == opcode) return frame;
    return std::nullopt;
  }
  // True when the server ends the connection (EOF) within 5 s.
  bool ends() {
    while (fill()) {
    }
    return eof_;
  }

 private:
  bool fill() {
    char chunk[4096];
    const ssize_t n = ::read(fd_, chunk, sizeof chunk);
    if (n == 0) eof_ = true;
    if (n <= 0) return false;
    in_.append(chunk, static_cast<std::size_t>(n));
    return true;
  }
  int fd_;
  bool upgraded_ = false;
  bool eof_ = false;
  std::string in_;
};

std::string publish(const std::string& topic, const std::string& body) {
  wire::ClientMessage message;
  message.kind = wire::ClientMessage::Kind::publish;
  message.topics = {topic};
  message.payload = body;
  return wire::encode(message);
}

TEST(Framing, AFragmentedMessageSplitAtEveryByteArrivesWhole) {
  TestServer server(open_config());
  WsClient subscriber;
  ASSERT_TRUE(subscriber.connect(server.port()));
  subscriber.subscribe("room");
  ASSERT_TRUE(subscriber.barrier());
  // Three fragments, a ping between the first two, a pong between the last two.
  const auto frames_for = [](const std::string& message) {
    const std::size_t third = message.size() / 3;
    return masked(0x02, message.substr(0, third)) + masked(0x89, "are you there") +
           masked(0x00, message.substr(third, third)) + masked(0x8A, "") +
           masked(0x80, message.substr(2 * third));
  };
  const std::size_t length = frames_for(publish("room", "split at 000")).size();
  for (std::size_t split = 1; split < length; ++split) {
    char body[32];
    std::snprintf(body, sizeof body, "split at %03zu", split);
    const std::string frames = frames_for(publish("room", body));
    ASSERT_EQ(frames.size(), length);
    RawClient client(server.port());
    ASSERT_TRUE(client.upgraded());
    client.send(std::string_view(frames).substr(0, split));
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    client.send(std::string_view(frames).substr(split));
    const auto pong = client.next_of(0xA);
    ASSERT_TRUE(pong) << "split at " << split;
    EXPECT_EQ(pong->payload, "are you there");
    const auto message = subscriber.next();
    ASSERT_TRUE(message) << "split at " << split;
    EXPECT_EQ(message->body, body);
  }
}

TEST(Framing, EveryByteInItsOwnWrite) {
  TestServer server(open_config());
  WsClient subscriber;
  ASSERT_TRUE(subscriber.connect(server.port()));
  subscriber.subscribe("room");
  ASSERT_TRUE(subscriber.barrier());
  RawClient client(server.port());
  ASSERT_TRUE(client.upgraded());
  const std::string message = publish("room", std::string(300, 'b'));  // 16-bit length
  const std::string frames = masked(0x02, message.substr(0, 100)) + masked(0x80, message.substr(100));
  for (char byte : frames) {
    client.send(std::string_view(&byte, 1));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  const auto received = subscriber.next();
  ASSERT_TRUE(received);
  EXPECT_EQ(received->body, std::string(300, 'b'));
}

TEST(Framing, TheClientsCloseIsAnsweredWithItsCodeThenTheConnectionEnds) {
  TestServer server(open_config());
  {
    RawClient client(server.port());
    ASSERT_TRUE(client.upgraded());
    client.send(masked(0x88, std::string("\x0f\xa0", 2) + "done"));  // 4000
    const auto close = client.next_of(0x8);
    ASSERT_TRUE(close);
    EXPECT_EQ(close->payload.substr(0, 2), std::string("\x0f\xa0", 2));
    EXPECT_TRUE(client.ends());  // meshd's FIN after its close frame
  }
  // The client's FIN ends the session at once (not at --handshake-timeout).
  EXPECT_TRUE(wait_metric(server.port(), "meshd_connections", 0, std::chrono::milliseconds(2000)));
}

TEST(Framing, ProtocolErrorsCloseWithTheirCode) {
  TestServer server(open_config());
  const auto close_code_after = [&](const std::string& bytes) {
    RawClient client(server.port());
    EXPECT_TRUE(client.upgraded());
    client.send(bytes);
    const auto close = client.next_of(0x8);
    EXPECT_TRUE(client.ends());
    if (!close || close->payload.size() < 2) return -1;
    return static_cast<unsigned char>(close->payload[0]) << 8 |
           static_cast<unsigned char>(close->payload[1]);
  };
  std::string unmasked = "\x82\x02hi";
  EXPECT_EQ(close_code_after(unmasked), 1002);
  EXPECT_EQ(close_code_after(masked(0xC2, "x")), 1002);  // RSV1: no extension was negotiated
  EXPECT_EQ(close_code_after(masked(0x83, "x")), 1002);  // reserved opcode
  EXPECT_EQ(close_code_after(masked(0x09, "")), 1002);   // fragmented ping
  EXPECT_EQ(close_code_after(masked(0x88, std::string("\x03\xed", 2))), 1002);  // 1005 on the wire
  EXPECT_EQ(close_code_after(masked(0x88, std::string("\x03\xe8\xff", 3))), 1007);  // reason not UTF-8
  EXPECT_EQ(close_code_after(masked(0x81, "\xc0\xaf")), 1007);  // text not UTF-8
  EXPECT_TRUE(wait_metric(server.port(), "meshd_connections", 0));
  // An operator sees them in /metrics, not only in debug logs.
  EXPECT_EQ(drops(server.port(), "protocol_error"), 5);
  EXPECT_EQ(drops(server.port(), "invalid_utf8"), 2);
  // The server is fine.
  WsClient next;
  EXPECT_TRUE(next.connect(server.port()));
}

TEST(Framing, FramesSentWithTheUpgradeRequestAreRead) {
  TestServer server(open_config());
  WsClient subscriber;
  ASSERT_TRUE(subscriber.connect(server.port()));
  subscriber.subscribe("room");
  ASSERT_TRUE(subscriber.barrier());
  const int fd = connect_tcp(server.port());
  ASSERT_GE(fd, 0);
  const std::string bytes =
      "GET /service HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n" +
      masked(0x82, publish("room", "early"));
  (void)!::write(fd, bytes.data(), bytes.size());
  const auto message = subscriber.next();
  ::close(fd);
  ASSERT_TRUE(message);
  EXPECT_EQ(message->body, "early");
}

}  // namespace
}  // namespace meshd::test
