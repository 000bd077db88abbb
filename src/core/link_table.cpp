#include "link_table.hpp"

#include <algorithm>

namespace p2pmesh {

LinkId LinkTable::create(PeerId peer, bool initiated, TimeUs now) {
  Link link;
  link.id = next_id_++;
  link.peer = peer;
  link.initiated = initiated;
  link.created_at = now;
  links_.push_back(link);
  return link.id;
}

bool LinkTable::erase(LinkId id) {
  auto it = std::find_if(links_.begin(), links_.end(), [id](const Link& l) { return l.id == id; });
  if (it == links_.end()) return false;
  links_.erase(it);
  return true;
}

Link* LinkTable::find(LinkId id) {
  auto it = std::find_if(links_.begin(), links_.end(), [id](const Link& l) { return l.id == id; });
  return it == links_.end() ? nullptr : &*it;
}

const Link* LinkTable::find(LinkId id) const { return const_cast<LinkTable*>(this)->find(id); }

Link* LinkTable::find(PeerId peer, bool initiated) {
  auto it = std::find_if(links_.begin(), links_.end(), [&](const Link& l) {
    return l.peer == peer && l.initiated == initiated;
  });
  return it == links_.end() ? nullptr : &*it;
}

const Link* LinkTable::find(PeerId peer, bool initiated) const {
  return const_cast<LinkTable*>(this)->find(peer, initiated);
}

const Link* LinkTable::open_link_to(PeerId peer) const {
  auto it = std::find_if(links_.begin(), links_.end(), [&](const Link& l) {
    return l.peer == peer && l.state == LinkState::open;
  });
  return it == links_.end() ? nullptr : &*it;
}

bool LinkTable::has_any_with(PeerId peer) const {
  return std::any_of(links_.begin(), links_.end(), [&](const Link& l) { return l.peer == peer; });
}

std::size_t LinkTable::open_count() const {
  return static_cast<std::size_t>(std::count_if(
      links_.begin(), links_.end(), [](const Link& l) { return l.state == LinkState::open; }));
}

std::vector<PeerId> LinkTable::open_peers() const {
  std::vector<PeerId> peers;
  for (const Link& l : links_) {
    if (l.state == LinkState::open) peers.push_back(l.peer);
  }
  std::sort(peers.begin(), peers.end());
  peers.erase(std::unique(peers.begin(), peers.end()), peers.end());
  return peers;
}

}  // namespace p2pmesh
