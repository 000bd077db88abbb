#pragma once
// Reliable delivery order: each source's messages reach the application in
// the order sent (by seq), exactly once, or an explicit gap where some can
// no longer be repaired. Per source it keeps the next seq due, holds the
// messages that came early (a bounded reorder buffer), knows which ones are
// missing (a hole in the seqs, or a message announced by a neighbour), says
// when to pull them and from whom, and gives up on a hole only when it can
// no longer be repaired: the source says it no longer holds it (`gone`), the
// source left (`forget`), or every copy has aged out of the peers' histories
// (`give_up_after`). A slow copy is not a lost one: an overloaded peer (or a
// throttled browser tab) whose pulls go unanswered for a while still gets
// the message, in order. Sans-IO; MeshNode sends the pulls.
//
// The first seq due from a source is the one its status announced (the
// first status we hear of it: MeshStatus.next_seq); without one, the first
// message we see of it sets it. Messages older than that start that come
// later are delivered as they come (a status may overtake a message still on
// its way; we cannot know how far back to wait), unless the status said the
// source never sent (next seq 1): then all its messages come in order.
//
// Every peer hears every member's status, and in a large group most members
// never send: a source whose status said 1 costs no entry at all. The
// caller knows (Membership) whether a status of the source said its next
// seq; a source we hold nothing for is then awaited from 1, otherwise the
// first message we see of it sets the start.

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "clock.hpp"
#include "peer_id.hpp"
#include "peer_slot_index.hpp"

namespace p2pmesh {

// What the application gets next, in order: a message, or a gap
// [seq, to_seq] of messages that will never come.
struct OrderedEvent {
  enum class Kind : std::uint8_t { message, gap };
  Kind kind = Kind::message;
  PeerId source = kNoPeer;
  std::uint64_t seq = 0;
  std::uint64_t to_seq = 0;  // gap only
  std::string payload;       // message only
};

// A request to pull missing messages of one source.
struct PullRequest {
  PeerId source = kNoPeer;
  std::vector<std::uint64_t> seqs;  // oldest first, at most kMaxSeqsPerPull
  std::uint32_t attempt = 0;        // 1 for the first pull of these holes
  std::vector<PeerId> holders;      // neighbours known to have some of them
};

struct DeliveryOrderLimits {
  TimeUs pull_delay = 0;     // from learning of a hole to the first pull
  TimeUs pull_interval = 0;  // between the first pulls of the same hole, doubling
  TimeUs max_pull_interval = 0;  // ... up to this
  // A hole this old is a gap: no peer holds a copy any longer (the history
  // age; the source remembered the message before we could learn of it).
  TimeUs give_up_after = 0;
  std::size_t max_held_per_source = 256;
  std::size_t max_held_bytes = 4u << 20;  // all sources together
  // A seq this far past the next due one is not believed (a forged or
  // corrupt packet would otherwise make us wait for billions of messages);
  // only when a source keeps jumping (kJumpsToBelieve in a row) is it.
  std::uint64_t max_seq_jump = 1024;
};

class DeliveryOrder {
 public:
  static constexpr std::size_t kMaxSeqsPerPull = 32;
  static constexpr std::size_t kMaxHolders = 4;
  static constexpr std::uint32_t kJumpsToBelieve = 3;

  enum class Outcome : std::uint8_t {
    delivered,   // the message (and maybe held ones after it) is in `out`
    held,        // waits for older ones
    late,        // older than the next due: delivered before or reported as a gap
    jump,        // seq implausibly far ahead: dropped (see max_seq_jump)
  };

  explicit DeliveryOrder(DeliveryOrderLimits limits) : limits_(limits) {}

  // The next message of `source` is `next_seq` (its status said so). In the
  // first status of the source that says it (`first`), where we start
  // waiting; in a later one, every seq below it exists: a tail the tree lost
  // (the last messages before the source fell silent) becomes a hole to
  // pull. False when implausible (see max_seq_jump).
  bool status_said(TimeUs now, PeerId source, std::uint64_t next_seq, bool first);
  // A message seen for the first time (the duplicate filter passed it),
  // received from `via`. `said_next_seq`: a status of the source said its
  // next seq. Appends to `out` what the application gets now.
  Outcome accept(TimeUs now, PeerId source, std::uint64_t seq, std::string payload, PeerId via,
                 bool said_next_seq, std::vector<OrderedEvent>& out);
  // A neighbour (`holder`) has (source, seq). False when it is implausible.
  bool announce(TimeUs now, PeerId source, std::uint64_t seq, PeerId holder, bool said_next_seq);
  // The source no longer holds `seq` (nor, as its history drops the oldest
  // first, anything older): the holes up to it become a gap now.
  void gone(TimeUs now, PeerId source, std::uint64_t seq, std::vector<OrderedEvent>& out);
  // The source itself says its last message so far is `last` (0: none): seqs
  // above it that we only heard announced do not exist (yet), so they are no
  // hole (a forged announcement would otherwise hold its later messages).
  void source_sent_up_to(TimeUs now, PeerId source, std::uint64_t last);
  // Pulls due now, and gaps for holes past give_up_after (into `out`).
  void poll(TimeUs now, std::vector<PullRequest>& pulls, std::vector<OrderedEvent>& out);
  // The source left for good: its holes become gaps now, its state goes.
  void forget(PeerId source, std::vector<OrderedEvent>& out);

