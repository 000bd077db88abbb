#include "auth.hpp"

#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <boost/json.hpp>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "eddsa_token.hpp"

namespace meshd {

namespace {

struct JwtFree {
  void operator()(jwt_t* jwt) const { jwt_free(jwt); }
};
using JwtPtr = std::unique_ptr<jwt_t, JwtFree>;

struct CharFree {
  void operator()(char* text) const { std::free(text); }
};

constexpr std::size_t kMinSecretBytes = 32;  // RFC 7518 3.2: at least the hash size

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string percent_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 2 < text.size()) {
      const int high = hex_digit(text[i + 1]);
      const int low = hex_digit(text[i + 2]);
      if (high >= 0 && low >= 0) {
        out.push_back(static_cast<char>(high * 16 + low));
        i += 2;
        continue;
      }
    }
    out.push_back(text[i]);
  }
  return out;
}

std::shared_ptr<EVP_PKEY> read_public_key(const std::string& pem) {
  const std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  std::shared_ptr<EVP_PKEY> key(
      bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr, &EVP_PKEY_free);
  if (!key) throw std::runtime_error("--auth-key: not a PEM public key OpenSSL can read");
  return key;
}

bool is_p256(EVP_PKEY* key, std::string& curve_name) {
  char curve[64] = {};
  std::size_t length = 0;
  const bool named = EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, curve,
                                                    sizeof curve, &length) == 1;
  curve_name = curve;
  return named && curve_name == "prime256v1";
}

std::optional<boost::json::object> json_object_of(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(text, ec);
  if (ec || !value.is_object()) return std::nullopt;
  return std::move(value.as_object());
}

// The claims' meaning, whichever algorithm verified them.
std::variant<Grant, AuthFailure> grant_of_claims(const boost::json::object& claims,
                                                 std::int64_t now_unix) {
  Grant grant;
  const boost::json::value* exp = claims.if_contains("exp");
  if (!exp || !exp->is_int64()) return AuthFailure::bad_claims;
  grant.expires = exp->as_int64();
  if (grant.expires <= now_unix) return AuthFailure::expired;

  const boost::json::value* groups = claims.if_contains("groups");
  if (!groups || !groups->is_array()) return AuthFailure::bad_claims;
  for (const auto& entry : groups->as_array()) {
    if (!entry.is_string()) return AuthFailure::bad_claims;
    grant.groups.emplace_back(entry.as_string());
  }
  if (const auto* sub = claims.if_contains("sub"); sub && sub->is_string())
    grant.subject = sub->as_string();
  if (const auto* pk = claims.if_contains("pk"); pk && pk->is_string())
    grant.public_key = pk->as_string();
  return grant;
}

}  // namespace

const char* to_string(AuthFailure failure) {
  switch (failure) {
    case AuthFailure::missing: return "missing";
    case AuthFailure::invalid: return "invalid";
    case AuthFailure::wrong_algorithm: return "wrong_algorithm";
    case AuthFailure::expired: return "expired";
    case AuthFailure::bad_claims: return "bad_claims";
  }
  return "unknown";
}

bool Grant::allows_group(std::string_view group) const {
  for (const std::string& pattern : groups) {
    if (!pattern.empty() && pattern.back() == '*') {
      if (starts_with(group, std::string_view(pattern).substr(0, pattern.size() - 1))) return true;
    } else if (group == pattern) {
      return true;
    }
  }
  return false;
}

bool Grant::allows_key(std::string_view key) const {
  if (public_key.empty()) return true;
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string encoded;
  std::uint32_t bits = 0;
  int count = 0;
  for (const char c : key) {
    bits = (bits << 8) | static_cast<unsigned char>(c);
    count += 8;
    while (count >= 6) {
      count -= 6;
      encoded.push_back(kAlphabet[(bits >> count) & 0x3F]);
    }
  }
  if (count > 0) encoded.push_back(kAlphabet[(bits << (6 - count)) & 0x3F]);
  std::string_view claim = public_key;
  while (!claim.empty() && claim.back() == '=') claim.remove_suffix(1);
  return !key.empty() && claim == encoded;
}

TokenVerifier TokenVerifier::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("--auth-key: cannot read '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return from_key(text.str());
}

