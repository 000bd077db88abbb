#pragma once
// UTF-8 validation (RFC 3629), incremental: a WebSocket text message and a
// close frame's reason must be valid UTF-8 (RFC 6455 8.1), and a text
// message may arrive in pieces split anywhere, even inside a character.
// Rejects overlong forms, surrogates (U+D800..U+DFFF) and code points above
// U+10FFFF as soon as the offending byte is seen.

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace meshd {

class Utf8Validator {
 public:
  // False once the bytes so far cannot be the start of valid UTF-8.
  bool feed(const unsigned char* data, std::size_t size) {
    for (std::size_t i = 0; i < size && state_ != kRejected; ++i) state_ = step(state_, data[i]);
    return state_ != kRejected;
  }
  bool feed(std::string_view text) {
    return feed(reinterpret_cast<const unsigned char*>(text.data()), text.size());
  }
  // Valid and not inside a character.
  bool complete() const { return state_ == kAccept; }
  void reset() { state_ = kAccept; }

  static bool valid(std::string_view text) {
    Utf8Validator validator;
    return validator.feed(text) && validator.complete();
  }

 private:
  // States: what the next byte must be.
  enum : std::uint8_t {
    kAccept,       // a lead byte (or the end)
    kTail1,        // 1 more continuation byte (80..BF)
    kTail2,        // 2 more
    kTail3,        // 3 more
    kAfterE0,      // A0..BF, then 1 (no overlong 3-byte form)
    kAfterED,      // 80..9F, then 1 (no surrogates)
    kAfterF0,      // 90..BF, then 2 (no overlong 4-byte form)
    kAfterF4,      // 80..8F, then 2 (nothing above U+10FFFF)
    kRejected,
  };

  static std::uint8_t step(std::uint8_t state, unsigned char byte) {
    const auto in = [byte](unsigned char low, unsigned char high) {
      return byte >= low && byte <= high;
    };
    switch (state) {
      case kAccept:
        if (byte < 0x80) return kAccept;
        if (in(0xC2, 0xDF)) return kTail1;
        if (byte == 0xE0) return kAfterE0;
        if (byte == 0xED) return kAfterED;
        if (in(0xE1, 0xEF)) return kTail2;
        if (byte == 0xF0) return kAfterF0;
        if (byte == 0xF4) return kAfterF4;
        if (in(0xF1, 0xF3)) return kTail3;
        return kRejected;  // 80..C1 (continuation, overlong 2-byte lead), F5..FF
      case kTail1:
        return in(0x80, 0xBF) ? kAccept : kRejected;
      case kTail2:
        return in(0x80, 0xBF) ? kTail1 : kRejected;
      case kTail3:
        return in(0x80, 0xBF) ? kTail2 : kRejected;
      case kAfterE0:
        return in(0xA0, 0xBF) ? kTail1 : kRejected;
      case kAfterED:
        return in(0x80, 0x9F) ? kTail1 : kRejected;
      case kAfterF0:
        return in(0x90, 0xBF) ? kTail2 : kRejected;
      case kAfterF4:
        return in(0x80, 0x8F) ? kTail2 : kRejected;
      default:
        return kRejected;
    }
  }

  std::uint8_t state_ = kAccept;
};

}  // namespace meshd
