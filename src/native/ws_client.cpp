#include "ws_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/websocket.hpp>

namespace p2pmesh::native {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

std::optional<WsUrl> parse_ws_url(std::string_view url) {
  constexpr std::string_view scheme = "ws://";
  if (url.substr(0, scheme.size()) != scheme) return std::nullopt;
  std::string_view rest = url.substr(scheme.size());
  const std::size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  WsUrl out;
  out.text = std::string(url);
  out.path = slash == std::string_view::npos ? "/" : std::string(rest.substr(slash));
  if (authority.empty()) return std::nullopt;
  if (authority.front() == '[') {  // [v6]:port
    const std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return std::nullopt;
    out.port = after.empty() ? "80" : std::string(after.substr(1));
  } else {
    const std::size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    out.port = colon == std::string_view::npos ? "80" : std::string(authority.substr(colon + 1));
  }
  if (out.host.empty() || out.port.empty() || out.port.size() > 5) return std::nullopt;
  for (const char c : out.port) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  if (std::stoul(out.port) == 0 || std::stoul(out.port) > 65535) return std::nullopt;
  return out;
}

WsClient::WsClient(asio::io_context& io, WsUrl url, Handlers handlers,
                   std::size_t max_queued_bytes)
    : io_(io),
      url_(std::move(url)),
      handlers_(std::move(handlers)),
      max_queued_bytes_(max_queued_bytes),
      resolver_(io),
      ws_(io),
      close_timer_(io) {}

void WsClient::start() {
  auto self = shared_from_this();
  resolver_.async_resolve(
      url_.host, url_.port, [self](beast::error_code ec, tcp::resolver::results_type results) {
        if (self->dead_) return;
        if (ec) return self->fail("resolve: " + ec.message());
        beast::get_lowest_layer(self->ws_).expires_after(std::chrono::seconds(5));
        beast::get_lowest_layer(self->ws_).async_connect(
            results, [self](beast::error_code ec2, const tcp::endpoint&) {
              if (self->dead_) return;
              if (ec2) return self->fail("connect: " + ec2.message());
              beast::get_lowest_layer(self->ws_).expires_never();
              beast::get_lowest_layer(self->ws_).socket().set_option(tcp::no_delay(true));
              websocket::stream_base::timeout timeouts =
                  websocket::stream_base::timeout::suggested(beast::role_type::client);
              timeouts.handshake_timeout = std::chrono::seconds(5);
              // A server that vanished without closing (host down, network
              // gone) is noticed: a ping after 10 s of silence, closed at 20 s.
              timeouts.idle_timeout = std::chrono::seconds(20);
              timeouts.keep_alive_pings = true;
              self->ws_.set_option(timeouts);
              self->ws_.read_message_max(1 << 20);
              self->ws_.binary(true);
              self->ws_.async_handshake(self->url_.host + ":" + self->url_.port, self->url_.path,
                                        [self](beast::error_code ec3) {
                                          if (self->dead_) return;
                                          if (ec3) return self->fail("handshake: " + ec3.message());
                                          self->open_ = true;
                                          if (self->handlers_.open) self->handlers_.open();
                                          if (self->dead_) return;
                                          self->read();
                                          self->write_next();
                                        });
            });
      });
}

void WsClient::read() {
  auto self = shared_from_this();
  ws_.async_read(buffer_, [self](beast::error_code ec, std::size_t) {
    if (self->dead_) return;
    if (ec) {
      if (self->closing_) return self->finish_close();
      if (ec != websocket::error::closed) return self->fail("read: " + ec.message());
      // The server's close frame: its code and reason reach the application.
      const websocket::close_reason& why = self->ws_.reason();
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
  if (out_.empty()) {
    if (closing_) {
      writing_ = true;
      auto self = shared_from_this();
      ws_.async_close(websocket::close_code::normal, [self](beast::error_code) {
        self->writing_ = false;
        // The read loop sees the server's close reply and finishes.
      });
    }
    return;
  }
  writing_ = true;
  auto self = shared_from_this();
  ws_.async_write(asio::buffer(out_.front()), [self](beast::error_code ec, std::size_t) {
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
  beast::get_lowest_layer(ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
  beast::get_lowest_layer(ws_).close();
  if (auto done = std::move(close_done_)) done();
}

void WsClient::abort() {
  if (dead_) return;
  dead_ = true;
  open_ = false;
  close_timer_.cancel();
  resolver_.cancel();
  beast::get_lowest_layer(ws_).close();
}

void WsClient::fail(std::string reason) {
  if (dead_) return;
  abort();
  if (handlers_.closed) handlers_.closed(std::move(reason));
}

}  // namespace p2pmesh::native
