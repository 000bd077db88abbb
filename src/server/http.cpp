// HttpSession: HTTP on meshd's port (https with --tls-cert): /healthz,
// /metrics, static files from the web root, and the WebSocket upgrade on
// /service.

#include <spdlog/spdlog.h>

#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>

#include <filesystem>
#include <optional>
#include <string>

#include "internal.hpp"
#include "topics.hpp"
#include "ws_handshake.hpp"

namespace meshd {

namespace fs = std::filesystem;

namespace {

constexpr std::size_t kHeaderLimit = 8 * 1024;
constexpr std::size_t kBodyLimit = 8 * 1024;

std::string_view path_of(std::string_view target) {
  const auto end = target.find_first_of("?#");
  return end == std::string_view::npos ? target : target.substr(0, end);
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decodes a URL path; nullopt on a bad escape or a NUL byte.
std::optional<std::string> url_decode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = hex_value(in[i + 1]);
      const int lo = hex_value(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      c = static_cast<char>(hi * 16 + lo);
      i += 2;
    }
    if (c == '\0') return std::nullopt;
    out.push_back(c);
  }
  return out;
}

const char* mime_type(const fs::path& path) {
  const std::string ext = path.extension().string();
  if (ext == ".html" || ext == ".htm") return "text/html; charset=utf-8";
  if (ext == ".js" || ext == ".mjs") return "text/javascript; charset=utf-8";
  if (ext == ".css") return "text/css; charset=utf-8";
  if (ext == ".json" || ext == ".map") return "application/json";
  if (ext == ".wasm") return "application/wasm";
  if (ext == ".svg") return "image/svg+xml";
  if (ext == ".png") return "image/png";
  if (ext == ".ico") return "image/x-icon";
  if (ext == ".txt") return "text/plain; charset=utf-8";
  return "application/octet-stream";
}

enum class Resolve { ok, not_found, forbidden, bad_request };

// Maps a request path to a regular file under root. Refuses "..", escapes
// through symlinks, and anything that is not a regular file.
Resolve resolve_static(const std::string& root, std::string_view target, fs::path& out) {
  if (root.empty()) return Resolve::not_found;
  const auto decoded = url_decode(path_of(target));
  if (!decoded || decoded->empty() || (*decoded)[0] != '/') return Resolve::bad_request;
  fs::path relative;
  std::string_view rest(*decoded);
  while (!rest.empty()) {
    const auto slash = rest.find('/');
    const auto segment = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash + 1);
    if (segment.empty() || segment == ".") continue;
    if (segment == ".." || segment.find('\\') != std::string_view::npos)
      return Resolve::forbidden;
    relative /= fs::path(std::string(segment));
  }
  std::error_code ec;
  const fs::path base = fs::canonical(root, ec);
  if (ec) return Resolve::not_found;
  fs::path candidate = base / relative;
  if (fs::is_directory(candidate, ec)) candidate /= "index.html";
  const fs::path real = fs::canonical(candidate, ec);
  if (ec) return Resolve::not_found;
  // Must stay inside the root even through symlinks.
  const auto mismatch = std::mismatch(base.begin(), base.end(), real.begin(), real.end());
  if (mismatch.first != base.end()) return Resolve::forbidden;
  if (!fs::is_regular_file(real, ec)) return Resolve::not_found;
  out = real;
  return Resolve::ok;
}

