// WsSession: one WebSocket peer. See internal.hpp for the design.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "internal.hpp"
#include "ws_handshake.hpp"

namespace meshd {

namespace {
constexpr std::size_t kMaxIov = 64;
constexpr std::size_t kKeepQueueCapacity = 64;
// Reads of one connection in one handler: a client that keeps sending
// yields to the others after this many buffers (the rest is read in a
// later handler of the same turn or the next).
constexpr int kReadsPerHandler = 4;

// Plain operator new, at the size asked for. Given to the readiness wait
// that every idle connection keeps: Asio allocates handlers without an
// allocator of their own (std::allocator counts as none) from its per-thread
// recycling cache, which hands out the larger block of the HTTP read that
// completed before (measured: 464 B per idle connection instead of the
// wait's own size).
template <class T>
struct ExactAllocator {
  using value_type = T;
  ExactAllocator() = default;
  template <class U>
  ExactAllocator(const ExactAllocator<U>&) noexcept {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T))); }
  void deallocate(T* p, std::size_t) noexcept { ::operator delete(p); }
  template <class U>
  bool operator==(const ExactAllocator<U>&) const noexcept { return true; }
};
}  // namespace

WsSession::WsSession(EventLoop& loop, Transport&& transport, PeerId id)
    : Client(loop, id),
      transport_(std::move(transport)),
      reader_(loop.server.config.max_frame_bytes) {}

WsSession::~WsSession() {
  if (state_ != State::done) {
    // Destroyed with the event loop (server teardown): leave quietly.
    server_.broker.remove_session(*this, false);
    loop_->unregister_session(*this);
  }
}

void WsSession::start(const http::request<http::string_body>& request, std::string early_input) {
  beast::error_code ignored;
  transport_.next_layer().set_option(tcp::no_delay(true), ignored);
  loop_->register_session(*this);
  last_input_ = Clock::now();
  loop_->metrics.connections_total.add();
  // The 101 response, then the welcome, before anything else.
  const auto key = request[http::field::sec_websocket_key];
  FrameRef response = new_frame();
  response->data = ws::switching_protocols(std::string_view(key.data(), key.size()));
  queue(std::move(response));
  FrameRef welcome = new_frame();
  welcome->begin();
  // With --stun/--turn: the ICE servers too, with fresh TURN credentials.
  if (server_.ice.append_welcome(welcome->data, id())) loop_->metrics.turn_credentials.add();
  welcome->seal_binary();
  welcome->counts_as_message = true;
  deliver(std::move(welcome));
  spdlog::debug("peer {}: connected", id());
  if (!early_input.empty() && !consume(early_input.data(), early_input.size())) return;
  if (!move_home()) wait_readable();
}

void WsSession::wait_readable() {
  if (read_waiting_ || state_ == State::done) return;
  wait_then_read(tcp::socket::wait_read);
}

void WsSession::wait_then_read(tcp::socket::wait_type type) {
  read_waiting_ = true;
  transport_.next_layer().async_wait(
      type,
      asio::bind_allocator(ExactAllocator<void>(),
                           [self = shared_from_this()](beast::error_code ec) {
                             self->read_waiting_ = false;
                             if (ec) {
                               self->finish(ec);
                               return;
                             }
                             self->read_input();
                           }));
}

void WsSession::read_input() {
  if (read_waiting_ || paused_ || state_ == State::done) return;
  if (move_home()) return;
  char* const buffer = loop_->read_buffer();
  for (int reads = 0; reads < kReadsPerHandler; ++reads) {
    const Transport::Step step = transport_.read_some(buffer, EventLoop::kReadBufferBytes);
    if (step.ec) {
      finish(step.ec);  // the client closed the connection, or it broke
      return;
    }
    if (step.want == Transport::Want::read) {
      wait_readable();
      return;
    }
    if (step.want == Transport::Want::write) {
      wait_then_read(tcp::socket::wait_write);  // TLS: OpenSSL has to write before it reads on
      return;
    }
    last_input_ = Clock::now();
    pinged_ = false;
    if (!consume(buffer, step.bytes)) return;
    if (move_home()) return;  // it joined a group that lives on another loop
  }
  // Still more: read on after the other handlers that are ready. Not a
  // readiness wait: the socket may hold more without a new wake-up.
  read_waiting_ = true;
  asio::post(loop_->ioc, [self = shared_from_this()] {
    self->read_waiting_ = false;
    self->read_input();
  });
}

