#include "repair_buffer.hpp"

namespace p2pmesh {

namespace {
std::size_t held_bytes(const wire::Packet& packet) {
  return packet.payload.size() + packet.edges.size() * sizeof(wire::Edge);
}
}  // namespace

void RepairBuffer::remember(TimeUs now, PeerId next, const wire::Packet& packet) {
  expire(now);
  const std::size_t size = held_bytes(packet);
  if (size > max_bytes_) return;  // too big to keep: no repair for it
  while (!sent_.empty() && (sent_.size() >= max_ || bytes_ + size > max_bytes_)) pop_oldest();
  sent_.push_back({now, next, packet});
  bytes_ += size;
}

void RepairBuffer::pop_oldest() {
  bytes_ -= held_bytes(sent_.front().packet);
  sent_.pop_front();
}

std::vector<wire::Packet> RepairBuffer::take_sent_to(PeerId gone, TimeUs now) {
  expire(now);
  std::vector<wire::Packet> packets;
  for (auto it = sent_.begin(); it != sent_.end();) {
    if (it->next == gone) {
      bytes_ -= held_bytes(it->packet);
      packets.push_back(std::move(it->packet));
      it = sent_.erase(it);
    } else {
      ++it;
    }
  }
  return packets;
}

std::vector<wire::Packet> RepairBuffer::copies_where(
    TimeUs now, const std::function<bool(PeerId next, const wire::Packet&)>& pick) {
  expire(now);
  std::vector<wire::Packet> packets;
  for (const Sent& sent : sent_) {
    if (pick(sent.next, sent.packet)) packets.push_back(sent.packet);
  }
  return packets;
}

void RepairBuffer::expire(TimeUs now) {
  while (!sent_.empty() && sent_.front().at + window_ < now) pop_oldest();
}

std::vector<RepairHop> plan_repair(const wire::Packet& packet, PeerId gone, PeerId self,
                                   bool prune, const HopFilter& wanted) {
  std::vector<RepairHop> hops;
  for (Hop& hop : plan_relay(packet, gone, prune, wanted)) {
    if (hop.next == self) continue;
    for (wire::Edge& edge : hop.packet.edges) {
      if (edge.u == gone && edge.v == hop.next) edge.u = self;
    }
    hops.push_back({hop.next, std::move(hop.packet)});
  }
  return hops;
}

}  // namespace p2pmesh
