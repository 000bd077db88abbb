#pragma once
// Client: one connection as the broker sees it, without its socket: its id,
// token grant, subscriptions, strikes and rate bucket, and what it does with
// a complete message. WsSession is the one meshd runs (over a socket);
// the meshd fuzz target (tests/fuzz/meshd_fuzz.cpp) drives the real broker
// and this logic with clients of its own, frame by frame, without sockets.

#include <boost/beast/websocket/rfc6455.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "auth.hpp"
#include "frame.hpp"
#include "member_record.hpp"
#include "metrics.hpp"
#include "peer_id.hpp"

namespace meshd {

using Clock = std::chrono::steady_clock;
class EventLoop;
class ServerImpl;
struct Topic;

// The reference browser peer publishes its status before it subscribes to
// <group>.mesh. Until it joins, the record is in no snapshot; join_group
// moves it into the peer's Member.
struct EarlyRecord {
  std::string group;
  p2pmesh::MemberRecord record;
  // Some member (or another node) got one of its updates: if it closes
  // before it joins, the group gets its departure notice.
  bool heard = false;
};

class Client {
 public:
  Client(EventLoop& loop, p2pmesh::PeerId id);
  virtual ~Client() = default;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  p2pmesh::PeerId id() const { return id_; }
  // With --auth-key: the groups the connection's token allows (else null).
  const Grant* grant() const { return grant_.get(); }
  void set_grant(std::shared_ptr<const Grant> grant) { grant_ = std::move(grant); }
  // Under the broker's lock from other threads; changes only under it (a move).
  EventLoop& loop() const { return *loop_; }
  LoopMetrics& metrics() const;

  // Open: the connection takes messages and data frames.
  virtual bool accepting() const = 0;
  // A shared data frame for this subscriber (on its own loop only);
  // bounded by --max-outbound-bytes: a slow consumer is closed.
  virtual void deliver(FrameRef frame) = 0;
  // Graceful close: a close frame with this code and reason.
  virtual void close(boost::beast::websocket::close_code code, std::string_view reason) = 0;
  // Broker::move, under its lock, on the connection's own loop: from now on
  // it lives on `to` (its socket, its queue). False when it cannot move.
  virtual bool rehome(EventLoop& /*to*/) { return false; }

  // One complete binary message: handed to the broker. Zero when it was
  // handled (or dropped, or the connection is closed for exceeding its
  // rate); else the connection is over its rate and must hold the message
  // (read nothing more) for that long, then offer the same bytes again.
  Clock::duration take_binary(std::string_view bytes, Clock::time_point now);
  // A text frame: WIRE.md allows binary only.
  void take_text();
  // The held message was taken (or dropped): the connection reads again.
  void end_hold(Clock::time_point now);
  bool holding() const { return holding_; }

  // An invalid message; closes the connection after max_strikes.
  void strike();
  // Token bucket: takes `tokens` and returns zero, or returns how long until
  // the bucket holds them (nothing taken). Under the broker's lock.
  Clock::duration rate_wait(double tokens, Clock::time_point now);

  // Broker bookkeeping (under the broker's lock).
  std::vector<Topic*> subscriptions;
  // --threads > 1: the loop of the group it joined, when that is not its own
  // (Broker::join_group). A connection that can move there does, at the end
  // of its input (WsSession::move_home); others ignore it.
  EventLoop* home = nullptr;  // (`homed` is at the end, beside the other flag)
  std::vector<EarlyRecord> early_records;  // groups not joined; at most max_subscriptions

 protected:
  EventLoop* loop_;  // changes only by a move, under the broker's lock
  ServerImpl& server_;

 private:
  // (Small members side by side: every idle connection holds one Client.)
  p2pmesh::PeerId id_;
  std::uint32_t strikes_ = 0;
  std::shared_ptr<const Grant> grant_;  // --auth-key: what the token allows
  double tokens_ = 0;
  Clock::time_point refill_{};
  // Over the rate: the start of the current run of excess, and when the last
  // held message was released.
  Clock::time_point throttled_since_{};
  Clock::time_point held_until_{};
  bool holding_ = false;  // a message waits for tokens; the connection is not read

 public:
  bool homed = false;  // joined a group: placed for good
};

}  // namespace meshd
