// Native peers against meshd --auth-key (docs/security.md): the real meshd,
// tokens made with libjwt. A valid token joins and meshes; a refused one is
// reported with meshd's reason and not retried until set_token(); mesh-peer
// --token-file ends with exit code 3 on a refused token.
#include <jwt.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/json.hpp>

#include "p2pmesh/peer.hpp"
#include "processes.hpp"
#include "support.hpp"

namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using p2pmesh::Peer;
using p2pmesh::PeerCallbacks;
using p2pmesh::PeerConfig;
using p2pmesh::PeerError;
using p2pmesh::PeerSnapshot;
using p2pmesh::test::Child;
using p2pmesh::test::MeshdProcess;
using p2pmesh::test::wait_until;

const std::string kSecret = "native-token-test-secret-0123456789abcdef";

std::string hs256_token(const std::string& groups_json, long seconds_from_now) {
  jwt_t* jwt = nullptr;
  jwt_new(&jwt);
  const std::string claims = R"({"exp":)" + std::to_string(std::time(nullptr) + seconds_from_now) +
                             R"(,"groups":)" + groups_json + "}";
  jwt_add_grants_json(jwt, claims.c_str());
  jwt_set_alg(jwt, JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(kSecret.data()),
              static_cast<int>(kSecret.size()));
  char* text = jwt_encode_str(jwt);
  std::string token = text ? text : "";
  std::free(text);
  jwt_free(jwt);
  return token;
}

// Every stdout line of `child` joined (its JSON events).
std::string output_of(const Child& child) {
  std::string text;
  for (const auto& line : child.lines()) text += line + "\n";
  return text;
}

class TokenPeers : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("p2pmesh-token-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    std::ofstream(dir_ / "auth.key") << kSecret << "\n";
    meshd_ = std::make_unique<MeshdProcess>(
        std::vector<std::string>{"--auth-key", (dir_ / "auth.key").string()});
    ASSERT_NE(meshd_->port(), 0) << "meshd --auth-key did not start";
  }
  void TearDown() override {
    meshd_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }
  PeerConfig config(std::string token) {
    PeerConfig c;
    c.server_urls = {meshd_->url()};
    c.group = "room1";
    c.loopback_only = true;
    c.token = std::move(token);
    c.reconnect_initial = 50ms;
    return c;
  }
  fs::path dir_;
  std::unique_ptr<MeshdProcess> meshd_;
};

TEST_F(TokenPeers, ValidTokensMeshAndARefusedOneWaitsForANewToken) {
  Peer a(config(hs256_token(R"(["room*"])", 300)));
  Peer b(config(hs256_token(R"(["room1"])", 300)));
  a.start();
  b.start();
  ASSERT_TRUE(a.wait_joined(10s));
  ASSERT_TRUE(b.wait_joined(10s));
  ASSERT_TRUE(wait_until([&] { return !a.snapshot().links.empty(); }, 20s)) << "no link";

  std::mutex mutex;
  std::vector<PeerError> errors;
  std::vector<PeerSnapshot::State> states;
  PeerCallbacks callbacks;
  callbacks.on_error = [&](const PeerError& error) {
    std::lock_guard lock(mutex);
    errors.push_back(error);
  };
  callbacks.on_state = [&](PeerSnapshot::State state, p2pmesh::PeerId) {
    std::lock_guard lock(mutex);
    states.push_back(state);
  };
  Peer late(config(hs256_token(R"(["room1"])", -5)), callbacks);  // expired
  late.start();
  ASSERT_TRUE(wait_until([&] { return late.snapshot().state == PeerSnapshot::State::rejected; }, 10s));
  std::this_thread::sleep_for(1s);  // no retries meanwhile (reconnect_initial is 50 ms)
  {
    std::lock_guard lock(mutex);
    ASSERT_EQ(errors.size(), 1u) << "retried with the same token";
    EXPECT_EQ(errors[0].kind, PeerError::Kind::token_rejected);
    EXPECT_NE(errors[0].reason.find("token expired"), std::string::npos) << errors[0].reason;
  }
  EXPECT_NE(late.snapshot().last_error.find("HTTP 401"), std::string::npos);
  // A fresh token: it joins and meshes with the others.
  late.set_token(hs256_token(R"(["room1"])", 300));
  ASSERT_TRUE(late.wait_joined(10s));
  ASSERT_TRUE(wait_until([&] { return late.snapshot().members.size() == 2; }, 10s));
  EXPECT_TRUE(a.broadcast("hello with a token"));
  late.stop();
  b.stop();
  a.stop();
}

TEST_F(TokenPeers, MeshPeerTokenFileAndExitCode3OnRefusal) {
  std::ofstream(dir_ / "good.jwt") << hs256_token(R"(["room1"])", 300) << "\n";
  std::ofstream(dir_ / "other-group.jwt") << hs256_token(R"(["elsewhere"])", 300) << "\n";
  std::ofstream(dir_ / "bad.jwt") << "not.a.token\n";
  Child good({MESH_PEER_BINARY, "--url", meshd_->url(), "--group", "room1", "--loopback",
              "--token-file", (dir_ / "good.jwt").string()});
  ASSERT_TRUE(wait_until([&] { return output_of(good).find("\"welcome\"") != std::string::npos; }, 10s));
  Child refused({MESH_PEER_BINARY, "--url", meshd_->url(), "--group", "room1", "--loopback",
                 "--token-file", (dir_ / "bad.jwt").string()});
  const int status = refused.wait_exit(10s);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 3);
  const std::string output = output_of(refused);
  EXPECT_NE(output.find("\"rejected\""), std::string::npos) << output;
  EXPECT_NE(output.find("token invalid"), std::string::npos) << output;
}

}  // namespace
