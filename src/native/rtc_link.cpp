// libwebrtc (Debian libtgowt-dev) behind RtcLink. See shared/NOTES-webrtc.md
// for the facts this relies on: DCHECK_ALWAYS_ON layouts, loopback needs a
// network manager of our own, candidates queued until the remote description
// is set, offers with an audio section need a (stub) media engine.
#include "rtc_link.hpp"

#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

#include <boost/json.hpp>

#include "api/call/call_factory_interface.h"
#include "api/create_peerconnection_factory.h"
#include "api/jsep.h"
#include "api/peer_connection_interface.h"
#include "api/rtc_event_log/rtc_event_log_factory.h"
#include "api/stats/rtc_stats_collector_callback.h"
#include "api/stats/rtcstats_objects.h"
#include "api/task_queue/default_task_queue_factory.h"
#include "media/base/media_engine.h"
#include "media/engine/null_webrtc_video_engine.h"
#include "pc/peer_connection_factory_proxy.h"
#include "rtc_base/fake_network.h"
#include "rtc_base/logging.h"
#include "rtc_base/ssl_adapter.h"
#include "rtc_base/thread.h"

#include "link_send_policy.hpp"

static_assert(RTC_DCHECK_IS_ON, "define DCHECK_ALWAYS_ON for every TU including libwebrtc headers");

namespace p2pmesh::native {

namespace json = boost::json;

namespace {

// A voice engine with no codecs and no channels: lets the factory answer an
// offer with an audio section (which we reject) without the full audio stack.
class StubVoiceEngine final : public cricket::VoiceEngineInterface {
 public:
  void Init() override {}
  rtc::scoped_refptr<webrtc::AudioState> GetAudioState() const override { return nullptr; }
  cricket::VoiceMediaChannel* CreateMediaChannel(webrtc::Call*, const cricket::MediaConfig&,
                                                 const cricket::AudioOptions&,
                                                 const webrtc::CryptoOptions&) override {
    return nullptr;
  }
  const std::vector<cricket::AudioCodec>& send_codecs() const override { return codecs_; }
  const std::vector<cricket::AudioCodec>& recv_codecs() const override { return codecs_; }
  bool StartAecDump(webrtc::FileWrapper, int64_t) override { return false; }
  void StopAecDump() override {}
  std::vector<webrtc::RtpHeaderExtensionCapability> GetRtpHeaderExtensions() const override {
    return {};
  }

 private:
  std::vector<cricket::AudioCodec> codecs_;
};

rtc::LoggingSeverity log_severity_from_env() {
  const char* level = std::getenv("P2PMESH_WEBRTC_LOG");
  if (!level) return rtc::LS_NONE;
  const std::string value(level);
  if (value == "verbose") return rtc::LS_VERBOSE;
  if (value == "info") return rtc::LS_INFO;
  if (value == "warning") return rtc::LS_WARNING;
  if (value == "error") return rtc::LS_ERROR;
  return rtc::LS_NONE;
}

std::string description_json(const webrtc::SessionDescriptionInterface& desc) {
  std::string sdp;
  desc.ToString(&sdp);
  json::object object;
  object["type"] = webrtc::SdpTypeToString(desc.GetType());
  object["sdp"] = sdp;
  return json::serialize(object);
}

// Parses {"type":..,"sdp":..}; empty sdp on error.
std::pair<std::string, std::string> parse_description(std::string_view text) {
  boost::system::error_code ec;
  const json::value value = json::parse(text, ec);
  if (ec || !value.is_object()) return {};
  const auto& object = value.as_object();
  const auto* type = object.if_contains("type");
  const auto* sdp = object.if_contains("sdp");
  if (!type || !sdp || !type->is_string() || !sdp->is_string()) return {};
  return {std::string(type->as_string()), std::string(sdp->as_string())};
}

}  // namespace

// ---------------------------------------------------------------- engine

class RtcEngine {
 public:
  explicit RtcEngine(bool loopback_only) {
    static std::once_flag once;
    std::call_once(once, [] {
      rtc::LogMessage::LogToDebug(log_severity_from_env());
      rtc::InitializeSSL();
    });
    network = rtc::Thread::CreateWithSocketServer();
    network->SetName("p2pmesh-net", nullptr);
    network->Start();
    worker = rtc::Thread::Create();
    worker->SetName("p2pmesh-work", nullptr);
    worker->Start();
    signaling = rtc::Thread::Create();
    signaling->SetName("p2pmesh-sig", nullptr);
    signaling->Start();

    webrtc::PeerConnectionFactoryDependencies deps;
    deps.network_thread = network.get();
    deps.worker_thread = worker.get();
    deps.signaling_thread = signaling.get();
    deps.task_queue_factory = webrtc::CreateDefaultTaskQueueFactory();
    deps.call_factory = webrtc::CreateCallFactory();
    deps.event_log_factory =
        std::make_unique<webrtc::RtcEventLogFactory>(deps.task_queue_factory.get());
    deps.media_engine = std::make_unique<cricket::CompositeMediaEngine>(
        std::make_unique<StubVoiceEngine>(), std::make_unique<cricket::NullWebRtcVideoEngine>());
    if (loopback_only) {
      auto manager = std::make_unique<rtc::FakeNetworkManager>();
      manager->AddInterface(rtc::SocketAddress("127.0.0.1", 0), "lo",
                            rtc::ADAPTER_TYPE_UNKNOWN);
      deps.network_manager = std::move(manager);
    }
    factory = webrtc::CreateModularPeerConnectionFactory(std::move(deps));
    if (!factory) throw std::runtime_error("libwebrtc: cannot create the PeerConnectionFactory");
    webrtc::PeerConnectionFactoryInterface::Options options;
    if (loopback_only) options.network_ignore_mask = 0;
    factory->SetOptions(options);
  }

