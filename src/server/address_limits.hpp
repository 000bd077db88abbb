#pragma once
// Per-address limits (--max-connections-per-ip, --max-handshakes-per-ip):
// one address cannot take every connection or every handshake slot (a
// slowloris from one host no longer blocks the others). Shared by the event
// loops: a mutex around a map of the addresses that have connections.

#include <array>
#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace meshd {

class AddressLimits {
 public:
  // 0 = no limit.
  AddressLimits(std::size_t max_connections, std::size_t max_handshakes)
      : max_connections_(max_connections), max_handshakes_(max_handshakes) {}
  bool enabled() const { return max_connections_ != 0 || max_handshakes_ != 0; }

  using Key = std::array<std::uint8_t, 16>;  // IPv4 as v4-mapped IPv6

  // One connection's place in the counts, from accept to close: in its
  // handshake (HTTP request, TLS, WebSocket upgrade) until upgraded().
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept { *this = std::move(other); }
    Slot& operator=(Slot&& other) noexcept;
    ~Slot() { release(); }
    void upgraded();  // the handshake is over: no longer counted as one

   private:
    friend class AddressLimits;
    void release();
    AddressLimits* limits_ = nullptr;
    Key key_{};
    bool handshaking_ = false;
  };

  enum class Refusal : std::uint8_t { none, connections, handshakes };
  // A new connection from `address`: a slot, or why not.
  Refusal admit(const boost::asio::ip::address& address, Slot& slot);

  // Addresses with connections now (for tests and metrics).
  std::size_t addresses() const;

 private:
  struct Counts {
    std::uint32_t connections = 0;
    std::uint32_t handshakes = 0;
  };
  struct KeyHash {
    std::size_t operator()(const Key& key) const noexcept;
  };
  void release(const Key& key, bool handshaking);
  void end_handshake(const Key& key);

  const std::size_t max_connections_;
  const std::size_t max_handshakes_;
  mutable std::mutex mutex_;
  std::unordered_map<Key, Counts, KeyHash> counts_;
};

}  // namespace meshd
