#pragma once
// A test peer that behaves like the reference implementation at the wire, so
// that mixed groups (reference peers beside ours) can be tested in-process
// and simulated without the reference code. Never for real use.
//
// What it reproduces (WIRE.md §4 and what mixed groups showed): a unit-weight
// Prim tree with the full route in every packet, no message ids, no repair,
// no relay fallback, offers ignored when full, and MeshConfig::
// emulate_reference's quirks (status before subscribing, unchanged status
// ids, statuses every 60 s, dials every 30 s, phantom received links).

#include "mesh_config.hpp"

namespace p2pmesh {

inline constexpr TimeUs kReferenceDialInterval = 30 * kSecond;
inline constexpr TimeUs kReferenceStatusInterval = 60 * kSecond;

// `config` (group, limits, seed...) turned into a reference-like peer's.
MeshConfig reference_like(MeshConfig config);

}  // namespace p2pmesh
