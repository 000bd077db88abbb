#pragma once
// Runs one function over the indices 0..n-1 of a batch on several threads
// (the calling one included), and returns when all are done. mesh-sim hands
// it the deliveries of one server publication: each reaches a different
// node, and a node's handling of a message touches only that node, so the
// order between nodes does not matter; what they send is carried out
// afterwards, in order, on the calling thread (results stay reproducible).

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
  // Calls fn(i) for every i in [0, n), each exactly once, split in
  // contiguous ranges among the threads.
  void run(std::size_t n, const std::function<void(std::size_t)>& fn);

 private:
  void work(std::size_t worker);

  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable start_;
  std::condition_variable done_;
  const std::function<void(std::size_t)>* job_ = nullptr;
  std::size_t job_size_ = 0;
  std::uint64_t generation_ = 0;  // one per run(): wakes the workers
  std::size_t busy_ = 0;          // workers not done with this run yet
  bool stopping_ = false;
};

}  // namespace p2pmesh::sim
