#include "server_protocol.hpp"

#include "wire.hpp"

namespace p2pmesh {

std::string server_frame(const Subscribe& subscribe) {
  wire::ClientMessage message;
  message.kind = wire::ClientMessage::Kind::subscribe;
  message.topic = subscribe.topic;
  message.batch_ms = subscribe.batch_ms;
  return wire::encode(message);
}

std::string server_frame(const Publish& publish) {
  wire::ClientMessage message;
  message.kind = wire::ClientMessage::Kind::publish;
  message.topics = publish.topics;
  message.payload = publish.body;
  return wire::encode(message);
}

}  // namespace p2pmesh
