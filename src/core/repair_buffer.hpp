#pragma once
// Local repair of broadcasts lost to churn. A relay remembers, for a short
// window, the packets it sent to each child. When that child turns out to be
// gone (it left, crashed, or its link died), the packets it may not have
// relayed are re-sent, by the relay itself, straight to the child's own
// children (the route's edge gone->grandchild becomes self->grandchild). They
// drop what they already have by message id. Bounded in time and count.

#include <cstddef>
#include <deque>
#include <vector>

#include "clock.hpp"
#include "peer_id.hpp"
#include "wire.hpp"

namespace p2pmesh {

class RepairBuffer {
 public:
  RepairBuffer(TimeUs window, std::size_t max_packets) : window_(window), max_(max_packets) {}

  void remember(TimeUs now, PeerId next, const wire::Packet& packet);
  // Packets sent to `gone` within the window, removed from the buffer.
  std::vector<wire::Packet> take_sent_to(PeerId gone, TimeUs now);
  std::size_t size() const { return sent_.size(); }

 private:
  struct Sent {
    TimeUs at;
    PeerId next;
    wire::Packet packet;
  };
  void expire(TimeUs now);

  TimeUs window_;
  std::size_t max_;
  std::deque<Sent> sent_;
};

// The packets to re-send for the children of `gone` in `packet`'s route, with
// their parent edge rewritten to come from `self`.
struct RepairHop {
  PeerId next;
  wire::Packet packet;
};
std::vector<RepairHop> plan_repair(const wire::Packet& packet, PeerId gone, PeerId self,
                                   bool prune);

}  // namespace p2pmesh
