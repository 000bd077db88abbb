// MeshConfig::validate: the one set of rules every driver reports.

#include "mesh_config.hpp"

#include <gtest/gtest.h>

#include <cmath>

namespace p2pmesh {
namespace {

TEST(MeshConfig, TheDefaultsAreValid) { EXPECT_EQ(MeshConfig{}.validate(), ""); }

TEST(MeshConfig, EachBrokenRuleIsNamedInTheMessage) {
  const auto problem = [](auto change) {
    MeshConfig config;
    change(config);
    return config.validate();
  };
  EXPECT_NE(problem([](MeshConfig& c) { c.group = "a.b"; }).find("group \"a.b\""), std::string::npos);
  EXPECT_EQ(problem([](MeshConfig& c) { c.target_connections = 0; }),
            "target_connections must be at least 1");
  EXPECT_EQ(problem([](MeshConfig& c) { c.target_connections = 8; }),
            "max_connections (6) must be at least target_connections (8)");
  EXPECT_EQ(problem([](MeshConfig& c) { c.ping_interval = 0; }),
            "ping_interval must be at least 10 ms, not 0 ms");
  EXPECT_EQ(problem([](MeshConfig& c) { c.status_interval = 5 * kMillisecond; }),
            "status_interval must be at least 10 ms, not 5 ms");
  EXPECT_NE(problem([](MeshConfig& c) { c.member_timeout = -1; }), "");
  EXPECT_EQ(problem([](MeshConfig& c) { c.member_timeout = 0; }), "") << "0 = never";
  EXPECT_EQ(problem([](MeshConfig& c) { c.report_interval = 50 * kMillisecond; }),
            "report_interval must be 0 (off) or at least 100 ms, not 50 ms");
  EXPECT_EQ(problem([](MeshConfig& c) { c.tree.alpha = 1.5; }), "tree.alpha must be in [0, 1]");
  EXPECT_EQ(problem([](MeshConfig& c) { c.tree.alpha = std::nan(""); }),
            "tree.alpha must be in [0, 1]");
  EXPECT_EQ(problem([](MeshConfig& c) { c.tree.max_depth = 0; }),
            "tree.max_depth must be at least 1 hop");
  EXPECT_EQ(problem([](MeshConfig& c) { c.max_packet_bytes = 100; }),
            "max_packet_bytes must be at least 1024");
  EXPECT_EQ(problem([](MeshConfig& c) { c.pull_interval = 0; }),
            "pull_interval must be at least 10 ms, not 0 ms");
  EXPECT_EQ(problem([](MeshConfig& c) { c.pull_delay = -1; }),
            "pull_delay and history_age must not be negative");
  EXPECT_EQ(problem([](MeshConfig& c) { c.max_pull_interval = c.pull_interval - 1; }),
            "max_pull_interval must be at least pull_interval");
  EXPECT_EQ(problem([](MeshConfig& c) { c.history_age = 0; }), "") << "0 = keep nothing";
}

}  // namespace
}  // namespace p2pmesh
