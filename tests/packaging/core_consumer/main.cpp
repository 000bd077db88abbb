// Uses the installed core headers (<p2pmesh/core/...>); exits 0 when the
// broadcast tree of a 5-peer ring reaches every peer over 4 edges.
#include <cstdio>

#include <p2pmesh/core/broadcast_tree.hpp>
#include <p2pmesh/core/mesh_view.hpp>

int main() {
  p2pmesh::MeshView view;
  for (p2pmesh::PeerId peer = 1; peer <= 5; ++peer) view.add_peer(peer);
  for (p2pmesh::PeerId peer = 1; peer <= 5; ++peer) view.add_link(peer, peer % 5 + 1);
  const p2pmesh::BroadcastTree tree = p2pmesh::compute_broadcast_tree(view, 1);
  std::printf("core_consumer: %zu peers, %zu links, tree reaches %zu (depth %u)\n",
              view.peer_count(), view.link_count(), tree.reached.size(), tree.depth);
  return tree.reached.size() == 5 && tree.edges.size() == 4 ? 0 : 1;
}
