#pragma once
// Who may join (meshd --auth-key, docs/security.md): the WebSocket upgrade
// carries a JWT, verified here with libjwt (Debian libjwt-dev), or for an
// Ed25519 key (EdDSA, which libjwt 1.10 lacks) by eddsa_token.* and OpenSSL.
// The key file fixes the algorithm; a token naming another one (alg
// confusion, "none") is refused whatever its signature.
//
// Claims: exp (required, unix seconds), groups (required: an array of group
// names or "prefix*" patterns the holder may join), sub (optional, shown to
// observers), pk (optional: the holder's broadcast public key).

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace meshd {

// Why a token was refused; the labels of meshd_auth_failures_total.
enum class AuthFailure : unsigned char {
  missing,          // no token in the request
  invalid,          // not a JWT, or its signature does not verify with the key
  wrong_algorithm,  // verifies only under another algorithm than the key's (alg confusion)
  expired,          // exp is past
  bad_claims,       // exp or groups missing or of the wrong type
};
inline constexpr std::size_t kAuthFailureCount = 5;
const char* to_string(AuthFailure failure);

// What a valid token allows.
struct Grant {
  std::vector<std::string> groups;  // names, or prefixes ending in '*'
  std::string subject;              // sub
  std::string public_key;           // pk
  std::int64_t expires = 0;         // exp, unix seconds

  bool allows_group(std::string_view group) const;
  // Signed broadcasts: whether a member may announce `key` (the raw 32-byte
  // Ed25519 key of its status) as its own: always without a pk claim, else
  // when pk is base64url(key) (RFC 4648 section 5, padding optional).
  bool allows_key(std::string_view key) const;
};

class TokenVerifier {
 public:
  static constexpr std::size_t kMaxTokenBytes = 8192;

  // The --auth-key file: a PEM public key (EC P-256: ES256; RSA: RS256;
  // Ed25519: EdDSA) or an HS256 secret (at least 32 bytes; one trailing
  // newline ignored).
  // Throws std::runtime_error saying what is wrong with it.
  static TokenVerifier from_file(const std::string& path);
  static TokenVerifier from_key(std::string key);

  std::variant<Grant, AuthFailure> verify(std::string_view token, std::int64_t now_unix) const;
  const char* algorithm() const;  // "HS256", "ES256", "RS256" or "EdDSA"

 private:
  enum class Algorithm : unsigned char { hs256, es256, rs256, eddsa };
  TokenVerifier(Algorithm alg, std::string key, std::shared_ptr<evp_pkey_st> ed25519_key = {})
      : alg_(alg), key_(std::move(key)), ed25519_key_(std::move(ed25519_key)) {}
  std::variant<Grant, AuthFailure> verify_eddsa(std::string_view token, std::int64_t now_unix) const;
  // HS256/ES256/RS256 keys, and EdDSA keys' tokens of another algorithm:
  // invalid unless libjwt verifies the token with key_ under the algorithm
  // it names, then wrong_algorithm unless that is alg_.
  std::variant<Grant, AuthFailure> verify_libjwt(std::string_view token, std::int64_t now_unix) const;

  Algorithm alg_;
  std::string key_;                           // the file: libjwt's key
  std::shared_ptr<evp_pkey_st> ed25519_key_;  // EdDSA only; read-only, shared by threads
};

// The token of an upgrade request: the `token` query parameter (browsers
// cannot set headers on a WebSocket), else `Authorization: Bearer <token>`.
// Empty when there is none. The query value is percent-decoded.
std::string token_of_request(std::string_view target, std::string_view authorization);

}  // namespace meshd
