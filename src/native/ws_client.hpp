#pragma once
// One WebSocket connection to meshd (Boost.Beast, binary frames), driven by
// the owner's io_context. Every handler runs on that io_context; none runs
// after abort().

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>

namespace p2pmesh::native {

struct WsUrl {
  std::string host;
  std::string port;
  std::string path;
  std::string text;  // as given
};
// ws://host[:port][/path]; nullopt if it is not such a URL (wss is not
// supported).
std::optional<WsUrl> parse_ws_url(std::string_view url);

class WsClient : public std::enable_shared_from_this<WsClient> {
 public:
  struct Handlers {
    std::function<void()> open;
    std::function<void(std::string_view frame)> frame;
    std::function<void(std::string reason)> closed;  // once; not after abort()
  };
  WsClient(boost::asio::io_context& io, WsUrl url, Handlers handlers,
           std::size_t max_queued_bytes = 8u << 20);

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
  void fail(std::string reason);
  void read();
  void write_next();
  void finish_close();

  boost::asio::io_context& io_;
  WsUrl url_;
  Handlers handlers_;
  std::size_t max_queued_bytes_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::beast::flat_buffer buffer_;
  std::deque<std::string> out_;
  std::size_t out_bytes_ = 0;
  bool writing_ = false;
  bool open_ = false;
  bool closing_ = false;
  bool dead_ = false;
  std::function<void()> close_done_;
  boost::asio::steady_timer close_timer_;
};

}  // namespace p2pmesh::native
