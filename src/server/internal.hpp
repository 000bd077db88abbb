#pragma once
// meshd internals: the event-loop objects behind meshd::Server.
//
//  ServerImpl   the event loops (one per thread), listener, shutdown
//  EventLoop    one thread: its sessions, batched flushes, inbox (event_loop.hpp)
//  HttpSession  one HTTP connection, after its TLS handshake with TLS on
//               (healthz, metrics, static files, and the upgrade to a
//               WsSession on /service)
//  WsSession    one WebSocket peer: meshd's own framing (ws_frame.hpp) over
//               the Transport, an outbound queue of shared frames written
//               with one sendmsg (TLS: one SSL_write per record) per flush
//  Transport    the connection's socket, with TLS on top when meshd has a
//               certificate (transport.hpp)
//  Broker       topics, groups, member status, access rules, fan-out
//
// Data frames are encoded once as a complete WebSocket frame (server
// frames are unmasked, so every subscriber gets the same bytes) and its
// reference is appended to each subscriber's queue. Flushes are batched: a
// session that receives data is marked dirty; its loop flushes the dirty
// list once per turn (EventLoop::run: the handlers that are ready, then the
// flush), so everything published in a turn costs
// one sendmsg per subscriber.
//
// Threads: a session lives on one EventLoop. The broker is shared behind one
// mutex; a publication is fanned out under it, directly into the queues of
// subscribers on the publisher's loop and through the inbox of every other
// loop for the rest.

#include <sys/uio.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "address_limits.hpp"
#include "auth.hpp"
#include "client.hpp"
#include "cluster.hpp"
#include "config.hpp"
#include "event_loop.hpp"
#include "frame.hpp"
#include "ice_credentials.hpp"
#include "member_record.hpp"
#include "topic_batcher.hpp"
#include "metrics.hpp"
#include "peer_id.hpp"
#include "peer_slot_index.hpp"
#include "transport.hpp"
#include "wire.hpp"
#include "ws_frame.hpp"

namespace meshd {

namespace asio = boost::asio;

namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using p2pmesh::PeerId;

class ServerImpl;
class WsSession;
struct Topic;
struct Group;

// ---------------------------------------------------------------------------

class WsSession : public Client, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(EventLoop& loop, Transport&& transport, PeerId id);
  ~WsSession() override;

  // `request` passed ws::check_upgrade. `early_input`: bytes the client sent
  // after its request, already read by the HTTP session.
  void start(const http::request<http::string_body>& request, std::string early_input);

  void set_address_slot(AddressLimits::Slot&& slot) { address_slot_ = std::move(slot); }
  bool accepting() const override { return state_ == State::open; }

  // Does not flush: its loop flushes every dirty session at the end of its
  // turn (EventLoop::run). On the session's own loop only.
  void deliver(FrameRef frame) override;

  // Writes as much of the queue as the socket takes. flush() waits for
  // writability when the socket is full; flush_now() returns true then.
  void flush();
  bool flush_now();

  // --idle-timeout, from the loop's sweep: a ping after half of it without
  // input, the socket closed after all of it.
  void check_idle(Clock::time_point now);

  // A close frame with this code and reason; the connection ends when the
  // client answers it, or after --handshake-timeout.
  void close(websocket::close_code code, std::string_view reason) override;
  // Abrupt close of the socket (idle, shutdown deadline).
  void abort();
  bool rehome(EventLoop& to) override;

  // Event-loop bookkeeping.
  std::uint32_t registry_index = 0;
  bool dirty = false;

 private:
  // open: messages flow. closing: meshd sent its close frame, waits for the
  // client's. ending: the close handshake is over (or the connection
  // failed): the queue is written, then the sending side shut down, and
  // input is discarded until the client closes too. done: socket closed.
  enum class State : std::uint8_t { open, closing, ending, done };

  // One readiness wait per connection, no buffer: input is read into the
  // loop's buffer once it is there.
  void wait_readable();
  // The one wait: readable, or (TLS, OpenSSL writing first) writable.
  void wait_then_read(tcp::socket::wait_type type);
  void read_input();
  // --threads > 1: goes to Client::home, the loop of its group, if it can
  // now (between two reads, nothing pending); true when it went.
  bool move_home();
  // On the new loop, after rehome().
  void arrive();
  // Parses input and acts on it; false when reading must stop (a message
  // is held for the rate, or the connection is done).
  bool consume(char* data, std::size_t size);
  void hold(Clock::duration wait);
  void release_held();
  void resume_after_hold();
  void on_client_close(std::uint16_t code);
  void on_protocol_error(const ws::Event& event);
  // The close handshake is over: leave the broker, write what is queued,
  // then shut the sending side down.
  void end_connection();
  void arm_close_deadline();
  void queue_control(ws::Opcode opcode, std::string_view payload);
  void queue_close(std::uint16_t code, std::string_view reason);
  void queue(FrameRef frame);
  FrameRef new_frame();
  void finish(beast::error_code ec);
  void drop_queue(bool keep_partial_head);

