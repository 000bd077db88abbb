#pragma once
// Helpers for the native tests: meshd in-process on 127.0.0.1, a raw
// neighbour (our own WebSocket + one RtcLink, no MeshNode) that can send
// anything on a data channel, and waiting with a deadline.

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <boost/asio/io_context.hpp>
#include <boost/asio/executor_work_guard.hpp>

#include "p2pmesh/peer.hpp"
#include "server.hpp"

namespace p2pmesh::test {

using Clock = std::chrono::steady_clock;

// Polls `done` every 10 ms until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout);

class MeshdInProcess {
 public:
  MeshdInProcess();
  // With settings of its own (limits, rates): `adjust` edits the loopback
  // defaults before the server starts.
  explicit MeshdInProcess(const std::function<void(meshd::Config&)>& adjust);
  ~MeshdInProcess();
  std::string url() const;

 private:
  std::unique_ptr<meshd::Server> server_;
  std::thread thread_;
  std::uint16_t port_ = 0;
};

PeerConfig loopback_config(const std::string& url, const std::string& group);

// True when every peer's tree reaches every other peer of `ids`, and no more.
bool all_trees_complete(const std::vector<PeerSnapshot>& snapshots, std::vector<PeerId> ids);

// A hand-driven neighbour: joins the server, offers a data channel to
// `target`, and then sends raw bytes on it.
class RawNeighbour {
 public:
  // `chromium_offer`: the offer is rewritten into the reference browser's
  // layout (audio m-section first, mid 0; data channel mid 1).
  RawNeighbour(const std::string& url, const std::string& group, bool chromium_offer);
  ~RawNeighbour();
  PeerId id() const { return id_; }
  void offer_to(PeerId target);
  bool is_open() const { return open_; }
  void send(std::string bytes);
  std::vector<std::string> received() const;
  std::string last_answer_sdp() const;
  // Subscribes to `topic` (e.g. "<group>.report", as an observer does); the
  // bodies that arrive on it are kept, with their server-stamped senders.
  void subscribe(const std::string& topic);
  // Publishes `body` on `topic` (e.g. a status of its own on "<group>.mesh").
  void publish(const std::string& topic, std::string body);
  struct TopicMessage {
    PeerId sender = 0;
    std::string body;
  };
  std::vector<TopicMessage> topic_messages(const std::string& topic) const;

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
  std::atomic<PeerId> id_{0};
  std::atomic<bool> open_{false};
};

// SDP rewriting between our data-only offer and the reference browser's
// layout (exposed for a unit test).
std::string to_chromium_offer(const std::string& sdp);
std::string from_chromium_answer(const std::string& sdp);

}  // namespace p2pmesh::test
