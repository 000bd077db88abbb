// ServerImpl: listener, session registry, batched flushes, graceful stop.

#include "server.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <stdexcept>

#include "internal.hpp"

namespace meshd {

ServerImpl::ServerImpl(Config cfg)
    : config(std::move(cfg)), broker(config, metrics, frames) {}

ServerImpl::~ServerImpl() {
  destroying_ = true;
  dirty_.clear();
  flushing_.clear();
}

std::uint16_t ServerImpl::listen() {
  beast::error_code ec;
  const auto address = asio::ip::make_address(config.host, ec);
  if (ec) throw std::runtime_error("invalid --host '" + config.host + "': " + ec.message());
  const tcp::endpoint endpoint(address, config.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen on " + config.host + ":" +
                             std::to_string(config.port) + ": " + ec.message());
  bound_port = acceptor_.local_endpoint().port();
  if (config.handle_signals) {
    signals_.emplace(ioc, SIGINT, SIGTERM);
    wait_signal();
  }
  do_accept();
  return bound_port;
}

void ServerImpl::wait_signal() {
  signals_->async_wait([this](beast::error_code ec, int signal) {
    if (ec) return;
    if (!stopping_) {
      spdlog::info("signal {}: shutting down", signal);
      begin_shutdown();
      if (!finished_) wait_signal();  // a second signal forces the close
    } else {
      spdlog::info("signal {} again: closing now", signal);
      force_close();
    }
  });
}

void ServerImpl::run() { ioc.run(); }

void ServerImpl::stop() {
  asio::post(ioc, [this] { begin_shutdown(); });
}

void ServerImpl::do_accept() {
  acceptor_.async_accept(ioc, [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || stopping_) return;
    if (ec) {
      // EMFILE and friends: back off instead of spinning.
      spdlog::warn("accept: {}", ec.message());
      accept_retry_.expires_after(std::chrono::milliseconds(100));
      accept_retry_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec && !stopping_) do_accept();
      });
      return;
    }
    if (http_sessions_.size() >= config.max_http_connections) {
      metrics.drop(Drop::max_connections);
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      start_http_session(*this, std::move(socket));
    }
    do_accept();
  });
}

PeerId ServerImpl::allocate_id() {
  const PeerId id = next_id_++;
  if (next_id_ == p2pmesh::kNoPeer) next_id_ = 1;
  return id;
}

void ServerImpl::register_session(WsSession& session) {
  session.registry_index = sessions_.size();
  sessions_.push_back(&session);
  metrics.connections = sessions_.size();
}

void ServerImpl::unregister_session(WsSession& session) {
  const std::size_t index = session.registry_index;
  if (index >= sessions_.size() || sessions_[index] != &session) return;
  sessions_[index] = sessions_.back();
  sessions_[index]->registry_index = index;
  sessions_.pop_back();
  metrics.connections = sessions_.size();
  if (!destroying_) maybe_finish_shutdown();
}

void ServerImpl::register_http(HttpSession& session) { http_sessions_.push_back(&session); }

void ServerImpl::unregister_http(HttpSession& session) {
  const auto it = std::find(http_sessions_.begin(), http_sessions_.end(), &session);
  if (it != http_sessions_.end()) {
    *it = http_sessions_.back();
    http_sessions_.pop_back();
  }
  if (!destroying_) maybe_finish_shutdown();
}

void ServerImpl::mark_dirty(WsSession& session) {
  if (session.dirty) return;
  session.dirty = true;
  dirty_.push_back(session.shared_from_this());
}

void ServerImpl::request_flush() {
  if (flush_posted_ || dirty_.empty()) return;
  flush_posted_ = true;
  asio::post(ioc, [this] { flush_dirty(); });
}

void ServerImpl::flush_dirty() {
  flush_posted_ = false;
  flushing_.swap(dirty_);
  for (auto& session : flushing_) {
    session->dirty = false;
    session->flush();
  }
  flushing_.clear();
}

// Defined in http.cpp.
void close_http_session(HttpSession& session);

void ServerImpl::begin_shutdown() {
  if (stopping_) return;
  stopping_ = true;
  spdlog::info("shutting down: {} connections", sessions_.size());
  beast::error_code ignored;
  acceptor_.close(ignored);
  accept_retry_.cancel();
  // Copies: closing may unregister.
  const auto sessions = sessions_;
  for (WsSession* session : sessions) session->close(websocket::close_code::going_away, "server shutdown");
  const auto http_sessions = http_sessions_;
  for (HttpSession* session : http_sessions) close_http_session(*session);
  request_flush();
  shutdown_timer_.expires_after(config.shutdown_timeout);
  shutdown_timer_.async_wait([this](beast::error_code ec) {
    if (ec) return;
    spdlog::warn("shutdown deadline: closing {} connections", sessions_.size());
    force_close();
  });
  maybe_finish_shutdown();
}

void ServerImpl::force_close() {
  const auto sessions = sessions_;
  for (WsSession* session : sessions) session->abort();
  const auto http_sessions = http_sessions_;
  for (HttpSession* session : http_sessions) close_http_session(*session);
}

void ServerImpl::maybe_finish_shutdown() {
  if (!stopping_ || finished_ || !sessions_.empty() || !http_sessions_.empty()) return;
  finished_ = true;
  shutdown_timer_.cancel();
  if (signals_) {
    beast::error_code ignored;
    signals_->cancel(ignored);
  }
  spdlog::info("shutdown complete");
}

// ---------------------------------------------------------------------------

Server::Server(Config config) : impl_(std::make_unique<ServerImpl>(std::move(config))) {}
Server::~Server() = default;
std::uint16_t Server::listen() { return impl_->listen(); }
std::uint16_t Server::port() const { return impl_->bound_port; }
void Server::run() { impl_->run(); }
void Server::stop() { impl_->stop(); }

}  // namespace meshd
