#pragma once
// The STUN/TURN servers meshd hands out in every welcome (--stun, --turn,
// --turn-secret-file, --turn-ttl), with fresh TURN credentials per
// connection in coturn's REST API scheme (use-auth-secret /
// static-auth-secret):
//
//   username   = "<expiry unix seconds>:<peer id>", expiry = now + ttl
//   credential = base64(HMAC-SHA1(secret, username))
//
// coturn recomputes the credential from its copy of the secret and refuses
// the username once its expiry has passed. The secret never leaves meshd:
// it is not logged, not on /healthz or /metrics, not in any message.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config.hpp"
#include "ice.hpp"
#include "peer_id.hpp"

namespace meshd {

// --turn-ttl: "1h", "30m", "90s", "1h30m", "2d" or plain seconds ("3600");
// nullopt when malformed, zero, or above a year.
std::optional<std::chrono::seconds> parse_duration(std::string_view text);
// The shortest of those spellings ("1h" for 3600 s), for --help.
std::string format_duration(std::chrono::seconds duration);

// Checks the ICE options of `config` (URL schemes and counts, TURN needs a
// secret, ttl) and fills config.turn_secret and config.turn_ttl from the
// secret file and the ttl text. Returns the reason when meshd must refuse to
// start (one line, naming the flag), else an empty string.
std::string configure_ice(Config& config, const std::string& turn_secret_file,
                          const std::string& turn_ttl);

// The coturn REST API credential of one username, with the HMAC key set up
// once (the per-connection cost is one HMAC over the username).
class TurnSecret {
 public:
  explicit TurnSecret(std::string_view secret);
  ~TurnSecret();
  TurnSecret(const TurnSecret&) = delete;
  TurnSecret& operator=(const TurnSecret&) = delete;

  // base64(HMAC-SHA1(secret, username)), standard alphabet with padding.
  // Thread-safe.
  std::string credential(std::string_view username) const;

 private:
  struct Key;
  std::unique_ptr<Key> key_;
};

// "<expiry>:<peer>", expiry = now + ttl in unix seconds.
std::string turn_username(p2pmesh::PeerId peer, std::chrono::system_clock::time_point now,
                          std::chrono::seconds ttl);

// The ICE servers of the welcome, built from the Config (throws
// std::invalid_argument when configure_ice would refuse it).
class WelcomeIceServers {
 public:
  explicit WelcomeIceServers(const Config& config);
  ~WelcomeIceServers();

  bool has_turn() const { return turn_ != nullptr; }

  // The ICE servers for peer `peer`: one STUN entry (every --stun URL, no
  // credentials) and one TURN entry (every --turn URL, fresh credentials).
  // Empty when none are configured.
  std::vector<p2pmesh::IceServer> for_peer(p2pmesh::PeerId peer,
                                           std::chrono::system_clock::time_point now) const;

  // Appends the complete welcome of `peer` (ServerMessage bytes); without
  // --stun/--turn exactly wire::append_welcome(out, peer). Returns true when
  // it carries TURN credentials. Thread-safe.
  bool append_welcome(std::string& out, p2pmesh::PeerId peer) const;

  // For /healthz: "stun: URL...\nturn: URL...\n" (URLs only), or "" when none.
  std::string describe() const;

 private:
  std::vector<std::string> stun_urls_;
  std::vector<std::string> turn_urls_;
  std::chrono::seconds ttl_;
  std::unique_ptr<TurnSecret> turn_;
};

}  // namespace meshd
