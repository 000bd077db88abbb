// One MeshNode driven by hand: what it asks the driver to do for each input.

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "candidate_envelope.hpp"
#include "mesh_node.hpp"
#include "reference_like.hpp"
#include "routing.hpp"
#include "server_protocol.hpp"
#include "state_report.hpp"
#include "topics.hpp"

namespace p2pmesh {
namespace {

template <class T>
std::vector<T> only(const std::vector<Action>& actions) {
  std::vector<T> out;
  for (const Action& action : actions) {
    if (const T* a = std::get_if<T>(&action)) out.push_back(*a);
  }
  return out;
}

wire::MeshUpdate status_of(PeerId source, std::uint32_t id, std::vector<PeerId> links) {
  wire::MeshUpdate update;
  update.source = source;
  update.kind = wire::MeshUpdate::Kind::status;
  update.status.id = id;
  update.status.connected_to = std::move(links);
  return update;
}

// A status of a peer of our protocol (version 1).
wire::MeshUpdate ours_status(PeerId source, std::uint32_t id, std::vector<PeerId> links) {
  wire::MeshUpdate update = status_of(source, id, std::move(links));
  update.status.version = 1;
  return update;
}

class MeshNodeTest : public ::testing::Test {
 protected:
  static constexpr PeerId kSelf = 50;

  explicit MeshNodeTest(MeshConfig config = make_config()) : node_(std::move(config)) {}

  static MeshConfig make_config() {
    MeshConfig config;
    config.group = "g";
    return config;
  }

  // The welcome, then (as meshd does) the group's snapshot, here empty, and
  // the echo of the status the node published: it may dial from then on.
  std::vector<Action> welcome() {
    node_.on_welcome(now_, kSelf);
    std::vector<Action> actions = node_.take_actions();
    hear(status_of(kSelf, 1, {}));
    return actions;
  }
  std::vector<Action> hear(const wire::MeshUpdate& update, PeerId sender = kNoPeer) {
    node_.on_topic_message(now_, "g.mesh", sender ? sender : update.source, wire::encode(update));
    return node_.take_actions();
  }
  std::vector<Action> offer_from(PeerId peer) {
    node_.on_topic_message(now_, peer_topic("g", kSelf, SignalKind::offer), peer,
                           R"({"type":"offer","sdp":"v=0"})");
    return node_.take_actions();
  }
  // Brings up an accepted link with `peer`; returns its id.
  LinkId accept_and_open(PeerId peer) {
    const auto accepted = only<AcceptLink>(offer_from(peer));
    EXPECT_EQ(accepted.size(), 1u);
    node_.on_link_open(now_, accepted.at(0).link);
    node_.take_actions();
    return accepted.at(0).link;
  }
  // A link with a peer of ours (version 1: it answers keep-alive pings).
  LinkId open_link_with_our_peer(PeerId peer) {
    wire::MeshUpdate status = status_of(peer, 1, {});
    status.status.version = 1;
    hear(status);
    return accept_and_open(peer);
  }

  TimeUs now_ = 1 * kSecond;
  MeshNode node_;
};

TEST_F(MeshNodeTest, WelcomeSubscribesToOwnTopicsAndAnnouncesStatus) {
  const auto actions = welcome();
  std::vector<std::string> topics;
  for (const auto& s : only<Subscribe>(actions)) topics.push_back(s.topic);
  EXPECT_EQ(topics, (std::vector<std::string>{"g.mesh", "g.50.offer", "g.50.answer",
                                              "g.50.candidate", "g.50.fallback"}));
  const auto publishes = only<Publish>(actions);
  ASSERT_EQ(publishes.size(), 1u);
  EXPECT_EQ(publishes[0].topics, std::vector<std::string>{"g.mesh"});
  wire::MeshUpdate update;
  ASSERT_EQ(wire::decode(publishes[0].body, update), wire::DecodeError::none);
  EXPECT_EQ(update.source, kSelf);
  EXPECT_EQ(update.kind, wire::MeshUpdate::Kind::status);
  EXPECT_EQ(update.status.id, 1u);
  EXPECT_EQ(update.status.version, kProtocolVersion);
  EXPECT_FALSE(only<WakeAt>(actions).empty());
}

TEST_F(MeshNodeTest, TheWelcomesIceServersGoToTheDriverBeforeAnyLink) {
  // A welcome without ICE servers (meshd without --stun/--turn, the
  // reference's) asks nothing of the driver.
  EXPECT_TRUE(only<UseIceServers>(welcome()).empty());

  MeshNode node(make_config());
  const IceServer turn{{"turn:192.0.2.1:3478?transport=udp"}, "1700000000:50", "c2VjcmV0"};
  wire::ServerMessage message;
  message.kind = wire::ServerMessage::Kind::welcome;
  message.welcome_id = kSelf;
  message.ice_servers = {IceServer{"stun:192.0.2.1:3478"}, turn};
  ASSERT_TRUE(node.on_server_frame(now_, wire::encode(message)));
  const auto actions = node.take_actions();
  const auto use = only<UseIceServers>(actions);
  ASSERT_EQ(use.size(), 1u);
  EXPECT_EQ(use[0].servers, message.ice_servers);
  EXPECT_TRUE(std::holds_alternative<UseIceServers>(actions.front()))
      << "before anything the driver does with links";
}

TEST_F(MeshNodeTest, ALinksPathAndRelayFailuresReachTheReport) {
  welcome();
  const LinkId link = accept_and_open(7);
  EXPECT_EQ(node_.links().find(link)->candidate_type, CandidateType::unknown);
  node_.on_link_candidate_type(now_, link, CandidateType::relay);
  EXPECT_EQ(node_.links().find(link)->candidate_type, CandidateType::relay);
  node_.on_relay_allocation_failed(now_);
  node_.on_relay_allocation_failed(now_);
  EXPECT_EQ(node_.counters().relay_allocation_failures, 2u);
  const std::string report = state_report_json(node_, "");
  EXPECT_NE(report.find("\"candidate\":\"relay\""), std::string::npos) << report;
  EXPECT_NE(report.find("\"relay_allocation_failures\":2"), std::string::npos) << report;
  node_.on_link_candidate_type(now_, 12345, CandidateType::host);  // no such link: ignored
}

TEST_F(MeshNodeTest, DialsTargetManyDistinctPeersAtOnceWhenItLearnsTheGroup) {
  welcome();
  std::vector<PeerId> dialled;
  for (PeerId p = 1; p <= 10; ++p) {
    for (const auto& open : only<OpenLink>(hear(status_of(p, 1, {})))) dialled.push_back(open.peer);
  }
  // Once joined, the first peers it hears of are dialled at once, without
  // waiting a round.
  ASSERT_EQ(dialled.size(), 4u);
  std::sort(dialled.begin(), dialled.end());
  EXPECT_EQ(std::unique(dialled.begin(), dialled.end()), dialled.end()) << "a peer picked twice";
}

// Sorted peers a newcomer dials after hearing a snapshot of members 1..40.
std::vector<PeerId> first_dials(std::uint64_t seed, bool echo) {
  MeshConfig config;
  config.group = "g";
  config.seed = seed;
  MeshNode node(config);
  const PeerId self = 50;
  TimeUs now = 1 * kSecond;
  node.on_welcome(now, self);
  node.take_actions();
  const auto hear = [&](const wire::MeshUpdate& update) {
    node.on_topic_message(now, "g.mesh", update.source, wire::encode(update));
    return only<OpenLink>(node.take_actions());
  };
  for (PeerId p = 1; p <= 40; ++p) EXPECT_TRUE(hear(status_of(p, 1, {})).empty()) << p;
  std::vector<OpenLink> opens;
  if (echo) {
    opens = hear(status_of(self, 1, {}));
  } else {
    now += config.snapshot_wait - 1;
    node.on_tick(now);
    EXPECT_TRUE(only<OpenLink>(node.take_actions()).empty());
    now += 1;
    node.on_tick(now);
    opens = only<OpenLink>(node.take_actions());
  }
  std::vector<PeerId> peers;
  for (const auto& open : opens) peers.push_back(open.peer);
  std::sort(peers.begin(), peers.end());
  return peers;
}

TEST(MeshNodeJoin, DialsOnlyOnceTheSnapshotIsInThenUniformlyOverTheGroup) {
  // meshd sends the snapshot oldest member first. Dialling as it arrived
  // linked every newcomer to members 1-4; picks must spread over all 40.
  std::set<PeerId> picked;
  for (std::uint64_t seed = 1; seed <= 20; ++seed) {
    const std::vector<PeerId> dials = first_dials(seed, true);
    ASSERT_EQ(dials.size(), 4u);
    EXPECT_EQ(std::adjacent_find(dials.begin(), dials.end()), dials.end());
    picked.insert(dials.begin(), dials.end());
  }
  EXPECT_GT(picked.size(), 30u);
  EXPECT_GT(*picked.rbegin(), 30u);
}

TEST(MeshNodeJoin, WithoutAnEchoDialsAfterTheSnapshotWait) {
  EXPECT_EQ(first_dials(1, false).size(), 4u);
}

// The link changes a node announced on the mesh topic in `actions`.
std::vector<wire::MeshUpdate> link_changes(const std::vector<Action>& actions) {
  std::vector<wire::MeshUpdate> changes;
  for (const auto& publish : only<Publish>(actions)) {
    wire::MeshUpdate update;
    if (publish.topics != std::vector<std::string>{"g.mesh"} ||
        wire::decode(publish.body, update) != wire::DecodeError::none ||
        update.kind == wire::MeshUpdate::Kind::status) {
      continue;
    }
    changes.push_back(update);
  }
  return changes;
}

TEST_F(MeshNodeTest, OnlyTheDiallerAnnouncesANewLinkBothAnnounceItsEnd) {
  welcome();
  const auto accepted = only<AcceptLink>(offer_from(7));
  ASSERT_EQ(accepted.size(), 1u);
  hear(ours_status(7, 1, {}));
  node_.on_link_open(now_, accepted[0].link);
  EXPECT_TRUE(link_changes(node_.take_actions()).empty()) << "7 dialled: 7 announces";

  const auto opens = only<OpenLink>(hear(status_of(9, 1, {})));
  ASSERT_EQ(opens.size(), 1u);
  node_.on_link_open(now_, opens[0].link);
  auto changes = link_changes(node_.take_actions());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, wire::MeshUpdate::Kind::connected_to);
  EXPECT_EQ(changes[0].source, kSelf);
  EXPECT_EQ(changes[0].peer, 9u);

