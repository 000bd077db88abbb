#pragma once
// Local repair of broadcasts lost to churn. A relay remembers, for a short
// window, the packets it sent to each child. When that child turns out to be
// gone (it left, crashed, or its link died), the packets it may not have
// relayed are re-sent, by the relay itself, straight to the child's own
// children (the route's edge gone->grandchild becomes self->grandchild). They
// drop what they already have by message id. Bounded in time, count and bytes.

#include <cstddef>
#include <deque>
#include <functional>
#include <vector>

#include "clock.hpp"
#include "peer_id.hpp"
#include "routing.hpp"
#include "wire.hpp"

namespace p2pmesh {

class RepairBuffer {
 public:
  RepairBuffer(TimeUs window, std::size_t max_packets, std::size_t max_bytes)
      : window_(window), max_(max_packets), max_bytes_(max_bytes) {}

  void remember(TimeUs now, PeerId next, const wire::Packet& packet);
  // Packets sent to `gone` within the window, removed from the buffer.
  std::vector<wire::Packet> take_sent_to(PeerId gone, TimeUs now);
  // Copies of the packets sent within the window that `pick(next, packet)`
  // chooses; they stay in the buffer.
  std::vector<wire::Packet> copies_where(
      TimeUs now, const std::function<bool(PeerId next, const wire::Packet&)>& pick);
  std::size_t size() const { return sent_.size(); }
  std::size_t bytes() const { return bytes_; }

 private:
  struct Sent {
    TimeUs at;
    PeerId next;
    wire::Packet packet;
  };
  void expire(TimeUs now);
  void pop_oldest();

  TimeUs window_;
  std::size_t max_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;  // payloads + route edges held
  std::deque<Sent> sent_;
};

// The packets to re-send for the children of `gone` in `packet`'s route, with
// their parent edge rewritten to come from `self`. `wanted` as in plan_relay.
struct RepairHop {
  PeerId next;
  wire::Packet packet;
};
std::vector<RepairHop> plan_repair(const wire::Packet& packet, PeerId gone, PeerId self,
                                   bool prune, const HopFilter& wanted = {});

}  // namespace p2pmesh
