#include "candidate_envelope.hpp"

#include <charconv>
#include <cstdint>

namespace p2pmesh {

std::string wrap_candidate(std::string_view candidate_json, PeerId initiator) {
  std::string json = "{\"candidate\":";
  json += candidate_json;
  json += ",\"initiator\":";
  json += std::to_string(initiator);
  json += '}';
  return json;
}

namespace {

// A minimal JSON scanner: enough to find top-level members and skip values.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) {}

  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' ||
                                   text_[pos_] == '\r' || text_[pos_] == '\t')) {
      ++pos_;
    }
  }
  bool eat(char c) {
    skip_space();
    if (pos_ < text_.size() && text_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  // Reads a string token (without unescaping: keys we look for have none).
  std::optional<std::string_view> string() {
    skip_space();
    if (pos_ >= text_.size() || text_[pos_] != '"') return std::nullopt;
    const std::size_t start = ++pos_;
    while (pos_ < text_.size()) {
      if (text_[pos_] == '\\') {
        pos_ += 2;
      } else if (text_[pos_] == '"') {
        return text_.substr(start, pos_++ - start);
      } else {
        ++pos_;
      }
    }
    return std::nullopt;
  }
  // Skips one value and returns its raw text.
  std::optional<std::string_view> value(int depth = 0) {
    if (depth > 32) return std::nullopt;
    skip_space();
    if (pos_ >= text_.size()) return std::nullopt;
    const std::size_t start = pos_;
    const char c = text_[pos_];
    if (c == '"') {
      if (!string()) return std::nullopt;
    } else if (c == '{' || c == '[') {
      const char close = c == '{' ? '}' : ']';
      ++pos_;
      if (!eat(close)) {
        do {
          if (c == '{' && (!string() || !eat(':'))) return std::nullopt;
          if (!value(depth + 1)) return std::nullopt;
        } while (eat(','));
        if (!eat(close)) return std::nullopt;
      }
    } else {
      while (pos_ < text_.size() && text_[pos_] != ',' && text_[pos_] != '}' &&
             text_[pos_] != ']' && text_[pos_] != ' ') {
        ++pos_;
      }
      if (pos_ == start) return std::nullopt;
    }
    return text_.substr(start, pos_ - start);
  }
  bool at_end() {
    skip_space();
    return pos_ == text_.size();
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

}  // namespace

std::optional<CandidateEnvelope> unwrap_candidate(std::string_view json) {
  Scanner scanner(json);
  if (!scanner.eat('{')) return std::nullopt;
  CandidateEnvelope envelope;
  bool have_candidate = false;
  bool have_initiator = false;
  if (!scanner.eat('}')) {
    do {
      const auto key = scanner.string();
      if (!key || !scanner.eat(':')) return std::nullopt;
      const auto value = scanner.value();
      if (!value) return std::nullopt;
      if (*key == "candidate") {
        envelope.candidate_json = *value;
        have_candidate = true;
      } else if (*key == "initiator") {
        std::uint32_t id = 0;
        const auto [end, error] = std::from_chars(value->data(), value->data() + value->size(), id);
        if (error != std::errc{} || end != value->data() + value->size()) return std::nullopt;
        envelope.initiator = id;
        have_initiator = true;
      }
    } while (scanner.eat(','));
    if (!scanner.eat('}')) return std::nullopt;
  }
  if (!scanner.at_end() || !have_candidate || !have_initiator) return std::nullopt;
  return envelope;
}

}  // namespace p2pmesh
