// Token verification of meshd --auth-key (src/server/auth.*): tokens made
// with libjwt itself (EdDSA ones, which libjwt 1.10 cannot make, signed here
// with OpenSSL), keys made with OpenSSL, in-process.

#include "auth.hpp"

#include <signal.h>
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

#include "eddsa_token.hpp"
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

// base64url without padding (RFC 7515), as token issuers write it.
std::string base64url(std::string_view bytes) {
  std::string text(4 * ((bytes.size() + 2) / 3) + 1, '\0');
  const int length = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(text.data()),
                                     reinterpret_cast<const unsigned char*>(bytes.data()),
                                     static_cast<int>(bytes.size()));
  text.resize(static_cast<std::size_t>(length));
  while (!text.empty() && text.back() == '=') text.pop_back();
  for (char& c : text) c = c == '+' ? '-' : c == '/' ? '_' : c;
  return text;
}

// An issuer of EdDSA tokens (RFC 8037): a fresh Ed25519 key pair.
class Ed25519Issuer {
 public:
  Ed25519Issuer() : key_(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), &EVP_PKEY_free) {
    BIO* bio = BIO_new(BIO_s_mem());
    PEM_write_bio_PUBKEY(bio, key_.get());
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio, &data);
    public_pem_.assign(data, static_cast<std::size_t>(size));
    BIO_free(bio);
  }
  const std::string& public_pem() const { return public_pem_; }

  std::string token(const std::string& claims_json,
                    const std::string& header_json = R"({"alg":"EdDSA","typ":"JWT"})") const {
    const std::string input = base64url(header_json) + "." + base64url(claims_json);
    return input + "." + base64url(signature(input));
  }
  std::string signature(const std::string& input) const {
    std::string signature(64, '\0');
    std::size_t length = signature.size();
    EVP_MD_CTX* context = EVP_MD_CTX_new();
    EXPECT_EQ(EVP_DigestSignInit(context, nullptr, nullptr, nullptr, key_.get()), 1);
    EXPECT_EQ(EVP_DigestSign(context, reinterpret_cast<unsigned char*>(signature.data()), &length,
                             reinterpret_cast<const unsigned char*>(input.data()), input.size()),
              1);
    EVP_MD_CTX_free(context);
    signature.resize(length);
    return signature;
  }

 private:
  std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key_;
  std::string public_pem_;
};

const Grant* grant_of(const std::variant<Grant, AuthFailure>& result) {
  return std::get_if<Grant>(&result);
}
AuthFailure failure_of(const std::variant<Grant, AuthFailure>& result) {
  const auto* failure = std::get_if<AuthFailure>(&result);
  return failure ? *failure : static_cast<AuthFailure>(255);
}

// The claims both algorithm tests sign, and what they must give.
constexpr const char* kAliceClaims =
    R"({"exp":1800000060,"groups":["room1","team-*"],"sub":"alice","pk":"cHVibGljIGtleQ"})";
void expect_alice(const std::variant<Grant, AuthFailure>& result) {
  const Grant* grant = grant_of(result);
  ASSERT_TRUE(grant) << to_string(failure_of(result));
  EXPECT_EQ(grant->groups, (std::vector<std::string>{"room1", "team-*"}));
  EXPECT_EQ(grant->subject, "alice");
  EXPECT_EQ(grant->public_key, "cHVibGljIGtleQ");
  EXPECT_EQ(grant->expires, 1800000060);
  EXPECT_TRUE(grant->allows_group("room1"));
  EXPECT_TRUE(grant->allows_group("team-blue"));
  EXPECT_FALSE(grant->allows_group("room12"));
}

