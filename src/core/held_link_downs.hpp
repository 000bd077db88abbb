#pragma once
// HeldLinkDowns: `disconnected_from` updates a peer has not published yet.
// A link that closed by itself (the other end crashed, left, or the network
// failed) is usually followed by meshd's departure notice of that end, which
// removes it and all its links from every view: the update would tell the
// group nothing. So the publication waits a grace period and is dropped if
// the notice comes meanwhile (or the link is up again); if the other end is
// still a member at the end of the grace, or shows it is alive (an update of
// its own arrives), it is published. The local view drops the link at once:
// only the publication waits. See docs/membership.md, "Link downs".

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
  // Nothing to publish after all (departure notice, link up again); or it
  // is published now by the caller. False if nothing was held for `peer`.
  bool release(PeerId peer);
  // The holds whose grace ended by `now`, removed.
  std::vector<PeerId> take_due(TimeUs now);
  TimeUs next_due() const;  // kNever when nothing is held
  std::size_t size() const { return held_.size(); }

 private:
  std::vector<std::pair<PeerId, TimeUs>> held_;  // a handful: one per link that closed
};

}  // namespace p2pmesh
