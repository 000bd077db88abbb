#include "receiver_tags.hpp"

#include <array>

#include <sodium.h>

#include "signed_broadcast.hpp"
#include "sodium_bytes.hpp"

namespace p2pmesh::native {

namespace {
constexpr std::size_t kMaxSharedKeys = 4096;

using Digest = std::array<unsigned char, crypto_generichash_BYTES>;
using Tag = std::array<unsigned char, kReceiverTagBytes>;

// The message is hashed once, each tag keys a hash of the digest: a source
// tags for a dozen members at the cost of one pass over the payload.
Digest digest_of(std::string_view message) {
  Digest digest;
  crypto_generichash(digest.data(), digest.size(), sodium_bytes(message), message.size(), nullptr, 0);
  return digest;
}

Tag tag_of(const Digest& digest, const std::string& shared_key) {
  Tag tag;
  crypto_generichash(tag.data(), tag.size(), digest.data(), digest.size(), sodium_bytes(shared_key),
                     shared_key.size());
  return tag;
}
}  // namespace

const std::string& ReceiverTags::shared_with(std::string_view public_key) {
  const auto found = shared_.find(std::string(public_key));
  if (found != shared_.end()) return found->second;
  if (shared_.size() >= kMaxSharedKeys) shared_.clear();
  return shared_.emplace(std::string(public_key), key_.shared_key(public_key)).first->second;
}

std::string ReceiverTags::tag(std::string_view message, const std::vector<TagReceiver>& receivers) {
  std::string tags;
  if (receivers.empty()) return tags;
  tags.reserve(receivers.size() * kReceiverTagEntryBytes);
  const Digest digest = digest_of(message);
  for (const TagReceiver& receiver : receivers) {
    const std::string& shared = shared_with(receiver.public_key);
    if (shared.empty()) continue;
    const Tag tag = tag_of(digest, shared);
    append_receiver_tag(tags, receiver.peer,
                        {reinterpret_cast<const char*>(tag.data()), tag.size()});
  }
  return tags;
}

bool ReceiverTags::check(std::string_view source_key, std::string_view message,
                         std::string_view tag) {
  if (tag.size() != kReceiverTagBytes) return false;
  const std::string& shared = shared_with(source_key);
  if (shared.empty()) return false;
  const Tag expected = tag_of(digest_of(message), shared);
  return sodium_memcmp(expected.data(), sodium_bytes(tag), expected.size()) == 0;
}

}  // namespace p2pmesh::native
