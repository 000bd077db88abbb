#include "support.hpp"

#include <sys/socket.h>
#include <sys/time.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <spdlog/spdlog.h>
#include <algorithm>
#include <cstdlib>
#include <deque>
#include <future>
#include <sstream>

namespace meshd::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
namespace wire = p2pmesh::wire;

Config test_config() {
  Config config;
  config.host = "127.0.0.1";
  config.port = 0;
  // ctest runs every server test a second time with MESHD_TEST_THREADS=2.
  if (const char* threads = std::getenv("MESHD_TEST_THREADS"))
    config.threads = static_cast<std::size_t>(std::max(1, std::atoi(threads)));
  return config;
}

// ---------------------------------------------------------------------------

TestServer::TestServer(Config config) : server_(std::make_unique<Server>(std::move(config))) {
  if (const char* level = std::getenv("MESHD_TEST_LOG"))
    spdlog::set_level(spdlog::level::from_str(level));
  else
    spdlog::set_level(spdlog::level::warn);
  port_ = server_->listen();
  thread_ = std::thread([this] { server_->run(); });
}

TestServer::~TestServer() {
  if (!stopped_) stop();
  if (thread_.joinable()) thread_.join();
}

bool TestServer::stop(std::chrono::milliseconds timeout) {
  stopped_ = true;
  server_->stop();
  auto done = std::async(std::launch::async, [this] {
    if (thread_.joinable()) thread_.join();
  });
  return done.wait_for(timeout) == std::future_status::ready;
}

// ---------------------------------------------------------------------------

namespace {
void set_timeouts(int fd) {
  timeval tv{};
  tv.tv_sec = 5;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}
}  // namespace

HttpResult http_get(std::uint16_t port, const std::string& target) {
  HttpResult result;
  asio::io_context ioc;
  tcp::socket socket(ioc);
  beast::error_code ec;
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return result;
  set_timeouts(socket.native_handle());
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, "127.0.0.1");
  request.keep_alive(false);
  http::write(socket, request, ec);
  if (ec) return result;
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(socket, buffer, response, ec);
  if (ec) return result;
  result.status = static_cast<int>(response.result_int());
  result.body = response.body();
  return result;
}

double metric(std::uint16_t port, const std::string& sample) {
  const auto result = http_get(port, "/metrics");
  std::istringstream lines(result.body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() > sample.size() && line.compare(0, sample.size(), sample) == 0 &&
        line[sample.size()] == ' ')
      return std::stod(line.substr(sample.size() + 1));
  }
  return -1;
}

bool wait_metric(std::uint16_t port, const std::string& sample, double value,
                 std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (metric(port, sample) != value) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}

std::string raw_exchange(std::uint16_t port, const std::string& bytes) {
  asio::io_context ioc;
  tcp::socket socket(ioc);
  beast::error_code ec;
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return {};
  set_timeouts(socket.native_handle());
  asio::write(socket, asio::buffer(bytes), ec);
  std::string out;
  char chunk[4096];
  for (;;) {
    const std::size_t n = socket.read_some(asio::buffer(chunk), ec);
    if (ec) break;
    out.append(chunk, n);
  }
  return out;
}

// ---------------------------------------------------------------------------

struct WsClient::Impl {
  asio::io_context ioc;
  std::optional<websocket::stream<beast::tcp_stream>> ws;
  beast::flat_buffer buffer;
  std::deque<std::pair<bool, std::string>> inbox;  // (binary, bytes)
  CloseInfo close_info;
  std::string last_pong;
  std::string error;
  p2pmesh::PeerId id = p2pmesh::kNoPeer;
  int pings = 0;

