// Wire codec microbenchmarks (Google Benchmark cases; no main here, they are
// linked into bench_core).
#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

#include "wire.hpp"

namespace {

namespace w = p2pmesh::wire;

// A broadcast packet as the mesh sends it: a tree of `edges` edges with
// realistic (2- to 5-byte) peer ids and a 100-byte binary payload.
w::Packet make_packet(std::int64_t edges) {
  w::Packet packet;
  packet.source = 1000;
  packet.seq = 123456;
  for (std::int64_t i = 0; i < edges; ++i) {
    const auto u = static_cast<std::uint32_t>(1000 + i / 3);
    const auto v = static_cast<std::uint32_t>(1001 + i) * 2654435761u;  // spread over varint sizes
    packet.edges.push_back({u, v});
  }
  packet.payload.resize(100);
  for (std::size_t i = 0; i < packet.payload.size(); ++i) {
    packet.payload[i] = static_cast<char>(i * 37);
  }
  return packet;
}

void BM_PacketEncodeDecode(benchmark::State& state) {
  const w::Packet packet = make_packet(state.range(0));
  w::Packet decoded;
  std::int64_t bytes = 0;
  for ([[maybe_unused]] auto _ : state) {
    const std::string encoded = w::encode(packet);
    const w::DecodeError error = w::decode(encoded, decoded);
    benchmark::DoNotOptimize(error);
    benchmark::DoNotOptimize(decoded.edges.data());
    bytes += static_cast<std::int64_t>(encoded.size());
  }
  if (!(decoded == packet)) state.SkipWithError("round trip changed the packet");
  state.SetBytesProcessed(bytes);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PacketEncodeDecode)->Arg(0)->Arg(10)->Arg(100);

void BM_PacketEncode(benchmark::State& state) {
  const w::Packet packet = make_packet(state.range(0));
  for ([[maybe_unused]] auto _ : state) {
    std::string encoded = w::encode(packet);
    benchmark::DoNotOptimize(encoded.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PacketEncode)->Arg(0)->Arg(10)->Arg(100);

void BM_PacketDecode(benchmark::State& state) {
  const std::string encoded = w::encode(make_packet(state.range(0)));
  w::Packet decoded;
  for ([[maybe_unused]] auto _ : state) {
    const w::DecodeError error = w::decode(encoded, decoded);
    benchmark::DoNotOptimize(error);
    benchmark::DoNotOptimize(decoded.edges.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_PacketDecode)->Arg(0)->Arg(10)->Arg(100);

// The server's fan-out path: one publication appended to an outgoing buffer.
void BM_TopicMessageAppend(benchmark::State& state) {
  const std::string topic = "room.1234567.candidate";
  const std::string body(100, 'x');
  std::string out;
  for ([[maybe_unused]] auto _ : state) {
    out.clear();
    w::append_topic_message(out, topic, 1234567, body);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_TopicMessageAppend);

}  // namespace
