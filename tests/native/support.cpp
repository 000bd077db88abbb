#include "support.hpp"

#include <algorithm>
#include <sstream>

#include <boost/asio/post.hpp>
#include <boost/json.hpp>

#include "candidate_envelope.hpp"
#include "rtc_link.hpp"
#include "../../src/core/topics.hpp"  // not meshd's topics.hpp
#include "wire.hpp"
#include "ws_client.hpp"

namespace p2pmesh::test {

namespace asio = boost::asio;
namespace json = boost::json;

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return done();
}

MeshdInProcess::MeshdInProcess() : MeshdInProcess([](meshd::Config&) {}) {}

MeshdInProcess::MeshdInProcess(const std::function<void(meshd::Config&)>& adjust) {
  meshd::Config config;
  config.host = "127.0.0.1";
  config.port = 0;
  adjust(config);
  server_ = std::make_unique<meshd::Server>(config);
  port_ = server_->listen();
  thread_ = std::thread([this] { server_->run(); });
}

MeshdInProcess::~MeshdInProcess() {
  server_->stop();
  thread_.join();
}

std::string MeshdInProcess::url() const {
  return "ws://127.0.0.1:" + std::to_string(port_) + "/service";
}

PeerConfig loopback_config(const std::string& url, const std::string& group) {
  PeerConfig config;
  config.server_urls = {url};
  config.group = group;
  config.loopback_only = true;
  return config;
}

bool all_trees_complete(const std::vector<PeerSnapshot>& snapshots, std::vector<PeerId> ids) {
  std::sort(ids.begin(), ids.end());
  for (const auto& s : snapshots) {
    std::vector<PeerId> others;
    for (const PeerId id : ids) {
      if (id != s.id) others.push_back(id);
    }
    if (s.reachable != others) return false;
  }
  return true;
}

// ------------------------------------------------------------ SDP rewriting

namespace {

std::vector<std::string> lines_of(const std::string& sdp) {
  std::vector<std::string> lines;
  std::istringstream in(sdp);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

std::string join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& line : lines) out += line + "\r\n";
  return out;
}

std::string value_of(const std::vector<std::string>& lines, const std::string& prefix) {
  for (const auto& line : lines) {
    if (line.rfind(prefix, 0) == 0) return line.substr(prefix.size());
  }
  return {};
}

}  // namespace

std::string to_chromium_offer(const std::string& sdp) {
  const auto lines = lines_of(sdp);
  std::vector<std::string> session, data;
  bool in_media = false;
  for (const auto& line : lines) {
    if (line.rfind("m=", 0) == 0) in_media = true;
    if (!in_media) {
      session.push_back(line.rfind("a=group:BUNDLE", 0) == 0 ? "a=group:BUNDLE 0 1" : line);
    } else {
      data.push_back(line == "a=mid:0" ? "a=mid:1" : line);
    }
  }
  // What Chromium puts first for createOffer({offerToReceiveAudio: true}).
  std::vector<std::string> audio = {
      "m=audio 9 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
      "c=IN IP4 0.0.0.0",
      "a=rtcp:9 IN IP4 0.0.0.0",
      "a=ice-ufrag:" + value_of(data, "a=ice-ufrag:"),
      "a=ice-pwd:" + value_of(data, "a=ice-pwd:"),
      "a=ice-options:trickle",
      "a=fingerprint:" + value_of(data, "a=fingerprint:"),
      "a=setup:actpass",
      "a=mid:0",
      "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level",
      "a=extmap:2 http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time",
      "a=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01",
      "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid",
      "a=recvonly",
      "a=rtcp-mux",
      "a=rtpmap:111 opus/48000/2",
      "a=rtcp-fb:111 transport-cc",
      "a=fmtp:111 minptime=10;useinbandfec=1",
      "a=rtpmap:63 red/48000/2",
      "a=fmtp:63 111/111",
      "a=rtpmap:9 G722/8000",
      "a=rtpmap:0 PCMU/8000",
      "a=rtpmap:8 PCMA/8000",
      "a=rtpmap:13 CN/8000",
      "a=rtpmap:110 telephone-event/48000",
      "a=rtpmap:126 telephone-event/8000",
  };
  std::vector<std::string> out = session;
  out.insert(out.end(), audio.begin(), audio.end());
  out.insert(out.end(), data.begin(), data.end());
  return join(out);
}

