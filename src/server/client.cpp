// Client: a connection's broker-facing state and message handling, without
// its socket. See client.hpp.

#include "client.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "internal.hpp"

namespace meshd {

namespace {
// A connection over the rate is in one run of excess while its holds follow
// each other with gaps shorter than this (docs/meshd.md, "The rate limit").
constexpr std::chrono::seconds kExcessGap{1};
}  // namespace

Client::Client(EventLoop& loop, p2pmesh::PeerId id)
    : loop_(&loop), server_(loop.server), id_(id), tokens_(loop.server.config.rate_burst) {}

LoopMetrics& Client::metrics() const { return loop_->metrics; }

Clock::duration Client::take_binary(std::string_view bytes, Clock::time_point now) {
  const Clock::duration wait = server_.broker.on_message(*this, bytes, now);
  if (wait <= Clock::duration::zero()) return {};
  if (now + wait - throttled_since_ <= server_.config.max_rate_delay) {
    holding_ = true;
    return wait;
  }
  // Sustained excess: said to the client, which can reconnect slower.
  loop_->metrics.drop(Drop::rate_limited);
  spdlog::info("peer {}: over the rate for more than {} ms, closing", id_,
               server_.config.max_rate_delay.count());
  close(boost::beast::websocket::close_code::policy_error, "rate limit exceeded");
  return {};
}

void Client::take_text() {
  loop_->metrics.drop(Drop::text_frame);
  spdlog::debug("peer {}: text frame dropped", id_);
  strike();
}

void Client::end_hold(Clock::time_point now) {
  if (holding_) held_until_ = now;
  holding_ = false;
}

void Client::strike() {
  if (++strikes_ < server_.config.max_strikes) return;
  if (!accepting()) return;
  loop_->metrics.drop(Drop::abuse);
  spdlog::info("peer {}: {} invalid messages, closing", id_, strikes_);
  close(boost::beast::websocket::close_code::policy_error, "too many invalid messages");
}

Clock::duration Client::rate_wait(double tokens, Clock::time_point now) {
  const auto& config = server_.config;
  if (config.rate_per_second <= 0) return {};
  // A publish to more topics than the bucket holds passes once it is full.
  tokens = std::min(tokens, config.rate_burst);
  if (refill_ != Clock::time_point{}) {
    const double elapsed = std::chrono::duration<double>(now - refill_).count();
    tokens_ = std::min(config.rate_burst, tokens_ + elapsed * config.rate_per_second);
  }
  refill_ = now;
  if (tokens_ >= tokens) {
    tokens_ -= tokens;
    return {};
  }
  // A run of excess ends when no message was held for kExcessGap: not when
  // one message passes, which the timer's own lateness can allow in the
  // middle of a sustained excess.
  if (!holding_ && now - held_until_ > kExcessGap) throttled_since_ = now;
  const std::chrono::duration<double> missing((tokens - tokens_) / config.rate_per_second);
  return std::chrono::ceil<std::chrono::microseconds>(missing);
}

}  // namespace meshd