  // Our status lists the accepted link too, so its end is announced.
  node_.on_link_closed(now_, accepted[0].link);
  changes = link_changes(node_.take_actions());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, wire::MeshUpdate::Kind::disconnected_from);
  EXPECT_EQ(changes[0].peer, 7u);
}

// The statuses a node published on the mesh topic in `actions`.
std::vector<wire::MeshStatus> statuses_published(const std::vector<Action>& actions) {
  std::vector<wire::MeshStatus> out;
  for (const auto& publish : only<Publish>(actions)) {
    wire::MeshUpdate update;
    if (publish.topics == std::vector<std::string>{"g.mesh"} &&
        wire::decode(publish.body, update) == wire::DecodeError::none &&
        update.kind == wire::MeshUpdate::Kind::status) {
      out.push_back(update.status);
    }
  }
  return out;
}

// Answers the keep-alive ping among `actions` sent on `link`, `rtt` later.
void answer_ping(MeshNode& node, const std::vector<Action>& actions, LinkId link, TimeUs& now,
                 TimeUs rtt) {
  for (const SendOnLink& send : only<SendOnLink>(actions)) {
    wire::Packet ping;
    if (send.link != link || wire::decode(send.bytes, ping) != wire::DecodeError::none ||
        ping.ping == 0) {
      continue;
    }
    now += rtt;
    wire::Packet pong;
    pong.pong = ping.ping;
    node.on_link_data(now, link, wire::encode(pong));
    return;
  }
  ADD_FAILURE() << "no ping on link " << link;
}

TEST_F(MeshNodeTest, LinksWeDialAreAnnouncedTogetherInOneStatusWithTheirFirstRtts) {
  // A connected_to each, then a status for their RTTs, was 3 updates to
  // every member for these 2 links; now 1.
  welcome();
  std::vector<OpenLink> opens = only<OpenLink>(hear(ours_status(7, 1, {})));
  const auto more = only<OpenLink>(hear(ours_status(8, 1, {})));
  opens.insert(opens.end(), more.begin(), more.end());
  ASSERT_EQ(opens.size(), 2u);
  node_.on_link_open(now_, opens[0].link);
  node_.on_tick(now_);  // the wake it asked for: the first ping
  auto actions = node_.take_actions();
  EXPECT_TRUE(link_changes(actions).empty());
  EXPECT_TRUE(statuses_published(actions).empty()) << "8's link is still connecting";
  answer_ping(node_, actions, opens[0].link, now_, 3 * kMillisecond);
  EXPECT_TRUE(statuses_published(node_.take_actions()).empty());
  now_ += 10 * kMillisecond;
  node_.on_link_open(now_, opens[1].link);
  node_.on_tick(now_);
  actions = node_.take_actions();
  EXPECT_TRUE(statuses_published(actions).empty()) << "8's RTT is not in yet";
  answer_ping(node_, actions, opens[1].link, now_, 5 * kMillisecond);
  actions = node_.take_actions();
  EXPECT_TRUE(link_changes(actions).empty());
  const auto statuses = statuses_published(actions);
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_EQ(statuses[0].connected_to, (std::vector<PeerId>{7, 8}));
  EXPECT_EQ(statuses[0].rtt_us, (std::vector<std::uint32_t>{3000, 5000}));
}

TEST_F(MeshNodeTest, ADialledLinkWhoseRttNeverComesIsAnnouncedWhenTheWaitEnds) {
  welcome();
  const auto opens = only<OpenLink>(hear(ours_status(7, 1, {})));
  ASSERT_EQ(opens.size(), 1u);
  const TimeUs opened_at = now_;
  node_.on_link_open(now_, opens[0].link);
  const auto wakes = only<WakeAt>(node_.take_actions());
  ASSERT_FALSE(wakes.empty());
  EXPECT_LE(wakes.back().at, opened_at + node_.config().new_link_wait);
  now_ = opened_at + node_.config().new_link_wait - kMillisecond;
  node_.on_tick(now_);
  EXPECT_TRUE(statuses_published(node_.take_actions()).empty());
  now_ = opened_at + node_.config().new_link_wait;
  node_.on_tick(now_);
  const auto statuses = statuses_published(node_.take_actions());
  ASSERT_EQ(statuses.size(), 1u);
  EXPECT_EQ(statuses[0].connected_to, std::vector<PeerId>{7});
}

TEST_F(MeshNodeTest, ADialledLinkThatClosesBeforeItsStatusIsNeverAnnounced) {
  welcome();
  const auto opens = only<OpenLink>(hear(ours_status(7, 1, {})));
  ASSERT_EQ(opens.size(), 1u);
  node_.on_link_open(now_, opens[0].link);
  node_.take_actions();
  now_ += 50 * kMillisecond;
  node_.on_link_closed(now_, opens[0].link);
  std::vector<Action> actions = node_.take_actions();
  for (int i = 0; i < 5; ++i) {
    now_ += kSecond;
    node_.on_tick(now_);
    const auto more = node_.take_actions();
    actions.insert(actions.end(), more.begin(), more.end());
  }
  EXPECT_TRUE(link_changes(actions).empty()) << "neither up nor down";
  for (const auto& status : statuses_published(actions)) EXPECT_TRUE(status.connected_to.empty());
}

TEST(MeshNodeNewLinks, WithoutTheWaitEachDialledLinkIsAnnouncedAtOnce) {
  MeshConfig config;
  config.group = "g";
  config.new_link_wait = 0;
  MeshNode node(config);
  TimeUs now = kSecond;
  node.on_welcome(now, 50);
  node.on_topic_message(now, "g.mesh", 50, wire::encode(status_of(50, 1, {})));
  node.on_topic_message(now, "g.mesh", 7, wire::encode(ours_status(7, 1, {})));
  const auto opens = only<OpenLink>(node.take_actions());
  ASSERT_EQ(opens.size(), 1u);
  node.on_link_open(now, opens[0].link);
  const auto changes = link_changes(node.take_actions());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, wire::MeshUpdate::Kind::connected_to);
  EXPECT_EQ(changes[0].peer, 7u);
}

TEST_F(MeshNodeTest, ALinkAReferencePeerDialledIsConfirmedByUs) {
  // Its claim alone does not put the link in any view (membership.hpp).
  welcome();
  const auto accepted = only<AcceptLink>(offer_from(7));
  ASSERT_EQ(accepted.size(), 1u);
  node_.on_link_open(now_, accepted[0].link);
  const auto changes = link_changes(node_.take_actions());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].kind, wire::MeshUpdate::Kind::connected_to);
  EXPECT_EQ(changes[0].peer, 7u);
}

TEST_F(MeshNodeTest, OfferIsAnsweredOnTheOfferersAnswerTopic) {
  welcome();
  const auto accepted = only<AcceptLink>(offer_from(7));
  ASSERT_EQ(accepted.size(), 1u);
  EXPECT_EQ(accepted[0].peer, 7u);
  EXPECT_EQ(accepted[0].offer_json, R"({"type":"offer","sdp":"v=0"})");
  node_.on_local_description(now_, accepted[0].link, R"({"type":"answer","sdp":"x"})");
  const auto publishes = only<Publish>(node_.take_actions());
  ASSERT_EQ(publishes.size(), 1u);
  EXPECT_EQ(publishes[0].topics, std::vector<std::string>{"g.7.answer"});
  EXPECT_EQ(publishes[0].body, R"({"type":"answer","sdp":"x"})");
}

TEST_F(MeshNodeTest, CandidatesCarryTheInitiatorAndReachTheRightLink) {
  welcome();
  const auto accepted = only<AcceptLink>(offer_from(7));
  ASSERT_EQ(accepted.size(), 1u);
  node_.on_local_candidate(now_, accepted[0].link, R"({"candidate":"candidate:1 1 udp"})");
  const auto publishes = only<Publish>(node_.take_actions());
  ASSERT_EQ(publishes.size(), 1u);
  EXPECT_EQ(publishes[0].topics, std::vector<std::string>{"g.7.candidate"});
  const auto envelope = unwrap_candidate(publishes[0].body);
  ASSERT_TRUE(envelope.has_value());
  EXPECT_EQ(envelope->initiator, 7u) << "7 made the offer";

  // 7's candidate for the link it initiated goes to that link.
  node_.on_topic_message(now_, "g.50.candidate", 7, wrap_candidate(R"({"candidate":"c"})", 7));
  const auto added = only<AddCandidate>(node_.take_actions());
  ASSERT_EQ(added.size(), 1u);
  EXPECT_EQ(added[0].link, accepted[0].link);
  EXPECT_EQ(added[0].candidate_json, R"({"candidate":"c"})");

  // One for a link that does not exist is dropped and counted.
  node_.on_topic_message(now_, "g.50.candidate", 7, wrap_candidate(R"({"candidate":"c"})", 50));
  EXPECT_TRUE(only<AddCandidate>(node_.take_actions()).empty());
  node_.on_topic_message(now_, "g.50.candidate", 7, "not json");
  EXPECT_EQ(node_.counters().bad_signals, 2u);
}

