#pragma once
// StatusPacing: when a peer re-publishes its full status. Every status
// reaches every member through the server, so a status every interval from
// every member costs N^2 / interval deliveries (10M/s at 10,000 members).
// Links going up and down are announced as they happen (connected_to /
// disconnected_from); a full status only adds what changed since the last
// one: RTTs past a relative threshold and the first RTT of a link we
// dialled (its dialler tells; either end's RTT weighs the link). (The next
// broadcast seq is no trigger: every sender would re-publish; a lost tail is
// announced to the sender's neighbours instead, see MeshNode::announce_tail.)
// So a peer publishes at an
// interval tick only when that changed, plus an unchanged refresh (a view
// that diverged converges again) whose period grows with the group, keeping
// the group's refreshes at `refresh_per_s` in all. See docs/membership.md.

#include <cstddef>
#include <cstdint>
#include <vector>

#include "clock.hpp"
#include "peer_id.hpp"
#include "random.hpp"
#include "wire.hpp"

namespace p2pmesh {

class StatusPacing {
 public:
  // An RTT moves the view's weight (and the tree) only past both bounds.
  static constexpr std::uint32_t kRttChangePercent = 25;
  static constexpr std::uint32_t kRttChangeMinUs = 1000;

  // refresh_per_s == 0: every interval's status goes out (no pacing).
  StatusPacing(TimeUs interval, double refresh_per_s)
      : interval_(interval), refresh_per_s_(refresh_per_s) {}

  // Whether `status` (about to be published at an interval tick) says
  // anything the group does not know, or a refresh is due. `dialled`: the
  // peers of its links we dialled, sorted.
  bool due(TimeUs now, const wire::MeshStatus& status, const std::vector<PeerId>& dialled) const;
  // `status` went out now, in a group of `members`.
  void published(TimeUs now, const wire::MeshStatus& status, std::size_t members, Random& random);
  // Unchanged statuses come this far apart (before jitter).
  TimeUs refresh_period(std::size_t members) const;
  // Silence longer than this is no sign of departure: a member refreshes
  // less often than every status interval in a large group.
  TimeUs silence_allowed(std::size_t members) const { return 3 * refresh_period(members); }

  // Whether our last status listed `peer` and went out at `since` or later.
  bool listed_since(PeerId peer, TimeUs since) const;

  // True when the RTT moved enough to matter for the tree (see the bounds).
  static bool rtt_changed(std::uint32_t before_us, std::uint32_t now_us);

 private:
  TimeUs interval_;
  double refresh_per_s_;
  bool published_ = false;
  TimeUs published_at_ = 0;
  TimeUs refresh_at_ = 0;
  std::vector<PeerId> links_;
  std::vector<std::uint32_t> rtt_us_;
};

}  // namespace p2pmesh
