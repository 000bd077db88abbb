#pragma once
// Runs one function over the indices 0..n-1 of a batch on several threads
// (the calling one included), and returns when all are done. mesh-sim hands
// it the deliveries of one server publication: each reaches a different
// node, and a node's handling of a message touches only that node, so the
// order between nodes does not matter; what they send is carried out
// afterwards, in order, on the calling thread (results stay reproducible).

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace p2pmesh::sim {

class ParallelBatch {
 public:
  // `threads` in total, the caller included (1 = run everything inline).
  explicit ParallelBatch(std::size_t threads);
  ~ParallelBatch();
  ParallelBatch(const ParallelBatch&) = delete;
  ParallelBatch& operator=(const ParallelBatch&) = delete;

  std::size_t threads() const { return workers_.size() + 1; }
  // Calls fn(i) for every i in [0, n), each exactly once. Threads take
  // chunks of consecutive indices as they become free: one receiver may cost
  // far more than another (a view table that moves), so fixed halves would
  // leave one thread waiting for the other.
  void run(std::size_t n, const std::function<void(std::size_t)>& fn);
  // The same, a chunk [begin, end) at a time: a chunk is its thread's alone,
  // so fn may look ahead within it (mesh-sim loads the next nodes' tables).
  void run_chunks(std::size_t n, const std::function<void(std::size_t, std::size_t)>& fn);

 private:
  void work();
  // Runs chunks of the current job until none is left.
  void take_chunks(const std::function<void(std::size_t, std::size_t)>& fn, std::size_t n);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_;
  std::condition_variable done_;
  const std::function<void(std::size_t, std::size_t)>* job_ = nullptr;
  std::size_t job_size_ = 0;
  std::atomic<std::size_t> next_index_{0};
  std::uint64_t generation_ = 0;  // one per run(): wakes the workers
  std::size_t active_ = 0;        // workers running chunks of the current job
  bool stopping_ = false;
};

}  // namespace p2pmesh::sim