TEST_F(MeshNodeTest, AnswerGoesToThePendingLinkWeOffered) {
  welcome();
  const auto opens = only<OpenLink>(hear(status_of(9, 1, {})));
  ASSERT_EQ(opens.size(), 1u);
  node_.on_local_description(now_, opens[0].link, R"({"type":"offer","sdp":"o"})");
  EXPECT_EQ(only<Publish>(node_.take_actions()).at(0).topics,
            std::vector<std::string>{"g.9.offer"});
  node_.on_topic_message(now_, "g.50.answer", 9, R"({"type":"answer","sdp":"a"})");
  const auto answers = only<ApplyAnswer>(node_.take_actions());
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].link, opens[0].link);
  // An answer from a peer we never dialled is dropped.
  node_.on_topic_message(now_, "g.50.answer", 11, R"({"type":"answer","sdp":"a"})");
  EXPECT_TRUE(only<ApplyAnswer>(node_.take_actions()).empty());
  EXPECT_EQ(node_.counters().bad_signals, 1u);
}

TEST_F(MeshNodeTest, UnansweredOfferIsGivenUpAtTheConnectTimeoutAndNotRetriedAtOnce) {
  welcome();
  const auto opens = only<OpenLink>(hear(status_of(9, 1, {})));
  ASSERT_EQ(opens.size(), 1u);
  now_ += node_.config().link_connect_timeout - 1;
  node_.on_tick(now_);
  EXPECT_TRUE(only<CloseLink>(node_.take_actions()).empty());
  now_ += 1;
  node_.on_tick(now_);
  const auto actions = node_.take_actions();
  const auto closes = only<CloseLink>(actions);
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].link, opens[0].link);
  EXPECT_TRUE(only<OpenLink>(actions).empty()) << "redialled the peer that did not answer";
  EXPECT_EQ(node_.links().size(), 0u);
  EXPECT_EQ(node_.counters().links_timed_out, 1u);
  // Another peer is dialled instead.
  const auto next = only<OpenLink>(hear(status_of(12, 1, {})));
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0].peer, 12u);
}

TEST_F(MeshNodeTest, BothDiallingKeepsTheSmallerIdsOffer) {
  welcome();
  // We (50) dial 9 and 80.
  hear(status_of(9, 1, {}));
  hear(status_of(80, 1, {}));
  ASSERT_EQ(node_.links().size(), 2u);
  // 9 < 50: its offer wins; our pending offer to it is closed.
  const auto from9 = offer_from(9);
  EXPECT_EQ(only<AcceptLink>(from9).size(), 1u);
  ASSERT_EQ(only<CloseLink>(from9).size(), 1u);
  EXPECT_EQ(node_.links().find(9, true), nullptr);
  // 80 > 50: our offer wins, its offer is refused.
  const auto from80 = offer_from(80);
  EXPECT_TRUE(only<AcceptLink>(from80).empty());
  EXPECT_NE(node_.links().find(80, true), nullptr);
}

// One link at most (target 1, max 1): admitting a newcomer when full means
// shedding the one link.
class OneLinkNodeTest : public MeshNodeTest {
 protected:
  OneLinkNodeTest() : MeshNodeTest(one_link()) {}
  static MeshConfig one_link() {
    MeshConfig config = make_config();
    config.target_connections = 1;
    config.max_connections = 1;
    return config;
  }
  std::size_t linked_peers() const {
    std::set<PeerId> peers;
    for (const Link& link : node_.links().all()) peers.insert(link.peer);
    return peers.size();
  }
};

// Found by tests/fuzz/mesh_node_fuzz: with our link to 3 open and 3's own
// offer pending, shedding our link to admit 1 freed no slot (3 keeps the
// other one) and the node held links with two peers, over its maximum.
TEST_F(OneLinkNodeTest, AFullNodeNeverShedsALinkWhosePeerHoldsAnotherOne) {
  welcome();
  const auto opens = only<OpenLink>(hear(ours_status(3, 1, {})));
  ASSERT_EQ(opens.size(), 1u);
  node_.on_link_open(now_, opens[0].link);
  node_.take_actions();
  ASSERT_EQ(only<AcceptLink>(offer_from(3)).size(), 1u) << "3 < 50: its offer wins";
  EXPECT_TRUE(only<AcceptLink>(offer_from(1)).empty()) << "no room: 3 keeps a link either way";
  EXPECT_LE(linked_peers(), 1u);
  EXPECT_NE(node_.links().find(3, true), nullptr) << "our open link with 3 is kept";
}

TEST_F(MeshNodeTest, TwoOpenLinksWithOnePeerCollapseToTheSmallerIdsOne) {
  welcome();
  const auto opens = only<OpenLink>(hear(status_of(9, 1, {})));
  ASSERT_EQ(opens.size(), 1u);
  node_.on_link_open(now_, opens[0].link);
  node_.take_actions();
  // 9 dials us too (say it is a reference peer that did not see our link).
  const auto accepted = only<AcceptLink>(offer_from(9));
  ASSERT_EQ(accepted.size(), 1u);
  node_.on_link_open(now_, accepted[0].link);
  const auto actions = node_.take_actions();
  const auto closes = only<CloseLink>(actions);
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].link, opens[0].link) << "9 < 50: the link 9 initiated stays";
  EXPECT_EQ(node_.links().open_count(), 1u);
  EXPECT_TRUE(only<LinkDown>(actions).empty()) << "still linked with 9 throughout";
  EXPECT_TRUE(node_.membership().view().has_link(kSelf, 9));
}

TEST_F(MeshNodeTest, FullPeerAdmitsANewcomerByDroppingALinkButRefusesWellLinkedOfferers) {
  welcome();
  for (PeerId p = 1; p <= 6; ++p) accept_and_open(p);
  for (PeerId p = 1; p <= 6; ++p) hear(ours_status(p, 1, {}));
  ASSERT_EQ(node_.links().open_count(), 6u);
  // Peer 30 already has 4 links: refused, nothing dropped.
  for (PeerId p = 31; p <= 34; ++p) hear(status_of(p, 1, {}));
  hear(ours_status(30, 1, {31, 32, 33, 34}));
  EXPECT_TRUE(only<AcceptLink>(offer_from(30)).empty());
  EXPECT_EQ(node_.counters().offers_refused, 1u);
  // Peer 40 has none: admitted, one of ours dropped, we stay at six.
  hear(status_of(40, 1, {}));
  const auto actions = offer_from(40);
  EXPECT_EQ(only<AcceptLink>(actions).size(), 1u);
  EXPECT_EQ(only<CloseLink>(actions).size(), 1u);
  EXPECT_EQ(node_.links().size(), 6u);
  EXPECT_EQ(node_.counters().links_dropped_for_room, 1u);
}

TEST_F(MeshNodeTest, FullPeerNeverShedsALinkWithAReferencePeerToAdmitAnother) {
  // A reference peer keeps claiming (and using) a received link we close.
  welcome();
  for (PeerId p = 1; p <= 6; ++p) accept_and_open(p);
  hear(ours_status(6, 1, {}));  // 1-5 stay reference peers (version 0)
  hear(status_of(40, 1, {}));
  auto actions = offer_from(40);
  ASSERT_EQ(only<CloseLink>(actions).size(), 1u);
  EXPECT_EQ(node_.links().find(only<CloseLink>(actions)[0].link), nullptr);
  for (PeerId p = 1; p <= 5; ++p) EXPECT_TRUE(node_.links().has_any_with(p)) << p;
  EXPECT_FALSE(node_.links().has_any_with(6)) << "the link with our peer made room";
  // Only reference peers left besides the newcomer: the next one is refused.
  hear(status_of(41, 1, {}));
  actions = offer_from(41);
  EXPECT_TRUE(only<AcceptLink>(actions).empty());
  EXPECT_TRUE(only<CloseLink>(actions).empty());
}

TEST_F(MeshNodeTest, LinkChangesArePublishedAndClosedLinksLeaveTheView) {
  welcome();
  const LinkId link = accept_and_open(7);
  EXPECT_TRUE(node_.membership().view().has_link(kSelf, 7));
  node_.on_link_closed(now_, link);
  const auto actions = node_.take_actions();
  EXPECT_FALSE(node_.membership().view().has_link(kSelf, 7));
  bool told = false;
  for (const auto& p : only<Publish>(actions)) {
    wire::MeshUpdate update;
    ASSERT_EQ(wire::decode(p.body, update), wire::DecodeError::none);
    told |= update.kind == wire::MeshUpdate::Kind::disconnected_from && update.peer == 7;
  }
  EXPECT_TRUE(told);
  EXPECT_EQ(only<LinkDown>(actions).size(), 1u);
}

TEST_F(MeshNodeTest, ForgedStaleAndMalformedUpdatesAreCountedAndIgnored) {
  welcome();
  hear(ours_status(9, 5, {3}));
  EXPECT_TRUE(node_.membership().view().has_link(9, 3) == false) << "3 is not a member yet";
  hear(status_of(3, 1, {}));
  EXPECT_TRUE(node_.membership().view().has_link(9, 3));
  hear(status_of(9, 5, {}));  // same id: ignored
  EXPECT_TRUE(node_.membership().view().has_link(9, 3));
  EXPECT_EQ(node_.counters().stale_updates, 1u);
  hear(status_of(9, 6, {}), /*sender=*/3);  // 3 speaking for 9
  EXPECT_EQ(node_.counters().forged_updates, 1u);
  EXPECT_TRUE(node_.membership().view().has_link(9, 3));
  node_.on_topic_message(now_, "g.mesh", 9, "\xff\xff\xff");
  EXPECT_EQ(node_.counters().malformed_updates, 1u);
  node_.on_topic_message(now_, "other.mesh", 9, wire::encode(status_of(9, 7, {})));
  node_.on_topic_message(now_, "g.51.offer", 9, "{}");
  EXPECT_EQ(node_.counters().foreign_topics, 2u);
  hear(status_of(9, 6, {}));
  EXPECT_FALSE(node_.membership().view().has_link(9, 3));
}