// What a plain-HTTP (or ws://) client gets on the TLS port.
const std::string& plaintext_answer() {
  static const std::string answer = [] {
    const std::string body = "meshd speaks TLS on this port: use https:// or wss://\n";
    return "HTTP/1.1 400 Bad Request\r\nServer: meshd\r\n"
           "Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
           "Content-Length: " +
           std::to_string(body.size()) + "\r\n\r\n" + body;
  }();
  return answer;
}

}  // namespace

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(EventLoop& loop, Transport&& transport, AddressLimits::Slot&& slot)
      : loop_(loop),
        server_(loop.server),
        transport_(std::move(transport)),
        deadline_(loop.ioc),
        slot_(std::move(slot)) {
    loop_.register_http(*this);
  }
  ~HttpSession() { loop_.unregister_http(*this); }
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  void start() {
    if (!transport_.tls()) {
      do_read();
      return;
    }
    arm_deadline();
    transport_.async_handshake([self = shared_from_this()](beast::error_code ec) {
      self->on_handshake(ec);
    });
  }

  void close() {
    closed_ = true;
    deadline_.cancel();
    beast::error_code ignored;
    auto& socket = transport_.next_layer();
    socket.shutdown(tcp::socket::shutdown_both, ignored);
    socket.close(ignored);
  }

 private:
  // Each handshake, request and response has --handshake-timeout; when it
  // passes, the connection is closed.
  void arm_deadline() {
    since_ = std::chrono::steady_clock::now();
    deadline_.expires_after(server_.config.handshake_timeout);
    deadline_.async_wait([weak = weak_from_this()](beast::error_code ec) {
      if (ec) return;
      if (auto self = weak.lock()) {
        self->loop_.metrics.drop(Drop::handshake_timeout);
        self->close();
      }
    });
  }

 public:
  // Since when it waits for a handshake or request; max() once closed.
  std::chrono::steady_clock::time_point waiting_since() const {
    return closed_ ? std::chrono::steady_clock::time_point::max() : since_;
  }

 private:

  void on_handshake(beast::error_code ec) {
    if (!ec) {
      do_read();
      return;
    }
    if (!server_.stopping()) loop_.metrics.tls_handshake_failures.add();
    spdlog::debug("TLS handshake failed: {}", ec.message());
    if (Transport::is_plaintext_http(ec)) {
      reject_plaintext();
      return;
    }
    close();
  }

  // A plain HTTP client: a plain-text 400 that says why, then a lingering
  // close (its request is read and dropped until its EOF or the deadline, so
  // that a reset does not destroy the answer before the client reads it).
  void reject_plaintext() {
    auto& socket = transport_.next_layer();
    beast::error_code ignored;
    socket.send(asio::buffer(plaintext_answer()), 0, ignored);  // non-blocking, small
    socket.shutdown(tcp::socket::shutdown_send, ignored);
    linger();
  }

  void linger() {
    transport_.next_layer().async_read_some(
        buffer_.prepare(1024), [self = shared_from_this()](beast::error_code ec, std::size_t) {
          if (!ec) self->linger();
        });
  }

  void do_read() {
    parser_.emplace();
    parser_->header_limit(kHeaderLimit);
    parser_->body_limit(kBodyLimit);
    arm_deadline();
    http::async_read(transport_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec) return;  // closed, timed out or malformed: the session ends
    auto& request = parser_->get();
    const auto path = path_of(request.target());
    if (path == "/service") {
      // With --auth-key, a plain GET tells a client why its token was
      // refused (a browser cannot read the 401 of a WebSocket upgrade).
      std::shared_ptr<const Grant> grant;
      if (server_.auth && !authorize(request, grant)) return;
      if (websocket::is_upgrade(request)) {
        upgrade(std::move(grant));
      } else {
        respond_text(request, http::status::upgrade_required,
                     server_.auth ? "token accepted; WebSocket endpoint: connect with a WebSocket client\n"
                                  : "WebSocket endpoint: connect with a WebSocket client\n");
      }
      return;
    }
    loop_.metrics.http_requests.add();
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      respond_text(request, http::status::method_not_allowed, "method not allowed\n");
      return;
    }
    if (path == "/healthz") {
      // "ok", "tls: on" with TLS, then the ICE servers handed out, if any (URLs only).
      // With --nats: "cluster: node N, nats connected|disconnected".
      std::string cluster;
      if (server_.cluster)
        cluster = "cluster: node " + std::to_string(server_.cluster->node()) +
                  (server_.cluster->connected() ? ", nats connected\n" : ", nats disconnected\n");
      respond_text(request, http::status::ok,
                   (transport_.tls() ? "ok\ntls: on\n" : "ok\n") + cluster + server_.ice.describe());
      return;
    }
    if (path == "/metrics") {
      respond_text(request, http::status::ok, server_.metrics.render(),
                   "text/plain; version=0.0.4; charset=utf-8");
      return;
    }
    if (path == "/groups") {
      // The groups and their member counts, for the dashboard:
      // [{"group":"default","members":12},...]
      std::string body = "[";
      if (server_.metrics.list_groups) {
        for (const auto& [name, members] : server_.metrics.list_groups()) {
          if (body.size() > 1) body += ',';
          // Group names are [A-Za-z0-9_-]: nothing to escape.
          body += "{\"group\":\"" + name + "\",\"members\":" + std::to_string(members) + "}";
        }
      }
      body += "]\n";
      respond_text(request, http::status::ok, std::move(body), "application/json");
      return;
    }
    if (path.rfind("/groups/", 0) == 0) {
      members(request, path.substr(8));
      return;
    }
    serve_file(request);
  }

  // GET /groups/<group>: its members, [{"id":5,"sub":"alice"},{"id":9}] (sub:
  // the token's, when it has one). With --auth-key only for a token that
  // allows the group: who is in a group is for those who may join it.
  void members(const http::request<http::string_body>& request, std::string_view group) {
    if (!p2pmesh::valid_group_name(group)) {
      respond_text(request, http::status::not_found, "not found\n");
      return;
    }
    if (server_.auth) {
      std::shared_ptr<const Grant> grant;
      if (!authorize(request, grant)) return;
      if (!grant->allows_group(group)) {
        respond_text(request, http::status::forbidden, "token does not allow this group\n");
        return;
      }
    }
    std::string body = "[";
    if (server_.metrics.list_members) {
      for (const auto& [id, subject] : server_.metrics.list_members(group)) {
        if (body.size() > 1) body += ',';
        body += "{\"id\":" + std::to_string(id);
        if (!subject.empty()) body += ",\"sub\":" + boost::json::serialize(boost::json::string(subject));
        body += '}';
      }
    }
    body += "]\n";
    respond_text(request, http::status::ok, std::move(body), "application/json");
  }

  // --auth-key: the request's token verified, or a 401 sent (and counted).
  bool authorize(const http::request<http::string_body>& request,
                 std::shared_ptr<const Grant>& grant) {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    auto result = server_.auth->verify(
        token_of_request(request.target(), request[http::field::authorization]), now);
    if (auto* accepted = std::get_if<Grant>(&result)) {
      grant = std::make_shared<const Grant>(std::move(*accepted));
      return true;
    }
    const AuthFailure failure = std::get<AuthFailure>(result);
    loop_.metrics.auth_failures[static_cast<std::size_t>(failure)].add();
    spdlog::debug("upgrade refused: token {}", to_string(failure));
    http::response<http::string_body> response{http::status::unauthorized, request.version()};
    response.set(http::field::server, "meshd");
    response.set(http::field::content_type, "text/plain; charset=utf-8");
    response.set(http::field::www_authenticate,
                 failure == AuthFailure::missing
                     ? std::string("Bearer realm=\"meshd\"")
                     : std::string("Bearer realm=\"meshd\", error=\"invalid_token\", "
                                   "error_description=\"") + to_string(failure) + "\"");
    // Readable by a page of any origin: the reason, nothing else.
    response.set(http::field::access_control_allow_origin, "*");
    response.keep_alive(false);
    response.body() = std::string("token ") + to_string(failure) + "\n";
    response.prepare_payload();
    send(std::move(response));
    return false;
  }

  void upgrade(std::shared_ptr<const Grant> grant) {
    auto& request = parser_->get();
    const bool full = server_.session_count() >= server_.config.max_connections;
    if (server_.stopping() || full) {
      if (full) {
        loop_.metrics.drop(Drop::max_connections);
        spdlog::info("connection refused: {} connections (--max-connections)",
                     server_.session_count());
      }
      request.keep_alive(false);
      respond_text(request, http::status::service_unavailable,
                   server_.stopping() ? "server shutting down\n" : "too many connections\n");
      return;
    }
    const ws::UpgradeCheck check = ws::check_upgrade(request);
    if (!check.ok()) {
      spdlog::debug("upgrade refused: {}", check.reason);
      http::response<http::string_body> response{check.status, request.version()};
      response.set(http::field::server, "meshd");
      response.set(http::field::content_type, "text/plain; charset=utf-8");
      if (check.status == http::status::upgrade_required)
        response.set(http::field::sec_websocket_version, "13");
      response.keep_alive(false);
      response.body() = std::string(check.reason) + "\n";
      response.prepare_payload();
      send(std::move(response));
      return;
    }
    deadline_.cancel();
    auto session = std::make_shared<WsSession>(loop_, std::move(transport_),
                                               server_.allocate_id());
    session->set_grant(std::move(grant));
    slot_.upgraded();
    session->set_address_slot(std::move(slot_));
    // Frames the client sent right after its request, read with it.
    const auto early = buffer_.cdata();
    std::string early_input(static_cast<const char*>(early.data()), early.size());
    buffer_.consume(buffer_.size());
    session->start(request, std::move(early_input));
  }

  void serve_file(const http::request<http::string_body>& request) {
    fs::path file;
    switch (resolve_static(server_.config.web_root, request.target(), file)) {
      case Resolve::ok:
        break;
      case Resolve::forbidden:
        respond_text(request, http::status::forbidden, "forbidden\n");
        return;
      case Resolve::bad_request:
        respond_text(request, http::status::bad_request, "bad request\n");
        return;
      case Resolve::not_found:
        respond_text(request, http::status::not_found, "not found\n");
        return;
    }
    http::file_body::value_type body;
    beast::error_code ec;
    body.open(file.c_str(), beast::file_mode::scan, ec);
    if (ec) {
      respond_text(request, http::status::not_found, "not found\n");
      return;
    }
    const auto size = body.size();
    if (request.method() == http::verb::head) {
      http::response<http::empty_body> response{http::status::ok, request.version()};
      response.set(http::field::server, "meshd");
      response.set(http::field::content_type, mime_type(file));
      response.content_length(size);
      response.keep_alive(request.keep_alive());
      send(std::move(response));
      return;
    }
    http::response<http::file_body> response{std::piecewise_construct,
                                             std::make_tuple(std::move(body)),
                                             std::make_tuple(http::status::ok, request.version())};
    response.set(http::field::server, "meshd");
    response.set(http::field::content_type, mime_type(file));
    response.set(http::field::cache_control, "no-cache");
    response.content_length(size);
    response.keep_alive(request.keep_alive());
    send(std::move(response));
  }

  void respond_text(const http::request<http::string_body>& request, http::status status,
                    std::string body, const char* type = "text/plain; charset=utf-8") {
    http::response<http::string_body> response{status, request.version()};
    response.set(http::field::server, "meshd");
    response.set(http::field::content_type, type);
    response.keep_alive(request.keep_alive());
    if (request.method() == http::verb::head) {
      response.content_length(body.size());
    } else {
      response.body() = std::move(body);
      response.prepare_payload();
    }
    send(std::move(response));
  }

  template <class Body>
  void send(http::response<Body>&& response) {
    auto message = std::make_shared<http::response<Body>>(std::move(response));
    arm_deadline();
    http::async_write(transport_, *message,
                      [self = shared_from_this(), message](beast::error_code ec, std::size_t) {
                        if (ec) return;
                        if (message->need_eof() || self->server_.stopping()) {
                          self->transport_.shutdown_send();
                          return;
                        }
                        self->do_read();
                      });
  }

  EventLoop& loop_;
  ServerImpl& server_;
  Transport transport_;
  asio::steady_timer deadline_;
  std::chrono::steady_clock::time_point since_ = std::chrono::steady_clock::now();
  bool closed_ = false;
  AddressLimits::Slot slot_;  // this address's counts (--max-*-per-ip); to the WsSession
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
};

void start_http_session(EventLoop& loop, Socket&& socket, SSL_CTX* tls,
                        AddressLimits::Slot&& slot) {
  if (!tls) {
    std::make_shared<HttpSession>(loop, Transport(std::move(socket)), std::move(slot))->start();
    return;
  }
  try {
    std::make_shared<HttpSession>(loop, Transport(std::move(socket), *tls), std::move(slot))
        ->start();
  } catch (const std::exception& e) {
    loop.metrics.tls_handshake_failures.add();
    spdlog::warn("{}", e.what());
  }
}

void close_http_session(HttpSession& session) { session.close(); }

std::chrono::steady_clock::time_point http_session_waiting_since(const HttpSession& session) {
  return session.waiting_since();
}

}  // namespace meshd
