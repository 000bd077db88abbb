// Broker: topics, groups (membership = subscribed to <group>.mesh), the
// status of each member, access rules and fan-out. See docs/meshd.md.

#include <spdlog/spdlog.h>

#include <algorithm>

#include "internal.hpp"
#include "topics.hpp"

namespace meshd {

namespace wire = p2pmesh::wire;

Member* Group::find_id(PeerId id) {
  const std::uint32_t at = position_.find(id);
  return at == p2pmesh::PeerSlotIndex::kNotFound ? nullptr : &members[at];
}

Member* Group::find(const Client& session) {
  Member* member = find_id(session.id());
  return member && member->session == &session ? member : nullptr;
}

Member* Group::find_remote(PeerId id) {
  Member* member = find_id(id);
  return member && !member->session ? member : nullptr;
}

Member& Group::add(Member member) {
  // A member joins once (a second subscription is refused before this);
  // should the id be there anyway, the newer entry takes its place.
  if (Member* existing = find_id(member.id)) {
    if (existing->at_home && home) --home->homed_members;  // its count goes with it
    return *existing = std::move(member);
  }
  position_.insert(member.id, static_cast<std::uint32_t>(members.size()));
  members.push_back(std::move(member));
  return members.back();
}

p2pmesh::MemberRecord Group::remove(Member& member) {
  const PeerId id = member.id;
  p2pmesh::MemberRecord record = std::move(member.record);
  const auto at = static_cast<std::uint32_t>(&member - members.data());
  if (member.at_home && home) --home->homed_members;
  position_.erase(id);
  if (at + 1 != members.size()) {
    member = std::move(members.back());
    position_.erase(member.id);
    position_.insert(member.id, at);
  }
  members.pop_back();
  for (Member& other : members) other.record.forget_link(id);
  return record;
}

namespace {

// A member's latest status, as if it had just published it (snapshots).
std::string status_body(PeerId id, const p2pmesh::MemberRecord& record) {
  return wire::encode(record.snapshot(id));
}

// Remote members kept per group (a bound against a misbehaving node).
constexpr std::size_t kMaxRemoteMembers = 100000;

// TopicBatcher keeps the core's microseconds.
p2pmesh::TimeUs us_of(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
}
Clock::time_point time_of(p2pmesh::TimeUs us) {
  return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::microseconds(us)));
}

Client* client_of(Client* client) { return client; }
Client* client_of(const std::pair<Client*, std::uint32_t>& batched) { return batched.first; }

}  // namespace

Clock::duration Topic::batch_window() const {
  std::uint32_t ms = p2pmesh::kMaxBatchMs;
  for (const auto& [client, wait] : batched) ms = std::min(ms, wait);
  return std::chrono::milliseconds(ms);
}

Broker::Broker(const Config& config, Metrics& metrics, FramePool& frames)
    : config_(config), metrics_(metrics), frames_(frames) {
  limits_.max_message_bytes = config_.max_frame_bytes;
  limits_.max_topics = config_.max_topics_per_publish;
  // For GET /groups (http.cpp): every group with its member count.
  metrics_.list_groups = [this] {
    const std::lock_guard lock(mutex_);
    std::vector<std::pair<std::string, std::size_t>> out;
    out.reserve(groups_.size());
    for (const auto& [name, group] : groups_) out.emplace_back(name, group->members.size());
    std::sort(out.begin(), out.end());
    return out;
  };
  // For GET /groups/<group> (http.cpp): who is in it, with the token's
  // subject (members on other nodes: their id only).
  metrics_.list_members = [this](std::string_view name) {
    const std::lock_guard lock(mutex_);
    std::vector<std::pair<std::uint32_t, std::string>> out;
    const auto it = groups_.find(name);
    if (it == groups_.end()) return out;
    for (const Member& member : it->second->members) {
      const Grant* grant = member.session ? member.session->grant() : nullptr;
      out.emplace_back(member.id, grant ? grant->subject : std::string());
    }
    std::sort(out.begin(), out.end());
    return out;
  };
}