  ~RtcEngine() {
    factory = nullptr;
    signaling->Stop();
    worker->Stop();
    network->Stop();
  }

  std::unique_ptr<rtc::Thread> network;
  std::unique_ptr<rtc::Thread> worker;
  std::unique_ptr<rtc::Thread> signaling;
  rtc::scoped_refptr<webrtc::PeerConnectionFactoryInterface> factory;
};

std::shared_ptr<RtcEngine> rtc_engine(bool loopback_only) {
  static std::mutex mutex;
  static std::map<bool, std::weak_ptr<RtcEngine>> engines;
  std::lock_guard lock(mutex);
  if (auto engine = engines[loopback_only].lock()) return engine;
  auto engine = std::make_shared<RtcEngine>(loopback_only);
  engines[loopback_only] = engine;
  return engine;
}

void rtc_engine_flush(RtcEngine& engine) {
  engine.signaling->BlockingCall([] {});
}

// ---------------------------------------------------------------- link state

class DataChannelEvents;
class UnreliableChannelEvents;
// Asks for fresh stats (libwebrtc serves a report up to 50 ms old from its
// cache: one taken before ICE chose would hide the choice) and reports the
// selected pair's RTT and path, then the open when `then_open`. On the
// signaling thread or the owner's, while `closed` is false.
void request_stats(const std::shared_ptr<RtcLink::State>& state, bool then_open);

struct RtcLink::State : std::enable_shared_from_this<RtcLink::State> {
  LinkEvents events;
  std::atomic<bool> closed{false};
  bool initiator = false;
  // Owned by RtcLink until close() hands it to the signaling thread; valid
  // (not null) for as long as `closed` is false.
  rtc::scoped_refptr<webrtc::PeerConnectionInterface> pc;
  std::unique_ptr<webrtc::PeerConnectionObserver> pc_observer;
  std::unique_ptr<DataChannelEvents> dc_observer;

  std::mutex mutex;  // guards what follows
  rtc::scoped_refptr<webrtc::DataChannelInterface> dc;
  // The `unreliable` channels: ours and/or the far end's (both may open one
  // at the same time), at most kMaxUnreliableChannels. We send on an open
  // one and read every one.
  struct UnreliableChannel {
    rtc::scoped_refptr<webrtc::DataChannelInterface> dc;
    std::unique_ptr<UnreliableChannelEvents> observer;
  };
  std::vector<UnreliableChannel> unreliable;
  std::uint32_t unreliable_sends = 0;  // owner thread only
  bool remote_set = false;
  std::vector<std::unique_ptr<webrtc::IceCandidateInterface>> pending_candidates;
  bool described = false;  // local description reported
  std::vector<std::string> early_candidates;
  bool open_reported = false;
  std::vector<std::string> early_data;  // before open_reported (see report_data)
  // Types of the candidates signaling announced, by "ip:port": a remote
  // candidate ICE first met as peer-reflexive (its check came before its
  // announcement) keeps that label in the stats; this gives its real type.
  // Bounded: add_candidate keeps at most 64.
  std::map<std::string, CandidateType> announced;
  bool close_reported = false;