  Transport transport_;
  ws::FrameReader reader_;
  std::vector<FrameRef> out_;
  std::uint32_t out_head_ = 0;   // first unsent frame
  std::uint32_t head_sent_ = 0;  // bytes of out_[out_head_] already sent (one frame's)
  std::size_t out_bytes_ = 0;    // unsent bytes in the queue
  // A message held for the rate, and the input that followed it: parsed
  // once the message is taken. Null otherwise.
  struct Held {
    std::string message;
    std::string unread;
  };
  std::unique_ptr<Held> held_;
  // Exists only once needed: the hold of a message (open), then the close
  // deadline (closing, ending).
  std::unique_ptr<asio::steady_timer> timer_;
  Clock::time_point last_input_{};  // any input: a frame, part of one, a pong (the idle sweep)
  AddressLimits::Slot address_slot_;    // --max-connections-per-ip
  State state_ = State::open;
  bool pinged_ : 1 = false;        // an idle ping is out, since last_input_
  bool read_waiting_ : 1 = false;  // a readiness wait (or a read) is pending
  bool paused_ : 1 = false;        // a message is held: nothing is read
  bool write_waiting_ : 1 = false;
  bool broken_ : 1 = false;
  bool close_queued_ : 1 = false;      // a close frame is queued: no data frame may follow it
  bool shutdown_pending_ : 1 = false;  // ending: shut the sending side down once the queue is written
  bool greeted_ : 1 = false;           // the 101 response and the welcome are written
};

// ---------------------------------------------------------------------------
// Broker

struct Topic {
  std::string name;
  std::vector<Client*> subscribers;  // one frame per message
  Group* group = nullptr;  // set for <group>.mesh
  // <group>.mesh subscribers that asked for batches (SubscribeRequest.batch_ms,
  // the largest delay each takes): not in `subscribers`; their messages wait
  // in `batcher` for the shortest of those delays at most.
  std::vector<std::pair<Client*, std::uint32_t>> batched;
  p2pmesh::TopicBatcher batcher;
  Clock::duration batch_window() const;
  bool empty() const { return subscribers.empty() && batched.empty(); }
};

struct Member {
  Client* session = nullptr;  // null: a member on another node (cluster)
  PeerId id = p2pmesh::kNoPeer;
  bool at_home = false;  // placed on the group's loop (EventLoop::homed_members)
  p2pmesh::MemberRecord record;  // its own mesh updates, for the snapshot
  Clock::time_point heard{};  // remote: last update received
};

struct Group {
  std::string name;
  Topic* mesh = nullptr;
  // Read and iterate freely; add and remove through add() and remove(),
  // which keep the index by id.
  std::vector<Member> members;
  // --threads > 1: the loop its members move to (that of its first member).
  EventLoop* home = nullptr;
  Clock::time_point snapshot_asked{};  // cluster: our last snapshot request
  // Found by id (every status a member publishes looks its sender up: a
  // scan of 10,000 members was ~1% of meshd's CPU). Ids are unique among
  // members: local ones carry this node's number, remote ones another's.
  Member* find(const Client& session);
  Member* find_remote(PeerId id);
  Member* find_id(PeerId id);  // local or remote
  Member& add(Member member);
  // Takes `member` out (the last one moves into its place) and its links
  // out of the others' records: the snapshot says what live views say, no
  // link with a departed member (MemberRecord::forget_link). Its record.
  p2pmesh::MemberRecord remove(Member& member);

 private:
  p2pmesh::PeerSlotIndex position_;  // member id -> its index in `members`
};

struct StringHash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const noexcept {
    return std::hash<std::string_view>{}(s);
  }
};

class Broker {
 public:
  Broker(const Config& config, Metrics& metrics, FramePool& frames);
  ~Broker();

