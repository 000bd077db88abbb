#pragma once
#include <cstdint>

namespace p2pmesh {

// Time is an input of the core, never read from a clock: microseconds since an
// epoch the driver chooses (a steady clock natively, virtual time in mesh-sim).
using TimeUs = std::int64_t;
inline constexpr TimeUs kMillisecond = 1000;
inline constexpr TimeUs kSecond = 1000 * kMillisecond;
inline constexpr TimeUs kNever = INT64_MAX;

}  // namespace p2pmesh
