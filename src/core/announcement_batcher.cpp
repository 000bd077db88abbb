#include "announcement_batcher.hpp"

#include <algorithm>

namespace p2pmesh {

void AnnouncementBatcher::add(TimeUs now, TimeUs window, LinkId link, const wire::MessageId& id) {
  auto it = std::find_if(queues_.begin(), queues_.end(),
                         [link](const Queue& q) { return q.link == link; });
  if (it == queues_.end()) it = queues_.insert(queues_.end(), Queue{link, {}, kNever, 0, false});
  it->window = window;
  if (it->ids.empty()) it->due = it->sent_any ? std::max(now, it->last_sent + window) : now;
  it->ids.push_back(id);
  if (it->ids.size() >= kMaxIds) it->due = now;
}

std::vector<std::pair<LinkId, std::vector<wire::MessageId>>> AnnouncementBatcher::take_due(
    TimeUs now) {
  std::vector<std::pair<LinkId, std::vector<wire::MessageId>>> due;
  for (Queue& q : queues_) {
    if (q.ids.empty() || q.due > now) continue;
    due.emplace_back(q.link, std::move(q.ids));
    q.ids.clear();
    q.due = kNever;
    q.last_sent = now;
    q.sent_any = true;
  }
  // A link quiet for a whole window needs no entry: its next id goes out
  // at once either way.
  std::erase_if(queues_, [now](const Queue& q) { return q.ids.empty() && q.last_sent + q.window <= now; });
  return due;
}

TimeUs AnnouncementBatcher::next_due() const {
  TimeUs at = kNever;
  for (const Queue& q : queues_) at = std::min(at, q.due);
  return at;
}

void AnnouncementBatcher::forget(LinkId link) {
  std::erase_if(queues_, [link](const Queue& q) { return q.link == link; });
}

}  // namespace p2pmesh
