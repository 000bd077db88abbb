// No data frame after a close frame (RFC 6455 5.5.1): a client that closes
// while the server is fanning messages out to it gets the server's close
// reply last. Browsers log "Data frame received after close" otherwise.

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <random>
#include <thread>

#include <gtest/gtest.h>

#include "support.hpp"

namespace meshd::test {
namespace {

// One masked client frame (RFC 6455 5.3).
std::string client_frame(const std::string& payload, unsigned char opcode, std::mt19937& rng) {
  std::string out;
  out += static_cast<char>(0x80 | opcode);
  if (payload.size() < 126) {
    out += static_cast<char>(0x80 | payload.size());
  } else {
    out += static_cast<char>(0x80 | 126);
    out += static_cast<char>(payload.size() >> 8);
    out += static_cast<char>(payload.size() & 0xFF);
  }
  const std::uint32_t mask = rng();
  const char* key = reinterpret_cast<const char*>(&mask);
  out.append(key, 4);
  for (std::size_t i = 0; i < payload.size(); ++i) out += static_cast<char>(payload[i] ^ key[i % 4]);
  return out;
}

// The opcodes of the server frames in `bytes` (unmasked), in order.
std::vector<int> opcodes(const std::string& bytes) {
  std::vector<int> out;
  std::size_t i = 0;
  while (i + 2 <= bytes.size()) {
    const auto op = static_cast<unsigned char>(bytes[i]) & 0x0F;
    std::uint64_t length = static_cast<unsigned char>(bytes[i + 1]) & 0x7F;
    std::size_t at = i + 2;
    if (length == 126 || length == 127) {
      const std::size_t extra = length == 126 ? 2 : 8;
      if (at + extra > bytes.size()) break;
      length = 0;
      for (std::size_t k = 0; k < extra; ++k) length = length << 8 | static_cast<unsigned char>(bytes[at + k]);
      at += extra;
    }
    if (at + length > bytes.size()) break;
    out.push_back(op);
    i = at + length;
  }
  return out;
}

// Connects, subscribes to `topic`, closes after `linger`, and returns what
// the server sent after the handshake, until it closed the connection.
std::string subscribe_then_close(std::uint16_t port, const std::string& topic,
                                 std::chrono::milliseconds linger, std::mt19937& rng) {
  const int fd = connect_tcp(port);
  if (fd < 0) return {};
  const std::string request =
      "GET /service HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  (void)!::write(fd, request.data(), request.size());
  std::string in;
  char chunk[65536];
  while (in.find("\r\n\r\n") == std::string::npos) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    in.append(chunk, static_cast<std::size_t>(n));
  }
  const std::size_t header_end = in.find("\r\n\r\n");
  in = header_end == std::string::npos ? std::string() : in.substr(header_end + 4);
  // SubscribeRequest (ClientMessage field 1 { topic: 1 }).
  std::string subscribe;
  subscribe += '\x0a';
  subscribe += static_cast<char>(topic.size() + 2);
  subscribe += '\x0a';
  subscribe += static_cast<char>(topic.size());
  subscribe += topic;
  const std::string frames = client_frame(subscribe, 0x2, rng);
  (void)!::write(fd, frames.data(), frames.size());
  std::this_thread::sleep_for(linger);
  const std::string close = client_frame(std::string("\x03\xe8", 2), 0x8, rng);  // 1000
  (void)!::write(fd, close.data(), close.size());
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n <= 0) break;
    in.append(chunk, static_cast<std::size_t>(n));
  }
  ::close(fd);
  return in;
}

TEST(CloseOrder, NoDataFrameFollowsTheCloseFrame) {
  Config config = test_config();
  config.rate_per_second = 0;  // the publisher floods
  TestServer server(config);
  WsClient publisher;
  ASSERT_TRUE(publisher.connect(server.port()));
  std::atomic<bool> stop{false};
  std::thread flood([&] {
    for (std::uint32_t id = 1; !stop; ++id) {
      publisher.publish({"g.mesh"}, status_update(publisher.id(), {}, id));
      if (id % 64 == 0) std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  std::mt19937 rng(7);
  int closes = 0, after_close = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const std::vector<int> ops =
        opcodes(subscribe_then_close(server.port(), "g.mesh", std::chrono::milliseconds(10), rng));
    const auto close = std::find(ops.begin(), ops.end(), 0x8);
    if (close == ops.end()) continue;
    ++closes;
    if (std::any_of(close + 1, ops.end(), [](int op) { return op == 0x1 || op == 0x2; })) ++after_close;
  }
  stop = true;
  flood.join();
  EXPECT_GT(closes, 50) << "the server answered the close handshake";
  EXPECT_EQ(after_close, 0) << "connections that got data frames after the close frame";
}

}  // namespace
}  // namespace meshd::test