Broker::~Broker() {
  metrics_.list_groups = nullptr;
  metrics_.list_members = nullptr;
}

Clock::duration Broker::on_message(Client& session, std::string_view bytes,
                                   Clock::time_point now) {
  const std::lock_guard lock(mutex_);
  // Deliveries for other loops wait in outgoing_ until the end of this
  // loop's turn (end_turn), so another loop wakes once per turn, not once
  // per message, and flushes bigger batches.
  return handle(session, bytes, now);
}

void Broker::end_turn() {
  const std::lock_guard lock(mutex_);
  hand_over();
}

bool Broker::move(Client& client, EventLoop& to) {
  const std::lock_guard lock(mutex_);
  // Every delivery for it so far, into its queue on the old loop (this
  // thread): nothing for it is left in the old loop's inbox afterwards.
  hand_over();
  client.loop().drain_inbox();
  return client.rehome(to);
}

Clock::duration Broker::handle(Client& session, std::string_view bytes,
                               Clock::time_point now) {
  const auto error = wire::decode(bytes, view_, limits_);
  if (error != wire::DecodeError::none) {
    if (error == wire::DecodeError::too_many) {
      session.metrics().drop(Drop::too_many_topics);
      spdlog::debug("peer {}: publish with too many topics dropped", session.id());
      return {};
    }
    session.metrics().drop(error == wire::DecodeError::missing_field ? Drop::unknown_kind
                                                                     : Drop::undecodable);
    spdlog::debug("peer {}: undecodable message ({}) dropped", session.id(),
                  wire::to_string(error));
    session.strike();
    return {};
  }
  const double cost =
      view_.kind == wire::ClientMessage::Kind::publish
          ? static_cast<double>(std::max<std::size_t>(1, view_.topics.size()))
          : 1.0;
  // Over the rate: nothing is done now; the session holds the message and
  // hands it in again once the bucket has its tokens.
  if (const Clock::duration wait = session.rate_wait(cost, now); wait > Clock::duration::zero())
    return wait;
  switch (view_.kind) {
    case wire::ClientMessage::Kind::subscribe:
      subscribe(session, view_.topic, view_.batch_ms);
      break;
    case wire::ClientMessage::Kind::unsubscribe:
      unsubscribe(session, view_.topic);
      break;
    case wire::ClientMessage::Kind::publish:
      publish(session, view_.topics, view_.payload, now);
      break;
    case wire::ClientMessage::Kind::none:
      session.metrics().drop(Drop::unknown_kind);
      session.strike();
      break;
  }
  return {};
}

// --auth-key: the token's groups bound every topic of the connection. The
// group is the topic's up to its first dot (WIRE.md topics; --open alike).
bool Broker::granted(const Client& session, std::string_view topic) {
  const Grant* grant = session.grant();
  if (!grant || grant->allows_group(topic.substr(0, topic.find('.')))) return true;
  session.metrics().drop(Drop::forbidden);
  return false;
}

bool Broker::may_subscribe(const Client& session, std::string_view topic) {
  if (topic.empty() || topic.size() > config_.max_topic_bytes) {
    session.metrics().drop(Drop::bad_topic);
    return false;
  }
  if (!granted(session, topic)) return false;
  if (!config_.access_rules) return true;
  const auto info = parse_topic(topic);
  if (info.kind == TopicKind::other) {
    session.metrics().drop(Drop::bad_topic);
    return false;
  }
  if (meshd::may_subscribe(info, session.id()) != Access::allowed) {
    session.metrics().drop(Drop::forbidden);
    return false;
  }
  return true;
}

void Broker::subscribe(Client& session, std::string_view name, std::uint32_t batch_ms) {
  if (!may_subscribe(session, name)) {
    spdlog::debug("peer {}: subscribe to '{}' refused", session.id(), name);
    session.strike();
    return;
  }
  for (const Topic* topic : session.subscriptions)
    if (topic->name == name) return;  // already subscribed
  if (session.subscriptions.size() >= config_.max_subscriptions) {
    session.metrics().drop(Drop::too_many_subscriptions);
    spdlog::debug("peer {}: subscription limit reached", session.id());
    return;
  }
  Topic& topic = topic_for(name);
  // Batches for <group>.mesh only: other topics carry signaling, which
  // waits for nothing.
  const bool batched = batch_ms > 0 && topic.group;
  if (batched) topic.batched.emplace_back(&session, batch_ms);
  else topic.subscribers.push_back(&session);
  session.subscriptions.push_back(&topic);
  if (topic.group) join_group(topic, session, batched);
}

