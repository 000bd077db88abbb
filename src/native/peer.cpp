// p2pmesh::Peer: the native driver of MeshNode. It carries out the core's
// actions over a meshd WebSocket and libwebrtc data channels and feeds the
// outcomes back; it makes no mesh decision of its own.
#include "p2pmesh/peer.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <future>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <variant>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include "core_counters.hpp"
#include "ed25519_key.hpp"
#include "receiver_tags.hpp"
#include "signature_checker.hpp"
#include "mesh_node.hpp"
#include "inbound_budget.hpp"
#include "link_send_policy.hpp"
#include "rtc_link.hpp"
#include "server_protocol.hpp"
#include "topics.hpp"
#include "ws_client.hpp"

namespace p2pmesh {

namespace asio = boost::asio;
using native::RtcLink;
using native::WsClient;

const char* to_string(PeerError::Kind kind) {
  switch (kind) {
    case PeerError::Kind::server_unreachable: return "server_unreachable";
    case PeerError::Kind::server_lost: return "server_lost";
    case PeerError::Kind::link_failed: return "link_failed";
    case PeerError::Kind::send_queue_full: return "send_queue_full";
    case PeerError::Kind::relay_unavailable: return "relay_unavailable";
    case PeerError::Kind::token_rejected: return "token_rejected";
  }
  return "?";
}

const char* to_string(PeerSnapshot::State state) {
  switch (state) {
    case PeerSnapshot::State::idle: return "idle";
    case PeerSnapshot::State::connecting: return "connecting";
    case PeerSnapshot::State::joined: return "joined";
    case PeerSnapshot::State::reconnecting: return "reconnecting";
    case PeerSnapshot::State::stopped: return "stopped";
    case PeerSnapshot::State::rejected: return "rejected";
  }
  return "?";
}

namespace {

TimeUs steady_now() {
  return std::chrono::duration_cast<std::chrono::microseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Hands work from libwebrtc threads to the loop, until disabled.
class LoopPoster {
 public:
  explicit LoopPoster(asio::io_context& io) : io_(&io) {}
  template <class Fn>
  void post(Fn&& fn) {
    std::lock_guard lock(mutex_);
    if (io_) asio::post(*io_, std::forward<Fn>(fn));
  }
  void disable() {
    std::lock_guard lock(mutex_);
    io_ = nullptr;
  }

 private:
  std::mutex mutex_;
  asio::io_context* io_;
};

constexpr int kSendsPerTurn = 256;              // then the loop breathes

}  // namespace

class Peer::Impl {
 public:
  Impl(PeerConfig config, PeerCallbacks callbacks);

  void start();
  void stop();
  std::uint64_t broadcast(std::string payload, BroadcastOptions options);
  void set_report_app_json(std::string json);
  void set_token(std::string token);
  PeerSnapshot snapshot();
  PeerId id() const { return id_.load(); }
  const std::string& public_key() const { return key_.public_key(); }
  bool wait_joined(std::chrono::milliseconds timeout);
  bool on_loop_thread() const { return std::this_thread::get_id() == loop_thread_id_; }

 private:
  struct LinkSlot {
    LinkId id = 0;
    PeerId peer = kNoPeer;
    std::unique_ptr<RtcLink> rtc;
    std::deque<std::string> queue;
    std::size_t queued_bytes = 0;
    bool waiting = false;  // for the libwebrtc buffer to drain
    bool open = false;
    bool dropping = false;  // the queue overflowed (reported once until it drains)
    int since_check = 0;
  };

  // Server session.
  void connect();
  void on_ws_open();
  void on_ws_frame(std::string_view frame);
  void on_ws_closed(std::string reason);
  void end_session();  // forget node and links (after a lost connection)
  void schedule_reconnect();
  void set_state(PeerSnapshot::State state);

  // Core.
  void drain();
  void carry_out(Action& action);
  void wake(TimeUs at);
  MeshConfig mesh_config() const;

  // Links.
  native::LinkEvents link_events(LinkId link);
  template <class Fn>
  void on_link_event(std::uint64_t epoch, LinkId link, Fn&& fn);
  void close_slot(LinkId link);
  void enqueue(LinkSlot& slot, std::string bytes);
  // On the link's unreliable channel, past any queue; false when that
  // channel is not open yet (then the packet takes the first channel).
  bool send_unreliable(LinkSlot& slot, std::string_view bytes);
  void flush(LinkId link, bool check_first);

  void finish_stop();
  PeerSnapshot build_snapshot();

