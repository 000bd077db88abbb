#include "signed_broadcast.hpp"

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

}  // namespace p2pmesh