std::string from_chromium_answer(const std::string& sdp) {
  const auto lines = lines_of(sdp);
  std::vector<std::string> out;
  bool skip = false;
  for (const auto& line : lines) {
    if (line.rfind("m=", 0) == 0) skip = line.rfind("m=application", 0) != 0;
    if (skip) continue;
    if (line.rfind("a=group:BUNDLE", 0) == 0) {
      out.push_back("a=group:BUNDLE 0");
    } else if (line == "a=mid:1") {
      out.push_back("a=mid:0");
    } else {
      out.push_back(line);
    }
  }
  return join(out);
}

// ------------------------------------------------------------ RawNeighbour

namespace {

std::string with_mid(const std::string& candidate_json, const char* mid, int index) {
  json::value value = json::parse(candidate_json);
  value.as_object()["sdpMid"] = mid;
  value.as_object()["sdpMLineIndex"] = index;
  return json::serialize(value);
}

}  // namespace

struct RawNeighbour::Impl {
  asio::io_context io;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::thread thread;
  std::string group;
  bool chromium = false;
  std::shared_ptr<native::WsClient> ws;
  std::unique_ptr<native::RtcLink> link;
  PeerId target = 0;
  mutable std::mutex mutex;
  std::vector<std::string> received;
  std::string answer_sdp;
  std::vector<std::string> topics;  // subscribed by subscribe()
  std::vector<std::pair<std::string, RawNeighbour::TopicMessage>> topic_messages;
  RawNeighbour* owner = nullptr;

  void publish(const std::string& topic, std::string body) {
    wire::ClientMessage message;
    message.kind = wire::ClientMessage::Kind::publish;
    message.topics = {topic};
    message.payload = std::move(body);
    ws->send(wire::encode(message));
  }
  void subscribe(const std::string& topic) {
    wire::ClientMessage message;
    message.kind = wire::ClientMessage::Kind::subscribe;
    message.topic = topic;
    ws->send(wire::encode(message));
  }
};

RawNeighbour::RawNeighbour(const std::string& url, const std::string& group, bool chromium_offer)
    : impl_(std::make_shared<Impl>()) {
  impl_->group = group;
  impl_->chromium = chromium_offer;
  impl_->owner = this;
  impl_->work.emplace(impl_->io.get_executor());
  auto* impl = impl_.get();
  native::WsClient::Handlers handlers;
  handlers.frame = [this, impl](std::string_view frame) {
    wire::ServerMessage message;
    if (wire::decode(frame, message) != wire::DecodeError::none) return;
    if (message.kind == wire::ServerMessage::Kind::welcome) {
      id_ = message.welcome_id;
      impl->subscribe(peer_topic(impl->group, message.welcome_id, SignalKind::answer));
      impl->subscribe(peer_topic(impl->group, message.welcome_id, SignalKind::candidate));
      return;
    }
    {
      std::lock_guard lock(impl->mutex);
      if (std::find(impl->topics.begin(), impl->topics.end(), message.topic) != impl->topics.end()) {
        impl->topic_messages.push_back({message.topic, {message.sender, message.body}});
        return;
      }
    }
    if (!impl->link) return;
    if (message.topic == peer_topic(impl->group, id_, SignalKind::answer)) {
      json::value value = json::parse(message.body);
      std::string sdp(value.as_object()["sdp"].as_string());
      {
        std::lock_guard lock(impl->mutex);
        impl->answer_sdp = sdp;
      }
      if (impl->chromium) sdp = from_chromium_answer(sdp);
      json::object answer;
      answer["type"] = "answer";
      answer["sdp"] = sdp;
      impl->link->apply_answer(json::serialize(answer));
    } else if (message.topic == peer_topic(impl->group, id_, SignalKind::candidate)) {
      auto envelope = unwrap_candidate(message.body);
      if (!envelope) return;
      std::string candidate(envelope->candidate_json);
      if (impl->chromium) candidate = with_mid(candidate, "0", 0);
      impl->link->add_candidate(candidate);
    }
  };
  auto parsed = native::parse_ws_url(url);
  impl_->ws = std::make_shared<native::WsClient>(impl_->io, *parsed, std::move(handlers));
  impl_->ws->start();
  impl_->thread = std::thread([impl] { impl->io.run(); });
  wait_until([this] { return id_ != 0; }, std::chrono::seconds(10));
}