  // The channel, for calls into it. Never call into a channel with the
  // mutex held: the call waits for the signaling thread, whose observer
  // callbacks take that mutex (deadlock).
  rtc::scoped_refptr<webrtc::DataChannelInterface> channel() {
    std::lock_guard lock(mutex);
    return dc;
  }

  void report_open() {
    std::vector<std::string> early;
    {
      std::lock_guard lock(mutex);
      if (open_reported || close_reported) return;
      open_reported = true;
      early.swap(early_data);
    }
    if (closed) return;
    events.open();
    for (std::string& bytes : early) events.data(std::move(bytes));
  }
  // A message that arrived while the open waits for the stats (the far side
  // may already send): handed over right after the open, in order.
  void report_data(std::string bytes) {
    {
      std::lock_guard lock(mutex);
      if (!open_reported) {
        early_data.push_back(std::move(bytes));
        return;
      }
    }
    events.data(std::move(bytes));
  }
  void report_closed(std::string reason) {
    {
      std::lock_guard lock(mutex);
      if (close_reported) return;
      close_reported = true;
    }
    if (!closed) events.closed(std::move(reason));
  }
};

class DataChannelEvents final : public webrtc::DataChannelObserver {
 public:
  DataChannelEvents(RtcLink::State* state, webrtc::DataChannelInterface* dc)
      : state_(state), dc_(dc) {}
  void OnStateChange() override {
    if (state_->closed) return;
    switch (dc_->state()) {
      // Open once the path is known, so that "link up" can say which it is.
      case webrtc::DataChannelInterface::kOpen: request_stats(state_->shared_from_this(), true); break;
      case webrtc::DataChannelInterface::kClosing:
      case webrtc::DataChannelInterface::kClosed:
        state_->report_closed("data channel closed");
        break;
      default: break;
    }
  }
  void OnMessage(const webrtc::DataBuffer& buffer) override {
    if (state_->closed) return;
    state_->report_data(std::string(buffer.data.data<char>(), buffer.data.size()));
  }
  void OnBufferedAmountChange(uint64_t /*sent*/) override {
    if (!state_->closed && state_->events.writable) state_->events.writable();
  }

 private:
  RtcLink::State* state_;
  webrtc::DataChannelInterface* dc_;
};

// Messages of an `unreliable` channel go where the first channel's go; its
// state changes do not matter (closed: the first channel carries on).
class UnreliableChannelEvents final : public webrtc::DataChannelObserver {
 public:
  UnreliableChannelEvents(RtcLink::State* state, webrtc::DataChannelInterface* dc)
      : state_(state), dc_(dc) {}
  void OnStateChange() override {
    if (!state_->closed) open = dc_->state() == webrtc::DataChannelInterface::kOpen;
  }
  void OnMessage(const webrtc::DataBuffer& buffer) override {
    if (state_->closed) return;
    state_->report_data(std::string(buffer.data.data<char>(), buffer.data.size()));
  }
  // Kept here so that a send need not ask the channel (a hop to its thread).
  std::atomic<bool> open{false};

