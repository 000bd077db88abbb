// The welcome's ICE servers and their TURN credentials (coturn REST API:
// username "<expiry>:<peer id>", credential base64(HMAC-SHA1(secret, username))),
// and the checks of --stun / --turn / --turn-secret-file / --turn-ttl.

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "ice_credentials.hpp"
#include "wire.hpp"

namespace meshd {
namespace {

using namespace std::chrono_literals;
using std::chrono::system_clock;

TEST(TurnSecret, KnownVector) {
  // Obtained independently with OpenSSL's command line:
  //   printf %s "1700000000:42" | openssl dgst -sha1 -hmac "north-wind secret" -binary | base64
  const TurnSecret secret("north-wind secret");
  EXPECT_EQ(secret.credential("1700000000:42"), "n8kPtSm5wbZsg1Fw4uoc1kgmZwA=");
  // RFC 2202 test case 2: HMAC-SHA1("Jefe", "what do ya want for nothing?") =
  // effcdf6ae5eb2fa2d27416d5f184df9c259a7c79, in base64:
  const TurnSecret jefe("Jefe");
  EXPECT_EQ(jefe.credential("what do ya want for nothing?"), "7/zfauXrL6LSdBbV8YTfnCWafHk=");
  // The key context is reused: the same input gives the same output again.
  EXPECT_EQ(secret.credential("1700000000:42"), "n8kPtSm5wbZsg1Fw4uoc1kgmZwA=");
}

TEST(TurnSecret, UsernameIsExpiryColonPeer) {
  const system_clock::time_point now{1700000000s + 750ms};
  EXPECT_EQ(turn_username(42, now, 3600s), "1700003600:42");
  EXPECT_EQ(turn_username(4294967295u, now, 1s), "1700000001:4294967295");
}

Config ice_config() {
  Config config;
  config.stun_urls = {"stun:stun.example.org:3478", "stun:127.0.0.1:3479"};
  config.turn_urls = {"turn:turn.example.org:3478?transport=udp",
                      "turns:turn.example.org:5349?transport=tcp"};
  config.turn_secret = "north-wind secret";
  config.turn_ttl = 3600s;
  return config;
}

TEST(WelcomeIceServers, StunWithoutAndTurnWithFreshCredentials) {
  const WelcomeIceServers ice(ice_config());
  const system_clock::time_point now{1699996400s};
  const auto servers = ice.for_peer(42, now);
  ASSERT_EQ(servers.size(), 2u);
  EXPECT_EQ(servers[0].urls, ice_config().stun_urls);
  EXPECT_EQ(servers[0].username, "");
  EXPECT_EQ(servers[0].credential, "");
  EXPECT_EQ(servers[1].urls, ice_config().turn_urls);
  EXPECT_EQ(servers[1].username, "1700000000:42");  // expiry = now + ttl
  EXPECT_EQ(servers[1].credential, "n8kPtSm5wbZsg1Fw4uoc1kgmZwA=");  // vector above
  // Another peer, another username and credential.
  const auto other = ice.for_peer(43, now);
  EXPECT_EQ(other[1].username, "1700000000:43");
  EXPECT_NE(other[1].credential, servers[1].credential);
}

TEST(WelcomeIceServers, WelcomeCarriesThemAndDecodes) {
  const WelcomeIceServers ice(ice_config());
  EXPECT_TRUE(ice.has_turn());
  std::string bytes;
  const auto before = system_clock::now();
  EXPECT_TRUE(ice.append_welcome(bytes, 9));
  p2pmesh::wire::ServerMessage message;
  ASSERT_EQ(p2pmesh::wire::decode(bytes, message), p2pmesh::wire::DecodeError::none);
  EXPECT_EQ(message.kind, p2pmesh::wire::ServerMessage::Kind::welcome);
  EXPECT_EQ(message.welcome_id, 9u);
  ASSERT_EQ(message.ice_servers.size(), 2u);
  const auto expiry = std::chrono::duration_cast<std::chrono::seconds>(
                          before.time_since_epoch() + 3600s).count();
  const auto& username = message.ice_servers[1].username;
  const auto colon = username.find(':');
  ASSERT_NE(colon, std::string::npos);
  EXPECT_GE(std::stoll(username.substr(0, colon)), expiry);
  EXPECT_LE(std::stoll(username.substr(0, colon)), expiry + 5);
  EXPECT_EQ(username.substr(colon + 1), "9");
  EXPECT_EQ(message.ice_servers[1].credential,
            TurnSecret("north-wind secret").credential(username));
  EXPECT_EQ(bytes.find("north-wind"), std::string::npos);
  EXPECT_EQ(ice.describe(),
            "stun: stun:stun.example.org:3478 stun:127.0.0.1:3479\n"
            "turn: turn:turn.example.org:3478?transport=udp "
            "turns:turn.example.org:5349?transport=tcp\n");
}

TEST(WelcomeIceServers, WithoutThemTheWelcomeIsUnchanged) {
  const WelcomeIceServers ice{Config{}};
  EXPECT_FALSE(ice.has_turn());
  std::string bytes;
  EXPECT_FALSE(ice.append_welcome(bytes, 7));
  // ServerMessage{welcome{id = 7}}, as reference peers have always read it.
  EXPECT_EQ(bytes, std::string("\x0a\x02\x08\x07", 4));
  EXPECT_EQ(ice.describe(), "");
}

TEST(WelcomeIceServers, StunOnlyHasNoCredentials) {
  Config config;
  config.stun_urls = {"stun:127.0.0.1:3478"};
  const WelcomeIceServers ice(config);
  std::string bytes;
  EXPECT_FALSE(ice.append_welcome(bytes, 7));
  p2pmesh::wire::ServerMessage message;
  ASSERT_EQ(p2pmesh::wire::decode(bytes, message), p2pmesh::wire::DecodeError::none);
  ASSERT_EQ(message.ice_servers.size(), 1u);
  EXPECT_EQ(message.ice_servers[0], (p2pmesh::IceServer{{"stun:127.0.0.1:3478"}, "", ""}));
}

TEST(WelcomeIceServers, RefusesTurnWithoutSecret) {
  Config config = ice_config();
  config.turn_secret.clear();
  EXPECT_THROW(WelcomeIceServers{config}, std::invalid_argument);
}

TEST(Duration, Spellings) {
  EXPECT_EQ(parse_duration("1h"), 3600s);
  EXPECT_EQ(parse_duration("30m"), 1800s);
  EXPECT_EQ(parse_duration("90s"), 90s);
  EXPECT_EQ(parse_duration("1s"), 1s);
  EXPECT_EQ(parse_duration("3600"), 3600s);
  EXPECT_EQ(parse_duration("1h30m"), 5400s);
  EXPECT_EQ(parse_duration("2d"), 172800s);
  for (const char* bad : {"", "0", "0s", "h", "1x", "-1", "1.5h", "1h30", " 1h", "1h ", "366d",
                          "99999999999999999999"})
    EXPECT_FALSE(parse_duration(bad)) << bad;
  EXPECT_EQ(format_duration(3600s), "1h");
  EXPECT_EQ(format_duration(90s), "90s");
  EXPECT_EQ(format_duration(1800s), "30m");
}

class ConfigureIce : public testing::Test {
 protected:
  void TearDown() override {
    for (const auto& path : files_) std::remove(path.c_str());
  }
  std::string file(const std::string& contents) {
    const std::string path = testing::TempDir() + "meshd-secret-" + std::to_string(getpid()) +
                             "-" + std::to_string(files_.size());
    std::ofstream(path, std::ios::binary) << contents;
    files_.push_back(path);
    return path;
  }
  std::vector<std::string> files_;
};

TEST_F(ConfigureIce, ReadsTheSecretAndTtl) {
  Config config;
  config.stun_urls = {"stun:127.0.0.1:3478", "stuns:example.org:5349"};
  config.turn_urls = {"turn:127.0.0.1:3478", "turn:h:1?transport=tcp", "turns:h:5349"};
  EXPECT_EQ(configure_ice(config, file("s3cret\n"), "30m"), "");
  EXPECT_EQ(config.turn_secret, "s3cret");  // one trailing newline stripped
  EXPECT_EQ(config.turn_ttl, 1800s);
  EXPECT_EQ(configure_ice(config, file("s3cret\n\n"), "1h"), "");
  EXPECT_EQ(config.turn_secret, "s3cret\n");  // only one
  EXPECT_EQ(configure_ice(config, file("no newline"), "1h"), "");
  EXPECT_EQ(config.turn_secret, "no newline");
}

TEST_F(ConfigureIce, RefusesBadOptions) {
  const auto error = [&](std::vector<std::string> stun, std::vector<std::string> turn,
                         const std::string& secret_file, const std::string& ttl = "1h") {
    Config config;
    config.stun_urls = std::move(stun);
    config.turn_urls = std::move(turn);
    const auto reason = configure_ice(config, secret_file, ttl);
    EXPECT_EQ(reason.find('\n'), std::string::npos) << reason;  // one line
    return reason;
  };
  const std::string secret = file("s3cret\n");
  EXPECT_EQ(error({"stun:h:3478"}, {"turn:h:3478"}, secret), "");
  EXPECT_NE(error({"turn:h:3478"}, {}, "").find("--stun 'turn:h:3478'"), std::string::npos);
  EXPECT_NE(error({"h:3478"}, {}, "").find("stun:"), std::string::npos);
  EXPECT_NE(error({}, {"stun:h:3478"}, secret).find("--turn 'stun:h:3478'"), std::string::npos);
  EXPECT_NE(error({}, {"http://h"}, secret).find("turn:"), std::string::npos);
  EXPECT_NE(error({}, {"turn:"}, secret).find("no host"), std::string::npos);
  EXPECT_NE(error({}, {"turn:h:1?transport=sctp"}, secret).find("transport"), std::string::npos);
  EXPECT_NE(error({"stun:h:1?transport=udp"}, {}, "").find("query"), std::string::npos);
  EXPECT_NE(error({"stun:h 1"}, {}, "").find("space"), std::string::npos);
  EXPECT_NE(error(std::vector<std::string>(9, "stun:h:1"), {}, "").find("at most 8"),
            std::string::npos);
  EXPECT_EQ(error({}, {"turn:h:3478"}, ""),
            "--turn requires --turn-secret-file (coturn's static-auth-secret)");
  EXPECT_NE(error({}, {"turn:h:3478"}, "/nonexistent/secret").find("No such file"),
            std::string::npos);
  EXPECT_NE(error({}, {"turn:h:3478"}, testing::TempDir()).find("not a file"), std::string::npos);
  EXPECT_NE(error({}, {"turn:h:3478"}, file("")).find("empty"), std::string::npos);
  EXPECT_NE(error({}, {"turn:h:3478"}, file("\n")).find("empty"), std::string::npos);
  EXPECT_NE(error({}, {"turn:h:3478"}, secret, "soon").find("--turn-ttl 'soon'"),
            std::string::npos);
  EXPECT_NE(error({}, {"turn:h:3478"}, secret, "0").find("--turn-ttl"), std::string::npos);
}

}  // namespace
}  // namespace meshd
