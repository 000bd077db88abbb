#include "ws_client.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace p2pmesh::native {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace ssl = asio::ssl;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

namespace {

// Connect and TLS handshake each have this long (the WebSocket handshake
// too: its own timeout below).
constexpr std::chrono::seconds kStepTimeout{5};

}  // namespace

std::optional<WsUrl> parse_ws_url(std::string_view url) {
  WsUrl out;
  std::string_view rest;
  if (url.substr(0, 5) == "ws://") {
    rest = url.substr(5);
  } else if (url.substr(0, 6) == "wss://") {
    rest = url.substr(6);
    out.tls = true;
  } else {
    return std::nullopt;
  }
  const char* default_port = out.tls ? "443" : "80";
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  out.text = std::string(url);
  out.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.empty()) return std::nullopt;
  if (authority.front() == '[') {  // [v6]:port
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return std::nullopt;
    out.port = after.empty() ? default_port : std::string(after.substr(1));
  } else {
    const std::size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    out.port = colon == std::string_view::npos ? default_port : std::string(authority.substr(colon + 1));
  }
  if (out.host.empty() || out.port.empty() || out.port.size() > 5) return std::nullopt;
  for (const char c : out.port) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  if (std::stoul(out.port) == 0 || std::stoul(out.port) > 65535) return std::nullopt;
  return out;
}

std::shared_ptr<ssl::context> make_tls_context(const std::string& ca_file) {
  auto tls = std::make_shared<ssl::context>(ssl::context::tls_client);
  SSL_CTX_set_min_proto_version(tls->native_handle(), TLS1_2_VERSION);
  tls->set_verify_mode(ssl::verify_peer);
  beast::error_code ec;
  // A system without a CA store still trusts ca_file; with neither, every
  // handshake fails verification (with that reason).
  tls->set_default_verify_paths(ec);
  if (ca_file.empty()) return tls;
  // OpenSSL's own messages for a missing file or a directory are vague.
  std::FILE* file = std::fopen(ca_file.c_str(), "r");
  if (!file) throw std::invalid_argument("p2pmesh: CA file " + ca_file + ": " + std::strerror(errno));
  std::fclose(file);
  std::error_code not_dir;
  if (std::filesystem::is_directory(ca_file, not_dir)) {
    throw std::invalid_argument("p2pmesh: CA file " + ca_file + ": is a directory, not a PEM file");
  }
  tls->load_verify_file(ca_file, ec);
  if (ec) {
    throw std::invalid_argument("p2pmesh: CA file " + ca_file +
                                ": no PEM certificate could be read from it (" + ec.message() + ")");
  }
  return tls;
}

WsClient::Stream WsClient::make_stream(asio::io_context& io, const WsUrl& url,
                                       std::shared_ptr<ssl::context>& tls) {
  if (!url.tls) return Stream(std::in_place_type<PlainStream>, io);
  if (!tls) tls = make_tls_context("");
  return Stream(std::in_place_type<TlsStream>, io, *tls);
}

WsClient::WsClient(asio::io_context& io, WsUrl url, Handlers handlers,
                   std::shared_ptr<ssl::context> tls, std::size_t max_queued_bytes)
    : io_(io),
      url_(std::move(url)),
      handlers_(std::move(handlers)),
      max_queued_bytes_(max_queued_bytes),
      resolver_(io),
      tls_(std::move(tls)),
      ws_(make_stream(io, url_, tls_)),
      close_timer_(io) {}

beast::tcp_stream& WsClient::tcp_layer() {
  return with_stream([](auto& ws) -> beast::tcp_stream& { return beast::get_lowest_layer(ws); });
}

void WsClient::start() {
  auto self = shared_from_this();
  resolver_.async_resolve(
      url_.host, url_.port, [self](beast::error_code ec, tcp::resolver::results_type results) {
        if (self->dead_) return;
        if (ec) return self->fail("resolve: " + ec.message());
        self->tcp_layer().expires_after(kStepTimeout);
        self->tcp_layer().async_connect(results, [self](beast::error_code ec2, const tcp::endpoint&) {
          if (self->dead_) return;
          if (ec2) return self->fail("connect: " + ec2.message());
          self->on_connected();
        });
      });
}

