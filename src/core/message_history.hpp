#pragma once
// What a peer keeps of recent broadcasts so that others can pull what they
// lost (gap repair): every message it sent or received with a seq, with the
// route it had (a source: its whole tree; a relay: its path and subtree).
// Bounded by age and by bytes; the oldest go first.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <unordered_map>
#include <vector>

#include "clock.hpp"
#include "peer_id.hpp"
#include "wire.hpp"

namespace p2pmesh {

class MessageHistory {
 public:
  MessageHistory(TimeUs max_age, std::size_t max_bytes) : max_age_(max_age), max_bytes_(max_bytes) {}

  // Keeps `packet` (seq != 0) from now on; a packet bigger than the whole
  // budget is not kept.
  void remember(TimeUs now, const wire::Packet& packet);
  // The message, or nullptr when it is not (or no longer) held.
  const wire::Packet* find(TimeUs now, PeerId source, std::uint64_t seq);
  // Whether `peer` was served this message since `since` by us, either
  // itself or a peer above it in the held route (its copy then reaches
  // `peer` down the tree): no second copy is sent.
  bool covered(PeerId source, std::uint64_t seq, PeerId peer, TimeUs since) const;
  // Records that `peer` was sent this message at `now` with its subtree.
  void served(TimeUs now, PeerId source, std::uint64_t seq, PeerId peer);

  std::size_t bytes() const { return bytes_; }
  std::size_t size() const { return entries_.size(); }

 private:
  struct Key {
    PeerId source;
    std::uint64_t seq;
    friend bool operator==(const Key&, const Key&) = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& key) const {
      return std::hash<std::uint64_t>{}(key.seq * 0x9e3779b97f4a7c15ULL ^ key.source);
    }
  };
  struct Entry {
    TimeUs at;
    wire::Packet packet;
    // Pullers served lately (a few: each pull names one peer).
    std::vector<std::pair<TimeUs, PeerId>> served;
  };
  // Peers served at most this many times per message (a bound, not a policy).
  static constexpr std::size_t kMaxServedPerMessage = 16;
  void expire(TimeUs now);
  void pop_oldest();
  static std::size_t held_bytes(const wire::Packet& packet);

  TimeUs max_age_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::deque<Key> order_;  // oldest first
  std::unordered_map<Key, Entry, KeyHash> entries_;
};

}  // namespace p2pmesh