  PeerConfig config_;
  PeerCallbacks callbacks_;
  native::Ed25519Key key_;  // signs our broadcasts; fixed for the Peer's life
  native::ReceiverTags tags_{key_};
  std::vector<native::WsUrl> urls_;
  std::shared_ptr<boost::asio::ssl::context> tls_;  // wss:// (null when no URL is)
  native::RtcOptions rtc_options_;

  asio::io_context io_;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work_;
  std::thread thread_;
  std::thread::id loop_thread_id_;
  std::shared_ptr<LoopPoster> poster_;
  // After io_: stopped (joined) before the loop's io_context goes.
  std::unique_ptr<native::SignatureChecker> checker_;
  std::shared_ptr<native::InboundBudget> inbound_;
  std::shared_ptr<native::RtcEngine> engine_;
  std::atomic<bool> started_{false};
  std::atomic<bool> running_{false};
  std::atomic<bool> stopping_{false};

  // Loop-thread state.
  std::unique_ptr<MeshNode> node_;
  std::optional<MeshCounters> final_core_counters_;  // the last session's, after stop()
  std::uint64_t epoch_ = 0;  // grows with each server session
  bool relay_failure_reported_ = false;  // on_error once per session, not per link
  std::shared_ptr<WsClient> ws_;
  std::size_t url_index_ = 0;
  int attempt_ = 0;
  std::unordered_map<LinkId, LinkSlot> links_;
  asio::steady_timer wake_timer_;
  asio::steady_timer reconnect_timer_;
  TimeUs wake_at_ = kNever;
  std::mt19937_64 rng_;
  std::uint64_t seed_;
  PeerSnapshot::Counters driver_;  // driver counters only
  std::uint64_t reconnects_ = 0;
  // Where the application stands with each source, carried into the next
  // session's MeshNode (MeshNode::resume_delivery).
  std::vector<std::pair<PeerId, std::uint64_t>> delivery_positions_;
  std::string last_error_;  // PeerSnapshot::last_error
  std::string report_app_json_;  // kept across sessions