void Broker::unsubscribe(Client& session, std::string_view name) {
  auto& subs = session.subscriptions;
  const auto it = std::find_if(subs.begin(), subs.end(),
                               [&](const Topic* topic) { return topic->name == name; });
  if (it == subs.end()) return;
  Topic& topic = **it;
  subs.erase(it);
  unlink(topic, session);
}

void Broker::remove_session(Client& session, bool notify) {
  const std::lock_guard lock(mutex_);
  auto subs = std::move(session.subscriptions);
  session.subscriptions.clear();
  // Not a member, but its status went out to the group's members, which now
  // know it: they learn that it went (in no snapshot, so no newcomer does).
  for (const EarlyRecord& held : session.early_records) {
    if (!notify || !held.heard || !held.record.needs_departure_notice()) continue;
    const auto group = groups_.find(held.group);
    if (group != groups_.end() &&
        announce_departure(*group->second, session.id(), held.record, session.loop(), true))
      session.metrics().departures.add();
  }
  session.early_records.clear();
  for (Topic* topic : subs) {
    if (!notify && topic->group) {
      if (Member* member = topic->group->find(session)) topic->group->remove(*member);
    }
    unlink(*topic, session);
  }
  hand_over();
}

void Broker::unlink(Topic& topic, Client& session) {
  auto& subscribers = topic.subscribers;
  const auto it = std::find(subscribers.begin(), subscribers.end(), &session);
  if (it != subscribers.end()) {
    *it = subscribers.back();
    subscribers.pop_back();
  }
  auto& batched = topic.batched;
  const auto in_batch = std::find_if(batched.begin(), batched.end(),
                                     [&](const auto& entry) { return entry.first == &session; });
  if (in_batch != batched.end()) {
    *in_batch = batched.back();
    batched.pop_back();
  }
  if (topic.group) leave_group(*topic.group, session, true);
  if (!topic.empty()) return;
  std::erase(batching_, &topic);
  if (cluster_) cluster_->interest(topic.name, false);
  if (topic.group) {
    groups_.erase(topic.group->name);
    metrics_.groups.sub();
  }
  metrics_.topics.sub();
  topics_.erase(topic.name);  // destroys `topic`
}

Topic* Broker::find_topic(std::string_view name) {
  const auto it = topics_.find(name);
  return it == topics_.end() ? nullptr : it->second.get();
}

Topic& Broker::topic_for(std::string_view name) {
  if (Topic* existing = find_topic(name)) return *existing;
  auto topic = std::make_unique<Topic>();
  topic->name = std::string(name);
  const auto info = parse_topic(name);
  if (info.kind == TopicKind::mesh) {
    auto group = std::make_unique<Group>();
    group->name = std::string(info.group);
    group->mesh = topic.get();
    topic->group = group.get();
    groups_.emplace(group->name, std::move(group));
    metrics_.groups.add();
  }
  metrics_.topics.add();
  Topic& ref = *topic;
  topics_.emplace(ref.name, std::move(topic));
  if (cluster_) {
    // Interest in NATS, and for a new group the members on the other nodes.
    cluster_->interest(ref.name, true);
    if (ref.group) {
      ref.group->snapshot_asked = Clock::now();
      cluster_->request_snapshot(ref.name);
    }
  }
  return ref;
}

