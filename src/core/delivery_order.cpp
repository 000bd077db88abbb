#include "delivery_order.hpp"

#include <algorithm>

namespace p2pmesh {

DeliveryOrder::Source& DeliveryOrder::start(PeerId source, std::uint64_t first_due) {
  Source& s = sources_[source];
  s.next = first_due;
  s.baseline = first_due;
  s.highest_known = first_due - 1;
  return s;
}

bool DeliveryOrder::status_said(TimeUs now, PeerId source, std::uint64_t next_seq) {
  if (next_seq == 0) return true;
  if (!tracks(source)) {
    // A source that never sent (1) is awaited from its first message on. A
    // later seq is only a hint: the status may have overtaken a message on
    // its way to us, which still comes (as when the start is guessed).
    start(source, next_seq).baseline_guessed = next_seq > 1;
    return true;
  }
  // Messages still on their way come within the pull delay; the rest are
  // pulled (from the source: it holds its own history), or become a gap.
  return next_seq == 1 || announce(now, source, next_seq - 1, kNoPeer);
}

bool DeliveryOrder::missing(PeerId source, std::uint64_t seq) const {
  const auto it = sources_.find(source);
  if (it == sources_.end()) return false;
  const Source& s = it->second;
  return seq >= s.next && seq <= s.highest_known && !s.held.count(seq);
}

void DeliveryOrder::note_holder(Source& s, PeerId holder) {
  if (holder == kNoPeer) return;
  const auto it = std::find(s.holders.begin(), s.holders.end(), holder);
  if (it != s.holders.end()) s.holders.erase(it);
  if (s.holders.size() >= kMaxHolders) s.holders.erase(s.holders.begin());
  s.holders.push_back(holder);  // the latest last
}

DeliveryOrder::Outcome DeliveryOrder::accept(TimeUs now, PeerId source, std::uint64_t seq,
                                             std::string payload, PeerId via,
                                             std::vector<OrderedEvent>& out) {
  auto it = sources_.find(source);
  Source& s = it != sources_.end() ? it->second : start(source, seq);
  if (seq < s.baseline && s.baseline_guessed) {
    // Older than the first message we saw of this source: we never waited
    // for it, so it goes to the application as it comes.
    out.push_back({OrderedEvent::Kind::message, source, seq, 0, std::move(payload)});
    return Outcome::delivered;
  }
  if (seq < s.next) return Outcome::late;
  if (seq - s.next >= limits_.max_seq_jump) {
    if (++s.jumps < kJumpsToBelieve) return Outcome::jump;
    give_up(now, source, s, seq - 1, out);  // the source did move on that far
  }
  s.jumps = 0;
  if (via != source) note_holder(s, via);
  s.highest_known = std::max(s.highest_known, seq);
  if (seq == s.next) {
    out.push_back({OrderedEvent::Kind::message, source, seq, 0, std::move(payload)});
    ++s.next;
    release(now, source, s, out);
    return Outcome::delivered;
  }
  held_bytes_ += payload.size();
  s.held.emplace(seq, std::move(payload));
  // Over the buffer's bounds: the oldest hole is given up (a gap) so that
  // what waits behind it moves on.
  while (!s.held.empty() && (s.held.size() > limits_.max_held_per_source ||
                             held_bytes_ > limits_.max_held_bytes)) {
    give_up(now, source, s, s.held.begin()->first - 1, out);
  }
  hole_changed(now, source, s);
  return Outcome::held;
}

bool DeliveryOrder::announce(TimeUs now, PeerId source, std::uint64_t seq, PeerId holder) {
  auto it = sources_.find(source);
  if (it == sources_.end()) {
    Source& s = start(source, seq);
    s.highest_known = seq;
    note_holder(s, holder);
    hole_changed(now, source, s);
    return true;
  }
  Source& s = it->second;
  if (seq < s.next) return true;
  if (seq - s.next >= limits_.max_seq_jump) return false;
  note_holder(s, holder);
  s.highest_known = std::max(s.highest_known, seq);
  hole_changed(now, source, s);
  return true;
}

void DeliveryOrder::release(TimeUs now, PeerId source, Source& s, std::vector<OrderedEvent>& out) {
  while (!s.held.empty() && s.held.begin()->first == s.next) {
    held_bytes_ -= s.held.begin()->second.size();
    out.push_back({OrderedEvent::Kind::message, source, s.next, 0, std::move(s.held.begin()->second)});
    s.held.erase(s.held.begin());
    ++s.next;
  }
  hole_changed(now, source, s);
}

void DeliveryOrder::give_up(TimeUs now, PeerId source, Source& s, std::uint64_t through,
                            std::vector<OrderedEvent>& out) {
  while (s.next <= through) {
    const auto first = s.held.begin();
    if (first != s.held.end() && first->first == s.next) {
      held_bytes_ -= first->second.size();
      out.push_back({OrderedEvent::Kind::message, source, s.next, 0, std::move(first->second)});
      s.held.erase(first);
      ++s.next;
      continue;
    }
    const std::uint64_t to =
        first != s.held.end() && first->first <= through ? first->first - 1 : through;
    out.push_back({OrderedEvent::Kind::gap, source, s.next, to, {}});
    s.next = to + 1;
  }
  s.highest_known = std::max(s.highest_known, through);
  release(now, source, s, out);
}

void DeliveryOrder::hole_changed(TimeUs now, PeerId source, Source& s) {
  const auto listed = std::find(with_holes_.begin(), with_holes_.end(), source);
  if (has_hole(s)) {
    if (s.next_pull_at == kNever) {
      s.next_pull_at = now + limits_.pull_delay;
      s.pulls = 0;
    }
    if (listed == with_holes_.end()) with_holes_.push_back(source);
  } else {
    s.next_pull_at = kNever;
    s.pulls = 0;
    if (listed != with_holes_.end()) with_holes_.erase(listed);
  }
}

void DeliveryOrder::poll(TimeUs now, std::vector<PullRequest>& pulls,
                         std::vector<OrderedEvent>& out) {
  const std::vector<PeerId> due = with_holes_;  // give_up edits the list
  for (const PeerId source : due) {
    const auto it = sources_.find(source);
    if (it == sources_.end()) continue;
    Source& s = it->second;
    if (s.next_pull_at > now) continue;
    if (s.pulls >= limits_.max_pulls) {
      give_up(now, source, s, s.highest_known, out);
      continue;
    }
    ++s.pulls;
    s.next_pull_at = now + limits_.pull_interval;
    PullRequest pull{source, {}, s.pulls, s.holders};
    for (std::uint64_t seq = s.next; seq <= s.highest_known && pull.seqs.size() < kMaxSeqsPerPull;
         ++seq) {
      if (!s.held.count(seq)) pull.seqs.push_back(seq);
    }
    pulls.push_back(std::move(pull));
  }
}

void DeliveryOrder::forget(PeerId source, std::vector<OrderedEvent>& out) {
  const auto it = sources_.find(source);
  if (it == sources_.end()) return;
  Source& s = it->second;
  if (has_hole(s)) give_up(0, source, s, s.highest_known, out);
  const auto listed = std::find(with_holes_.begin(), with_holes_.end(), source);
  if (listed != with_holes_.end()) with_holes_.erase(listed);
  sources_.erase(it);
}

TimeUs DeliveryOrder::next_deadline() const {
  TimeUs at = kNever;
  for (const PeerId source : with_holes_) at = std::min(at, sources_.at(source).next_pull_at);
  return at;
}

std::size_t DeliveryOrder::held_messages() const {
  std::size_t count = 0;
  for (const auto& entry : sources_) count += entry.second.held.size();
  return count;
}

}  // namespace p2pmesh