bool WsSession::move_home() {
  EventLoop* const to = std::exchange(home, nullptr);
  if (!to || to == loop_) return false;
  // Only with nothing in flight on this loop: no wait, no write waiting for
  // the socket, no held message or timer, no close under way. Otherwise it
  // stays (a connection that cannot move now is not asked again).
  if (state_ != State::open || read_waiting_ || write_waiting_ || paused_ || held_ || broken_ ||
      transport_.write_pending() > 0)
    return false;
  return server_.broker.move(*this, *to);
}

bool WsSession::rehome(EventLoop& to) {
  // Under the broker's lock, on the old loop: its deliveries are in its
  // queue (Broker::move drained them), and from the unlock on fan-outs
  // reach it through `to`. Draining may have closed it (a slow consumer):
  // then it stays, with the work that close posted to this loop.
  if (state_ != State::open || !transport_.rehome(to.ioc)) return false;
  loop_->forget_dirty(*this);
  loop_->unregister_session(*this);
  timer_.reset();  // idle (nothing held): made again on the new loop when needed
  loop_ = &to;
  asio::post(to.ioc, [self = shared_from_this()] { self->arrive(); });
  return true;
}

void WsSession::arrive() {
  if (state_ == State::done) return;  // a write failed on the new loop meanwhile
  loop_->register_session(*this);
  loop_->metrics.moves_in.add();
  if (out_head_ < out_.size()) loop_->mark_dirty(*this);
  if (loop_->stopping()) close(websocket::close_code::going_away, "server shutdown");
  read_input();  // what arrived meanwhile waits in the socket
}

bool WsSession::consume(char* data, std::size_t size) {
  for (;;) {
    // After the close handshake, input is discarded until the client closes.
    if (state_ == State::ending) return true;
    if (state_ == State::done) return false;
    const ws::Event event = reader_.next(data, size);
    switch (event.kind) {
      case ws::Event::Kind::need_more:
        return true;
      case ws::Event::Kind::binary:
      case ws::Event::Kind::text: {
        auto& metrics = loop_->metrics;
        metrics.messages_in.add();
        metrics.bytes_in.add(event.message_bytes);
        if (state_ != State::open || broken_) break;  // meshd closes: not taken
        if (event.kind == ws::Event::Kind::text) {
          take_text();
          break;
        }
        const Clock::time_point now = Clock::now();
        const Clock::duration wait = take_binary(event.payload, now);
        if (wait > Clock::duration::zero()) {
          // Kept until the rate allows it, with the input that followed it.
          auto held = std::make_unique<Held>();
          held->message.assign(event.payload);
          held->unread.assign(data, size);
          held_ = std::move(held);
          hold(wait);
          return false;
        }
        end_hold(now);
        break;
      }
      case ws::Event::Kind::ping:
        if (state_ == State::open) queue_control(ws::Opcode::pong, event.payload);
        break;
      case ws::Event::Kind::pong:
        break;  // input: last_input_ is already set
      case ws::Event::Kind::close:
        on_client_close(event.code);
        break;
      case ws::Event::Kind::error:
        on_protocol_error(event);
        break;
    }
  }
}

void WsSession::hold(Clock::duration wait) {
  // No read until then: what the client sends meanwhile waits in the kernel,
  // and TCP's flow control slows the sender down. Nothing is lost.
  paused_ = true;
  if (!timer_) timer_ = std::make_unique<asio::steady_timer>(loop_->ioc);
  timer_->expires_after(wait);
  timer_->async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->state_ != State::open) return;
    self->release_held();
  });
}

void WsSession::release_held() {
  const Clock::time_point now = Clock::now();
  if (!broken_) {
    const Clock::duration wait = take_binary(held_->message, now);
    if (wait > Clock::duration::zero()) {
      hold(wait);
      return;
    }
  }
  end_hold(now);
  resume_after_hold();
}

void WsSession::resume_after_hold() {
  if (!paused_ || state_ == State::done) return;
  paused_ = false;
  const std::unique_ptr<Held> held = std::move(held_);
  if (!held || consume(held->unread.data(), held->unread.size())) read_input();
}

void WsSession::on_client_close(std::uint16_t code) {
  // The client's close: answered with its code (RFC 6455 5.5.1), unless it
  // answers meshd's own.
  spdlog::debug("peer {}: close frame from the client ({})", id(), code);
  if (state_ == State::open) queue_close(code, {});
  end_connection();
}