 private:
  RtcLink::State* state_;
  webrtc::DataChannelInterface* dc_;
};

namespace {

constexpr std::size_t kMaxUnreliableChannels = 2;  // ours and the far end's
constexpr std::uint32_t kUnreliableSendsPerCheck = 8;
const char* const kUnreliableLabel = "unreliable";

// Reads an `unreliable` channel (ours or the far end's); one beyond the
// bound is closed.
void attach_unreliable(const std::shared_ptr<RtcLink::State>& state,
                       rtc::scoped_refptr<webrtc::DataChannelInterface> dc) {
  UnreliableChannelEvents* observer = nullptr;
  {
    std::lock_guard lock(state->mutex);
    if (state->unreliable.size() < kMaxUnreliableChannels) {
      auto& added = state->unreliable.emplace_back();
      added.dc = dc;
      added.observer = std::make_unique<UnreliableChannelEvents>(state.get(), dc.get());
      observer = added.observer.get();
    }
  }
  if (!observer) {
    dc->Close();
    return;
  }
  dc->RegisterObserver(observer);
  if (dc->state() == webrtc::DataChannelInterface::kOpen) observer->open = true;
}

void attach_channel(const std::shared_ptr<RtcLink::State>& state,
                    rtc::scoped_refptr<webrtc::DataChannelInterface> dc) {
  {
    std::lock_guard lock(state->mutex);
    if (state->dc) return;  // one channel per link
    state->dc = dc;
  }
  state->dc_observer = std::make_unique<DataChannelEvents>(state.get(), dc.get());
  // RegisterObserver hands over the messages that arrived before it, at once;
  // they wait in report_data until the open is reported (after the stats).
  const bool open_before = dc->state() == webrtc::DataChannelInterface::kOpen;
  dc->RegisterObserver(state->dc_observer.get());
  if (open_before || dc->state() == webrtc::DataChannelInterface::kOpen) request_stats(state, true);
}

class PcEvents final : public webrtc::PeerConnectionObserver {
 public:
  explicit PcEvents(std::shared_ptr<RtcLink::State> state) : state_(std::move(state)) {}
  void OnSignalingChange(webrtc::PeerConnectionInterface::SignalingState) override {}
  void OnDataChannel(rtc::scoped_refptr<webrtc::DataChannelInterface> dc) override {
    if (state_->closed) return;
    if (dc->label() == kUnreliableLabel) {
      attach_unreliable(state_, dc);  // the far end opened it: either side may
      return;
    }
    if (state_->initiator) return;
    attach_channel(state_, dc);
  }
  void OnIceGatheringChange(webrtc::PeerConnectionInterface::IceGatheringState) override {}
  void OnIceCandidate(const webrtc::IceCandidateInterface* candidate) override {
    if (state_->closed || !candidate) return;
    std::string line;
    if (!candidate->ToString(&line) || line.empty()) return;
    json::object object;
    object["candidate"] = line;
    object["sdpMid"] = candidate->sdp_mid();
    object["sdpMLineIndex"] = candidate->sdp_mline_index();
    object["usernameFragment"] = candidate->candidate().username();
    std::string text = json::serialize(object);
    {
      std::lock_guard lock(state_->mutex);
      if (!state_->described) {
        state_->early_candidates.push_back(std::move(text));
        return;
      }
    }
    state_->events.local_candidate(std::move(text));
  }
  // The stats say which path ICE chose (see StatsReady); asked again when the
  // channel opens, since a peer-reflexive remote candidate may be announced
  // by signaling in between.
  void OnIceSelectedCandidatePairChanged(const cricket::CandidatePairChangeEvent&) override {
    if (!state_->closed && state_->pc) request_stats(state_, false);
  }
  void OnIceCandidateError(const std::string& address, int port, const std::string& url,
                           int error_code, const std::string& error_text) override {
    // STUN servers fail quietly (the link may still form); a TURN failure
    // means no relay candidates: links behind symmetric NATs will not form.
    if (state_->closed || !url.starts_with("turn")) return;
    state_->events.relay_failed(url + " from " + address + ":" + std::to_string(port) + ": " +
                                std::to_string(error_code) + " " + error_text);
  }
  void OnConnectionChange(webrtc::PeerConnectionInterface::PeerConnectionState s) override {
    using S = webrtc::PeerConnectionInterface::PeerConnectionState;
    if (s == S::kFailed) state_->report_closed("connection failed");
    if (s == S::kClosed) state_->report_closed("connection closed");
  }

 private:
  std::shared_ptr<RtcLink::State> state_;
};

class LocalSet : public webrtc::SetLocalDescriptionObserverInterface {
 public:
  LocalSet(std::shared_ptr<RtcLink::State> state, std::string json_text)
      : state_(std::move(state)), json_(std::move(json_text)) {}
  void OnSetLocalDescriptionComplete(webrtc::RTCError error) override {
    if (state_->closed) return;
    if (!error.ok()) {
      state_->report_closed(std::string("SetLocalDescription: ") + error.message());
      return;
    }
    std::vector<std::string> early;
    {
      std::lock_guard lock(state_->mutex);
      state_->described = true;
      early.swap(state_->early_candidates);
    }
    state_->events.local_description(std::move(json_));
    for (auto& candidate : early) state_->events.local_candidate(std::move(candidate));
  }

