#include "state_report.hpp"

#include <algorithm>

#include "mesh_node.hpp"

namespace p2pmesh {

namespace {

void append_string(std::string& out, const std::string& text) {
  out += '"';
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20) {
      static const char* hex = "0123456789abcdef";
      out += "\\u00";
      out += hex[byte >> 4];
      out += hex[byte & 15];
    } else {
      out += c;
    }
  }
  out += '"';
}

template <class T>
void append_field(std::string& out, const char* name, T value, bool comma = true) {
  if (comma) out += ',';
  out += '"';
  out += name;
  out += "\":";
  out += std::to_string(value);
}

}  // namespace

std::string state_report_json(MeshNode& node, const std::string& app_json) {
  std::string out = "{";
  append_field(out, "id", node.id(), false);
  out += ",\"group\":";
  append_string(out, node.config().group);
  out += ",\"kind\":";
  append_string(out, node.config().kind);
  // Signed broadcasts: the group policy in force here (docs/security.md).
  out += node.requires_signatures() ? ",\"require_signatures\":true" : ",\"require_signatures\":false";

  out += ",\"members\":[";
  bool first = true;
  for (const PeerId peer : node.membership().members()) {
    if (!first) out += ',';
    first = false;
    out += std::to_string(peer);
  }
  out += "],\"links\":[";
  first = true;
  for (const Link& link : node.links().all()) {
    if (!first) out += ',';
    first = false;
    out += '{';
    append_field(out, "peer", link.peer, false);
    out += ",\"state\":";
    out += link.state == LinkState::open ? "\"open\"" : "\"connecting\"";
    append_field(out, "rtt_us", link.rtt_us);
    out += ",\"candidate\":\"";
    out += to_string(link.candidate_type);
    out += '"';
    out += ",\"initiated\":";
    out += link.initiated ? "true" : "false";
    out += '}';
  }
  // Each undirected link of the view once (a < b).
  out += "],\"view\":[";
  first = true;
  const MeshView& view = node.membership().view();
  for (const PeerId a : view.peers()) {
    for (const Neighbour& n : view.neighbours(a)) {
      if (n.peer < a) continue;
      if (!first) out += ',';
      first = false;
      out += '[' + std::to_string(a) + ',' + std::to_string(n.peer) + ',' +
             std::to_string(n.weight_us) + ']';
    }
  }
  out += "],\"tree\":[";
  const BroadcastTree& tree = node.tree();
  first = true;
  for (const wire::Edge& edge : tree.edges) {
    if (!first) out += ',';
    first = false;
    out += '[' + std::to_string(edge.u) + ',' + std::to_string(edge.v) + ']';
  }
  out += ']';
  append_field(out, "reached", tree.reached.empty() ? 0 : tree.reached.size() - 1);
  out += ",\"counters\":{";
  bool first_counter = true;
  for_each_counter(node.counters(), [&](const char* name, std::uint64_t value) {
    append_field(out, name, value, !first_counter);
    first_counter = false;
  });
  out += "},\"app\":";
  out += app_json.empty() ? "null" : app_json;
  out += '}';
  return out;
}

}  // namespace p2pmesh
