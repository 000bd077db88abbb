// The ICE servers of the welcome and their TURN credentials. See ice_credentials.hpp.

#include "ice_credentials.hpp"

#include <fcntl.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "wire.hpp"

namespace meshd {

namespace {

constexpr std::uint64_t kMaxTtlSeconds = 365ull * 24 * 3600;
constexpr std::size_t kMaxUrlBytes = 512;
constexpr std::size_t kMaxSecretBytes = 64 * 1024;

bool starts_with(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

// Empty when `url` is a STUN (turn = false) or TURN URL meshd may hand out.
std::string check_url(std::string_view flag, std::string_view url, bool turn) {
  const std::string quoted = std::string(flag) + " '" + std::string(url) + "': ";
  std::string_view rest;
  if (turn) {
    if (starts_with(url, "turn:")) rest = url.substr(5);
    else if (starts_with(url, "turns:")) rest = url.substr(6);
    else
      return quoted + "a TURN URL starts with turn: or turns: (turn:HOST:PORT[?transport=udp|tcp])";
  } else {
    if (starts_with(url, "stun:")) rest = url.substr(5);
    else if (starts_with(url, "stuns:")) rest = url.substr(6);
    else return quoted + "a STUN URL starts with stun: or stuns: (stun:HOST:PORT)";
  }
  if (url.size() > kMaxUrlBytes) return quoted + "longer than 512 bytes";
  for (const char c : url) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f)
      return quoted + "contains a space or control character";
  }
  const auto query = rest.find('?');
  const std::string_view host_port = rest.substr(0, query);
  if (host_port.empty() || host_port.front() == ':') return quoted + "no host";
  if (query != std::string_view::npos) {
    const std::string_view parameters = rest.substr(query + 1);
    if (!turn || (parameters != "transport=udp" && parameters != "transport=tcp"))
      return quoted + "the only query allowed is ?transport=udp or ?transport=tcp on a TURN URL";
  }
  return {};
}

std::string check_urls(const Config& config) {
  // Peers decode at most this many URLs per ICE server (wire.hpp): more would
  // make every welcome undecodable.
  const std::size_t max_urls = p2pmesh::wire::DecodeLimits{}.max_ice_server_urls;
  if (config.stun_urls.size() > max_urls)
    return "--stun: at most " + std::to_string(max_urls) + " URLs";
  if (config.turn_urls.size() > max_urls)
    return "--turn: at most " + std::to_string(max_urls) + " URLs";
  for (const auto& url : config.stun_urls)
    if (auto error = check_url("--stun", url, false); !error.empty()) return error;
  for (const auto& url : config.turn_urls)
    if (auto error = check_url("--turn", url, true); !error.empty()) return error;
  return {};
}

// The secret file's contents without one trailing newline; empty and a
// reason in `error` when unreadable or empty.
std::string read_secret(const std::string& path, std::string& error) {
  const std::string flag = "--turn-secret-file '" + path + "': ";
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    error = flag + std::strerror(errno);
    return {};
  }
  std::string secret;
  struct stat info {};
  if (::fstat(fd, &info) != 0 || S_ISDIR(info.st_mode)) {
    error = flag + "not a file";
  } else {
    char chunk[4096];
    for (;;) {
      const ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        error = flag + std::strerror(errno);
        break;
      }
      if (n == 0) break;
      secret.append(chunk, static_cast<std::size_t>(n));
      if (secret.size() > kMaxSecretBytes) {
        error = flag + "larger than 64 KiB";
        break;
      }
    }
  }
  ::close(fd);
  if (!error.empty()) return {};
  if (!secret.empty() && secret.back() == '\n') {
    secret.pop_back();
    if (!secret.empty() && secret.back() == '\r') secret.pop_back();
  }
  if (secret.empty()) error = flag + "empty";
  return secret;
}

}  // namespace

std::optional<std::chrono::seconds> parse_duration(std::string_view text) {
  // Plain seconds ("3600"), or number-unit pairs ("1h", "1h30m", "90s").
  const bool plain = !text.empty() && text.find_first_not_of("0123456789") == text.npos;
  std::uint64_t total = 0;
  std::size_t i = 0;
  while (i < text.size()) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    std::uint64_t number = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
      number = number * 10 + static_cast<std::uint64_t>(text[i] - '0');
      if (number > kMaxTtlSeconds) return std::nullopt;
    }
    std::uint64_t unit = 1;
    if (!plain) {
      if (i == text.size()) return std::nullopt;  // "1h30": which unit?
      switch (text[i++]) {
        case 's': unit = 1; break;
        case 'm': unit = 60; break;
        case 'h': unit = 3600; break;
        case 'd': unit = 86400; break;
        default: return std::nullopt;
      }
    }
    total += number * unit;
    if (total > kMaxTtlSeconds) return std::nullopt;
  }
  if (total == 0) return std::nullopt;
  return std::chrono::seconds(total);
}

std::string format_duration(std::chrono::seconds duration) {
  const auto s = duration.count();
  if (s > 0 && s % 86400 == 0) return std::to_string(s / 86400) + "d";
  if (s > 0 && s % 3600 == 0) return std::to_string(s / 3600) + "h";
  if (s > 0 && s % 60 == 0) return std::to_string(s / 60) + "m";
  return std::to_string(s) + "s";
}

