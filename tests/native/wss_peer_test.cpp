// Native peers over TLS (wss://): the real meshd with --tls-cert/--tls-key
// and a throwaway PKI made at run time (tests/support/make_test_pki.sh), on
// 127.0.0.1 (reached as localhost or 127.0.0.1). The certificate is checked
// against the system's CAs plus PeerConfig::ca_file, host name included; a
// certificate that fails is a failed connection with its reason, never an
// unverified one.
#include <stdlib.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include <boost/json.hpp>

#include "p2pmesh/peer.hpp"
#include "processes.hpp"
#include "support.hpp"
#include "ws_client.hpp"

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
namespace json = boost::json;
using p2pmesh::Peer;
using p2pmesh::PeerCallbacks;
using p2pmesh::PeerConfig;
using p2pmesh::PeerError;
using p2pmesh::PeerId;
using p2pmesh::PeerSnapshot;
using p2pmesh::test::Child;
using p2pmesh::test::MeshdProcess;
using p2pmesh::test::wait_until;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

// What a Peer reported through its callbacks.
class Recorder {
 public:
  PeerCallbacks callbacks() {
    PeerCallbacks c;
    c.on_message = [this](PeerId from, const std::string& bytes) {
      std::lock_guard lock(mutex_);
      messages_.emplace_back(from, bytes);
    };
    c.on_error = [this](const PeerError& error) {
      std::lock_guard lock(mutex_);
      errors_.push_back(error);
    };
    return c;
  }
  std::vector<PeerError> errors() const {
    std::lock_guard lock(mutex_);
    return errors_;
  }
  bool received(PeerId from, const std::string& bytes) const {
    std::lock_guard lock(mutex_);
    for (const auto& [f, b] : messages_) {
      if (f == from && b == bytes) return true;
    }
    return false;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<PeerId, std::string>> messages_;
  std::vector<PeerError> errors_;
};

std::string wss_url(const std::string& host, int port) {
  return "wss://" + host + ":" + std::to_string(port) + "/service";
}

bool has_open_link(Peer& peer, PeerId with) {
  for (const auto& link : peer.snapshot().links) {
    if (link.peer == with && link.open) return true;
  }
  return false;
}

class WssPeerTest : public ::testing::Test {
 protected:
  // Three PKIs (each its own CA): the server certificate for localhost and
  // 127.0.0.1, for localhost only, for 127.0.0.1 only; and a certificate of
  // the first CA for localhost that expired yesterday.
  static void SetUpTestSuite() {
    char tmpl[] = "/tmp/p2pmesh-tls-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    root_ = tmpl;
    make_pki("both", "localhost 127.0.0.1");
    make_pki("name", "localhost");
    make_pki("ip", "127.0.0.1");
    const std::string expired =
        "cd " + root_ + " && mkdir expired && cd expired && "
        "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout server.key "
        "-out server.csr -subj /CN=localhost 2>/dev/null && "
        "printf 'subjectAltName=DNS:localhost\\n' > server.ext && "
        "openssl x509 -req -in server.csr -CA ../both/ca.pem -CAkey ../both/ca.key -days -1 "
        "-extfile server.ext -out server.crt 2>/dev/null && cat server.crt ../both/ca.pem > server.pem";
    ASSERT_EQ(std::system(expired.c_str()), 0) << expired;
  }
  static void TearDownTestSuite() {
    std::error_code ignored;
    fs::remove_all(root_, ignored);
  }
  static void make_pki(const std::string& name, const std::string& names) {
    const std::string command = std::string(MAKE_TEST_PKI) + " " + root_ + "/" + name + " " + names;
    ASSERT_EQ(std::system(command.c_str()), 0) << command;
  }
  static std::string ca(const std::string& pki) { return root_ + "/" + pki + "/ca.pem"; }
  // meshd serving wss:// with the server certificate of `pki`.
  static std::unique_ptr<MeshdProcess> tls_meshd(const std::string& pki) {
    return std::make_unique<MeshdProcess>(std::vector<std::string>{
        "--tls-cert", root_ + "/" + pki + "/server.pem", "--tls-key", root_ + "/" + pki + "/server.key"});
  }
  // Starts a peer that must fail: returns its first TLS error (after it has
  // retried at least once), and checks it never joined.
  static std::string failure_of(PeerConfig config) {
    Recorder recorder;
    config.reconnect_initial = 100ms;
    Peer peer(config, recorder.callbacks());
    peer.start();
    EXPECT_TRUE(wait_until([&] { return recorder.errors().size() >= 2; }, 10s))
        << "no error reported: a failed certificate must fail the connection";
    EXPECT_EQ(peer.id(), 0u) << "joined over an unverified connection";
    const PeerSnapshot s = peer.snapshot();
    EXPECT_NE(s.state, PeerSnapshot::State::joined);
    EXPECT_GE(s.reconnects, 1u) << "it keeps retrying";
    const auto errors = recorder.errors();
    if (errors.empty()) return {};
    for (const PeerError& e : errors) {
      EXPECT_EQ(e.kind, PeerError::Kind::server_unreachable) << e.reason;
      EXPECT_EQ(e.reason, errors.front().reason);
    }
    EXPECT_EQ(s.last_error, errors.front().reason);
    return errors.front().reason;
  }

