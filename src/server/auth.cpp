#include "auth.hpp"

#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <boost/json.hpp>
#include <cerrno>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>

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

// The JWT algorithm a PEM public key verifies, from its type (OpenSSL).
jwt_alg_t algorithm_of_public_key(const std::string& pem) {
  const std::unique_ptr<BIO, decltype(&BIO_free)> bio(
      BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  const std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
      bio ? PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr) : nullptr, &EVP_PKEY_free);
  if (!key) throw std::runtime_error("--auth-key: not a PEM public key OpenSSL can read");
  switch (EVP_PKEY_get_base_id(key.get())) {
    case EVP_PKEY_RSA:
      return JWT_ALG_RS256;
    case EVP_PKEY_EC: {
      char curve[64] = {};
      std::size_t length = 0;
      if (EVP_PKEY_get_utf8_string_param(key.get(), OSSL_PKEY_PARAM_GROUP_NAME, curve,
                                         sizeof curve, &length) == 1 &&
          std::string_view(curve) == "prime256v1")
        return JWT_ALG_ES256;
      throw std::runtime_error("--auth-key: an EC key must be on P-256 (ES256), not " +
                               std::string(curve));
    }
    case EVP_PKEY_ED25519:
      throw std::runtime_error(
          "--auth-key: Ed25519 (EdDSA) keys need libjwt >= 1.12; Debian 12's libjwt 1.10 "
          "verifies HS256 (a secret), ES256 (EC P-256 public key) and RS256 (RSA public key)");
    default:
      throw std::runtime_error(
          "--auth-key: unsupported key type: expected an EC P-256 (ES256) or RSA (RS256) public "
          "key, or an HS256 secret");
  }
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
    const jwt_alg_t alg = algorithm_of_public_key(key);
    return TokenVerifier(alg, std::move(key));
  }
  if (!key.empty() && key.back() == '\n') key.pop_back();
  if (!key.empty() && key.back() == '\r') key.pop_back();
  if (key.size() < kMinSecretBytes)
    throw std::runtime_error("--auth-key: an HS256 secret needs at least " +
                             std::to_string(kMinSecretBytes) + " bytes (this one has " +
                             std::to_string(key.size()) + ")");
  return TokenVerifier(JWT_ALG_HS256, std::move(key));
}

const char* TokenVerifier::algorithm() const {
  return jwt_alg_str(static_cast<jwt_alg_t>(alg_));
}

std::variant<Grant, AuthFailure> TokenVerifier::verify(std::string_view token,
                                                       std::int64_t now_unix) const {
  if (token.empty()) return AuthFailure::missing;
  if (token.size() > kMaxTokenBytes) return AuthFailure::invalid;
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
  if (jwt_get_alg(jwt.get()) != static_cast<jwt_alg_t>(alg_)) return AuthFailure::wrong_algorithm;

  Grant grant;
  errno = 0;
  const long exp = jwt_get_grant_int(jwt.get(), "exp");
  if (errno != 0) return AuthFailure::bad_claims;
  grant.expires = exp;
  if (exp <= now_unix) return AuthFailure::expired;

  const std::unique_ptr<char, CharFree> groups(jwt_get_grants_json(jwt.get(), "groups"));
  if (!groups) return AuthFailure::bad_claims;
  boost::system::error_code ec;
  const boost::json::value value = boost::json::parse(groups.get(), ec);
  if (ec || !value.is_array()) return AuthFailure::bad_claims;
  for (const auto& entry : value.as_array()) {
    if (!entry.is_string()) return AuthFailure::bad_claims;
    grant.groups.emplace_back(entry.as_string().c_str());
  }
  if (const char* sub = jwt_get_grant(jwt.get(), "sub")) grant.subject = sub;
  if (const char* pk = jwt_get_grant(jwt.get(), "pk")) grant.public_key = pk;
  return grant;
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