  // Any thread.
  std::atomic<PeerSnapshot::State> state_{PeerSnapshot::State::idle};
  std::atomic<PeerId> id_{kNoPeer};
  mutable std::mutex joined_mutex_;
  mutable std::condition_variable joined_cv_;
};

// ------------------------------------------------------------ construction

Peer::Impl::Impl(PeerConfig config, PeerCallbacks callbacks)
    : config_(std::move(config)),
      callbacks_(std::move(callbacks)),
      key_(config_.signing_key),
      wake_timer_(io_),
      reconnect_timer_(io_) {
  if (config_.server_urls.empty()) throw std::invalid_argument("p2pmesh: no server URL");
  for (const auto& url : config_.server_urls) {
    auto parsed = native::parse_ws_url(url);
    if (!parsed) {
      throw std::invalid_argument("p2pmesh: not a ws://host[:port]/path or wss://host[:port]/path URL: " +
                                  url);
    }
    urls_.push_back(*parsed);
  }
  // Read once, here: a bad ca_file is a config error, not a failed connection.
  const bool any_tls = std::any_of(urls_.begin(), urls_.end(), [](const auto& u) { return u.tls; });
  if (any_tls || !config_.ca_file.empty()) tls_ = native::make_tls_context(config_.ca_file);
  if (config_.max_link_queue_bytes == 0) throw std::invalid_argument("p2pmesh: max_link_queue_bytes is 0");
  if (config_.max_inbound_bytes == 0) throw std::invalid_argument("p2pmesh: max_inbound_bytes is 0");
  seed_ = config_.seed ? config_.seed : std::random_device{}() * 0x9e3779b97f4a7c15ULL ^ std::random_device{}();
  rng_.seed(seed_);
  // The mesh's rules are the core's (MeshConfig::validate); the driver's own above.
  if (const std::string problem = mesh_config().validate(); !problem.empty()) {
    throw std::invalid_argument("p2pmesh: " + problem);
  }
  rtc_options_.loopback_only = config_.loopback_only;
  rtc_options_.ice_servers = config_.ice_servers;
}

MeshConfig Peer::Impl::mesh_config() const {
  MeshConfig mesh;
  mesh.group = config_.group;
  mesh.target_connections = config_.target_connections;
  mesh.max_connections = config_.max_connections;
  mesh.link_connect_timeout = config_.link_connect_timeout.count() * kMillisecond;
  mesh.status_interval = config_.status_interval.count() * kMillisecond;
  mesh.member_timeout = config_.member_timeout.count() * kMillisecond;
  switch (config_.tree_mode) {
    case PeerConfig::TreeMode::unit: mesh.tree.mode = TreeMode::unit; break;
    case PeerConfig::TreeMode::latency: mesh.tree.mode = TreeMode::latency; break;
    case PeerConfig::TreeMode::blend: mesh.tree.mode = TreeMode::blend; break;
  }
  mesh.tree.alpha = config_.tree_alpha;
  mesh.tree.max_depth = config_.tree_max_depth < 0 ? TreeOptions::kNoDepthLimit
                                                   : static_cast<std::uint32_t>(config_.tree_max_depth);
  mesh.fallback = config_.fallback;
  mesh.report_interval = config_.report_interval.count() * kMillisecond;
  mesh.observer_commands = config_.observer_commands;
  if (config_.sign_broadcasts) mesh.public_key = key_.public_key();
  mesh.require_signatures = config_.require_signatures;
  mesh.max_receiver_tags = config_.max_receiver_tags;
  mesh.seed = seed_ + reconnects_ * 0x9e3779b97f4a7c15ULL;
  return mesh;
}

void Peer::Impl::start() {
  if (started_.exchange(true)) throw std::logic_error("p2pmesh: Peer::start() called twice");
  engine_ = native::rtc_engine(config_.loopback_only);
  poster_ = std::make_shared<LoopPoster>(io_);
  checker_ = std::make_unique<native::SignatureChecker>(
      [this, poster = poster_](std::vector<native::SignatureChecker::Verdict> verdicts) {
        poster->post([this, verdicts = std::move(verdicts)] {
          for (const native::SignatureChecker::Verdict& v : verdicts) {
            if (v.epoch != epoch_ || !node_) continue;  // a session since ended
            node_->on_signature_checked(steady_now(), v.ticket, v.valid);
          }
          drain();
        });
      });
  inbound_ = std::make_shared<native::InboundBudget>(config_.max_inbound_bytes);
  work_.emplace(io_.get_executor());
  running_ = true;
  std::promise<void> ready;
  auto ready_future = ready.get_future();
  thread_ = std::thread([this, &ready] {
    loop_thread_id_ = std::this_thread::get_id();
    ready.set_value();
    io_.run();
  });
  ready_future.wait();
  asio::post(io_, [this] {
    set_state(PeerSnapshot::State::connecting);
    connect();
  });
}

// ------------------------------------------------------------ server session

void Peer::Impl::connect() {
  if (stopping_) return;
  const native::WsUrl& url = urls_[url_index_ % urls_.size()];
  node_ = std::make_unique<MeshNode>(mesh_config());
  node_->resume_delivery(delivery_positions_);
  rtc_options_.ice_servers = config_.ice_servers;  // until the welcome brings meshd's
  relay_failure_reported_ = false;
  if (!report_app_json_.empty()) node_->set_report_app_json(report_app_json_);
  ++epoch_;
  WsClient::Handlers handlers;
  const std::uint64_t epoch = epoch_;
  handlers.open = [this, epoch] {
    if (epoch == epoch_) on_ws_open();
  };
  handlers.frame = [this, epoch](std::string_view frame) {
    if (epoch == epoch_) on_ws_frame(frame);
  };
  handlers.closed = [this, epoch](std::string reason) {
    if (epoch == epoch_) on_ws_closed(std::move(reason));
  };
  ws_ = std::make_shared<WsClient>(io_, url, std::move(handlers), tls_);
  ws_->set_token(config_.token);
  ws_->start();
}

void Peer::Impl::on_ws_open() {}

void Peer::Impl::on_ws_frame(std::string_view frame) {
  ++driver_.server_frames_in;
  if (!node_->on_server_frame(steady_now(), frame)) {
    ++driver_.bad_server_frames;
    return;
  }
  if (id_ == kNoPeer && node_->id() != kNoPeer) {  // the welcome
    attempt_ = 0;
    last_error_.clear();
    id_ = node_->id();
    set_state(PeerSnapshot::State::joined);
    {
      std::lock_guard lock(joined_mutex_);
    }
    joined_cv_.notify_all();
  }
  drain();
}

void Peer::Impl::on_ws_closed(std::string reason) {
  last_error_ = reason;
  const bool rejected = ws_ && ws_->token_rejected();
  if (callbacks_.on_error) {
    const bool joined = id_ != kNoPeer;
    callbacks_.on_error({rejected ? PeerError::Kind::token_rejected
                         : joined ? PeerError::Kind::server_lost
                                  : PeerError::Kind::server_unreachable,
                         std::move(reason), kNoPeer});
  }
  end_session();
  if (stopping_) return;
  if (rejected) {
    // Every node of a cluster shares the key: retrying with the same token
    // elsewhere would only be refused again.
    set_state(PeerSnapshot::State::rejected);
    return;
  }
  set_state(PeerSnapshot::State::reconnecting);
  schedule_reconnect();
}

void Peer::Impl::end_session() {
  // The core closes every link and tells the application each link and
  // member went away; the next session starts a fresh MeshNode with a new id.
  if (node_) {
    delivery_positions_ = node_->delivery_positions();  // before it forgets the members
    node_->on_server_lost(steady_now());
    drain();
  }
  std::vector<LinkId> ids;
  for (auto& entry : links_) ids.push_back(entry.first);
  for (const LinkId id : ids) close_slot(id);
  node_.reset();
  ++epoch_;
  ws_.reset();
  wake_timer_.cancel();
  wake_at_ = kNever;
  id_ = kNoPeer;
}

void Peer::Impl::schedule_reconnect() {
  ++reconnects_;
  ++url_index_;
  const double base = static_cast<double>(config_.reconnect_initial.count()) *
                      static_cast<double>(1u << std::min(attempt_, 16));
  const double capped = std::min(base, static_cast<double>(config_.reconnect_max.count()));
  std::uniform_real_distribution<double> jitter(0.75, 1.25);
  ++attempt_;
  reconnect_timer_.expires_after(
      std::chrono::milliseconds(static_cast<std::int64_t>(capped * jitter(rng_))));
  reconnect_timer_.async_wait([this](boost::system::error_code ec) {
    if (!ec && !stopping_) connect();
  });
}

void Peer::Impl::set_state(PeerSnapshot::State state) {
  state_ = state;
  if (callbacks_.on_state) callbacks_.on_state(state, id_.load());
}

// ------------------------------------------------------------ core actions

void Peer::Impl::drain() {
  if (!node_) return;
  const std::uint64_t epoch = epoch_;
  for (std::vector<Action> actions = node_->take_actions(); !actions.empty();
       actions = node_->take_actions()) {
    for (Action& action : actions) {
      carry_out(action);
      if (epoch != epoch_ || !node_) return;  // a callback ended the session
    }
  }
}

void Peer::Impl::carry_out(Action& action) {
  const auto to_server = [this](std::string frame) {
    if (ws_ && ws_->send(std::move(frame))) ++driver_.server_frames_out;
  };
  const auto slot_of = [this](LinkId link) -> LinkSlot* {
    auto it = links_.find(link);
    return it == links_.end() ? nullptr : &it->second;
  };
  const auto new_slot = [this](LinkId link, PeerId peer) -> LinkSlot& {
    LinkSlot& slot = links_[link];
    slot.id = link;
    slot.peer = peer;
    return slot;
  };
  std::visit(
      Overloaded{
          [&](Subscribe& a) { to_server(server_frame(a)); },
          [&](Publish& a) { to_server(server_frame(a)); },
          [&](OpenLink& a) {
            LinkSlot& slot = new_slot(a.link, a.peer);  // before the engine can call back
            slot.rtc = RtcLink::open(engine_, rtc_options_, link_events(a.link));
          },
          [&](AcceptLink& a) {
            LinkSlot& slot = new_slot(a.link, a.peer);
            slot.rtc = RtcLink::accept(engine_, rtc_options_, a.offer_json, link_events(a.link));
          },
          [&](ApplyAnswer& a) {
            if (LinkSlot* slot = slot_of(a.link)) slot->rtc->apply_answer(a.answer_json);
          },
          [&](AddCandidate& a) {
            if (LinkSlot* slot = slot_of(a.link)) slot->rtc->add_candidate(a.candidate_json);
          },
          [&](CloseLink& a) { close_slot(a.link); },
          [&](SendOnLink& a) {
            LinkSlot* slot = slot_of(a.link);
            if (!slot) return;
            if (a.unreliable && send_unreliable(*slot, a.bytes)) return;
            enqueue(*slot, std::move(a.bytes));
          },
          [&](UseIceServers& a) {
            // The application's own servers win; else meshd's, fresh credentials each session.
            if (config_.ice_servers.empty()) rtc_options_.ice_servers = std::move(a.servers);
          },
          [&](MeasureRtt& a) {
            if (LinkSlot* slot = slot_of(a.link); slot && slot->open) slot->rtc->request_stats();
          },
          [&](Deliver& a) {
            if (callbacks_.on_received) {
              callbacks_.on_received(
                  ReceivedMessage{a.source, a.seq, a.reliable, a.verified, std::move(a.payload)});
            } else if (callbacks_.on_message) {
              callbacks_.on_message(a.source, a.payload);
            }
          },
          [&](Gap& a) {
            if (callbacks_.on_gap) callbacks_.on_gap(a.source, a.from_seq, a.to_seq);
          },
          [&](PeerJoined& a) {
            if (callbacks_.on_peer_joined) callbacks_.on_peer_joined(a.peer);
          },
          [&](PeerLeft& a) {
            if (callbacks_.on_peer_left) callbacks_.on_peer_left(a.peer);
          },
          [&](LinkUp& a) {
            if (callbacks_.on_link_up) callbacks_.on_link_up(a.peer);
          },
          [&](LinkDown& a) {
            if (callbacks_.on_link_down) callbacks_.on_link_down(a.peer);
          },
          [&](ObserverCommand& a) {
            if (callbacks_.on_observer_command) callbacks_.on_observer_command(a.from, a.body);
          },
          [&](WakeAt& a) { wake(a.at); },
          // Ed25519 here and now (tens of microseconds): the core goes on at once.
          [&](SignBroadcast& a) {
            node_->on_broadcast_signed(steady_now(), a.id, key_.sign(a.message),
                                       tags_.tag(a.message, a.receivers));
          },
          // Our receiver tag here and now (a couple of microseconds); the
          // signature off the loop (tens of microseconds each).
          [&](VerifySignature& a) {
            if (!a.receiver_tag.empty()) {
              if (tags_.check(a.public_key, a.message, a.receiver_tag)) {
                ++driver_.receiver_tags_checked;
                node_->on_signature_checked(steady_now(), a.ticket, true);
                return;
              }
              ++driver_.receiver_tags_failed;
            }
            checker_->check({epoch_, a.ticket, std::move(a.public_key), std::move(a.message),
                             std::move(a.signature)});
          },
      },
      action);
}

void Peer::Impl::wake(TimeUs at) {
  wake_at_ = at;
  if (at == kNever) {
    wake_timer_.cancel();
    return;
  }
  const TimeUs delay = std::max<TimeUs>(0, at - steady_now());
  wake_timer_.expires_after(std::chrono::microseconds(delay));
  const std::uint64_t epoch = epoch_;
  wake_timer_.async_wait([this, epoch, at](boost::system::error_code ec) {
    if (ec || epoch != epoch_ || !node_ || wake_at_ != at) return;
    node_->on_tick(steady_now());
    drain();
  });
}

// ------------------------------------------------------------ links

template <class Fn>
void Peer::Impl::on_link_event(std::uint64_t epoch, LinkId link, Fn&& fn) {
  if (epoch != epoch_ || !node_) return;
  auto it = links_.find(link);
  if (it == links_.end()) return;  // closed meanwhile
  fn(it->second);
  drain();
}

native::LinkEvents Peer::Impl::link_events(LinkId link) {
  native::LinkEvents events;
  const std::uint64_t epoch = epoch_;
  auto poster = poster_;
  events.local_description = [this, poster, epoch, link](std::string text) {
    poster->post([this, epoch, link, text = std::move(text)]() mutable {
      on_link_event(epoch, link, [&](LinkSlot&) {
        node_->on_local_description(steady_now(), link, std::move(text));
      });
    });
  };
  events.local_candidate = [this, poster, epoch, link](std::string text) {
    poster->post([this, epoch, link, text = std::move(text)]() mutable {
      on_link_event(epoch, link, [&](LinkSlot&) {
        node_->on_local_candidate(steady_now(), link, std::move(text));
      });
    });
  };
  events.open = [this, poster, epoch, link] {
    poster->post([this, epoch, link] {
      on_link_event(epoch, link, [&](LinkSlot& slot) {
        slot.open = true;
        node_->on_link_open(steady_now(), link);
      });
    });
  };
  events.closed = [this, poster, epoch, link](std::string reason) {
    poster->post([this, epoch, link, reason = std::move(reason)]() mutable {
      if (epoch != epoch_ || !node_ || !links_.count(link)) return;
      ++driver_.link_failures;
      if (callbacks_.on_error) {
        callbacks_.on_error({PeerError::Kind::link_failed, std::move(reason), links_.at(link).peer});
      }
      close_slot(link);
      node_->on_link_closed(steady_now(), link);
      drain();
    });
  };
  events.data = [this, poster, inbound = inbound_, epoch, link](std::string bytes) {
    if (!inbound->take(bytes.size())) return;
    poster->post([this, inbound, epoch, link, bytes = std::move(bytes)] {
      inbound->give_back(bytes.size());
      on_link_event(epoch, link, [&](LinkSlot&) {
        driver_.link_bytes_in += bytes.size();
        node_->on_link_data(steady_now(), link, bytes);
      });
    });
  };
  events.writable = [this, poster, epoch, link] {
    poster->post([this, epoch, link] {
      if (epoch != epoch_) return;
      auto it = links_.find(link);
      if (it != links_.end() && it->second.waiting &&
          may_resume(it->second.rtc->buffered_amount())) {
        flush(link, true);
      }
    });
  };
  events.path = [this, poster, epoch, link](CandidateType type) {
    poster->post([this, epoch, link, type] {
      on_link_event(epoch, link,
                    [&](LinkSlot&) { node_->on_link_candidate_type(steady_now(), link, type); });
    });
  };
  events.relay_failed = [this, poster, epoch, link](std::string reason) {
    poster->post([this, epoch, link, reason = std::move(reason)]() mutable {
      on_link_event(epoch, link, [&](LinkSlot& slot) {
        node_->on_relay_allocation_failed(steady_now());
        if (relay_failure_reported_ || !callbacks_.on_error) return;
        relay_failure_reported_ = true;
        callbacks_.on_error({PeerError::Kind::relay_unavailable,
                             "TURN allocation failed: " + std::move(reason), slot.peer});
      });
    });
  };
  events.rtt = [this, poster, epoch, link](std::uint32_t rtt_us) {
    poster->post([this, epoch, link, rtt_us] {
      on_link_event(epoch, link,
                    [&](LinkSlot&) { node_->on_link_rtt(steady_now(), link, rtt_us); });
    });
  };
  return events;
}

void Peer::Impl::close_slot(LinkId link) {
  auto it = links_.find(link);
  if (it == links_.end()) return;
  std::unique_ptr<RtcLink> rtc = std::move(it->second.rtc);
  links_.erase(it);
  if (rtc) rtc->close();
}

// Backpressure as link_send_policy.hpp states it (the browser follows it too).
void Peer::Impl::enqueue(LinkSlot& slot, std::string bytes) {
  if (!fits_queue(slot.queued_bytes, bytes.size(), config_.max_link_queue_bytes)) {
    ++driver_.send_queue_drops;
    if (!slot.dropping && callbacks_.on_error) {
      callbacks_.on_error({PeerError::Kind::send_queue_full,
                           "send queue of " + std::to_string(slot.queued_bytes) +
                               " bytes full: packets dropped until it drains",
                           slot.peer});
    }
    slot.dropping = true;
    return;
  }
  slot.queued_bytes += bytes.size();
  slot.queue.push_back(std::move(bytes));
  if (!slot.waiting && slot.queue.size() == 1) flush(slot.id, false);
}

void Peer::Impl::flush(LinkId link, bool check_first) {
  auto it = links_.find(link);
  if (it == links_.end()) return;
  LinkSlot& slot = it->second;
  slot.waiting = false;
  int sent = 0;
  while (!slot.queue.empty()) {
    if (check_first || ++slot.since_check >= 16) {
      check_first = false;
      slot.since_check = 0;
      if (slot.rtc->buffered_amount() > kChannelHighWater) {
        slot.waiting = true;  // resumed by the `writable` event, at the low mark
        return;
      }
    }
    if (sent == kSendsPerTurn) {
      slot.waiting = true;
      const std::uint64_t epoch = epoch_;
      asio::post(io_, [this, epoch, link] {
        if (epoch == epoch_) flush(link, true);
      });
      return;
    }
    std::string& bytes = slot.queue.front();
    if (slot.rtc->send(bytes)) {
      driver_.link_bytes_out += bytes.size();
    } else {
      ++driver_.send_queue_drops;  // channel not open (closing): dropped
    }
    slot.queued_bytes -= bytes.size();
    slot.queue.pop_front();
    ++sent;
  }
  slot.dropping = false;  // drained: a new overflow is reported again
}

bool Peer::Impl::send_unreliable(LinkSlot& slot, std::string_view bytes) {
  if (!slot.rtc) return false;
  switch (slot.rtc->send_unreliable(bytes)) {
    case RtcLink::UnreliableSend::sent: driver_.link_bytes_out += bytes.size(); return true;
    case RtcLink::UnreliableSend::congested: ++driver_.send_queue_drops; return true;
    case RtcLink::UnreliableSend::not_open: return false;
  }
  return false;
}

// ------------------------------------------------------------ application

std::uint64_t Peer::Impl::broadcast(std::string payload, BroadcastOptions options) {
  static_assert(kMaxPayloadBytes == kDefaultMaxPayloadBytes);
  if (payload.size() > kMaxPayloadBytes) {
    throw std::length_error("p2pmesh: broadcast payload of " + std::to_string(payload.size()) +
                            " bytes, the limit is " + std::to_string(kMaxPayloadBytes));
  }
  if (state_.load() != PeerSnapshot::State::joined || !running_) return 0;
  const DeliveryMode delivery = options.reliable ? DeliveryMode::reliable : DeliveryMode::unreliable;
  const auto send = [this, delivery](std::string bytes) -> std::uint64_t {
    if (!node_ || node_->id() == kNoPeer || stopping_) return 0;
    const std::uint64_t seq = node_->broadcast(steady_now(), std::move(bytes), delivery);
    drain();
    return seq;
  };
  if (on_loop_thread()) {
    // From a callback, inside drain(): its loop carries the new actions out
    // after the current ones (a nested drain would reorder them).
    if (!node_ || node_->id() == kNoPeer || stopping_) return 0;
    const std::uint64_t seq = node_->broadcast(steady_now(), std::move(payload), delivery);
    asio::post(io_, [this] { drain(); });
    return seq;
  }
  // Shared: after a timeout the posted task may still run (see snapshot()).
  auto promise = std::make_shared<std::promise<std::uint64_t>>();
  auto future = promise->get_future();
  asio::post(io_, [send, promise, payload = std::move(payload)]() mutable {
    promise->set_value(send(std::move(payload)));
  });
  if (future.wait_for(std::chrono::seconds(5)) != std::future_status::ready) return 0;
  return future.get();
}

void Peer::Impl::set_report_app_json(std::string json) {
  asio::post(io_, [this, json = std::move(json)]() mutable {
    report_app_json_ = std::move(json);
    if (node_) node_->set_report_app_json(report_app_json_);
  });
}

void Peer::Impl::set_token(std::string token) {
  asio::post(io_, [this, token = std::move(token)]() mutable {
    config_.token = std::move(token);
    if (state_ != PeerSnapshot::State::rejected || stopping_) return;
    attempt_ = 0;
    set_state(PeerSnapshot::State::connecting);
    connect();
  });
}

bool Peer::Impl::wait_joined(std::chrono::milliseconds timeout) {
  std::unique_lock lock(joined_mutex_);
  return joined_cv_.wait_for(lock, timeout,
                             [this] { return state_.load() == PeerSnapshot::State::joined; });
}

void Peer::Impl::stop() {
  if (!started_ || stopping_.exchange(true)) {
    if (thread_.joinable() && !on_loop_thread()) thread_.join();
    return;
  }
  if (on_loop_thread()) {
    stopping_ = false;
    throw std::logic_error("p2pmesh: Peer::stop() called from a callback");
  }
  asio::post(io_, [this] {
    reconnect_timer_.cancel();
    if (node_ && node_->id() != kNoPeer) {
      node_->leave(steady_now());  // the goodbye and every CloseLink
      drain();
    }
    std::vector<LinkId> ids;
    for (auto& entry : links_) ids.push_back(entry.first);
    for (const LinkId id : ids) close_slot(id);
    if (ws_) {
      ws_->close(std::chrono::milliseconds(1000), [this] { finish_stop(); });
    } else {
      finish_stop();
    }
  });
  thread_.join();
  running_ = false;
  poster_->disable();
  if (engine_) native::rtc_engine_flush(*engine_);
}

void Peer::Impl::finish_stop() {
  if (node_) final_core_counters_ = node_->counters();
  node_.reset();
  ws_.reset();
  wake_timer_.cancel();
  id_ = kNoPeer;
  set_state(PeerSnapshot::State::stopped);
  work_.reset();
  io_.stop();
}

PeerSnapshot Peer::Impl::snapshot() {
  if (!running_ || on_loop_thread()) return build_snapshot();
  // Shared: after a timeout the posted task may still run, and must not touch
  // a promise that died with this frame.
  auto promise = std::make_shared<std::promise<PeerSnapshot>>();
  auto future = promise->get_future();
  asio::post(io_, [this, promise] { promise->set_value(build_snapshot()); });
  if (future.wait_for(std::chrono::seconds(5)) != std::future_status::ready) {
    // The loop has stopped meanwhile: nothing runs there any more.
    PeerSnapshot s;
    s.state = state_.load();
    return s;
  }
  return future.get();
}

PeerSnapshot Peer::Impl::build_snapshot() {
  PeerSnapshot s;
  s.state = state_.load();
  s.reconnects = reconnects_;
  s.last_error = last_error_;
  s.counters = driver_;
  if (inbound_) s.counters.receive_drops = inbound_->drops();
  if (!node_ && final_core_counters_) native::copy_core_counters(*final_core_counters_, s.counters);
  if (!node_ || node_->id() == kNoPeer) return s;
  s.id = node_->id();
  if (ws_) s.server_url = ws_->url().text;
  s.members = node_->membership().members();
  const TimeUs now = steady_now();
  for (const Link& link : node_->links().all()) {
    PeerSnapshot::Link out;
    out.peer = link.peer;
    out.initiated = link.initiated;
    out.open = link.state == LinkState::open;
    out.rtt_us = link.rtt_us;
    out.candidate_type = link.candidate_type;
    out.age = std::chrono::milliseconds((now - link.created_at) / kMillisecond);
    auto it = links_.find(link.id);
    if (it != links_.end()) {
      out.queued_bytes = it->second.queued_bytes;
      out.unreliable_channel = it->second.rtc && it->second.rtc->unreliable_open();
    }
    s.links.push_back(out);
  }
  const MeshView& view = node_->membership().view();
  for (const PeerId a : view.peers()) {
    for (const Neighbour& n : view.neighbours(a)) {
      if (a < n.peer) s.mesh.push_back({a, n.peer});
    }
  }
  std::sort(s.mesh.begin(), s.mesh.end(),
            [](const auto& x, const auto& y) { return std::tie(x.a, x.b) < std::tie(y.a, y.b); });
  const BroadcastTree& tree = node_->tree();
  for (const wire::Edge& e : tree.edges) s.tree.push_back({e.u, e.v});
  for (const PeerId peer : tree.reached) {
    if (peer != s.id) s.reachable.push_back(peer);
  }
  std::sort(s.reachable.begin(), s.reachable.end());
  native::copy_core_counters(node_->counters(), s.counters);
  return s;
}

// By name: every counter of the core has a field of the same name in the
// snapshot (tests/native checks that none is missing).
void native::copy_core_counters(const MeshCounters& from, PeerSnapshot::Counters& to) {
  for_each_counter(from, [&to](const char* name, std::uint64_t value) {
    for_each_counter(to, [&](const char* field, std::uint64_t& slot) {
      if (std::strcmp(name, field) == 0) slot = value;
    });
  });
}

// ------------------------------------------------------------ Peer

Peer::Peer(PeerConfig config, PeerCallbacks callbacks)
    : impl_(std::make_unique<Impl>(std::move(config), std::move(callbacks))) {}

Peer::~Peer() {
  try {
    if (impl_) stop();
  } catch (...) {
  }
}

Peer::Peer(Peer&&) noexcept = default;

Peer& Peer::operator=(Peer&& other) noexcept {
  if (this != &other) {
    try {
      if (impl_) stop();
    } catch (...) {
    }
    impl_ = std::move(other.impl_);
  }
  return *this;
}

void Peer::start() { impl_->start(); }
void Peer::stop() { impl_->stop(); }
void Peer::leave() { impl_->stop(); }
std::uint64_t Peer::broadcast(std::string payload, BroadcastOptions options) {
  return impl_->broadcast(std::move(payload), options);
}
void Peer::set_report_app_json(std::string json) { impl_->set_report_app_json(std::move(json)); }
void Peer::set_token(std::string token) { impl_->set_token(std::move(token)); }
void Peer::set_report_info(std::string json) { impl_->set_report_app_json(std::move(json)); }
PeerSnapshot Peer::snapshot() const { return impl_->snapshot(); }
PeerId Peer::id() const { return impl_->id(); }
std::string Peer::public_key() const { return impl_->public_key(); }
bool Peer::wait_joined(std::chrono::milliseconds timeout) const {
  return impl_->wait_joined(timeout);
}

}  // namespace p2pmesh