  template <class Predicate>
  bool run_until(Predicate predicate, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!predicate()) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      if (ioc.stopped()) ioc.restart();  // it stops whenever it runs out of work
      if (ioc.run_one_until(deadline) == 0) {
        ioc.restart();
        return predicate();
      }
    }
    return true;
  }

  void start_read() {
    ws->async_read(buffer, [this](beast::error_code ec, std::size_t) {
      if (ec) {
        close_info.closed = true;
        const auto reason = ws->reason();
        close_info.code = reason.code == websocket::close_code::none
                              ? -1
                              : static_cast<int>(reason.code);
        close_info.reason = std::string(reason.reason.data(), reason.reason.size());
        return;
      }
      inbox.emplace_back(ws->got_binary(), beast::buffers_to_string(buffer.data()));
      buffer.consume(buffer.size());
      start_read();
    });
  }

  void write(const std::string& bytes, bool binary) {
    if (!ws || close_info.closed) return;
    bool done = false;
    ws->binary(binary);
    ws->async_write(asio::buffer(bytes), [&](beast::error_code, std::size_t) { done = true; });
    run_until([&] { return done; }, kTimeout);
  }

  std::optional<wire::ServerMessage> pop() {
    while (!inbox.empty()) {
      auto [binary, bytes] = std::move(inbox.front());
      inbox.pop_front();
      wire::ServerMessage message;
      if (binary && wire::decode(bytes, message) == wire::DecodeError::none) return message;
      message = {};
      message.kind = wire::ServerMessage::Kind::none;
      message.body = "undecodable server message";
      return message;
    }
    return std::nullopt;
  }
};

WsClient::WsClient() : impl_(std::make_unique<Impl>()) {}
WsClient::~WsClient() = default;

bool WsClient::connect(std::uint16_t port, bool expect_welcome, std::size_t recv_buffer) {
  auto& impl = *impl_;
  tcp::socket socket(impl.ioc);
  beast::error_code ec;
  socket.open(tcp::v4(), ec);
  if (recv_buffer > 0)
    socket.set_option(asio::socket_base::receive_buffer_size(static_cast<int>(recv_buffer)), ec);
  bool done = false;
  socket.async_connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port),
                       [&](beast::error_code connect_ec) {
                         ec = connect_ec;
                         done = true;
                       });
  if (!impl.run_until([&] { return done; }, kTimeout) || ec) {
    impl.error = "connect: " + ec.message();
    return false;
  }
  socket.set_option(tcp::no_delay(true), ec);
  impl.ws.emplace(beast::tcp_stream(std::move(socket)));
  impl.ws->control_callback([&impl](websocket::frame_type kind, beast::string_view payload) {
    if (kind == websocket::frame_type::pong) impl.last_pong = std::string(payload);
  });
  websocket::response_type response;
  done = false;
  impl.ws->async_handshake(response, "127.0.0.1:" + std::to_string(port), "/service",
                           [&](beast::error_code handshake_ec) {
                             ec = handshake_ec;
                             done = true;
                           });
  const bool finished = impl.run_until([&] { return done; }, kTimeout);
  if (!finished || ec) {
    impl.error = "handshake: HTTP " + std::to_string(response.result_int()) + ": " +
                 (finished ? ec.message() : std::string("timed out"));
    return false;
  }
  impl.ws->binary(true);
  impl.start_read();
  if (!expect_welcome) return true;
  const auto first = next();
  if (!first || first->kind != wire::ServerMessage::Kind::welcome) {
    impl.error = "first message is not a welcome";
    return false;
  }
  impl.id = first->welcome_id;
  return true;
}

const std::string& WsClient::error() const { return impl_->error; }
p2pmesh::PeerId WsClient::id() const { return impl_->id; }

void WsClient::subscribe(const std::string& name) {
  wire::ClientMessage message;
  message.kind = wire::ClientMessage::Kind::subscribe;
  message.topic = name;
  impl_->write(wire::encode(message), true);
}

void WsClient::unsubscribe(const std::string& name) {
  wire::ClientMessage message;
  message.kind = wire::ClientMessage::Kind::unsubscribe;
  message.topic = name;
  impl_->write(wire::encode(message), true);
}

void WsClient::publish(const std::vector<std::string>& topics, const std::string& payload) {
  wire::ClientMessage message;
  message.kind = wire::ClientMessage::Kind::publish;
  message.topics = topics;
  message.payload = payload;
  impl_->write(wire::encode(message), true);
}

