// ServerImpl: the event loops, listener, round-robin placement of accepted
// connections, graceful stop across the loops.

#include "server.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <csignal>
#include <stdexcept>
#include <thread>

#include "internal.hpp"

namespace meshd {

namespace {

std::vector<std::unique_ptr<EventLoop>> make_loops(ServerImpl& server, std::size_t count) {
  std::vector<std::unique_ptr<EventLoop>> loops;
  for (std::size_t i = 0; i < count; ++i) loops.push_back(std::make_unique<EventLoop>(server, i));
  return loops;
}

}  // namespace

ServerImpl::ServerImpl(Config cfg)
    : config(std::move(cfg)),
      ice(config),
      metrics(std::max<std::size_t>(1, config.threads)),
      broker(config, metrics, frames),
      loops_(make_loops(*this, std::max<std::size_t>(1, config.threads))),
      acceptor_(main_loop().ioc),
      shutdown_timer_(main_loop().ioc),
      accept_retry_(main_loop().ioc),
      batch_timer_(main_loop().ioc) {
  broker.set_batch_timer([this](Clock::time_point due) { arm_batch_timer(due); });
  std::vector<EventLoop*> loops;
  for (const auto& loop : loops_) loops.push_back(loop.get());
  broker.set_loops(std::move(loops));
  if (!config.auth_key_file.empty()) {
    auth.emplace(TokenVerifier::from_file(config.auth_key_file));
    metrics.auth = true;
  }
  if (!config.nats_urls.empty()) {
    if (config.node_id < 0 || config.node_id > kMaxNodeId)
      throw std::runtime_error("--nats needs --node-id 0.." + std::to_string(kMaxNodeId));
    cluster = std::make_unique<Cluster>(*this);
    broker.set_cluster(cluster.get());
  }
}

// Members then die in reverse order: the listener, timers and signals
// before loop 0's io_context, the loops (and the sessions their handlers
// hold) before the broker.
ServerImpl::~ServerImpl() {
  destroying_ = true;
  if (cluster) cluster->close();  // its timer is on loop 0; it stays, closed, for the sessions
}

void ServerImpl::arm_batch_timer(Clock::time_point due) {
  if (destroying_) return;  // loop 0 may be gone
  asio::post(main_loop().ioc, [this, due] {
    if (batch_timer_armed_ && batch_timer_.expiry() <= due) return;
    batch_timer_armed_ = true;
    batch_timer_.expires_at(due);  // cancels a later wait: it sees the abort
    batch_timer_.async_wait([this](beast::error_code ec) {
      if (ec) return;
      batch_timer_armed_ = false;
      broker.flush_batches(main_loop());
    });
  });
}

std::uint16_t ServerImpl::listen() {
  if (config.tls_cert.empty() != config.tls_key.empty())
    throw std::runtime_error("TLS needs both a certificate and a key (--tls-cert, --tls-key)");
  if (!config.tls_cert.empty()) {
    std::string summary;
    tls_context_ = load_tls_context(config.tls_cert, config.tls_key, &summary);
    metrics.tls = true;
    // OpenSSL writes with write(), not send(MSG_NOSIGNAL): a peer gone
    // would raise SIGPIPE, which kills the process by default.
    std::signal(SIGPIPE, SIG_IGN);
    spdlog::info("TLS certificate {}: {}", config.tls_cert, summary);
  }
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
    // SIGHUP (systemctl reload) reloads the TLS certificate; without TLS
    // there is nothing to reload, but it must not stop the server either.
    signals_.emplace(main_loop().ioc, SIGINT, SIGTERM, SIGHUP);
    wait_signal();
  }
  if (cluster) cluster->start();
  do_accept();
  return bound_port;
}

void ServerImpl::wait_signal() {
  signals_->async_wait([this](beast::error_code ec, int signal) {
    if (ec) return;
    if (signal == SIGHUP) {
      if (tls_context_) {
        reload_tls();
      } else {
        spdlog::info("SIGHUP: nothing to reload (no --tls-cert)");
      }
      if (!finished_) wait_signal();
      return;
    }
    if (!stopping()) {
      spdlog::info("signal {}: shutting down", signal);
      begin_shutdown();
      if (!finished_) wait_signal();  // a second signal forces the close
    } else {
      spdlog::info("signal {} again: closing now", signal);
      force_close();
    }
  });
}

void ServerImpl::reload_tls() {
  try {
    std::string summary;
    tls_context_ = load_tls_context(config.tls_cert, config.tls_key, &summary);
    metrics.tls_reloads_ok.add();
    spdlog::info("SIGHUP: TLS certificate reloaded, for new connections: {}", summary);
  } catch (const std::exception& e) {
    metrics.tls_reloads_error.add();
    spdlog::error("SIGHUP: TLS reload failed, keeping the previous certificate: {}", e.what());
  }
}

void ServerImpl::run() {
  std::vector<std::thread> threads;
  for (std::size_t i = 1; i < loops_.size(); ++i)
    threads.emplace_back([loop = loops_[i].get()] { loop->run(); });
  main_loop().run();
  for (auto& thread : threads) thread.join();
  if (cluster) cluster->close();  // sends the departure notices of the shutdown
}

