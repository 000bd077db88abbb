// meshd over TLS (--tls-cert, --tls-key): wss:// and https:// on the one
// port, plain-text clients and garbage on it, the handshake deadline,
// refusal to start on bad files and SIGHUP reloads (the real program). Every
// client verifies meshd's certificate against a throwaway CA made at run
// time (tests/support/make_test_pki.sh), name included. Loopback only. The
// other server tests run again over TLS as tls.* (CMakeLists.txt).

#include <gtest/gtest.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

#ifndef MESHD_BINARY
#error "MESHD_BINARY must name the meshd program"
#endif

namespace meshd::test {
namespace {

namespace fs = std::filesystem;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

Config tls_config(const TestPki& pki) {
  Config config = test_config();
  config.access_rules = false;
  config.tls_cert = pki.cert();
  config.tls_key = pki.key();
  return config;
}

TEST(Tls, WssWelcomeAndPubSub) {
  TestPki pki;
  ASSERT_TRUE(pki.ok());
  TestServer server(tls_config(pki));
  WsClient a, b;
  ASSERT_TRUE(a.connect_tls(server.port(), pki.client("localhost"))) << a.error();
  ASSERT_TRUE(b.connect_tls(server.port(), pki.client("127.0.0.1"))) << b.error();
  EXPECT_NE(a.id(), b.id());
  a.subscribe("t");
  ASSERT_TRUE(a.barrier());
  b.publish({"t"}, "over tls");
  auto message = a.next();
  ASSERT_TRUE(message);
  EXPECT_EQ(message->topic, "t");
  EXPECT_EQ(message->sender, b.id());
  EXPECT_EQ(message->body, "over tls");
  // A message larger than a TLS record (16 KiB) both ways, and a burst.
  const std::string big(40000, 'x');
  b.publish({"t"}, big);
  for (int i = 0; i < 100; ++i) b.publish({"t"}, "burst " + std::to_string(i));
  message = a.next();
  ASSERT_TRUE(message);
  EXPECT_EQ(message->body, big);
  for (int i = 0; i < 100; ++i) {
    message = a.next();
    ASSERT_TRUE(message);
    EXPECT_EQ(message->body, "burst " + std::to_string(i));
  }
  EXPECT_EQ(metric(server.port(), "meshd_tls_handshake_failures_total", pki.client()), 0);
}

TEST(Tls, HttpsServesHealthzMetricsAndPages) {
  TestPki pki;
  ASSERT_TRUE(pki.ok());
  const fs::path root = fs::path(pki.dir()) / "web";
  fs::create_directories(root);
  std::string big(300 * 1000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  std::ofstream(root / "index.html") << "<h1>tls</h1>";
  std::ofstream(root / "big.txt") << big;
  Config config = tls_config(pki);
  config.web_root = root.string();
  TestServer server(config);
  const auto port = server.port();
  const auto health = https_get(port, "/healthz", pki.client());
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\ntls: on\n");
  const auto metrics = https_get(port, "/metrics", pki.client());
  EXPECT_EQ(metrics.status, 200);
  EXPECT_TRUE(contains(metrics.body, "meshd_tls_reloads_total{result=\"ok\"} 0"));
  EXPECT_TRUE(contains(metrics.body, "meshd_tls_reloads_total{result=\"error\"} 0"));
  EXPECT_EQ(https_get(port, "/", pki.client()).body, "<h1>tls</h1>");
  EXPECT_EQ(https_get(port, "/big.txt", pki.client()).body, big);  // many records
  EXPECT_EQ(https_get(port, "/service", pki.client()).status, 426);
}

// A bare OpenSSL client offering only the protocol versions [min, max] and,
// for TLS 1.2 and below, `ciphers`; true when the handshake completes.
bool handshake_offering(std::uint16_t port, int min_version, int max_version,
                        const char* ciphers) {
  SSL_CTX* context = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(context, min_version);
  SSL_CTX_set_max_proto_version(context, max_version);
  SSL_CTX_set_cipher_list(context, ciphers);
  SSL* ssl = SSL_new(context);
  const int fd = connect_tcp(port);
  SSL_set_fd(ssl, fd);
  const bool done = fd >= 0 && SSL_connect(ssl) == 1;
  SSL_free(ssl);
  SSL_CTX_free(context);
  if (fd >= 0) ::close(fd);
  return done;
}

TEST(Tls, OnlyModernProtocolsAndCiphers) {
  TestPki pki;
  ASSERT_TRUE(pki.ok());
  TestServer server(tls_config(pki));
  const auto port = server.port();
  EXPECT_TRUE(handshake_offering(port, TLS1_3_VERSION, TLS1_3_VERSION, "DEFAULT"));
  EXPECT_TRUE(handshake_offering(port, TLS1_2_VERSION, TLS1_2_VERSION,
                                 "ECDHE-ECDSA-AES128-GCM-SHA256"));
  EXPECT_TRUE(handshake_offering(port, TLS1_2_VERSION, TLS1_2_VERSION,
                                 "ECDHE-ECDSA-CHACHA20-POLY1305"));
  // TLS 1.2 without ECDHE or without an AEAD cipher; TLS 1.0 and 1.1.
  EXPECT_FALSE(handshake_offering(port, TLS1_2_VERSION, TLS1_2_VERSION,
                                  "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384:"
                                  "AES128-GCM-SHA256:AES256-SHA"));
  EXPECT_FALSE(handshake_offering(port, TLS1_VERSION, TLS1_1_VERSION, "DEFAULT:@SECLEVEL=0"));
  EXPECT_TRUE(wait_metric(port, "meshd_tls_handshake_failures_total", 2, pki.client()));
}

TEST(Tls, ClientsCheckTheServedCertificate) {
  TestPki pki, other;
  ASSERT_TRUE(pki.ok() && other.ok());
  TestServer server(tls_config(pki));
  WsClient untrusted, wrong_name;
  EXPECT_FALSE(untrusted.connect_tls(server.port(), other.client()));
  EXPECT_TRUE(contains(untrusted.error(), "certificate verify failed")) << untrusted.error();
  EXPECT_FALSE(wrong_name.connect_tls(server.port(), pki.client("meshd.example")));
  EXPECT_TRUE(contains(wrong_name.error(), "certificate verify failed")) << wrong_name.error();
  EXPECT_EQ(https_get(server.port(), "/healthz", other.client()).status, 0);
  // Both cost meshd a handshake each, and nothing else.
  WsClient good;
  EXPECT_TRUE(good.connect_tls(server.port(), pki.client())) << good.error();
  EXPECT_TRUE(wait_metric(server.port(), "meshd_tls_handshake_failures_total", 3, pki.client()));
}

TEST(Tls, PlainClientsGetA400AndCostOnlyTheirConnection) {
  TestPki pki;
  ASSERT_TRUE(pki.ok());
  TestServer server(tls_config(pki));
  const auto port = server.port();
  WsClient plain;
  EXPECT_FALSE(plain.connect(port));
  EXPECT_TRUE(contains(plain.error(), "HTTP 400")) << plain.error();
  const auto answer = raw_exchange(port, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  EXPECT_EQ(answer.rfind("HTTP/1.1 400 Bad Request\r\n", 0), 0u) << answer;
  EXPECT_TRUE(contains(answer, "use https:// or wss://")) << answer;
  EXPECT_FALSE(contains(answer, "ok"));
  WsClient secure;
  ASSERT_TRUE(secure.connect_tls(port, pki.client())) << secure.error();
  secure.subscribe("t");
  secure.publish({"t"}, "still serving");
  const auto message = secure.next();
  ASSERT_TRUE(message);
  EXPECT_EQ(message->body, "still serving");
  EXPECT_TRUE(wait_metric(port, "meshd_tls_handshake_failures_total", 2, pki.client()));
}

TEST(Tls, GarbageCostsOnlyItsConnection) {
  TestPki pki;
  ASSERT_TRUE(pki.ok());
  TestServer server(tls_config(pki));
  const auto port = server.port();
  std::string noise(4096, '\0');
  for (std::size_t i = 0; i < noise.size(); ++i) noise[i] = static_cast<char>(i * 7919 % 251);
  const std::vector<std::string> garbage = {
      noise,
      std::string("\x16\x03\x01\xff\xff", 5) + noise,        // a record longer than allowed
      std::string("\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", 10),  // a broken ClientHello
      std::string(64, '\0'),
  };
  for (const auto& bytes : garbage) {
    const auto answer = raw_exchange(port, bytes);  // returns once meshd closed it
    EXPECT_FALSE(contains(answer, "HTTP/1.1"));
  }
  WsClient secure;
  ASSERT_TRUE(secure.connect_tls(port, pki.client())) << secure.error();
  EXPECT_TRUE(wait_metric(port, "meshd_tls_handshake_failures_total",
                          static_cast<double>(garbage.size()), pki.client()));
  EXPECT_EQ(metric(port, "meshd_connections", pki.client()), 1);
}

TEST(Tls, SilentClientIsClosedAtTheHandshakeDeadline) {
  TestPki pki;
  ASSERT_TRUE(pki.ok());
  Config config = tls_config(pki);
  config.handshake_timeout = std::chrono::milliseconds(300);
  TestServer server(config);
  const auto port = server.port();
  // A TCP connection that never starts its handshake.
  const int silent = connect_tcp(port);
  ASSERT_GE(silent, 0);
  // Meanwhile, others are served.
  WsClient secure;
  EXPECT_TRUE(secure.connect_tls(port, pki.client())) << secure.error();
  // meshd closes it at the deadline (5 s: only catches a hang), sending nothing.
  pollfd wait{silent, POLLIN, 0};
  EXPECT_EQ(::poll(&wait, 1, 5000), 1);
  char byte = 0;
  EXPECT_LE(::recv(silent, &byte, 1, MSG_DONTWAIT), 0);
  ::close(silent);
  EXPECT_TRUE(wait_metric(port, "meshd_tls_handshake_failures_total", 1, pki.client()));
}

// ---------------------------------------------------------------------------
// The meshd program.

class Meshd : public MeshdProgram {
 public:
  explicit Meshd(std::vector<std::string> args, bool capture_stderr = true)
      : MeshdProgram(MESHD_BINARY, std::move(args), capture_stderr) {}
};

std::vector<std::string> meshd_args(const std::string& cert, const std::string& key) {
  return {"--host", "127.0.0.1", "--port", "0",      "--log-level", "warn", "--open",
          "--web-root", "",       "--tls-cert", cert, "--tls-key",  key};
}

// Refuses to start: non-zero exit, and one line on stderr that names the
// file and says why.
void expect_refusal(const std::string& cert, const std::string& key, const std::string& file,
                    const std::string& reason) {
  SCOPED_TRACE(cert + " " + key);
  Meshd meshd(meshd_args(cert, key));
  EXPECT_EQ(meshd.first_line(), "");  // never listened
  EXPECT_NE(meshd.wait_exit(), 0);
  const std::string error = meshd.error_output();
  EXPECT_EQ(std::count(error.begin(), error.end(), '\n'), 1) << error;
  EXPECT_TRUE(contains(error, "'" + file + "'")) << error;
  EXPECT_TRUE(contains(error, reason)) << error;
}

TEST(TlsProgram, RefusesToStartOnAMissingGarbageOrMismatchedFile) {
  TestPki pki, other;
  ASSERT_TRUE(pki.ok() && other.ok());
  const std::string garbage = pki.dir() + "/garbage.pem";
  std::ofstream(garbage) << "not a certificate\n";
  const std::string missing = pki.dir() + "/missing.pem";
  expect_refusal(missing, pki.key(), missing, "No such file or directory");
  expect_refusal(pki.cert(), missing, missing, "No such file or directory");
  expect_refusal(garbage, pki.key(), garbage, "not a PEM file");
  expect_refusal(pki.cert(), garbage, garbage, "not a PEM file");
  expect_refusal(pki.key(), pki.key(), pki.key(), "no valid certificate");
  expect_refusal(pki.cert(), pki.cert(), pki.cert(), "no valid private key");
  expect_refusal(pki.cert(), other.key(), other.key(), "does not match the certificate");
  expect_refusal(pki.cert(), pki.dir(), pki.dir(), "Is a directory");
}

TEST(TlsProgram, BothFilesOrNeither) {
  TestPki pki;
  ASSERT_TRUE(pki.ok());
  for (const char* flag : {"--tls-cert", "--tls-key"}) {
    Meshd meshd({"--host", "127.0.0.1", "--port", "0", flag, pki.cert()});
    EXPECT_EQ(meshd.first_line(), "");
    EXPECT_NE(meshd.wait_exit(), 0);
    EXPECT_TRUE(contains(meshd.error_output(), "requires")) << meshd.error_output();
  }
}

TEST(TlsProgram, EnvironmentVariables) {
  TestPki pki;
  ASSERT_TRUE(pki.ok());
  setenv("MESHD_TLS_CERT", pki.cert().c_str(), 1);
  setenv("MESHD_TLS_KEY", pki.key().c_str(), 1);
  Meshd meshd({"--host", "127.0.0.1", "--port", "0", "--log-level", "warn"}, false);
  unsetenv("MESHD_TLS_CERT");
  unsetenv("MESHD_TLS_KEY");
  const auto port = port_from(meshd.first_line());
  ASSERT_NE(port, 0);
  EXPECT_EQ(https_get(port, "/healthz", pki.client()).body, "ok\ntls: on\n");
  meshd.signal(SIGTERM);
  EXPECT_EQ(meshd.wait_exit(), 0);
}

// Writes `from` over `to` at once (rename), as a certificate renewal does.
void install(const std::string& from, const std::string& to) {
  fs::copy_file(from, to + ".new", fs::copy_options::overwrite_existing);
  fs::rename(to + ".new", to);
}

TEST(TlsProgram, SighupReloadsTheCertificateWithoutDroppingConnections) {
  TestPki first, second;
  ASSERT_TRUE(first.ok() && second.ok());
  const std::string live = first.dir() + "/live";
  fs::create_directories(live);
  const std::string cert = live + "/server.pem", key = live + "/server.key";
  install(first.cert(), cert);
  install(first.key(), key);
  Meshd meshd(meshd_args(cert, key));
  const auto port = port_from(meshd.first_line());
  ASSERT_NE(port, 0);

  WsClient subscriber, publisher;
  ASSERT_TRUE(subscriber.connect_tls(port, first.client())) << subscriber.error();
  ASSERT_TRUE(publisher.connect_tls(port, first.client())) << publisher.error();
  subscriber.subscribe("t");
  ASSERT_TRUE(subscriber.barrier());
  const auto relays = [&](const std::string& text) {
    publisher.publish({"t"}, text);
    const auto message = subscriber.next();
    return message && message->body == text;
  };
  EXPECT_TRUE(relays("before"));

  // A new certificate and key (another CA), then SIGHUP.
  install(second.cert(), cert);
  install(second.key(), key);
  meshd.signal(SIGHUP);
  const auto deadline = std::chrono::steady_clock::now() + kTimeout;
  while (https_get(port, "/healthz", second.client()).status != 200 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(metric(port, "meshd_tls_reloads_total{result=\"ok\"}", second.client()), 1);
  // The open connections kept their TLS sessions and still work.
  EXPECT_TRUE(relays("after the reload"));
  ASSERT_TRUE(publisher.barrier());
  // A new connection gets the new certificate: the old CA no longer verifies it.
  WsClient old_ca, new_ca;
  EXPECT_FALSE(old_ca.connect_tls(port, first.client()));
  EXPECT_TRUE(contains(old_ca.error(), "certificate verify failed")) << old_ca.error();
  ASSERT_TRUE(new_ca.connect_tls(port, second.client())) << new_ca.error();
  new_ca.subscribe("t");
  ASSERT_TRUE(new_ca.barrier());
  EXPECT_TRUE(relays("to both"));
  const auto copy = new_ca.next();
  ASSERT_TRUE(copy);
  EXPECT_EQ(copy->body, "to both");

  // A reload that fails (a key that is not one) keeps the current certificate.
  std::ofstream(live + "/broken.key") << "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
  install(live + "/broken.key", key);
  meshd.signal(SIGHUP);
  EXPECT_TRUE(wait_metric(port, "meshd_tls_reloads_total{result=\"error\"}", 1, second.client()));
  WsClient after_failure;
  EXPECT_TRUE(after_failure.connect_tls(port, second.client())) << after_failure.error();
  EXPECT_TRUE(relays("after a failed reload"));

  // Still a graceful shutdown.
  meshd.signal(SIGTERM);
  for (WsClient* client : {&subscriber, &publisher, &new_ca, &after_failure}) {
    const auto info = client->wait_closed();
    EXPECT_TRUE(info.closed);
    EXPECT_EQ(info.code, 1001);
  }
  EXPECT_EQ(meshd.wait_exit(), 0);
  EXPECT_TRUE(contains(meshd.error_output(), "TLS reload failed, keeping the previous certificate"))
      << meshd.error_output();
}

}  // namespace
}  // namespace meshd::test
