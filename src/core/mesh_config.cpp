#include "mesh_config.hpp"

#include <cmath>

#include "signed_broadcast.hpp"
#include "topics.hpp"

namespace p2pmesh {

namespace {
std::string ms(TimeUs t) { return std::to_string(t / kMillisecond) + " ms"; }
}  // namespace

std::string MeshConfig::validate() const {
  // Zero or tiny intervals would make a peer spin; the group name is the
  // server's rule (it refuses others).
  constexpr TimeUs kShortest = 10 * kMillisecond;
  if (!valid_group_name(group)) {
    return "group \"" + group + "\" is not 1-64 characters of A-Z a-z 0-9 _ -";
  }
  if (target_connections == 0) return "target_connections must be at least 1";
  if (max_connections < target_connections) {
    return "max_connections (" + std::to_string(max_connections) +
           ") must be at least target_connections (" + std::to_string(target_connections) + ")";
  }
  const struct {
    const char* name;
    TimeUs value;
  } intervals[] = {{"link_connect_timeout", link_connect_timeout},
                   {"status_interval", status_interval},
                   {"ping_interval", ping_interval},
                   {"dead_link_timeout", dead_link_timeout},
                   {"transport_rtt_interval", transport_rtt_interval},
                   {"pull_interval", pull_interval}};
  for (const auto& [name, value] : intervals) {
    if (value < kShortest) return std::string(name) + " must be at least 10 ms, not " + ms(value);
  }
  if (member_timeout < 0 || candidate_backoff < 0 || snapshot_wait < 0 || repair_window < 0) {
    return "member_timeout, candidate_backoff, snapshot_wait and repair_window must not be "
           "negative";
  }
  if (server_batch < 0 || server_batch > 10 * kSecond) {
    return "server_batch must be 0 (off) to 10 s, not " + ms(server_batch);
  }
  if (link_down_grace < 0 || link_down_grace > 60 * kSecond) {
    return "link_down_grace must be 0 (off) to 60 s, not " + ms(link_down_grace);
  }
  if (new_link_wait < 0 || new_link_wait > 10 * kSecond) {
    return "new_link_wait must be 0 (off) to 10 s, not " + ms(new_link_wait);
  }
  if (pull_delay < 0 || history_age < 0) return "pull_delay and history_age must not be negative";
  if (max_pull_interval < pull_interval) return "max_pull_interval must be at least pull_interval";
  if (report_interval != 0 && report_interval < 100 * kMillisecond) {
    return "report_interval must be 0 (off) or at least 100 ms, not " + ms(report_interval);
  }
  if (!(tree.alpha >= 0 && tree.alpha <= 1)) return "tree.alpha must be in [0, 1]";
  if (tree.max_depth == 0) return "tree.max_depth must be at least 1 hop";
  if (max_packet_bytes < 1024) return "max_packet_bytes must be at least 1024";
  if (max_payload_bytes == 0 || max_payload_bytes > max_server_message_bytes) {
    return "max_payload_bytes must be 1 to max_server_message_bytes";
  }
  if (max_topics_per_publish == 0) return "max_topics_per_publish must be at least 1";
  if (!public_key.empty() && public_key.size() != kPublicKeyBytes) {
    return "public_key must be an Ed25519 public key of 32 bytes, not " +
           std::to_string(public_key.size());
  }
  if (require_signatures && public_key.empty()) {
    return "require_signatures needs a public_key (our own broadcasts would be dropped)";
  }
  if (max_pending_verifications == 0) return "max_pending_verifications must be at least 1";
  if (max_receiver_tags > kMaxReceiverTagEntries) {
    return "max_receiver_tags must be at most " + std::to_string(kMaxReceiverTagEntries) +
           " (20 bytes each on every packet)";
  }
  return "";
}

}  // namespace p2pmesh