void WsClient::send_binary(const std::string& bytes) { impl_->write(bytes, true); }
void WsClient::send_text(const std::string& text) { impl_->write(text, false); }

bool WsClient::barrier() {
  auto& impl = *impl_;
  if (!impl.ws || impl.close_info.closed) return false;
  const std::string payload = "barrier-" + std::to_string(++impl.pings);
  bool sent = false;
  impl.ws->async_ping(websocket::ping_data(payload.c_str()),
                      [&](beast::error_code) { sent = true; });
  return impl.run_until(
             [&] { return (sent && impl.last_pong == payload) || impl.close_info.closed; },
             kTimeout) &&
         !impl.close_info.closed;
}

std::optional<wire::ServerMessage> WsClient::next(std::chrono::milliseconds timeout) {
  auto& impl = *impl_;
  impl.run_until([&] { return !impl.inbox.empty() || impl.close_info.closed; }, timeout);
  return impl.pop();
}

std::vector<wire::ServerMessage> WsClient::drain() {
  std::vector<wire::ServerMessage> out;
  while (auto message = impl_->pop()) out.push_back(std::move(*message));
  return out;
}

void WsClient::pump(std::chrono::milliseconds duration) {
  impl_->run_until([] { return false; }, duration);
}

CloseInfo WsClient::wait_closed(std::chrono::milliseconds timeout) {
  auto& impl = *impl_;
  impl.run_until([&] { return impl.close_info.closed; }, timeout);
  return impl.close_info;
}

void WsClient::close() {
  auto& impl = *impl_;
  if (!impl.ws || impl.close_info.closed) return;
  // Beast 1.81's async_close can deadlock with a pending async_read
  // (boostorg/beast#1729), so the test client writes its (masked, zero key)
  // close frame 1000 itself; the pending read then completes the handshake.
  const std::string frame("\x88\x82\x00\x00\x00\x00\x03\xe8", 8);
  beast::error_code ignored;
  asio::write(impl.ws->next_layer().socket(), asio::buffer(frame), ignored);
  impl.run_until([&] { return impl.close_info.closed; }, kTimeout);
}

void WsClient::kill() {
  auto& impl = *impl_;
  if (!impl.ws) return;
  beast::error_code ignored;
  auto& socket = impl.ws->next_layer().socket();
  socket.set_option(asio::socket_base::linger(true, 0), ignored);  // RST: the peer "dies"
  socket.close(ignored);
  impl.run_until([&] { return impl.close_info.closed; }, kTimeout);
}

// ---------------------------------------------------------------------------

std::unique_ptr<WsClient> join(std::uint16_t port, const std::string& group) {
  auto client = std::make_unique<WsClient>();
  if (!client->connect(port) || !join(*client, group)) return nullptr;
  return client;
}

bool join(WsClient& client, const std::string& group) {
  for (const char* channel : {"offer", "answer", "candidate", "fallback"})
    client.subscribe(topic(group, client.id(), channel));
  client.subscribe(group + ".mesh");
  return client.barrier();
}

std::string status_update(p2pmesh::PeerId source, std::vector<p2pmesh::PeerId> links,
                          std::uint32_t id) {
  wire::MeshUpdate update;
  update.source = source;
  update.kind = wire::MeshUpdate::Kind::status;
  update.status.connected_to = std::move(links);
  update.status.id = id;
  return wire::encode(update);
}

std::string link_update(p2pmesh::PeerId source, p2pmesh::PeerId peer, bool connected) {
  wire::MeshUpdate update;
  update.source = source;
  update.kind = connected ? wire::MeshUpdate::Kind::connected_to
                          : wire::MeshUpdate::Kind::disconnected_from;
  update.peer = peer;
  return wire::encode(update);
}

wire::MeshUpdate mesh_update(const wire::ServerMessage& message) {
  wire::MeshUpdate update;
  if (wire::decode(message.body, update) != wire::DecodeError::none) update.source = 0;
  return update;
}

std::string topic(const std::string& group, p2pmesh::PeerId peer, const char* channel) {
  return group + "." + std::to_string(peer) + "." + channel;
}

}  // namespace meshd::test