  // Both take the broker's lock; called on the session's own loop.
  // on_message returns zero when the message was handled (or dropped), else
  // how long it must wait for the sender's rate: nothing was done with it,
  // the caller hands the same bytes in again after that time.
  Clock::duration on_message(Client& session, std::string_view bytes, Clock::time_point now);
  // Unsubscribes everything; with notify, publishes departure notices.
  // Hands over every pending delivery (also those for this session, which
  // its loop then drains before the session can be destroyed).
  void remove_session(Client& session, bool notify);
  // The end of an event loop's turn (several loops): what the turn's
  // messages published for other loops goes to their inboxes.
  void end_turn();
  // On the client's loop: moves it to `to` (Client::rehome) with every
  // delivery so far in its queue; false when it could not move.
  bool move(Client& client, EventLoop& to);

  // Cluster (cluster.hpp); null without --nats. Set before the loops run.
  void set_cluster(Cluster* cluster) { cluster_ = cluster; }
  // Batches (SubscribeRequest.batch_ms): `arm` is called, under the lock,
  // with the time a pending batch is due; whoever it is then calls
  // flush_batches on that loop. Set before the loops run.
  void set_batch_timer(std::function<void(Clock::time_point)> arm) { arm_batch_ = std::move(arm); }
  // The event loops, where groups find a home (place). Set before the loops run.
  void set_loops(std::vector<EventLoop*> loops) { loops_ = std::move(loops); }
  void flush_batches(EventLoop& loop);
  // Loop 0 (`loop`), from the cluster: a publication or status from another
  // node; a node asking for our members' statuses; a node that died.
  void on_remote(const Envelope& envelope, EventLoop& loop);
  void on_snapshot_request(std::string_view mesh_topic, unsigned node);
  void forget_node(unsigned node, EventLoop& loop);
  // The end of a node's snapshot reply: its remote members not listed are gone.
  void on_snapshot_end(const Envelope& envelope, EventLoop& loop);
  // Loop 0, NATS (re)connected: ask every node (node < 0) or one node again
  // for the groups we have, and let them keep our members' statuses again.
  void resync(int node);

 private:
  Clock::duration handle(Client& session, std::string_view bytes, Clock::time_point now);
  void subscribe(Client& session, std::string_view topic, std::uint32_t batch_ms);
  void unsubscribe(Client& session, std::string_view topic);
  void publish(Client& session, const std::vector<std::string_view>& topics,
               std::string_view payload, Clock::time_point now);
  bool may_subscribe(const Client& session, std::string_view topic);
  bool granted(const Client& session, std::string_view topic);
  void join_group(Topic& mesh_topic, Client& session, bool batched);
  // --threads > 1: asks a newcomer to move to the group's loop (Client::home).
  // True when it counts as one of the group's members on that loop.
  bool place(Group& group, Client& session);
  // The loop with the fewest members placed on it: a new group's home.
  EventLoop& least_loaded_loop();
  void leave_group(Group& group, Client& session, bool notify);
  // Where the session's own mesh updates for group `group_name` are kept:
  // its Member of `group` (null while the group has no mesh topic), else its
  // EarlyRecord; null when it holds too many early records.
  p2pmesh::MemberRecord* record_for(Client& session, Group* group, std::string_view group_name);
  void unlink(Topic& topic, Client& session);
  // `source` (its record just updated with mesh_update_) said it closed a
  // link: the other end's record forgets it too (other_end_of_link_down).
  void forget_other_end(Group& group, PeerId source, const p2pmesh::MemberRecord& record);
  // Departure notice for `id` to the local subscribers of the group's mesh
  // topic (and, for a local member, to the other nodes); true when delivered locally.
  bool announce_departure(Group& group, PeerId id, const p2pmesh::MemberRecord& record,
                          EventLoop& origin, bool to_cluster);
  Topic& topic_for(std::string_view name);
  Topic* find_topic(std::string_view name);
  FrameRef encode(std::string_view topic, PeerId sender, std::string_view body);
  // A message to every subscriber of `topic`: a frame each for those that
  // take them one by one, into the topic's batch for the others.
  void publish_to(Topic& topic, PeerId sender, std::string_view body, Clock::time_point now,
                  EventLoop& origin);
  // Sends the topic's pending batch to its batch subscribers.
  void flush_batch(Topic& topic, Clock::time_point now, EventLoop& origin);
  // Subscribers on `origin` (the publisher's loop) get the frame at once;
  // the others through their loop's inbox, at hand_over().
  template <class Subscribers>
  void fan_out(const Subscribers& subscribers, const FrameRef& frame, const EventLoop& origin);
  FrameRef frame_of(std::string_view server_message);
  // Passes the deliveries collected for other loops to their inboxes. An
  // entry holds a plain session pointer: a subscriber leaves under the lock,
  // in remove_session, which hands everything over before it returns.
  void hand_over();

