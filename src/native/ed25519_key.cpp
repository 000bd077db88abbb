#include "ed25519_key.hpp"

#include <stdexcept>

#include <sodium.h>

#include "sodium_bytes.hpp"

namespace p2pmesh::native {

namespace {
void start_sodium() {
  // Thread-safe and idempotent; < 0 only when no randomness is available.
  if (sodium_init() < 0) throw std::runtime_error("p2pmesh: libsodium failed to start");
}
}  // namespace

Ed25519Key::Ed25519Key(std::string_view seed)
    : public_key_(crypto_sign_PUBLICKEYBYTES, '\0'), secret_key_(crypto_sign_SECRETKEYBYTES, '\0') {
  start_sodium();
  if (seed.empty()) {
    crypto_sign_keypair(sodium_bytes(public_key_), sodium_bytes(secret_key_));
  } else if (seed.size() == crypto_sign_SEEDBYTES) {
    crypto_sign_seed_keypair(sodium_bytes(public_key_), sodium_bytes(secret_key_), sodium_bytes(seed));
  } else {
    throw std::invalid_argument("p2pmesh: signing_key must be a 32-byte Ed25519 seed, not " +
                                std::to_string(seed.size()) + " bytes");
  }
}

Ed25519Key::~Ed25519Key() { sodium_memzero(secret_key_.data(), secret_key_.size()); }

std::string Ed25519Key::sign(std::string_view message) const {
  std::string signature(crypto_sign_BYTES, '\0');
  crypto_sign_detached(sodium_bytes(signature), nullptr, sodium_bytes(message), message.size(),
                       sodium_bytes(secret_key_));
  return signature;
}

std::string Ed25519Key::shared_key(std::string_view peer_public_key) const {
  if (peer_public_key.size() != crypto_sign_PUBLICKEYBYTES) return {};
  unsigned char our_secret[crypto_scalarmult_curve25519_SCALARBYTES];
  unsigned char their_public[crypto_scalarmult_curve25519_BYTES];
  unsigned char shared[crypto_scalarmult_curve25519_BYTES];
  std::string key;
  if (crypto_sign_ed25519_pk_to_curve25519(their_public, sodium_bytes(peer_public_key)) == 0) {
    crypto_sign_ed25519_sk_to_curve25519(our_secret,
                                         sodium_bytes(secret_key_));
    // Fails for a small-order point (an all-zero secret): no key, no tags.
    if (crypto_scalarmult_curve25519(shared, our_secret, their_public) == 0) {
      // Both public keys, in byte order, bind the key to this pair.
      const bool ours_first = public_key_ < peer_public_key;
      const std::string_view first = ours_first ? std::string_view(public_key_) : peer_public_key;
      const std::string_view second = ours_first ? peer_public_key : std::string_view(public_key_);
      static constexpr std::string_view kDomain{"p2pmesh receiver tag key v1\0", 28};
      key.assign(crypto_generichash_BYTES, '\0');
      crypto_generichash_state state;
      crypto_generichash_init(&state, nullptr, 0, key.size());
      crypto_generichash_update(&state, sodium_bytes(kDomain), kDomain.size());
      crypto_generichash_update(&state, shared, sizeof shared);
      crypto_generichash_update(&state, sodium_bytes(first), first.size());
      crypto_generichash_update(&state, sodium_bytes(second), second.size());
      crypto_generichash_final(&state, sodium_bytes(key), key.size());
    }
  }
  sodium_memzero(our_secret, sizeof our_secret);
  sodium_memzero(shared, sizeof shared);
  return key;
}

bool ed25519_verify(std::string_view public_key, std::string_view message,
                    std::string_view signature) {
  if (public_key.size() != crypto_sign_PUBLICKEYBYTES || signature.size() != crypto_sign_BYTES) {
    return false;
  }
  return crypto_sign_verify_detached(sodium_bytes(signature), sodium_bytes(message), message.size(),
                                     sodium_bytes(public_key)) == 0;
}

}  // namespace p2pmesh::native
