// Uses the installed public API only; exits 0 when it behaves.
#include <cstdio>
#include <stdexcept>

#include <p2pmesh/peer.hpp>

int main() {
  p2pmesh::PeerConfig config;
  config.server_urls = {"ftp://not-a-websocket"};
  try {
    p2pmesh::Peer peer(config);
    std::puts("consumer: a bad URL was accepted");
    return 1;
  } catch (const std::invalid_argument&) {
  }
  config.server_urls = {"ws://127.0.0.1:9/service"};
  p2pmesh::Peer peer(config);  // constructed, never started: no network
  const auto snapshot = peer.snapshot();
  std::printf("consumer: state %s, id %u\n", p2pmesh::to_string(snapshot.state), peer.id());
  return snapshot.state == p2pmesh::PeerSnapshot::State::idle ? 0 : 1;
}