  struct Outgoing {
    EventLoop* loop = nullptr;
    std::vector<Delivery> deliveries;
  };

  std::mutex mutex_;  // guards everything below
  const Config& config_;
  Cluster* cluster_ = nullptr;
  Metrics& metrics_;
  FramePool& frames_;
  std::unordered_map<std::string, std::unique_ptr<Topic>, StringHash, std::equal_to<>> topics_;
  std::unordered_map<std::string, std::unique_ptr<Group>, StringHash, std::equal_to<>> groups_;
  std::vector<Outgoing> outgoing_;          // by loop index
  std::vector<Topic*> batching_;            // topics with a pending batch
  std::function<void(Clock::time_point)> arm_batch_;
  std::vector<EventLoop*> loops_;
  std::size_t next_home_ = 0;  // where least_loaded_loop starts looking (ties in turn)
  p2pmesh::wire::DecodeLimits limits_;
  p2pmesh::wire::ClientMessageView view_;    // reused: no allocation per message
  p2pmesh::wire::MeshUpdate mesh_update_;    // reused
};

// ---------------------------------------------------------------------------

class HttpSession;

class ServerImpl {
 public:
  explicit ServerImpl(Config config);
  ~ServerImpl();

  std::uint16_t listen();
  // Runs loop 0 on the calling thread and the others on threads of their own.
  void run();
  void stop();  // thread-safe

  EventLoop& loop(std::size_t index) { return *loops_[index]; }

  // Thread-safe.
  PeerId allocate_id();
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  bool destroying() const { return destroying_; }
  std::size_t session_count() const { return metrics.connections(); }
  // A loop that is shutting down has no connection left.
  void loop_drained();

  // Declared before the loops: they outlive them, since destroying a loop's
  // io_context may destroy sessions (held by pending handlers) that use them.
  Config config;
  WelcomeIceServers ice;  // the welcome's STUN/TURN servers, fresh TURN credentials
  std::optional<TokenVerifier> auth;  // --auth-key
  AddressLimits address_limits{config.max_connections_per_ip, config.max_handshakes_per_ip};
  Metrics metrics;
  FramePool frames;
  Broker broker;
  // With --nats. Outlives the loops (sessions dying with them leave the
  // broker, which tells the cluster), closed before them (its timer is on loop 0).
  std::unique_ptr<Cluster> cluster;
  std::atomic<std::size_t> http_connections{0};  // all loops
  std::uint16_t bound_port = 0;

 private:
  void do_accept();
  void begin_shutdown();  // loop 0
  void force_close();     // loop 0
  void finish_shutdown();
  void wait_signal();
  // SIGHUP: the certificate and key again from the same files; a failure
  // keeps the current ones.
  void reload_tls();
  // Any thread, under the broker's lock: batches due at `due` go out then.
  void arm_batch_timer(Clock::time_point due);
  EventLoop& main_loop() { return *loops_.front(); }

  std::atomic<PeerId> next_id_{1};
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> loops_running_{0};  // loops not yet drained by a shutdown
  bool finished_ = false;    // loop 0
  bool destroying_ = false;  // ~ServerImpl: sessions die with the io_contexts
  std::size_t next_loop_ = 0;  // round robin of accepted connections

  std::vector<std::unique_ptr<EventLoop>> loops_;
  TlsContext tls_context_;  // loop 0; null: plain HTTP and WebSocket
  // On loop 0; declared after the loops, so destroyed before its io_context.
  tcp::acceptor acceptor_;
  asio::steady_timer shutdown_timer_;
  asio::steady_timer accept_retry_;
  // The broker's batches (Broker::set_batch_timer): armed for the earliest due.
  asio::steady_timer batch_timer_;
  bool batch_timer_armed_ = false;
  std::optional<asio::signal_set> signals_;
};

// Starts serving one HTTP connection (upgrades on /service), on `loop`'s
// thread; with `tls` (not null) after a TLS handshake with that context.
void start_http_session(EventLoop& loop, Socket&& socket, SSL_CTX* tls,
                        AddressLimits::Slot&& slot);

}  // namespace meshd
