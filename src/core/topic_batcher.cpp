#include "topic_batcher.hpp"

#include <utility>

namespace p2pmesh {

TimeUs TopicBatcher::add(TimeUs now, TimeUs window, PeerId sender, std::string_view body) {
  pending_.push_back({sender, std::string(body)});
  if (pending_.size() == 1) {
    first_at_ = now;
    due_ = !sent_ || now - last_sent_ >= window ? now : last_sent_ + window;
  }
  return due_;
}

std::vector<wire::BatchEntry> TopicBatcher::take(TimeUs now) {
  sent_ = true;
  last_sent_ = now;
  return std::exchange(pending_, {});
}

std::vector<std::size_t> split_batches(std::string_view topic,
                                       const std::vector<wire::BatchEntry>& entries,
                                       std::size_t max_bytes) {
  std::vector<std::size_t> counts;
  // Room for the frame's own tag, length and topic.
  const std::size_t budget = max_bytes > topic.size() + 16 ? max_bytes - topic.size() - 16 : 0;
  std::size_t bytes = 0;
  for (const wire::BatchEntry& entry : entries) {
    const std::size_t size = wire::batch_entry_size(entry.sender, entry.body);
    if (counts.empty() || bytes + size > budget) {
      counts.push_back(0);
      bytes = 0;
    }
    ++counts.back();
    bytes += size;
  }
  return counts;
}

std::vector<std::string> encode_batches(std::string_view topic,
                                        const std::vector<wire::BatchEntry>& entries,
                                        std::size_t max_bytes) {
  std::vector<std::string> frames;
  std::size_t at = 0;
  for (const std::size_t count : split_batches(topic, entries, max_bytes)) {
    std::string& frame = frames.emplace_back();
    if (count == 1) {
      wire::append_topic_message(frame, topic, entries[at].sender, entries[at].body);
    } else {
      std::string chunk;
      for (std::size_t i = at; i < at + count; ++i)
        wire::append_batch_entry(chunk, entries[i].sender, entries[i].body);
      wire::append_topic_batch(frame, topic, chunk);
    }
    at += count;
  }
  return frames;
}

}  // namespace p2pmesh