void WsClient::on_connected() {
  tcp_layer().expires_never();
  tcp_layer().socket().set_option(tcp::no_delay(true));
  if (auto* tls = std::get_if<TlsStream>(&ws_)) return tls_handshake(*tls);
  ws_handshake();
}

// SNI with the host name (never an IP literal, RFC 6066), and the
// certificate checked for that name or address by OpenSSL itself, so that a
// mismatch has its own reason ("hostname mismatch", "IP address mismatch").
void WsClient::tls_handshake(TlsStream& ws) {
  SSL* ssl_handle = ws.next_layer().native_handle();
  X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
  beast::error_code not_ip;
  asio::ip::make_address(url_.host, not_ip);
  const bool set =
      not_ip ? SSL_set_tlsext_host_name(ssl_handle, url_.host.c_str()) == 1 &&
                   X509_VERIFY_PARAM_set1_host(param, url_.host.c_str(), url_.host.size()) == 1
             : X509_VERIFY_PARAM_set1_ip_asc(param, url_.host.c_str()) == 1;
  if (!set) return fail("TLS setup for " + url_.text + " failed: bad host name " + url_.host);
  tcp_layer().expires_after(kStepTimeout);
  auto self = shared_from_this();
  ws.next_layer().async_handshake(ssl::stream_base::client, [self](beast::error_code ec) {
    if (self->dead_) return;
    if (ec) return self->fail(self->tls_failure(ec));
    self->tcp_layer().expires_never();
    self->ws_handshake();
  });
}

std::string WsClient::tls_failure(const beast::error_code& ec) {
  std::string what = ec.message();
  if (auto* tls = std::get_if<TlsStream>(&ws_)) {
    const long result = SSL_get_verify_result(tls->next_layer().native_handle());
    if (result != X509_V_OK) {
      what = std::string("certificate verify failed (") + X509_verify_cert_error_string(result) + ")";
    }
  }
  return "TLS handshake with " + url_.text + " failed: " + what;
}

void WsClient::ws_handshake() {
  auto self = shared_from_this();
  with_stream([&](auto& ws) {
    websocket::stream_base::timeout timeouts =
        websocket::stream_base::timeout::suggested(beast::role_type::client);
    timeouts.handshake_timeout = kStepTimeout;
    // A server that vanished without closing (host down, network gone) is
    // noticed: a ping after 10 s of silence, closed at 20 s.
    timeouts.idle_timeout = std::chrono::seconds(20);
    timeouts.keep_alive_pings = true;
    ws.set_option(timeouts);
    ws.read_message_max(1 << 20);
    ws.binary(true);
    // The Host header: an IPv6 address in brackets.
    const bool v6 = url_.host.find(':') != std::string::npos;
    const std::string host = v6 ? "[" + url_.host + "]:" + url_.port : url_.host + ":" + url_.port;
    if (!token_.empty())
      ws.set_option(websocket::stream_base::decorator(
          [token = token_](websocket::request_type& request) {
            request.set(beast::http::field::authorization, "Bearer " + token);
          }));
    ws.async_handshake(handshake_response_, host, url_.path, [self](beast::error_code ec) {
      if (self->dead_) return;
      if (ec && self->handshake_response_.result() == beast::http::status::unauthorized) {
        // meshd's body says why: "token expired", "token invalid", ...
        std::string why = self->handshake_response_.body();
        while (!why.empty() && (why.back() == '\n' || why.back() == '\r')) why.pop_back();
        self->token_rejected_ = true;
        return self->fail("token refused by " + self->url_.text + " (HTTP 401" +
                          (why.empty() ? std::string(")") : ": " + why + ")"));
      }
      if (ec) return self->fail("handshake: " + ec.message());
      self->open_ = true;
      if (self->handlers_.open) self->handlers_.open();
      if (self->dead_) return;
      self->read();
      self->write_next();
    });
  });
}

