// Signed broadcasts (docs/security.md): Ed25519 keys (libsodium), the core's
// sign/verify flow through its driver, receiver tags, the require_signatures
// policy, and a neighbour that forges packets in the name of another source.

#include <gtest/gtest.h>
#include <jwt.h>
#include <unistd.h>

#include <ctime>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "ed25519_key.hpp"
#include "mesh_node.hpp"
#include "processes.hpp"
#include "receiver_tags.hpp"
#include "signed_broadcast.hpp"
#include "support.hpp"
#include "topics.hpp"

namespace p2pmesh {
namespace {

using namespace std::chrono_literals;
using native::Ed25519Key;
using native::ed25519_verify;
using native::ReceiverTags;
using test::MeshdInProcess;
using test::RawNeighbour;
using test::wait_until;

template <class T>
std::vector<T> only(const std::vector<Action>& actions) {
  std::vector<T> out;
  for (const Action& action : actions) {
    if (const T* a = std::get_if<T>(&action)) out.push_back(*a);
  }
  return out;
}

TEST(Ed25519Key, SignsWhatItsPublicKeyVerifiesAndNothingElse) {
  const Ed25519Key key;
  const Ed25519Key other;
  ASSERT_EQ(key.public_key().size(), kPublicKeyBytes);
  const std::string message = broadcast_signing_bytes("g", 7, 1, "hello");
  const std::string signature = key.sign(message);
  ASSERT_EQ(signature.size(), kSignatureBytes);
  EXPECT_TRUE(ed25519_verify(key.public_key(), message, signature));
  EXPECT_FALSE(ed25519_verify(other.public_key(), message, signature));
  EXPECT_FALSE(ed25519_verify(key.public_key(), broadcast_signing_bytes("g", 7, 1, "hellO"),
                              signature));
  EXPECT_FALSE(ed25519_verify(key.public_key(), message, signature.substr(1)));
  // A seed gives the same key every time (the application may keep one).
  const std::string seed(32, '\x01');
  EXPECT_EQ(Ed25519Key(seed).public_key(), Ed25519Key(seed).public_key());
  EXPECT_THROW(Ed25519Key(std::string(31, 'x')), std::invalid_argument);
}

TEST(BroadcastSigningBytes, AreTheDocumentedLayout) {
  const std::string bytes = broadcast_signing_bytes("ab", 0x01020304, 5, "xyz");
  const std::string expected = std::string("p2pmesh broadcast v1\0", 21) +
                               std::string("\0\0\0\2ab", 6) + std::string("\1\2\3\4", 4) +
                               std::string("\0\0\0\0\0\0\0\5", 8) +
                               std::string("\0\0\0\3xyz", 7);
  EXPECT_EQ(bytes, expected);
  // Every part counts: group, source, seq.
  EXPECT_NE(broadcast_signing_bytes("a", 1, 1, ""), broadcast_signing_bytes("b", 1, 1, ""));
  EXPECT_NE(broadcast_signing_bytes("a", 1, 1, ""), broadcast_signing_bytes("a", 2, 1, ""));
  EXPECT_NE(broadcast_signing_bytes("a", 1, 1, ""), broadcast_signing_bytes("a", 1, 2, ""));
}

TEST(ReceiverTagLayout, EntriesAreTheReceiverIdBigEndianThenItsTag) {
  std::string tags;
  append_receiver_tag(tags, 0x01020304, std::string(kReceiverTagBytes, 'a'));
  append_receiver_tag(tags, 7, std::string(kReceiverTagBytes, 'b'));
  EXPECT_EQ(tags, std::string("\1\2\3\4", 4) + std::string(16, 'a') + std::string("\0\0\0\7", 4) +
                      std::string(16, 'b'));
  EXPECT_EQ(find_receiver_tag(tags, 7), std::string(16, 'b'));
  EXPECT_EQ(find_receiver_tag(tags, 0x01020304), std::string(16, 'a'));
  EXPECT_EQ(find_receiver_tag(tags, 8), "");
  // Not a whole number of entries, or more than a packet may carry: none
  // is trusted (a relay's padding costs no scan).
  EXPECT_EQ(find_receiver_tag(tags + "x", 7), "");
  std::string many;
  for (PeerId id = 1; id <= kMaxReceiverTagEntries + 1; ++id) {
    append_receiver_tag(many, id, std::string(kReceiverTagBytes, 'c'));
  }
  EXPECT_EQ(find_receiver_tag(many, 1), "");
  EXPECT_EQ(find_receiver_tag(many.substr(kReceiverTagEntryBytes), 2), std::string(16, 'c'));
}

TEST(Ed25519Key, SharesOneKeyPerPairTheSameFromEitherSide) {
  const Ed25519Key a, b, c;
  const std::string ab = a.shared_key(b.public_key());
  EXPECT_EQ(ab.size(), 32u);
  EXPECT_EQ(ab, b.shared_key(a.public_key()));
  EXPECT_NE(ab, a.shared_key(c.public_key()));
  EXPECT_NE(ab, c.shared_key(b.public_key()));
  // Not a usable point: no key (so no tags), never a key anyone can guess.
  EXPECT_EQ(a.shared_key(std::string(32, '\0')), "");
  EXPECT_EQ(a.shared_key("short"), "");
}

TEST(ReceiverTags, AMembersTagChecksOnlyForItWithItsSourcesKeyAndTheSameMessage) {
  const Ed25519Key source, member, other;
  ReceiverTags source_tags(source), member_tags(member), other_tags(other);
  const std::string message = broadcast_signing_bytes("g", 1, 1, "hello");
  const std::string tags = source_tags.tag(
      message, {{2, member.public_key()}, {3, other.public_key()}, {4, std::string(32, '\0')}});
  ASSERT_EQ(tags.size(), 2 * kReceiverTagEntryBytes) << "no entry for an unusable key";
  const std::string_view mine = find_receiver_tag(tags, 2);
  EXPECT_TRUE(member_tags.check(source.public_key(), message, mine));
  EXPECT_TRUE(other_tags.check(source.public_key(), message, find_receiver_tag(tags, 3)));
  EXPECT_FALSE(other_tags.check(source.public_key(), message, mine)) << "another member's tag";
  EXPECT_FALSE(member_tags.check(other.public_key(), message, mine)) << "another source";
  EXPECT_FALSE(member_tags.check(source.public_key(), broadcast_signing_bytes("g", 1, 2, "hello"),
                                 mine))
      << "another message";
  EXPECT_FALSE(member_tags.check(source.public_key(), message, mine.substr(1))) << "short";
  EXPECT_TRUE(source_tags.tag(message, {}).empty());
}

// One MeshNode (id 50) driven by hand, its signing and checking done by a
// driver-like loop with real keys; neighbours 60 (honest source) and 70
// (a forger) over open links.
class SignedNodeTest : public ::testing::Test {
 protected:
  static constexpr PeerId kSelf = 50;
  static constexpr PeerId kHonest = 60;
  static constexpr PeerId kForger = 70;
  static constexpr PeerId kReference = 80;

