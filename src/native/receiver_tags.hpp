#pragma once
// ReceiverTags: the native driver's half of receiver tags (docs/security.md
// "Receiver tags"). In a small group a source tags each broadcast for each
// member with a key the two share, and a member checks its tag (two BLAKE2b
// passes, about 2 us for 1 KiB) instead of the Ed25519 signature (60-100 us
// here): only the source and that member hold the key, so a relay cannot
// make a tag that checks out. Shared keys (X25519, Ed25519Key::shared_key,
// about 100 us) are made once per member key and kept.

#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "actions.hpp"
#include "ed25519_key.hpp"

namespace p2pmesh::native {

class ReceiverTags {
 public:
  explicit ReceiverTags(const Ed25519Key& key) : key_(key) {}

  // Packet.receiver_tags of `message` (broadcast_signing_bytes) for
  // `receivers`; a receiver whose key is unusable gets no entry.
  std::string tag(std::string_view message, const std::vector<TagReceiver>& receivers);
  // Whether `tag` is the one the holder of `source_key` made of `message` for us.
  bool check(std::string_view source_key, std::string_view message, std::string_view tag);

 private:
  // The key shared with the holder of `public_key`; empty when unusable.
  const std::string& shared_with(std::string_view public_key);

  const Ed25519Key& key_;
  // Member public key -> shared key; bounded (cleared when full): members
  // that left leave their keys behind.
  std::unordered_map<std::string, std::string> shared_;
};

}  // namespace p2pmesh::native
