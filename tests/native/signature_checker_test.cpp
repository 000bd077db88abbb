// SignatureChecker: the native driver's Ed25519 checks off the loop thread.
// A peer in a group that does not sign must not carry the thread; answers
// come in batches, in order, with the right verdicts.

#include "signature_checker.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <future>
#include <mutex>
#include <vector>

#include "ed25519_key.hpp"
#include "support.hpp"

namespace p2pmesh::native {
namespace {

std::size_t threads_of_this_process() {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/task"))
    ++count;
  return count;
}

TEST(SignatureChecker, StartsItsThreadOnTheFirstCheckAndAnswersInOrder) {
  const Ed25519Key key;
  std::mutex mutex;
  std::vector<SignatureChecker::Verdict> answers;
  std::promise<void> all_answered;
  const std::size_t before = threads_of_this_process();
  {
    SignatureChecker checker([&](std::vector<SignatureChecker::Verdict> verdicts) {
      const std::lock_guard lock(mutex);
      answers.insert(answers.end(), verdicts.begin(), verdicts.end());
      if (answers.size() == 3) all_answered.set_value();
    });
    EXPECT_EQ(threads_of_this_process(), before) << "a thread before any check";

    checker.check({1, 10, key.public_key(), "one", key.sign("one")});
    checker.check({1, 11, key.public_key(), "two", key.sign("not two")});
    checker.check({1, 12, key.public_key(), "three", key.sign("three")});
    ASSERT_EQ(all_answered.get_future().wait_for(std::chrono::seconds(10)),
              std::future_status::ready);
    EXPECT_EQ(threads_of_this_process(), before + 1);
  }
  // After join() the kernel may still list the ended thread for a moment (the
  // joiner is woken before the task is reaped): give it up to 2 s to go.
  EXPECT_TRUE(test::wait_until([&] { return threads_of_this_process() == before; },
                               std::chrono::seconds(2)))
      << "the thread outlives its checker";
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_EQ(answers[0].ticket, 10u);
  EXPECT_TRUE(answers[0].valid);
  EXPECT_EQ(answers[1].ticket, 11u);
  EXPECT_FALSE(answers[1].valid);
  EXPECT_EQ(answers[2].ticket, 12u);
  EXPECT_TRUE(answers[2].valid);
}

TEST(SignatureChecker, WithoutAnyCheckItEndsWithoutAThread) {
  const std::size_t before = threads_of_this_process();
  { SignatureChecker checker([](std::vector<SignatureChecker::Verdict>) {}); }
  EXPECT_EQ(threads_of_this_process(), before);
}

}  // namespace
}  // namespace p2pmesh::native