  // Where the application stands with each source it got messages of: the
  // next seq owed (everything below was delivered or reported as a gap).
  std::vector<std::pair<PeerId, std::uint64_t>> positions() const;
  // The same application on a new connection (a new peer id, a fresh
  // order): `source` resumes at `next`, so nothing below it is delivered
  // again, and what the source sent meanwhile is pulled once its status
  // says so. Before anything else is known of the source.
  void resume(PeerId source, std::uint64_t next);

  // Whether the source has an entry: something received or announced, or a
  // start other than 1 said.
  bool tracks(PeerId source) const;
  bool missing(PeerId source, std::uint64_t seq) const;
  TimeUs next_deadline() const;
  std::size_t sources() const { return sources_.size() + awaited_.size(); }
  std::size_t held_bytes() const { return held_bytes_; }
  std::size_t held_messages() const;

 private:
  // What a source needs only once messages of it reach us: held ones, the
  // neighbours that announced some, the pull timer of a hole. Every member
  // whose status we heard is tracked, and most never send: their entry
  // stays small (every peer tracks the whole group; mesh-sim holds 10,000
  // peers' entries for 10,000 sources).
  struct Pending {
    std::map<std::uint64_t, std::string> held;
    std::vector<PeerId> holders;
    TimeUs next_pull_at = kNever;  // kNever: no hole
    TimeUs hole_since = 0;         // when the oldest hole (hole_at) was noticed
    std::uint64_t hole_at = 0;     // the oldest hole's seq: the pulls count for it
    std::uint32_t pulls = 0;
  };
  struct Source {
    PeerId id = kNoPeer;
    std::uint32_t jumps : 31 = 0;  // implausible seqs in a row (at most kJumpsToBelieve)
    // Set by the first message seen, not a status. (A bit beside jumps:
    // the entry stays 40 bytes.)
    std::uint32_t baseline_guessed : 1 = 1;
    std::uint64_t next = 1;      // next seq due to the application
    std::uint64_t baseline = 0;  // seqs below it predate what we wait for
    std::uint64_t highest_known = 0;  // highest seq received or announced
    std::unique_ptr<Pending> pending;  // null: nothing held, no holder, no hole
    Pending& busy() {
      if (!pending) pending = std::make_unique<Pending>();
      return *pending;
    }
    bool holds(std::uint64_t seq) const { return pending && pending->held.count(seq); }
  };
  // A source known only from its status, which said a next seq above 1, or
  // a reconnect's resume: nothing of it has reached us, no hole. Its state
  // is where its messages start (next = baseline, highest_known = next - 1),
  // in 16 bytes.
  struct Awaited {
    PeerId id = kNoPeer;
    std::uint32_t baseline_guessed = 1;
    std::uint64_t next = 1;
  };
  // The source's entry, or null. Valid until a source is started or forgotten.
  Source* find(PeerId source);
  const Source* find(PeerId source) const;
  // The source's entry, made if need be: from its Awaited one (the same
  // state), or from 1 when its status said its next seq, or from
  // `first_seen` (the seq that makes the entry, a guessed start).
  Source& entry(PeerId source, std::uint64_t first_seen, bool said_next_seq);
  void await(PeerId source, bool guessed, std::uint64_t next);
  Source& start(PeerId source, std::uint64_t first_due);
  bool has_hole(const Source& s) const { return s.highest_known >= s.next; }
  void note_holder(Source& s, PeerId holder);
  // Delivers held messages that are now due; starts or stops the pull timer.
  void release(TimeUs now, PeerId source, Source& s, std::vector<OrderedEvent>& out);
  // Gives up on every hole up to `through`, delivering held ones between.
  void give_up(TimeUs now, PeerId source, Source& s, std::uint64_t through,
               std::vector<OrderedEvent>& out);
  void hole_changed(TimeUs now, PeerId source, Source& s);

  DeliveryOrderLimits limits_;
  // Sources in a flat table (an unordered_map node per source cost ~150
  // bytes with the reorder state inline), found by id through the index.
  PeerSlotIndex index_;
  std::vector<Source> sources_;
  PeerSlotIndex awaited_index_;
  std::vector<Awaited> awaited_;
  std::vector<PeerId> with_holes_;  // sources whose pull timer runs (few)
  std::size_t held_bytes_ = 0;
};

}  // namespace p2pmesh
