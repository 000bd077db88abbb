#pragma once
// libsodium takes unsigned char pointers; our keys, signatures and messages
// are std::string bytes. One place for the cast.

#include <string>
#include <string_view>

namespace p2pmesh::native {

inline const unsigned char* sodium_bytes(std::string_view text) {
  return reinterpret_cast<const unsigned char*>(text.data());
}
inline unsigned char* sodium_bytes(std::string& text) {
  return reinterpret_cast<unsigned char*>(text.data());
}

}  // namespace p2pmesh::native
