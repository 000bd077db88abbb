#pragma once
// EdDSA tokens (RFC 8037: a compact JWS whose header says alg "EdDSA", an
// Ed25519 signature over `header.payload`). Debian 12's libjwt 1.10 has no
// EdDSA, so meshd takes these tokens apart itself: the segments here (strict
// base64url), the signature with OpenSSL; auth.cpp reads the JSON.

#include <optional>
#include <string>
#include <string_view>

struct evp_pkey_st;  // OpenSSL's EVP_PKEY

namespace meshd {

// base64url without padding (RFC 7515 section 2), strictly: nullopt for any
// character outside the URL alphabet (padding included), a length of 4n+1,
// or unused trailing bits that are not zero (one text per byte string).
std::optional<std::string> base64url_decode(std::string_view text);

// The three segments of a compact JWS, decoded.
struct CompactJws {
  std::string_view signing_input;  // "header.payload" as it came: what was signed
  std::string header;              // JSON text
  std::string payload;             // JSON text
  std::string signature;           // bytes
};
// nullopt unless `token` is exactly three valid base64url segments.
std::optional<CompactJws> split_compact_jws(std::string_view token);

// Whether `signature` (64 bytes) is the Ed25519 signature of `message` by
// `public_key` (an EVP_PKEY of type ED25519).
bool ed25519_verifies(evp_pkey_st* public_key, std::string_view message,
                      std::string_view signature);

}  // namespace meshd
