#pragma once
// One WebRTC connection with one data channel `data` (reliable, ordered),
// and a second one, `unreliable` (unordered, no retransmission), opened by
// either side on first use,
// built on the process-wide libwebrtc engine. This header hides libwebrtc:
// only rtc_link.cpp includes its headers.
//
// Threads: create/accept/apply_answer/add_candidate/send/close are called
// from the owner's loop thread. LinkEvents are invoked on libwebrtc threads;
// the owner hands them to its loop (see LoopPoster in peer_impl.hpp).

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ice.hpp"

namespace p2pmesh::native {

struct LinkEvents {
  std::function<void(std::string description_json)> local_description;
  std::function<void(std::string candidate_json)> local_candidate;
  std::function<void()> open;
  // The link failed or closed (ICE/DTLS failure, data channel closed, bad
  // remote SDP...). `reason` is for logs.
  std::function<void(std::string reason)> closed;
  std::function<void(std::string bytes)> data;
  std::function<void()> writable;  // the send buffer drained below the low mark
  std::function<void(std::uint32_t rtt_us)> rtt;
  // The selected candidate pair changed (ICE picked or switched paths).
  std::function<void(CandidateType type)> path;
  // A TURN server refused a relay allocation or did not answer (e.g.
  // expired credentials, 401); `reason` is for logs.
  std::function<void(std::string reason)> relay_failed;
};

struct RtcOptions {
  bool loopback_only = false;
  std::vector<IceServer> ice_servers;
};

class RtcEngine;  // the shared PeerConnectionFactory and its threads

// The process-wide engine for these options (one per distinct loopback_only
// setting, created on first use, kept while any link or Peer holds it).
std::shared_ptr<RtcEngine> rtc_engine(bool loopback_only);
// Runs every task queued on the engine's signaling thread (used at shutdown so
// closed connections are released before the caller goes on).
void rtc_engine_flush(RtcEngine& engine);

class RtcLink {
 public:
  // Initiator: creates the data channel and an offer (reported through
  // events.local_description).
  static std::unique_ptr<RtcLink> open(std::shared_ptr<RtcEngine> engine,
                                       const RtcOptions& options, LinkEvents events);
  // Answerer: applies `offer_json` ({"type":"offer","sdp":...}; media
  // sections other than the data channel are rejected) and answers it.
  static std::unique_ptr<RtcLink> accept(std::shared_ptr<RtcEngine> engine,
                                         const RtcOptions& options, std::string_view offer_json,
                                         LinkEvents events);
  ~RtcLink();  // close()
  RtcLink(const RtcLink&) = delete;
  RtcLink& operator=(const RtcLink&) = delete;

  // {"type":"answer","sdp":...}
  void apply_answer(std::string_view answer_json);
  // RTCIceCandidateInit JSON; queued until the remote description is set.
  void add_candidate(std::string_view candidate_json);
  // Sends one binary message. False if the channel is not open.
  bool send(std::string_view bytes);
  // Sends one binary message on the `unreliable` channel. not_open: it is
  // not open (yet): the first call opens it; send on the first channel
  // meanwhile. congested: its buffer is full (link_send_policy.hpp): dropped.
  enum class UnreliableSend : std::uint8_t { sent, not_open, congested };
  UnreliableSend send_unreliable(std::string_view bytes);
  // Whether an `unreliable` channel (ours or the far end's) is open.
  bool unreliable_open() const;
  // Bytes queued inside libwebrtc (blocking hop to its thread).
  std::uint64_t buffered_amount() const;
  // Asks for the selected candidate pair's RTT and path (reported through
  // events.rtt and events.path).
  void request_stats();
  // Closes; no event is delivered after it returns. Idempotent.
  void close();

  struct State;

 private:
  explicit RtcLink(std::shared_ptr<RtcEngine> engine);
  std::shared_ptr<RtcEngine> engine_;
  std::shared_ptr<State> state_;
};

// SDP helpers (exposed for tests).
// Sets the port of every m= section that is not m=application to 0
// (rejected), leaving the data channel section alone.
std::string reject_media_sections(std::string_view sdp);

}  // namespace p2pmesh::native
