// Token verification of meshd --auth-key (src/server/auth.*): tokens made
// with libjwt itself, keys made with OpenSSL, in-process.

#include "auth.hpp"

#include <unistd.h>

#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

#include "support.hpp"

namespace meshd {
namespace {

constexpr std::int64_t kNow = 1'800'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";

using test::make_token;

struct KeyPair {
  std::string private_pem;
  std::string public_pem;
};

KeyPair pem_pair(EVP_PKEY* key) {
  KeyPair pair;
  for (const bool is_private : {true, false}) {
    BIO* bio = BIO_new(BIO_s_mem());
    if (is_private)
      PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr);
    else
      PEM_write_bio_PUBKEY(bio, key);
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    (is_private ? pair.private_pem : pair.public_pem).assign(data, static_cast<std::size_t>(size));
    BIO_free(bio);
  }
  EVP_PKEY_free(key);
  return pair;
}

KeyPair ec_pair() { return pem_pair(EVP_EC_gen("P-256")); }
KeyPair rsa_pair() { return pem_pair(EVP_RSA_gen(2048)); }
KeyPair ed25519_pair() { return pem_pair(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519")); }

const Grant* grant_of(const std::variant<Grant, AuthFailure>& result) {
  return std::get_if<Grant>(&result);
}
AuthFailure failure_of(const std::variant<Grant, AuthFailure>& result) {
  const auto* failure = std::get_if<AuthFailure>(&result);
  return failure ? *failure : static_cast<AuthFailure>(255);
}

TEST(TokenVerifier, Hs256TokenGivesItsClaims) {
  const auto verifier = TokenVerifier::from_key(kSecret + "\n");  // a file's trailing newline
  EXPECT_STREQ(verifier.algorithm(), "HS256");
  const auto token = make_token(
      JWT_ALG_HS256, kSecret,
      R"({"exp":1800000060,"groups":["room1","team-*"],"sub":"alice","pk":"cHVibGljIGtleQ"})");
  const auto result = verifier.verify(token, kNow);
  const Grant* grant = grant_of(result);
  ASSERT_TRUE(grant) << to_string(failure_of(result));
  EXPECT_EQ(grant->groups, (std::vector<std::string>{"room1", "team-*"}));
  EXPECT_EQ(grant->subject, "alice");
  EXPECT_EQ(grant->public_key, "cHVibGljIGtleQ");
  EXPECT_EQ(grant->expires, 1800000060);
  EXPECT_TRUE(grant->allows_group("room1"));
  EXPECT_TRUE(grant->allows_group("team-blue"));
  EXPECT_TRUE(grant->allows_group("team-"));
  EXPECT_FALSE(grant->allows_group("room"));
  EXPECT_FALSE(grant->allows_group("room12"));
  EXPECT_FALSE(grant->allows_group("team"));
}

TEST(TokenVerifier, RefusesEachBadTokenWithItsReason) {
  const auto verifier = TokenVerifier::from_key(kSecret);
  EXPECT_EQ(failure_of(verifier.verify("", kNow)), AuthFailure::missing);
  EXPECT_EQ(failure_of(verifier.verify("not a token", kNow)), AuthFailure::invalid);
  EXPECT_EQ(failure_of(verifier.verify(std::string(9000, 'a'), kNow)), AuthFailure::invalid);
  const std::string claims = R"({"exp":1800000060,"groups":["g"]})";
  EXPECT_EQ(failure_of(verifier.verify(
                make_token(JWT_ALG_HS256, "another secret, 32 bytes or more!!", claims), kNow)),
            AuthFailure::invalid);
  // A valid token with one character of its payload changed.
  std::string tampered = make_token(JWT_ALG_HS256, kSecret, claims);
  tampered[tampered.find('.') + 5] ^= 1;
  EXPECT_EQ(failure_of(verifier.verify(tampered, kNow)), AuthFailure::invalid);
  // alg "none": never accepted.
  EXPECT_EQ(failure_of(verifier.verify(make_token(JWT_ALG_NONE, "", claims), kNow)),
            AuthFailure::invalid);
  EXPECT_EQ(failure_of(verifier.verify(
                make_token(JWT_ALG_HS256, kSecret, R"({"exp":1800000000,"groups":["g"]})"), kNow)),
            AuthFailure::expired);
  EXPECT_EQ(failure_of(verifier.verify(make_token(JWT_ALG_HS256, kSecret, R"({"groups":["g"]})"),
                                       kNow)),
            AuthFailure::bad_claims);
  for (const char* groups : {R"({"exp":1800000060})", R"({"exp":1800000060,"groups":"g"})",
                             R"({"exp":1800000060,"groups":["g",7]})"})
    EXPECT_EQ(failure_of(verifier.verify(make_token(JWT_ALG_HS256, kSecret, groups), kNow)),
              AuthFailure::bad_claims)
        << groups;
  // HS384 with the right secret: not the key's algorithm.
  EXPECT_EQ(failure_of(verifier.verify(make_token(JWT_ALG_HS384, kSecret, claims), kNow)),
            AuthFailure::wrong_algorithm);
}

TEST(TokenVerifier, PublicKeysFixTheAlgorithmAgainstConfusion) {
  const KeyPair ec = ec_pair();
  const auto verifier = TokenVerifier::from_key(ec.public_pem);
  EXPECT_STREQ(verifier.algorithm(), "ES256");
  const std::string claims = R"({"exp":1800000060,"groups":["*"]})";
  const auto good = verifier.verify(make_token(JWT_ALG_ES256, ec.private_pem, claims), kNow);
  ASSERT_TRUE(grant_of(good)) << to_string(failure_of(good));
  EXPECT_TRUE(grant_of(good)->allows_group("anything"));
  // The classic forgery: HS256 "signed" with the public key's PEM text.
  EXPECT_EQ(failure_of(verifier.verify(make_token(JWT_ALG_HS256, ec.public_pem, claims), kNow)),
            AuthFailure::wrong_algorithm);
  // Another EC key's signature.
  EXPECT_EQ(failure_of(verifier.verify(make_token(JWT_ALG_ES256, ec_pair().private_pem, claims),
                                       kNow)),
            AuthFailure::invalid);

  const KeyPair rsa = rsa_pair();
  const auto rsa_verifier = TokenVerifier::from_key(rsa.public_pem);
  EXPECT_STREQ(rsa_verifier.algorithm(), "RS256");
  EXPECT_TRUE(grant_of(rsa_verifier.verify(make_token(JWT_ALG_RS256, rsa.private_pem, claims), kNow)));
}

TEST(TokenVerifier, KeyFilesThatCannotWorkAreRefusedWithAReason) {
  const auto message = [](const std::string& key) {
    try {
      TokenVerifier::from_key(key);
    } catch (const std::runtime_error& error) {
      return std::string(error.what());
    }
    return std::string("accepted");
  };
  EXPECT_NE(message("short secret").find("at least 32 bytes"), std::string::npos);
  EXPECT_NE(message(ec_pair().private_pem).find("private key"), std::string::npos);
  EXPECT_NE(message(ed25519_pair().public_pem).find("Ed25519"), std::string::npos);
  EXPECT_NE(message("-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n")
                .find("not a PEM public key"),
            std::string::npos);
  EXPECT_NE(message(pem_pair(EVP_EC_gen("P-384")).public_pem).find("P-256"), std::string::npos);
}

TEST(TokenOfRequest, QueryParameterFirstThenBearerHeader) {
  EXPECT_EQ(token_of_request("/service?token=abc.def.ghi", ""), "abc.def.ghi");
  EXPECT_EQ(token_of_request("/service?x=1&token=a%2Eb&y=2", "Bearer other"), "a.b");
  EXPECT_EQ(token_of_request("/service", "Bearer  abc.def.ghi"), "abc.def.ghi");
  EXPECT_EQ(token_of_request("/service?tokens=no", "Basic dXNlcjpwYXNz"), "");
  EXPECT_EQ(token_of_request("/service", ""), "");
  EXPECT_EQ(token_of_request("/service?token=%zz%4", ""), "%zz%4");  // bad escapes stay
}

// --- meshd with --auth-key: real server, real WebSocket clients ------------

class AuthServer : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(files_.ok());
    const std::string key_file = test::write_file(files_.dir(), "auth.key", kSecret + "\n");
    ASSERT_FALSE(key_file.empty());
    Config config = test::test_config();
    config.auth_key_file = key_file;
    server_ = std::make_unique<test::TestServer>(config);
  }
  std::uint16_t port() const { return server_->port(); }
  static std::int64_t now() { return static_cast<std::int64_t>(::time(nullptr)); }
  // A token for `groups` (a JSON array) valid for `seconds` from now.
  static std::string token(const std::string& groups, std::int64_t seconds = 300) {
    return make_token(JWT_ALG_HS256, kSecret,
                      R"({"exp":)" + std::to_string(now() + seconds) + R"(,"groups":)" + groups + "}");
  }
  std::unique_ptr<test::WsClient> join(const std::string& token) {
    auto client = std::make_unique<test::WsClient>();
    client->set_request("/service?token=" + token);
    if (!client->connect(port())) return nullptr;
    return client;
  }
  double failures(const char* reason) const {
    return test::metric(port(), std::string("meshd_auth_failures_total{reason=\"") + reason + "\"}");
  }

  test::TestPki files_;  // a private temporary directory
  std::unique_ptr<test::TestServer> server_;
};

TEST_F(AuthServer, UpgradesWithoutAValidTokenGet401CountedByReason) {
  test::WsClient none;
  EXPECT_FALSE(none.connect(port()));
  EXPECT_NE(none.error().find("HTTP 401"), std::string::npos) << none.error();
  EXPECT_FALSE(join(token(R"(["g"])", -10)));
  EXPECT_FALSE(join(make_token(JWT_ALG_HS256, "not the secret, but long enough too!",
                               R"({"exp":4000000000,"groups":["g"]})")));
  EXPECT_FALSE(join(make_token(JWT_ALG_NONE, "", R"({"exp":4000000000,"groups":["g"]})")));
  EXPECT_FALSE(join(make_token(JWT_ALG_HS256, kSecret, R"({"exp":4000000000})")));
  EXPECT_EQ(failures("missing"), 1);
  EXPECT_EQ(failures("expired"), 1);
  EXPECT_EQ(failures("invalid"), 2);
  EXPECT_EQ(failures("bad_claims"), 1);
  EXPECT_EQ(test::metric(port(), "meshd_connections"), 0);
  // The same token in the Authorization header (native clients).
  test::WsClient bearer;
  bearer.set_request("/service", "Bearer " + token(R"(["g"])"));
  EXPECT_TRUE(bearer.connect(port())) << bearer.error();
}

TEST_F(AuthServer, APlainGetTellsTheReasonToAnyOrigin) {
  const auto expired =
      test::raw_exchange(port(), "GET /service?token=" + token(R"(["g"])", -1) +
                                     " HTTP/1.1\r\nHost: x\r\nOrigin: https://app.example\r\n\r\n");
  EXPECT_NE(expired.find("HTTP/1.1 401"), std::string::npos) << expired;
  EXPECT_NE(expired.find("token expired"), std::string::npos) << expired;
  EXPECT_NE(expired.find("Access-Control-Allow-Origin: *"), std::string::npos) << expired;
  EXPECT_NE(expired.find("WWW-Authenticate: Bearer"), std::string::npos) << expired;
  const auto accepted = test::raw_exchange(
      port(), "GET /service?token=" + token(R"(["g"])") + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_NE(accepted.find("HTTP/1.1 426"), std::string::npos) << accepted;
}

TEST_F(AuthServer, TheTokensGroupsBoundSubscriptionsAndPublications) {
  auto alice = join(token(R"(["room*"])"));
  auto bob = join(token(R"(["room1"])"));
  auto carol = join(token(R"(["other"])"));
  ASSERT_TRUE(alice && bob && carol);
  bob->subscribe("room1.mesh");
  carol->subscribe("other.mesh");
  const double forbidden = test::metric(port(), "meshd_drops_total{reason=\"forbidden\"}");
  alice->subscribe("other.mesh");                                   // refused
  alice->publish({"other.mesh"}, test::status_update(alice->id(), {}, 1));  // refused
  alice->subscribe("room1.mesh");
  alice->publish({"room1.mesh"}, test::status_update(alice->id(), {}, 2));
  ASSERT_TRUE(alice->barrier() && bob->barrier() && carol->barrier());
  bool bob_heard = false;
  for (const auto& message : bob->drain())
    if (message.topic == "room1.mesh" && message.sender == alice->id()) bob_heard = true;
  EXPECT_TRUE(bob_heard);
  for (const auto& message : carol->drain()) EXPECT_NE(message.sender, alice->id());
  EXPECT_EQ(test::metric(port(), "meshd_drops_total{reason=\"forbidden\"}"), forbidden + 2);
}

TEST(AuthOptions, MeshdRefusesAKeyThatCannotWork) {
  test::TestPki files;
  ASSERT_TRUE(files.ok());
  const std::string short_key = test::write_file(files.dir(), "short.key", "too short\n");
  ASSERT_FALSE(short_key.empty());
  for (const auto& [path, words] : std::vector<std::pair<std::string, std::string>>{
           {files.dir() + "/missing.key", "cannot read"},
           {short_key, "at least 32 bytes"},
           {files.key(), "private key"}}) {
    test::MeshdProgram meshd(MESHD_BINARY, {"--port", "0", "--auth-key", path},
                             /*capture_stderr=*/true);
    EXPECT_EQ(meshd.wait_exit(std::chrono::seconds(5)), 2) << path;
    EXPECT_NE(meshd.error_output().find(words), std::string::npos) << meshd.error_output();
  }
}

}  // namespace
}  // namespace meshd