TEST_F(MeshNodeTest, DepartedPeerIsForgottenAndItsLinkClosed) {
  welcome();
  accept_and_open(7);
  hear(status_of(7, 1, {kSelf, 8}));
  hear(status_of(8, 1, {7}));
  wire::MeshUpdate gone = status_of(7, 2, {});
  gone.left = true;
  const auto actions = hear(gone);
  EXPECT_EQ(only<CloseLink>(actions).size(), 1u);
  EXPECT_EQ(only<PeerLeft>(actions).size(), 1u);
  EXPECT_FALSE(node_.membership().is_member(7));
  EXPECT_FALSE(node_.membership().view().has_peer(7));
  EXPECT_FALSE(node_.links().has_any_with(7));
  EXPECT_TRUE(node_.membership().is_member(8));
}

TEST_F(MeshNodeTest, MalformedAndHostilePacketsAreDroppedAndCountedAndTheNodeKeepsWorking) {
  welcome();
  const LinkId link = accept_and_open(7);
  node_.on_link_data(now_, link, "\x12\xff");  // truncated edges field
  EXPECT_EQ(node_.counters().malformed_packets, 1u);

  wire::Packet loop;
  loop.source = 7;
  loop.edges = {{7, 50}, {50, 60}, {60, 50}};  // 50 twice as a target
  loop.payload = "x";
  node_.on_link_data(now_, link, wire::encode(loop));
  EXPECT_EQ(node_.counters().bad_routes, 1u);

  wire::Packet spoofed;  // 7 claims to relay for 99 but the route says 98 is our parent
  spoofed.source = 99;
  spoofed.edges = {{99, 98}, {98, 50}};
  spoofed.payload = "y";
  node_.on_link_data(now_, link, wire::encode(spoofed));
  EXPECT_EQ(node_.counters().misrouted_packets, 1u);
  EXPECT_TRUE(only<Deliver>(node_.take_actions()).empty());

  wire::Packet good;
  good.source = 7;
  good.edges = {{7, 50}};
  good.payload = "hello";
  good.seq = 1;
  node_.on_link_data(now_, link, wire::encode(good));
  node_.on_link_data(now_, link, wire::encode(good));  // again: duplicate
  const auto delivered = only<Deliver>(node_.take_actions());
  ASSERT_EQ(delivered.size(), 1u);
  EXPECT_EQ(delivered[0].source, 7u);
  EXPECT_EQ(delivered[0].payload, "hello");
  EXPECT_EQ(node_.counters().duplicate_packets, 1u);
}

TEST_F(MeshNodeTest, RelayForwardsAlongTheRouteAndFallsBackForAMissingLink) {
  welcome();
  const LinkId from7 = accept_and_open(7);
  const LinkId to8 = accept_and_open(8);
  hear(status_of(9, 1, {}));
  wire::Packet packet;
  packet.source = 7;
  packet.edges = {{7, 50}, {50, 8}, {50, 9}};
  packet.payload = "p";
  node_.on_link_data(now_, from7, wire::encode(packet));
  const auto actions = node_.take_actions();
  const auto sends = only<SendOnLink>(actions);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].link, to8);
  const auto publishes = only<Publish>(actions);
  ASSERT_EQ(publishes.size(), 1u);
  EXPECT_EQ(publishes[0].topics, std::vector<std::string>{"g.9.fallback"});
  EXPECT_EQ(node_.counters().fallback_sent, 1u);
}

TEST_F(MeshNodeTest, BroadcastGoesDownTheTreeAndToUnreachablePeersThroughTheServer) {
  welcome();
  const LinkId to7 = accept_and_open(7);
  hear(status_of(7, 1, {kSelf, 8}));
  hear(status_of(8, 1, {7}));
  hear(status_of(20, 1, {}));  // known, but linked to nobody
  node_.take_actions();
  const std::uint64_t seq = node_.broadcast(now_, "hi");
  EXPECT_EQ(seq, 1u);
  const auto actions = node_.take_actions();
  const auto sends = only<SendOnLink>(actions);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].link, to7);
  wire::Packet sent;
  ASSERT_EQ(wire::decode(sends[0].bytes, sent), wire::DecodeError::none);
  EXPECT_EQ(sent.source, kSelf);
  EXPECT_EQ(sent.seq, 1u);
  EXPECT_EQ(sent.edges, (std::vector<wire::Edge>{{kSelf, 7}, {7, 8}}));
  const auto publishes = only<Publish>(actions);
  ASSERT_EQ(publishes.size(), 1u);
  EXPECT_EQ(publishes[0].topics, std::vector<std::string>{"g.20.fallback"});
}

TEST_F(MeshNodeTest, KeepAlivePingsMeasureRttAndASilentLinkIsClosedWithinTwoSeconds) {
  welcome();
  const LinkId link = open_link_with_our_peer(7);
  node_.on_tick(now_);
  auto sends = only<SendOnLink>(node_.take_actions());
  ASSERT_EQ(sends.size(), 1u);
  wire::Packet ping;
  ASSERT_EQ(wire::decode(sends[0].bytes, ping), wire::DecodeError::none);
  ASSERT_NE(ping.ping, 0u);

  // The pong comes back 3 ms later: the link and the view get its RTT.
  now_ += 3 * kMillisecond;
  wire::Packet pong;
  pong.source = 7;
  pong.pong = ping.ping;
  node_.on_link_data(now_, link, wire::encode(pong));
  EXPECT_EQ(node_.links().find(link)->rtt_us, 3000u);
  EXPECT_EQ(node_.membership().view().neighbours(kSelf).at(0).weight_us, 3000u);
  EXPECT_TRUE(only<Deliver>(node_.take_actions()).empty()) << "control packets are not delivered";

  // Pings from the neighbour are answered.
  wire::Packet theirs;
  theirs.source = 7;
  theirs.ping = 12345;
  node_.on_link_data(now_, link, wire::encode(theirs));
  sends = only<SendOnLink>(node_.take_actions());
  ASSERT_EQ(sends.size(), 1u);
  wire::Packet answer;
  ASSERT_EQ(wire::decode(sends[0].bytes, answer), wire::DecodeError::none);
  EXPECT_EQ(answer.pong, 12345u);

  // Then silence: the link is declared dead at 2 s, not before.
  const TimeUs last_heard = now_;
  for (TimeUs t = now_; t < last_heard + 2 * kSecond; t += 100 * kMillisecond) {
    node_.on_tick(t);
    ASSERT_TRUE(only<CloseLink>(node_.take_actions()).empty()) << "closed early at " << t;
  }
  node_.on_tick(last_heard + 2 * kSecond);
  const auto closes = only<CloseLink>(node_.take_actions());
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].link, link);
  EXPECT_EQ(node_.counters().links_dead, 1u);
}

// A node woken long after the wake it asked for (its process starved, the
// machine or the tab suspended) cannot tell its neighbours' silence from its
// own: it pings first and declares the link dead only if no answer comes
// within a ping interval.
TEST_F(MeshNodeTest, AfterItsOwnStallANodePingsBeforeDeclaringLinksDead) {
  welcome();
  const LinkId link = open_link_with_our_peer(7);
  node_.on_tick(now_);
  (void)node_.take_actions();

  now_ += 5 * kSecond;  // no tick for 5 s: far past the 2 s silence bound
  node_.on_tick(now_);
  auto actions = node_.take_actions();
  EXPECT_TRUE(only<CloseLink>(actions).empty()) << "dead on its own stall";
  const auto sends = only<SendOnLink>(actions);
  ASSERT_EQ(sends.size(), 1u);
  wire::Packet ping;
  ASSERT_EQ(wire::decode(sends[0].bytes, ping), wire::DecodeError::none);
  EXPECT_NE(ping.ping, 0u);

  // The neighbour's queued packets come in: the link lives on.
  wire::Packet theirs;
  theirs.source = 7;
  theirs.pong = ping.ping;
  node_.on_link_data(now_ + 10 * kMillisecond, link, wire::encode(theirs));
  node_.on_tick(now_ + 1500 * kMillisecond);
  EXPECT_TRUE(only<CloseLink>(node_.take_actions()).empty());
  EXPECT_EQ(node_.counters().links_dead, 0u);

  // Another stall, and this time nothing answers: dead one ping interval later.
  now_ += 10 * kSecond;
  node_.on_tick(now_);
  EXPECT_TRUE(only<CloseLink>(node_.take_actions()).empty());
  node_.on_tick(now_ + 1 * kSecond);
  const auto closes = only<CloseLink>(node_.take_actions());
  ASSERT_EQ(closes.size(), 1u);
  EXPECT_EQ(closes[0].link, link);
  EXPECT_EQ(node_.counters().links_dead, 1u);
}

TEST_F(MeshNodeTest, ReferencePeersGetNoPingsAndAreNotTimedOutBySilence) {
  welcome();
  hear(status_of(7, 1, {}));  // version 0: a reference peer
  const LinkId link = accept_and_open(7);
  for (TimeUs t = now_; t < now_ + 10 * kSecond; t += 250 * kMillisecond) {
    node_.on_tick(t);
    const auto actions = node_.take_actions();
    EXPECT_TRUE(only<SendOnLink>(actions).empty());
    EXPECT_TRUE(only<CloseLink>(actions).empty());
  }
  EXPECT_NE(node_.links().find(link), nullptr);
}

TEST_F(MeshNodeTest, TransportRttWeightsOnlyLinksTheKeepAliveCannotPing) {
  welcome();
  hear(status_of(7, 1, {}));  // a reference peer: only the transport knows its RTT
  wire::MeshUpdate ours = status_of(8, 1, {});
  ours.status.version = 1;
  hear(ours);
  const LinkId reference = accept_and_open(7);
  const LinkId pinged = accept_and_open(8);

  node_.on_link_rtt(now_, reference, 4000);
  node_.on_link_rtt(now_, pinged, 9000);
  EXPECT_EQ(node_.links().find(reference)->rtt_us, 4000u);
  EXPECT_EQ(node_.links().find(pinged)->rtt_us, 0u) << "the keep-alive's own pongs measure it";
  for (const Neighbour& n : node_.membership().view().neighbours(kSelf)) {
    EXPECT_EQ(n.weight_us, n.peer == 7 ? 4000u : 0u) << "peer " << n.peer;
  }
}

}  // namespace
}  // namespace p2pmesh

