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
    std::uint32_t last_id = 0;
    if (member != members.end()) {
      last_id = member->second.status.id;
      members.erase(member);
    }
    // Departure notice: an empty status (reference peers: "no links") + left.
    wire::MeshUpdate notice;
    notice.source = client;
    notice.kind = wire::MeshUpdate::Kind::status;
    notice.status.id = last_id + 1;
    notice.left = true;
    deliver(topic, client, wire::encode(notice));
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
  for (const auto& [member, state] : members) {
    if (member == client) continue;
    it->second.receiver(client, topic, member, wire::encode(status_update(member, state)));
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
    if (is_mesh_topic(topic)) track_mesh_update(topic, client, body);
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

void InMemoryBroker::track_mesh_update(const std::string& topic, PeerId sender,
                                       const std::string& body) {
  wire::MeshUpdate update;
  if (wire::decode(body, update) != wire::DecodeError::none || update.source != sender) return;
  Client& client = clients_.at(sender);
  const bool member = subscribers_[topic].count(sender) != 0;
  MemberStatus& state =
      member ? groups_[group_of(topic)][sender] : client.early[group_of(topic)];
  switch (update.kind) {
    case wire::MeshUpdate::Kind::status:
      state.status = update.status;
      state.links = {update.status.connected_to.begin(), update.status.connected_to.end()};
      break;
    case wire::MeshUpdate::Kind::connected_to:
      state.links.insert(update.peer);
      ++link_changes_;
      break;
    case wire::MeshUpdate::Kind::disconnected_from:
      state.links.erase(update.peer);
      ++link_changes_;
      break;
    case wire::MeshUpdate::Kind::none: break;
  }
}

wire::MeshUpdate InMemoryBroker::status_update(PeerId member, const MemberStatus& state) {
  wire::MeshUpdate update;
  update.source = member;
  update.kind = wire::MeshUpdate::Kind::status;
  update.status.id = state.status.id;
  update.status.version = state.status.version;
  update.status.connected_to.assign(state.links.begin(), state.links.end());
  return update;
}

}  // namespace p2pmesh::sim
