#pragma once
// AnnouncementBatcher: gap repair's `have` announcements (Plumtree's lazy
// push), batched per link. Every message a peer gets is announced to its
// neighbours outside the message's tree, 2-4 of them: one data-channel
// message each made announcements three quarters of a native peer's CPU at
// a few hundred messages a second (bench_mesh: 426 us per delivery with
// them, 109 without). A link that sent no announcement in the last window
// sends at once (a quiet group sees no delay); a busy one sends at most one
// per window, with every id that came meanwhile (docs/broadcast.md).

#include <cstddef>
#include <utility>
#include <vector>

#include "actions.hpp"
#include "clock.hpp"
#include "wire.hpp"

namespace p2pmesh {

class AnnouncementBatcher {
 public:
  // A batch never holds more ids than this (the decoders' default limit is
  // 256 per packet): a full one is due at once.
  static constexpr std::size_t kMaxIds = 128;

  // Queues `id` for `link`; it is due at once when the link sent nothing
  // within `window` (see take_due), else at the end of that window.
  void add(TimeUs now, TimeUs window, LinkId link, const wire::MessageId& id);
  // The batches due by `now`, one per link, removed from the queue.
  std::vector<std::pair<LinkId, std::vector<wire::MessageId>>> take_due(TimeUs now);
  TimeUs next_due() const;  // kNever when nothing waits
  void forget(LinkId link);  // the link closed: what waited for it goes nowhere

 private:
  struct Queue {
    LinkId link;
    std::vector<wire::MessageId> ids;
    TimeUs due = kNever;   // when ids go out (kNever while empty)
    TimeUs last_sent = 0;  // when the link's last batch went out
    bool sent_any = false;
    TimeUs window = 0;     // the latest add()'s
  };
  std::vector<Queue> queues_;  // one per link that announced lately: a handful
};

}  // namespace p2pmesh
