#include "routing.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <utility>

namespace p2pmesh {
namespace {

using Edges = std::vector<wire::Edge>;

constexpr std::uint32_t kMissing = 0xFFFF'FFFFu;     // u is nobody's v
constexpr std::uint32_t kFromSource = 0xFFFF'FFFEu;  // u is the source
// Edge indices must stay below the two markers above.
constexpr std::size_t kMaxIndexableEdges = 0xFFFF'FFF0u;

// Sorts packed (key << 32 | index) items by key: stable LSD radix sort on the
// key's four bytes, so worst-case linear whatever the ids (no hash to attack).
void sort_by_key(std::vector<std::uint64_t>& items, std::vector<std::uint64_t>& scratch) {
  if (items.size() < 2) return;
  scratch.resize(items.size());
  for (unsigned shift = 32; shift < 64; shift += 8) {
    std::array<std::size_t, 256> count{};
    for (const std::uint64_t item : items) ++count[(item >> shift) & 0xFFu];
    if (count[(items.front() >> shift) & 0xFFu] == items.size()) continue;  // one bucket
    std::size_t sum = 0;
    for (std::size_t& c : count) {
      const std::size_t here = c;
      c = sum;
      sum += here;
    }
    for (const std::uint64_t item : items) scratch[count[(item >> shift) & 0xFFu]++] = item;
    items.swap(scratch);
  }
}

inline std::uint32_t key_of(std::uint64_t item) { return static_cast<std::uint32_t>(item >> 32); }
inline std::uint32_t index_of(std::uint64_t item) { return static_cast<std::uint32_t>(item); }

// parent[i] = index of the edge whose v is edges[i].u (the first one if several),
// kFromSource if edges[i].u is the source, kMissing if neither.
// Returns true if some v repeats or is the source.
bool link_edges(const Edges& edges, PeerId source, std::vector<std::uint32_t>& parent) {
  const std::size_t n = edges.size();
  std::vector<std::uint64_t> by_v(n);
  std::vector<std::uint64_t> by_u(n);
  for (std::size_t i = 0; i < n; ++i) {
    by_v[i] = (std::uint64_t{edges[i].v} << 32) | i;
    by_u[i] = (std::uint64_t{edges[i].u} << 32) | i;
  }
  std::vector<std::uint64_t> scratch;
  sort_by_key(by_v, scratch);
  sort_by_key(by_u, scratch);

  bool repeated = false;
  for (std::size_t i = 0; i < n; ++i) {
    if (key_of(by_v[i]) == source || (i > 0 && key_of(by_v[i]) == key_of(by_v[i - 1]))) {
      repeated = true;
    }
  }

  parent.assign(n, kMissing);
  std::size_t p = 0;
  for (const std::uint64_t item : by_u) {
    const std::uint32_t u = key_of(item);
    if (u == source) {
      parent[index_of(item)] = kFromSource;
      continue;
    }
    while (p < n && key_of(by_v[p]) < u) ++p;
    if (p < n && key_of(by_v[p]) == u) parent[index_of(item)] = index_of(by_v[p]);
  }
  return repeated;
}

// The hops of `self` for a route: one per edge (self, v), in edge order.
std::vector<Hop> plan_hops(PeerId source, const Edges& edges, const std::string& payload,
                           std::uint64_t seq, PeerId self, bool prune,
                           const HopFilter& wanted = {}) {
  std::vector<Hop> hops;
  if (self == kNoPeer) return hops;
  const std::size_t n = edges.size();
  // refused[i]: edge i is (self, v) with a child `wanted` refused.
  std::vector<std::uint8_t> refused(wanted ? n : 0, 0);
  for (std::size_t i = 0; i < n; ++i) {
    if (edges[i].u != self) continue;
    if (wanted && !wanted(edges[i].v)) {
      refused[i] = 1;
      continue;
    }
    hops.push_back({edges[i].v, {source, {}, payload, seq}});
  }
  if (hops.empty()) return hops;
  if (!prune || n > kMaxIndexableEdges) {
    for (Hop& hop : hops) hop.packet.edges = edges;
    return hops;
  }

  std::vector<std::uint32_t> parent;
  link_edges(edges, source, parent);

  // branch[i]: the hop whose subtree holds edge i (kMissing if none). Resolved
  // by walking parents with memoisation: every edge is walked once.
  constexpr std::uint32_t kUnresolved = 0xFFFF'FFFDu;
  std::vector<std::uint32_t> branch(n, kUnresolved);
  std::uint32_t next_hop = 0;
  for (std::size_t i = 0; i < n; ++i) {
    if (edges[i].u == self) branch[i] = !refused.empty() && refused[i] ? kMissing : next_hop++;
  }
  std::vector<std::uint32_t> path;
  for (std::size_t i = 0; i < n; ++i) {
    if (branch[i] != kUnresolved) continue;
    path.clear();
    std::uint32_t j = static_cast<std::uint32_t>(i);
    std::uint32_t found = kMissing;
    for (;;) {
      if (branch[j] != kUnresolved) {
        found = branch[j];
        break;
      }
      branch[j] = kMissing;  // in progress: a cycle (hostile input) resolves to none
      path.push_back(j);
      const std::uint32_t up = parent[j];
      if (up == kFromSource || up == kMissing) break;
      j = up;
    }
    for (const std::uint32_t k : path) branch[k] = found;
  }

  // Edges from the source down to self: walk up from the edge that reaches self.
  std::vector<std::uint8_t> on_path(n, 0);
  std::size_t path_length = 0;
  if (self != source) {
    std::uint32_t j = kMissing;
    for (std::size_t i = 0; i < n; ++i) {
      if (edges[i].v == self) {
        j = static_cast<std::uint32_t>(i);
        break;
      }
    }
    while (j != kMissing && j != kFromSource && !on_path[j]) {
      on_path[j] = 1;
      ++path_length;
      j = parent[j];
    }
  }

  std::vector<std::size_t> sizes(hops.size(), path_length);
  for (std::size_t i = 0; i < n; ++i) {
    if (!on_path[i] && branch[i] < hops.size()) ++sizes[branch[i]];
  }
  for (std::size_t h = 0; h < hops.size(); ++h) hops[h].packet.edges.reserve(sizes[h]);
  for (std::size_t i = 0; i < n; ++i) {
    if (on_path[i]) {
      for (Hop& hop : hops) hop.packet.edges.push_back(edges[i]);
    } else if (branch[i] < hops.size()) {
      hops[branch[i]].packet.edges.push_back(edges[i]);
    }
  }
  return hops;
}

}  // namespace

std::vector<Hop> plan_broadcast(const BroadcastTree& tree, std::string payload,
                                std::uint64_t seq, bool prune) {
  if (tree.root == kNoPeer) return {};
  return plan_hops(tree.root, tree.edges, payload, seq, tree.root, prune);
}

const char* to_string(RouteError error) {
  switch (error) {
    case RouteError::none: return "none";
    case RouteError::too_many_edges: return "too_many_edges";
    case RouteError::repeated_target: return "repeated_target";
    case RouteError::not_rooted: return "not_rooted";
    case RouteError::self_loop: return "self_loop";
    case RouteError::no_source: return "no_source";
    case RouteError::no_target: return "no_target";
  }
  return "unknown";
}

RouteError validate_route(const wire::Packet& packet, std::size_t max_edges) {
  if (packet.source == kNoPeer) return RouteError::no_source;
  const Edges& edges = packet.edges;
  const std::size_t n = edges.size();
  if (n > max_edges || n > kMaxIndexableEdges) return RouteError::too_many_edges;
  for (const wire::Edge& edge : edges) {
    if (edge.u == edge.v) return RouteError::self_loop;
    if (edge.v == kNoPeer) return RouteError::no_target;
  }
  if (n == 0) return RouteError::none;

  std::vector<std::uint32_t> parent;
  if (link_edges(edges, packet.source, parent)) return RouteError::repeated_target;
  for (const std::uint32_t up : parent) {
    if (up == kMissing) return RouteError::not_rooted;
  }
  // Every edge now has exactly one parent edge (or the source). It is rooted
  // iff walking up from every edge reaches the source without a cycle; colour
  // the edges so that each is walked once.
  enum : std::uint8_t { kUnseen, kWalking, kRooted };
  std::vector<std::uint8_t> state(n, kUnseen);
  std::vector<std::uint32_t> path;
  for (std::size_t i = 0; i < n; ++i) {
    path.clear();
    std::uint32_t j = static_cast<std::uint32_t>(i);
    while (state[j] == kUnseen) {
      state[j] = kWalking;
      path.push_back(j);
      if (parent[j] == kFromSource) break;
      j = parent[j];
    }
    if (state[j] == kWalking && parent[j] != kFromSource) return RouteError::not_rooted;
    for (const std::uint32_t k : path) state[k] = kRooted;
  }
  return RouteError::none;
}

std::vector<Hop> plan_relay(const wire::Packet& packet, PeerId self, bool prune,
                            const HopFilter& wanted) {
  std::vector<Hop> hops =
      plan_hops(packet.source, packet.edges, packet.payload, packet.seq, self, prune, wanted);
  for (Hop& hop : hops) {  // forwarded unchanged, in the same mode
    hop.packet.signature = packet.signature;
    hop.packet.receiver_tags = packet.receiver_tags;
    hop.packet.unreliable_seq = packet.unreliable_seq;
  }
  return hops;
}

std::vector<wire::Edge> graft_route(const wire::Packet& held, PeerId self, PeerId puller) {
  const std::vector<wire::Edge>& edges = held.edges;
  if (puller == held.source || puller == self || puller == kNoPeer) return {};
  // Parents by binary search: a held route may be a hostile chain of
  // thousands of edges, and a linear search per hop would be quadratic.
  std::vector<wire::Edge> by_child = edges;
  std::sort(by_child.begin(), by_child.end(),
            [](const wire::Edge& a, const wire::Edge& b) { return a.v < b.v; });
  const auto parent_of = [&by_child](PeerId child) {
    const auto it = std::lower_bound(
        by_child.begin(), by_child.end(), child,
        [](const wire::Edge& edge, PeerId v) { return edge.v < v; });
    return it != by_child.end() && it->v == child ? it->u : kNoPeer;
  };
  // Our path, from the source down (a validated tree: at most |edges| hops).
  std::vector<wire::Edge> path;
  for (PeerId at = self; at != held.source && path.size() <= edges.size();) {
    const PeerId up = parent_of(at);
    if (up == kNoPeer) break;  // not in the route: a copy that came around it
    if (up == puller) return {};
    path.push_back({up, at});
    at = up;
  }
  if (self != held.source && (path.empty() || path.back().u != held.source)) {
    path.clear();  // we are not in our own route (it came through the server)
    path.push_back({held.source, self});
  }
  std::reverse(path.begin(), path.end());
  path.push_back({self, puller});
  // The puller's subtree, breadth first over the edges sorted by parent
  // (a tree: each v once, so this ends; linear-logarithmic, not quadratic).
  std::vector<wire::Edge> by_parent = edges;
  std::sort(by_parent.begin(), by_parent.end(),
            [](const wire::Edge& a, const wire::Edge& b) { return a.u < b.u; });
  std::vector<PeerId> below{puller};
  for (std::size_t i = 0; i < below.size() && below.size() <= edges.size(); ++i) {
    const auto children = std::equal_range(
        by_parent.begin(), by_parent.end(), wire::Edge{below[i], kNoPeer},
        [](const wire::Edge& a, const wire::Edge& b) { return a.u < b.u; });
    for (auto edge = children.first; edge != children.second; ++edge) {
      if (edge->v == self) continue;
      path.push_back(*edge);
      below.push_back(edge->v);
    }
  }
  return path;
}

}  // namespace p2pmesh
