#pragma once
// A peer's state as JSON, for observers (the dashboard): its view of the mesh,
// its links, its broadcast tree and counters. Published by the MeshNode on
// `<group>.report` every `report_interval` when that is set, so native and
// browser peers appear alike wherever meshd runs. The dashboard trusts the
// server-stamped sender, not the "id" inside.

#include <string>

namespace p2pmesh {

class MeshNode;

// {"id":..,"group":..,"kind":..,"members":[..],"links":[{"peer","state","rtt_us",
//  "initiated"}],"view":[[a,b,rtt_us],..],"tree":[[u,v],..],"reached":N,
//  "counters":{..},"app":<app_json or null>}
std::string state_report_json(MeshNode& node, const std::string& app_json = {});

}  // namespace p2pmesh
