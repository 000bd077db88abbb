// GET /groups/<group>: the members of a group for observers, with the `sub`
// claim of each member's token (meshd --auth-key); only for a token that
// allows the group. Real in-process meshd, real WebSocket clients.

#include <jwt.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <ctime>
#include <memory>
#include <string>

#include "support.hpp"

namespace meshd {
namespace {

const std::string kSecret = "0123456789abcdef0123456789abcdef-members-test";

// An HS256 token with `claims` (JSON) plus an exp 5 minutes from now.
std::string token(const std::string& claims) {
  const std::string json = R"({"exp":)" + std::to_string(::time(nullptr) + 300) + "," + claims + "}";
  return test::make_token(JWT_ALG_HS256, kSecret, json);
}

std::unique_ptr<test::WsClient> join_with(std::uint16_t port, const std::string& claims,
                                          const std::string& group) {
  auto client = std::make_unique<test::WsClient>();
  client->set_request("/service?token=" + token(claims));
  if (!client->connect(port) || !test::join(*client, group)) return nullptr;
  return client;
}

TEST(Members, ObserversWithATokenForTheGroupSeeItsMembersAndTheirSubjects) {
  test::TestPki files;  // a private temporary directory
  const std::string key_file = test::write_file(files.dir(), "members.key", kSecret + "\n");
  ASSERT_FALSE(key_file.empty());
  Config config = test::test_config();
  config.auth_key_file = key_file;
  test::TestServer server(config);

  auto alice = join_with(server.port(), R"("groups":["room*"],"sub":"alice \"A\" <a@example>")", "room1");
  auto anonymous = join_with(server.port(), R"("groups":["room1"])", "room1");
  auto carol = join_with(server.port(), R"("groups":["other"],"sub":"carol")", "other");
  ASSERT_TRUE(alice && anonymous && carol);

  const auto observer = token(R"("groups":["room1"],"sub":"dashboard")");
  const auto listed = test::http_get(server.port(), "/groups/room1?token=" + observer);
  EXPECT_EQ(listed.status, 200);
  const std::string first = alice->id() < anonymous->id()
      ? "{\"id\":" + std::to_string(alice->id()) + R"(,"sub":"alice \"A\" <a@example>"})"
      : "{\"id\":" + std::to_string(anonymous->id()) + "}";
  const std::string second = alice->id() < anonymous->id()
      ? "{\"id\":" + std::to_string(anonymous->id()) + "}"
      : "{\"id\":" + std::to_string(alice->id()) + R"(,"sub":"alice \"A\" <a@example>"})";
  EXPECT_EQ(listed.body, "[" + first + "," + second + "]\n");
  // Not for a token of another group, nor without one; no such group: empty.
  EXPECT_EQ(test::http_get(server.port(), "/groups/other?token=" + observer).status, 403);
  EXPECT_EQ(test::http_get(server.port(), "/groups/room1").status, 401);
  EXPECT_EQ(test::http_get(server.port(), "/groups/room2?token=" + token(R"("groups":["*"])")).body,
            "[]\n");
  EXPECT_EQ(test::http_get(server.port(), "/groups/bad.name?token=" + observer).status, 404);
  // A member that leaves is no longer listed.
  alice->close();
  std::string after;
  for (int i = 0; i < 50; ++i) {
    after = test::http_get(server.port(), "/groups/room1?token=" + observer).body;
    if (after.find("alice") == std::string::npos) break;
    usleep(20000);
  }
  EXPECT_EQ(after, "[{\"id\":" + std::to_string(anonymous->id()) + "}]\n");
}

TEST(Members, AnOpenMeshdListsMemberIds) {
  test::TestServer server;
  auto a = test::join(server.port(), "g");
  auto b = test::join(server.port(), "g");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(test::http_get(server.port(), "/groups/g").body,
            "[{\"id\":" + std::to_string(a->id()) + "},{\"id\":" + std::to_string(b->id()) + "}]\n");
}

}  // namespace
}  // namespace meshd
