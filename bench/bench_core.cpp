// Benchmarks of the sans-IO core's graph work: broadcast tree (Prim) in each
// mode, planning broadcasts (pruned or not), relaying a broadcast through the
// whole tree, validating routes; plus the memory of the MeshView.
//
// Graphs: seeded random meshes of N peers with random 32-bit ids and ~5 links
// per peer (average degree 5: a random spanning tree plus random extra links),
// latencies 1-200 ms with 10% unknown.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "broadcast_tree.hpp"
#include "mesh_config.hpp"
#include "mesh_view.hpp"
#include "routing.hpp"

namespace {

using namespace p2pmesh;

constexpr std::size_t kDegree = 5;

// Bytes currently allocated from the heap (0 if unknown on this libc).
std::size_t heap_in_use() {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
  return mallinfo2().uordblks;
#else
  return 0;
#endif
}

struct Mesh {
  MeshView view;
  std::vector<PeerId> peers;
  std::size_t view_bytes = 0;  // heap held by the view once built
};

// measure: record view_bytes (mallinfo2 walks the heap: slow, keep it out of timings).
std::unique_ptr<Mesh> build_mesh(std::size_t n, std::uint64_t seed, bool measure) {
  auto mesh = std::make_unique<Mesh>();
  std::mt19937_64 rng(seed);
  std::set<PeerId> ids;
  while (ids.size() < n) {
    const auto id = static_cast<PeerId>(rng());
    if (id != kNoPeer) ids.insert(id);
  }
  mesh->peers.assign(ids.begin(), ids.end());
  std::shuffle(mesh->peers.begin(), mesh->peers.end(), rng);
  const auto weight = [&] {
    return rng() % 10 == 0 ? 0u : static_cast<std::uint32_t>(1'000 + rng() % 199'000);
  };
  const std::size_t before = measure ? heap_in_use() : 0;
  {
    MeshView& view = mesh->view;
    for (std::size_t i = 1; i < n; ++i) {
      view.add_link(mesh->peers[i], mesh->peers[rng() % i], weight());
    }
    const std::size_t links = n * kDegree / 2;
    while (view.link_count() < links) {
      view.add_link(mesh->peers[rng() % n], mesh->peers[rng() % n], weight());
    }
  }
  if (measure) mesh->view_bytes = heap_in_use() - before;
  return mesh;
}

const Mesh& mesh_of(std::size_t n) {
  static std::map<std::size_t, std::unique_ptr<Mesh>> cache;
  auto& slot = cache[n];
  if (!slot) slot = build_mesh(n, 0x5EED + n, true);
  return *slot;
}

TreeOptions options_for(int mode) {
  TreeOptions options;
  switch (mode) {
    case 0: options.mode = TreeMode::unit; break;
    case 1: options.mode = TreeMode::latency; break;
    case 2:
      options.mode = TreeMode::blend;
      options.alpha = 0.5;
      break;
    case 3:
      options.mode = TreeMode::blend;
      options.alpha = 1.0;
      break;
    default:
      options = MeshConfig{}.tree;  // what live peers use
      break;
  }
  return options;
}

const char* mode_name(int mode) {
  static const char* const names[] = {"unit", "latency", "blend0.5", "blend1", "live",
                                      "live-first"};
  return names[mode];
}

void add_view_counters(benchmark::State& state, const Mesh& mesh) {
  state.counters["peers"] = static_cast<double>(mesh.view.peer_count());
  state.counters["links"] = static_cast<double>(mesh.view.link_count());
  state.counters["view_bytes"] = static_cast<double>(mesh.view_bytes);
  state.counters["view_B_per_peer"] =
      static_cast<double>(mesh.view_bytes) / static_cast<double>(mesh.view.peer_count());
}

std::size_t depth_of(const BroadcastTree& tree) {
  std::map<PeerId, std::size_t> depth{{tree.root, 0}};
  std::size_t deepest = 0;
  for (const wire::Edge& e : tree.edges) {
    depth[e.v] = depth[e.u] + 1;
    deepest = std::max(deepest, depth[e.v]);
  }
  return deepest;
}

void BM_Tree(benchmark::State& state) {
  const Mesh& mesh = mesh_of(static_cast<std::size_t>(state.range(0)));
  TreeOptions options = options_for(static_cast<int>(state.range(1)));
  const PeerId root = mesh.peers.front();
  // live: a peer's trees after its first (MeshNode::tree() starts limited
  // once a tree broke the depth limit); live-first: its first tree.
  if (state.range(1) == 4) options.start_limited = compute_broadcast_tree(mesh.view, root, options).depth_limited;
  std::size_t reached = 0;
  for (auto _ : state) {
    BroadcastTree tree = compute_broadcast_tree(mesh.view, root, options);
    reached = tree.reached.size();
    benchmark::DoNotOptimize(tree);
  }
  const BroadcastTree tree = compute_broadcast_tree(mesh.view, root, options);
  state.SetLabel(mode_name(static_cast<int>(state.range(1))));
  add_view_counters(state, mesh);
  state.counters["reached"] = static_cast<double>(reached);
  state.counters["depth"] = static_cast<double>(depth_of(tree));
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(reached));
}

