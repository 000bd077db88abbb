// mesh-sim: runs many MeshNodes (the same core as live peers) over a simulated
// network in virtual time and prints what happened. Peers join one after
// another, form a mesh, then broadcast from random peers.

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "overlay_metrics.hpp"
#include "virtual_network.hpp"

namespace {

struct Options {
  std::size_t peers = 20;
  std::size_t broadcasts = 20;
  std::uint64_t seed = 1;
  double join_interval_ms = 200;
  p2pmesh::TreeMode mode = p2pmesh::TreeMode::unit;
};

void usage(FILE* out) {
  std::fprintf(out,
               "usage: mesh-sim [--peers N] [--broadcasts B] [--seed S] [--join-interval-ms MS]\n"
               "                [--tree unit|latency|blend]\n"
               "Simulates N peers joining a mesh one after another over a modelled network\n"
               "(virtual time, no sockets), then B broadcasts from random peers, and prints\n"
               "the overlay's shape and each broadcast's delivery.\n");
}

bool parse_number(std::string_view text, double& out) {
  char* end = nullptr;
  const std::string copy(text);
  out = std::strtod(copy.c_str(), &end);
  return end != copy.c_str() && *end == '\0' && out >= 0;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace p2pmesh;
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      usage(stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "mesh-sim: %s needs a value (see --help)\n", argv[i]);
      return 2;
    }
    const std::string_view value = argv[++i];
    double number = 0;
    if (arg == "--tree") {
      if (value == "unit") options.mode = TreeMode::unit;
      else if (value == "latency") options.mode = TreeMode::latency;
      else if (value == "blend") options.mode = TreeMode::blend;
      else {
        std::fprintf(stderr, "mesh-sim: --tree must be unit, latency or blend\n");
        return 2;
      }
      continue;
    }
    if (!parse_number(value, number)) {
      std::fprintf(stderr, "mesh-sim: %s wants a non-negative number, got '%s'\n", argv[i - 1],
                   argv[i]);
      return 2;
    }
    if (arg == "--peers" && number >= 2) options.peers = static_cast<std::size_t>(number);
    else if (arg == "--broadcasts") options.broadcasts = static_cast<std::size_t>(number);
    else if (arg == "--seed") options.seed = static_cast<std::uint64_t>(number);
    else if (arg == "--join-interval-ms") options.join_interval_ms = number;
    else {
      std::fprintf(stderr, "mesh-sim: unknown or invalid option %s (see --help)\n", argv[i - 1]);
      return 2;
    }
  }

  sim::NetworkOptions net;
  net.seed = options.seed;
  sim::VirtualNetwork network(net);
  MeshConfig config;
  config.tree.mode = options.mode;
  config.tree.alpha = options.mode == TreeMode::blend ? 0.5 : 0.0;
  config.seed = options.seed;

  std::printf("mesh-sim: %zu peers join one every %.0f ms (target %u links, max %u)\n",
              options.peers, options.join_interval_ms, config.target_connections,
              config.max_connections);
  const auto join_step = static_cast<TimeUs>(options.join_interval_ms * kMillisecond);
  for (std::size_t i = 0; i < options.peers; ++i) {
    network.add_peer(config);
    network.run_for(join_step);
  }
  network.run_for(5 * kSecond);

  const sim::OverlayShape shape = sim::measure_overlay(network.overlay());
  std::printf("overlay after %.1f s: %zu peers, %zu links, %zu component(s), hop diameter %zu, "
              "degree %zu..%zu\n",
              static_cast<double>(network.now()) / kSecond, shape.peers, shape.links,
              shape.components, shape.hop_diameter, shape.min_degree, shape.max_degree);

  const std::vector<PeerId> peers = network.peers();
  Random random(options.seed);
  std::size_t complete = 0;
  for (std::size_t b = 0; b < options.broadcasts; ++b) {
    const PeerId from = peers[random.below(peers.size())];
    const std::string payload = "broadcast " + std::to_string(b);
    std::vector<std::size_t> before;
    for (const PeerId p : peers) before.push_back(network.deliveries(p).size());
    const TimeUs sent_at = network.now();
    network.broadcast(from, payload);
    network.run_for(2 * kSecond);
    std::size_t reached = 0;
    TimeUs last = sent_at;
    for (std::size_t i = 0; i < peers.size(); ++i) {
      const auto& got = network.deliveries(peers[i]);
      for (std::size_t k = before[i]; k < got.size(); ++k) {
        if (got[k].payload == payload) {
          ++reached;
          last = std::max(last, got[k].at);
        }
      }
    }
    const std::size_t tree_size = network.node(from).tree().reached.size();
    if (reached == peers.size() - 1) ++complete;
    std::printf("broadcast %2zu from %4u: tree reaches %zu/%zu, delivered to %zu/%zu, last after "
                "%.1f ms\n",
                b, from, tree_size - 1, peers.size() - 1, reached, peers.size() - 1,
                static_cast<double>(last - sent_at) / kMillisecond);
  }
  std::printf("summary: peers=%zu links=%zu diameter=%zu broadcasts=%zu complete=%zu\n",
              shape.peers, shape.links, shape.hop_diameter, options.broadcasts, complete);
  return complete == options.broadcasts ? 0 : 1;
}
