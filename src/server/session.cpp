// WsSession: one WebSocket peer. See internal.hpp for the design.

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>

#include "internal.hpp"

namespace meshd {

namespace {
constexpr std::size_t kMaxIov = 64;
constexpr std::size_t kKeepQueueCapacity = 64;
// Beast allocates the read buffer before any data arrives: an idle
// connection holds this much (measured: 256 B of 3.95 KiB per connection).
// A larger message takes a second read, from Beast's buffer, no system call.
constexpr std::size_t kFirstReadBytes = 16;
}  // namespace

QueuedStream::QueuedStream(Transport&& transport, WsSession& owner)
    : transport_(std::move(transport)), owner_(&owner) {}

WsSession::WsSession(EventLoop& loop, Transport&& transport, PeerId id)
    : Client(loop, id), ws_(std::move(transport), *this) {
  const auto& config = server_.config;
  // Beast's timer bounds the handshake and the close handshake only. Idle
  // connections are the loop's sweep (check_idle): Beast's idle timeout
  // keeps a wait pending on every connection, 0.8 KiB each (measured).
  websocket::stream_base::timeout timeout;
  timeout.handshake_timeout = config.handshake_timeout;
  timeout.idle_timeout = websocket::stream_base::none();
  timeout.keep_alive_pings = false;
  ws_.set_option(timeout);
  // Pongs (and pings, closes) are input too; Beast handles them inside the read.
  ws_.control_callback([this](websocket::frame_type, beast::string_view) {
    last_input_ = Clock::now();
    pinged_ = false;
  });
  ws_.set_option(websocket::stream_base::decorator([](websocket::response_type& response) {
    response.set(http::field::server, "meshd");
  }));
  ws_.read_message_max(config.max_frame_bytes);
  ws_.auto_fragment(false);
  ws_.binary(true);
}

WsSession::~WsSession() {
  if (state_ != State::done) {
    // Destroyed with the event loop (server teardown): leave quietly.
    server_.broker.remove_session(*this, false);
    loop_.unregister_session(*this);
  }
}

void WsSession::start(http::request<http::string_body>&& request) {
  beast::error_code ignored;
  ws_.next_layer().next_layer().set_option(tcp::no_delay(true), ignored);
  loop_.register_session(*this);
  ws_.async_accept(request, [self = shared_from_this()](beast::error_code ec) {
    self->on_accept(ec);
  });
}

void WsSession::on_accept(beast::error_code ec) {
  if (ec) {
    spdlog::debug("peer {}: handshake failed: {}", id(), ec.message());
    finish(ec);
    return;
  }
  if (state_ != State::handshake) return;  // closed during the handshake
  state_ = State::open;
  last_input_ = Clock::now();
  loop_.metrics.connections_total.add();
  // welcome first, before anything else.
  FrameRef welcome = new_frame();
  welcome->begin();
  // With --stun/--turn: the ICE servers too, with fresh TURN credentials.
  if (server_.ice.append_welcome(welcome->data, id())) loop_.metrics.turn_credentials.add();
  welcome->seal_binary();
  welcome->counts_as_message = true;
  deliver(std::move(welcome));
  spdlog::debug("peer {}: connected", id());
  do_read();
}

void WsSession::do_read() {
  // Only while open: once meshd closes, Beast's close operation reads up to
  // the client's close frame itself, and a read started beside it sees its
  // half-read frames (Beast asserts rd_remain > 0: seen in CI under an offer
  // flood closed for its rate).
  // Beast sizes the buffer before any data arrives: the first read of a
  // message asks for little, so an idle connection waits on a small buffer
  // (RSS per connection); the rest of a larger message follows at once.
  const std::size_t limit = in_.size() == 0 ? kFirstReadBytes : server_.config.max_frame_bytes;
  ws_.async_read_some(in_, limit,
                      [self = shared_from_this()](beast::error_code ec, std::size_t bytes) {
                        self->on_read(ec, bytes);
                      });
}

void WsSession::on_read(beast::error_code ec, std::size_t /*bytes*/) {
  last_input_ = Clock::now();
  pinged_ = false;
  if (ec) {
    if (ec == websocket::error::message_too_big) {
      loop_.metrics.drop(Drop::too_large);
      spdlog::info("peer {}: frame above {} bytes, closed (1009)", id(),
                   server_.config.max_frame_bytes);
    }
    finish(ec);
    return;
  }
  if (!ws_.is_message_done()) {
    if (state_ == State::open) do_read();  // more of this message
    return;
  }
  auto& metrics = loop_.metrics;
  metrics.messages_in.add();
  metrics.bytes_in.add(in_.size());
  if (take_message() && state_ == State::open) do_read();
}

bool WsSession::take_message() {
  if (state_ == State::open && !broken_) {
    if (!ws_.got_binary()) {
      take_text();
    } else {
      const auto data = in_.cdata();
      const Clock::duration wait = take_binary(
          std::string_view(static_cast<const char*>(data.data()), data.size()), Clock::now());
      if (wait > Clock::duration::zero()) {
        hold_message(wait);
        return false;
      }
    }
  }
  end_hold(Clock::now());
  in_.consume(in_.size());
  // Idle connections hold no read buffer (RSS per connection); reads are
  // not the hot path (fan-out is), so one allocation per message is fine.
  in_.shrink_to_fit();
  return true;
}

void WsSession::hold_message(Clock::duration wait) {
  // No read until then: what the client sends meanwhile waits in the kernel,
  // and TCP's flow control slows the sender down. Nothing is lost.
  if (!rate_timer_) rate_timer_ = std::make_unique<asio::steady_timer>(loop_.ioc);
  rate_timer_->expires_after(wait);
  rate_timer_->async_wait([self = shared_from_this()](beast::error_code ec) {
    if (ec || self->state_ == State::done) return;
    if (self->take_message() && self->state_ == State::open) self->do_read();
  });
}

void WsSession::finish(beast::error_code ec) {
  if (state_ == State::done) return;
  const bool was_member = state_ != State::handshake;
  state_ = State::done;
  if (was_member) spdlog::debug("peer {}: disconnected ({})", id(), ec.message());
  if (rate_timer_) rate_timer_->cancel();
  server_.broker.remove_session(*this, true);
  // Out of the broker, nothing more can be handed over to this session:
  // consume what other loops already did, while this object is alive.
  loop_.drain_inbox();
  drop_queue(false);
  beast::error_code ignored;
  ws_.next_layer().next_layer().close(ignored);
  loop_.unregister_session(*this);
}

FrameRef WsSession::new_frame() { return server_.frames.acquire(); }

void WsSession::deliver(FrameRef frame) {
  // Nothing after a close frame on the wire (RFC 6455 5.5.1; browsers log it).
  if (state_ != State::open || broken_ || close_queued_) return;
  const std::size_t size = frame->size();
  if (out_bytes_ + size > server_.config.max_outbound_bytes) {
    loop_.metrics.drop(Drop::slow_consumer);
    spdlog::info("peer {}: slow consumer ({} bytes queued), closing", id(), out_bytes_);
    drop_queue(true);
    close(websocket::close_code::policy_error, "slow consumer");
    // It does not read its close frame either, so the close handshake takes
    // --handshake-timeout: it leaves its groups now (departure notices), once
    // the fan-out that called this (under the broker's lock) is over.
    asio::post(loop_.ioc, [self = shared_from_this()] {
      if (self->state_ != State::done) self->server_.broker.remove_session(*self, true);
    });
    return;
  }
  out_.push_back(std::move(frame));
  out_bytes_ += size;
  loop_.mark_dirty(*this);
}

bool WsSession::send_control(FrameRef frame) {
  if (broken_ || state_ == State::done) return false;
  // Beast writes its close frame (its own or the answer to the client's)
  // through here, before the read that got the client's close completes.
  // (During the handshake these are HTTP bytes, not frames.)
  constexpr unsigned char kOpcodeMask = 0x0F, kCloseOpcode = 0x8;
  const std::string_view bytes = frame->bytes();
  if (state_ != State::handshake && !bytes.empty() &&
      (static_cast<unsigned char>(bytes[0]) & kOpcodeMask) == kCloseOpcode) {
    close_queued_ = true;
  }
  out_bytes_ += frame->size();
  out_.push_back(std::move(frame));
  loop_.mark_dirty(*this);
  return true;
}

void WsSession::drop_queue(bool keep_partial_head) {
  // A partly written frame must be completed before anything else (a close
  // frame) can follow it on the wire. With TLS, so must every frame with
  // bytes in the record OpenSSL holds for a retry (write_pending).
  const std::size_t committed =
      keep_partial_head ? head_sent_ + ws_.next_layer().transport().write_pending() : 0;
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
  if (!flush_now()) return;
  write_waiting_ = true;
  ws_.next_layer().next_layer().async_wait(
      tcp::socket::wait_write, [self = shared_from_this()](beast::error_code ec) {
        self->write_waiting_ = false;
        if (!ec) self->flush();
      });
}

bool WsSession::flush_now() {
  auto& socket = ws_.next_layer().next_layer();
  if (broken_ || !socket.is_open()) return false;
  auto& metrics = loop_.metrics;
  Transport& transport = ws_.next_layer().transport();
  while (out_head_ < out_.size()) {
    iovec iov[kMaxIov];
    std::size_t count = 0;
    for (std::size_t i = out_head_; i < out_.size() && count < kMaxIov; ++i, ++count) {
      auto bytes = out_[i]->bytes();
      if (i == out_head_) bytes.remove_prefix(head_sent_);
      iov[count].iov_base = const_cast<char*>(bytes.data());
      iov[count].iov_len = bytes.size();
    }
    const ssize_t sent = transport.write_gather(iov, count);
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
        head_sent_ += left;
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
  if (out_.capacity() > kKeepQueueCapacity) out_.shrink_to_fit();
  out_head_ = 0;
  head_sent_ = 0;
  out_bytes_ = 0;
  return false;
}

bool drain_before_teardown(QueuedStream& stream) {
  const bool pending = stream.owner().flush_now();
  spdlog::trace("peer {}: teardown, {}", stream.owner().id(), pending ? "waiting to drain" : "drained");
  return pending;
}

void teardown(beast::role_type role, QueuedStream& stream, beast::error_code& ec) {
  stream.owner().flush_now();
  websocket::teardown(role, stream.next_layer(), ec);
}

void WsSession::close(websocket::close_code code, std::string_view reason) {
  if (state_ != State::open) return;
  state_ = State::closing;
  websocket::close_reason why(code, beast::string_view(reason.data(), reason.size()));
  ws_.async_close(why, [self = shared_from_this()](beast::error_code ec) {
    if (ec) spdlog::debug("peer {}: close: {}", self->id(), ec.message());
  });
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
    ws_.async_ping({}, [self = shared_from_this()](beast::error_code ec) {
      if (ec) spdlog::debug("peer {}: ping: {}", self->id(), ec.message());
    });
  }
}

void WsSession::abort() {
  broken_ = true;
  beast::error_code ignored;
  ws_.next_layer().next_layer().close(ignored);
}

}  // namespace meshd
