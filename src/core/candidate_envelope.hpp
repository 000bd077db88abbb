#pragma once
// The JSON envelope of a trickled ICE candidate on `<id>.candidate` (WIRE.md):
//   {"candidate":{...RTCIceCandidateInit...},"initiator":<id of the offerer>}
// The core only wraps and unwraps the envelope; the inner candidate object is
// the driver's business. `initiator` tells which of the two possible links
// with the sender (the one we offered, or the one it offered) it belongs to.

#include <optional>
#include <string>
#include <string_view>

#include "peer_id.hpp"

namespace p2pmesh {

std::string wrap_candidate(std::string_view candidate_json, PeerId initiator);

struct CandidateEnvelope {
  std::string_view candidate_json;  // raw JSON value of "candidate" (points into the input)
  PeerId initiator = kNoPeer;
};
// nullopt when the text is not a JSON object with both members. Bounded: it
// never recurses deeper than a small limit and reads each byte once.
std::optional<CandidateEnvelope> unwrap_candidate(std::string_view json);

}  // namespace p2pmesh