  explicit SignedNodeTest(bool require = true) : node_(config(require)) {}

  MeshConfig config(bool require) const {
    MeshConfig c;
    c.group = "g";
    c.public_key = own_.public_key();
    c.require_signatures = require;
    return c;
  }

  void SetUp() override {
    node_.on_welcome(now_, kSelf);
    run();
    hear_status(kSelf, own_.public_key());
    hear_status(kHonest, honest_.public_key());
    hear_status(kForger, forger_.public_key());
    hear_status(kReference, "", /*version=*/0);
    honest_link_ = open_link(kHonest);
    forger_link_ = open_link(kForger);
    reference_link_ = open_link(kReference);
    delivered_.clear();
  }

  void hear_status(PeerId source, std::string key, std::uint32_t version = 2) {
    wire::MeshUpdate update;
    update.source = source;
    update.kind = wire::MeshUpdate::Kind::status;
    update.status.id = ++status_ids_[source];
    update.status.version = version;
    update.status.public_key = std::move(key);
    node_.on_topic_message(now_, "g.mesh", source, wire::encode(update));
    run();
  }
  // The node dials the members it hears of (its target is 4 links).
  LinkId open_link(PeerId peer) {
    EXPECT_TRUE(dialled_.count(peer)) << peer;
    const LinkId link = dialled_[peer];
    node_.on_link_open(now_, link);
    run();
    return link;
  }
  // The driver's part (as the native Peer's): signs and tags, checks tags
  // or else signatures, collects deliveries and sends.
  void run() {
    for (auto actions = node_.take_actions(); !actions.empty(); actions = node_.take_actions()) {
      for (Action& action : actions) {
        if (auto* sign = std::get_if<SignBroadcast>(&action)) {
          if (hold_signatures_) {
            held_.push_back(*sign);
          } else {
            node_.on_broadcast_signed(now_, sign->id, own_.sign(sign->message),
                                      own_tags_.tag(sign->message, sign->receivers));
          }
        } else if (auto* check = std::get_if<VerifySignature>(&action)) {
          if (!check->receiver_tag.empty() &&
              own_tags_.check(check->public_key, check->message, check->receiver_tag)) {
            ++tag_checks_;
            node_.on_signature_checked(now_, check->ticket, true);
            continue;
          }
          ++checks_;
          node_.on_signature_checked(
              now_, check->ticket, ed25519_verify(check->public_key, check->message, check->signature));
        } else if (auto* deliver = std::get_if<Deliver>(&action)) {
          delivered_.push_back(*deliver);
        } else if (auto* send = std::get_if<SendOnLink>(&action)) {
          sent_.push_back(*send);
        } else if (auto* open = std::get_if<OpenLink>(&action)) {
          dialled_[open->peer] = open->link;
        }
      }
    }
  }
  // A packet of `source` as it reaches us from `via` (its route: source ->
  // via -> us, or source -> us when via is the source).
  wire::Packet packet(PeerId source, PeerId via, std::uint64_t seq, std::string payload) const {
    wire::Packet p;
    p.source = source;
    p.seq = seq;
    p.payload = std::move(payload);
    if (via == source) {
      p.edges = {{source, kSelf}};
    } else {
      p.edges = {{source, via}, {via, kSelf}};
    }
    return p;
  }
  void receive(LinkId link, const wire::Packet& p) {
    node_.on_link_data(now_, link, wire::encode(p));
    run();
  }
  // The honest source's first message, signed, reaches us from `via`: it
  // is delivered, verified.
  void receive_honest_hello(PeerId via, LinkId link) {
    wire::Packet p = packet(kHonest, via, 1, "hello");
    p.signature = sign(honest_, p);
    receive(link, p);
    ASSERT_EQ(delivered_.size(), 1u);
    EXPECT_EQ(delivered_[0].payload, "hello");
    EXPECT_TRUE(delivered_[0].verified);
  }
  std::string sign(const Ed25519Key& key, const wire::Packet& p) const {
    return key.sign(broadcast_signing_bytes("g", p.source, p.seq, p.payload));
  }
  // Packet.receiver_tags `key`'s holder makes of `p` for us.
  std::string tag_for_us(const Ed25519Key& key, const wire::Packet& p) const {
    ReceiverTags tags(key);
    return tags.tag(broadcast_signing_bytes("g", p.source, p.seq, p.payload),
                    {{kSelf, own_.public_key()}});
  }

