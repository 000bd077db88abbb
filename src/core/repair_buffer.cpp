#include "repair_buffer.hpp"

#include "routing.hpp"

namespace p2pmesh {

void RepairBuffer::remember(TimeUs now, PeerId next, const wire::Packet& packet) {
  expire(now);
  if (sent_.size() >= max_) sent_.pop_front();
  sent_.push_back({now, next, packet});
}

std::vector<wire::Packet> RepairBuffer::take_sent_to(PeerId gone, TimeUs now) {
  expire(now);
  std::vector<wire::Packet> packets;
  for (auto it = sent_.begin(); it != sent_.end();) {
    if (it->next == gone) {
      packets.push_back(std::move(it->packet));
      it = sent_.erase(it);
    } else {
      ++it;
    }
  }
  return packets;
}

void RepairBuffer::expire(TimeUs now) {
  while (!sent_.empty() && sent_.front().at + window_ < now) sent_.pop_front();
}

std::vector<RepairHop> plan_repair(const wire::Packet& packet, PeerId gone, PeerId self,
                                   bool prune) {
  std::vector<RepairHop> hops;
  for (Hop& hop : plan_relay(packet, gone, prune)) {
    if (hop.next == self) continue;
    for (wire::Edge& edge : hop.packet.edges) {
      if (edge.u == gone && edge.v == hop.next) edge.u = self;
    }
    hops.push_back({hop.next, std::move(hop.packet)});
  }
  return hops;
}

}  // namespace p2pmesh
