#pragma once
// Backpressure on one link's data channel: the one policy every driver
// follows (they do the I/O; native: peer.cpp, browser: mesh.js).
//
// - Write while the transport holds at most kChannelHighWater bytes (its
//   buffered amount): a burst never makes send() fail and cost the link.
// - Beyond, packets wait in the link's queue, up to its bound (native
//   PeerConfig::max_link_queue_bytes, default kLinkQueueBound); past the
//   bound a packet is dropped and counted (send_queue_drops): a slow
//   neighbour never grows memory without bound.
// - Writing resumes once the transport's buffer has fallen to
//   kChannelLowWater (between the marks a link neither stalls nor spins).

#include <cstddef>

#include "defaults.hpp"

namespace p2pmesh {

inline constexpr std::size_t kChannelHighWater = 1u << 20;
inline constexpr std::size_t kChannelLowWater = 256u << 10;
inline constexpr std::size_t kLinkQueueBound = defaults::kLinkQueueBound;

// The unreliable channel (DeliveryMode::unreliable) has no queue: a packet that
// finds more than kChannelHighWater bytes in its transport buffer is dropped
// and counted (send_queue_drops): a real-time value sent late is worth less
// than the next one. (The native driver asks every 8th packet: each ask
// waits for libwebrtc's thread.)
inline bool unreliable_may_send(std::size_t buffered) { return buffered <= kChannelHighWater; }

// Does a packet of `size` still fit the queue, or is it dropped?
inline bool fits_queue(std::size_t queued_bytes, std::size_t size, std::size_t bound) {
  return queued_bytes + size <= bound;
}
// May a waiting queue be written again?
inline bool may_resume(std::size_t buffered) { return buffered <= kChannelLowWater; }

}  // namespace p2pmesh
