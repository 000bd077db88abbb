#include "broadcast_tree.hpp"

#include <algorithm>
#include <limits>
#include <span>
#include <type_traits>

namespace p2pmesh {
namespace {

// Keys are unsigned integers (microseconds), so the heap compares integers
// only and the result never depends on floating-point rounding in the heap:
//   unit     1
//   latency  w(u,v)                          (at most 2^32 - 1)
//   blend    floor(alpha * dist(root,u)) + w(u,v)
// with w = unknown_weight_us for a link of unknown latency. With alpha = 1 the
// blend key is exactly dist(root,u) + w(u,v) (Dijkstra); with alpha = 0 it is w.
using Key = std::uint64_t;

// One frontier candidate in the heap. Only a strict improvement of a peer's
// key pushes an entry; a tie on the key with a smaller parent id just updates
// the parent in place (the heap already holds an entry with the same key and
// child), so the order of pops is decided by (key, child id) alone and the
// parent by (key, parent id). Stale entries (child already in the tree) are
// skipped when popped.
//
// A key below 2^32 packs with the child id into one integer, so the heap does
// a single comparison per step (~25% faster at 10k peers than comparing two
// fields). Unit and latency keys always fit; blend keys nearly always do
// (tree-path latency below 71 minutes), and otherwise the tree is recomputed
// with wide entries, which order exactly the same way.
struct PackedCandidate {
  std::uint64_t key_and_peer;  // key << 32 | child id
  std::uint32_t slot;
  static PackedCandidate make(Key key, PeerId peer, std::uint32_t slot) {
    return {(key << 32) | peer, slot};
  }
  PeerId peer() const { return static_cast<PeerId>(key_and_peer); }
  // std heap functions build a max-heap; "after" makes it a min-heap.
  struct After {
    bool operator()(const PackedCandidate& a, const PackedCandidate& b) const {
      return a.key_and_peer > b.key_and_peer;
    }
  };
};

struct WideCandidate {
  Key key;
  PeerId child;
  std::uint32_t slot;
  static WideCandidate make(Key key, PeerId peer, std::uint32_t slot) {
    return {key, peer, slot};
  }
  PeerId peer() const { return child; }
  struct After {
    bool operator()(const WideCandidate& a, const WideCandidate& b) const {
      return a.key > b.key || (a.key == b.key && a.child > b.child);
    }
  };
};

// Per-slot state: the best key so far and its parent. Unseen: key kUnseen,
// parent kNoPeer. In the tree: key 0, parent kNoPeer; no candidate beats that
// (not below 0, and no parent id is below kNoPeer on a tie), so the frontier
// check needs no separate flag. A seen candidate always has a parent.
struct SlotState {
  Key key;
  PeerId parent;
};

constexpr Key kUnseen = std::numeric_limits<Key>::max();

constexpr Key kMaxPackedKey = 0xFFFF'FFFFu;

// Depth limit. A tree edge parent -> child, by view slots.
struct SlotEdge {
  std::uint32_t parent;
  std::uint32_t child;
};
constexpr std::uint32_t kUnreached = 0xFFFF'FFFFu;

// A breadth-first tree from root_slot, top-down: each peer hangs from its
// fastest link one layer up (ties: the smaller peer id).
std::vector<SlotEdge> breadth_first_tree(const MeshView& view, std::uint32_t root_slot,
                                         std::uint64_t unknown_weight_us) {
  std::vector<std::uint32_t> hops(view.slot_count(), kUnreached);
  std::vector<std::uint32_t> order;
  order.reserve(view.peer_count());
  hops[root_slot] = 0;
  order.push_back(root_slot);
  for (std::size_t next = 0; next < order.size(); ++next) {
    const std::uint32_t u = order[next];
    for (const SlotLink& link : view.links_at(u)) {
      if (hops[link.slot()] != kUnreached) continue;
      hops[link.slot()] = hops[u] + 1;
      order.push_back(link.slot());
    }
  }
  std::vector<SlotEdge> edges;
  edges.reserve(order.size());
  for (std::size_t i = 1; i < order.size(); ++i) {
    const std::uint32_t v = order[i];
    std::uint32_t parent = kUnreached;
    std::uint64_t best = 0;
    for (const SlotLink& link : view.links_at(v)) {
      if (hops[link.slot()] + 1 != hops[v]) continue;
      const std::uint64_t w = link.weight_us() != 0 ? link.weight_us() : unknown_weight_us;
      if (parent == kUnreached || w < best ||
          (w == best && view.peer_at(link.slot()) < view.peer_at(parent))) {
        parent = link.slot();
        best = w;
      }
    }
    edges.push_back({parent, v});
  }
  return edges;
}

// How deep each slot may sit in a tree of at most `deepest` hops, given a
// spanning tree (top-down edges) that already fits: a peer whose subtree in
// it is h high may sit at depth deepest - h, so its subtree still fits below
// it. Its parent in that tree then always qualifies as its parent, so a Prim
// limited this way still reaches every peer; peers with low subtrees get room
// to follow low-latency links. kUnreached for slots outside the tree.
std::vector<std::uint32_t> allowed_depths(std::size_t slots, std::uint32_t root_slot,
                                          const std::vector<SlotEdge>& tree,
                                          std::uint32_t deepest) {
  std::vector<std::uint32_t> height(slots, 0);
  for (auto it = tree.rbegin(); it != tree.rend(); ++it) {
    height[it->parent] = std::max(height[it->parent], height[it->child] + 1);
  }
  std::vector<std::uint32_t> allowed(slots, kUnreached);
  allowed[root_slot] = 0;
  for (const SlotEdge& edge : tree) allowed[edge.child] = deepest - height[edge.child];
  return allowed;
}

std::uint32_t depth_of(const std::vector<SlotEdge>& tree, std::size_t slots) {
  std::vector<std::uint32_t> depth(slots, 0);
  std::uint32_t deepest = 0;
  for (const SlotEdge& edge : tree) {
    depth[edge.child] = depth[edge.parent] + 1;
    deepest = std::max(deepest, depth[edge.child]);
  }
  return deepest;
}

// Prim from root_slot. Returns false (tree unusable) only if Candidate is
// packed and a blend key did not fit in 32 bits.
template <TreeMode Mode, typename Candidate>
bool grow_tree(const MeshView& view, std::uint32_t root_slot, double alpha,
               std::uint64_t unknown_weight_us, const std::vector<std::uint32_t>* allowed_depth,
               BroadcastTree& tree) {
  constexpr bool kPacked = std::is_same_v<Candidate, PackedCandidate>;
  using After = typename Candidate::After;
  const std::size_t slots = view.slot_count();
  std::vector<SlotState> state(slots, SlotState{kUnseen, kNoPeer});
  // Blend only: tree-path latency from root (final once the peer is in the
  // tree; through its current best parent before that).
  std::vector<std::uint64_t> dist(Mode == TreeMode::blend ? slots : 0, 0);
  // Every slot's depth (final once in the tree; through its current best
  // parent before that), checked against allowed_depth when limited.
  const bool limited = Mode != TreeMode::unit && allowed_depth != nullptr;
  std::vector<std::uint32_t> depth(slots, 0);
  std::vector<Candidate> heap;
  heap.reserve(std::min<std::size_t>(slots, 4096));
  bool overflow = false;

  const auto relax = [&](std::uint32_t u) {
    const PeerId u_id = view.peer_at(u);
    const std::span<const SlotLink> links = view.links_at(u);
    [[maybe_unused]] Key scaled_dist = 0;  // blend: floor(alpha * dist(root,u))
    if constexpr (Mode == TreeMode::blend) {
      const double scaled = alpha * static_cast<double>(dist[u]);
      scaled_dist = scaled < 0x1p62 ? static_cast<Key>(scaled) : Key{1} << 62;
      if (kPacked && scaled_dist > kMaxPackedKey) {
        overflow = true;
        return;
      }
    }
    for (const SlotLink& link : links) {
      const std::uint32_t v = link.slot();
      if (limited && depth[u] + 1 > (*allowed_depth)[v]) continue;
      SlotState& s = state[v];
      [[maybe_unused]] std::uint64_t w = 0;
      Key key;
      if constexpr (Mode == TreeMode::unit) {
        key = 1;
      } else {
        w = link.weight_us() != 0 ? link.weight_us() : unknown_weight_us;
        if constexpr (Mode == TreeMode::latency) {
          key = w;
        } else {
          key = scaled_dist + w;
          if (kPacked && key > kMaxPackedKey) {
            overflow = true;
            return;
          }
        }
      }
      if (key < s.key) {
        s.key = key;
        s.parent = u_id;
        if constexpr (Mode == TreeMode::blend) dist[v] = dist[u] + w;
        depth[v] = depth[u] + 1;
        heap.push_back(Candidate::make(key, view.peer_at(v), v));
        std::push_heap(heap.begin(), heap.end(), After{});
      } else if (key == s.key && u_id < s.parent) {
        s.parent = u_id;
        if constexpr (Mode == TreeMode::blend) dist[v] = dist[u] + w;
        depth[v] = depth[u] + 1;
      }
    }
  };

  state[root_slot] = {0, kNoPeer};
  tree.reached.push_back(tree.root);
  relax(root_slot);
  while (!heap.empty() && !overflow) {
    std::pop_heap(heap.begin(), heap.end(), After{});
    const Candidate next = heap.back();
    heap.pop_back();
    SlotState& s = state[next.slot];
    if (s.parent == kNoPeer) continue;  // stale entry: already in the tree
    tree.edges.push_back({s.parent, next.peer()});
    tree.reached.push_back(next.peer());
    tree.depth = std::max(tree.depth, depth[next.slot]);
    s = {0, kNoPeer};
    relax(next.slot);
  }
  return !overflow;
}

// The tree by `options`, each slot no deeper than `allowed_depth` says
// (nullptr: no limit, whatever the options say).
BroadcastTree grow(const MeshView& view, PeerId root, std::uint32_t root_slot,
                   const TreeOptions& options, const std::vector<std::uint32_t>* allowed_depth) {
  BroadcastTree tree;
  tree.root = root;
  tree.reached.reserve(view.peer_count());
  tree.edges.reserve(view.peer_count() - 1);
  double alpha = options.alpha;
  if (!(alpha >= 0.0)) alpha = 0.0;  // also NaN
  if (alpha > 1.0) alpha = 1.0;
  const std::uint64_t unknown = options.unknown_weight_us;
  switch (options.mode) {
    case TreeMode::latency:
      grow_tree<TreeMode::latency, PackedCandidate>(view, root_slot, alpha, unknown, allowed_depth, tree);
      break;
    case TreeMode::blend:
      if (!grow_tree<TreeMode::blend, PackedCandidate>(view, root_slot, alpha, unknown, allowed_depth,
                                                       tree)) {
        tree.edges.clear();
        tree.reached.clear();
        tree.depth = 0;
        grow_tree<TreeMode::blend, WideCandidate>(view, root_slot, alpha, unknown, allowed_depth, tree);
      }
      break;
    case TreeMode::unit:
    default:
      grow_tree<TreeMode::unit, PackedCandidate>(view, root_slot, alpha, unknown, allowed_depth, tree);
      break;
  }
  tree.reached.shrink_to_fit();
  tree.edges.shrink_to_fit();
  return tree;
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
  const bool may_limit =
      options.mode != TreeMode::unit && options.max_depth != TreeOptions::kNoDepthLimit;
  if (!may_limit || !options.start_limited) tree = grow(view, root, root_slot, options, nullptr);
  // The limit only changes trees that break it (it is a sufficient rule, so
  // applied to every tree it would also reshape some that fit).
  if (may_limit && (options.start_limited || tree.depth > options.max_depth)) {
    // Two passes: the limits from a breadth-first tree give a first limited
    // tree; the limits from that tree (its subtrees follow fast links) give a
    // second one, much closer to the unlimited tree's latency (at 2,000
    // peers and 8 hops: 1.107x -> 1.040x the optimum; more passes: no gain).
    std::vector<SlotEdge> base = breadth_first_tree(view, root_slot, options.unknown_weight_us);
    const std::uint32_t deepest = std::max(depth_of(base, view.slot_count()), options.max_depth);
    for (int pass = 0; pass < 2; ++pass) {
      const std::vector<std::uint32_t> allowed =
          allowed_depths(view.slot_count(), root_slot, base, deepest);
      tree = grow(view, root, root_slot, options, &allowed);
      base.clear();
      for (const wire::Edge& e : tree.edges) base.push_back({view.slot_of(e.u), view.slot_of(e.v)});
    }
    tree.depth_limited = true;
  }
  return tree;
}

}  // namespace p2pmesh
