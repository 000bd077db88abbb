#pragma once
// One WebSocket connection to meshd (Boost.Beast, binary frames), driven by
// the owner's io_context, over TCP (ws://) or TLS (wss://). Every handler runs
// on that io_context; none runs after abort().

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/ssl/ssl_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace p2pmesh::native {

struct WsUrl {
  std::string host;  // a name, an IPv4 address or an IPv6 address (without brackets)
  std::string port;
  std::string path;
  std::string text;  // as given
  bool tls = false;  // wss://
};
// ws://host[:port][/path] (port 80 by default) or wss://host[:port][/path]
// (443); IPv6 hosts in brackets. nullopt for anything else.
std::optional<WsUrl> parse_ws_url(std::string_view url);

// The TLS client settings of wss:// connections: TLS 1.2 or later, the
// server's certificate verified against the system's CA store (OpenSSL's
// default paths; SSL_CERT_FILE / SSL_CERT_DIR) plus, when `ca_file` is not
// empty, the CAs of that PEM file. Throws std::invalid_argument with the
// reason when the file cannot be read or holds no certificate.
std::shared_ptr<boost::asio::ssl::context> make_tls_context(const std::string& ca_file);

class WsClient : public std::enable_shared_from_this<WsClient> {
 public:
  struct Handlers {
    std::function<void()> open;
    std::function<void(std::string_view frame)> frame;
    std::function<void(std::string reason)> closed;  // once; not after abort()
  };
  // `tls`: the settings of a wss:// URL (make_tls_context(""), the system's
  // CAs only, when null); unused for ws://.
  WsClient(boost::asio::io_context& io, WsUrl url, Handlers handlers,
           std::shared_ptr<boost::asio::ssl::context> tls = nullptr,
           std::size_t max_queued_bytes = 8u << 20);

  // With meshd --auth-key: the JWT sent as `Authorization: Bearer` in the
  // upgrade request. Before start().
  void set_token(std::string token) { token_ = std::move(token); }
  // After `closed`: the server refused the token (HTTP 401); the reason
  // (meshd's "token expired", ...) was in the closed handler's text.
  bool token_rejected() const { return token_rejected_; }

  void start();
  // Queues one binary frame. False (and dropped) when not open or the queue
  // is over its bound.
  bool send(std::string frame);
  // Sends what is queued, then a close frame; `done` runs when the socket is
  // closed or after `timeout`.
  void close(std::chrono::milliseconds timeout, std::function<void()> done);
  // Drops the connection at once; no handler runs afterwards.
  void abort();
  bool is_open() const { return open_; }
  const WsUrl& url() const { return url_; }

 private:
  using PlainStream = boost::beast::websocket::stream<boost::beast::tcp_stream>;
  using TlsStream =
      boost::beast::websocket::stream<boost::beast::ssl_stream<boost::beast::tcp_stream>>;
  using Stream = std::variant<PlainStream, TlsStream>;
  static Stream make_stream(boost::asio::io_context& io, const WsUrl& url,
                            std::shared_ptr<boost::asio::ssl::context>& tls);
  // Runs fn(stream) on whichever stream this connection has: one code path
  // for ws:// and wss://.
  template <class Fn>
  decltype(auto) with_stream(Fn&& fn) {
    return std::visit(std::forward<Fn>(fn), ws_);
  }
  boost::beast::tcp_stream& tcp_layer();

  void on_connected();
  void tls_handshake(TlsStream& ws);
  std::string tls_failure(const boost::system::error_code& ec);
  void ws_handshake();
  void fail(std::string reason);
  void read();
  void write_next();
  void finish_close();
  void stop_idle_timer();

  boost::asio::io_context& io_;
  WsUrl url_;
  Handlers handlers_;
  std::size_t max_queued_bytes_;
  boost::asio::ip::tcp::resolver resolver_;
  std::shared_ptr<boost::asio::ssl::context> tls_;  // outlives the stream using it
  Stream ws_;
  boost::beast::flat_buffer buffer_;
  std::deque<std::string> out_;
  std::size_t out_bytes_ = 0;
  bool writing_ = false;
  bool open_ = false;
  bool closing_ = false;
  bool dead_ = false;
  bool token_rejected_ = false;
  std::string token_;
  boost::beast::websocket::response_type handshake_response_;
  std::function<void()> close_done_;
  boost::asio::steady_timer close_timer_;
};

}  // namespace p2pmesh::native
