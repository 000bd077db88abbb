#include "in_memory_broker.hpp"

#include <algorithm>

#include "topics.hpp"

namespace p2pmesh::sim {

namespace {
constexpr std::string_view kMeshSuffix = ".mesh";

bool is_mesh_topic(const std::string& topic) {
  return topic.size() > kMeshSuffix.size() &&
         topic.compare(topic.size() - kMeshSuffix.size(), kMeshSuffix.size(), kMeshSuffix) == 0;
}
std::string group_of(const std::string& mesh_topic) {
  return mesh_topic.substr(0, mesh_topic.size() - kMeshSuffix.size());
}
}  // namespace

void InMemoryBroker::set_clock(std::function<TimeUs()> now, std::function<void(TimeUs)> wake) {
  now_ = std::move(now);
  wake_ = std::move(wake);
}

PeerId InMemoryBroker::connect(Receiver receiver) {
  const PeerId id = next_id_++;
  clients_[id].receiver = std::move(receiver);
  return id;
}

void InMemoryBroker::disconnect(PeerId client) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  const std::vector<std::string> topics = it->second.topics;
  const auto early = std::move(it->second.early);
  clients_.erase(it);
  for (const auto& [group, held] : early) {
    if (!held.heard || !held.record.needs_departure_notice()) continue;
    ++mesh_updates_.departures;
    deliver(mesh_topic(group), client, wire::encode(held.record.departure(client)));
  }
  for (const std::string& topic : topics) {
    subscribers_[topic].erase(client);
    if (auto batching = batching_.find(topic); batching != batching_.end())
      batching->second.subscribers.erase(client);
    if (!is_mesh_topic(topic)) continue;
    auto& members = groups_[group_of(topic)];
    auto member = members.find(client);
    MemberRecord record;
    if (member != members.end()) {
      record = std::move(member->second);
      members.erase(member);
    }
    for (auto& [other, other_record] : members) other_record.forget_link(client);  // as meshd
    if (!record.needs_departure_notice()) continue;  // it said so itself (as meshd)
    ++mesh_updates_.departures;
    deliver(topic, client, wire::encode(record.departure(client)));
  }
}

void InMemoryBroker::subscribe(PeerId client, const std::string& topic, std::uint32_t batch_ms) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  it->second.topics.push_back(topic);
  const bool batched = batch_ms > 0 && is_mesh_topic(topic);  // as meshd
  if (batched) batching_[topic].subscribers[client] = std::min(batch_ms, kMaxBatchMs);
  else subscribers_[topic].insert(client);
  if (!is_mesh_topic(topic)) return;
  auto& members = groups_[group_of(topic)];
  // Snapshot: the newcomer learns every current member at once.
  std::vector<wire::BatchEntry> snapshot;
  for (const auto& [member, record] : members) {
    if (member == client || !record.has_update) continue;
    if (batched) {
      snapshot.push_back({member, wire::encode(record.snapshot(member))});
      continue;
    }
    it->second.receiver(client, topic, member, wire::encode(record.snapshot(member)), true);
    ++delivered_;
  }
  deliver_batches(client, it->second, topic, snapshot, split_batches(topic, snapshot));
  auto early = it->second.early.find(group_of(topic));
  if (early != it->second.early.end()) {
    members[client] = std::move(early->second.record);
    it->second.early.erase(early);
  }
}

void InMemoryBroker::publish(PeerId client, const std::vector<std::string>& topics,
                             const std::string& body) {
  if (!clients_.count(client)) return;
  for (const std::string& topic : topics) {
    // As meshd's access rules: on <group>.mesh only the sender's own updates.
    if (is_mesh_topic(topic) && !track_mesh_update(topic, client, body)) continue;
    deliver(topic, client, body);
  }
}

