#include "in_memory_broker.hpp"

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

PeerId InMemoryBroker::connect(Receiver receiver) {
  const PeerId id = next_id_++;
  clients_[id].receiver = std::move(receiver);
  return id;
}

void InMemoryBroker::disconnect(PeerId client) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  const std::vector<std::string> topics = it->second.topics;
  clients_.erase(it);
  for (const std::string& topic : topics) {
    subscribers_[topic].erase(client);
    if (!is_mesh_topic(topic)) continue;
    auto& members = groups_[group_of(topic)];
    auto member = members.find(client);
    MemberRecord record;
    if (member != members.end()) {
      record = std::move(member->second);
      members.erase(member);
    }
    deliver(topic, client, wire::encode(record.departure(client)));
  }
}

void InMemoryBroker::subscribe(PeerId client, const std::string& topic) {
  auto it = clients_.find(client);
  if (it == clients_.end()) return;
  it->second.topics.push_back(topic);
  subscribers_[topic].insert(client);
  if (!is_mesh_topic(topic)) return;
  auto& members = groups_[group_of(topic)];
  // Snapshot: the newcomer learns every current member at once.
  for (const auto& [member, record] : members) {
    if (member == client || !record.has_update) continue;
    it->second.receiver(client, topic, member, wire::encode(record.snapshot(member)));
    ++delivered_;
  }
  auto early = it->second.early.find(group_of(topic));
  if (early != it->second.early.end()) {
    members[client] = std::move(early->second);
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
  auto subs = subscribers_.find(topic);
  if (subs == subscribers_.end()) return;
  // Receivers may publish meanwhile: walk a copy (a flat one, as a group's
  // mesh topic reaches every member).
  const std::vector<PeerId> targets(subs->second.begin(), subs->second.end());
  for (const PeerId target : targets) {
    auto client = clients_.find(target);
    if (client == clients_.end()) continue;
    client->second.receiver(target, topic, sender, body);
    ++delivered_;
  }
}

bool InMemoryBroker::track_mesh_update(const std::string& topic, PeerId sender,
                                       const std::string& body) {
  wire::MeshUpdate update;
  if (check_mesh_update(body, sender, update) != MeshUpdateCheck::own) return false;
  Client& client = clients_.at(sender);
  const bool member = subscribers_[topic].count(sender) != 0;
  MemberRecord& record = member ? groups_[group_of(topic)][sender] : client.early[group_of(topic)];
  record.apply(update);
  if (update.kind == wire::MeshUpdate::Kind::connected_to ||
      update.kind == wire::MeshUpdate::Kind::disconnected_from) {
    ++link_changes_;
  }
  return true;
}

}  // namespace p2pmesh::sim