TEST(TokenVerifier, Hs256TokenGivesItsClaims) {
  const auto verifier = TokenVerifier::from_key(kSecret + "\n");  // a file's trailing newline
  EXPECT_STREQ(verifier.algorithm(), "HS256");
  const auto result = verifier.verify(make_token(JWT_ALG_HS256, kSecret, kAliceClaims), kNow);
  expect_alice(result);
  const Grant* grant = grant_of(result);
  ASSERT_TRUE(grant);
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
  EXPECT_NE(message(ed25519_pair().private_pem).find("private key"), std::string::npos);
  EXPECT_NE(message(pem_pair(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED448")).public_pem)
                .find("unsupported key type"),
            std::string::npos);
  EXPECT_NE(message("-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n")
                .find("not a PEM public key"),
            std::string::npos);
  EXPECT_NE(message(pem_pair(EVP_EC_gen("P-384")).public_pem).find("P-256"), std::string::npos);
}

// --- EdDSA: Ed25519 keys, verified without libjwt (eddsa_token.*) ---------

TEST(EddsaTokens, AnEd25519KeyFileAcceptsItsTokensWithTheirClaims) {
  const Ed25519Issuer issuer;
  test::TestPki files;  // a private temporary directory
  ASSERT_TRUE(files.ok());
  const std::string key_file = test::write_file(files.dir(), "auth.pub", issuer.public_pem());
  ASSERT_FALSE(key_file.empty());
  const auto verifier = TokenVerifier::from_file(key_file);
  EXPECT_STREQ(verifier.algorithm(), "EdDSA");
  expect_alice(verifier.verify(issuer.token(kAliceClaims), kNow));
  // A header without typ, as RFC 8037's example; sub and pk of other types
  // are ignored, as with libjwt's algorithms.
  const auto bare = verifier.verify(
      issuer.token(R"({"exp":1800000060,"groups":[],"sub":7,"pk":null})", R"({"alg":"EdDSA"})"),
      kNow);
  ASSERT_TRUE(grant_of(bare)) << to_string(failure_of(bare));
  EXPECT_TRUE(grant_of(bare)->groups.empty());
  EXPECT_EQ(grant_of(bare)->subject, "");
  EXPECT_EQ(grant_of(bare)->public_key, "");
}

TEST(EddsaTokens, RefusesEachBadTokenWithItsReason) {
  const Ed25519Issuer issuer;
  const auto verifier = TokenVerifier::from_key(issuer.public_pem());
  const std::string claims = R"({"exp":1800000060,"groups":["g"]})";
  const auto failure = [&](const std::string& token) {
    return failure_of(verifier.verify(token, kNow));
  };
  ASSERT_TRUE(grant_of(verifier.verify(issuer.token(claims), kNow)));
  EXPECT_EQ(failure(""), AuthFailure::missing);
  EXPECT_EQ(failure(issuer.token(R"({"exp":1800000000,"groups":["g"]})")), AuthFailure::expired);
  for (const char* bad : {R"({"groups":["g"]})", R"({"exp":"1800000060","groups":["g"]})",
                          R"({"exp":1.8000001e9,"groups":["g"]})", R"({"exp":1800000060})",
                          R"({"exp":1800000060,"groups":"g"})",
                          R"({"exp":1800000060,"groups":["g",7]})"})
    EXPECT_EQ(failure(issuer.token(bad)), AuthFailure::bad_claims) << bad;

  // The payload changed after signing: the same signature on other claims,
  // and one character of the payload segment flipped.
  const std::string token = issuer.token(claims);
  const auto first_dot = token.find('.');
  const auto second_dot = token.rfind('.');
  EXPECT_EQ(failure(token.substr(0, first_dot + 1) +
                    base64url(R"({"exp":1800000060,"groups":["*"]})") + token.substr(second_dot)),
            AuthFailure::invalid);
  std::string tampered = token;
  tampered[first_dot + 5] ^= 1;
  EXPECT_EQ(failure(tampered), AuthFailure::invalid);
  // Signed by another Ed25519 key.
  EXPECT_EQ(failure(Ed25519Issuer().token(claims)), AuthFailure::invalid);

  // Other algorithms: "none" (libjwt's and a hand-made one), the classic
  // forgery (HS256 with the public key's PEM text as the secret), ES256.
  EXPECT_EQ(failure(make_token(JWT_ALG_NONE, "", claims)), AuthFailure::invalid);
  EXPECT_EQ(failure(base64url(R"({"alg":"none"})") + "." + base64url(claims) + "."),
            AuthFailure::invalid);
  EXPECT_EQ(failure(make_token(JWT_ALG_HS256, issuer.public_pem(), claims)),
            AuthFailure::wrong_algorithm);
  EXPECT_EQ(failure(make_token(JWT_ALG_ES256, ec_pair().private_pem, claims)),
            AuthFailure::invalid);
  // An EdDSA signature under a header naming another algorithm (the header
  // is signed too, but the alg decides before the signature is looked at).
  EXPECT_EQ(failure(issuer.token(claims, R"({"alg":"HS256"})")), AuthFailure::invalid);
  EXPECT_EQ(failure(issuer.token(claims, R"({"alg":"EDDSA"})")), AuthFailure::invalid);

  // Not a well-formed token: segments, base64url, JSON, signature size.
  const std::string header = base64url(R"({"alg":"EdDSA"})");
  const std::string payload = base64url(claims);
  const std::string signature = token.substr(second_dot + 1);
  for (const std::string& garbage :
       {std::string("not a token"), std::string(".."), std::string("a.b"),
        token + ".", token + "." + signature, header + "." + payload,
        header + "." + payload + "." + signature + "==",  // padding
        header + "=." + payload + "." + signature,
        header + "." + payload + "." + signature.substr(1),          // 4n+1 characters
        header + "." + payload + "." + signature.substr(0, 84),     // 63 bytes
        header + "." + payload + "." + signature + "AA",           // 66 bytes
        header + "." + payload + "." + base64url(std::string(64, '\0')),
        header + " ." + payload + "." + signature, "\n" + token,
        base64url("{\"alg\":\"EdDSA\"") + "." + payload + "." + signature,  // not JSON
        base64url(R"(["EdDSA"])") + "." + payload + "." + signature,
        base64url(R"({"alg":["EdDSA"]})") + "." + payload + "." + signature,
        base64url(R"({"typ":"JWT"})") + "." + payload + "." + signature,
        std::string(TokenVerifier::kMaxTokenBytes + 1, 'a')})
    EXPECT_EQ(failure(garbage), AuthFailure::invalid) << garbage;
  // Signed, but its payload is not a JSON object.
  EXPECT_EQ(failure(issuer.token("[1,2]")), AuthFailure::invalid);
  EXPECT_EQ(failure(issuer.token("{\"exp\":")), AuthFailure::invalid);
}

TEST(EddsaTokens, OtherKeysRefuseEdDsaTokens) {
  const Ed25519Issuer issuer;
  const std::string token = issuer.token(R"({"exp":1800000060,"groups":["g"]})");
  for (const std::string& key : {kSecret, ec_pair().public_pem, rsa_pair().public_pem})
    EXPECT_EQ(failure_of(TokenVerifier::from_key(key).verify(token, kNow)), AuthFailure::invalid)
        << key;
}

TEST(EddsaTokens, Base64urlIsDecodedStrictly) {
  EXPECT_EQ(base64url_decode(""), std::string());
  EXPECT_EQ(base64url_decode("YQ"), std::string("a"));
  EXPECT_EQ(base64url_decode("YWI"), std::string("ab"));
  EXPECT_EQ(base64url_decode("YWJj"), std::string("abc"));
  EXPECT_EQ(base64url_decode("-_8"), std::string("\xfb\xff"));
  EXPECT_EQ(base64url_decode("AA"), std::string(1, '\0'));
  for (const char* bad : {"Y", "YWJjZ", "YQ==", "YR", "YWJ", "+_8", "-/8", "YW J", "YW\nJj"})
    EXPECT_FALSE(base64url_decode(bad)) << bad;
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

// The real meshd, in-process, with an Ed25519 key file.
TEST(EddsaAuthServer, AValidEdDsaTokenIsServedOthersGet401) {
  const Ed25519Issuer issuer;
  test::TestPki files;
  ASSERT_TRUE(files.ok());
  Config config = test::test_config();
  config.auth_key_file = test::write_file(files.dir(), "auth.pub", issuer.public_pem());
  ASSERT_FALSE(config.auth_key_file.empty());
  test::TestServer server(config);
  const std::int64_t now = ::time(nullptr);
  const auto claims = [&](std::int64_t exp) {
    return R"({"exp":)" + std::to_string(exp) + R"(,"groups":["room*"],"sub":"alice"})";
  };

  test::WsClient member;
  member.set_request("/service?token=" + issuer.token(claims(now + 300)));
  ASSERT_TRUE(member.connect(server.port())) << member.error();
  member.subscribe("room1.mesh");
  EXPECT_TRUE(member.barrier());
  EXPECT_EQ(test::metric(server.port(), "meshd_connections"), 1);
  // The grant bounds it: another group's topic is refused.
  const double forbidden = test::drops(server.port(), "forbidden");
  member.subscribe("other.mesh");
  EXPECT_TRUE(member.barrier());
  EXPECT_EQ(test::drops(server.port(), "forbidden"), forbidden + 1);

  const auto refused = [&](const std::string& token) {
    test::WsClient client;
    client.set_request("/service?token=" + token);
    if (client.connect(server.port())) return std::string("served");
    return client.error();
  };
  EXPECT_NE(refused(Ed25519Issuer().token(claims(now + 300))).find("HTTP 401"), std::string::npos);
  EXPECT_NE(refused(issuer.token(claims(now - 10))).find("HTTP 401"), std::string::npos);
  EXPECT_NE(refused(make_token(JWT_ALG_HS256, issuer.public_pem(), claims(now + 300)))
                .find("HTTP 401"),
            std::string::npos);
  const auto failures = [&](const char* reason) {
    return test::metric(server.port(),
                        std::string("meshd_auth_failures_total{reason=\"") + reason + "\"}");
  };
  EXPECT_EQ(failures("invalid"), 1);
  EXPECT_EQ(failures("expired"), 1);
  EXPECT_EQ(failures("wrong_algorithm"), 1);
  EXPECT_EQ(test::metric(server.port(), "meshd_connections"), 1);
}

TEST(AuthOptions, MeshdStartsWithAnEd25519KeyAndSaysSo) {
  test::TestPki files;
  ASSERT_TRUE(files.ok());
  const std::string key_file = test::write_file(files.dir(), "auth.pub", ed25519_pair().public_pem);
  ASSERT_FALSE(key_file.empty());
  test::MeshdProgram meshd(MESHD_BINARY,
                           {"--host", "127.0.0.1", "--port", "0", "--auth-key", key_file},
                           /*capture_stderr=*/true);
  EXPECT_NE(test::port_from(meshd.first_line()), 0);
  meshd.signal(SIGTERM);
  EXPECT_EQ(meshd.wait_exit(std::chrono::seconds(10)), 0);
  EXPECT_NE(meshd.error_output().find("tokens required: EdDSA"), std::string::npos)
      << meshd.error_output();
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