  TimeUs now_ = 1 * kSecond;
  Ed25519Key own_;
  Ed25519Key honest_;
  Ed25519Key forger_;
  ReceiverTags own_tags_{own_};
  MeshNode node_;
  std::map<PeerId, std::uint32_t> status_ids_;
  std::map<PeerId, LinkId> dialled_;
  LinkId honest_link_ = 0;
  LinkId forger_link_ = 0;
  LinkId reference_link_ = 0;
  bool hold_signatures_ = false;
  std::vector<SignBroadcast> held_;
  std::vector<Deliver> delivered_;
  std::vector<SendOnLink> sent_;
  int checks_ = 0;      // Ed25519 checks
  int tag_checks_ = 0;  // receiver tags that checked out
};

TEST_F(SignedNodeTest, ARelayedPacketIsCheckedAndDeliveredVerified) {
  receive_honest_hello(kForger, forger_link_);  // kForger relays honestly here
  EXPECT_EQ(checks_, 1);
  EXPECT_EQ(node_.counters().signatures_checked, 1u);
  EXPECT_EQ(node_.counters().signatures_from_source, 0u);
}

TEST_F(SignedNodeTest, APacketStraightFromItsSourceIsDeliveredVerifiedWithoutACheck) {
  // Its link is the source's own (meshd-stamped signaling, DTLS): the
  // signature could only repeat what the link already proves.
  receive_honest_hello(kHonest, honest_link_);
  EXPECT_EQ(checks_, 0);
  EXPECT_EQ(node_.counters().signatures_from_source, 1u);
  // Still signed or dropped: a source with a key signs everything.
  receive(honest_link_, packet(kHonest, kHonest, 2, "unsigned"));
  EXPECT_EQ(delivered_.size(), 1u);
  EXPECT_EQ(node_.counters().unsigned_dropped, 1u);
}

TEST_F(SignedNodeTest, AForgedPacketInAnotherSourcesNameIsDroppedAndTheGenuineOneStillComes) {
  // The forger takes the honest source's next seq, with its own signature,
  // then with none, then with the honest source's signature of another message.
  wire::Packet forged = packet(kHonest, kForger, 1, "evil");
  forged.signature = sign(forger_, forged);
  receive(forger_link_, forged);
  wire::Packet unsigned_forgery = packet(kHonest, kForger, 1, "evil, unsigned");
  receive(forger_link_, unsigned_forgery);
  wire::Packet genuine = packet(kHonest, kHonest, 1, "genuine");
  genuine.signature = sign(honest_, genuine);
  wire::Packet replayed = packet(kHonest, kForger, 1, "evil, replayed signature");
  replayed.signature = genuine.signature;
  receive(forger_link_, replayed);
  EXPECT_TRUE(delivered_.empty());
  EXPECT_EQ(node_.counters().bad_signatures, 2u);
  EXPECT_EQ(node_.counters().unsigned_dropped, 1u);

  receive(honest_link_, genuine);
  ASSERT_EQ(delivered_.size(), 1u) << "the forgeries did not hide the genuine message";
  EXPECT_EQ(delivered_[0].payload, "genuine");
  EXPECT_EQ(delivered_[0].seq, 1u);
  EXPECT_TRUE(delivered_[0].verified);
  EXPECT_EQ(node_.counters().duplicate_packets, 0u);
  EXPECT_EQ(node_.counters().delivered, 1u);
}

TEST_F(SignedNodeTest, UnsignedPacketsAndSourcesWithoutAKeyAreDroppedUnderThePolicy) {
  receive(honest_link_, packet(kHonest, kHonest, 1, "unsigned"));
  wire::Packet reference = packet(kReference, kReference, 0, "reference");
  receive(reference_link_, reference);
  wire::Packet short_signature = packet(kHonest, kHonest, 1, "short");
  short_signature.signature = "xyz";
  receive(honest_link_, short_signature);
  EXPECT_TRUE(delivered_.empty());
  EXPECT_EQ(node_.counters().unsigned_dropped, 2u);
  EXPECT_EQ(node_.counters().bad_signatures, 1u);
  EXPECT_EQ(checks_, 0) << "decided without crypto";
  EXPECT_TRUE(node_.requires_signatures());
}

TEST_F(SignedNodeTest, OurBroadcastsLeaveSignedInSeqOrderWhateverOrderTheSignaturesComeIn) {
  hold_signatures_ = true;
  sent_.clear();
  const std::uint64_t first = node_.broadcast(now_, "one");
  const std::uint64_t second = node_.broadcast(now_, "two");
  run();
  ASSERT_EQ(held_.size(), 2u);
  EXPECT_EQ(held_[0].seq, first);
  EXPECT_EQ(held_[1].seq, second);
  EXPECT_TRUE(sent_.empty()) << "nothing leaves unsigned";
  node_.on_broadcast_signed(now_, held_[1].id, own_.sign(held_[1].message));
  run();
  EXPECT_TRUE(sent_.empty()) << "two waits for one";
  node_.on_broadcast_signed(now_, held_[0].id, own_.sign(held_[0].message));
  run();
  std::vector<std::uint64_t> seqs;
  for (const SendOnLink& send : sent_) {
    wire::Packet p;
    ASSERT_EQ(wire::decode(send.bytes, p), wire::DecodeError::none);
    if (p.payload.empty()) continue;  // announcements
    EXPECT_TRUE(ed25519_verify(own_.public_key(),
                               broadcast_signing_bytes("g", kSelf, p.seq, p.payload), p.signature));
    if (seqs.empty() || seqs.back() != p.seq) seqs.push_back(p.seq);
  }
  EXPECT_EQ(seqs, (std::vector<std::uint64_t>{first, second}));
}

TEST_F(SignedNodeTest, OurBroadcastsAskForTagsForEveryOtherMemberWithAKey) {
  hold_signatures_ = true;
  node_.broadcast(now_, "one");
  run();
  ASSERT_EQ(held_.size(), 1u);
  // The honest member and the forger announced keys; the reference none.
  ASSERT_EQ(held_[0].receivers.size(), 2u);
  EXPECT_EQ(held_[0].receivers[0].peer, kHonest);
  EXPECT_EQ(held_[0].receivers[0].public_key, honest_.public_key());
  EXPECT_EQ(held_[0].receivers[1].peer, kForger);
  EXPECT_EQ(held_[0].receivers[1].public_key, forger_.public_key());

  // Our driver's tags travel in every copy, and each checks out for its member.
  hold_signatures_ = false;
  sent_.clear();
  node_.on_broadcast_signed(now_, held_[0].id, own_.sign(held_[0].message),
                            own_tags_.tag(held_[0].message, held_[0].receivers));
  run();
  int copies = 0;
  for (const SendOnLink& send : sent_) {
    wire::Packet p;
    ASSERT_EQ(wire::decode(send.bytes, p), wire::DecodeError::none);
    if (p.payload.empty()) continue;  // announcements
    ++copies;
    ASSERT_EQ(p.receiver_tags.size(), 2 * kReceiverTagEntryBytes);
    ReceiverTags honest_side(honest_);
    EXPECT_TRUE(honest_side.check(own_.public_key(), held_[0].message,
                                  find_receiver_tag(p.receiver_tags, kHonest)));
    EXPECT_FALSE(honest_side.check(own_.public_key(), held_[0].message,
                                   find_receiver_tag(p.receiver_tags, kForger)));
  }
  EXPECT_GE(copies, 2);
}

TEST_F(SignedNodeTest, AboveMaxReceiverTagsOrWithItZeroBroadcastsCarryNoTags) {
  for (const std::uint32_t max : {0u, 1u}) {
    MeshConfig c = config(true);
    c.max_receiver_tags = max;
    MeshNode node(c);
    node.on_welcome(now_, kSelf);
    for (const auto& [peer, key] : {std::pair{kHonest, &honest_}, std::pair{kForger, &forger_}}) {
      wire::MeshUpdate update;
      update.source = peer;
      update.kind = wire::MeshUpdate::Kind::status;
      update.status.id = 1;
      update.status.version = 2;
      update.status.public_key = key->public_key();
      node.on_topic_message(now_, "g.mesh", peer, wire::encode(update));
    }
    node.take_actions();
    node.broadcast(now_, "one");
    const auto asked = only<SignBroadcast>(node.take_actions());
    ASSERT_EQ(asked.size(), 1u);
    EXPECT_TRUE(asked[0].receivers.empty()) << "max_receiver_tags " << max << ", 2 members";
  }
  MeshConfig c = config(true);
  c.max_receiver_tags = 65;
  EXPECT_NE(c.validate(), "");
}

TEST_F(SignedNodeTest, ARelayedPacketWithOurTagIsCheckedByTheTagAndDeliveredVerified) {
  wire::Packet p = packet(kHonest, kForger, 1, "hello");  // kForger relays honestly here
  p.signature = sign(honest_, p);
  p.receiver_tags = tag_for_us(honest_, p);
  receive(forger_link_, p);
  ASSERT_EQ(delivered_.size(), 1u);
  EXPECT_TRUE(delivered_[0].verified);
  EXPECT_EQ(tag_checks_, 1);
  EXPECT_EQ(checks_, 0) << "no Ed25519 check";
  EXPECT_EQ(node_.counters().signatures_checked, 1u);
}

TEST_F(SignedNodeTest, ARelayCannotPassOffAnAlteredPacketWithTagsItMadeOrKept) {
  // The honest source's tag kept on an altered payload; a tag the forger
  // made for us with its own key; garbage tags. Every copy also carries a
  // signature that does not match, so each falls back to it and is dropped.
  wire::Packet genuine = packet(kHonest, kForger, 1, "genuine");
  genuine.signature = sign(honest_, genuine);
  genuine.receiver_tags = tag_for_us(honest_, genuine);
  wire::Packet altered = genuine;
  altered.payload = "altered";
  receive(forger_link_, altered);
  wire::Packet invented = packet(kHonest, kForger, 1, "invented");
  invented.signature = sign(forger_, invented);
  invented.receiver_tags = tag_for_us(forger_, invented);
  receive(forger_link_, invented);
  wire::Packet garbage = invented;
  garbage.receiver_tags = std::string(kReceiverTagEntryBytes, '\x01');
  append_receiver_tag(garbage.receiver_tags, kSelf, std::string(kReceiverTagBytes, 'x'));
  receive(forger_link_, garbage);
  EXPECT_TRUE(delivered_.empty());
  EXPECT_EQ(tag_checks_, 0);
  EXPECT_EQ(checks_, 3);
  EXPECT_EQ(node_.counters().bad_signatures, 3u);

  receive(forger_link_, genuine);
  ASSERT_EQ(delivered_.size(), 1u) << "the forgeries did not hide the genuine message";
  EXPECT_EQ(delivered_[0].payload, "genuine");
  EXPECT_TRUE(delivered_[0].verified);
  EXPECT_EQ(tag_checks_, 1);
}

class UnsignedGroupTest : public SignedNodeTest {
 protected:
  UnsignedGroupTest() : SignedNodeTest(false) {}
};

TEST_F(UnsignedGroupTest, WithoutThePolicyUnsignedMessagesComeMarkedUnverifiedAndForgeriesStillNot) {
  receive(reference_link_, packet(kReference, kReference, 0, "from a reference peer"));
  ASSERT_EQ(delivered_.size(), 1u);
  EXPECT_FALSE(delivered_[0].verified);
  wire::Packet forged = packet(kHonest, kForger, 1, "evil");
  forged.signature = sign(forger_, forged);
  receive(forger_link_, forged);
  EXPECT_EQ(delivered_.size(), 1u) << "a bad signature is dropped with or without the policy";
  EXPECT_EQ(node_.counters().bad_signatures, 1u);
  receive(forger_link_, packet(kHonest, kForger, 1, "evil, signature stripped"));
  EXPECT_EQ(delivered_.size(), 1u) << "a source that announced a key signs everything";
  EXPECT_EQ(node_.counters().unsigned_dropped, 1u);
  wire::Packet genuine = packet(kHonest, kHonest, 1, "genuine");
  genuine.signature = sign(honest_, genuine);
  receive(honest_link_, genuine);
  ASSERT_EQ(delivered_.size(), 2u);
  EXPECT_TRUE(delivered_[1].verified);
}

TEST_F(UnsignedGroupTest, APeerAdoptsThePolicyAMemberAnnouncesAndAnnouncesIt) {
  EXPECT_FALSE(node_.requires_signatures());
  wire::MeshUpdate update;
  update.source = kHonest;
  update.kind = wire::MeshUpdate::Kind::status;
  update.status.id = 100;
  update.status.version = 2;
  update.status.public_key = honest_.public_key();
  update.status.require_signatures = true;
  node_.on_topic_message(now_, "g.mesh", kHonest, wire::encode(update));
  run();
  EXPECT_TRUE(node_.requires_signatures());
  // Our next status says so, with our key.
  node_.on_tick(now_ + 11 * kSecond);
  bool announced = false;
  for (const Action& action : node_.take_actions()) {
    const auto* publish = std::get_if<Publish>(&action);
    if (!publish || publish->topics.front() != "g.mesh") continue;
    wire::MeshUpdate ours;
    ASSERT_EQ(wire::decode(publish->body, ours), wire::DecodeError::none);
    if (ours.kind != wire::MeshUpdate::Kind::status) continue;
    EXPECT_EQ(ours.status.public_key, own_.public_key());
    announced = ours.status.require_signatures;
  }
  EXPECT_TRUE(announced);
  receive(reference_link_, packet(kReference, kReference, 0, "now dropped"));
  EXPECT_TRUE(delivered_.empty());
  EXPECT_EQ(node_.counters().unsigned_dropped, 1u);
}

// ---- real peers over meshd and WebRTC ----

struct Inbox {
  std::mutex mutex;
  std::vector<ReceivedMessage> messages;
  void add(const ReceivedMessage& m) {
    std::lock_guard lock(mutex);
    messages.push_back(m);
  }
  std::vector<ReceivedMessage> all() {
    std::lock_guard lock(mutex);
    return messages;
  }
};

// The counters that are not 0, as "name=value ..." (for failure messages).
std::string counters_text(const PeerSnapshot::Counters& counters) {
  std::string text;
  for_each_counter(counters, [&](const char* name, std::uint64_t v) {
    if (v != 0) text += std::string(name) + "=" + std::to_string(v) + " ";
  });
  return text;
}

std::unique_ptr<Peer> make_peer(const std::string& url, const std::string& group, Inbox& inbox,
                                bool require) {
  PeerConfig config = test::loopback_config(url, group);
  config.require_signatures = require;
  PeerCallbacks callbacks;
  callbacks.on_received = [&inbox](const ReceivedMessage& m) { inbox.add(m); };
  auto peer = std::make_unique<Peer>(config, callbacks);
  peer->start();
  return peer;
}

TEST(SignedPeers, ANeighbourForgingPacketsOfAnotherSourceIsDroppedAndHonestDeliveryIsWhole) {
  MeshdInProcess meshd;
  Inbox source_inbox;
  Inbox target_inbox;
  auto source = make_peer(meshd.url(), "signed", source_inbox, true);
  ASSERT_TRUE(source->wait_joined(10s));
  auto target = make_peer(meshd.url(), "signed", target_inbox, true);
  ASSERT_TRUE(target->wait_joined(10s));
  ASSERT_TRUE(wait_until([&] { return !target->snapshot().reachable.empty(); }, 10s));
  RawNeighbour forger(meshd.url(), "signed", false);
  forger.offer_to(target->id());
  ASSERT_TRUE(wait_until([&] { return forger.is_open(); }, 10s));

  const PeerId source_id = source->id();
  const PeerId target_id = target->id();
  const Ed25519Key forger_key;
  constexpr int kMessages = 50;
  // First the forgeries, for every seq the source is about to send: signed
  // by the wrong key, unsigned, and then signed by the wrong key with a
  // receiver tag for the target made with that key. They reach the target
  // first. (A forgery that arrives while another copy of its seq awaits its
  // check counts as a duplicate: hence the two rounds.)
  auto forge = [&](int i, bool tagged) {
    wire::Packet fake;
    fake.source = source_id;
    fake.seq = static_cast<std::uint64_t>(i);
    fake.edges = {{source_id, forger.id()}, {forger.id(), target_id}};
    fake.payload = "forged " + std::to_string(i);
    const std::string bytes = broadcast_signing_bytes("signed", source_id, fake.seq, fake.payload);
    fake.signature = forger_key.sign(bytes);
    if (tagged) {
      fake.receiver_tags = ReceiverTags(forger_key).tag(bytes, {{target_id, target->public_key()}});
    }
    return fake;
  };
  for (int i = 1; i <= kMessages; ++i) {
    wire::Packet fake = forge(i, false);
    forger.send(wire::encode(fake));
    fake.signature.clear();
    forger.send(wire::encode(fake));
  }
  ASSERT_TRUE(wait_until(
      [&] {
        const PeerSnapshot::Counters c = target->snapshot().counters;
        return c.bad_signatures == kMessages && c.unsigned_dropped == kMessages;
      },
      10s))
      << counters_text(target->snapshot().counters);
  for (int i = 1; i <= kMessages; ++i) forger.send(wire::encode(forge(i, true)));
  ASSERT_TRUE(wait_until(
      [&] {
        const PeerSnapshot::Counters c = target->snapshot().counters;
        return c.bad_signatures == 2 * kMessages && c.receiver_tags_failed == kMessages;
      },
      10s))
      << counters_text(target->snapshot().counters);
  EXPECT_TRUE(target_inbox.all().empty());
  // Then the genuine messages: none is taken for a repeat of a forgery.
  for (int i = 1; i <= kMessages; ++i) {
    ASSERT_EQ(source->broadcast("genuine " + std::to_string(i)), static_cast<std::uint64_t>(i));
  }
  ASSERT_TRUE(wait_until([&] { return target_inbox.all().size() >= kMessages; }, 20s))
      << target_inbox.all().size() << " messages; target's counters: "
      << counters_text(target->snapshot().counters);
  std::this_thread::sleep_for(300ms);  // anything more would show now
  const auto got = target_inbox.all();
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kMessages));
  for (int i = 0; i < kMessages; ++i) {
    EXPECT_EQ(got[i].source, source_id);
    EXPECT_EQ(got[i].seq, static_cast<std::uint64_t>(i + 1));
    EXPECT_EQ(got[i].bytes, "genuine " + std::to_string(i + 1));
    EXPECT_TRUE(got[i].verified);
  }
  const PeerSnapshot::Counters c = target->snapshot().counters;
  EXPECT_EQ(c.bad_signatures, static_cast<std::uint64_t>(2 * kMessages));
  EXPECT_EQ(c.unsigned_dropped, static_cast<std::uint64_t>(kMessages));
  EXPECT_EQ(c.receiver_tags_checked, 0u);
  EXPECT_EQ(c.duplicate_packets, 0u);
  EXPECT_EQ(c.gaps, 0u);
  EXPECT_EQ(target->public_key().size(), kPublicKeyBytes);
  EXPECT_NE(target->public_key(), source->public_key());
  target->stop();
  source->stop();
}