namespace p2pmesh {
namespace {

TEST_F(MeshNodeTest, ChildGoneRightAfterARelayGetsItsChildrenServedByTheRelay) {
  welcome();
  const LinkId from7 = accept_and_open(7);
  const LinkId to8 = accept_and_open(8);
  const LinkId to9 = accept_and_open(9);
  hear(ours_status(8, 1, {}));
  hear(ours_status(9, 1, {}));
  wire::Packet packet;
  packet.source = 7;
  packet.seq = 4;
  packet.edges = {{7, 50}, {50, 8}, {8, 9}};  // 9 gets it through 8
  packet.payload = "p";
  node_.on_link_data(now_, from7, wire::encode(packet));
  auto sends = only<SendOnLink>(node_.take_actions());
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].link, to8);

  // 8 crashes before relaying: the server says it left.
  wire::MeshUpdate gone = status_of(8, 2, {});
  gone.left = true;
  sends = only<SendOnLink>(hear(gone));
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].link, to9);
  wire::Packet repaired;
  ASSERT_EQ(wire::decode(sends[0].bytes, repaired), wire::DecodeError::none);
  EXPECT_EQ(repaired.seq, 4u);
  EXPECT_EQ(repaired.edges.back(), (wire::Edge{50, 9})) << "9's parent is now us";
  EXPECT_EQ(validate_route(repaired, 100), RouteError::none);
  EXPECT_EQ(node_.counters().repaired, 1u);
}

}  // namespace
}  // namespace p2pmesh

namespace p2pmesh {
namespace {

TEST(MeshNodeObserver, CommandsReachTheAppOnlyWhenEnabled) {
  for (const bool enabled : {false, true}) {
    MeshConfig config;
    config.group = "g";
    config.observer_commands = enabled;
    MeshNode node(config);
    node.on_welcome(0, 50);
    bool subscribed = false;
    for (const auto& s : only<Subscribe>(node.take_actions())) subscribed |= s.topic == "g.50.command";
    EXPECT_EQ(subscribed, enabled);
    node.on_topic_message(0, "g.50.command", 3, R"({"command":"trace"})");
    const auto commands = only<ObserverCommand>(node.take_actions());
    ASSERT_EQ(commands.size(), enabled ? 1u : 0u);
    if (enabled) {
      EXPECT_EQ(commands[0].from, 3u);
      EXPECT_EQ(commands[0].body, R"({"command":"trace"})");
    }
  }
}

}  // namespace
}  // namespace p2pmesh

namespace p2pmesh {
namespace {

TEST_F(MeshNodeTest, HostileRouteWithThousandsOfChildrenCostsNoMoreThanTheLinksAndABudget) {
  welcome();
  const LinkId from7 = accept_and_open(7);
  const LinkId to8 = accept_and_open(8);
  for (PeerId member = 100; member < 120; ++member) hear(status_of(member, 1, {}));
  wire::Packet packet;
  packet.source = 7;
  packet.edges = {{7, kSelf}, {kSelf, 8}};
  for (PeerId member = 100; member < 120; ++member) packet.edges.push_back({kSelf, member});
  for (PeerId made_up = 1000; made_up < 4000; ++made_up) packet.edges.push_back({kSelf, made_up});
  packet.payload = std::string(1000, 'x');
  node_.on_link_data(now_, from7, wire::encode(packet));
  const auto actions = node_.take_actions();

  const auto sends = only<SendOnLink>(actions);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].link, to8);
  EXPECT_EQ(only<Deliver>(actions).size(), 1u);
  // Members without a link: through the server, max_connections of them.
  const auto publishes = only<Publish>(actions);
  EXPECT_EQ(publishes.size(), node_.config().max_connections);
  EXPECT_EQ(node_.counters().dropped_hops, 3000u + 20u - node_.config().max_connections);
}

TEST_F(MeshNodeTest, FallbackToManyPeersIsSplitToTheServersTopicLimit) {
  welcome();
  for (PeerId member = 100; member < 120; ++member) hear(status_of(member, 1, {}));
  node_.broadcast(now_, "hi");
  const auto publishes = only<Publish>(node_.take_actions());
  ASSERT_EQ(publishes.size(), 2u);
  EXPECT_EQ(publishes[0].topics.size() + publishes[1].topics.size(), 20u);
  for (const Publish& p : publishes) {
    EXPECT_LE(p.topics.size(), node_.config().max_topics_per_publish);
    wire::Packet packet;
    ASSERT_EQ(wire::decode(p.body, packet), wire::DecodeError::none);
    EXPECT_EQ(packet.payload, "hi");
  }
  EXPECT_EQ(node_.counters().fallback_sent, 20u);
}

TEST_F(MeshNodeTest, OversizedPayloadsAreRefusedAndNothingOverTheServerLimitIsPublished) {
  welcome();
  accept_and_open(7);
  hear(status_of(20, 1, {}));
  node_.take_actions();
  const std::size_t limit = node_.config().max_payload_bytes;
  EXPECT_EQ(node_.broadcast(now_, std::string(limit + 1, 'x')), 0u);
  EXPECT_TRUE(node_.take_actions().empty());
  EXPECT_EQ(node_.counters().oversized_broadcasts, 1u);

  // The largest payload goes out: on the link and through the server.
  EXPECT_NE(node_.broadcast(now_, std::string(limit, 'x')), 0u);
  const auto actions = node_.take_actions();
  EXPECT_EQ(only<SendOnLink>(actions).size(), 1u);
  ASSERT_EQ(only<Publish>(actions).size(), 1u);
  EXPECT_LE(only<Publish>(actions)[0].body.size(), node_.config().max_server_message_bytes);
  EXPECT_EQ(node_.counters().oversized_publishes, 0u);
}

class SmallServerLimitTest : public MeshNodeTest {
 protected:
  static MeshConfig small_limit() {
    MeshConfig config = make_config();
    config.max_server_message_bytes = 200;
    return config;
  }
  SmallServerLimitTest() : MeshNodeTest(small_limit()) {}
};

TEST_F(SmallServerLimitTest, APublicationOverTheServerLimitIsDroppedAndCountedNotSent) {
  welcome();
  hear(status_of(20, 1, {}));
  node_.take_actions();
  node_.broadcast(now_, std::string(300, 'x'));  // only the server could carry it
  EXPECT_TRUE(only<Publish>(node_.take_actions()).empty());
  EXPECT_EQ(node_.counters().oversized_publishes, 1u);
  node_.broadcast(now_, "small");
  EXPECT_EQ(only<Publish>(node_.take_actions()).size(), 1u);
}

}  // namespace
}  // namespace p2pmesh

namespace p2pmesh {
namespace {

TEST_F(MeshNodeTest, AFloodOfOffersFromOnePeerBuildsOneConnectionASecond) {
  welcome();
  std::size_t accepted = 0;
  for (int i = 0; i < 1000; ++i) {  // 1,000 offers over 2 s
    accepted += only<AcceptLink>(offer_from(7)).size();
    now_ += 2 * kMillisecond;
  }
  EXPECT_EQ(accepted, 2u);
  EXPECT_EQ(node_.counters().offers_refused, 998u);
  // A genuine new attempt later replaces the old one.
  now_ += 2 * kSecond;
  EXPECT_EQ(only<AcceptLink>(offer_from(7)).size(), 1u);
}

}  // namespace
}  // namespace p2pmesh

