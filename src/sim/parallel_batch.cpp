#include "parallel_batch.hpp"

namespace p2pmesh::sim {

namespace {

constexpr std::size_t kChunk = 32;

}  // namespace

ParallelBatch::ParallelBatch(std::size_t threads) {
  for (std::size_t i = 1; i < threads; ++i) workers_.emplace_back([this] { work(); });
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
  run_chunks(n, [&fn](std::size_t begin, std::size_t end) {
    for (std::size_t i = begin; i < end; ++i) fn(i);
  });
}

void ParallelBatch::run_chunks(std::size_t n,
                               const std::function<void(std::size_t, std::size_t)>& fn) {
  if (workers_.empty() || n < 2) {
    if (n != 0) fn(0, n);
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mutex_);
    job_ = &fn;
    job_size_ = n;
    next_index_.store(0, std::memory_order_relaxed);
    ++generation_;
  }
  start_.notify_all();
  take_chunks(fn, n);
  // Wait only for workers that joined in: one the system has not woken yet
  // finds no job when it does (on a busy machine that can take a while).
  std::unique_lock<std::mutex> lock(mutex_);
  done_.wait(lock, [this] { return active_ == 0; });
  job_ = nullptr;
}

void ParallelBatch::take_chunks(const std::function<void(std::size_t, std::size_t)>& fn,
                                std::size_t n) {
  for (;;) {
    const std::size_t begin = next_index_.fetch_add(kChunk, std::memory_order_relaxed);
    if (begin >= n) return;
    fn(begin, begin + kChunk < n ? begin + kChunk : n);
  }
}

void ParallelBatch::work() {
  std::uint64_t seen = 0;
  for (;;) {
    const std::function<void(std::size_t, std::size_t)>* job;
    std::size_t n;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      start_.wait(lock, [&] { return stopping_ || generation_ != seen; });
      if (stopping_) return;
      seen = generation_;
      if (!job_) continue;  // that job is over already
      job = job_;
      n = job_size_;
      ++active_;
    }
    take_chunks(*job, n);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      --active_;
    }
    done_.notify_one();
  }
}

}  // namespace p2pmesh::sim
