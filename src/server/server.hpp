#pragma once
// meshd as a library: the whole server behind one small class, so the
// program (main.cpp) and the tests start exactly the same thing.

#include <cstdint>
#include <memory>
#include <string>

#include "config.hpp"

namespace meshd {

class ServerImpl;

class Server {
 public:
  explicit Server(Config config);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds and listens on config.host:config.port; returns the bound port
  // (the ephemeral one when config.port is 0). Throws std::runtime_error.
  std::uint16_t listen();
  std::uint16_t port() const;

  // Runs the event loop on the calling thread until a graceful stop has
  // finished (every connection closed or the shutdown deadline passed).
  void run();

  // Thread-safe: starts a graceful shutdown (close frames 1001 "server
  // shutdown" to every WebSocket, then the listener and HTTP connections).
  void stop();

 private:
  std::unique_ptr<ServerImpl> impl_;
};

}  // namespace meshd