TEST(SignedPeers, InASmallGroupRelayedMessagesAreCheckedByTheirReceiverTags) {
  MeshdInProcess meshd;
  constexpr int kPeers = 6;
  constexpr int kEach = 5;
  std::vector<std::unique_ptr<Inbox>> inboxes;
  std::vector<std::unique_ptr<Peer>> peers;
  for (int i = 0; i < kPeers; ++i) {
    // At most 3 links of 5 possible: some messages must be relayed.
    PeerConfig config = test::loopback_config(meshd.url(), "tagged");
    config.target_connections = 2;
    config.max_connections = 3;
    inboxes.push_back(std::make_unique<Inbox>());
    PeerCallbacks callbacks;
    callbacks.on_received = [inbox = inboxes.back().get()](const ReceivedMessage& m) { inbox->add(m); };
    peers.push_back(std::make_unique<Peer>(config, callbacks));
    peers.back()->start();
    ASSERT_TRUE(peers.back()->wait_joined(10s));
  }
  std::vector<PeerId> ids;
  for (auto& p : peers) ids.push_back(p->id());
  auto snapshots = [&] {
    std::vector<PeerSnapshot> out;
    for (auto& p : peers) out.push_back(p->snapshot());
    return out;
  };
  ASSERT_TRUE(wait_until([&] { return test::all_trees_complete(snapshots(), ids); }, 15s));
  for (int i = 0; i < kEach; ++i) {
    for (auto& p : peers) ASSERT_NE(p->broadcast("m" + std::to_string(i)), 0u);
  }
  const std::size_t expected = (kPeers - 1) * kEach;
  ASSERT_TRUE(wait_until(
      [&] {
        for (auto& inbox : inboxes) {
          if (inbox->all().size() < expected) return false;
        }
        return true;
      },
      15s));
  std::uint64_t checked = 0, by_tag = 0, tags_failed = 0, from_source = 0;
  for (const PeerSnapshot& s : snapshots()) {
    checked += s.counters.signatures_checked;
    by_tag += s.counters.receiver_tags_checked;
    tags_failed += s.counters.receiver_tags_failed;
    from_source += s.counters.signatures_from_source;
  }
  for (auto& inbox : inboxes) {
    for (const ReceivedMessage& m : inbox->all()) EXPECT_TRUE(m.verified);
  }
  EXPECT_GT(by_tag, 0u) << "no message was relayed";
  EXPECT_EQ(by_tag, checked) << "a relayed message went to an Ed25519 check";
  EXPECT_EQ(tags_failed, 0u);
  EXPECT_EQ(by_tag + from_source, kPeers * expected);
  for (auto& p : peers) p->stop();
}

