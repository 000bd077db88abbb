// The WebSocket opening handshake. See ws_handshake.hpp.

#include "ws_handshake.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <algorithm>

namespace meshd::ws {

namespace http = boost::beast::http;

namespace {

constexpr std::string_view kGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

bool base64_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
         c == '/';
}

// 16 bytes in base64: 22 characters and "==".
bool valid_key(std::string_view key) {
  return key.size() == 24 && key.substr(22) == "==" &&
         std::all_of(key.begin(), key.begin() + 22, base64_char);
}

}  // namespace

UpgradeCheck check_upgrade(const http::request<http::string_body>& request) {
  if (request.version() != 11) return {http::status::bad_request, "HTTP/1.1 required"};
  if (request.find(http::field::host) == request.end()) return {http::status::bad_request, "no Host"};
  const auto key = request.find(http::field::sec_websocket_key);
  if (key == request.end()) return {http::status::bad_request, "no Sec-WebSocket-Key"};
  if (!valid_key(std::string_view(key->value().data(), key->value().size())))
    return {http::status::bad_request, "invalid Sec-WebSocket-Key"};
  const auto version = request.find(http::field::sec_websocket_version);
  if (version == request.end()) return {http::status::bad_request, "no Sec-WebSocket-Version"};
  if (version->value() != "13") return {http::status::upgrade_required, "Sec-WebSocket-Version 13 required"};
  return {};
}

std::string accept_key(std::string_view client_key) {
  std::string input(client_key);
  input += kGuid;
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(input.data()), input.size(), digest);
  unsigned char encoded[4 * ((SHA_DIGEST_LENGTH + 2) / 3) + 1];
  const int length = EVP_EncodeBlock(encoded, digest, SHA_DIGEST_LENGTH);
  return std::string(reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(length));
}

std::string switching_protocols(std::string_view client_key) {
  std::string response =
      "HTTP/1.1 101 Switching Protocols\r\n"
      "Upgrade: websocket\r\n"
      "Connection: Upgrade\r\n"
      "Server: meshd\r\n"
      "Sec-WebSocket-Accept: ";
  response += accept_key(client_key);
  response += "\r\n\r\n";
  return response;
}

}  // namespace meshd::ws
