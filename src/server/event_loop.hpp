#pragma once
// EventLoop: one thread's io_context and everything that belongs to it. A
// connection is accepted onto one loop (round robin) and stays there, so a
// session's own I/O, queue and timers are only ever touched by that thread
// and need no lock. Per loop: the session registry (shutdown), the dirty
// list with its batched flush, the inbox through which other loops hand
// over deliveries, and the loop's share of the metrics.

#include <boost/asio.hpp>
#include <cstddef>
#include <memory>
#include <optional>
#include <vector>

#include "inbox.hpp"
#include "metrics.hpp"

namespace meshd {

namespace asio = boost::asio;

class ServerImpl;
class WsSession;
class HttpSession;

class EventLoop {
 public:
  EventLoop(ServerImpl& server, std::size_t index);
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // Runs the loop on the calling thread until release() and the last handler.
  // In turns: one handler (waiting for it), whatever else is ready (at most
  // kTurnHandlers), then one flush of every dirty session (see run()).
  void run();
  // Any thread: lets run() return once the loop runs out of work.
  void release();

  // Loop thread. A dirty session is flushed at the end of the loop's turn.
  void mark_dirty(WsSession& session);
  // Loop thread: a session moving to another loop leaves the dirty list
  // (its queue goes with it).
  void forget_dirty(WsSession& session);
  bool stopping() const { return stopping_; }
  void register_session(WsSession& session);
  void unregister_session(WsSession& session);
  void register_http(HttpSession& session);
  void unregister_http(HttpSession& session);
  // Close frames 1001 to every session of this loop, then the HTTP
  // connections; reports to the server once nothing is left.
  void begin_shutdown();
  // --handshake-evict-after: closes this loop's HTTP connection that has
  // waited for its handshake or request the longest, if since before
  // `waiting_before`; false when there is none.
  bool evict_slow_handshake(std::chrono::steady_clock::time_point waiting_before);
  void force_close();
  // Delivers what other loops handed over. Also called by a session that
  // leaves the broker, before it can be destroyed: entries hold plain
  // pointers, valid because a session is only handed deliveries while it is
  // in the broker, and every such entry is drained by this call at the latest.
  void drain_inbox();

  // Any thread (holding the broker's lock): deliveries for this loop's sessions.
  void hand_over(std::vector<Delivery>& batch);

  // Where this loop's WebSocket sessions read their input: one buffer per
  // loop, not per connection (an idle connection holds none). A session
  // keeps only what it cannot use yet (a partial frame or message).
  static constexpr std::size_t kReadBufferBytes = 64 * 1024;
  char* read_buffer() { return read_buffer_.get(); }

  ServerImpl& server;
  const std::size_t index;
  LoopMetrics& metrics;
  // Members of groups placed on this loop (--threads > 1): where the broker
  // puts the next group. Under the broker's lock.
  std::size_t homed_members = 0;

 private:
  void flush_dirty();
  void maybe_drained();
  // Idle connections (--idle-timeout): one timer per loop, not one per
  // connection, armed while the loop has sessions.
  void arm_sweep();
  void sweep();

  std::unique_ptr<char[]> read_buffer_ = std::make_unique<char[]>(kReadBufferBytes);
  std::vector<WsSession*> sessions_;
  std::vector<HttpSession*> http_sessions_;
  std::vector<std::shared_ptr<WsSession>> dirty_;
  std::vector<std::shared_ptr<WsSession>> flushing_;
  DeliveryInbox inbox_;
  std::vector<Delivery> arrived_;  // reused by drain_inbox
  bool stopping_ = false;
  bool drained_ = false;
  bool sweep_armed_ = false;

 public:
  // Last member: destroyed first, with the sessions its handlers still hold,
  // while the registry above is alive.
  asio::io_context ioc{1};

 private:
  asio::steady_timer sweep_{ioc};  // after ioc: destroyed before it
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
};

}  // namespace meshd