void ServerImpl::stop() {
  asio::post(main_loop().ioc, [this] { begin_shutdown(); });
}

void ServerImpl::do_accept() {
  // The socket is created on the loop it will live on.
  EventLoop& target = *loops_[next_loop_];
  acceptor_.async_accept(target.ioc, [this, &target](beast::error_code ec, Socket socket) {
    if (ec == asio::error::operation_aborted || stopping()) return;
    if (ec) {
      // EMFILE and friends: back off instead of spinning.
      spdlog::warn("accept: {}", ec.message());
      accept_retry_.expires_after(std::chrono::milliseconds(100));
      accept_retry_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec && !stopping()) do_accept();
      });
      return;
    }
    AddressLimits::Slot slot;
    AddressLimits::Refusal refusal = AddressLimits::Refusal::none;
    if (address_limits.enabled()) {
      beast::error_code endpoint_ec;
      const auto remote = socket.remote_endpoint(endpoint_ec);
      if (!endpoint_ec) refusal = address_limits.admit(remote.address(), slot);
    }
    const bool full =
        http_connections.load(std::memory_order_relaxed) >= config.max_http_connections;
    if (refusal == AddressLimits::Refusal::none && full &&
        config.handshake_evict_after.count() > 0) {
      // Every slot taken: the new connection gets in if the target loop
      // closes a connection that has been in its handshake for long.
      next_loop_ = (next_loop_ + 1) % loops_.size();
      asio::post(target.ioc, [this, &target, peer = std::move(socket), tls = tls_context_,
                              slot = std::move(slot)]() mutable {
        if (target.evict_slow_handshake(Clock::now() - config.handshake_evict_after)) {
          start_http_session(target, std::move(peer), tls.get(), std::move(slot));
          return;
        }
        target.metrics.drop(Drop::max_connections);
        beast::error_code ignored;
        peer.close(ignored);
      });
    } else if (refusal != AddressLimits::Refusal::none || full) {
      main_loop().metrics.drop(refusal == AddressLimits::Refusal::connections ? Drop::per_ip_connections
                               : refusal == AddressLimits::Refusal::handshakes
                                   ? Drop::per_ip_handshakes
                                   : Drop::max_connections);
      beast::error_code ignored;
      socket.close(ignored);
    } else {
      next_loop_ = (next_loop_ + 1) % loops_.size();
      // Posted before any shutdown request is, so the loop registers the
      // connection before it closes its connections.
      // The context of the moment: a reload affects later connections only.
      asio::post(target.ioc, [&target, peer = std::move(socket), tls = tls_context_,
                              slot = std::move(slot)]() mutable {
        start_http_session(target, std::move(peer), tls.get(), std::move(slot));
      });
    }
    do_accept();
  });
}

PeerId ServerImpl::allocate_id() {
  if (config.node_id >= 0) {
    // docs/cluster.md: node in the high bits, a counter (never 0) in the low ones.
    const auto node = static_cast<PeerId>(config.node_id) << kCounterBits;
    for (;;) {
      const PeerId counter = next_id_.fetch_add(1, std::memory_order_relaxed) & kCounterMask;
      if (counter != 0) return node | counter;
    }
  }
  PeerId id = next_id_.fetch_add(1, std::memory_order_relaxed);
  while (id == p2pmesh::kNoPeer) id = next_id_.fetch_add(1, std::memory_order_relaxed);  // wrapped
  return id;
}

void ServerImpl::begin_shutdown() {
  if (stopping()) return;
  stopping_.store(true, std::memory_order_release);
  spdlog::info("shutting down: {} connections", session_count());
  beast::error_code ignored;
  acceptor_.close(ignored);
  accept_retry_.cancel();
  shutdown_timer_.expires_after(config.shutdown_timeout);
  shutdown_timer_.async_wait([this](beast::error_code ec) {
    if (ec) return;
    spdlog::warn("shutdown deadline: closing {} connections", session_count());
    force_close();
  });
  loops_running_.store(loops_.size());
  for (auto& loop : loops_)
    asio::post(loop->ioc, [target = loop.get()] { target->begin_shutdown(); });
}

void ServerImpl::force_close() {
  for (auto& loop : loops_) asio::post(loop->ioc, [target = loop.get()] { target->force_close(); });
}

void ServerImpl::loop_drained() {
  if (loops_running_.fetch_sub(1) == 1) asio::post(main_loop().ioc, [this] { finish_shutdown(); });
}

void ServerImpl::finish_shutdown() {
  if (finished_) return;
  finished_ = true;
  shutdown_timer_.cancel();
  if (signals_) {
    beast::error_code ignored;
    signals_->cancel(ignored);
  }
  if (cluster) cluster->stop_timers();
  spdlog::info("shutdown complete");
  for (auto& loop : loops_) loop->release();
}

// ---------------------------------------------------------------------------

Server::Server(Config config) : impl_(std::make_unique<ServerImpl>(std::move(config))) {}
Server::~Server() = default;
std::uint16_t Server::listen() { return impl_->listen(); }
std::uint16_t Server::port() const { return impl_->bound_port; }
void Server::run() { impl_->run(); }
void Server::stop() { impl_->stop(); }

}  // namespace meshd