void Broker::join_group(Topic& mesh_topic, Client& session, bool batched) {
  Group& group = *mesh_topic.group;
  // Snapshot: the latest known status of every member, as if it had just
  // published it; in batches to a subscriber that takes them.
  std::vector<wire::BatchEntry> snapshot;
  for (const Member& member : group.members) {
    const p2pmesh::MemberRecord& record = member.record;
    if (!record.has_update) continue;
    session.metrics().snapshots.add();
    if (batched) {
      snapshot.push_back({member.id, status_body(member.id, record)});
      continue;
    }
    session.deliver(encode(mesh_topic.name, member.id, status_body(member.id, record)));
  }
  for (const std::string& message : p2pmesh::encode_batches(mesh_topic.name, snapshot))
    session.deliver(frame_of(message));
  Member member;
  member.at_home = place(group, session);
  member.session = &session;
  member.id = session.id();
  // What it published about itself before subscribing (the reference browser
  // peer's first status) is in the next newcomer's snapshot.
  auto& early = session.early_records;
  const auto it = std::find_if(early.begin(), early.end(),
                               [&](const EarlyRecord& held) { return held.group == group.name; });
  if (it != early.end()) {
    member.record = std::move(it->record);
    early.erase(it);
    // The other nodes did not keep it (not a member then): now they do.
    if (cluster_ && member.record.has_update)
      cluster_->publish(Envelope::Kind::record, mesh_topic.name, session.id(), true,
                        status_body(session.id(), member.record));
  }
  group.add(std::move(member));
}

bool Broker::place(Group& group, Client& session) {
  // --threads > 1: a group's members live on one loop (a new group goes to
  // the loop with the fewest members placed), so a publication reaches them
  // all in that loop's turn, without a hand-over between loops and its
  // smaller writes (docs/meshd.md, "Scaling"). From --group-loop-limit
  // members on, newcomers stay on the loop they were accepted on: a big
  // group's writes are the work, spread over every loop. A connection is
  // placed once, by its first group.
  if (loops_.size() < 2 || config_.group_loop_limit == 0 || session.homed) return false;
  session.homed = true;
  if (group.members.empty() || !group.home) group.home = &least_loaded_loop();
  if (group.members.size() >= config_.group_loop_limit) return false;
  if (group.home != &session.loop()) session.home = group.home;
  ++group.home->homed_members;
  return true;
}

EventLoop& Broker::least_loaded_loop() {
  // Groups in turn would put every big group on one loop when big and small
  // ones alternate. Counted as placed, not as moved: moves come later (at
  // the end of each member's input), and a count of connections would lag.
  // Ties go in turn.
  EventLoop* best = nullptr;
  for (std::size_t i = 0; i < loops_.size(); ++i) {
    EventLoop* loop = loops_[(next_home_ + i) % loops_.size()];
    if (!best || loop->homed_members < best->homed_members) best = loop;
  }
  ++next_home_;
  return *best;
}

void Broker::leave_group(Group& group, Client& session, bool notify) {
  Member* member = group.find(session);
  if (!member) return;
  const p2pmesh::MemberRecord record = group.remove(*member);
  // A member that said it left (its own departure notice, in every view
  // already) gets no second one.
  if (!notify || !record.needs_departure_notice()) return;
  if (announce_departure(group, session.id(), record, session.loop(), true)) {
    session.metrics().departures.add();
    spdlog::debug("group {}: peer {} left", group.name, session.id());
  }
}

void Broker::forget_other_end(Group& group, PeerId source, const p2pmesh::MemberRecord& record) {
  const PeerId other = p2pmesh::other_end_of_link_down(mesh_update_, record);
  if (other == p2pmesh::kNoPeer) return;
  if (Member* member = group.find_id(other)) member->record.forget_link(source);
}

bool Broker::announce_departure(Group& group, PeerId id, const p2pmesh::MemberRecord& record,
                                EventLoop& origin, bool to_cluster) {
  if (!cluster_ && group.mesh->empty()) return false;
  // Published as if by the departed peer.
  const std::string body = wire::encode(record.departure(id));
  if (to_cluster && cluster_)
    cluster_->publish(Envelope::Kind::publish, group.mesh->name, id, true, body);
  if (group.mesh->empty()) return false;
  publish_to(*group.mesh, id, body, Clock::now(), origin);
  return true;
}

