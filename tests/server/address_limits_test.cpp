// Per-address limits (--max-connections-per-ip, --max-handshakes-per-ip):
// the counting class, and the real server under one address's flood while
// an honest client (another loopback address) still gets in.

#include "address_limits.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

namespace meshd {
namespace {

using boost::asio::ip::make_address;

TEST(AddressLimits, CountsConnectionsAndHandshakesPerAddress) {
  AddressLimits limits(3, 2);
  AddressLimits::Slot a1, a2, a3, a4, b1;
  const auto a = make_address("192.0.2.1");
  EXPECT_EQ(limits.admit(a, a1), AddressLimits::Refusal::none);
  EXPECT_EQ(limits.admit(a, a2), AddressLimits::Refusal::none);
  EXPECT_EQ(limits.admit(a, a3), AddressLimits::Refusal::handshakes);  // two in handshake
  a1.upgraded();
  EXPECT_EQ(limits.admit(a, a3), AddressLimits::Refusal::none);
  a2.upgraded();
  a3.upgraded();
  EXPECT_EQ(limits.admit(a, a4), AddressLimits::Refusal::connections);  // three open
  // Another address (and the same one as IPv6) counts apart.
  EXPECT_EQ(limits.admit(make_address("2001:db8::1"), b1), AddressLimits::Refusal::none);
  EXPECT_EQ(limits.addresses(), 2u);
  a1 = AddressLimits::Slot();  // closed
  EXPECT_EQ(limits.admit(a, a4), AddressLimits::Refusal::none);
  // IPv4 and its v4-mapped IPv6 form are one address.
  AddressLimits::Slot mapped;
  EXPECT_EQ(limits.admit(make_address("::ffff:192.0.2.1"), mapped),
            AddressLimits::Refusal::connections);
  a2 = AddressLimits::Slot();
  a3 = AddressLimits::Slot();
  a4 = AddressLimits::Slot();
  b1 = AddressLimits::Slot();
  EXPECT_EQ(limits.addresses(), 0u) << "an address without connections is forgotten";
}

using test::connect_from;

// 5,000 connections (complete WebSocket upgrades) from one address: 50 are
// served, the rest closed at accept and counted; meshd's memory stays put,
// and an honest client from another address joins and is served.
TEST(AddressLimitsServer, OneAddressOpening5000ConnectionsGetsItsShareOnly) {
  test::raise_fd_limit();
  Config config = test::test_config();
  config.max_connections_per_ip = 50;
  test::TestServer server(config);
  const std::string upgrade =
      "GET /service HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  std::vector<int> flood;
  for (int i = 0; i < 5000; ++i) {
    const int fd = connect_from("127.0.0.2", server.port());
    if (fd < 0) continue;
    (void)!::send(fd, upgrade.data(), upgrade.size(), MSG_NOSIGNAL);
    flood.push_back(fd);
    if (flood.size() >= 900) {  // keep the test's own descriptors bounded
      for (std::size_t k = 50; k < flood.size(); ++k) close(flood[k]);
      flood.resize(50);
    }
  }
  EXPECT_TRUE(test::wait_metric(server.port(), "meshd_connections", 50));
  EXPECT_GE(test::metric(server.port(), "meshd_drops_total{reason=\"per_ip_connections\"}"), 4900);

  test::WsClient honest;  // from 127.0.0.1
  ASSERT_TRUE(honest.connect(server.port())) << honest.error();
  honest.subscribe("g.mesh");
  honest.publish({"g.mesh"}, test::status_update(honest.id(), {}, 1));
  ASSERT_TRUE(honest.barrier());
  bool echoed = false;
  for (const auto& message : honest.drain()) echoed |= message.sender == honest.id();
  EXPECT_TRUE(echoed);
  for (const int fd : flood) close(fd);
  EXPECT_TRUE(test::wait_metric(server.port(), "meshd_connections", 1));
}

// A slowloris from one address (headers that never end): it holds at most
// --max-handshakes-per-ip of the handshake slots, each for at most
// --handshake-timeout, and an honest client still connects at once.
TEST(AddressLimitsServer, SlowlorisFromOneAddressCannotTakeTheHandshakeSlots) {
  Config config = test::test_config();
  config.max_handshakes_per_ip = 8;
  config.max_http_connections = 64;
  config.handshake_timeout = std::chrono::milliseconds(1500);
  test::TestServer server(config);
  std::vector<int> slow;
  for (int i = 0; i < 200; ++i) {
    const int fd = connect_from("127.0.0.3", server.port());
    if (fd < 0) continue;
    (void)!::send(fd, "GET /service HTTP/1.1\r\nHost: x\r\n", 32, MSG_NOSIGNAL);  // never ends
    slow.push_back(fd);
  }
  EXPECT_TRUE(test::wait_metric(server.port(), "meshd_drops_total{reason=\"per_ip_handshakes\"}", 192));
  test::WsClient honest;
  ASSERT_TRUE(honest.connect(server.port())) << honest.error();
  EXPECT_NE(test::http_get(server.port(), "/healthz").body.find("ok"), std::string::npos);
  // The handshake deadline frees the slow ones' slots: later slow
  // connections are admitted again.
  std::this_thread::sleep_for(std::chrono::milliseconds(2500));
  const double refused = test::metric(server.port(), "meshd_drops_total{reason=\"per_ip_handshakes\"}");
  const int later = connect_from("127.0.0.3", server.port());
  ASSERT_GE(later, 0);
  (void)!::send(later, "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 53,
                MSG_NOSIGNAL);
  char buffer[64] = {};
  EXPECT_GT(::recv(later, buffer, sizeof buffer - 1, 0), 0) << "refused after the deadline";
  EXPECT_EQ(std::string(buffer).rfind("HTTP/1.1 200", 0), 0u) << buffer;
  EXPECT_EQ(test::metric(server.port(), "meshd_drops_total{reason=\"per_ip_handshakes\"}"), refused);
  close(later);
  for (const int fd : slow) close(fd);
}

}  // namespace
}  // namespace meshd