TEST(SignedPeers, ABadSigningKeyIsAConfigError) {
  PeerConfig config = test::loopback_config("ws://127.0.0.1:1/service", "g");
  config.signing_key = "short";
  EXPECT_THROW(Peer peer(config), std::invalid_argument);
  config.signing_key = std::string(32, '\x07');
  Peer peer(config);
  EXPECT_EQ(peer.public_key(), Ed25519Key(std::string(32, '\x07')).public_key());
}

// ---- meshd --auth-key: the token's pk vouches for a member's key ----

std::string base64url(const std::string& bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  std::uint32_t bits = 0;
  int count = 0;
  for (const char c : bytes) {
    bits = (bits << 8) | static_cast<unsigned char>(c);
    count += 8;
    while (count >= 6) {
      count -= 6;
      out.push_back(kAlphabet[(bits >> count) & 0x3F]);
    }
  }
  if (count > 0) out.push_back(kAlphabet[(bits << (6 - count)) & 0x3F]);
  return out;
}

const std::string kTokenSecret = "signed-broadcast-test-secret-0123456789abcdef";

std::string token_with_pk(const std::string& pk) {
  jwt_t* jwt = nullptr;
  jwt_new(&jwt);
  const std::string claims = R"({"exp":)" + std::to_string(std::time(nullptr) + 300) +
                             R"(,"groups":["vouched"],"pk":")" + pk + "\"}";
  jwt_add_grants_json(jwt, claims.c_str());
  jwt_set_alg(jwt, JWT_ALG_HS256, reinterpret_cast<const unsigned char*>(kTokenSecret.data()),
              static_cast<int>(kTokenSecret.size()));
  char* text = jwt_encode_str(jwt);
  std::string token = text ? text : "";
  std::free(text);
  jwt_free(jwt);
  return token;
}