p2pmesh::MemberRecord* Broker::record_for(Client& session, Group* group,
                                          std::string_view group_name) {
  if (group)
    if (Member* member = group->find(session)) return &member->record;
  auto& early = session.early_records;
  for (EarlyRecord& held : early)
    if (held.group == group_name) return &held.record;
  // Bounded like its subscriptions: a peer can only join that many groups.
  if (early.size() >= config_.max_subscriptions) {
    spdlog::debug("peer {}: early mesh update for group {} not kept", session.id(), group_name);
    return nullptr;
  }
  early.push_back({std::string(group_name), {}});
  return &early.back().record;
}

FrameRef Broker::encode(std::string_view topic, PeerId sender, std::string_view body) {
  FrameRef frame = frames_.acquire();
  frame->begin();
  wire::append_topic_message(frame->data, topic, sender, body);
  frame->seal_binary();
  frame->counts_as_message = true;
  return frame;
}

FrameRef Broker::frame_of(std::string_view server_message) {
  FrameRef frame = frames_.acquire();
  frame->begin();
  frame->data.append(server_message);
  frame->seal_binary();
  frame->counts_as_message = true;
  return frame;
}

void Broker::publish_to(Topic& topic, PeerId sender, std::string_view body, Clock::time_point now,
                        EventLoop& origin) {
  if (!topic.subscribers.empty()) {
    FrameRef frame = encode(topic.name, sender, body);
    frame->published = now;
    fan_out(topic.subscribers, frame, origin);
  }
  if (topic.batched.empty()) return;
  const bool was_pending = topic.batcher.pending();
  // Without a timer (a broker outside a server) nothing waits.
  const Clock::duration window = arm_batch_ ? topic.batch_window() : Clock::duration::zero();
  const p2pmesh::TimeUs due = topic.batcher.add(
      us_of(now), std::chrono::duration_cast<std::chrono::microseconds>(window).count(), sender,
      body);
  if (due <= us_of(now)) {
    flush_batch(topic, now, origin);
  } else if (!was_pending) {
    batching_.push_back(&topic);
    arm_batch_(time_of(due));
  }
}

void Broker::flush_batch(Topic& topic, Clock::time_point now, EventLoop& origin) {
  const Clock::time_point oldest = time_of(topic.batcher.oldest());
  const std::vector<wire::BatchEntry> entries = topic.batcher.take(us_of(now));
  std::erase(batching_, &topic);
  for (const std::string& message : p2pmesh::encode_batches(topic.name, entries)) {
    FrameRef frame = frame_of(message);
    frame->published = oldest;
    fan_out(topic.batched, frame, origin);
  }
}

void Broker::flush_batches(EventLoop& loop) {
  const std::lock_guard lock(mutex_);
  const Clock::time_point now = Clock::now();
  std::optional<p2pmesh::TimeUs> next;
  for (Topic* topic : std::vector<Topic*>(batching_))
    if (topic->batcher.due() <= us_of(now)) flush_batch(*topic, now, loop);
  for (const Topic* topic : batching_)
    if (!next || topic->batcher.due() < *next) next = topic->batcher.due();
  if (next && arm_batch_) arm_batch_(time_of(*next));
  hand_over();
}

template <class Subscribers>
void Broker::fan_out(const Subscribers& subscribers, const FrameRef& frame, const EventLoop& origin) {
  for (const auto& entry : subscribers) {
    Client* subscriber = client_of(entry);
    EventLoop& target = subscriber->loop();
    if (&target == &origin) {
      subscriber->deliver(frame);
      continue;
    }
    if (outgoing_.size() <= target.index) outgoing_.resize(target.index + 1);
    Outgoing& out = outgoing_[target.index];
    out.loop = &target;
    out.deliveries.push_back({subscriber, frame});
  }
}

void Broker::hand_over() {
  for (Outgoing& out : outgoing_)
    if (!out.deliveries.empty()) out.loop->hand_over(out.deliveries);
}