void WsSession::on_protocol_error(const ws::Event& event) {
  if (event.code == ws::close_code::too_big) {
    loop_->metrics.drop(Drop::too_large);
    spdlog::info("peer {}: frame above {} bytes, closed (1009)", id(),
                 server_.config.max_frame_bytes);
  } else {
    // Counted, so an operator sees broken clients (or a proxy mangling
    // frames) without debug logs.
    loop_->metrics.drop(event.code == ws::close_code::bad_payload ? Drop::invalid_utf8
                                                                 : Drop::protocol_error);
    spdlog::debug("peer {}: {}, closed ({})", id(), event.what, event.code);
  }
  if (state_ == State::open) queue_close(event.code, {});
  end_connection();
}

void WsSession::end_connection() {
  state_ = State::ending;
  server_.broker.remove_session(*this, true);
  arm_close_deadline();
  // The flush writes what is queued (the close frame last), then shuts the
  // sending side down; the client's end of input then ends the session.
  shutdown_pending_ = true;
  loop_->mark_dirty(*this);
}

void WsSession::arm_close_deadline() {
  if (!timer_) timer_ = std::make_unique<asio::steady_timer>(loop_->ioc);
  timer_->expires_after(server_.config.handshake_timeout);
  timer_->async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->state_ == State::done) return;
    spdlog::debug("peer {}: close handshake not finished in time", self->id());
    self->abort();
  });
}

void WsSession::finish(beast::error_code ec) {
  if (state_ == State::done) return;
  state_ = State::done;
  spdlog::debug("peer {}: disconnected ({})", id(), ec.message());
  if (timer_) timer_->cancel();
  server_.broker.remove_session(*this, true);
  // Out of the broker, nothing more can be handed over to this session:
  // consume what other loops already did, while this object is alive.
  loop_->drain_inbox();
  drop_queue(false);
  held_.reset();
  beast::error_code ignored;
  transport_.next_layer().close(ignored);
  loop_->unregister_session(*this);
}

FrameRef WsSession::new_frame() { return server_.frames.acquire(); }

void WsSession::deliver(FrameRef frame) {
  // Nothing after a close frame on the wire (RFC 6455 5.5.1; browsers log it).
  if (state_ != State::open || broken_ || close_queued_) return;
  const std::size_t size = frame->size();
  if (out_bytes_ + size > server_.config.max_outbound_bytes) {
    loop_->metrics.drop(Drop::slow_consumer);
    spdlog::info("peer {}: slow consumer ({} bytes queued), closing", id(), out_bytes_);
    drop_queue(true);
    close(websocket::close_code::policy_error, "slow consumer");
    // It does not read its close frame either, so the close handshake takes
    // --handshake-timeout: it leaves its groups now (departure notices), once
    // the fan-out that called this (under the broker's lock) is over.
    asio::post(loop_->ioc, [self = shared_from_this()] {
      if (self->state_ != State::done) self->server_.broker.remove_session(*self, true);
    });
    return;
  }
  out_.push_back(std::move(frame));
  out_bytes_ += size;
  loop_->mark_dirty(*this);
}

void WsSession::queue(FrameRef frame) {
  if (broken_ || state_ == State::done) return;
  out_bytes_ += frame->size();
  out_.push_back(std::move(frame));
  loop_->mark_dirty(*this);
}

void WsSession::queue_control(ws::Opcode opcode, std::string_view payload) {
  if (close_queued_) return;
  FrameRef frame = new_frame();
  ws::append_frame(frame->data, opcode, payload);
  queue(std::move(frame));
}

void WsSession::queue_close(std::uint16_t code, std::string_view reason) {
  if (close_queued_) return;
  close_queued_ = true;
  FrameRef frame = new_frame();
  if (code == ws::close_code::no_status)
    ws::append_frame(frame->data, ws::Opcode::close, {});
  else
    ws::append_close(frame->data, code, reason);
  queue(std::move(frame));
}

void WsSession::drop_queue(bool keep_partial_head) {
  // A partly written frame must be completed before anything else (a close
  // frame) can follow it on the wire. With TLS, so must every frame with
  // bytes in the record OpenSSL holds for a retry (write_pending).
  const std::size_t committed = keep_partial_head ? head_sent_ + transport_.write_pending() : 0;
  std::size_t keep_end = out_head_;
  for (std::size_t offset = 0; offset < committed && keep_end < out_.size(); ++keep_end)
    offset += out_[keep_end]->size();
  if (keep_end > out_head_) {
    std::move(out_.begin() + static_cast<std::ptrdiff_t>(out_head_),
              out_.begin() + static_cast<std::ptrdiff_t>(keep_end), out_.begin());
    out_.resize(keep_end - out_head_);
    out_head_ = 0;
    out_bytes_ = 0;
    for (const auto& frame : out_) out_bytes_ += frame->size();
    out_bytes_ -= head_sent_;
    return;
  }
  out_.clear();
  if (!keep_partial_head) out_.shrink_to_fit();
  out_head_ = 0;
  head_sent_ = 0;
  out_bytes_ = 0;
}