 private:
  std::shared_ptr<RtcLink::State> state_;
  std::string json_;
};

class Created : public webrtc::CreateSessionDescriptionObserver {
 public:
  explicit Created(std::shared_ptr<RtcLink::State> state) : state_(std::move(state)) {}
  void OnSuccess(webrtc::SessionDescriptionInterface* raw) override {
    std::unique_ptr<webrtc::SessionDescriptionInterface> desc(raw);
    if (state_->closed) return;
    std::string text = description_json(*desc);
    state_->pc->SetLocalDescription(
        std::move(desc), rtc::make_ref_counted<LocalSet>(state_, std::move(text)));
  }
  void OnFailure(webrtc::RTCError error) override {
    state_->report_closed(std::string("create description: ") + error.message());
  }

 private:
  std::shared_ptr<RtcLink::State> state_;
};

class RemoteSet : public webrtc::SetRemoteDescriptionObserverInterface {
 public:
  explicit RemoteSet(std::shared_ptr<RtcLink::State> state) : state_(std::move(state)) {}
  void OnSetRemoteDescriptionComplete(webrtc::RTCError error) override {
    if (state_->closed) return;
    if (!error.ok()) {
      state_->report_closed(std::string("SetRemoteDescription: ") + error.message());
      return;
    }
    std::vector<std::unique_ptr<webrtc::IceCandidateInterface>> pending;
    {
      std::lock_guard lock(state_->mutex);
      state_->remote_set = true;
      pending.swap(state_->pending_candidates);
    }
    for (auto& candidate : pending) {
      state_->pc->AddIceCandidate(std::move(candidate), [](webrtc::RTCError) {});
    }
    if (!state_->initiator) {
      state_->pc->CreateAnswer(rtc::make_ref_counted<Created>(state_).get(),
                               webrtc::PeerConnectionInterface::RTCOfferAnswerOptions{});
    }
  }

 private:
  std::shared_ptr<RtcLink::State> state_;
};

// The selected candidate pair's RTT and path, from the transport's stats.
class StatsReady : public webrtc::RTCStatsCollectorCallback {
 public:
  StatsReady(std::shared_ptr<RtcLink::State> state, bool then_open)
      : state_(std::move(state)), then_open_(then_open) {}
  void OnStatsDelivered(const rtc::scoped_refptr<const webrtc::RTCStatsReport>& report) override {
    if (state_->closed) return;
    report_pair(*report);
    if (then_open_) state_->report_open();
  }

 private:
  void report_pair(const webrtc::RTCStatsReport& report) {
    const webrtc::RTCIceCandidatePairStats* pair = selected_pair(report);
    if (!pair) return;
    if (pair->current_round_trip_time.is_defined() && state_->events.rtt) {
      const auto us = static_cast<std::uint32_t>(*pair->current_round_trip_time * 1e6);
      state_->events.rtt(us == 0 ? 1 : us);
    }
    if (state_->events.path) {
      state_->events.path(pair_type(type_of(report, pair->local_candidate_id),
                                    announced_type(type_of(report, pair->remote_candidate_id),
                                                   report, pair->remote_candidate_id)));
    }
  }
  static const webrtc::RTCIceCandidatePairStats* selected_pair(const webrtc::RTCStatsReport& report) {
    for (const auto* transport : report.GetStatsOfType<webrtc::RTCTransportStats>()) {
      if (!transport->selected_candidate_pair_id.is_defined()) continue;
      const webrtc::RTCStats* stats = report.Get(*transport->selected_candidate_pair_id);
      if (stats && stats->type() == webrtc::RTCIceCandidatePairStats::kType) {
        return &stats->cast_to<webrtc::RTCIceCandidatePairStats>();
      }
    }
    return nullptr;
  }
  // A peer-reflexive remote candidate that signaling announced: its real type.
  CandidateType announced_type(CandidateType type, const webrtc::RTCStatsReport& report,
                               const webrtc::RTCStatsMember<std::string>& id) const {
    if (type != CandidateType::prflx || !id.is_defined()) return type;
    const webrtc::RTCStats* stats = report.Get(*id);
    if (!stats || stats->type() != webrtc::RTCRemoteIceCandidateStats::kType) return type;
    const auto& remote = stats->cast_to<webrtc::RTCRemoteIceCandidateStats>();
    if (!remote.port.is_defined()) return type;
    // The stats hide a peer-reflexive address (privacy): match by port then.
    const std::string ip = remote.ip.is_defined() ? *remote.ip : std::string();
    const std::string port = ":" + std::to_string(*remote.port);
    std::lock_guard lock(state_->mutex);
    std::optional<CandidateType> found;
    for (const auto& [address, announced] : state_->announced) {
      if (!address.ends_with(port) || (!ip.empty() && address != ip + port)) continue;
      if (found && *found != announced) return type;  // ambiguous
      found = announced;
    }
    return found.value_or(type);
  }
  static CandidateType type_of(const webrtc::RTCStatsReport& report,
                               const webrtc::RTCStatsMember<std::string>& id) {
    if (!id.is_defined()) return CandidateType::unknown;
    const webrtc::RTCStats* stats = report.Get(*id);
    if (!stats) return CandidateType::unknown;
    const auto* candidate = [&]() -> const webrtc::RTCIceCandidateStats* {
      if (stats->type() == webrtc::RTCLocalIceCandidateStats::kType) {
        return &stats->cast_to<webrtc::RTCLocalIceCandidateStats>();
      }
      if (stats->type() == webrtc::RTCRemoteIceCandidateStats::kType) {
        return &stats->cast_to<webrtc::RTCRemoteIceCandidateStats>();
      }
      return nullptr;
    }();
    if (!candidate || !candidate->candidate_type.is_defined()) return CandidateType::unknown;
    return candidate_type_from(*candidate->candidate_type).value_or(CandidateType::unknown);
  }