namespace p2pmesh {
namespace {

TEST(MeshNodeMembers, AReferencePeerRepublishingAnUnchangedStatusIdStaysKnown) {
  MeshConfig config;
  config.group = "g";
  config.target_connections = 0;  // no link with it: only what we hear keeps it
  MeshNode node(config);
  const TimeUs start = 1 * kSecond;
  node.on_welcome(start, 50);
  const std::string status = wire::encode(status_of(7, 3, {8, 9}));
  for (TimeUs t = start; t <= start + 10 * 60 * kSecond; t += 1 * kSecond) {
    // The reference re-publishes every 60 s, with the same id while its
    // links hold.
    if ((t - start) % (60 * kSecond) == 0) node.on_topic_message(t, "g.mesh", 7, status);
    node.on_tick(t);
    node.take_actions();
    ASSERT_TRUE(node.membership().is_member(7)) << "forgotten after " << (t - start) / kSecond << " s";
  }
  EXPECT_GE(node.counters().stale_updates, 9u);
}

TEST_F(MeshNodeTest, RepeatsOfADepartedSourcesLastPacketsAreStillDropped) {
  welcome();
  const LinkId from7 = accept_and_open(7);
  hear(ours_status(7, 1, {kSelf}));
  wire::Packet packet;
  packet.source = 7;
  packet.seq = 4;
  packet.edges = {{7, kSelf}};
  packet.payload = "last words";
  node_.on_link_data(now_, from7, wire::encode(packet));
  ASSERT_EQ(only<Deliver>(node_.take_actions()).size(), 1u);

  wire::MeshUpdate gone = ours_status(7, 2, {});
  gone.left = true;
  hear(gone);  // 7 crashed: the server's departure notice
  // A relay that sent it to a child which crashed too repairs it: a copy
  // through the server, a second later.
  now_ += 1 * kSecond;
  wire::Packet copy = packet;
  copy.edges.clear();
  node_.on_topic_message(now_, peer_topic("g", kSelf, SignalKind::fallback), 9,
                         wire::encode(copy));
  EXPECT_TRUE(only<Deliver>(node_.take_actions()).empty()) << "delivered twice";
  EXPECT_EQ(node_.counters().duplicate_packets, 1u);
}

TEST_F(MeshNodeTest, RepairGoesAroundPeersThatCannotDropRepeatsAndSkipsPacketsWithoutIds) {
  welcome();
  const LinkId from7 = accept_and_open(7);
  const LinkId to8 = accept_and_open(8);
  const LinkId to10 = accept_and_open(10);
  hear(ours_status(7, 1, {}));
  hear(ours_status(8, 1, {}));
  hear(status_of(9, 1, {}));  // a reference peer: no duplicate filter
  hear(ours_status(10, 1, {}));
  wire::Packet packet;
  packet.source = 7;
  packet.seq = 4;
  packet.edges = {{7, kSelf}, {kSelf, 8}, {8, 9}, {9, 10}};
  packet.payload = "p";
  node_.on_link_data(now_, from7, wire::encode(packet));
  wire::Packet without_id = packet;  // as a reference source sends it
  without_id.seq = 0;
  without_id.payload = "q";
  node_.on_link_data(now_, from7, wire::encode(without_id));
  auto sends = only<SendOnLink>(node_.take_actions());
  ASSERT_EQ(sends.size(), 2u);
  EXPECT_EQ(sends[0].link, to8);

  // 8 crashes before relaying: 9 may have the packet already (it would
  // deliver a copy twice), so 10 gets it in its place; the packet without
  // an id is not repaired at all (no receiver could drop a repeat).
  wire::MeshUpdate gone = ours_status(8, 2, {});
  gone.left = true;
  const auto actions = hear(gone);
  EXPECT_EQ(only<Publish>(actions).size(), 1u) << "disconnected_from 8, and no copy for 9";
  sends = only<SendOnLink>(actions);
  ASSERT_EQ(sends.size(), 1u);
  EXPECT_EQ(sends[0].link, to10);
  wire::Packet repaired;
  ASSERT_EQ(wire::decode(sends[0].bytes, repaired), wire::DecodeError::none);
  EXPECT_EQ(repaired.payload, "p");
  EXPECT_EQ(repaired.edges.back(), (wire::Edge{kSelf, 10}));
  EXPECT_EQ(validate_route(repaired, 100), RouteError::none);
  EXPECT_EQ(node_.counters().repaired, 1u);
}

// The reference-like test peer (reference_like.hpp) at the wire.
TEST(ReferenceLikePeer, AnnouncesItselfFirstDialsOnItsTimerAndKeepsClaimingClosedReceivedLinks) {
  MeshConfig base;
  base.group = "g";
  MeshNode node(reference_like(base));
  TimeUs now = 1 * kSecond;
  node.on_welcome(now, 50);
  auto actions = node.take_actions();
  ASSERT_FALSE(actions.empty());
  ASSERT_TRUE(std::holds_alternative<Publish>(actions.front())) << "status before subscribing";
  wire::MeshUpdate first;
  ASSERT_EQ(wire::decode(std::get<Publish>(actions.front()).body, first), wire::DecodeError::none);
  EXPECT_EQ(first.status.version, 0u);

  const auto hear = [&](const wire::MeshUpdate& update) {
    node.on_topic_message(now, "g.mesh", update.source, wire::encode(update));
    return node.take_actions();
  };
  EXPECT_TRUE(only<OpenLink>(hear(ours_status(7, 1, {}))).empty());
  hear(status_of(50, 1, {}));  // its echo changes nothing
  now += kReferenceDialInterval - 1;
  node.on_tick(now);
  EXPECT_TRUE(only<OpenLink>(node.take_actions()).empty());
  now += 1;
  node.on_tick(now);
  EXPECT_EQ(only<OpenLink>(node.take_actions()).size(), 1u) << "its 30 s dial timer";

  // A link it received closes: it keeps claiming it, with an unchanged id.
  node.on_topic_message(now, "g.50.offer", 8, R"({"type":"offer","sdp":"v=0"})");
  const auto accepted = only<AcceptLink>(node.take_actions());
  ASSERT_EQ(accepted.size(), 1u);
  node.on_link_open(now, accepted[0].link);
  node.take_actions();
  node.on_link_closed(now, accepted[0].link);
  EXPECT_TRUE(link_changes(node.take_actions()).empty()) << "no disconnected_from";
  const auto statuses = [&] {
    std::vector<wire::MeshUpdate> out;
    for (const auto& p : only<Publish>(node.take_actions())) {
      wire::MeshUpdate u;
      if (wire::decode(p.body, u) == wire::DecodeError::none &&
          u.kind == wire::MeshUpdate::Kind::status) {
        out.push_back(u);
      }
    }
    return out;
  };
  now += kReferenceStatusInterval;
  node.on_tick(now);
  auto published = statuses();
  ASSERT_EQ(published.size(), 1u);
  const std::uint32_t id = published[0].status.id;
  EXPECT_NE(std::find(published[0].status.connected_to.begin(),
                      published[0].status.connected_to.end(), 8u),
            published[0].status.connected_to.end());
  now += kReferenceStatusInterval;
  node.on_tick(now);
  published = statuses();
  ASSERT_EQ(published.size(), 1u);
  EXPECT_EQ(published[0].status.id, id) << "links unchanged: same id";
  EXPECT_TRUE(node.membership().view().has_link(50, 8)) << "and its trees use it";

  // No duplicate filter: a repeat is delivered again.
  wire::Packet packet;
  packet.source = 7;
  packet.seq = 9;
  packet.payload = "x";
  node.on_topic_message(now, "g.50.fallback", 7, wire::encode(packet));
  node.on_topic_message(now, "g.50.fallback", 7, wire::encode(packet));
  EXPECT_EQ(only<Deliver>(node.take_actions()).size(), 2u);
}

}  // namespace
}  // namespace p2pmesh