std::string configure_ice(Config& config, const std::string& turn_secret_file,
                          const std::string& turn_ttl) {
  if (auto error = check_urls(config); !error.empty()) return error;
  const auto ttl = parse_duration(turn_ttl);
  if (!ttl)
    return "--turn-ttl '" + turn_ttl + "': expected a duration such as 1h, 30m, 90s or 3600 "
           "(seconds), at least 1s and at most 365d";
  config.turn_ttl = *ttl;
  if (!config.turn_urls.empty() && turn_secret_file.empty())
    return "--turn requires --turn-secret-file (coturn's static-auth-secret)";
  if (!turn_secret_file.empty()) {
    std::string error;
    config.turn_secret = read_secret(turn_secret_file, error);
    if (!error.empty()) return error;
  }
  return {};
}

// ---------------------------------------------------------------------------

struct TurnSecret::Key {
  EVP_MAC* mac = nullptr;
  EVP_MAC_CTX* ctx = nullptr;  // initialised with the key, never updated: duplicated per use
  ~Key() {
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
  }
};

TurnSecret::TurnSecret(std::string_view secret) : key_(std::make_unique<Key>()) {
  key_->mac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
  if (key_->mac) key_->ctx = EVP_MAC_CTX_new(key_->mac);
  char digest[] = "SHA1";
  const OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
      OSSL_PARAM_construct_end()};
  if (!key_->ctx ||
      EVP_MAC_init(key_->ctx, reinterpret_cast<const unsigned char*>(secret.data()),
                   secret.size(), params) != 1)
    throw std::runtime_error("OpenSSL: cannot set up HMAC-SHA1 for the TURN credentials");
}

TurnSecret::~TurnSecret() = default;

std::string TurnSecret::credential(std::string_view username) const {
  unsigned char mac[EVP_MAX_MD_SIZE];
  std::size_t mac_size = 0;
  EVP_MAC_CTX* ctx = EVP_MAC_CTX_dup(key_->ctx);
  const bool ok = ctx &&
                  EVP_MAC_update(ctx, reinterpret_cast<const unsigned char*>(username.data()),
                                 username.size()) == 1 &&
                  EVP_MAC_final(ctx, mac, &mac_size, sizeof mac) == 1;
  EVP_MAC_CTX_free(ctx);
  if (!ok) throw std::runtime_error("OpenSSL: HMAC-SHA1 failed");
  unsigned char base64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  const int length = EVP_EncodeBlock(base64, mac, static_cast<int>(mac_size));
  return std::string(reinterpret_cast<const char*>(base64), static_cast<std::size_t>(length));
}

std::string turn_username(p2pmesh::PeerId peer, std::chrono::system_clock::time_point now,
                          std::chrono::seconds ttl) {
  const auto expiry =
      std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch()) + ttl;
  return std::to_string(expiry.count()) + ":" + std::to_string(peer);
}

// ---------------------------------------------------------------------------

WelcomeIceServers::WelcomeIceServers(const Config& config)
    : stun_urls_(config.stun_urls), turn_urls_(config.turn_urls), ttl_(config.turn_ttl) {
  if (auto error = check_urls(config); !error.empty()) throw std::invalid_argument(error);
  if (turn_urls_.empty()) return;
  if (config.turn_secret.empty())
    throw std::invalid_argument("--turn requires --turn-secret-file (coturn's static-auth-secret)");
  if (ttl_.count() <= 0) throw std::invalid_argument("--turn-ttl must be positive");
  turn_ = std::make_unique<TurnSecret>(config.turn_secret);
}

WelcomeIceServers::~WelcomeIceServers() = default;

std::vector<p2pmesh::IceServer> WelcomeIceServers::for_peer(
    p2pmesh::PeerId peer, std::chrono::system_clock::time_point now) const {
  std::vector<p2pmesh::IceServer> servers;
  servers.reserve(2);
  if (!stun_urls_.empty()) servers.push_back(p2pmesh::IceServer{stun_urls_, {}, {}});
  if (turn_) {
    std::string username = turn_username(peer, now, ttl_);
    std::string credential = turn_->credential(username);
    servers.push_back(p2pmesh::IceServer{turn_urls_, std::move(username), std::move(credential)});
  }
  return servers;
}

bool WelcomeIceServers::append_welcome(std::string& out, p2pmesh::PeerId peer) const {
  if (stun_urls_.empty() && !turn_) {
    p2pmesh::wire::append_welcome(out, peer);
    return false;
  }
  p2pmesh::wire::append_welcome(out, peer, for_peer(peer, std::chrono::system_clock::now()));
  return has_turn();
}

std::string WelcomeIceServers::describe() const {
  std::string text;
  const auto line = [&text](const char* kind, const std::vector<std::string>& urls) {
    if (urls.empty()) return;
    text += kind;
    for (const auto& url : urls) text += " " + url;
    text += '\n';
  };
  line("stun:", stun_urls_);
  line("turn:", turn_urls_);
  return text;
}

}  // namespace meshd
