#include "broadcast_tree.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace p2pmesh {
namespace {

// One frontier candidate in the heap. Only a strict improvement of a peer's
// key pushes an entry; a tie on the key with a smaller parent id just updates
// the parent in place (the heap already holds an entry with the same key and
// child), so the order of pops is decided by (key, child id) alone and the
// parent by (key, parent id). Stale entries (child already in the tree) are
// skipped when popped.
struct Candidate {
  double key;
  PeerId peer;
  std::uint32_t slot;
};

// std heap functions build a max-heap; "after" makes it a min-heap on
// (key, peer id).
struct After {
  bool operator()(const Candidate& a, const Candidate& b) const {
    if (a.key != b.key) return a.key > b.key;
    return a.peer > b.peer;
  }
};

template <TreeMode Mode>
void grow_tree(const MeshView& view, std::uint32_t root_slot, double alpha,
               std::uint64_t unknown_weight_us, BroadcastTree& tree) {
  const std::size_t slots = view.slot_count();
  constexpr double kInfinity = std::numeric_limits<double>::infinity();

  std::vector<std::uint8_t> in_tree(slots, 0);
  std::vector<double> best_key(slots, kInfinity);
  std::vector<PeerId> parent_id(slots, kNoPeer);
  // Blend only: tree-path latency from root (final once the peer is in the
  // tree, the candidate's through its current best parent before that).
  std::vector<std::uint64_t> dist(Mode == TreeMode::blend ? slots : 0, 0);

  std::vector<Candidate> heap;
  heap.reserve(std::min<std::size_t>(slots, 1024));

  const auto relax = [&](std::uint32_t u) {
    const PeerId u_id = view.peer_at(u);
    const auto& neighbours = view.neighbours_at(u);
    const auto& neighbour_slots = view.neighbour_slots_at(u);
    const std::size_t degree = neighbours.size();
    for (std::size_t i = 0; i < degree; ++i) {
      const std::uint32_t v = neighbour_slots[i];
      if (in_tree[v]) continue;
      [[maybe_unused]] std::uint64_t w = 0;
      double key;
      if constexpr (Mode == TreeMode::unit) {
        key = 1.0;
      } else {
        w = neighbours[i].weight_us != 0 ? neighbours[i].weight_us : unknown_weight_us;
        if constexpr (Mode == TreeMode::latency) {
          key = static_cast<double>(w);
        } else {
          key = alpha * static_cast<double>(dist[u]) + static_cast<double>(w);
        }
      }
      if (key < best_key[v]) {
        best_key[v] = key;
        parent_id[v] = u_id;
        if constexpr (Mode == TreeMode::blend) dist[v] = dist[u] + w;
        heap.push_back({key, neighbours[i].peer, v});
        std::push_heap(heap.begin(), heap.end(), After{});
      } else if (key == best_key[v] && u_id < parent_id[v]) {
        parent_id[v] = u_id;
        if constexpr (Mode == TreeMode::blend) dist[v] = dist[u] + w;
      }
    }
  };

  in_tree[root_slot] = 1;
  tree.reached.push_back(tree.root);
  relax(root_slot);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), After{});
    const Candidate next = heap.back();
    heap.pop_back();
    if (in_tree[next.slot]) continue;
    in_tree[next.slot] = 1;
    tree.edges.push_back({parent_id[next.slot], next.peer});
    tree.reached.push_back(next.peer);
    relax(next.slot);
  }
}

}  // namespace

BroadcastTree compute_broadcast_tree(const MeshView& view, PeerId root,
                                     const TreeOptions& options) {
  BroadcastTree tree;
  tree.root = root;
  if (root == kNoPeer) return tree;
  const std::uint32_t root_slot = view.slot_of(root);
  if (root_slot == MeshView::kNoSlot) {
    tree.reached.push_back(root);
    return tree;
  }
  tree.reached.reserve(view.peer_count());
  tree.edges.reserve(view.peer_count() - 1);

  double alpha = options.alpha;
  if (!(alpha >= 0.0)) alpha = 0.0;  // also NaN
  if (alpha > 1.0) alpha = 1.0;
  const std::uint64_t unknown = options.unknown_weight_us;

  switch (options.mode) {
    case TreeMode::latency:
      grow_tree<TreeMode::latency>(view, root_slot, alpha, unknown, tree);
      break;
    case TreeMode::blend:
      grow_tree<TreeMode::blend>(view, root_slot, alpha, unknown, tree);
      break;
    case TreeMode::unit:
    default:
      grow_tree<TreeMode::unit>(view, root_slot, alpha, unknown, tree);
      break;
  }
  tree.reached.shrink_to_fit();
  tree.edges.shrink_to_fit();
  return tree;
}

}  // namespace p2pmesh
