#pragma once
// TopicBatcher: the server side of SubscribeRequest.batch_ms, shared by
// meshd's broker and mesh-sim's. One topic's messages for its subscribers
// that take batches: a message goes out at once when the topic sent nothing
// in the last window, else it waits for the end of the window with whatever
// else arrives meanwhile. A quiet group sees no delay; a busy one at most one
// frame per window per subscriber, whatever its churn (docs/membership.md).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "clock.hpp"
#include "peer_id.hpp"
#include "wire.hpp"

namespace p2pmesh {

// A frame of batched messages stays below this, so every client's decode
// limit takes it (a larger message goes in a frame of its own).
inline constexpr std::size_t kMaxBatchFrameBytes = 16 * 1024;
// A subscriber may ask for a long delay; the server holds at most this.
inline constexpr std::uint32_t kMaxBatchMs = 10'000;

class TopicBatcher {
 public:
  // Keeps a message; returns when the pending batch is due (`now` when the
  // topic's last batch went out at least `window` ago).
  TimeUs add(TimeUs now, TimeUs window, PeerId sender, std::string_view body);
  bool pending() const { return !pending_.empty(); }
  TimeUs due() const { return due_; }
  TimeUs oldest() const { return first_at_; }  // when the first pending message came
  // The pending messages, oldest first; the window starts again at `now`.
  std::vector<wire::BatchEntry> take(TimeUs now);

 private:
  std::vector<wire::BatchEntry> pending_;
  TimeUs due_ = 0;
  TimeUs first_at_ = 0;
  TimeUs last_sent_ = 0;
  bool sent_ = false;  // none yet: the first message goes at once
};

// How many of `entries`, in order, go in each frame of encode_batches.
std::vector<std::size_t> split_batches(std::string_view topic,
                                       const std::vector<wire::BatchEntry>& entries,
                                       std::size_t max_bytes = kMaxBatchFrameBytes);
// The ServerMessages that carry `entries` of `topic`, in order: TopicBatch
// frames below kMaxBatchFrameBytes, a lone message as a plain TopicMessage.
std::vector<std::string> encode_batches(std::string_view topic,
                                        const std::vector<wire::BatchEntry>& entries,
                                        std::size_t max_bytes = kMaxBatchFrameBytes);

}  // namespace p2pmesh
