// Token verification of meshd --auth-key (src/server/auth.*): tokens made
// with libjwt itself, keys made with OpenSSL, in-process.

#include "auth.hpp"

#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

namespace meshd {
namespace {

constexpr std::int64_t kNow = 1'800'000'000;
const std::string kSecret = "0123456789abcdef0123456789abcdef-test-secret";

// A token signed with `alg` and `key` (secret or private key PEM), claims as JSON.
std::string make_token(jwt_alg_t alg, const std::string& key, const std::string& claims_json) {
  jwt_t* jwt = nullptr;
  EXPECT_EQ(jwt_new(&jwt), 0);
  EXPECT_EQ(jwt_add_grants_json(jwt, claims_json.c_str()), 0) << claims_json;
  EXPECT_EQ(jwt_set_alg(jwt, alg, alg == JWT_ALG_NONE ? nullptr : reinterpret_cast<const unsigned char*>(key.data()),
                        alg == JWT_ALG_NONE ? 0 : static_cast<int>(key.size())),
            0);
  char* text = jwt_encode_str(jwt);
  std::string token = text ? text : "";
  std::free(text);
  jwt_free(jwt);
  return token;
}

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

}  // namespace
}  // namespace meshd
