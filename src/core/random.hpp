#pragma once
// Seeded, platform-independent randomness for the core. std::mt19937_64 is
// fully specified by the standard, but std's distributions are not, so the
// ranges are drawn here to keep runs reproducible across compilers (gcc, clang
// for the wasm build).

#include <cstdint>
#include <random>
#include <vector>

namespace p2pmesh {

class Random {
 public:
  explicit Random(std::uint64_t seed) : engine_(seed) {}

  // Uniform in [0, bound); bound must be > 0. Rejection sampling, no bias.
  std::uint64_t below(std::uint64_t bound) {
    const std::uint64_t limit = UINT64_MAX - UINT64_MAX % bound;
    std::uint64_t x = engine_();
    while (x >= limit) x = engine_();
    return x % bound;
  }

  // Picks `count` distinct elements of `from` (all of them if fewer), in
  // random order: a partial Fisher-Yates shuffle, so no element repeats.
  template <class T>
  std::vector<T> pick_distinct(std::vector<T> from, std::size_t count) {
    if (count > from.size()) count = from.size();
    for (std::size_t i = 0; i < count; ++i) {
      const std::size_t j = i + static_cast<std::size_t>(below(from.size() - i));
      std::swap(from[i], from[j]);
    }
    from.resize(count);
    return from;
  }

  std::uint64_t next() { return engine_(); }

 private:
  std::mt19937_64 engine_;
};

}  // namespace p2pmesh
