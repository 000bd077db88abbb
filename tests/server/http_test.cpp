// meshd's plain HTTP: /healthz, /metrics (counters move), static files.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "support.hpp"

namespace meshd::test {
namespace {

namespace fs = std::filesystem;

TEST(Http, Healthz) {
  TestServer server;
  const auto result = http_get(server.port(), "/healthz");
  EXPECT_EQ(result.status, 200);
  EXPECT_EQ(result.body, "ok\n");
}

TEST(Http, ServiceWithoutUpgradeIs426) {
  TestServer server;
  EXPECT_EQ(http_get(server.port(), "/service").status, 426);
}

TEST(Http, MetricsCountersMove) {
  Config config = test_config();
  config.access_rules = false;
  TestServer server(config);
  const auto port = server.port();
  const auto text = http_get(port, "/metrics");
  EXPECT_EQ(text.status, 200);
  EXPECT_NE(text.body.find("# TYPE meshd_messages_in_total counter"), std::string::npos);
  EXPECT_NE(text.body.find("meshd_fanout_latency_seconds_bucket{le=\"+Inf\"}"), std::string::npos);
  EXPECT_EQ(metric(port, "meshd_connections"), 0);
  const double in_before = metric(port, "meshd_messages_in_total");
  const double out_before = metric(port, "meshd_messages_out_total");
  {
    WsClient a, b;
    ASSERT_TRUE(a.connect(port));
    ASSERT_TRUE(b.connect(port));
    EXPECT_EQ(metric(port, "meshd_connections"), 2);
    a.subscribe("t");
    b.subscribe("t");
    ASSERT_TRUE(a.barrier());
    ASSERT_TRUE(b.barrier());
    a.publish({"t"}, "m");
    ASSERT_TRUE(a.next());
    ASSERT_TRUE(b.next());
    EXPECT_EQ(metric(port, "meshd_messages_in_total"), in_before + 3);
    EXPECT_EQ(metric(port, "meshd_messages_out_total"), out_before + 4);  // 2 welcomes + 2
    EXPECT_GT(metric(port, "meshd_bytes_out_total"), 0);
    EXPECT_EQ(metric(port, "meshd_topics"), 1);
    EXPECT_EQ(metric(port, "meshd_publishes_total"), 1);
    EXPECT_GE(metric(port, "meshd_fanout_latency_seconds_count"), 2);
    a.close();
    b.close();
  }
  EXPECT_EQ(metric(port, "meshd_connections_total"), 2);
  EXPECT_TRUE(wait_metric(port, "meshd_topics", 0));
  EXPECT_TRUE(wait_metric(port, "meshd_connections", 0));
}

class StaticFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("meshd-web-" + std::to_string(::getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_ / "www" / "sub");
    std::ofstream(root_ / "www" / "index.html") << "<h1>mesh</h1>";
    std::ofstream(root_ / "www" / "sub" / "app.js") << "export {};";
    std::ofstream(root_ / "secret.txt") << "secret";
    fs::create_symlink(root_ / "secret.txt", root_ / "www" / "link.txt");
  }
  void TearDown() override { fs::remove_all(root_); }
  fs::path root_;
};

TEST_F(StaticFiles, ServesTheWebRootAndRefusesTraversal) {
  Config config = test_config();
  config.web_root = (root_ / "www").string();
  TestServer server(config);
  const auto port = server.port();
  auto index = http_get(port, "/");
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.body, "<h1>mesh</h1>");
  EXPECT_EQ(http_get(port, "/index.html").body, "<h1>mesh</h1>");
  EXPECT_EQ(http_get(port, "/sub/app.js?v=1").body, "export {};");
  EXPECT_EQ(http_get(port, "/missing.html").status, 404);
  for (const char* target : {"/../secret.txt", "/sub/../../secret.txt", "/%2e%2e/secret.txt",
                             "/sub/%2E%2E/%2e%2e/secret.txt", "/link.txt"}) {
    const auto result = http_get(port, target);
    EXPECT_TRUE(result.status == 403 || result.status == 404) << target << " " << result.status;
    EXPECT_EQ(result.body.find("secret"), std::string::npos) << target;
  }
  EXPECT_EQ(http_get(port, "/bad%zz").status, 400);
}

TEST(Http, NoWebRootMeansNotFound) {
  TestServer server;  // test_config(): no static files
  EXPECT_EQ(http_get(server.port(), "/index.html").status, 404);
}

}  // namespace
}  // namespace meshd::test
