// The observer report: valid JSON that says what the peer sees.

#include "state_report.hpp"

#include <gtest/gtest.h>

#include <boost/json/src.hpp>

#include "mesh_node.hpp"

namespace p2pmesh {
namespace {

TEST(StateReport, PublishedPeriodicallyOnTheGroupsReportTopicAsValidJson) {
  MeshConfig config;
  config.group = "g";
  config.report_interval = 2 * kSecond;
  config.kind = "browser";
  MeshNode node(config);
  node.on_welcome(0, 50);
  node.on_topic_message(0, "g.50.offer", 7, R"({"type":"offer","sdp":"x"})");
  LinkId link = 0;
  for (const Action& a : node.take_actions()) {
    if (const auto* accept = std::get_if<AcceptLink>(&a)) link = accept->link;
  }
  ASSERT_NE(link, 0u);
  node.on_link_open(0, link);
  node.set_report_app_json(R"({"last_ping":{"responses":3}})");
  node.take_actions();

  std::vector<std::string> reports;
  for (TimeUs t = 0; t <= 4 * kSecond; t += 500 * kMillisecond) {
    node.on_tick(t);
    for (const Action& a : node.take_actions()) {
      const auto* publish = std::get_if<Publish>(&a);
      if (publish && publish->topics == std::vector<std::string>{"g.report"}) {
        reports.push_back(publish->body);
      }
    }
  }
  ASSERT_EQ(reports.size(), 3u) << "at 0, 2 and 4 s";
  const boost::json::object report = boost::json::parse(reports.back()).as_object();
  EXPECT_EQ(report.at("id").as_int64(), 50);
  EXPECT_EQ(report.at("group").as_string(), "g");
  EXPECT_EQ(report.at("kind").as_string(), "browser");
  EXPECT_FALSE(report.at("require_signatures").as_bool());
  EXPECT_EQ(report.at("members").as_array().size(), 1u);
  const auto& links = report.at("links").as_array();
  ASSERT_EQ(links.size(), 1u);
  EXPECT_EQ(links[0].as_object().at("peer").as_int64(), 7);
  EXPECT_EQ(links[0].as_object().at("state").as_string(), "open");
  EXPECT_EQ(report.at("view").as_array().size(), 1u);
  EXPECT_EQ(report.at("tree").as_array().size(), 1u);
  EXPECT_EQ(report.at("reached").as_int64(), 1);
  EXPECT_EQ(report.at("app").as_object().at("last_ping").as_object().at("responses").as_int64(), 3);
}

TEST(StateReport, NoReportsUnlessAsked) {
  MeshConfig config;
  config.group = "g";
  MeshNode node(config);
  node.on_welcome(0, 50);
  node.on_tick(10 * kSecond);
  for (const Action& a : node.take_actions()) {
    if (const auto* publish = std::get_if<Publish>(&a)) {
      EXPECT_NE(publish->topics.at(0), "g.report");
    }
  }
}

}  // namespace
}  // namespace p2pmesh
