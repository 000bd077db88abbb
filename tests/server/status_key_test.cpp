// meshd --auth-key and signed broadcasts (docs/security.md): a member's
// status must announce the broadcast key its token's `pk` claim names;
// snapshots carry members' keys and policy to newcomers.

#include <gtest/gtest.h>
#include <jwt.h>

#include <cstdio>
#include <ctime>
#include <memory>
#include <string>

#include "auth.hpp"
#include "support.hpp"

namespace meshd {
namespace {

const std::string kSecret = "0123456789abcdef0123456789abcdef-key-secret";

std::string hs256_token(const std::string& claims_json) {
  return test::make_token(JWT_ALG_HS256, kSecret, claims_json);
}

std::string key_of(char fill) { return std::string(32, fill); }

std::string status_with_key(p2pmesh::PeerId source, std::uint32_t id, const std::string& key,
                            bool require = false) {
  p2pmesh::wire::MeshUpdate update;
  update.source = source;
  update.kind = p2pmesh::wire::MeshUpdate::Kind::status;
  update.status.id = id;
  update.status.version = 2;
  update.status.public_key = key;
  update.status.require_signatures = require;
  return p2pmesh::wire::encode(update);
}

TEST(GrantKey, PkIsTheBase64urlOfTheRawKey) {
  Grant none;
  EXPECT_TRUE(none.allows_key(key_of('a')));
  EXPECT_TRUE(none.allows_key(""));
  Grant grant;
  // 32 bytes of 0xfb: base64url "-_v7..." (standard base64 would say "+/v7...").
  const std::string key(32, '\xfb');
  grant.public_key = "-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_v7-_s";
  EXPECT_TRUE(grant.allows_key(key));
  grant.public_key += "=";  // padding is optional
  EXPECT_TRUE(grant.allows_key(key));
  EXPECT_FALSE(grant.allows_key(std::string(32, '\xfa')));
  EXPECT_FALSE(grant.allows_key(""));
  grant.public_key = "+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s";
  EXPECT_FALSE(grant.allows_key(key)) << "standard base64 is not the claim's form";
}

class StatusKeyServer : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(files_.ok());
    const std::string key_file = test::write_file(files_.dir(), "auth.key", kSecret);
    ASSERT_FALSE(key_file.empty());
    Config config = test::test_config();
    config.auth_key_file = key_file;
    server_ = std::make_unique<test::TestServer>(config);
  }
  std::unique_ptr<test::WsClient> join(const std::string& pk) {
    const auto exp = std::to_string(static_cast<std::int64_t>(::time(nullptr)) + 300);
    const std::string claims = R"({"exp":)" + exp + R"(,"groups":["g"])" +
                               (pk.empty() ? "" : R"(,"pk":")" + pk + "\"") + "}";
    auto client = std::make_unique<test::WsClient>();
    client->set_request("/service?token=" + hs256_token(claims));
    if (!client->connect(server_->port())) return nullptr;
    return client;
  }
  double wrong_keys() const {
    return test::metric(server_->port(), "meshd_drops_total{reason=\"wrong_key\"}");
  }
  // Statuses `client` heard from `source`, their keys in order.
  static std::vector<std::string> keys_heard(test::WsClient& client, p2pmesh::PeerId source) {
    std::vector<std::string> keys;
    for (const auto& message : client.drain()) {
      p2pmesh::wire::MeshUpdate update;
      if (message.topic != "g.mesh" || message.sender != source ||
          p2pmesh::wire::decode(message.body, update) != p2pmesh::wire::DecodeError::none) {
        continue;
      }
      keys.push_back(update.status.public_key);
    }
    return keys;
  }

  test::TestPki files_;
  std::unique_ptr<test::TestServer> server_;
};

TEST_F(StatusKeyServer, AStatusMustAnnounceTheKeyTheTokenVouchesFor) {
  // 32 bytes of 'A' (0x41): base64url "QUFB..." + "QQ".
  const std::string alice_key = key_of('A');
  const std::string alice_pk = "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE";
  auto alice = join(alice_pk);
  auto bob = join("");  // a token without pk: any key
  ASSERT_TRUE(alice && bob);
  bob->subscribe("g.mesh");
  alice->subscribe("g.mesh");
  ASSERT_TRUE(bob->barrier());
  alice->publish({"g.mesh"}, status_with_key(alice->id(), 1, key_of('B')));  // not hers: refused
  alice->publish({"g.mesh"}, status_with_key(alice->id(), 2, ""));           // none: refused
  alice->publish({"g.mesh"}, status_with_key(alice->id(), 3, alice_key, true));
  bob->publish({"g.mesh"}, status_with_key(bob->id(), 1, key_of('C')));
  ASSERT_TRUE(alice->barrier() && bob->barrier());
  EXPECT_EQ(keys_heard(*bob, alice->id()), std::vector<std::string>{alice_key});
  EXPECT_EQ(keys_heard(*alice, bob->id()), std::vector<std::string>{key_of('C')});
  EXPECT_EQ(wrong_keys(), 2);

  // A newcomer's snapshot has alice's key and policy from the first status on.
  auto carol = join("");
  ASSERT_TRUE(carol);
  carol->subscribe("g.mesh");
  ASSERT_TRUE(carol->barrier());
  bool snapshot_has_key = false;
  for (const auto& message : carol->drain()) {
    p2pmesh::wire::MeshUpdate update;
    if (message.sender != alice->id() ||
        p2pmesh::wire::decode(message.body, update) != p2pmesh::wire::DecodeError::none) {
      continue;
    }
    snapshot_has_key = update.status.public_key == alice_key && update.status.require_signatures;
  }
  EXPECT_TRUE(snapshot_has_key);
}

}  // namespace
}  // namespace meshd
