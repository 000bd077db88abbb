#include "parallel_batch.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <vector>

#include "scenario.hpp"
#include "virtual_network.hpp"

namespace p2pmesh::sim {
namespace {

TEST(ParallelBatch, CallsEveryIndexExactlyOnce) {
  for (std::size_t threads : {1u, 2u, 3u}) {
    ParallelBatch parallel(threads);
    EXPECT_EQ(parallel.threads(), threads);
    for (std::size_t n : {0u, 1u, 2u, 31u, 32u, 33u, 1000u}) {
      for (int round = 0; round < 20; ++round) {
        std::vector<std::atomic<int>> calls(n);
        parallel.run(n, [&](std::size_t i) { calls[i].fetch_add(1); });
        for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(calls[i].load(), 1) << n << " " << i;
      }
    }
  }
}

TEST(ParallelBatch, ChunksCoverEveryIndexOnceAndNoneIsEmpty) {
  for (std::size_t threads : {1u, 2u, 3u}) {
    ParallelBatch parallel(threads);
    for (std::size_t n : {0u, 1u, 2u, 31u, 32u, 33u, 1000u}) {
      std::vector<std::atomic<int>> calls(n);
      std::atomic<bool> empty_chunk{false};
      parallel.run_chunks(n, [&](std::size_t begin, std::size_t end) {
        if (begin >= end) empty_chunk = true;
        for (std::size_t i = begin; i < end; ++i) calls[i].fetch_add(1);
      });
      EXPECT_FALSE(empty_chunk) << n;
      for (std::size_t i = 0; i < n; ++i) ASSERT_EQ(calls[i].load(), 1) << n << " " << i;
    }
  }
}

TEST(ParallelBatch, ScenarioResultsDoNotDependOnThreads) {
  ScenarioOptions options;
  options.peers = 120;
  options.broadcasts = 20;
  options.churn_percent_per_minute = 5;
  options.seed = 5;
  options.network.threads = 1;
  ScenarioResult one = run_scenario(options);
  options.network.threads = 2;
  ScenarioResult two = run_scenario(options);
  // Timing figures differ; everything measured in the mesh must not.
  for (ScenarioResult* r : {&one, &two}) r->wall_seconds = r->cpu_ms_per_broadcast = r->peak_rss_mb = 0;
  EXPECT_EQ(one.json(options), two.json(options));
}

// The threads must actually share the work: a batch frame reaches each
// member as several messages in a row, and those once kept every batch on
// one thread.
TEST(ParallelBatch, MostServerMessagesAreTakenOnSeveralThreads) {
  NetworkOptions options;
  options.threads = 2;
  VirtualNetwork network(options);
  MeshConfig config;
  config.group = "g";
  network.add_peers(150, 20 * kMillisecond, config);
  network.run_for(30 * kSecond);
  const Traffic& traffic = network.traffic();
  ASSERT_GT(traffic.server_messages, 10'000u);
  EXPECT_GT(traffic.server_messages_in_parallel, traffic.server_messages * 8 / 10)
      << traffic.server_messages_in_parallel << " of " << traffic.server_messages;
}

}  // namespace
}  // namespace p2pmesh::sim