  std::shared_ptr<RtcLink::State> state_;
  bool then_open_;
};

webrtc::PeerConnectionInterface::RTCConfiguration rtc_configuration(const RtcOptions& options) {
  webrtc::PeerConnectionInterface::RTCConfiguration config;
  config.sdp_semantics = webrtc::SdpSemantics::kUnifiedPlan;
  config.tcp_candidate_policy = webrtc::PeerConnectionInterface::kTcpCandidatePolicyDisabled;
  config.continual_gathering_policy = webrtc::PeerConnectionInterface::GATHER_ONCE;
  for (const IceServer& ice : options.ice_servers) {
    webrtc::PeerConnectionInterface::IceServer server;
    server.urls = ice.urls;
    server.username = ice.username;
    server.password = ice.credential;
    config.servers.push_back(server);
  }
  return config;
}

}  // namespace

void request_stats(const std::shared_ptr<RtcLink::State>& state, bool then_open) {
  if (!state->pc) {
    if (then_open) state->report_open();
    return;
  }
  state->pc->ClearStatsCache();
  state->pc->GetStats(rtc::make_ref_counted<StatsReady>(state, then_open).get());
}

// ---------------------------------------------------------------- RtcLink

RtcLink::RtcLink(std::shared_ptr<RtcEngine> engine)
    : engine_(std::move(engine)), state_(std::make_shared<State>()) {}

RtcLink::~RtcLink() { close(); }

static bool create_connection(RtcEngine& engine, RtcLink::State& state,
                              const std::shared_ptr<RtcLink::State>& shared,
                              const RtcOptions& options) {
  state.pc_observer = std::make_unique<PcEvents>(shared);
  webrtc::PeerConnectionDependencies deps(state.pc_observer.get());
  auto result =
      engine.factory->CreatePeerConnectionOrError(rtc_configuration(options), std::move(deps));
  if (!result.ok()) {
    state.events.closed(std::string("CreatePeerConnection: ") + result.error().message());
    return false;
  }
  state.pc = result.MoveValue();
  return true;
}

std::unique_ptr<RtcLink> RtcLink::open(std::shared_ptr<RtcEngine> engine,
                                       const RtcOptions& options, LinkEvents events) {
  std::unique_ptr<RtcLink> link(new RtcLink(std::move(engine)));
  auto& state = *link->state_;
  state.events = std::move(events);
  state.initiator = true;
  if (!create_connection(*link->engine_, state, link->state_, options)) {
    state.closed = true;
    return link;
  }
  webrtc::DataChannelInit init;
  init.ordered = true;
  auto channel = state.pc->CreateDataChannelOrError("data", &init);
  if (!channel.ok()) {
    state.report_closed(std::string("CreateDataChannel: ") + channel.error().message());
    return link;
  }
  attach_channel(link->state_, channel.MoveValue());
  state.pc->CreateOffer(rtc::make_ref_counted<Created>(link->state_).get(),
                        webrtc::PeerConnectionInterface::RTCOfferAnswerOptions{});
  return link;
}

std::unique_ptr<RtcLink> RtcLink::accept(std::shared_ptr<RtcEngine> engine,
                                         const RtcOptions& options, std::string_view offer_json,
                                         LinkEvents events) {
  std::unique_ptr<RtcLink> link(new RtcLink(std::move(engine)));
  auto& state = *link->state_;
  state.events = std::move(events);
  state.initiator = false;
  const auto [type, sdp] = parse_description(offer_json);
  if (type != "offer" || sdp.empty()) {
    state.report_closed("offer is not {\"type\":\"offer\",\"sdp\":...}");
    state.closed = true;
    return link;
  }
  webrtc::SdpParseError error;
  auto desc = webrtc::CreateSessionDescription(webrtc::SdpType::kOffer,
                                               reject_media_sections(sdp), &error);
  if (!desc) {
    state.report_closed("bad offer SDP: " + error.description);
    state.closed = true;
    return link;
  }
  if (!create_connection(*link->engine_, state, link->state_, options)) {
    state.closed = true;
    return link;
  }
  state.pc->SetRemoteDescription(std::move(desc), rtc::make_ref_counted<RemoteSet>(link->state_));
  return link;
}

void RtcLink::apply_answer(std::string_view answer_json) {
  if (state_->closed) return;
  const auto [type, sdp] = parse_description(answer_json);
  webrtc::SdpParseError error;
  std::unique_ptr<webrtc::SessionDescriptionInterface> desc;
  if (type == "answer" && !sdp.empty()) {
    desc = webrtc::CreateSessionDescription(webrtc::SdpType::kAnswer, sdp, &error);
  }
  if (!desc) {
    state_->report_closed("bad answer: " + error.description);
    return;
  }
  state_->pc->SetRemoteDescription(std::move(desc), rtc::make_ref_counted<RemoteSet>(state_));
}

void RtcLink::add_candidate(std::string_view candidate_json) {
  if (state_->closed) return;
  boost::system::error_code ec;
  const json::value value = json::parse(candidate_json, ec);
  if (ec || !value.is_object()) return;
  const auto& object = value.as_object();
  const auto* line = object.if_contains("candidate");
  if (!line || !line->is_string() || line->as_string().empty()) return;  // end of candidates
  const std::string text(line->as_string());
  // mDNS names (Chromium's `<uuid>.local`) cannot be resolved here; the link
  // forms through peer-reflexive candidates instead (NOTES-webrtc.md).
  if (text.find(".local ") != std::string::npos) return;
  std::string mid;
  int index = 0;
  if (const auto* m = object.if_contains("sdpMid"); m && m->is_string()) mid = m->as_string();
  if (const auto* i = object.if_contains("sdpMLineIndex"); i && i->is_int64()) {
    index = static_cast<int>(i->as_int64());
  }
  webrtc::SdpParseError error;
  std::unique_ptr<webrtc::IceCandidateInterface> candidate(
      webrtc::CreateIceCandidate(mid, index, text, &error));
  if (!candidate) return;
  {
    std::lock_guard lock(state_->mutex);
    const cricket::Candidate& c = candidate->candidate();
    if (state_->announced.size() < 64) {
      state_->announced[c.address().ipaddr().ToString() + ":" + std::to_string(c.address().port())] =
          candidate_type_from(c.type()).value_or(CandidateType::unknown);
    }
    if (!state_->remote_set) {
      if (state_->pending_candidates.size() < 64) state_->pending_candidates.push_back(std::move(candidate));
      return;
    }
  }
  // The candidate may be the one ICE already uses as peer-reflexive: its
  // path is then known for what it is (host...). A few per link: cheap.
  state_->pc->AddIceCandidate(std::move(candidate), [state = state_](webrtc::RTCError added) {
    if (added.ok() && !state->closed && state->pc) native::request_stats(state, false);
  });
}

bool RtcLink::send(std::string_view bytes) {
  if (state_->closed) return false;
  const rtc::scoped_refptr<webrtc::DataChannelInterface> dc = state_->channel();
  if (!dc || dc->state() != webrtc::DataChannelInterface::kOpen) return false;
  return dc->Send(webrtc::DataBuffer(rtc::CopyOnWriteBuffer(bytes.data(), bytes.size()), true));
}


RtcLink::UnreliableSend RtcLink::send_unreliable(std::string_view bytes) {
  if (state_->closed || !state_->pc) return UnreliableSend::not_open;
  rtc::scoped_refptr<webrtc::DataChannelInterface> open;
  bool any = false;
  {
    std::lock_guard lock(state_->mutex);
    any = !state_->unreliable.empty();
    for (const auto& channel : state_->unreliable) {
      if (channel.observer->open) {
        open = channel.dc;
        break;
      }
    }
  }
  if (!open) {
    if (!any) {
      // First use: open it; the far end accepts it (OnDataChannel).
      webrtc::DataChannelInit init;
      init.ordered = false;
      init.maxRetransmits = 0;
      auto created = state_->pc->CreateDataChannelOrError(kUnreliableLabel, &init);
      if (created.ok()) attach_unreliable(state_, created.MoveValue());
    }
    return UnreliableSend::not_open;
  }
  // The buffer is asked every few sends only (each ask waits for libwebrtc's
  // thread): it may pass the mark by a few packets.
  if (++state_->unreliable_sends % kUnreliableSendsPerCheck == 0 &&
      !unreliable_may_send(open->buffered_amount())) {
    return UnreliableSend::congested;
  }
  if (!open->Send(webrtc::DataBuffer(rtc::CopyOnWriteBuffer(bytes.data(), bytes.size()), true))) {
    return UnreliableSend::congested;
  }
  return UnreliableSend::sent;
}

bool RtcLink::unreliable_open() const {
  if (state_->closed) return false;
  std::lock_guard lock(state_->mutex);
  for (const auto& channel : state_->unreliable) {
    if (channel.observer->open) return true;
  }
  return false;
}

std::uint64_t RtcLink::buffered_amount() const {
  if (state_->closed) return 0;
  const rtc::scoped_refptr<webrtc::DataChannelInterface> dc = state_->channel();
  return dc ? dc->buffered_amount() : 0;
}

void RtcLink::request_stats() {
  if (state_->closed || !state_->pc) return;
  native::request_stats(state_, false);
}

void RtcLink::close() {
  state_->closed = true;
  if (!state_->pc) return;
  {
    std::lock_guard lock(state_->mutex);
    state_->close_reported = true;
  }
  // Close first: any observer callback running on the signaling thread ends
  // before Close() returns, and later ones see `closed`.
  state_->pc->Close();
  rtc::scoped_refptr<webrtc::DataChannelInterface> dc = state_->channel();
  if (dc) dc->UnregisterObserver();
  std::vector<State::UnreliableChannel> unreliable;
  {
    std::lock_guard lock(state_->mutex);
    unreliable.swap(state_->unreliable);
  }
  for (auto& channel : unreliable) channel.dc->UnregisterObserver();
  // Release the connection on its own thread, in a task of its own, after any
  // callback already queued there (observers check `closed` first).
  engine_->signaling->PostTask([pc = std::move(state_->pc), dc = std::move(dc),
                                pc_observer = std::move(state_->pc_observer),
                                dc_observer = std::move(state_->dc_observer),
                                unreliable = std::move(unreliable)]() mutable {
    unreliable.clear();
    dc = nullptr;
    pc = nullptr;
    pc_observer.reset();
    dc_observer.reset();
  });
}

// ---------------------------------------------------------------- SDP

std::string reject_media_sections(std::string_view sdp) {
  std::string out;
  out.reserve(sdp.size());
  std::size_t pos = 0;
  while (pos < sdp.size()) {
    std::size_t end = sdp.find('\n', pos);
    const std::size_t next = end == std::string_view::npos ? sdp.size() : end + 1;
    std::string_view line = sdp.substr(pos, next - pos);
    if (line.rfind("m=", 0) == 0 && line.rfind("m=application", 0) != 0) {
      // m=<media> <port> <proto> ... -> port 0
      const std::size_t space = line.find(' ');
      const std::size_t space2 = space == std::string_view::npos ? space : line.find(' ', space + 1);
      if (space2 != std::string_view::npos) {
        out.append(line.substr(0, space + 1));
        out.append("0");
        out.append(line.substr(space2));
      } else {
        out.append(line);
      }
    } else {
      out.append(line);
    }
    pos = next;
  }
  return out;
}

}  // namespace p2pmesh::native
