#pragma once
// The broadcast tree from the local peer, computed with Prim's algorithm over
// the MeshView. Deterministic: ties are broken by peer id, so the same view
// always yields the same tree.
//
// Prim from `root` over root's connected component with a binary heap (lazy
// deletion): O((V + E) log V) time, O(V + E) memory. The frontier edge taken
// next is the one with the smallest (key, child id, parent id). In unit mode
// every key is 1, so this is the reference behaviour: the smallest child id
// reachable from the tree, from its smallest-id tree neighbour (deep trees).
// A tree deeper than max_depth is grown again under a per-peer depth bound:
// a link u -> v is a candidate only if v's subtree in a reference tree that
// fits (first a breadth-first tree, then that first limited tree) still fits
// below it. v's parent in the reference tree always qualifies, so the tree
// still reaches the whole component.

#include <cstdint>
#include <vector>

#include "mesh_view.hpp"
#include "peer_id.hpp"
#include "wire.hpp"

namespace p2pmesh {

enum class TreeMode : std::uint8_t {
  unit,     // reference: every link weighs 1 (Prim's MST on hop counts)
  latency,  // Prim's MST on link latency
  blend,    // Prim-Dijkstra: key(v via u) = alpha * dist(root,u) + w(u,v),
            // in whole microseconds (the product is rounded down)
};

struct TreeOptions {
  TreeMode mode = TreeMode::unit;
  // blend only: 0 = Prim's MST, 1 = shortest-path tree. Clamped to [0, 1]
  // (NaN counts as 0).
  double alpha = 0.0;
  // Weight used for links whose latency is unknown (weight_us == 0) in the
  // latency and blend modes.
  std::uint32_t unknown_weight_us = 50'000;
  // latency and blend: no peer deeper than this many hops from the root,
  // unless it is that far even on the shortest path (then the tree is as
  // deep as breadth-first, and no deeper). kNoDepthLimit: any depth.
  // Latency trees follow many short links; every relay adds its processing
  // delay and one more chance of loss or churn. Below the limit the tree
  // still picks low-latency parents wherever the depth allows.
  static constexpr std::uint32_t kNoDepthLimit = 0xFFFF'FFFFu;
  std::uint32_t max_depth = kNoDepthLimit;
  // The previous tree of this root broke max_depth (BroadcastTree::
  // depth_limited): go straight to the limited tree, without first growing
  // the unlimited one to see (a view changes little between two trees; at
  // 10,000 peers that first tree is a quarter of the work).
  bool start_limited = false;
};

struct BroadcastTree {
  PeerId root = kNoPeer;
  // Directed edges parent -> child, in the order Prim added them (a parent
  // always appears as a child, or is the root, before its own children).
  std::vector<wire::Edge> edges;
  // Every peer the tree reaches, root first, in the order they were added.
  std::vector<PeerId> reached;
  std::uint32_t depth = 0;  // most edges from the root to a peer
  bool depth_limited = false;  // grown under TreeOptions::max_depth
};

// An empty tree (root only: no edges, reached == {root}) if root is not in the
// view; no edges and nothing reached if root is kNoPeer.
BroadcastTree compute_broadcast_tree(const MeshView& view, PeerId root,
                                     const TreeOptions& options = {});

}  // namespace p2pmesh
