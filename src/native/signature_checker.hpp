#pragma once
// SignatureChecker: the Ed25519 checks of a peer's received broadcasts
// (the core's VerifySignature actions) on a thread of their own. A check
// costs libsodium 60-110 us here; on the loop thread it held up relaying and
// every link's I/O behind it, one check per delivery. The core already takes
// answers later and in any order (MeshNode::on_signature_checked; the packet
// was forwarded at once, only its delivery waits), as it does from the
// browser's asynchronous WebCrypto.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace p2pmesh::native {

class SignatureChecker {
 public:
  struct Request {
    std::uint64_t epoch;   // the driver's session, handed back: answers of an old one are dropped
    std::uint64_t ticket;  // the core's
    std::string public_key;
    std::string message;
    std::string signature;
  };
  struct Verdict {
    std::uint64_t epoch;
    std::uint64_t ticket;
    bool valid;
  };
  // Called on the checker's thread with the verdicts of all requests that
  // were waiting when it woke, in order (one post to the loop per batch,
  // not per check): it must hand them to the peer's loop, not act there.
  using Answer = std::function<void(std::vector<Verdict> verdicts)>;

  explicit SignatureChecker(Answer answer);
  SignatureChecker(const SignatureChecker&) = delete;
  SignatureChecker& operator=(const SignatureChecker&) = delete;
  ~SignatureChecker();  // checks what is queued no more; joins the thread

  void check(Request request);  // any thread

 private:
  void run();

  Answer answer_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<Request> queue_;  // bounded by the core (MeshConfig::max_pending_verifications)
  bool stopping_ = false;
  std::thread thread_;  // from the first check on
};

}  // namespace p2pmesh::native
