// WsClient against the real meshd on 127.0.0.1: once the connection is
// closed or aborted, nothing of it keeps the owner's io_context running (a
// native app that drops its peer gets its thread back at once).
#include <gtest/gtest.h>

#include <chrono>
#include <future>

#include "support.hpp"
#include "ws_client.hpp"

namespace p2pmesh::test {
namespace {

using namespace std::chrono_literals;

enum class Ending { abort, close };

// Opens a connection, ends it as asked once meshd's welcome came (a read is
// in flight then), and returns how long io_context::run() went on after that.
std::chrono::milliseconds run_after_ending(const std::string& url, Ending ending) {
  boost::asio::io_context io;
  std::shared_ptr<native::WsClient> client;
  Clock::time_point ended{};
  native::WsClient::Handlers handlers;
  handlers.frame = [&](std::string_view) {
    if (ended != Clock::time_point{}) return;
    ended = Clock::now();
    if (ending == Ending::abort) client->abort();
    else client->close(1s, nullptr);
  };
  client = std::make_shared<native::WsClient>(io, *native::parse_ws_url(url), std::move(handlers));
  client->start();
  // A bound on the whole run: a stuck connection fails the test, not the suite.
  auto finished = std::async(std::launch::async, [&io] { io.run(); });
  if (finished.wait_for(30s) != std::future_status::ready) {
    io.stop();
    ADD_FAILURE() << "io_context::run() still busy after 30 s";
  }
  finished.get();
  EXPECT_NE(ended, Clock::time_point{}) << "no welcome came";
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - ended);
}

TEST(WsClientTest, AbortLeavesNothingRunningOnTheLoop) {
  MeshdInProcess meshd;
  // Beast's keep-alive timer (20 s idle timeout) used to hold the loop for
  // 10-20 s after the socket was gone.
  EXPECT_LT(run_after_ending(meshd.url(), Ending::abort), 2s);
}

TEST(WsClientTest, CloseLeavesNothingRunningOnTheLoop) {
  MeshdInProcess meshd;
  EXPECT_LT(run_after_ending(meshd.url(), Ending::close), 2s);
}

}  // namespace
}  // namespace p2pmesh::test
