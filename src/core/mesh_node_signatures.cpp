// MeshNode's signed broadcasts (docs/security.md). The core holds no key
// and does no crypto, so it builds for the browser without a crypto
// library: it asks its driver to sign each broadcast (SignBroadcast; the
// broadcast leaves once signed, in seq order) and to check each signed
// packet it receives (VerifySignature; the packet is forwarded at once,
// delivered once checked). What needs no crypto is decided here, before the
// duplicate filter: a packet the policy refuses, or a forged copy that fails
// its check, never marks its (source, seq) as seen, so the genuine copy (or
// a repaired one) still passes.

#include <algorithm>

#include "mesh_node.hpp"
#include "signed_broadcast.hpp"

namespace p2pmesh {

void MeshNode::learn_signer(PeerId source, const wire::MeshStatus& status) {
  // The server stamps statuses with their sender: a key is its peer's own
  // (and, with meshd --auth-key, the one its token vouches for).
  if (status.public_key.size() == kPublicKeyBytes) signer_keys_[source] = status.public_key;
  // A group policy only tightens: any member announcing it makes it ours.
  if (status.require_signatures && !config_.emulate_reference) require_signatures_ = true;
}

MeshNode::SignatureVerdict MeshNode::signature_verdict(const wire::Packet& packet, PeerId via) {
  if (config_.emulate_reference) return SignatureVerdict::unverified;
  const auto key = signer_keys_.find(packet.source);
  if (key == signer_keys_.end()) {  // a reference peer, or a source not heard of yet
    if (!require_signatures_) return SignatureVerdict::unverified;
    ++counters_.unsigned_dropped;
    return SignatureVerdict::drop;
  }
  // A source that announced a key signs everything: an unsigned packet of
  // it had its signature stripped (policy or not).
  if (packet.signature.empty()) {
    ++counters_.unsigned_dropped;
    return SignatureVerdict::drop;
  }
  if (packet.signature.size() != kSignatureBytes) {
    ++counters_.bad_signatures;
    return SignatureVerdict::drop;
  }
  // Straight from its source (over a link, whose DTLS fingerprint came in
  // signaling meshd stamped with the source's id, or through meshd, which
  // stamps the sender), a packet is the source's own on the same trust that
  // binds the source's key to its id: the check would add nothing, and it
  // is a third to a half of a small group's deliveries (docs/security.md).
  // (Counted once past the duplicate filter, in handle_packet.)
  if (via == packet.source) return SignatureVerdict::from_source;
  if (awaiting_check_.size() >= config_.max_pending_verifications) {
    ++counters_.verify_backlog_drops;
    return SignatureVerdict::drop;
  }
  return SignatureVerdict::check;
}

std::vector<TagReceiver> MeshNode::tag_receivers() const {
  std::vector<TagReceiver> receivers;
  const std::size_t others = signer_keys_.size() - signer_keys_.count(self_);
  if (others == 0 || others > config_.max_receiver_tags) return receivers;
  for (const auto& [peer, key] : signer_keys_) {
    if (peer != self_) receivers.push_back({peer, key});
  }
  // In id order: the same members give the same bytes.
  std::sort(receivers.begin(), receivers.end(),
            [](const TagReceiver& a, const TagReceiver& b) { return a.peer < b.peer; });
  return receivers;
}

std::vector<PeerId> MeshNode::relay_on(TimeUs now, const wire::Packet& packet, PeerId via) {
  if (config_.spread == MeshConfig::Spread::flood) {
    flood(packet, via);
    return {};
  }
  return forward(now, packet);
}

void MeshNode::check_signature(const wire::Packet& packet, PeerId via,
                               std::vector<PeerId> children) {
  const std::uint64_t ticket = next_ticket_++;
  ++counters_.signatures_checked;
  const bool unreliable = packet.unreliable_seq != 0;
  emit(VerifySignature{ticket, signer_keys_.at(packet.source),
                       broadcast_signing_bytes(config_.group, packet.source,
                                               unreliable ? packet.unreliable_seq : packet.seq,
                                               packet.payload, unreliable),
                       packet.signature, std::string(find_receiver_tag(packet.receiver_tags, self_))});
  awaiting_check_.push_back({ticket, via, packet, std::move(children)});
}

void MeshNode::on_signature_checked(TimeUs now, std::uint64_t ticket, bool valid) {
  // Answers come in order (the front) unless a driver reorders them.
  const auto it = std::find_if(awaiting_check_.begin(), awaiting_check_.end(),
                               [ticket](const AwaitingCheck& c) { return c.ticket == ticket; });
  if (it == awaiting_check_.end()) return;
  AwaitingCheck check = std::move(*it);
  awaiting_check_.erase(it);
  if (left_) return;
  if (!valid) {
    ++counters_.bad_signatures;
    if (check.packet.unreliable_seq != 0) {
      unreliable_duplicates_.unsee(check.packet.source, check.packet.unreliable_seq);
    } else {
      duplicates_.unsee(check.packet.source, check.packet.seq);
    }
    return;
  }
  deliver(now, check.via, check.packet, true);
  if (config_.spread != MeshConfig::Spread::flood) announce(now, check.packet, check.via, check.children);
  schedule_wake();
}

void MeshNode::on_broadcast_signed(TimeUs now, std::uint64_t id, std::string signature,
                                   std::string receiver_tags) {
  const auto it = std::find_if(awaiting_signature_.begin(), awaiting_signature_.end(),
                               [id](const AwaitingSignature& a) { return a.id == id && !a.signed_; });
  if (it == awaiting_signature_.end()) return;
  it->signature = std::move(signature);
  it->receiver_tags = std::move(receiver_tags);
  it->signed_ = true;
  while (!awaiting_signature_.empty() && awaiting_signature_.front().signed_) {
    AwaitingSignature ready = std::move(awaiting_signature_.front());
    awaiting_signature_.pop_front();
    if (self_ != kNoPeer && !left_) {
      send_broadcast(now, ready.number, ready.delivery, std::move(ready.payload),
                     std::move(ready.signature), std::move(ready.receiver_tags));
    }
  }
  schedule_wake();  // announcements may wait for their batch
}

}  // namespace p2pmesh