void WsClient::read() {
  auto self = shared_from_this();
  with_stream([&](auto& ws) {
    ws.async_read(buffer_, [self, &ws](beast::error_code ec, std::size_t) {
      if (self->dead_) return;
      if (ec) {
        if (self->closing_) return self->finish_close();
        if (ec != websocket::error::closed) return self->fail("read: " + ec.message());
        // The server's close frame: its code and reason reach the application.
        const websocket::close_reason& why = ws.reason();
        std::string reason = "closed by the server (code " + std::to_string(why.code);
        if (!why.reason.empty()) reason += ": " + std::string(why.reason.data(), why.reason.size());
        return self->fail(reason + ")");
      }
      const auto data = self->buffer_.cdata();
      const std::string_view frame(static_cast<const char*>(data.data()), data.size());
      if (self->handlers_.frame) self->handlers_.frame(frame);
      if (self->dead_) return;
      self->buffer_.consume(self->buffer_.size());
      self->read();
    });
  });
}

bool WsClient::send(std::string frame) {
  if (dead_ || closing_) return false;
  if (out_bytes_ + frame.size() > max_queued_bytes_) return false;
  out_bytes_ += frame.size();
  out_.push_back(std::move(frame));
  if (open_) write_next();
  return true;
}

void WsClient::write_next() {
  if (writing_ || dead_) return;
  auto self = shared_from_this();
  if (out_.empty()) {
    if (closing_) {
      writing_ = true;
      with_stream([&](auto& ws) {
        ws.async_close(websocket::close_code::normal, [self](beast::error_code) {
          self->writing_ = false;
          // The read loop sees the server's close reply and finishes.
        });
      });
    }
    return;
  }
  writing_ = true;
  with_stream([&](auto& ws) {
    ws.async_write(asio::buffer(out_.front()), [self](beast::error_code ec, std::size_t) {
      if (self->dead_) return;
      self->writing_ = false;
      self->out_bytes_ -= self->out_.front().size();
      self->out_.pop_front();
      if (ec) {
        if (self->closing_) return self->finish_close();
        return self->fail("write: " + ec.message());
      }
      self->write_next();
    });
  });
}

void WsClient::close(std::chrono::milliseconds timeout, std::function<void()> done) {
  if (dead_) {
    if (done) done();
    return;
  }
  closing_ = true;
  close_done_ = std::move(done);
  if (!open_) return finish_close();
  auto self = shared_from_this();
  close_timer_.expires_after(timeout);
  close_timer_.async_wait([self](beast::error_code ec) {
    if (!ec) self->finish_close();
  });
  write_next();
}

void WsClient::finish_close() {
  if (dead_) return;
  dead_ = true;
  open_ = false;
  close_timer_.cancel();
  beast::error_code ignored;
  resolver_.cancel();
  stop_idle_timer();
  tcp_layer().socket().shutdown(tcp::socket::shutdown_both, ignored);
  tcp_layer().close();
  if (auto done = std::move(close_done_)) done();
}

void WsClient::abort() {
  if (dead_) return;
  dead_ = true;
  open_ = false;
  close_timer_.cancel();
  resolver_.cancel();
  stop_idle_timer();
  tcp_layer().close();
}

void WsClient::stop_idle_timer() {
  // Closing the socket does not cancel Beast's keep-alive timer: it would
  // keep the io_context busy for up to the idle timeout (20 s).
  websocket::stream_base::timeout off;
  off.handshake_timeout = websocket::stream_base::none();
  off.idle_timeout = websocket::stream_base::none();
  off.keep_alive_pings = false;
  with_stream([&off](auto& ws) { ws.set_option(off); });
}

void WsClient::fail(std::string reason) {
  if (dead_) return;
  abort();
  if (handlers_.closed) handlers_.closed(std::move(reason));
}

}  // namespace p2pmesh::native