namespace p2pmesh {
namespace {

TEST_F(MeshNodeTest, TheCoreDecodesServerFramesAndRefusesBadOnes) {
  wire::ServerMessage welcome;
  welcome.kind = wire::ServerMessage::Kind::welcome;
  welcome.welcome_id = kSelf;
  ASSERT_TRUE(node_.on_server_frame(now_, wire::encode(welcome)));
  EXPECT_EQ(node_.id(), kSelf);
  const auto subscribes = only<Subscribe>(node_.take_actions());
  ASSERT_FALSE(subscribes.empty());
  EXPECT_EQ(server_frame(subscribes[0]), [] {
    wire::ClientMessage message;
    message.kind = wire::ClientMessage::Kind::subscribe;
    message.topic = "g.mesh";
    message.batch_ms = 200;  // MeshConfig::server_batch
    return wire::encode(message);
  }());

  EXPECT_FALSE(node_.on_server_frame(now_, "\x0a\xff\xff"));  // truncated
  EXPECT_FALSE(node_.on_server_frame(now_, std::string(2u << 20, '\0')));  // over the limit
  welcome.welcome_id = 99;  // a second welcome changes nothing
  EXPECT_TRUE(node_.on_server_frame(now_, wire::encode(welcome)));
  EXPECT_EQ(node_.id(), kSelf);

  wire::ServerMessage status;
  status.kind = wire::ServerMessage::Kind::topic_message;
  status.topic = "g.mesh";
  status.sender = 7;
  status.body = wire::encode(ours_status(7, 1, {}));
  EXPECT_TRUE(node_.on_server_frame(now_, wire::encode(status)));
  EXPECT_TRUE(node_.membership().is_member(7));
}

TEST_F(MeshNodeTest, EveryUpdateOfABatchFrameCountsInOrder) {
  welcome();
  wire::MeshUpdate gone = status_of(7, 2, {});
  gone.left = true;
  wire::ServerMessage batch;
  batch.kind = wire::ServerMessage::Kind::topic_batch;
  batch.topic = "g.mesh";
  batch.batch = {{7, wire::encode(ours_status(7, 1, {}))},
                 {8, wire::encode(ours_status(8, 1, {}))},
                 {7, wire::encode(gone)},
                 {9, wire::encode(ours_status(8, 2, {}))}};  // forged: 9 about 8
  ASSERT_TRUE(node_.on_server_frame(now_, wire::encode(batch)));
  EXPECT_FALSE(node_.membership().is_member(7)) << "joined, then left, in that order";
  EXPECT_TRUE(node_.membership().is_member(8));
  EXPECT_FALSE(node_.membership().is_member(9));
  EXPECT_EQ(node_.counters().forged_updates, 1u);
}

TEST_F(MeshNodeTest, AReferenceLikePeerAsksForNoBatches) {
  MeshConfig config = make_config();
  config.emulate_reference = true;
  MeshNode node(config);
  node.on_welcome(now_, kSelf);
  for (const auto& subscribe : only<Subscribe>(node.take_actions()))
    EXPECT_EQ(subscribe.batch_ms, 0u) << subscribe.topic;
}

TEST_F(MeshNodeTest, LosingTheServerClosesEveryLinkAndReportsEachLinkAndMemberGone) {
  welcome();
  const LinkId link7 = accept_and_open(7);
  const LinkId link8 = accept_and_open(8);
  hear(ours_status(9, 1, {}));
  node_.take_actions();
  node_.on_server_lost(now_);
  const auto actions = node_.take_actions();
  std::set<LinkId> closed;
  for (const auto& c : only<CloseLink>(actions)) closed.insert(c.link);
  EXPECT_TRUE(closed.count(link7) && closed.count(link8));
  EXPECT_EQ(only<LinkDown>(actions).size(), 2u);
  std::set<PeerId> left;
  for (const auto& l : only<PeerLeft>(actions)) left.insert(l.peer);
  EXPECT_EQ(left, (std::set<PeerId>{7, 8, 9}));
  EXPECT_TRUE(only<Publish>(actions).empty()) << "no server to publish to";
  EXPECT_EQ(node_.links().size(), 0u);
  // The node is done: later inputs do nothing.
  node_.on_tick(now_ + 10 * kSecond);
  EXPECT_EQ(node_.broadcast(now_, "x"), 0u);
  EXPECT_TRUE(only<Publish>(node_.take_actions()).empty());
}

TEST_F(MeshNodeTest, LinksWithReferencePeersGetTheirRttFromTheTransport) {
  welcome();
  const LinkId reference = accept_and_open(7);  // no status: version 0
  const LinkId ours = accept_and_open(8);
  hear(ours_status(8, 1, {}));
  node_.on_tick(now_);
  auto measured = only<MeasureRtt>(node_.take_actions());
  ASSERT_EQ(measured.size(), 1u) << "at once, and only for the link the keep-alive cannot ping";
  EXPECT_EQ(measured[0].link, reference);
  node_.on_link_rtt(now_, reference, 30'000);
  EXPECT_EQ(node_.links().find(reference)->rtt_us, 30'000u);
  node_.on_tick(now_ + node_.config().transport_rtt_interval - 1);
  EXPECT_TRUE(only<MeasureRtt>(node_.take_actions()).empty());
  node_.on_tick(now_ + node_.config().transport_rtt_interval);
  measured = only<MeasureRtt>(node_.take_actions());
  ASSERT_EQ(measured.size(), 1u);
  EXPECT_EQ(measured[0].link, reference);
  EXPECT_NE(ours, reference);
}


// ---- Link downs and departure notices (link_down_grace, docs/membership.md)

// The disconnected_from updates among `actions`' publications, by peer.
std::vector<PeerId> link_downs_published(const std::vector<Action>& actions) {
  std::vector<PeerId> peers;
  for (const auto& p : only<Publish>(actions)) {
    wire::MeshUpdate update;
    if (wire::decode(p.body, update) == wire::DecodeError::none &&
        update.kind == wire::MeshUpdate::Kind::disconnected_from) {
      peers.push_back(update.peer);
    }
  }
  return peers;
}

wire::MeshUpdate departure_of(PeerId peer, std::uint32_t id) {
  wire::MeshUpdate gone = ours_status(peer, id, {});
  gone.left = true;
  return gone;
}

TEST_F(MeshNodeTest, ALinkToAPeerWhoseDepartureNoticeComesWithinTheGraceIsNeverAnnounced) {
  // All ours: the notice removes the peer and its links from every view.
  welcome();
  hear(ours_status(7, 1, {}));
  hear(ours_status(8, 1, {}));
  const LinkId link = accept_and_open(7);
  node_.on_link_closed(now_, link);  // 7 left: its link closes first...
  auto actions = node_.take_actions();
  EXPECT_FALSE(node_.membership().view().has_link(kSelf, 7)) << "our own view knows at once";
  EXPECT_EQ(only<LinkDown>(actions).size(), 1u);
  EXPECT_TRUE(link_downs_published(actions).empty());
  now_ += 1500 * kMillisecond;
  actions = hear(departure_of(7, 2));  // ...then meshd's notice
  EXPECT_TRUE(link_downs_published(actions).empty());
  EXPECT_FALSE(node_.membership().is_member(7));
  for (int i = 0; i < 10; ++i) {
    now_ += kSecond;
    node_.on_tick(now_);
    EXPECT_TRUE(link_downs_published(node_.take_actions()).empty()) << "at " << now_;
  }
}

TEST_F(MeshNodeTest, ALinkToAPeerWhoseNoticeCameFirstIsNotAnnouncedEither) {
  // A crashed peer: meshd sees its socket close at once, the link dies later.
  welcome();
  hear(ours_status(7, 1, {}));
  hear(ours_status(8, 1, {}));
  accept_and_open(7);
  const auto actions = hear(departure_of(7, 2));
  EXPECT_EQ(only<CloseLink>(actions).size(), 1u);
  EXPECT_EQ(only<LinkDown>(actions).size(), 1u);
  EXPECT_TRUE(link_downs_published(actions).empty());
  EXPECT_FALSE(node_.membership().view().has_peer(7));
}

TEST_F(MeshNodeTest, ALinkThatFailedBetweenLivePeersIsAnnouncedWhenTheGraceEnds) {
  welcome();
  hear(ours_status(7, 1, {}));
  const LinkId link = accept_and_open(7);
  const TimeUs closed_at = now_;
  node_.on_link_closed(now_, link);
  auto actions = node_.take_actions();
  EXPECT_TRUE(link_downs_published(actions).empty());
  // The driver is asked to wake the node when the grace ends, at the latest.
  const auto wakes = only<WakeAt>(actions);
  ASSERT_FALSE(wakes.empty());
  EXPECT_LE(wakes.back().at, closed_at + node_.config().link_down_grace);
  now_ = closed_at + node_.config().link_down_grace - kMillisecond;
  node_.on_tick(now_);
  EXPECT_TRUE(link_downs_published(node_.take_actions()).empty());
  now_ = closed_at + node_.config().link_down_grace;
  node_.on_tick(now_);
  EXPECT_EQ(link_downs_published(node_.take_actions()), std::vector<PeerId>{7});
  now_ += 5 * kSecond;
  node_.on_tick(now_);
  EXPECT_TRUE(link_downs_published(node_.take_actions()).empty()) << "once";
}

TEST_F(MeshNodeTest, AnUpdateFromTheOtherEndShowsItAliveAndTheLinkDownGoesOutAtOnce) {
  // E.g. it dropped the link to make room, and said so itself, but as a
  // member of version 1 its word leaves our claim standing in other views.
  welcome();
  hear(ours_status(7, 1, {}));
  const LinkId link = accept_and_open(7);
  node_.on_link_closed(now_, link);
  EXPECT_TRUE(link_downs_published(node_.take_actions()).empty());
  now_ += 100 * kMillisecond;
  wire::MeshUpdate its_down;
  its_down.source = 7;
  its_down.kind = wire::MeshUpdate::Kind::disconnected_from;
  its_down.peer = kSelf;
  EXPECT_EQ(link_downs_published(hear(its_down)), std::vector<PeerId>{7});
  now_ += 5 * kSecond;
  node_.on_tick(now_);
  EXPECT_TRUE(link_downs_published(node_.take_actions()).empty()) << "once";
}

// A status of a member whose link downs end the link in every view.
wire::MeshUpdate v4_status(PeerId source, std::uint32_t id, std::vector<PeerId> links) {
  wire::MeshUpdate update = status_of(source, id, std::move(links));
  update.status.version = wire::kVersionLinkDownByOneEnd;
  return update;
}

wire::MeshUpdate link_down_said_by(PeerId source, PeerId peer) {
  wire::MeshUpdate down;
  down.source = source;
  down.kind = wire::MeshUpdate::Kind::disconnected_from;
  down.peer = peer;
  return down;
}

TEST_F(MeshNodeTest, ALinkTheOtherEndClosedAndAnnouncedIsNotAnnouncedAgain) {
  // Every member of version 4: 7's word ends the link in every view (and in
  // meshd's snapshot), so ours would only cost each member one more update.
  welcome();
  hear(v4_status(7, 1, {}));
  hear(v4_status(8, 1, {}));
  const LinkId link = accept_and_open(7);
  const TimeUs closed_at = now_;
  node_.on_link_closed(now_, link);  // 7 dropped it to make room
  EXPECT_TRUE(link_downs_published(node_.take_actions()).empty());
  now_ += 100 * kMillisecond;
  EXPECT_TRUE(link_downs_published(hear(link_down_said_by(7, kSelf))).empty());
  now_ = closed_at + 2 * node_.config().link_down_grace;
  node_.on_tick(now_);
  EXPECT_TRUE(link_downs_published(node_.take_actions()).empty());
  EXPECT_FALSE(node_.membership().view().has_link(kSelf, 7));
  EXPECT_TRUE(node_.membership().is_member(7));
}

TEST_F(MeshNodeTest, TheOtherEndsWordBeforeWeSeeTheCloseIsEnoughToo) {
  // The server's path can be faster than the data channel's close.
  welcome();
  hear(v4_status(7, 1, {}));
  const LinkId link = accept_and_open(7);
  EXPECT_TRUE(link_downs_published(hear(link_down_said_by(7, kSelf))).empty());
  EXPECT_TRUE(node_.membership().view().has_link(kSelf, 7)) << "open here until it closes";
  now_ += 300 * kMillisecond;
  node_.on_link_closed(now_, link);
  now_ += 2 * node_.config().link_down_grace;
  node_.on_tick(now_);
  EXPECT_TRUE(link_downs_published(node_.take_actions()).empty());
  // Its word was for that link only: a later link that fails is announced.
  const LinkId again = accept_and_open(7);
  node_.on_link_closed(now_, again);
  now_ += node_.config().link_down_grace;
  node_.on_tick(now_);
  EXPECT_EQ(link_downs_published(node_.take_actions()), std::vector<PeerId>{7});
}

TEST_F(MeshNodeTest, TheOtherEndsWordStaysWhenItSpeaksAgainBeforeWeSeeTheClose) {
  // Its next status (without us) comes between its word and our close: the
  // word still holds, our link down would cost every member one update.
  welcome();
  hear(v4_status(7, 1, {}));
  const LinkId link = accept_and_open(7);
  EXPECT_TRUE(link_downs_published(hear(link_down_said_by(7, kSelf))).empty());
  now_ += 100 * kMillisecond;
  EXPECT_TRUE(link_downs_published(hear(v4_status(7, 2, {}))).empty());
  now_ += 200 * kMillisecond;
  node_.on_link_closed(now_, link);
  now_ += 2 * node_.config().link_down_grace;
  node_.on_tick(now_);
  EXPECT_TRUE(link_downs_published(node_.take_actions()).empty());
}

// Links that stay up without pongs (a test has no far end to answer pings).
class MeshNodeQuietLinksTest : public MeshNodeTest {
 protected:
  MeshNodeQuietLinksTest() : MeshNodeTest(quiet_config()) {}
  static MeshConfig quiet_config() {
    MeshConfig config = make_config();
    config.dead_link_timeout = 60 * kSecond;
    return config;
  }
};

TEST_F(MeshNodeQuietLinksTest, AfterOurOwnStatusListedTheLinkWeStillAnnounceItsEnd) {
  // Our status listing 7 may reach the server after 7's word and put our
  // claim back in every view: our own link down must follow, as before.
  welcome();  // at 1 s: status ticks at 11 s, 21 s...
  hear(v4_status(7, 1, {}));
  hear(v4_status(8, 1, {}));
  const LinkId link = accept_and_open(7);
  now_ = 11 * kSecond;
  node_.on_tick(now_);  // a refresh: a group of 3 refreshes every interval
  auto statuses = statuses_published(node_.take_actions());
  ASSERT_EQ(statuses.size(), 1u);
  ASSERT_EQ(statuses[0].connected_to, std::vector<PeerId>{7});
  now_ += 500 * kMillisecond;
  node_.on_link_closed(now_, link);
  EXPECT_TRUE(link_downs_published(node_.take_actions()).empty()) << "held";
  now_ += 100 * kMillisecond;
  EXPECT_EQ(link_downs_published(hear(link_down_said_by(7, kSelf))), std::vector<PeerId>{7});

  // The same when its word comes first and our status goes out before the close.
  const LinkId again = accept_and_open(7);
  now_ = 20500 * kMillisecond;
  EXPECT_TRUE(link_downs_published(hear(link_down_said_by(7, kSelf))).empty());
  now_ = 21 * kSecond;
  node_.on_tick(now_);
  statuses = statuses_published(node_.take_actions());
  ASSERT_EQ(statuses.size(), 1u);
  ASSERT_EQ(statuses[0].connected_to, std::vector<PeerId>{7});
  now_ += 100 * kMillisecond;
  node_.on_link_closed(now_, again);
  EXPECT_TRUE(link_downs_published(node_.take_actions()).empty()) << "held";
  now_ += node_.config().link_down_grace;
  node_.on_tick(now_);
  EXPECT_EQ(link_downs_published(node_.take_actions()), std::vector<PeerId>{7});
}

TEST_F(MeshNodeTest, WithAMemberBelowVersion4BothEndsStillAnnounceTheLinkDown) {
  // A member of version 3 keeps our claim of the link on 7's word alone.
  welcome();
  hear(v4_status(7, 1, {}));
  wire::MeshUpdate v3 = v4_status(8, 1, {});
  v3.status.version = 3;
  hear(v3);
  const LinkId link = accept_and_open(7);
  node_.on_link_closed(now_, link);
  node_.take_actions();
  EXPECT_EQ(link_downs_published(hear(link_down_said_by(7, kSelf))), std::vector<PeerId>{7});
}

TEST_F(MeshNodeTest, ALinkUpAgainWithinTheGraceIsNeverAnnouncedDown) {
  welcome();
  hear(ours_status(7, 1, {}));
  const TimeUs closed_at = now_;
  node_.on_link_closed(now_, accept_and_open(7));
  node_.take_actions();
  now_ += 500 * kMillisecond;
  accept_and_open(7);
  now_ = closed_at + node_.config().link_down_grace;
  node_.on_tick(now_);
  EXPECT_TRUE(link_downs_published(node_.take_actions()).empty());
  EXPECT_TRUE(node_.membership().view().has_link(kSelf, 7));
}

TEST_F(MeshNodeTest, ALinkWeCloseOurselvesIsAnnouncedAtOnce) {
  // The other end is alive as far as we know: no departure notice will come.
  MeshConfig config = make_config();
  config.max_connections = 1;
  MeshNode node(config);
  node.on_welcome(now_, kSelf);
  node.on_topic_message(now_, "g.mesh", 7, wire::encode(ours_status(7, 1, {})));
  node.on_topic_message(now_, "g.mesh", 8, wire::encode(ours_status(8, 1, {})));
  node.take_actions();
  const auto ask = [&](PeerId peer) {
    node.on_topic_message(now_, peer_topic("g", kSelf, SignalKind::offer), peer,
                          R"({"type":"offer","sdp":"v=0"})");
    return node.take_actions();
  };
  const auto accepted = only<AcceptLink>(ask(7));
  ASSERT_EQ(accepted.size(), 1u);
  node.on_link_open(now_, accepted[0].link);
  node.take_actions();
  const auto actions = ask(8);  // full: 7's link makes room for 8
  ASSERT_EQ(only<CloseLink>(actions).size(), 1u);
  EXPECT_EQ(link_downs_published(actions), std::vector<PeerId>{7});
}

TEST_F(MeshNodeTest, WithAReferencePeerInTheGroupLinkDownsGoOutAtOnceAsBefore) {
  // A reference peer keeps a claim until its maker withdraws it: a departed
  // peer's neighbours must still say their links are gone.
  welcome();
  hear(ours_status(7, 1, {}));
  hear(status_of(9, 1, {}));  // version 0
  const LinkId link = accept_and_open(7);
  node_.on_link_closed(now_, link);
  EXPECT_EQ(link_downs_published(node_.take_actions()), std::vector<PeerId>{7});
  accept_and_open(8);
  hear(ours_status(8, 1, {kSelf}));
  EXPECT_EQ(link_downs_published(hear(departure_of(8, 2))), std::vector<PeerId>{8});
}

}  // namespace
}  // namespace p2pmesh

namespace p2pmesh {
namespace {

// A status of a peer that hears Packet.gone (version 3), next seq 1.
wire::MeshUpdate v3_status(PeerId source, std::vector<PeerId> links) {
  wire::MeshUpdate update = status_of(source, 1, std::move(links));
  update.status.version = 3;
  update.status.next_seq = 1;
  return update;
}

std::vector<wire::Packet> packets_on(const std::vector<Action>& actions, LinkId link) {
  std::vector<wire::Packet> out;
  for (const SendOnLink& send : only<SendOnLink>(actions)) {
    if (send.link != link) continue;
    wire::Packet packet;
    EXPECT_EQ(wire::decode(send.bytes, packet), wire::DecodeError::none);
    out.push_back(std::move(packet));
  }
  return out;
}

TEST_F(MeshNodeTest, ASourceAnswersAPullOfWhatItLetGoWithGoneAndOfWhatItNeverSentWithItsLastSeq) {
  MeshConfig config = make_config();
  config.history_bytes = 1;  // nothing stays in the history
  MeshNode node(config);
  node.on_welcome(now_, kSelf);
  node.on_topic_message(now_, "g.mesh", kSelf, wire::encode(status_of(kSelf, 1, {})));
  node.on_topic_message(now_, "g.mesh", 8, wire::encode(v3_status(8, {})));
  node.on_topic_message(now_, peer_topic("g", kSelf, SignalKind::offer), 8,
                        R"({"type":"offer","sdp":"v=0"})");
  const LinkId link = only<AcceptLink>(node.take_actions()).at(0).link;
  node.on_link_open(now_, link);
  EXPECT_EQ(node.broadcast(now_, "one"), 1u);
  EXPECT_EQ(node.broadcast(now_, "two"), 2u);
  node.take_actions();
  wire::Packet want;
  want.source = 8;
  want.want = {{kSelf, 1}, {kSelf, 7}};
  node.on_link_data(now_, link, wire::encode(want));
  const std::vector<wire::Packet> answers = packets_on(node.take_actions(), link);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].gone, (std::vector<wire::MessageId>{{kSelf, 1}})) << "let go: never comes";
  EXPECT_EQ(answers[0].have, (std::vector<wire::MessageId>{{kSelf, 2}})) << "7 was never sent";
  EXPECT_TRUE(answers[0].payload.empty());
}

TEST_F(MeshNodeTest, AForgedAnnouncementDoesNotHoldASourcesMessagesOnceTheSourceAnswers) {
  welcome();
  hear(v3_status(7, {}));
  hear(v3_status(8, {}));
  const LinkId from7 = accept_and_open(7);
  const LinkId from8 = accept_and_open(8);
  wire::Packet forged;  // 8 claims to have 7's messages 1..3, which 7 never sent
  forged.source = 8;
  forged.have = {{7, 3}};
  node_.on_link_data(now_, from8, wire::encode(forged));
  node_.take_actions();
  now_ += 50 * kMillisecond;
  node_.on_tick(now_);
  std::vector<wire::Packet> asked = packets_on(node_.take_actions(), from7);
  std::erase_if(asked, [](const wire::Packet& p) { return p.want.empty(); });  // keep-alives
  ASSERT_EQ(asked.size(), 1u) << "the source is asked first";
  EXPECT_EQ(asked[0].want.size(), 3u);
  wire::Packet answer;  // 7: "my last message so far: none"
  answer.source = 7;
  answer.have = {{7, 0}};
  node_.on_link_data(now_, from7, wire::encode(answer));
  node_.take_actions();
  const std::uint64_t pulls = node_.counters().pulls_sent;
  // Long after (the links went silent meanwhile): no pull, and no gap over
  // the phantom seqs (which would make 7's real messages 1..3 "late").
  for (int i = 0; i < 30; ++i) {
    now_ += 1 * kSecond;
    node_.on_tick(now_);
    EXPECT_TRUE(only<Gap>(node_.take_actions()).empty());
  }
  EXPECT_EQ(node_.counters().pulls_sent, pulls);
  for (std::uint64_t seq : {1, 2}) {  // through the server: the link is gone
    wire::Packet real;
    real.source = 7;
    real.seq = seq;
    real.edges = {{7, kSelf}};
    real.payload = "real " + std::to_string(seq);
    node_.on_topic_message(now_, peer_topic("g", kSelf, SignalKind::fallback), 7,
                           wire::encode(real));
  }
  const auto delivered = only<Deliver>(node_.take_actions());
  ASSERT_EQ(delivered.size(), 2u);
  EXPECT_EQ(delivered[0].payload, "real 1");
  EXPECT_EQ(delivered[1].payload, "real 2");
  EXPECT_EQ(node_.counters().gaps, 0u);
}

}  // namespace
}  // namespace p2pmesh
