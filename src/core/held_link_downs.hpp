#pragma once
// HeldLinkDowns: `disconnected_from` updates a peer has not published yet.
// A link that closed by itself (the other end crashed, left, or the network
// failed) is usually followed by meshd's departure notice of that end, which
// removes it and all its links from every view: the update would tell the
// group nothing. So the publication waits a grace period and is dropped if
// the notice comes meanwhile (or the link is up again); if the other end is
// still a member at the end of the grace, or shows it is alive (an update of
// its own arrives), it is published. The local view drops the link at once:
// only the publication waits. When the other end closed the link itself and
// said so (a `disconnected_from` that ends the link in every view,
// wire::kVersionLinkDownByOneEnd), nothing is published either, also when
// its word comes before we notice the close. See docs/membership.md, "Link
// downs".

#include <cstddef>
#include <utility>
#include <vector>

#include "clock.hpp"
#include "peer_id.hpp"

namespace p2pmesh {

class HeldLinkDowns {
 public:
  // Holds the link down of `peer` until `until` (a later hold replaces it).
  void hold(PeerId peer, TimeUs until);
  // Nothing to publish after all, or it is published now by the caller.
  // False if nothing was held for `peer`. The other end's word stays.
  bool release(PeerId peer);
  // Releases `peer` and forgets its word too (departure notice, link up
  // again: the word was about a link that is gone).
  void forget(PeerId peer);
  // The holds whose grace ended by `now`, removed.
  std::vector<PeerId> take_due(TimeUs now);
  TimeUs next_due() const;  // kNever when nothing is held
  std::size_t size() const { return held_.size(); }

  // `peer` told the group it closed our link, which we have not seen close
  // yet: a close noticed before `until` needs no word of ours.
  void said_by_other_end(PeerId peer, TimeUs until);
  // Whether `peer` said so and `now` is before its `until` (the note is
  // used up; expired notes go).
  bool take_said_by_other_end(PeerId peer, TimeUs now);

 private:
  std::vector<std::pair<PeerId, TimeUs>> held_;  // a handful: one per link that closed
  std::vector<std::pair<PeerId, TimeUs>> said_;  // at most one per neighbour
};

}  // namespace p2pmesh