void Broker::publish(Client& session, const std::vector<std::string_view>& topics,
                     std::string_view payload, Clock::time_point now) {
  bool mesh_decoded = false;
  auto mesh_check = p2pmesh::MeshUpdateCheck::undecodable;
  for (const std::string_view name : topics) {
    if (name.empty() || name.size() > config_.max_topic_bytes) {
      session.metrics().drop(Drop::bad_topic);
      session.strike();
      continue;
    }
    if (!granted(session, name)) {
      session.strike();
      continue;
    }
    const auto info = parse_topic(name);
    if (config_.access_rules) {
      if (info.kind == TopicKind::other) {
        session.metrics().drop(Drop::bad_topic);
        session.strike();
        continue;
      }
      bool member = false;
      if (info.kind == TopicKind::report) {
        const auto group = groups_.find(info.group);
        member = group != groups_.end() && group->second->find(session) != nullptr;
      }
      if (meshd::may_publish(info, session.id(), member) != Access::allowed) {
        session.metrics().drop(Drop::forbidden);
        session.strike();
        continue;
      }
    }
    bool own_mesh_update = false;
    if (info.kind == TopicKind::mesh) {
      if (!mesh_decoded) {
        mesh_decoded = true;
        mesh_check = p2pmesh::check_mesh_update(payload, session.id(), mesh_update_, limits_);
      }
      const bool mesh_ok = mesh_check != p2pmesh::MeshUpdateCheck::undecodable;
      own_mesh_update = mesh_check == p2pmesh::MeshUpdateCheck::own;
      if (config_.access_rules) {
        if (!mesh_ok) {
          session.metrics().drop(Drop::bad_mesh_update);
          session.strike();
          continue;
        }
        if (!own_mesh_update) {
          session.metrics().drop(Drop::forbidden);
          session.strike();
          continue;
        }
      }
      // The application's auth server vouches for a member's broadcast key
      // (docs/security.md): a status must announce the token's pk, if any.
      if (own_mesh_update && mesh_update_.kind == wire::MeshUpdate::Kind::status &&
          !mesh_update_.left && session.grant() &&
          !session.grant()->allows_key(mesh_update_.status.public_key)) {
        session.metrics().drop(Drop::wrong_key);
        session.strike();
        continue;
      }
    }
    session.metrics().publishes.add();
    // Kept even before the publisher subscribes or anyone listens: the
    // reference browser peer publishes its first status, then subscribes.
    Topic* topic = find_topic(name);  // a group exists while its mesh topic does
    bool member_update = false;
    if (own_mesh_update)
      if (p2pmesh::MemberRecord* record = record_for(session, topic ? topic->group : nullptr, info.group)) {
        record->apply(mesh_update_);
        member_update = topic && topic->group && topic->group->find(session);
        if (topic && topic->group) forget_other_end(*topic->group, session.id(), *record);
        // Not a member yet: whether members heard it (and must hear its close).
        if (!member_update && (cluster_ || (topic && !topic->empty())))
          for (EarlyRecord& held : session.early_records)
            if (held.group == info.group) held.heard = true;
      }
    // Other nodes: NATS delivers to those with subscribers (the no-echo
    // connection never hands it back to us).
    if (cluster_)
      cluster_->publish(Envelope::Kind::publish, name, session.id(), member_update, payload);
    if (!topic) continue;
    publish_to(*topic, session.id(), payload, now, session.loop());
  }
}

// ---------------------------------------------------------------------------
// Cluster (docs/cluster.md): what other nodes send, on loop 0.

