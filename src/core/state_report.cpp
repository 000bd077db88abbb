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
  const MeshCounters& c = node.counters();
  // Every field of MeshCounters, by its name, in its order (as the native
  // snapshot's counters and, in camelCase, the browser's counters()).
  out += ",\"counters\":{";
  append_field(out, "malformed_packets", c.malformed_packets, false);
  append_field(out, "bad_routes", c.bad_routes);
  append_field(out, "misrouted_packets", c.misrouted_packets);
  append_field(out, "duplicate_packets", c.duplicate_packets);
  append_field(out, "malformed_updates", c.malformed_updates);
  append_field(out, "forged_updates", c.forged_updates);
  append_field(out, "stale_updates", c.stale_updates);
  append_field(out, "bad_signals", c.bad_signals);
  append_field(out, "foreign_topics", c.foreign_topics);
  append_field(out, "dropped_hops", c.dropped_hops);
  append_field(out, "oversized_broadcasts", c.oversized_broadcasts);
  append_field(out, "oversized_publishes", c.oversized_publishes);
  append_field(out, "broadcasts", c.broadcasts);
  append_field(out, "delivered", c.delivered);
  append_field(out, "relayed", c.relayed);
  append_field(out, "fallback_sent", c.fallback_sent);
  append_field(out, "fallback_received", c.fallback_received);
  append_field(out, "offers_refused", c.offers_refused);
  append_field(out, "links_opened", c.links_opened);
  append_field(out, "links_timed_out", c.links_timed_out);
  append_field(out, "links_dead", c.links_dead);
  append_field(out, "repaired", c.repaired);
  append_field(out, "links_dropped_for_room", c.links_dropped_for_room);
  out += "},\"app\":";
  out += app_json.empty() ? "null" : app_json;
  out += '}';
  return out;
}

}  // namespace p2pmesh
