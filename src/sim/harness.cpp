// placeholder until the harness lands
namespace p2pmesh::sim {}
