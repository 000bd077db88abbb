// EventLoop: one thread's sessions, batched flushes and inbox. See event_loop.hpp.

#include "event_loop.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "internal.hpp"

namespace meshd {

// Defined in http.cpp.
void close_http_session(HttpSession& session);
std::chrono::steady_clock::time_point http_session_waiting_since(const HttpSession& session);

EventLoop::EventLoop(ServerImpl& owner, std::size_t loop_index)
    : server(owner), index(loop_index), metrics(owner.metrics.loop(loop_index)) {
  // Keeps run() going while the loop has no connection yet.
  work_.emplace(ioc.get_executor());
}

EventLoop::~EventLoop() {
  dirty_.clear();
  flushing_.clear();
}

namespace {
// Handlers run before a flush, at most, when more are ready: a turn ends
// even while input keeps arriving, so output is never held back for long.
constexpr std::size_t kTurnHandlers = 256;
}  // namespace

void EventLoop::run() {
  // uWebSockets' cork: every write a turn produces for a session (each of
  // the publications read in that turn, on every connection, and what other
  // loops handed over) leaves in one sendmsg at the end of the turn, not one
  // per input connection.
  while (ioc.run_one() > 0) {
    for (std::size_t i = 1; i < kTurnHandlers && ioc.poll_one() > 0; ++i) {
    }
    if (server.config.threads > 1) server.broker.end_turn();
    if (!dirty_.empty()) flush_dirty();
  }
}

void EventLoop::release() {
  asio::post(ioc, [this] { work_.reset(); });
}

void EventLoop::register_session(WsSession& session) {
  session.registry_index = static_cast<std::uint32_t>(sessions_.size());
  sessions_.push_back(&session);
  metrics.connections.add();
  arm_sweep();
}

void EventLoop::unregister_session(WsSession& session) {
  const std::size_t slot = session.registry_index;
  if (slot >= sessions_.size() || sessions_[slot] != &session) return;
  sessions_[slot] = sessions_.back();
  sessions_[slot]->registry_index = static_cast<std::uint32_t>(slot);
  sessions_.pop_back();
  metrics.connections.sub();
  maybe_drained();
}

void EventLoop::register_http(HttpSession& session) {
  http_sessions_.push_back(&session);
  server.http_connections.fetch_add(1, std::memory_order_relaxed);
}

void EventLoop::unregister_http(HttpSession& session) {
  const auto it = std::find(http_sessions_.begin(), http_sessions_.end(), &session);
  if (it == http_sessions_.end()) return;
  *it = http_sessions_.back();
  http_sessions_.pop_back();
  server.http_connections.fetch_sub(1, std::memory_order_relaxed);
  maybe_drained();
}

void EventLoop::mark_dirty(WsSession& session) {
  if (session.dirty) return;
  session.dirty = true;
  dirty_.push_back(session.shared_from_this());
}

void EventLoop::forget_dirty(WsSession& session) {
  if (!session.dirty) return;
  session.dirty = false;
  std::erase_if(dirty_, [&](const auto& entry) { return entry.get() == &session; });
}

void EventLoop::flush_dirty() {
  flushing_.swap(dirty_);
  for (auto& session : flushing_) {
    session->dirty = false;
    session->flush();
  }
  flushing_.clear();
}

void EventLoop::hand_over(std::vector<Delivery>& batch) {
  if (inbox_.push(batch)) asio::post(ioc, [this] { drain_inbox(); });
}

void EventLoop::drain_inbox() {
  inbox_.take(arrived_);
  for (auto& delivery : arrived_) delivery.session->deliver(std::move(delivery.frame));
  arrived_.clear();
}

void EventLoop::begin_shutdown() {
  stopping_ = true;
  // Copies: closing may unregister.
  const auto sessions = sessions_;
  for (WsSession* session : sessions)
    session->close(websocket::close_code::going_away, "server shutdown");
  const auto http_sessions = http_sessions_;
  for (HttpSession* session : http_sessions) close_http_session(*session);
  maybe_drained();
}

bool EventLoop::evict_slow_handshake(std::chrono::steady_clock::time_point waiting_before) {
  HttpSession* oldest = nullptr;
  auto oldest_since = waiting_before;
  for (HttpSession* session : http_sessions_) {
    const auto since = http_session_waiting_since(*session);
    if (since < oldest_since) {
      oldest = session;
      oldest_since = since;
    }
  }
  if (!oldest) return false;
  metrics.drop(Drop::slow_handshake);
  close_http_session(*oldest);  // unregistered (its slot freed) once its pending read ends
  return true;
}

void EventLoop::force_close() {
  const auto sessions = sessions_;
  for (WsSession* session : sessions) session->abort();
  const auto http_sessions = http_sessions_;
  for (HttpSession* session : http_sessions) close_http_session(*session);
}

void EventLoop::maybe_drained() {
  if (!stopping_ || drained_ || server.destroying() || !sessions_.empty() ||
      !http_sessions_.empty())
    return;
  drained_ = true;
  sweep_.cancel();  // its pending wait would keep the loop running
  server.loop_drained();
}

void EventLoop::arm_sweep() {
  const auto timeout = server.config.idle_timeout;
  if (sweep_armed_ || stopping_ || timeout.count() <= 0) return;
  sweep_armed_ = true;
  // A connection is closed between one and 1.125 idle timeouts after its last input.
  sweep_.expires_after(
      std::max<std::chrono::milliseconds>(timeout / 8, std::chrono::milliseconds(5)));
  sweep_.async_wait([this](boost::system::error_code ec) {
    sweep_armed_ = false;
    if (ec) return;
    sweep();
    if (!sessions_.empty()) arm_sweep();
  });
}

void EventLoop::sweep() {
  const auto now = std::chrono::steady_clock::now();
  // check_idle closes sockets but unregisters nothing (that happens when
  // the read fails, later).
  for (WsSession* session : sessions_) session->check_idle(now);
}

}  // namespace meshd
