#include "signature_checker.hpp"

#include <utility>

#include "ed25519_key.hpp"

namespace p2pmesh::native {

SignatureChecker::SignatureChecker(Answer answer) : answer_(std::move(answer)) {}

SignatureChecker::~SignatureChecker() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void SignatureChecker::check(Request request) {
  {
    const std::lock_guard lock(mutex_);
    queue_.push_back(std::move(request));
    // Started by the first check: a peer whose group does not sign has none.
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
  }
  wake_.notify_one();
}

void SignatureChecker::run() {
  std::deque<Request> batch;
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
    if (stopping_) return;
    batch.swap(queue_);
    lock.unlock();
    std::vector<Verdict> verdicts;
    verdicts.reserve(batch.size());
    for (const Request& request : batch) {
      verdicts.push_back({request.epoch, request.ticket,
                          ed25519_verify(request.public_key, request.message, request.signature)});
    }
    batch.clear();
    answer_(std::move(verdicts));
    lock.lock();
  }
}

}  // namespace p2pmesh::native