void InMemoryBroker::deliver(const std::string& topic, PeerId sender, const std::string& body) {
  // Receivers may publish meanwhile: walk a copy (a flat one, as a group's
  // mesh topic reaches every member).
  std::vector<PeerId> targets;
  if (auto subs = subscribers_.find(topic); subs != subscribers_.end())
    targets.assign(subs->second.begin(), subs->second.end());
  for (const PeerId target : targets) {
    auto client = clients_.find(target);
    if (client == clients_.end()) continue;
    client->second.receiver(target, topic, sender, body, true);
    ++delivered_;
  }
  auto batching = batching_.find(topic);
  if (batching == batching_.end() || batching->second.subscribers.empty()) return;
  Batching& batch = batching->second;
  if (!now_ || !wake_) {  // no clock: nothing waits
    batch.batcher.add(0, 0, sender, body);
    flush_batch(topic);
    return;
  }
  std::uint32_t window_ms = kMaxBatchMs;
  for (const auto& [client, ms] : batch.subscribers) window_ms = std::min(window_ms, ms);
  const bool was_pending = batch.batcher.pending();
  const TimeUs due = batch.batcher.add(now_(), window_ms * kMillisecond, sender, body);
  if (due <= now_()) flush_batch(topic);
  else if (!was_pending) wake_(due);
}

void InMemoryBroker::flush_batches() {
  const TimeUs now = now_ ? now_() : 0;
  for (auto& [topic, batch] : batching_)
    if (batch.batcher.pending() && batch.batcher.due() <= now) flush_batch(topic);
}

void InMemoryBroker::flush_batch(const std::string& topic) {
  Batching& batch = batching_.at(topic);
  const std::vector<wire::BatchEntry> entries = batch.batcher.take(now_ ? now_() : 0);
  // Receivers may subscribe or leave meanwhile: walk a copy.
  const std::vector<std::size_t> frames = split_batches(topic, entries);
  std::vector<PeerId> targets;
  for (const auto& [client, ms] : batch.subscribers) targets.push_back(client);
  for (const PeerId target : targets) {
    auto client = clients_.find(target);
    if (client != clients_.end()) deliver_batches(target, client->second, topic, entries, frames);
  }
}

void InMemoryBroker::deliver_batches(PeerId to, Client& client, const std::string& topic,
                                     const std::vector<wire::BatchEntry>& entries,
                                     const std::vector<std::size_t>& frames) {
  std::size_t at = 0;
  for (const std::size_t count : frames) {
    for (std::size_t i = at; i < at + count; ++i) {
      client.receiver(to, topic, entries[i].sender, entries[i].body, i == at);
      ++delivered_;
    }
    at += count;
  }
}

bool InMemoryBroker::track_mesh_update(const std::string& topic, PeerId sender,
                                       const std::string& body) {
  wire::MeshUpdate update;
  if (check_mesh_update(body, sender, update) != MeshUpdateCheck::own) return false;
  Client& client = clients_.at(sender);
  const auto batching = batching_.find(topic);
  const bool member = subscribers_[topic].count(sender) != 0 ||
                      (batching != batching_.end() && batching->second.subscribers.count(sender));
  MemberRecord* record = nullptr;
  if (member) {
    record = &groups_[group_of(topic)][sender];
    record->apply(update);
  } else {
    Client::Early& held = client.early[group_of(topic)];
    record = &held.record;
    record->apply(update);
    if (!subscribers_[topic].empty() || (batching != batching_.end() && !batching->second.subscribers.empty()))
      held.heard = true;
  }
  // The other end may say nothing of a link this one closed (as meshd).
  const PeerId other = other_end_of_link_down(update, *record);
  if (auto group = groups_.find(group_of(topic)); other != kNoPeer && group != groups_.end()) {
    if (auto it = group->second.find(other); it != group->second.end()) it->second.forget_link(sender);
  }
  if (update.left) ++mesh_updates_.departures;
  else if (update.kind == wire::MeshUpdate::Kind::status) ++mesh_updates_.statuses;
  else if (update.kind == wire::MeshUpdate::Kind::connected_to) ++mesh_updates_.connected_to;
  else if (update.kind == wire::MeshUpdate::Kind::disconnected_from) ++mesh_updates_.disconnected_from;
  return true;
}

}  // namespace p2pmesh::sim
