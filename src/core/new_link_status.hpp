#pragma once
// NewLinkStatus: when a peer tells the group of the links it dialled. Every
// announcement reaches every member: a newcomer used to announce its 4
// links one `connected_to` each, then publish a status with their first
// RTTs at its next tick, 5 group-wide updates (after its first status).
// Now a link we dialled to a peer of our protocol waits for its first
// keep-alive RTT (the first ping goes out when it opens: one round trip)
// and for our other dials still connecting, at most `wait` after the first
// such link opened, and they go out together in one status, RTTs included.
// Links with reference peers, and links both ends dialled, are announced at
// once as before. See docs/membership.md, "New links in one status".

#include <cstddef>
#include <vector>

#include "clock.hpp"
#include "link_table.hpp"

namespace p2pmesh {

class NewLinkStatus {
 public:
  // wait == 0: never hold (a connected_to per link, as before).
  explicit NewLinkStatus(TimeUs wait) : wait_(wait) {}

  // `link` just opened, the first with its peer: whether its announcement
  // waits for the status (otherwise the caller publishes connected_to now).
  bool hold(const Link& link, const LinkTable& links, TimeUs now);
  // Whether the status is due: every held link measured (or gone) and no
  // link we dialled still connecting, or the wait is over. False when
  // nothing is held.
  bool due(const LinkTable& links, TimeUs now) const;
  TimeUs deadline() const { return deadline_; }  // kNever when nothing is held
  // A full status went out: it lists every open link.
  void published();
  // `link` closed; true if it was held (the group never heard of it).
  bool forget(LinkId link);

 private:
  TimeUs wait_;
  TimeUs deadline_ = kNever;
  std::vector<LinkId> held_;  // a handful: our dials of the last second
};

}  // namespace p2pmesh
