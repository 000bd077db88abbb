// Graceful shutdown: in-process stop() and the real meshd program on
// SIGTERM / SIGINT (close frames 1001, exit code 0), plus --help and bad
// arguments.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>
#include <thread>

#include "support.hpp"

#ifndef MESHD_BINARY
#error "MESHD_BINARY must name the meshd program"
#endif

namespace meshd::test {
namespace {

TEST(Shutdown, StopSendsCloseFramesAndReturns) {
  TestServer server;
  auto a = join(server.port(), "g");
  auto b = join(server.port(), "g");
  ASSERT_TRUE(a && b);
  server.request_stop();
  for (WsClient* client : {a.get(), b.get()}) {
    const auto info = client->wait_closed();  // the clients answer the close
    EXPECT_TRUE(info.closed);
    EXPECT_EQ(info.code, 1001);
    EXPECT_EQ(info.reason, "server shutdown");
  }
  EXPECT_TRUE(server.stop());
}

TEST(Shutdown, StopFinishesEvenWhenAClientNeverAnswers) {
  Config config = test_config();
  config.shutdown_timeout = std::chrono::milliseconds(300);
  config.handshake_timeout = std::chrono::milliseconds(300);
  TestServer server(config);
  WsClient silent;  // never runs its loop again: no close reply
  ASSERT_TRUE(silent.connect(server.port()));
  EXPECT_TRUE(server.stop());
}

// The meshd program of this build.
class Meshd : public MeshdProgram {
 public:
  explicit Meshd(std::vector<std::string> args) : MeshdProgram(MESHD_BINARY, std::move(args)) {}
};

void graceful_exit_on(int signal_number, std::vector<std::string> extra_args = {}) {
  std::vector<std::string> args{"--host", "127.0.0.1", "--port", "0", "--log-level", "warn"};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  Meshd meshd(args);
  const auto port = port_from(meshd.first_line());
  ASSERT_NE(port, 0);
  auto a = join(port, "g");
  ASSERT_TRUE(a);
  WsClient b, c;
  ASSERT_TRUE(b.connect(port));
  ASSERT_TRUE(c.connect(port));
  meshd.signal(signal_number);
  for (WsClient* client : {a.get(), &b, &c}) {
    const auto info = client->wait_closed();
    EXPECT_TRUE(info.closed);
    EXPECT_EQ(info.code, 1001);
    EXPECT_EQ(info.reason, "server shutdown");
  }
  EXPECT_EQ(meshd.wait_exit(), 0);
}

TEST(Program, SigtermShutsDownGracefully) { graceful_exit_on(SIGTERM); }
TEST(Program, SigintShutsDownGracefully) { graceful_exit_on(SIGINT); }
TEST(Program, ThreeThreadsShutDownGracefully) { graceful_exit_on(SIGTERM, {"--threads", "3"}); }

// `systemctl reload` sends SIGHUP: without TLS there is nothing to reload,
// and meshd keeps serving (its default action would end it).
TEST(Program, SighupWithoutTlsKeepsServing) {
  Meshd meshd({"--host", "127.0.0.1", "--port", "0", "--log-level", "warn"});
  const auto port = port_from(meshd.first_line());
  ASSERT_NE(port, 0);
  auto a = join(port, "g");
  ASSERT_TRUE(a);
  meshd.signal(SIGHUP);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  EXPECT_EQ(http_get(port, "/healthz").status, 200);
  WsClient b;
  EXPECT_TRUE(b.connect(port)) << "new connections after SIGHUP";
  meshd.signal(SIGTERM);
  const auto info = a->wait_closed();
  EXPECT_EQ(info.code, 1001) << "the connection from before SIGHUP lived until the shutdown";
  EXPECT_EQ(meshd.wait_exit(), 0);
}

TEST(Program, PortFileAndEnvironment) {
  const std::string port_file =
      testing::TempDir() + "meshd-port-" + std::to_string(getpid());
  setenv("MESHD_PORT_FILE", port_file.c_str(), 1);
  Meshd meshd({"--host", "127.0.0.1", "--port", "0"});
  unsetenv("MESHD_PORT_FILE");
  const auto port = port_from(meshd.first_line());
  ASSERT_NE(port, 0);
  FILE* file = fopen(port_file.c_str(), "r");
  ASSERT_NE(file, nullptr);
  int written = 0;
  EXPECT_EQ(fscanf(file, "%d", &written), 1);
  fclose(file);
  std::remove(port_file.c_str());
  EXPECT_EQ(written, port);
  EXPECT_EQ(http_get(port, "/healthz").status, 200);
  meshd.signal(SIGTERM);
  EXPECT_EQ(meshd.wait_exit(), 0);
}

TEST(Program, HelpAndBadArguments) {
  {
    Meshd meshd({"--help"});
    const auto text = meshd.all_output();
    EXPECT_NE(text.find("--port"), std::string::npos);
    EXPECT_NE(text.find("--open"), std::string::npos);
    EXPECT_NE(text.find("--threads"), std::string::npos);
    EXPECT_EQ(meshd.wait_exit(), 0);
  }
  {
    Meshd meshd({"--port", "not-a-port"});
    EXPECT_NE(meshd.wait_exit(), 0);
  }
  {
    Meshd meshd({"--threads", "0"});
    EXPECT_NE(meshd.wait_exit(), 0);
  }
  {
    Meshd meshd({"--no-such-flag"});
    EXPECT_NE(meshd.wait_exit(), 0);
  }
}

}  // namespace
}  // namespace meshd::test
