#pragma once
// The native peer's Ed25519 key pair and signature check (libsodium), for
// signed broadcasts (docs/security.md). The core never sees the private key:
// it asks the driver to sign (SignBroadcast) and to verify (VerifySignature).

#include <string>
#include <string_view>

namespace p2pmesh::native {

class Ed25519Key {
 public:
  // From a 32-byte seed; empty: a fresh random key pair. Throws
  // std::invalid_argument for any other size, std::runtime_error when
  // libsodium cannot start.
  explicit Ed25519Key(std::string_view seed = {});
  Ed25519Key(const Ed25519Key&) = delete;
  Ed25519Key& operator=(const Ed25519Key&) = delete;
  ~Ed25519Key();  // wipes the secret

  const std::string& public_key() const { return public_key_; }  // 32 bytes
  std::string sign(std::string_view message) const;                 // 64 bytes
  // The 32-byte key this key pair shares with `peer_public_key`'s holder
  // (X25519 of the two keys in their Curve25519 form, hashed with both
  // public keys; the same from either side), for receiver tags. Empty when
  // `peer_public_key` is not a usable Ed25519 point.
  std::string shared_key(std::string_view peer_public_key) const;

 private:
  std::string public_key_;
  std::string secret_key_;  // libsodium's 64-byte form (seed + public key)
};

// Whether `signature` is `public_key`'s Ed25519 signature of `message`
// (false for keys or signatures of the wrong size).
bool ed25519_verify(std::string_view public_key, std::string_view message,
                    std::string_view signature);

}  // namespace p2pmesh::native