TEST(TokenVouchedKeys, MembersWhoseKeyTheTokenNamesAreHeardAndOneAnnouncingAnotherIsNot) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("p2pmesh-signed-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "auth.key") << kTokenSecret << "\n";
  test::MeshdProcess meshd({"--auth-key", (dir / "auth.key").string()});
  ASSERT_NE(meshd.port(), 0);

  const std::string seed_a(32, '\x01');
  const std::string seed_b(32, '\x02');
  const std::string pk_a = base64url(Ed25519Key(seed_a).public_key());
  const std::string pk_b = base64url(Ed25519Key(seed_b).public_key());
  // A library peer whose token names its key.
  Inbox inbox_a;
  PeerConfig config_a = test::loopback_config(meshd.url(), "vouched");
  config_a.signing_key = seed_a;
  config_a.token = token_with_pk(pk_a);
  config_a.require_signatures = true;
  PeerCallbacks callbacks_a;
  callbacks_a.on_received = [&inbox_a](const ReceivedMessage& m) { inbox_a.add(m); };
  Peer a(config_a, callbacks_a);
  a.start();
  ASSERT_TRUE(a.wait_joined(10s));
  // mesh-peer with its key from a file and a token naming it.
  std::ofstream(dir / "b.seed") << "0202020202020202020202020202020202020202020202020202020202020202\n";
  std::ofstream(dir / "b.jwt") << token_with_pk(pk_b) << "\n";
  test::Child b({MESH_PEER_BINARY, "--url", meshd.url(), "--group", "vouched", "--loopback",
                 "--stay", "--require-signatures", "--signing-key-file", (dir / "b.seed").string(),
                 "--token-file", (dir / "b.jwt").string()});
  const auto b_said = [&](const std::string& text) {
    for (const std::string& line : b.lines()) {
      if (line.find(text) != std::string::npos) return true;
    }
    return false;
  };
  ASSERT_TRUE(wait_until([&] { return b_said(R"("event":"welcome")"); }, 10s));
  EXPECT_TRUE(b_said(R"("public_key":")" + pk_b + "\"")) << "the welcome line gives the key";
  // A third peer whose token names A's key, not its own: meshd refuses its
  // statuses, so no member learns a key for it and its messages are dropped.
  PeerConfig config_c = test::loopback_config(meshd.url(), "vouched");
  config_c.signing_key = std::string(32, '\x03');
  config_c.token = token_with_pk(pk_a);
  Peer c(config_c);
  c.start();
  ASSERT_TRUE(c.wait_joined(10s));
  ASSERT_TRUE(wait_until([&] { return !a.snapshot().links.empty(); }, 20s));

  ASSERT_TRUE(wait_until(
      [&] {
        b.write_line("from b");
        return !inbox_a.all().empty();
      },
      10s));
  const auto got = inbox_a.all();
  EXPECT_EQ(got.front().bytes, "from b");
  EXPECT_TRUE(got.front().verified);
  a.broadcast("from a");
  EXPECT_TRUE(wait_until([&] { return b_said(R"("verified":true,"data":"from a")"); }, 10s));
  ASSERT_TRUE(wait_until(
      [&] {
        c.broadcast("from the one with another's key");
        return a.snapshot().counters.unsigned_dropped >= 1;
      },
      10s));
  for (const auto& m : inbox_a.all()) EXPECT_NE(m.bytes, "from the one with another's key");
  c.stop();
  a.stop();
  b.terminate(5s);
  std::error_code ignored;
  fs::remove_all(dir, ignored);
}

}  // namespace
}  // namespace p2pmesh
