// mesh-sim: runs many MeshNodes (the same core as live peers) over a modelled
// network in virtual time, and measures broadcast strategies on one scenario:
// peers join one after another, the mesh settles, then peers broadcast while
// others crash, leave and join.

#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>

#include "scenario.hpp"

namespace {

void usage(FILE* out) {
  std::fprintf(out,
               "usage: mesh-sim [options]\n"
               "  --peers N              peers joining one after another (default 1000)\n"
               "  --strategy S           reference | ours | flooding (default ours)\n"
               "  --churn PCT            peers crashing or leaving per minute, in %% of N,\n"
               "                         each replaced by a newcomer (default 0)\n"
               "  --seed S               seed of everything random (default 1)\n"
               "  --broadcasts B         broadcasts from random peers (default 50)\n"
               "  --join-interval-ms MS  between two joins (default 50, or 100 s / N if shorter)\n"
               "  --status-interval-s S  between a peer's status ticks, at every size: a full\n"
               "                         status when it changed or a refresh is due; silent\n"
               "                         members expire after 15 of them or 3 refresh periods\n"
               "                         (default: live peers', 10). Every status reaches\n"
               "                         every peer\n"
               "  --status-refresh-per-s R  status pacing: an unchanged status only every\n"
               "                         max(interval, members / R s); 0: every interval,\n"
               "                         as before pacing (default: live peers', 10)\n"
               "  --server-batch-ms MS   mesh updates from the server up to MS late, several\n"
               "                         per frame (at once when none went out in the last\n"
               "                         MS); 0: one frame each (default: live peers', 200)\n"
               "  --link-down-grace-ms MS  a link that closed by itself is announced only after\n"
               "                         MS, not at all if the other end's departure notice\n"
               "                         comes first; 0: at once (default: live peers', 2000)\n"
               "  --new-link-wait-ms MS  links a peer dials are announced in one status with\n"
               "                         their first RTTs, at most MS after the first opened;\n"
               "                         0: a connected_to each at once (default: live\n"
               "                         peers', 1000)\n"
               "  --announce-window-ms MS  gap repair's announcements: one packet per link and\n"
               "                         MS under load; 0: one packet each (default: live\n"
               "                         peers', 20)\n"
               "  --alpha A              Prim-Dijkstra blend of 'ours', 0..1 (default 0.8)\n"
               "  --max-depth H          'ours' tree: no peer more than H hops from the source\n"
               "                         unless that far on the shortest path; 0 = no limit\n"
               "                         (default: live peers', 9)\n"
               "  --reference-share PCT  mixed group: PCT%% of the peers are reference-like\n"
               "                         test peers, the rest run the strategy (default 0)\n"
               "  --relay-delay-ms MS    processing delay of each relay (default 3)\n"
               "  --loss P               per-transmission loss, retransmitted (default 0)\n"
               "  --drop P               per-transmission loss on links, not retransmitted: the\n"
               "                         copy is gone and gap repair must make up (default 0)\n"
               "  --pull-delay-ms MS     gap repair: grace between learning of a missing message\n"
               "                         and pulling it (default: live peers', 30)\n"
               "  --pull-interval-ms MS  gap repair: between pulls of the same messages (default:\n"
               "                         live peers', 250)\n"
               "  --threads T            threads handing server messages to their receivers;\n"
               "                         results do not depend on it (default: cores)\n"
               "  --json                 print one JSON object instead of a summary\n"
               "\n"
               "Control-plane fields (JSON; over the broadcast window: first broadcast to 5 s\n"
               "after the last, per simulated second, as the delivery figures):\n"
               "  server_deliveries_per_s          frames the server delivered to peers: welcomes\n"
               "                                   and every topic message to every subscriber\n"
               "                                   (statuses, link changes, departures, snapshots,\n"
               "                                   signaling, fallback packets)\n"
               "  control_msgs_per_peer_per_s      what a peer received that carried no broadcast\n"
               "                                   payload (those server frames but fallback\n"
               "                                   packets, plus link keep-alive pings and pongs),\n"
               "                                   per live peer\n"
               "  keepalives_per_peer_per_s        of those, the keep-alive pings and pongs\n"
               "  tree_computations_per_broadcast  broadcast trees (Prim) the nodes computed, per\n"
               "                                   broadcast sent (a tree is cached until the view\n"
               "                                   changes)\n"
               "  mesh_updates_per_churn_event     updates published on <group>.mesh (each reaches\n"
               "                                   every member), per churn event; by kind:\n"
               "                                   statuses_ (refreshes included), connected_to_,\n"
               "                                   disconnected_from_, departures_per_churn_event\n"
               "  mean_hops                        links + server hops of a delivery, mean (max_hops:\n"
               "                                   the most; broadcast_depth: relays, max_hops - 1)\n"
               "\n"
               "Reliable delivery fields (docs/broadcast.md, 'Delivery guarantees'):\n"
               "  order_violations                 messages a peer got after a later one of their source\n"
               "  gap_events, gap_messages         gaps reported to applications (peers alive at the end)\n"
               "  pulls_per_broadcast              pull requests (Packet.want), per broadcast sent\n"
               "  pulled_copies_per_broadcast      copies sent to pullers, per broadcast sent\n"
               "  local_repairs_per_broadcast      copies re-sent around a gone neighbour, per broadcast\n"
               "  announcements_per_broadcast      'I have' messages (Packet.have), per broadcast sent\n"
               "  history_kb_mean, history_kb_max  message history per live peer, sampled at broadcasts\n"
               "  reorder_kb_max                   largest reorder buffer seen\n");
}

bool parse_number(const char* text, double& out) {
  char* end = nullptr;
  out = std::strtod(text, &end);
  return end != text && *end == '\0' && out >= 0;
}

// Each server message reaches every peer, and each receiver looks up a few
// entries of its own tables: at thousands of peers every delivery lands on
// other pages of gigabytes of tables, so address translation (TLB misses)
// adds to every one. glibc backs the heap with transparent huge pages when
// GLIBC_TUNABLES asks for it, which it reads at process start only, so
// mesh-sim runs itself again once with it set (500 peers: 14-22% less CPU;
// results do not change). A GLIBC_TUNABLES already set is left as it is.
void use_huge_pages(char** argv) {
  if (std::getenv("GLIBC_TUNABLES") != nullptr) return;
  if (setenv("GLIBC_TUNABLES", "glibc.malloc.hugetlb=1", 1) != 0) return;
  execv("/proc/self/exe", argv);  // returns only on failure: run on without
}

}  // namespace

