#include "topics.hpp"

#include <gtest/gtest.h>

namespace p2pmesh {
namespace {

TEST(Topics, NamesFollowTheWireContract) {
  EXPECT_EQ(mesh_topic("room"), "room.mesh");
  EXPECT_EQ(peer_topic("room", 42, SignalKind::offer), "room.42.offer");
  EXPECT_EQ(peer_topic("room", 42, SignalKind::answer), "room.42.answer");
  EXPECT_EQ(peer_topic("room", 42, SignalKind::candidate), "room.42.candidate");
  EXPECT_EQ(peer_topic("room", 4294967295u, SignalKind::fallback), "room.4294967295.fallback");
}

TEST(Topics, ParsesOwnGroupsTopicsAndRejectsEverythingElse) {
  const auto mesh = parse_topic("room", "room.mesh");
  ASSERT_TRUE(mesh);
  EXPECT_TRUE(mesh->is_mesh);
  const auto offer = parse_topic("room", "room.42.offer");
  ASSERT_TRUE(offer);
  EXPECT_FALSE(offer->is_mesh);
  EXPECT_EQ(offer->peer, 42u);
  EXPECT_EQ(offer->kind, SignalKind::offer);
  for (const char* bad : {"other.mesh", "roomx.mesh", "room.", "room", "room.42", "room.42.",
                          "room.42.ping", "room.0.offer", "room.-1.offer", "room.4294967296.offer",
                          "room.42x.offer", "room..offer", "room.mesh.x", ""}) {
    EXPECT_FALSE(parse_topic("room", bad)) << bad;
  }
}

}  // namespace
}  // namespace p2pmesh
