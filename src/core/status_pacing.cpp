#include "status_pacing.hpp"

#include <algorithm>

namespace p2pmesh {

bool StatusPacing::rtt_changed(std::uint32_t before_us, std::uint32_t now_us) {
  if (before_us == 0 || now_us == 0) return before_us != now_us;
  const std::uint32_t delta = before_us > now_us ? before_us - now_us : now_us - before_us;
  return delta >= kRttChangeMinUs &&
         static_cast<std::uint64_t>(delta) * 100 >= static_cast<std::uint64_t>(before_us) * kRttChangePercent;
}

bool StatusPacing::due(TimeUs now, const wire::MeshStatus& status,
                       const std::vector<PeerId>& dialled) const {
  // Ticks come every interval: the one nearest the refresh time publishes.
  if (refresh_per_s_ <= 0 || !published_ || now >= refresh_at_ - interval_ / 2) return true;
  for (std::size_t i = 0; i < status.connected_to.size(); ++i) {
    const PeerId peer = status.connected_to[i];
    const std::uint32_t after = i < status.rtt_us.size() ? status.rtt_us[i] : 0;
    const auto known = std::lower_bound(links_.begin(), links_.end(), peer);
    if (known == links_.end() || *known != peer) {
      if (after != 0 && std::binary_search(dialled.begin(), dialled.end(), peer)) return true;
      continue;
    }
    const auto at = static_cast<std::size_t>(known - links_.begin());
    if (rtt_changed(at < rtt_us_.size() ? rtt_us_[at] : 0, after)) return true;
  }
  return false;
}

void StatusPacing::published(TimeUs now, const wire::MeshStatus& status, std::size_t members,
                             Random& random) {
  published_ = true;
  published_at_ = now;
  links_ = status.connected_to;
  rtt_us_ = status.rtt_us;
  // What the period adds to the interval is jittered (0x to 2x), so that
  // members who joined together spread out; the mean stays the period.
  const TimeUs extra = refresh_period(members) - interval_;
  refresh_at_ = now + interval_;
  if (extra > 0) refresh_at_ += static_cast<TimeUs>(random.below(2 * static_cast<std::uint64_t>(extra) + 1));
}

bool StatusPacing::listed_since(PeerId peer, TimeUs since) const {
  return published_ && published_at_ >= since &&
         std::binary_search(links_.begin(), links_.end(), peer);  // sorted, as statuses list
}

TimeUs StatusPacing::refresh_period(std::size_t members) const {
  if (refresh_per_s_ <= 0) return interval_;
  const auto spread = static_cast<TimeUs>(static_cast<double>(members) / refresh_per_s_ * kSecond);
  return std::max(interval_, spread);
}

}  // namespace p2pmesh