int main(int argc, char** argv) {
  using namespace p2pmesh;
  use_huge_pages(argv);
  // Every simulated peer's view tables are large blocks that move as they
  // grow: a fixed mmap threshold hands each freed one back to the system at
  // once instead of leaving the heap fragmented (glibc raises the threshold
  // as blocks are freed, which makes them heap blocks).
  mallopt(M_MMAP_THRESHOLD, 64 * 1024);
  sim::ScenarioOptions options;
  options.network.threads = std::max(1u, std::thread::hardware_concurrency());
  bool json = false;
  bool join_interval_given = false;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    }
    if (arg == "--json") {
      json = true;
      continue;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "mesh-sim: %s needs a value (see --help)\n", argv[i]);
      return 2;
    }
    const char* value = argv[++i];
    if (arg == "--strategy") {
      if (!sim::parse_strategy(value, options.strategy)) {
        std::fprintf(stderr, "mesh-sim: --strategy must be reference, ours or flooding\n");
        return 2;
      }
      continue;
    }
    double number = 0;
    if (!parse_number(value, number)) {
      std::fprintf(stderr, "mesh-sim: %s wants a non-negative number, got '%s'\n", argv[i - 1],
                   value);
      return 2;
    }
    join_interval_given |= arg == "--join-interval-ms";
    if (arg == "--peers" && number >= 2) options.peers = static_cast<std::size_t>(number);
    else if (arg == "--churn") options.churn_percent_per_minute = number;
    else if (arg == "--seed") options.seed = static_cast<std::uint64_t>(number);
    else if (arg == "--broadcasts" && number >= 1) options.broadcasts = static_cast<std::size_t>(number);
    else if (arg == "--join-interval-ms") options.join_interval = static_cast<TimeUs>(number * kMillisecond);
    else if (arg == "--status-interval-s" && number > 0) options.status_interval = static_cast<TimeUs>(number * kSecond);
    else if (arg == "--status-refresh-per-s" && number >= 0) options.status_refresh_per_s = number;
    else if (arg == "--server-batch-ms" && number >= 0 && number <= 10000) options.server_batch = static_cast<TimeUs>(number * kMillisecond);
    else if (arg == "--link-down-grace-ms" && number >= 0 && number <= 60000) options.link_down_grace = static_cast<TimeUs>(number * kMillisecond);
    else if (arg == "--new-link-wait-ms" && number >= 0 && number <= 10000) options.new_link_wait = static_cast<TimeUs>(number * kMillisecond);
    else if (arg == "--announce-window-ms" && number >= 0 && number <= 1000) options.announce_window = static_cast<TimeUs>(number * kMillisecond);
    else if (arg == "--alpha" && number <= 1) options.alpha = number;
    else if (arg == "--max-depth") {
      options.max_depth = number >= 1 ? static_cast<std::uint32_t>(std::min(number, 1e6))
                                       : TreeOptions::kNoDepthLimit;
    }
    else if (arg == "--reference-share" && number <= 100) options.reference_share = number / 100;
    else if (arg == "--relay-delay-ms") options.network.relay_delay = static_cast<TimeUs>(number * kMillisecond);
    else if (arg == "--loss" && number < 1) options.network.loss = number;
    else if (arg == "--drop" && number < 1) options.network.drop = number;
    else if (arg == "--pull-delay-ms") options.pull_delay = static_cast<TimeUs>(number * kMillisecond);
    else if (arg == "--pull-interval-ms" && number > 0) options.pull_interval = static_cast<TimeUs>(number * kMillisecond);
    else if (arg == "--threads" && number >= 1) options.network.threads = static_cast<std::size_t>(number);
    else {
      std::fprintf(stderr, "mesh-sim: unknown option or value out of range: %s %s (see --help)\n",
                   argv[i - 1], value);
      return 2;
    }
  }

  if (!join_interval_given) options.join_interval = sim::ScenarioOptions::join_interval_for(options.peers);

  if (!json) {
    std::printf("mesh-sim: %zu peers join one every %.0f ms, strategy %s, churn %g%%/min, seed %llu,"
                " statuses every %g s, refreshes %g/s, server batches %g ms\n",
                options.peers, static_cast<double>(options.join_interval) / kMillisecond,
                sim::to_string(options.strategy), options.churn_percent_per_minute,
                static_cast<unsigned long long>(options.seed),
                static_cast<double>(options.status_interval) / kSecond, options.status_refresh_per_s,
                static_cast<double>(options.server_batch) / kMillisecond);
    std::fflush(stdout);
  }
  const sim::ScenarioResult r = sim::run_scenario(options);
  if (json) {
    std::printf("%s\n", r.json(options).c_str());
    return 0;
  }
  std::printf("overlay: hop diameter %zu\n", r.overlay_diameter);
  std::printf("%zu broadcasts from random peers (%zu churn events meanwhile):\n", r.broadcasts,
              r.churn_events);
  std::printf("  delivered to          %.4f%% of the peers alive throughout\n",
              r.delivery_ratio * 100);
  std::printf("  redundancy (RMR)      %.4f extra transmissions per peer reached\n", r.rmr);
  std::printf("  last delivery         %.1f ms after sending, %.2fx the shortest-path optimum\n",
              r.last_delivery_ms, r.latency_ratio);
  std::printf("  deepest delivery      %zu hops (%zu relays crossed), %.2f hops on average\n",
              r.max_hops, r.max_hops ? r.max_hops - 1 : 0, r.mean_hops);
  std::printf("  routing bytes         %.0f per broadcast\n", r.routing_bytes_per_broadcast);
  std::printf("  duplicates            %zu copies delivered twice or more\n", r.duplicates);
  std::printf("  order                 %zu messages after a later one of their source; %zu gap\n"
              "                        events (%zu messages) reported\n",
              r.order_violations, r.gap_events, r.gap_messages);
  std::printf("  gap repair            %.2f pulls, %.2f pulled copies, %.2f local repairs,\n"
              "                        %.0f announcements per broadcast; history %.1f KB per\n"
              "                        peer (max %.1f), reorder buffer max %.1f KB\n",
              r.pulls_per_broadcast, r.pulled_copies_per_broadcast,
              r.local_repairs_per_broadcast, r.announcements_per_broadcast, r.history_kb_mean,
              r.history_kb_max, r.reorder_kb_max);
  if (options.reference_share > 0) {
    std::printf("  mixed group           %zu reference-like peers; ours to ours: %.4f%%"
                " (%zu missed)\n",
                r.reference_peers, r.ours_delivery_ratio * 100, r.ours_missed);
  }
  std::printf("control plane (per simulated second):\n");
  std::printf("  server deliveries     %.0f frames/s to peers\n", r.server_deliveries_per_s);
  std::printf("  control messages      %.2f per peer/s, of which %.2f keep-alive pings and pongs\n",
              r.control_msgs_per_peer_per_s, r.keepalives_per_peer_per_s);
  std::printf("  tree computations     %.3f per broadcast\n", r.tree_computations_per_broadcast);
  std::printf("  mesh updates          %.2f per churn event (statuses %.2f, connected_to %.2f,"
              " disconnected_from %.2f, departures %.2f)\n",
              r.mesh_updates_per_churn_event, r.statuses_per_churn_event,
              r.connected_to_per_churn_event, r.disconnected_from_per_churn_event,
              r.departures_per_churn_event);
  std::printf("  cost                  %.2f ms CPU per broadcast, peak RSS %.1f MB, %.1f s wall\n",
              r.cpu_ms_per_broadcast, r.peak_rss_mb, r.wall_seconds);
  return r.delivery_ratio == 1.0 || options.churn_percent_per_minute > 0 ? 0 : 1;
}
