#pragma once
// The server side of the WebSocket opening handshake (RFC 6455 4.2): checks
// an upgrade request Beast's HTTP parser read, and writes the 101 response.
// No subprotocol and no extension is negotiated.

#include <boost/beast/http.hpp>
#include <string>
#include <string_view>

namespace meshd::ws {

// Why a request that asks for an upgrade cannot have it: the status to
// answer with (400, or 426 for an unsupported Sec-WebSocket-Version) and a
// reason for the body. status == ok (200): acceptable.
struct UpgradeCheck {
  boost::beast::http::status status = boost::beast::http::status::ok;
  const char* reason = "";
  bool ok() const { return status == boost::beast::http::status::ok; }
};

// For a request websocket::is_upgrade accepted (GET, HTTP/1.1 or later,
// Connection: upgrade, Upgrade: websocket): the rest of RFC 6455 4.2.1.
UpgradeCheck check_upgrade(const boost::beast::http::request<boost::beast::http::string_body>& request);

// Sec-WebSocket-Accept for a Sec-WebSocket-Key: base64(SHA-1(key + GUID)).
std::string accept_key(std::string_view client_key);

// The complete 101 response (status line and headers) for that key.
std::string switching_protocols(std::string_view client_key);

}  // namespace meshd::ws
