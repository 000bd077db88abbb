#include "overlay_metrics.hpp"

#include <algorithm>
#include <unordered_map>
#include <vector>

namespace p2pmesh::sim {

OverlayShape measure_overlay(const Overlay& overlay) {
  OverlayShape shape;
  shape.peers = overlay.size();
  if (overlay.empty()) return shape;

  // Dense indices for the BFS.
  std::unordered_map<PeerId, std::size_t> index;
  std::vector<std::vector<std::size_t>> adjacency(overlay.size());
  for (const auto& entry : overlay) index.emplace(entry.first, index.size());
  shape.min_degree = SIZE_MAX;
  std::size_t degree_sum = 0;
  for (const auto& [peer, neighbours] : overlay) {
    auto& list = adjacency[index.at(peer)];
    for (const PeerId n : neighbours) {
      if (auto it = index.find(n); it != index.end()) list.push_back(it->second);
    }
    degree_sum += list.size();
    shape.min_degree = std::min(shape.min_degree, list.size());
    shape.max_degree = std::max(shape.max_degree, list.size());
  }
  shape.links = degree_sum / 2;

  std::vector<std::size_t> distance(adjacency.size());
  std::vector<std::size_t> component(adjacency.size(), SIZE_MAX);
  std::vector<std::size_t> frontier;
  for (std::size_t start = 0; start < adjacency.size(); ++start) {
    if (component[start] == SIZE_MAX) {
      // Label the component of `start`.
      component[start] = shape.components;
      frontier.assign(1, start);
      while (!frontier.empty()) {
        const std::size_t at = frontier.back();
        frontier.pop_back();
        for (const std::size_t n : adjacency[at]) {
          if (component[n] == SIZE_MAX) {
            component[n] = shape.components;
            frontier.push_back(n);
          }
        }
      }
      ++shape.components;
    }
    std::fill(distance.begin(), distance.end(), SIZE_MAX);
    distance[start] = 0;
    std::vector<std::size_t> queue{start};
    for (std::size_t head = 0; head < queue.size(); ++head) {
      const std::size_t at = queue[head];
      shape.hop_diameter = std::max(shape.hop_diameter, distance[at]);
      for (const std::size_t n : adjacency[at]) {
        if (distance[n] == SIZE_MAX) {
          distance[n] = distance[at] + 1;
          queue.push_back(n);
        }
      }
    }
  }
  return shape;
}

}  // namespace p2pmesh::sim
