#include "parallel_batch.hpp"

#include <utility>

namespace p2pmesh::sim {

namespace {

// The share [begin, end) of part `part` out of `parts`.
std::pair<std::size_t, std::size_t> share(std::size_t n, std::size_t part, std::size_t parts) {
  return {n * part / parts, n * (part + 1) / parts};
}

}  // namespace

ParallelBatch::ParallelBatch(std::size_t threads) {
  for (std::size_t i = 1; i < threads; ++i) workers_.emplace_back([this, i] { work(i); });
}

ParallelBatch::~ParallelBatch() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  start_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ParallelBatch::run(std::size_t n, const std::function<void(std::size_t)>& fn) {
  if (workers_.empty() || n < 2) {
    for (std::size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    job_size_ = n;
    busy_ = workers_.size();
    ++generation_;
  }
  start_.notify_all();
  const auto [begin, end] = share(n, 0, threads());
  for (std::size_t i = begin; i < end; ++i) fn(i);
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [this] { return busy_ == 0; });
  job_ = nullptr;
}

void ParallelBatch::work(std::size_t worker) {
  std::uint64_t seen = 0;
  for (;;) {
    const std::function<void(std::size_t)>* job;
    std::size_t n;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      job = job_;
      n = job_size_;
    }
    const auto [begin, end] = share(n, worker, threads());
    for (std::size_t i = begin; i < end; ++i) (*job)(i);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --busy_;
    }
    done_.notify_one();
  }
}

}  // namespace p2pmesh::sim