RawNeighbour::~RawNeighbour() {
  auto* impl = impl_.get();
  asio::post(impl->io, [impl] {
    if (impl->link) impl->link->close();
    impl->link.reset();
    impl->ws->abort();
    impl->work.reset();
  });
  impl->thread.join();
}

void RawNeighbour::offer_to(PeerId target) {
  auto* impl = impl_.get();
  asio::post(impl->io, [this, impl, target] {
    impl->target = target;
    native::LinkEvents events;
    events.local_description = [this, impl](std::string text) {
      asio::post(impl->io, [this, impl, text] {
        json::value value = json::parse(text);
        std::string sdp(value.as_object()["sdp"].as_string());
        if (impl->chromium) sdp = to_chromium_offer(sdp);
        json::object offer;
        offer["type"] = "offer";
        offer["sdp"] = sdp;
        impl->publish(peer_topic(impl->group, impl->target, SignalKind::offer), json::serialize(offer));
        (void)this;
      });
    };
    events.local_candidate = [this, impl](std::string text) {
      asio::post(impl->io, [this, impl, text] {
        std::string candidate = impl->chromium ? with_mid(text, "1", 1) : text;
        impl->publish(peer_topic(impl->group, impl->target, SignalKind::candidate),
                      wrap_candidate(candidate, id_));
      });
    };
    events.open = [this] { open_ = true; };
    events.closed = [this](std::string) { open_ = false; };
    events.data = [impl](std::string bytes) {
      std::lock_guard lock(impl->mutex);
      impl->received.push_back(std::move(bytes));
    };
    native::RtcOptions options;
    options.loopback_only = true;
    impl->link = native::RtcLink::open(native::rtc_engine(true), options, std::move(events));
  });
}

void RawNeighbour::send(std::string bytes) {
  auto* impl = impl_.get();
  asio::post(impl->io, [impl, bytes = std::move(bytes)] {
    if (impl->link) impl->link->send(bytes);
  });
}

void RawNeighbour::publish(const std::string& topic, std::string body) {
  auto* impl = impl_.get();
  asio::post(impl->io, [impl, topic, body = std::move(body)]() mutable {
    impl->publish(topic, std::move(body));
  });
}

std::vector<std::string> RawNeighbour::received() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->received;
}

std::string RawNeighbour::last_answer_sdp() const {
  std::lock_guard lock(impl_->mutex);
  return impl_->answer_sdp;
}

void RawNeighbour::subscribe(const std::string& topic) {
  auto* impl = impl_.get();
  {
    std::lock_guard lock(impl->mutex);
    impl->topics.push_back(topic);
  }
  asio::post(impl->io, [impl, topic] { impl->subscribe(topic); });
}

std::vector<RawNeighbour::TopicMessage> RawNeighbour::topic_messages(const std::string& topic) const {
  std::lock_guard lock(impl_->mutex);
  std::vector<TopicMessage> out;
  for (const auto& [t, message] : impl_->topic_messages) {
    if (t == topic) out.push_back(message);
  }
  return out;
}

}  // namespace p2pmesh::test