  // The reason a peer gives for meshd with the certificate of `served`,
  // reached as wss://`host`:PORT, with the CA of `trusted` as ca_file (none
  // when empty).
  static std::string failure_against(const std::string& served, const std::string& host,
                                     const std::string& trusted) {
    auto meshd = tls_meshd(served);
    EXPECT_NE(meshd->port(), 0) << "meshd --tls-cert did not start";
    PeerConfig config = p2pmesh::test::loopback_config(wss_url(host, meshd->port()), "tls");
    if (!trusted.empty()) config.ca_file = ca(trusted);
    return failure_of(config);
  }

  static std::string root_;
};
std::string WssPeerTest::root_;

TEST(WsUrlTest, WsAndWssWithTheirDefaultPorts) {
  using p2pmesh::native::parse_ws_url;
  struct Case {
    const char* url;
    bool tls;
    const char* host;
    const char* port;
    const char* path;
  };
  for (const Case& c : {Case{"ws://example.org/service", false, "example.org", "80", "/service"},
                        Case{"wss://example.org/service", true, "example.org", "443", "/service"},
                        Case{"wss://127.0.0.1:8443/s", true, "127.0.0.1", "8443", "/s"},
                        Case{"wss://[::1]:8443", true, "::1", "8443", "/"}}) {
    const auto url = parse_ws_url(c.url);
    ASSERT_TRUE(url) << c.url;
    EXPECT_EQ(url->tls, c.tls) << c.url;
    EXPECT_EQ(url->host, c.host) << c.url;
    EXPECT_EQ(url->port, c.port) << c.url;
    EXPECT_EQ(url->path, c.path) << c.url;
    EXPECT_EQ(url->text, c.url);
  }
  for (const char* bad : {"http://example.org/", "https://example.org/", "wss:/example.org",
                          "WSS//x", "wss://", "wss://:443/", "wss://host:0/", "wss://host:99999/",
                          "wss://host:44x/", "example.org:443"}) {
    EXPECT_FALSE(parse_ws_url(bad)) << bad;
  }
}

TEST(WssConfigTest, UnusableUrlOrCaFileIsRefusedWithTheReason) {
  const auto message_of = [](PeerConfig config) -> std::string {
    try {
      Peer peer(std::move(config));
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "(accepted)";
  };
  PeerConfig config;
  config.server_urls = {"https://127.0.0.1:8443/service"};
  EXPECT_TRUE(contains(message_of(config), "wss://")) << message_of(config);

  config.server_urls = {"ws://127.0.0.1:1/service", "wss://localhost:1/service"};
  EXPECT_EQ(message_of(config), "(accepted)");  // ws:// and wss:// mixed
  config.ca_file = "/nonexistent/p2pmesh-ca.pem";
  EXPECT_EQ(message_of(config),
            "p2pmesh: CA file /nonexistent/p2pmesh-ca.pem: No such file or directory");
  // Read even when no URL is wss:// (it was asked for).
  config.server_urls = {"ws://127.0.0.1:1/service"};
  EXPECT_TRUE(contains(message_of(config), "No such file or directory"));

  const std::string not_pem = ::testing::TempDir() + "p2pmesh-not-a-ca.pem";
  std::ofstream(not_pem) << "this is not a certificate\n";
  config.ca_file = not_pem;
  const std::string message = message_of(config);
  EXPECT_TRUE(contains(message, "CA file " + not_pem + ": no PEM certificate")) << message;
  std::remove(not_pem.c_str());
  config.ca_file = ::testing::TempDir();
  EXPECT_TRUE(contains(message_of(config), "is a directory")) << message_of(config);
}

// (1) Two peers join over wss:// (the test CA as ca_file), link and
// exchange broadcasts; one of them has a ws:// URL first that fails.
TEST_F(WssPeerTest, PeersJoinLinkAndBroadcastOverWss) {
  auto meshd = tls_meshd("both");
  ASSERT_NE(meshd->port(), 0) << "meshd --tls-cert did not start";
  const std::string url = wss_url("localhost", meshd->port());
  PeerConfig config_a = p2pmesh::test::loopback_config(url, "tls");
  config_a.ca_file = ca("both");
  PeerConfig config_b = config_a;
  config_b.server_urls = {"ws://127.0.0.1:1/service", url};  // refused, then TLS
  config_b.reconnect_initial = 50ms;
  Recorder ra, rb;
  Peer a(config_a, ra.callbacks());
  Peer b(config_b, rb.callbacks());
  a.start();
  b.start();
  ASSERT_TRUE(a.wait_joined(10s)) << a.snapshot().last_error;
  ASSERT_TRUE(b.wait_joined(10s)) << b.snapshot().last_error;
  EXPECT_EQ(a.snapshot().server_url, url);
  EXPECT_EQ(b.snapshot().server_url, url);
  EXPECT_EQ(a.snapshot().last_error, "");
  EXPECT_TRUE(ra.errors().empty());
  ASSERT_FALSE(rb.errors().empty());
  EXPECT_TRUE(contains(rb.errors().front().reason, "connect")) << rb.errors().front().reason;

  const PeerId ida = a.id(), idb = b.id();
  ASSERT_TRUE(wait_until([&] { return has_open_link(a, idb) && has_open_link(b, ida); }, 10s))
      << "no WebRTC link between the two peers";
  ASSERT_TRUE(a.broadcast("from a over wss"));
  ASSERT_TRUE(b.broadcast("from b over wss"));
  EXPECT_TRUE(wait_until([&] { return rb.received(ida, "from a over wss"); }, 10s));
  EXPECT_TRUE(wait_until([&] { return ra.received(idb, "from b over wss"); }, 10s));
}

// (2) A server certificate from a CA the peer does not trust (no ca_file):
// the reason says the certificate failed verification; never joined.
TEST_F(WssPeerTest, UntrustedCertificateFailsWithTheReason) {
  const std::string reason = failure_against("both", "localhost", "");
  EXPECT_TRUE(contains(reason, "TLS handshake with wss://localhost:")) << reason;
  EXPECT_TRUE(contains(reason, "/service failed: certificate verify failed (")) << reason;
  // The test CA is a self-signed root sent in the chain (server.pem).
  EXPECT_TRUE(contains(reason, "self-signed certificate in certificate chain") ||
              contains(reason, "unable to get local issuer certificate"))
      << reason;
  // The CA of another deployment does not help either.
  const std::string other = failure_against("both", "localhost", "name");
  EXPECT_TRUE(contains(other, "certificate verify failed (")) << other;
}

// (3) A trusted certificate for another name than the one in the URL.
TEST_F(WssPeerTest, CertificateForAnotherHostFailsWithTheReason) {
  // Certificate for localhost only, reached as 127.0.0.1.
  const std::string ip = failure_against("name", "127.0.0.1", "name");
  EXPECT_TRUE(contains(ip, "failed: certificate verify failed (IP address mismatch)")) << ip;
  // Certificate for 127.0.0.1 only, reached as localhost.
  const std::string name = failure_against("ip", "localhost", "ip");
  EXPECT_TRUE(contains(name, "failed: certificate verify failed (hostname mismatch)")) << name;

  // The server reached by the name its certificate has: joined.
  auto meshd = tls_meshd("name");
  ASSERT_NE(meshd->port(), 0) << "meshd --tls-cert did not start";
  PeerConfig config = p2pmesh::test::loopback_config(wss_url("localhost", meshd->port()), "tls");
  config.ca_file = ca("name");
  Peer peer(config);
  peer.start();
  EXPECT_TRUE(peer.wait_joined(10s)) << peer.snapshot().last_error;
}

// A trusted certificate for the right name, but expired.
TEST_F(WssPeerTest, ExpiredCertificateFailsWithTheReason) {
  const std::string reason = failure_against("expired", "localhost", "both");
  EXPECT_TRUE(contains(reason, "failed: certificate verify failed (certificate has expired)")) << reason;
}

// (4) mesh-peer --url wss://... --ca-file: two processes join, link and
// exchange a line; without --ca-file the reason is on stderr and no welcome
// line comes; a CA file that cannot be read is a bad argument (exit 2).
TEST_F(WssPeerTest, MeshPeerWithCaFile) {
  auto meshd = tls_meshd("both");
  ASSERT_NE(meshd->port(), 0) << "meshd --tls-cert did not start";
  const std::string url = wss_url("localhost", meshd->port());
  const auto mesh_peer = [&](std::vector<std::string> extra) {
    std::vector<std::string> argv = {MESH_PEER_BINARY, "--url", url, "--group", "tls", "--loopback"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return std::make_unique<Child>(std::move(argv), true);
  };
  const auto event = [](Child& child, const std::string& name) -> std::optional<json::object> {
    for (const auto& line : child.lines()) {
      json::value v = json::parse(line);
      if (v.at("event") == name.c_str()) return v.as_object();
    }
    return std::nullopt;
  };

  auto a = mesh_peer({"--ca-file", ca("both")});
  auto b = mesh_peer({"--ca-file", ca("both")});
  ASSERT_TRUE(wait_until([&] { return event(*a, "welcome") && event(*b, "welcome"); }, 10s));
  ASSERT_TRUE(wait_until([&] { return event(*a, "link_up") && event(*b, "link_up"); }, 10s));
  a->write_line("hello over wss");
  const auto ida = event(*a, "welcome")->at("id").as_int64();
  ASSERT_TRUE(wait_until(
      [&] {
        const auto m = event(*b, "message");
        return m && m->at("from").as_int64() == ida && m->at("data") == "hello over wss";
      },
      10s));
  EXPECT_EQ(a->terminate(5s), 0);
  EXPECT_EQ(b->terminate(5s), 0);

  auto untrusting = mesh_peer({});
  const auto tls_error = [&] {
    for (const auto& line : untrusting->error_lines()) {
      if (contains(line, "mesh-peer: server_unreachable: TLS handshake with " + url +
                             " failed: certificate verify failed (")) {
        return true;
      }
    }
    return false;
  };
  EXPECT_TRUE(wait_until(tls_error, 10s)) << "stderr has no TLS failure";
  EXPECT_FALSE(event(*untrusting, "welcome"));

  auto bad = mesh_peer({"--ca-file", "/nonexistent/ca.pem"});
  const int status = bad->wait_exit(10s);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 2);
  const auto err = bad->error_lines();
  ASSERT_FALSE(err.empty());
  EXPECT_EQ(err.front(), "mesh-peer: p2pmesh: CA file /nonexistent/ca.pem: No such file or directory");
}

}  // namespace
