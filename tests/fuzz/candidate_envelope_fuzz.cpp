// libFuzzer target for the candidate envelope (candidate_envelope.hpp): the
// input is unwrapped as an envelope; what unwraps must point into the input,
// and wrapping it again must unwrap to the same candidate and initiator.
// Wrapping any text (the input's two halves) must not crash either.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "candidate_envelope.hpp"

namespace {

void require(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "candidate_envelope_fuzz: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace p2pmesh;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const auto envelope = unwrap_candidate(text);
  if (envelope) {
    const std::string_view candidate = envelope->candidate_json;
    require(!candidate.empty(), "an unwrapped candidate is not empty");
    require(candidate.data() >= text.data() &&
                candidate.data() + candidate.size() <= text.data() + text.size(),
            "the candidate points into the input");
    const std::string again = wrap_candidate(candidate, envelope->initiator);
    const auto round = unwrap_candidate(again);
    require(round.has_value(), "a re-wrapped envelope unwraps");
    require(round->candidate_json == candidate, "the re-wrapped candidate is the same text");
    require(round->initiator == envelope->initiator, "the re-wrapped initiator is the same");
  }

  // Arbitrary text (the input's first half) as the candidate: wrapping never
  // fails, and what unwraps from the result points into it.
  const std::string_view half = text.substr(0, size / 2);
  const PeerId initiator = size > 0 ? static_cast<PeerId>(data[size - 1]) * 16777619u : kNoPeer;
  const std::string wrapped = wrap_candidate(half, initiator);
  if (const auto back = unwrap_candidate(wrapped)) {
    require(back->candidate_json.data() >= wrapped.data() &&
                back->candidate_json.data() + back->candidate_json.size() <=
                    wrapped.data() + wrapped.size(),
            "the candidate points into the wrapped text");
  }
  return 0;
}
