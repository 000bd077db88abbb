#include "eddsa_token.hpp"

#include <openssl/evp.h>

#include <memory>

namespace meshd {

namespace {

constexpr std::size_t kEd25519SignatureBytes = 64;

}  // namespace

std::optional<std::string> base64url_decode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  // OpenSSL decodes the standard alphabet with padding: map and pad.
  std::string standard;
  standard.reserve(text.size() + 3);
  for (const char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
      standard.push_back(c);
    else if (c == '-')
      standard.push_back('+');
    else if (c == '_')
      standard.push_back('/');
    else
      return std::nullopt;
  }
  const std::size_t padding = (4 - standard.size() % 4) % 4;
  standard.append(padding, '=');
  std::string bytes(standard.size() / 4 * 3, '\0');
  const int decoded = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(bytes.data()),
                                      reinterpret_cast<const unsigned char*>(standard.data()),
                                      static_cast<int>(standard.size()));
  if (decoded < 0) return std::nullopt;
  // EVP_DecodeBlock counts the padding's zero bytes.
  bytes.resize(static_cast<std::size_t>(decoded) - padding);
  // Encoding back must give the same text: else the last character carried
  // bits that no byte holds (a second spelling of the same bytes).
  std::string again(standard.size() + 1, '\0');
  const int encoded = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(again.data()),
                                      reinterpret_cast<const unsigned char*>(bytes.data()),
                                      static_cast<int>(bytes.size()));
  if (std::string_view(again.data(), static_cast<std::size_t>(encoded)) != standard)
    return std::nullopt;
  return bytes;
}

std::optional<CompactJws> split_compact_jws(std::string_view token) {
  const auto first_dot = token.find('.');
  if (first_dot == std::string_view::npos) return std::nullopt;
  const auto second_dot = token.find('.', first_dot + 1);
  if (second_dot == std::string_view::npos ||
      token.find('.', second_dot + 1) != std::string_view::npos)
    return std::nullopt;
  auto header = base64url_decode(token.substr(0, first_dot));
  auto payload = base64url_decode(token.substr(first_dot + 1, second_dot - first_dot - 1));
  auto signature = base64url_decode(token.substr(second_dot + 1));
  if (!header || !payload || !signature) return std::nullopt;
  return CompactJws{token.substr(0, second_dot), std::move(*header), std::move(*payload),
                    std::move(*signature)};
}

bool ed25519_verifies(evp_pkey_st* public_key, std::string_view message,
                      std::string_view signature) {
  if (signature.size() != kEd25519SignatureBytes) return false;
  const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(),
                                                                         &EVP_MD_CTX_free);
  // Ed25519 hashes internally: no digest, one-shot only.
  return context &&
         EVP_DigestVerifyInit(context.get(), nullptr, nullptr, nullptr, public_key) == 1 &&
         EVP_DigestVerify(context.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                          message.size()) == 1;
}

}  // namespace meshd
