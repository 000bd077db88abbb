#include "address_limits.hpp"

#include <cstring>
#include <string_view>

namespace meshd {

namespace {

AddressLimits::Key key_of(const boost::asio::ip::address& address) {
  const auto v6 = address.is_v4()
                      ? boost::asio::ip::make_address_v6(boost::asio::ip::v4_mapped, address.to_v4())
                      : address.to_v6();
  return v6.to_bytes();
}

}  // namespace

std::size_t AddressLimits::KeyHash::operator()(const Key& key) const noexcept {
  return std::hash<std::string_view>{}(
      std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
}

AddressLimits::Refusal AddressLimits::admit(const boost::asio::ip::address& address, Slot& slot) {
  const Key key = key_of(address);
  const std::lock_guard lock(mutex_);
  Counts& counts = counts_[key];
  Refusal refusal = Refusal::none;
  if (max_connections_ != 0 && counts.connections >= max_connections_)
    refusal = Refusal::connections;
  else if (max_handshakes_ != 0 && counts.handshakes >= max_handshakes_)
    refusal = Refusal::handshakes;
  if (refusal != Refusal::none) {
    if (counts.connections == 0) counts_.erase(key);
    return refusal;
  }
  ++counts.connections;
  ++counts.handshakes;
  slot.release();
  slot.limits_ = this;
  slot.key_ = key;
  slot.handshaking_ = true;
  return Refusal::none;
}

std::size_t AddressLimits::addresses() const {
  const std::lock_guard lock(mutex_);
  return counts_.size();
}

void AddressLimits::release(const Key& key, bool handshaking) {
  const std::lock_guard lock(mutex_);
  const auto it = counts_.find(key);
  if (it == counts_.end()) return;
  if (handshaking && it->second.handshakes > 0) --it->second.handshakes;
  if (it->second.connections > 0 && --it->second.connections == 0) counts_.erase(it);
}

void AddressLimits::end_handshake(const Key& key) {
  const std::lock_guard lock(mutex_);
  const auto it = counts_.find(key);
  if (it != counts_.end() && it->second.handshakes > 0) --it->second.handshakes;
}

AddressLimits::Slot& AddressLimits::Slot::operator=(Slot&& other) noexcept {
  if (this == &other) return *this;
  release();
  limits_ = other.limits_;
  key_ = other.key_;
  handshaking_ = other.handshaking_;
  other.limits_ = nullptr;
  return *this;
}

void AddressLimits::Slot::upgraded() {
  if (!limits_ || !handshaking_) return;
  handshaking_ = false;
  limits_->end_handshake(key_);
}

void AddressLimits::Slot::release() {
  if (!limits_) return;
  limits_->release(key_, handshaking_);
  limits_ = nullptr;
}

}  // namespace meshd