void WsSession::flush() {
  if (write_waiting_) return;
  if (!flush_now()) {
    if (shutdown_pending_ && state_ == State::ending) {
      shutdown_pending_ = false;
      transport_.shutdown_send();
    }
    return;
  }
  write_waiting_ = true;
  transport_.next_layer().async_wait(tcp::socket::wait_write,
                                     [self = shared_from_this()](beast::error_code ec) {
                                       self->write_waiting_ = false;
                                       if (!ec) self->flush();
                                     });
}

bool WsSession::flush_now() {
  auto& socket = transport_.next_layer();
  if (broken_ || !socket.is_open()) return false;
  auto& metrics = loop_->metrics;
  while (out_head_ < out_.size()) {
    iovec iov[kMaxIov];
    std::size_t count = 0;
    for (std::size_t i = out_head_; i < out_.size() && count < kMaxIov; ++i, ++count) {
      auto bytes = out_[i]->bytes();
      if (i == out_head_) bytes.remove_prefix(head_sent_);
      iov[count].iov_base = const_cast<char*>(bytes.data());
      iov[count].iov_len = bytes.size();
    }
    const ssize_t sent = transport_.write_gather(iov, count);
    if (sent < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      spdlog::debug("peer {}: write failed: {}", id(), std::strerror(errno));
      broken_ = true;
      drop_queue(false);
      beast::error_code ignored;
      socket.shutdown(tcp::socket::shutdown_both, ignored);  // the read fails -> finish()
      return false;
    }
    metrics.bytes_out.add(static_cast<std::size_t>(sent));
    out_bytes_ -= static_cast<std::size_t>(sent);
    std::size_t left = static_cast<std::size_t>(sent);
    std::optional<Clock::time_point> now;
    std::uint64_t messages = 0;  // one counter update per sendmsg
    while (left > 0) {
      Frame& frame = *out_[out_head_];
      const std::size_t remaining = frame.size() - head_sent_;
      if (left < remaining) {
        head_sent_ += static_cast<std::uint32_t>(left);
        break;
      }
      left -= remaining;
      head_sent_ = 0;
      if (frame.counts_as_message) ++messages;
      if (frame.published != Clock::time_point{}) {
        if (!now) now = Clock::now();
        metrics.fanout_latency.observe(*now - frame.published);
      }
      out_[out_head_] = FrameRef();
      ++out_head_;
    }
    metrics.messages_out.add(messages);
  }
  out_.clear();
  // The handshake's queue is given back: a connection that stays idle holds
  // none (RSS per connection). Later, the storage is kept for the next flush.
  if (out_.capacity() > kKeepQueueCapacity || !greeted_) out_.shrink_to_fit();
  greeted_ = true;
  out_head_ = 0;
  head_sent_ = 0;
  out_bytes_ = 0;
  return false;
}

void WsSession::close(websocket::close_code code, std::string_view reason) {
  if (state_ != State::open) return;
  state_ = State::closing;
  queue_close(static_cast<std::uint16_t>(code), reason);
  // Input is still read: the client's close frame ends the handshake.
  arm_close_deadline();  // replaces the wait of a held message
  if (paused_) {
    // The held message is dropped; the input after it is read on (it may
    // hold the client's close frame). Not from here: close() may be called
    // while that input is being parsed.
    end_hold(Clock::now());
    asio::post(loop_->ioc, [self = shared_from_this()] { self->resume_after_hold(); });
  }
}

void WsSession::check_idle(Clock::time_point now) {
  // Held for the rate, the connection is not read: its input is unknown.
  if (state_ != State::open || holding() || broken_) return;
  const auto timeout = server_.config.idle_timeout;
  const auto idle = now - last_input_;
  if (idle >= timeout) {
    spdlog::debug("peer {}: no input for {} ms, closing", id(), timeout.count());
    abort();
    return;
  }
  if (idle >= timeout / 2 && !pinged_) {
    pinged_ = true;
    queue_control(ws::Opcode::ping, {});
  }
}

void WsSession::abort() {
  broken_ = true;
  beast::error_code ignored;
  transport_.next_layer().close(ignored);
  // The pending wait (if any) fails too; finish() runs once.
  asio::post(loop_->ioc, [self = shared_from_this()] {
    self->finish(asio::error::operation_aborted);
  });
}

}  // namespace meshd