void Broker::on_remote(const Envelope& envelope, EventLoop& loop) {
  {
    const std::lock_guard lock(mutex_);
    bool unknown = false;  // a remote member's status we had no record of
    Topic* topic = find_topic(envelope.topic);
    if (topic && topic->group && cluster_ && node_of(envelope.sender) != cluster_->node() &&
        p2pmesh::check_mesh_update(envelope.body, envelope.sender, mesh_update_, limits_) ==
            p2pmesh::MeshUpdateCheck::own) {
      // A remote member's own update: kept for the snapshot, like a local one.
      Group& group = *topic->group;
      Member* member = group.find_remote(envelope.sender);
      unknown = !member;
      if (mesh_update_.left) {
        if (member) group.remove(*member);
      } else if (envelope.member) {
        if (!member && group.members.size() < kMaxRemoteMembers) {
          Member remote;
          remote.id = envelope.sender;  // no session: on another node
          member = &group.add(std::move(remote));
        }
        if (member) {
          member->record.apply(mesh_update_);
          member->heard = Clock::now();
          forget_other_end(group, envelope.sender, member->record);
        }
      }
    }
    const bool deliver = envelope.kind == Envelope::Kind::publish ||
                         (envelope.kind == Envelope::Kind::announce && unknown);
    if (!topic || !deliver) return;
    publish_to(*topic, envelope.sender, envelope.body, Clock::now(), loop);
    hand_over();
  }
}

void Broker::on_snapshot_request(std::string_view mesh_topic, unsigned node) {
  const std::lock_guard lock(mutex_);
  if (!cluster_) return;
  Topic* topic = find_topic(mesh_topic);
  std::vector<PeerId> members;
  // Without the group: an empty end, so that the asker forgets our former members.
  if (topic && topic->group) {
    for (const Member& member : topic->group->members) {
      if (!member.session) continue;
      members.push_back(member.id);
      if (member.record.has_update)
        cluster_->reply_snapshot(node, mesh_topic, member.id,
                                 status_body(member.id, member.record));
    }
  }
  cluster_->end_snapshot(node, mesh_topic, members);
}

void Broker::on_snapshot_end(const Envelope& envelope, EventLoop& loop) {
  if (envelope.body.size() % 4 != 0) {
    metrics_.loop(0).drop(Drop::cluster_undecodable);
    return;
  }
  std::vector<PeerId> listed;
  for (std::size_t at = 0; at < envelope.body.size(); at += 4) {
    PeerId id = 0;
    for (std::size_t i = 0; i < 4; ++i)
      id = (id << 8) | static_cast<unsigned char>(envelope.body[at + i]);
    listed.push_back(id);
  }
  {
    const std::lock_guard lock(mutex_);
    Topic* topic = find_topic(envelope.topic);
    if (!topic || !topic->group) return;
    Group& group = *topic->group;
    auto& members = group.members;
    for (std::size_t i = 0; i < members.size();) {
      const Member& member = members[i];
      // Heard of since we asked: newer than the list (another subject, maybe
      // handled first), so alive.
      if (member.session || node_of(member.id) != envelope.node ||
          member.heard >= group.snapshot_asked ||
          std::find(listed.begin(), listed.end(), member.id) != listed.end()) {
        ++i;
        continue;
      }
      // Left while we did not hear it (NATS outage): a notice now.
      const PeerId id = member.id;
      const p2pmesh::MemberRecord record = group.remove(members[i]);
      if (announce_departure(group, id, record, loop, false))
        metrics_.cluster_departures.add();
    }
    hand_over();
  }
}

void Broker::resync(int node) {
  const std::lock_guard lock(mutex_);
  if (!cluster_) return;
  for (const auto& entry : groups_) {
    Group* group = entry.second.get();
    group->snapshot_asked = Clock::now();
    cluster_->request_snapshot(group->mesh->name, node);
    for (const Member& member : group->members)
      if (member.session && member.record.has_update)
        cluster_->publish(Envelope::Kind::announce, group->mesh->name, member.id, true,
                          status_body(member.id, member.record));
  }
}

void Broker::forget_node(unsigned node, EventLoop& loop) {
  {
    const std::lock_guard lock(mutex_);
    for (auto& [name, group] : groups_) {
      auto& members = group->members;
      for (std::size_t i = 0; i < members.size();) {
        if (members[i].session || node_of(members[i].id) != node) {
          ++i;
          continue;
        }
        const PeerId id = members[i].id;
        const p2pmesh::MemberRecord record = group->remove(members[i]);
        // Every survivor tells its own subscribers only: no notice twice.
        if (announce_departure(*group, id, record, loop, false))
          metrics_.cluster_departures.add();
      }
    }
    hand_over();
  }
}

}  // namespace meshd