TokenVerifier TokenVerifier::from_key(std::string key) {
  if (key.find("-----BEGIN") != std::string::npos) {
    if (key.find("PRIVATE KEY-----") != std::string::npos)
      throw std::runtime_error(
          "--auth-key: this is a private key: give meshd the public key only");
    std::shared_ptr<EVP_PKEY> public_key = read_public_key(key);
    std::string curve;
    switch (EVP_PKEY_get_base_id(public_key.get())) {
      case EVP_PKEY_RSA:
        return TokenVerifier(Algorithm::rs256, std::move(key));
      case EVP_PKEY_EC:
        if (!is_p256(public_key.get(), curve))
          throw std::runtime_error("--auth-key: an EC key must be on P-256 (ES256), not " + curve);
        return TokenVerifier(Algorithm::es256, std::move(key));
      case EVP_PKEY_ED25519:
        return TokenVerifier(Algorithm::eddsa, std::move(key), std::move(public_key));
      default:
        throw std::runtime_error(
            "--auth-key: unsupported key type: expected an EC P-256 (ES256), RSA (RS256) or "
            "Ed25519 (EdDSA) public key, or an HS256 secret");
    }
  }
  if (!key.empty() && key.back() == '\n') key.pop_back();
  if (!key.empty() && key.back() == '\r') key.pop_back();
  if (key.size() < kMinSecretBytes)
    throw std::runtime_error("--auth-key: an HS256 secret needs at least " +
                             std::to_string(kMinSecretBytes) + " bytes (this one has " +
                             std::to_string(key.size()) + ")");
  return TokenVerifier(Algorithm::hs256, std::move(key));
}

const char* TokenVerifier::algorithm() const {
  switch (alg_) {
    case Algorithm::hs256: return "HS256";
    case Algorithm::es256: return "ES256";
    case Algorithm::rs256: return "RS256";
    case Algorithm::eddsa: return "EdDSA";
  }
  return "unknown";
}

std::variant<Grant, AuthFailure> TokenVerifier::verify(std::string_view token,
                                                       std::int64_t now_unix) const {
  if (token.empty()) return AuthFailure::missing;
  if (token.size() > kMaxTokenBytes) return AuthFailure::invalid;
  return alg_ == Algorithm::eddsa ? verify_eddsa(token, now_unix) : verify_libjwt(token, now_unix);
}

std::variant<Grant, AuthFailure> TokenVerifier::verify_eddsa(std::string_view token,
                                                             std::int64_t now_unix) const {
  const std::optional<CompactJws> jws = split_compact_jws(token);
  if (!jws) return AuthFailure::invalid;
  const std::optional<boost::json::object> header = json_object_of(jws->header);
  if (!header) return AuthFailure::invalid;
  const boost::json::value* alg = header->if_contains("alg");
  if (!alg || !alg->is_string()) return AuthFailure::invalid;
  // Another algorithm: refused as with the other keys (wrong_algorithm when
  // libjwt verifies it with our PEM text, e.g. as an HS256 secret).
  if (alg->as_string() != "EdDSA") return verify_libjwt(token, now_unix);
  if (!ed25519_verifies(ed25519_key_.get(), jws->signing_input, jws->signature))
    return AuthFailure::invalid;
  const std::optional<boost::json::object> claims = json_object_of(jws->payload);
  if (!claims) return AuthFailure::invalid;
  return grant_of_claims(*claims, now_unix);
}

std::variant<Grant, AuthFailure> TokenVerifier::verify_libjwt(std::string_view token,
                                                              std::int64_t now_unix) const {
  const std::string text(token);
  jwt_t* decoded = nullptr;
  if (jwt_decode(&decoded, text.c_str(), reinterpret_cast<const unsigned char*>(key_.data()),
                 static_cast<int>(key_.size())) != 0 ||
      !decoded)
    return AuthFailure::invalid;
  const JwtPtr jwt(decoded);
  // libjwt verifies with the algorithm the token names: a token "signed"
  // with HS256 and our public key's PEM text as the secret verifies. The
  // key's algorithm is the only one accepted ("none" never decodes with a key).
  // (With an Ed25519 key every token that gets here is of another algorithm.)
  const char* token_alg = jwt_alg_str(jwt_get_alg(jwt.get()));
  if (!token_alg || std::string_view(token_alg) != algorithm()) return AuthFailure::wrong_algorithm;

  // All claims as JSON (jansson's text of what it parsed), read like EdDSA's.
  const std::unique_ptr<char, CharFree> claims_json(jwt_get_grants_json(jwt.get(), nullptr));
  const std::optional<boost::json::object> claims =
      claims_json ? json_object_of(claims_json.get()) : std::nullopt;
  if (!claims) return AuthFailure::bad_claims;
  return grant_of_claims(*claims, now_unix);
}

std::string token_of_request(std::string_view target, std::string_view authorization) {
  const auto query_at = target.find('?');
  if (query_at != std::string_view::npos) {
    std::string_view query = target.substr(query_at + 1);
    while (!query.empty()) {
      const auto end = query.find('&');
      const std::string_view pair = query.substr(0, end);
      if (starts_with(pair, "token=")) return percent_decode(pair.substr(6));
      if (end == std::string_view::npos) break;
      query.remove_prefix(end + 1);
    }
  }
  constexpr std::string_view kBearer = "Bearer ";
  if (starts_with(authorization, kBearer)) {
    std::string_view token = authorization.substr(kBearer.size());
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    return std::string(token);
  }
  return {};
}

}  // namespace meshd