void BM_PlanBroadcast(benchmark::State& state) {
  const Mesh& mesh = mesh_of(static_cast<std::size_t>(state.range(0)));
  const bool prune = state.range(1) != 0;
  const BroadcastTree tree = compute_broadcast_tree(mesh.view, mesh.peers.front(), {});
  const std::string payload(1024, 'x');
  std::size_t edges = 0;
  for (auto _ : state) {
    auto hops = plan_broadcast(tree, payload, 1, prune);
    edges = 0;
    for (const Hop& hop : hops) edges += hop.packet.edges.size();
    benchmark::DoNotOptimize(hops);
  }
  state.SetLabel(prune ? "unit tree, pruned" : "unit tree, unpruned");
  state.counters["peers"] = static_cast<double>(mesh.view.peer_count());
  state.counters["edges_sent"] = static_cast<double>(edges);
}

// Source plan + every relay's plan_relay (with validation), i.e. the whole CPU
// cost of one broadcast across the mesh, and the edges carried on all links.
void BM_RelayWholeTree(benchmark::State& state) {
  const Mesh& mesh = mesh_of(static_cast<std::size_t>(state.range(0)));
  const bool prune = state.range(1) != 0;
  const TreeOptions options = options_for(static_cast<int>(state.range(2)));
  const BroadcastTree tree = compute_broadcast_tree(mesh.view, mesh.peers.front(), options);
  const std::string payload(1024, 'x');
  std::size_t edges = 0;
  std::size_t messages = 0;
  std::size_t largest = 0;
  for (auto _ : state) {
    edges = 0;
    messages = 0;
    largest = 0;
    std::vector<Hop> queue = plan_broadcast(tree, payload, 1, prune);
    while (!queue.empty()) {
      Hop hop = std::move(queue.back());
      queue.pop_back();
      ++messages;
      edges += hop.packet.edges.size();
      largest = std::max(largest, hop.packet.edges.size());
      if (validate_route(hop.packet, 1u << 20) != RouteError::none) state.SkipWithError("invalid");
      for (Hop& next : plan_relay(hop.packet, hop.next, prune)) queue.push_back(std::move(next));
    }
    benchmark::ClobberMemory();
  }
  state.SetLabel(std::string(mode_name(static_cast<int>(state.range(2)))) +
                 (prune ? " tree, pruned" : " tree, unpruned"));
  state.counters["messages"] = static_cast<double>(messages);
  state.counters["edges_on_wire"] = static_cast<double>(edges);
  state.counters["edges_per_msg"] = static_cast<double>(edges) / static_cast<double>(messages);
  state.counters["max_edges_msg"] = static_cast<double>(largest);
}

void BM_ValidateRoute(benchmark::State& state) {
  const Mesh& mesh = mesh_of(static_cast<std::size_t>(state.range(0)));
  const BroadcastTree tree = compute_broadcast_tree(mesh.view, mesh.peers.front(), {});
  wire::Packet packet;
  packet.source = tree.root;
  packet.edges = tree.edges;
  for (auto _ : state) {
    benchmark::DoNotOptimize(validate_route(packet, 1u << 20));
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(packet.edges.size()));
}

void BM_BuildView(benchmark::State& state) {
  const auto n = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    auto mesh = build_mesh(n, 7, false);
    benchmark::DoNotOptimize(mesh);
  }
  const Mesh& mesh = mesh_of(n);
  add_view_counters(state, mesh);
}

}  // namespace

BENCHMARK(BM_Tree)
    ->ArgsProduct({{100, 1'000, 10'000, 100'000}, {0, 1, 2, 3, 4, 5}})
    ->ArgNames({"peers", "mode"})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_PlanBroadcast)
    ->ArgsProduct({{100, 1'000, 10'000}, {0, 1}})
    ->ArgNames({"peers", "prune"})
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_RelayWholeTree)
    ->ArgsProduct({{100, 1'000, 10'000}, {0, 1}, {0, 1, 3}})
    ->ArgNames({"peers", "prune", "mode"})
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ValidateRoute)
    ->Arg(100)
    ->Arg(1'000)
    ->Arg(10'000)
    ->ArgName("peers")
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_BuildView)
    ->Arg(100)
    ->Arg(1'000)
    ->Arg(10'000)
    ->Arg(100'000)
    ->ArgName("peers")
    ->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
