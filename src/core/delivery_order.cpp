#include "delivery_order.hpp"

#include <algorithm>

#include "gentle_growth.hpp"

namespace p2pmesh {

namespace {

// Removes entry `at` of a flat table: the last entry takes its place.
template <class Entry>
void erase_at(PeerSlotIndex& index, std::vector<Entry>& table, std::uint32_t at) {
  index.erase(table[at].id);
  if (at + 1 != table.size()) {
    table[at] = std::move(table.back());
    index.erase(table[at].id);
    index.insert(table[at].id, at);
  }
  table.pop_back();
}

}  // namespace

bool DeliveryOrder::tracks(PeerId source) const {
  return index_.find(source) != PeerSlotIndex::kNotFound ||
         awaited_index_.find(source) != PeerSlotIndex::kNotFound;
}

DeliveryOrder::Source& DeliveryOrder::entry(PeerId source, std::uint64_t first_seen,
                                            bool said_next_seq) {
  if (Source* s = find(source)) return *s;
  // Its status said 1 (a later one would have made an entry), or nothing.
  std::uint64_t first_due = said_next_seq ? 1 : first_seen;
  bool guessed = !said_next_seq;
  if (const std::uint32_t at = awaited_index_.find(source); at != PeerSlotIndex::kNotFound) {
    const Awaited awaited = awaited_[at];
    erase_at(awaited_index_, awaited_, at);
    first_due = awaited.next;
    guessed = awaited.baseline_guessed;
  }
  Source& s = start(source, first_due);
  s.baseline_guessed = guessed;
  return s;
}

void DeliveryOrder::await(PeerId source, bool guessed, std::uint64_t next) {
  reserve_gently(awaited_, awaited_.size() + 1);
  awaited_index_.insert(source, static_cast<std::uint32_t>(awaited_.size()));
  awaited_.push_back({source, guessed, next});
}

DeliveryOrder::Source* DeliveryOrder::find(PeerId source) {
  const std::uint32_t at = index_.find(source);
  return at == PeerSlotIndex::kNotFound ? nullptr : &sources_[at];
}

const DeliveryOrder::Source* DeliveryOrder::find(PeerId source) const {
  const std::uint32_t at = index_.find(source);
  return at == PeerSlotIndex::kNotFound ? nullptr : &sources_[at];
}

DeliveryOrder::Source& DeliveryOrder::start(PeerId source, std::uint64_t first_due) {
  Source* found = find(source);
  if (!found) {
    reserve_gently(sources_, sources_.size() + 1);
    index_.insert(source, static_cast<std::uint32_t>(sources_.size()));
    found = &sources_.emplace_back();
    found->id = source;
  }
  Source& s = *found;
  s.next = first_due;
  s.baseline = first_due;
  s.highest_known = first_due - 1;
  return s;
}

bool DeliveryOrder::status_said(TimeUs now, PeerId source, std::uint64_t next_seq, bool first) {
  if (next_seq == 0) return true;
  if (first && !tracks(source)) {
    // A source that never sent (1) is awaited from its first message on:
    // the default, nothing to keep. A later seq is only a hint: the status
    // may have overtaken a message on its way to us, which still comes (as
    // when the start is guessed).
    if (next_seq > 1) await(source, true, next_seq);
    return true;
  }
  // Messages still on their way come within the pull delay; the rest are
  // pulled (from the source: it holds its own history), or become a gap.
  return next_seq == 1 || announce(now, source, next_seq - 1, kNoPeer, true);
}

std::vector<std::pair<PeerId, std::uint64_t>> DeliveryOrder::positions() const {
  std::vector<std::pair<PeerId, std::uint64_t>> out;
  out.reserve(sources_.size());
  for (const Source& s : sources_) out.emplace_back(s.id, s.next);
  return out;
}

void DeliveryOrder::resume(PeerId source, std::uint64_t next) {
  if (tracks(source) || next <= 1) return;
  await(source, false, next);  // not guessed: older ones are late
}

bool DeliveryOrder::missing(PeerId source, std::uint64_t seq) const {
  const Source* s = find(source);
  if (!s) return false;
  return seq >= s->next && seq <= s->highest_known && !s->holds(seq);
}

void DeliveryOrder::note_holder(Source& s, PeerId holder) {
  if (holder == kNoPeer) return;
  std::vector<PeerId>& holders = s.busy().holders;
  const auto it = std::find(holders.begin(), holders.end(), holder);
  if (it != holders.end()) holders.erase(it);
  if (holders.size() >= kMaxHolders) holders.erase(holders.begin());
  holders.push_back(holder);  // the latest last
}

DeliveryOrder::Outcome DeliveryOrder::accept(TimeUs now, PeerId source, std::uint64_t seq,
                                             std::string payload, PeerId via,
                                             bool said_next_seq, std::vector<OrderedEvent>& out) {
  Source& s = entry(source, seq, said_next_seq);
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
  s.busy().held.emplace(seq, std::move(payload));
  // Over the buffer's bounds: the oldest hole is given up (a gap) so that
  // what waits behind it moves on (which may release the pending state).
  while (s.pending && !s.pending->held.empty() &&
         (s.pending->held.size() > limits_.max_held_per_source ||
          held_bytes_ > limits_.max_held_bytes)) {
    give_up(now, source, s, s.pending->held.begin()->first - 1, out);
  }
  hole_changed(now, source, s);
  return Outcome::held;
}

bool DeliveryOrder::announce(TimeUs now, PeerId source, std::uint64_t seq, PeerId holder,
                             bool said_next_seq) {
  if (const std::uint32_t at = awaited_index_.find(source);
      at != PeerSlotIndex::kNotFound && seq < awaited_[at].next) {
    return true;  // older than what we await: nothing new
  }
  Source& s = entry(source, seq, said_next_seq);
  if (seq < s.next) return true;
  if (seq - s.next >= limits_.max_seq_jump) return false;
  note_holder(s, holder);
  s.highest_known = std::max(s.highest_known, seq);
  hole_changed(now, source, s);
  return true;
}

void DeliveryOrder::release(TimeUs now, PeerId source, Source& s, std::vector<OrderedEvent>& out) {
  if (s.pending) {
    auto& held = s.pending->held;
    while (!held.empty() && held.begin()->first == s.next) {
      held_bytes_ -= held.begin()->second.size();
      out.push_back({OrderedEvent::Kind::message, source, s.next, 0, std::move(held.begin()->second)});
      held.erase(held.begin());
      ++s.next;
    }
  }
  hole_changed(now, source, s);
}

void DeliveryOrder::give_up(TimeUs now, PeerId source, Source& s, std::uint64_t through,
                            std::vector<OrderedEvent>& out) {
  while (s.next <= through) {
    const bool holding = s.pending && !s.pending->held.empty();
    const auto first = holding ? s.pending->held.begin() : decltype(s.pending->held.begin()){};
    if (holding && first->first == s.next) {
      held_bytes_ -= first->second.size();
      out.push_back({OrderedEvent::Kind::message, source, s.next, 0, std::move(first->second)});
      s.pending->held.erase(first);
      ++s.next;
      continue;
    }
    const std::uint64_t to = holding && first->first <= through ? first->first - 1 : through;
    out.push_back({OrderedEvent::Kind::gap, source, s.next, to, {}});
    s.next = to + 1;
  }
  s.highest_known = std::max(s.highest_known, through);
  release(now, source, s, out);
}

void DeliveryOrder::gone(TimeUs now, PeerId source, std::uint64_t seq,
                         std::vector<OrderedEvent>& out) {
  Source* s = find(source);
  if (!s || seq < s->next) return;
  // Only what we pulled for can be gone: a source cannot make us skip
  // messages we never knew of.
  give_up(now, source, *s, std::min(seq, s->highest_known), out);
}

void DeliveryOrder::source_sent_up_to(TimeUs now, PeerId source, std::uint64_t last) {
  Source* s = find(source);
  if (!s || last >= s->highest_known) return;
  // What came is real whatever the source said before sending it.
  std::uint64_t known = std::max(last, s->next - 1);
  if (s->pending && !s->pending->held.empty()) {
    known = std::max(known, s->pending->held.rbegin()->first);
  }
  s->highest_known = known;
  hole_changed(now, source, *s);
}

void DeliveryOrder::hole_changed(TimeUs now, PeerId source, Source& s) {
  const auto listed = std::find(with_holes_.begin(), with_holes_.end(), source);
  if (has_hole(s)) {
    Pending& pending = s.busy();
    // A new oldest hole (the one before it filled or given up) gets its own
    // pulls: under a burst, holes open and fill all the time, and counting
    // them together would give up on a hole that was just noticed.
    if (pending.next_pull_at == kNever || pending.hole_at != s.next) {
      pending.next_pull_at = now + limits_.pull_delay;
      pending.hole_since = now;
      pending.hole_at = s.next;
      pending.pulls = 0;
    }
    if (listed == with_holes_.end()) with_holes_.push_back(source);
  } else {
    if (s.pending) {
      s.pending->next_pull_at = kNever;
      s.pending->pulls = 0;
      if (s.pending->held.empty() && s.pending->holders.empty()) s.pending.reset();
    }
    if (listed != with_holes_.end()) with_holes_.erase(listed);
  }
}

void DeliveryOrder::poll(TimeUs now, std::vector<PullRequest>& pulls,
                         std::vector<OrderedEvent>& out) {
  const std::vector<PeerId> due = with_holes_;  // give_up edits the list
  for (const PeerId source : due) {
    Source* found = find(source);
    if (!found) continue;
    Source& s = *found;
    Pending& pending = s.busy();  // listed: it has a hole
    if (pending.next_pull_at > now) continue;
    if (now - pending.hole_since >= limits_.give_up_after) {
      give_up(now, source, s, s.highest_known, out);
      continue;
    }
    // Pulls back off: an answer that is slow (a loaded peer, a slow path)
    // should not be met by ever more pulls.
    const int doublings = static_cast<int>(std::min<std::uint32_t>(pending.pulls, 16));
    ++pending.pulls;
    pending.next_pull_at = std::min(
        now + std::min(limits_.pull_interval << doublings,
                       std::max(limits_.pull_interval, limits_.max_pull_interval)),
        pending.hole_since + limits_.give_up_after);  // the gap, on time
    PullRequest pull{source, {}, pending.pulls, pending.holders};
    for (std::uint64_t seq = s.next; seq <= s.highest_known && pull.seqs.size() < kMaxSeqsPerPull;
         ++seq) {
      if (!pending.held.count(seq)) pull.seqs.push_back(seq);
    }
    pulls.push_back(std::move(pull));
  }
}

void DeliveryOrder::forget(PeerId source, std::vector<OrderedEvent>& out) {
  if (const std::uint32_t at = awaited_index_.find(source); at != PeerSlotIndex::kNotFound) {
    erase_at(awaited_index_, awaited_, at);  // no hole: nothing to report
    return;
  }
  Source* found = find(source);
  if (!found) return;
  Source& s = *found;
  if (has_hole(s)) give_up(0, source, s, s.highest_known, out);
  const auto listed = std::find(with_holes_.begin(), with_holes_.end(), source);
  if (listed != with_holes_.end()) with_holes_.erase(listed);
  erase_at(index_, sources_, index_.find(source));
}

TimeUs DeliveryOrder::next_deadline() const {
  TimeUs at = kNever;
  for (const PeerId source : with_holes_) at = std::min(at, find(source)->pending->next_pull_at);
  return at;
}

std::size_t DeliveryOrder::held_messages() const {
  std::size_t count = 0;
  for (const Source& s : sources_) count += s.pending ? s.pending->held.size() : 0;
  return count;
}

}  // namespace p2pmesh
