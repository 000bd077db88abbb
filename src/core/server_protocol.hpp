#pragma once
// The peer's side of the WebSocket protocol with the server (WIRE.md §1):
// the binary frame a driver writes for each Subscribe / Publish action. The
// other direction (ServerMessage frames in) is MeshNode::on_server_frame.

#include <string>

#include "actions.hpp"

namespace p2pmesh {

std::string server_frame(const Subscribe& subscribe);  // a ClientMessage
std::string server_frame(const Publish& publish);

}  // namespace p2pmesh
