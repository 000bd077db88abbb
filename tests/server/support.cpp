#include "support.hpp"

#include <cstdio>

#include <signal.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>

#include <gtest/gtest.h>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <future>
#include <sstream>
#include <variant>

#ifndef P2PMESH_TEST_PKI_SCRIPT
#error "P2PMESH_TEST_PKI_SCRIPT must name tests/support/make_test_pki.sh"
#endif

namespace meshd::test {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
namespace wire = p2pmesh::wire;

TestPki::TestPki() {
  static std::atomic<int> count{0};
  dir_ = (std::filesystem::temp_directory_path() /
          ("meshd-test-pki-" + std::to_string(getpid()) + "-" + std::to_string(++count)))
             .string();
  const std::string command =
      std::string(P2PMESH_TEST_PKI_SCRIPT) + " '" + dir_ + "' localhost 127.0.0.1";
  ok_ = std::system(command.c_str()) == 0 && std::filesystem::exists(key());
}

TestPki::~TestPki() {
  std::error_code ignored;
  std::filesystem::remove_all(dir_, ignored);
}

const TestPki* env_tls_pki() {
  static const std::unique_ptr<TestPki> pki =
      std::getenv("MESHD_TEST_TLS") ? std::make_unique<TestPki>() : nullptr;
  return pki.get();
}

namespace {
const TlsClient* env_tls_client() {
  static const std::optional<TlsClient> client =
      env_tls_pki() ? std::optional<TlsClient>(env_tls_pki()->client()) : std::nullopt;
  return client ? &*client : nullptr;
}
}  // namespace

std::string write_file(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::FILE* file = std::fopen(path.c_str(), "w");
  if (!file) return "";
  const bool written = std::fputs(text.c_str(), file) >= 0;
  return std::fclose(file) == 0 && written ? path : "";
}

std::string make_token(jwt_alg_t alg, const std::string& key, const std::string& claims_json) {
  jwt_t* jwt = nullptr;
  EXPECT_EQ(jwt_new(&jwt), 0);
  EXPECT_EQ(jwt_add_grants_json(jwt, claims_json.c_str()), 0) << claims_json;
  EXPECT_EQ(jwt_set_alg(jwt, alg, alg == JWT_ALG_NONE ? nullptr : reinterpret_cast<const unsigned char*>(key.data()),
                        alg == JWT_ALG_NONE ? 0 : static_cast<int>(key.size())),
            0);
  char* text = jwt_encode_str(jwt);
  std::string token = text ? text : "";
  std::free(text);
  jwt_free(jwt);
  return token;
}

Config test_config() {
  Config config;
  config.host = "127.0.0.1";
  config.port = 0;
  // ctest runs every server test a second time with MESHD_TEST_THREADS=2.
  if (const char* threads = std::getenv("MESHD_TEST_THREADS"))
    config.threads = static_cast<std::size_t>(std::max(1, std::atoi(threads)));
  // ... and some of them over TLS, with MESHD_TEST_TLS.
  if (const TestPki* pki = env_tls_pki()) {
    config.tls_cert = pki->cert();
    config.tls_key = pki->key();
  }
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

MeshdProgram::MeshdProgram(const std::string& binary, std::vector<std::string> args,
                           bool capture_stderr) {
  static std::atomic<int> count{0};
  if (capture_stderr)
    stderr_file_ = (std::filesystem::temp_directory_path() /
                    ("meshd-stderr-" + std::to_string(getpid()) + "-" + std::to_string(++count)))
                       .string();
  int fds[2];
  if (pipe(fds) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    if (!stderr_file_.empty() && !std::freopen(stderr_file_.c_str(), "w", stderr)) _exit(126);
    std::vector<char*> argv;
    std::string program = binary;
    argv.push_back(program.data());
    for (auto& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(program.c_str(), argv.data());
    _exit(127);
  }
  close(fds[1]);
  out_ = fdopen(fds[0], "r");
}

MeshdProgram::~MeshdProgram() {
  if (pid_ > 0 && !reaped_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (out_) std::fclose(out_);
  if (!stderr_file_.empty()) std::remove(stderr_file_.c_str());
}

std::string MeshdProgram::first_line() {
  char line[512] = {};
  if (!out_ || !std::fgets(line, sizeof line, out_)) return {};
  return line;
}

std::string MeshdProgram::all_output() {
  std::string text;
  char chunk[512];
  while (out_ && std::fgets(chunk, sizeof chunk, out_)) text += chunk;
  return text;
}

void MeshdProgram::signal(int number) { kill(pid_, number); }

int MeshdProgram::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t done = waitpid(pid_, &status, WNOHANG);
    if (done == pid_) break;
    if (done < 0) return -2;
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      reaped_ = true;
      return -2;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  reaped_ = true;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string MeshdProgram::error_output() const {
  std::ifstream in(stderr_file_);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

std::uint16_t port_from(const std::string& line) {
  const auto colon = line.rfind(':');
  if (line.rfind("meshd listening on 127.0.0.1:", 0) != 0 || colon == std::string::npos) return 0;
  return static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
}

// ---------------------------------------------------------------------------

namespace {
void set_timeouts(int fd) {
  timeval tv{};
  tv.tv_sec = 5;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

// The client side of TLS: the chain must lead to tls.ca_file (and the name
// to tls.host, name_server).
asio::ssl::context& trust(asio::ssl::context& context, const TlsClient& tls) {
  beast::error_code ignored;
  context.set_verify_mode(asio::ssl::verify_peer);
  context.load_verify_file(tls.ca_file, ignored);
  return context;
}

void name_server(SSL* ssl, const std::string& host) {
  beast::error_code ec;
  asio::ip::make_address(host, ec);
  if (!ec) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
    return;
  }
  SSL_set_tlsext_host_name(ssl, host.c_str());
  SSL_set1_host(ssl, host.c_str());
}

// A TLS connection to 127.0.0.1:port (blocking calls); null when the
// connection or the handshake fails.
struct TlsConnection {
  asio::ssl::context context{asio::ssl::context::tls_client};
  beast::ssl_stream<tcp::socket> stream;
  TlsConnection(asio::io_context& ioc, const TlsClient& tls) : stream(ioc, trust(context, tls)) {}
};

std::unique_ptr<TlsConnection> tls_connect(asio::io_context& ioc, std::uint16_t port,
                                           const TlsClient& tls) {
  auto connection = std::make_unique<TlsConnection>(ioc, tls);
  auto& socket = connection->stream.next_layer();
  beast::error_code ec;
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return nullptr;
  set_timeouts(socket.native_handle());
  name_server(connection->stream.native_handle(), tls.host);
  connection->stream.handshake(asio::ssl::stream_base::client, ec);
  if (ec) return nullptr;
  return connection;
}

template <class Stream>
HttpResult get_on(Stream& stream, const std::string& target) {
  HttpResult result;
  beast::error_code ec;
  http::request<http::empty_body> request{http::verb::get, target, 11};
  request.set(http::field::host, "127.0.0.1");
  request.keep_alive(false);
  http::write(stream, request, ec);
  if (ec) return result;
  beast::flat_buffer buffer;
  http::response<http::string_body> response;
  http::read(stream, buffer, response, ec);
  if (ec) return result;
  result.status = static_cast<int>(response.result_int());
  result.body = response.body();
  return result;
}

template <class Stream>
std::string exchange_on(Stream& stream, const std::string& bytes) {
  beast::error_code ec;
  asio::write(stream, asio::buffer(bytes), ec);
  std::string out;
  char chunk[4096];
  for (;;) {
    const std::size_t n = stream.read_some(asio::buffer(chunk), ec);
    if (ec) break;
    out.append(chunk, n);
  }
  return out;
}

double sample_of(const std::string& metrics, const std::string& sample) {
  std::istringstream lines(metrics);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.size() > sample.size() && line.compare(0, sample.size(), sample) == 0 &&
        line[sample.size()] == ' ')
      return std::stod(line.substr(sample.size() + 1));
  }
  return -1;
}
}  // namespace

HttpResult http_get(std::uint16_t port, const std::string& target) {
  if (const TlsClient* tls = env_tls_client()) return https_get(port, target, *tls);
  asio::io_context ioc;
  tcp::socket socket(ioc);
  beast::error_code ec;
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return {};
  set_timeouts(socket.native_handle());
  return get_on(socket, target);
}

HttpResult https_get(std::uint16_t port, const std::string& target, const TlsClient& tls) {
  asio::io_context ioc;
  const auto connection = tls_connect(ioc, port, tls);
  return connection ? get_on(connection->stream, target) : HttpResult{};
}

double metric(std::uint16_t port, const std::string& sample) {
  return sample_of(http_get(port, "/metrics").body, sample);
}

double metric(std::uint16_t port, const std::string& sample, const TlsClient& tls) {
  return sample_of(https_get(port, "/metrics", tls).body, sample);
}

namespace {
template <class Read>
bool wait_for_value(Read read, double value, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (read() != value) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return true;
}
}  // namespace

bool wait_metric(std::uint16_t port, const std::string& sample, double value,
                 std::chrono::milliseconds timeout) {
  return wait_for_value([&] { return metric(port, sample); }, value, timeout);
}

bool wait_metric(std::uint16_t port, const std::string& sample, double value,
                 const TlsClient& tls, std::chrono::milliseconds timeout) {
  return wait_for_value([&] { return metric(port, sample, tls); }, value, timeout);
}

int connect_tcp(std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) {
    ::close(fd);
    return -1;
  }
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  return fd;
}

int connect_from(const char* from, std::uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  inet_pton(AF_INET, from, &local.sin_addr);
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_port = htons(port);
  remote.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof remote) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

std::size_t raise_fd_limit(std::size_t at_least) {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  if (limit.rlim_max < at_least) {
    rlimit raised{at_least, at_least};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return at_least;  // root
  }
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

std::string raw_exchange(std::uint16_t port, const std::string& bytes) {
  asio::io_context ioc;
  if (const TlsClient* tls = env_tls_client()) {
    const auto connection = tls_connect(ioc, port, *tls);
    return connection ? exchange_on(connection->stream, bytes) : std::string();
  }
  tcp::socket socket(ioc);
  beast::error_code ec;
  socket.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port), ec);
  if (ec) return {};
  set_timeouts(socket.native_handle());
  return exchange_on(socket, bytes);
}

// ---------------------------------------------------------------------------

struct WsClient::Impl {
  asio::io_context ioc;
  std::string target = "/service";
  std::string authorization;
  using PlainWs = websocket::stream<beast::tcp_stream>;
  using TlsWs = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;
  std::optional<asio::ssl::context> tls;  // outlives the stream
  std::variant<std::monostate, PlainWs, TlsWs> ws;
  bool connected() const { return ws.index() != 0; }
  // f(stream) on the WebSocket stream, plain or TLS, once connected.
  template <class F>
  void with_ws(F&& f) {
    std::visit(
        [&f](auto& stream) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(stream)>, std::monostate>) f(stream);
        },
        ws);
  }
  beast::flat_buffer buffer;
  std::deque<std::pair<bool, std::string>> inbox;  // (binary, bytes)
  CloseInfo close_info;
  std::string last_pong;
  bool writing = false;  // an async_write is pending
  std::string error;
  std::string last_bytes;  // of the last message popped
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
    with_ws([this](auto& stream) {
      stream.async_read(buffer, [this, &stream](beast::error_code ec, std::size_t) {
        if (ec) {
          close_info.closed = true;
          const auto reason = stream.reason();
          close_info.code = reason.code == websocket::close_code::none
                                ? -1
                                : static_cast<int>(reason.code);
          close_info.reason = std::string(reason.reason.data(), reason.reason.size());
          return;
        }
        inbox.emplace_back(stream.got_binary(), beast::buffers_to_string(buffer.data()));
        buffer.consume(buffer.size());
        start_read();
      });
    });
  }

  // Waits (kTimeout at most) for the write to be taken by the kernel. A
  // write still pending then (the server does not read) stays pending, with
  // its own copy of the bytes; the next write waits for it first, and is
  // dropped if it still cannot start: Beast allows one write at a time.
  void write(const std::string& bytes, bool binary) {
    if (!connected() || close_info.closed) return;
    if (writing && !run_until([&] { return !writing; }, kTimeout)) return;
    writing = true;
    auto copy = std::make_shared<std::string>(bytes);
    with_ws([&](auto& stream) {
      stream.binary(binary);
      stream.async_write(asio::buffer(*copy),
                         [this, copy](beast::error_code, std::size_t) { writing = false; });
    });
    run_until([&] { return !writing; }, kTimeout);
  }

  std::optional<wire::ServerMessage> pop() {
    while (!inbox.empty()) {
      auto [binary, bytes] = std::move(inbox.front());
      inbox.pop_front();
      last_bytes = bytes;
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
  return open(port, expect_welcome, recv_buffer, env_tls_client());
}

bool WsClient::connect_tls(std::uint16_t port, const TlsClient& tls, bool expect_welcome) {
  return open(port, expect_welcome, 0, &tls);
}

bool WsClient::open(std::uint16_t port, bool expect_welcome, std::size_t recv_buffer,
                    const TlsClient* tls) {
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
  if (tls) {
    auto& stream = impl.ws.emplace<Impl::TlsWs>(beast::tcp_stream(std::move(socket)),
                                                 trust(impl.tls.emplace(asio::ssl::context::tls_client), *tls));
    name_server(stream.next_layer().native_handle(), tls->host);
    done = false;
    stream.next_layer().async_handshake(asio::ssl::stream_base::client,
                                        [&](beast::error_code tls_ec) {
                                          ec = tls_ec;
                                          done = true;
                                        });
    if (!impl.run_until([&] { return done; }, kTimeout) || ec) {
      impl.error = "tls: " + (done ? ec.message() : std::string("timed out"));
      return false;
    }
  } else {
    impl.ws.emplace<Impl::PlainWs>(beast::tcp_stream(std::move(socket)));
  }
  websocket::response_type response;
  done = false;
  impl.with_ws([&](auto& stream) {
    stream.control_callback([&impl](websocket::frame_type kind, beast::string_view payload) {
      if (kind == websocket::frame_type::pong) impl.last_pong = std::string(payload);
    });
    if (!impl.authorization.empty())
      stream.set_option(websocket::stream_base::decorator(
          [value = impl.authorization](websocket::request_type& request) {
            request.set(beast::http::field::authorization, value);
          }));
    stream.async_handshake(response, "127.0.0.1:" + std::to_string(port), impl.target,
                           [&](beast::error_code handshake_ec) {
                             ec = handshake_ec;
                             done = true;
                           });
  });
  const bool finished = impl.run_until([&] { return done; }, kTimeout);
  if (!finished || ec) {
    impl.error = "handshake: HTTP " + std::to_string(response.result_int()) + ": " +
                 (finished ? ec.message() : std::string("timed out"));
    return false;
  }
  impl.with_ws([](auto& stream) { stream.binary(true); });
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

void WsClient::set_request(std::string target, std::string authorization) {
  impl_->target = std::move(target);
  impl_->authorization = std::move(authorization);
}

const std::string& WsClient::error() const { return impl_->error; }
p2pmesh::PeerId WsClient::id() const { return impl_->id; }
const std::string& WsClient::last_bytes() const { return impl_->last_bytes; }

void WsClient::subscribe(const std::string& name, std::uint32_t batch_ms) {
  wire::ClientMessage message;
  message.kind = wire::ClientMessage::Kind::subscribe;
  message.topic = name;
  message.batch_ms = batch_ms;
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
  if (!impl.connected() || impl.close_info.closed) return false;
  const std::string payload = "barrier-" + std::to_string(++impl.pings);
  bool sent = false;
  impl.with_ws([&](auto& stream) {
    stream.async_ping(websocket::ping_data(payload.c_str()),
                      [&](beast::error_code) { sent = true; });
  });
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

bool WsClient::closed() const { return impl_->close_info.closed; }

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
  if (!impl.connected() || impl.close_info.closed) return;
  // Beast 1.81's async_close can deadlock with a pending async_read
  // (boostorg/beast#1729), so the test client writes its (masked, zero key)
  // close frame 1000 itself, under the WebSocket layer (in TLS if any); the
  // pending read then completes the handshake.
  static const std::string frame("\x88\x82\x00\x00\x00\x00\x03\xe8", 8);
  impl.with_ws([](auto& stream) {
    asio::async_write(stream.next_layer(), asio::buffer(frame),
                      [](beast::error_code, std::size_t) {});
  });
  impl.run_until([&] { return impl.close_info.closed; }, kTimeout);
}

void WsClient::kill() {
  auto& impl = *impl_;
  if (!impl.connected()) return;
  impl.with_ws([](auto& stream) {
    beast::error_code ignored;
    auto& socket = beast::get_lowest_layer(stream).socket();
    socket.set_option(asio::socket_base::linger(true, 0), ignored);  // RST: the peer "dies"
    socket.close(ignored);
  });
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
