#include "signed_broadcast.hpp"

#include <algorithm>

namespace p2pmesh {

namespace {
constexpr std::string_view kDomain{"p2pmesh broadcast v1\0", 21};
constexpr std::string_view kUnreliableDomain{"p2pmesh unreliable v1\0", 22};

void put_big_endian(std::string& out, std::uint64_t value, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((value >> shift) & 0xFFU));
  }
}
}  // namespace

std::string broadcast_signing_bytes(std::string_view group, PeerId source, std::uint64_t seq,
                                    std::string_view payload, bool unreliable) {
  const std::string_view domain = unreliable ? kUnreliableDomain : kDomain;
  std::string out;
  out.reserve(domain.size() + 4 + group.size() + 4 + 8 + 4 + payload.size());
  out.append(domain);
  put_big_endian(out, group.size(), 4);
  out.append(group);
  put_big_endian(out, source, 4);
  put_big_endian(out, seq, 8);
  put_big_endian(out, payload.size(), 4);
  out.append(payload);
  return out;
}

void append_receiver_tag(std::string& tags, PeerId receiver, std::string_view tag) {
  put_big_endian(tags, receiver, 4);
  tags.append(tag.substr(0, kReceiverTagBytes));
  tags.append(kReceiverTagBytes - std::min(tag.size(), kReceiverTagBytes), '\0');
}

std::string_view find_receiver_tag(std::string_view tags, PeerId receiver) {
  if (tags.size() % kReceiverTagEntryBytes != 0 ||
      tags.size() > kMaxReceiverTagEntries * kReceiverTagEntryBytes) {
    return {};
  }
  for (std::size_t at = 0; at < tags.size(); at += kReceiverTagEntryBytes) {
    std::uint32_t id = 0;
    for (std::size_t i = 0; i < 4; ++i) id = (id << 8) | static_cast<unsigned char>(tags[at + i]);
    if (id == receiver) return tags.substr(at + 4, kReceiverTagBytes);
  }
  return {};
}

}  // namespace p2pmesh
