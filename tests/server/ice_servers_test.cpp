// ICE servers in the welcome, end to end: the real meshd program with
// --stun/--turn/--turn-secret-file/--turn-ttl (and their MESHD_* variables)
// hands every connection the URLs and fresh coturn REST API credentials, and
// a real coturn (Debian's turnserver, on loopback) accepts them for a TURN
// allocation, and refuses a wrong password and an expired username.

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support.hpp"

#ifndef MESHD_BINARY
#error "MESHD_BINARY must name the meshd program"
#endif

namespace meshd::test {
namespace {

namespace wire = p2pmesh::wire;

constexpr const char* kSecret = "correct-horse-battery-staple";

std::string base64_hmac_sha1(const std::string& key, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  HMAC(EVP_sha1(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &size);
  unsigned char out[64];
  const int length = EVP_EncodeBlock(out, mac, static_cast<int>(size));
  return std::string(reinterpret_cast<const char*>(out), static_cast<std::size_t>(length));
}

std::string temp_file(const std::string& name, const std::string& contents) {
  const std::string path = testing::TempDir() + name + "-" + std::to_string(getpid());
  std::ofstream(path, std::ios::binary) << contents;
  return path;
}

// A program as a child process, stdout and stderr on pipes. Every wait is bounded.
class Child {
 public:
  explicit Child(const std::vector<std::string>& argv_in, bool search_path = false) {
    int out[2], err[2];
    if (pipe(out) != 0 || pipe(err) != 0) return;
    pid_ = fork();
    if (pid_ == 0) {
      dup2(out[1], STDOUT_FILENO);
      dup2(err[1], STDERR_FILENO);
      for (int fd : {out[0], out[1], err[0], err[1]}) close(fd);
      std::vector<std::string> args = argv_in;
      std::vector<char*> argv;
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      if (search_path)
        execvp(argv[0], argv.data());
      else
        execv(argv[0], argv.data());
      _exit(127);
    }
    close(out[1]);
    close(err[1]);
    out_ = out[0];
    err_ = err[0];
  }
  ~Child() {
    if (pid_ > 0 && !reaped_) {
      kill(pid_, SIGKILL);
      wait_exit();
    }
    if (out_ >= 0) close(out_);
    if (err_ >= 0) close(err_);
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  // The first stdout line, waiting at most `timeout`.
  std::string first_line(std::chrono::milliseconds timeout = kTimeout) {
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char c = 0;
    while (line.empty() || line.back() != '\n') {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      pollfd p{out_, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      if (read(out_, &c, 1) != 1) break;
      line += c;
    }
    return line;
  }
  // Exit status, -1 when killed by a signal; SIGKILL after `timeout`.
  int wait_exit(std::chrono::milliseconds timeout = kTimeout) {
    int status = 0;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
      const pid_t done = waitpid(pid_, &status, WNOHANG);
      if (done == pid_) break;
      if (done < 0) return -2;
      if (std::chrono::steady_clock::now() >= deadline) {
        kill(pid_, SIGKILL);
        waitpid(pid_, &status, 0);
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    reaped_ = true;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }
  // Everything on stderr (after the exit).
  std::string errors() { return read_all(err_); }
  void terminate() {
    if (pid_ > 0 && !reaped_) kill(pid_, SIGTERM);
  }

 private:
  static std::string read_all(int fd) {
    std::string text;
    char chunk[512];
    ssize_t n;
    fcntl(fd, F_SETFL, O_NONBLOCK);
    while ((n = read(fd, chunk, sizeof chunk)) > 0) text.append(chunk, static_cast<std::size_t>(n));
    return text;
  }
  pid_t pid_ = -1;
  int out_ = -1;
  int err_ = -1;
  bool reaped_ = false;
};

std::vector<std::string> meshd_args(std::vector<std::string> extra) {
  std::vector<std::string> args{MESHD_BINARY, "--host", "127.0.0.1", "--port", "0",
                                "--log-level", "warn"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::uint16_t port_from(const std::string& line) {
  const auto colon = line.rfind(':');
  if (line.rfind("meshd listening on 127.0.0.1:", 0) != 0 || colon == std::string::npos) return 0;
  return static_cast<std::uint16_t>(std::stoi(line.substr(colon + 1)));
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Checks one welcome: `stun` URLs without credentials, `turn` URLs with
// "<expiry>:<own id>" (expiry = now + ttl, +-5 s) and HMAC-SHA1 of kSecret.
void expect_welcome(const WsClient& client, const std::vector<std::string>& stun,
                    const std::vector<std::string>& turn, std::int64_t ttl) {
  wire::ServerMessage welcome;
  ASSERT_EQ(wire::decode(client.last_bytes(), welcome), wire::DecodeError::none);
  ASSERT_EQ(welcome.kind, wire::ServerMessage::Kind::welcome);
  EXPECT_EQ(welcome.welcome_id, client.id());
  ASSERT_EQ(welcome.ice_servers.size(), 2u);
  EXPECT_EQ(welcome.ice_servers[0], (p2pmesh::IceServer{stun, "", ""}));
  const auto& server = welcome.ice_servers[1];
  EXPECT_EQ(server.urls, turn);
  const auto colon = server.username.find(':');
  ASSERT_NE(colon, std::string::npos) << server.username;
  const std::int64_t expiry = std::stoll(server.username.substr(0, colon));
  EXPECT_GE(expiry, unix_now() + ttl - 5);
  EXPECT_LE(expiry, unix_now() + ttl + 5);
  EXPECT_EQ(server.username.substr(colon + 1), std::to_string(client.id()));
  EXPECT_EQ(server.credential, base64_hmac_sha1(kSecret, server.username));
  EXPECT_EQ(client.last_bytes().find(kSecret), std::string::npos);
  EXPECT_EQ(client.last_bytes().find("correct-horse"), std::string::npos);
}

TEST(IceServers, WelcomesCarryUrlsAndFreshCredentials) {
  const auto secret_file = temp_file("meshd-turn-secret", std::string(kSecret) + "\n");
  const std::vector<std::string> stun{"stun:127.0.0.1:3478", "stun:stun.example.org:3478"};
  const std::vector<std::string> turn{"turn:127.0.0.1:3478?transport=udp",
                                      "turns:turn.example.org:5349?transport=tcp"};
  Child meshd(meshd_args({"--stun", stun[0], "--stun", stun[1], "--turn", turn[0], "--turn",
                          turn[1], "--turn-secret-file", secret_file, "--turn-ttl", "1h"}));
  const auto port = port_from(meshd.first_line());
  ASSERT_NE(port, 0) << meshd.errors();
  WsClient a, b;
  ASSERT_TRUE(a.connect(port)) << a.error();
  ASSERT_TRUE(b.connect(port)) << b.error();
  EXPECT_NE(a.id(), b.id());
  expect_welcome(a, stun, turn, 3600);
  expect_welcome(b, stun, turn, 3600);
  // /metrics counts them; /healthz names the URLs; neither shows the secret.
  EXPECT_EQ(metric(port, "meshd_turn_credentials_issued_total"), 2);
  const auto health = http_get(port, "/healthz");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "ok\nstun: " + stun[0] + " " + stun[1] + "\nturn: " + turn[0] + " " +
                             turn[1] + "\n");
  for (const char* target : {"/healthz", "/metrics", "/groups"})
    EXPECT_EQ(http_get(port, target).body.find("correct-horse"), std::string::npos) << target;
  a.close();
  b.close();
  meshd.terminate();
  EXPECT_EQ(meshd.wait_exit(), 0);
  EXPECT_EQ(meshd.errors().find("correct-horse"), std::string::npos);  // nor in its log
  std::remove(secret_file.c_str());
}

TEST(IceServers, EnvironmentVariables) {
  const auto secret_file = temp_file("meshd-turn-secret-env", kSecret);
  setenv("MESHD_STUN", "stun:127.0.0.1:3478,stun:127.0.0.2:3478", 1);
  setenv("MESHD_TURN", "turn:127.0.0.1:3478", 1);
  setenv("MESHD_TURN_SECRET_FILE", secret_file.c_str(), 1);
  setenv("MESHD_TURN_TTL", "90s", 1);
  Child meshd(meshd_args({}));
  for (const char* name : {"MESHD_STUN", "MESHD_TURN", "MESHD_TURN_SECRET_FILE", "MESHD_TURN_TTL"})
    unsetenv(name);
  const auto port = port_from(meshd.first_line());
  ASSERT_NE(port, 0) << meshd.errors();
  WsClient a;
  ASSERT_TRUE(a.connect(port)) << a.error();
  expect_welcome(a, {"stun:127.0.0.1:3478", "stun:127.0.0.2:3478"}, {"turn:127.0.0.1:3478"}, 90);
  a.close();
  std::remove(secret_file.c_str());
}

TEST(IceServers, WithoutFlagsTheWelcomeHasNone) {
  Child meshd(meshd_args({}));
  const auto port = port_from(meshd.first_line());
  ASSERT_NE(port, 0) << meshd.errors();
  WsClient a;
  ASSERT_TRUE(a.connect(port)) << a.error();
  wire::ServerMessage welcome;
  ASSERT_EQ(wire::decode(a.last_bytes(), welcome), wire::DecodeError::none);
  EXPECT_TRUE(welcome.ice_servers.empty());
  // Byte for byte today's welcome: ServerMessage{welcome{id}}.
  EXPECT_EQ(a.last_bytes(), wire::encode(wire::ServerMessage{
                                wire::ServerMessage::Kind::welcome, a.id(), {}, {}, 0, {}, {}}));
  EXPECT_EQ(metric(port, "meshd_turn_credentials_issued_total"), 0);
  EXPECT_EQ(http_get(port, "/healthz").body, "ok\n");
  a.close();
}

TEST(IceServers, BadOptionsRefuseToStart) {
  const auto secret_file = temp_file("meshd-turn-secret-bad", kSecret);
  const auto empty_file = temp_file("meshd-turn-secret-empty", "\n");
  struct Case {
    std::vector<std::string> args;
    const char* expected;  // in the one line on stderr
  };
  const std::vector<Case> cases{
      {{"--stun", "turn:127.0.0.1:3478"}, "--stun 'turn:127.0.0.1:3478'"},
      {{"--stun", "127.0.0.1:3478"}, "stun:"},
      {{"--turn", "http://127.0.0.1", "--turn-secret-file", secret_file}, "turn:"},
      {{"--turn", "turn:127.0.0.1:3478"}, "--turn requires --turn-secret-file"},
      {{"--turn", "turn:127.0.0.1:3478", "--turn-secret-file", "/nonexistent/meshd-secret"},
       "--turn-secret-file '/nonexistent/meshd-secret'"},
      {{"--turn", "turn:127.0.0.1:3478", "--turn-secret-file", empty_file}, "empty"},
      {{"--turn", "turn:127.0.0.1:3478", "--turn-secret-file", secret_file, "--turn-ttl", "0"},
       "--turn-ttl '0'"},
      {{"--turn-ttl", "soon"}, "--turn-ttl 'soon'"},
  };
  for (const auto& c : cases) {
    Child meshd(meshd_args(c.args));
    EXPECT_NE(meshd.wait_exit(), 0) << c.expected;
    const auto errors = meshd.errors();
    EXPECT_NE(errors.find(c.expected), std::string::npos) << errors;
    EXPECT_EQ(std::count(errors.begin(), errors.end(), '\n'), 1) << errors;
    EXPECT_EQ(errors.find(kSecret), std::string::npos);
  }
  std::remove(secret_file.c_str());
  std::remove(empty_file.c_str());
}

// ---------------------------------------------------------------------------
// A minimal TURN client (RFC 5766 Allocate over UDP, RFC 5389 long-term
// credentials): enough to learn whether coturn accepts a username/password.

class StunSocket {
 public:
  explicit StunSocket(std::uint16_t port) {
    fd_ = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ >= 0) connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to);
  }
  ~StunSocket() {
    if (fd_ >= 0) close(fd_);
  }
  StunSocket(const StunSocket&) = delete;
  StunSocket& operator=(const StunSocket&) = delete;

  struct Response {
    std::uint16_t type = 0;  // 0: no answer
    int error = 0;           // ERROR-CODE, 0 when none
    std::string realm, nonce;
  };

  // Sends `request` (retransmitted every 250 ms) until an answer with its
  // transaction id arrives, for at most 2 s.
  Response exchange(const std::string& request) {
    Response response;
    for (int attempt = 0; attempt < 8 && response.type == 0; ++attempt) {
      if (send(fd_, request.data(), request.size(), 0) < 0) break;
      pollfd p{fd_, POLLIN, 0};
      while (response.type == 0 && poll(&p, 1, 250) > 0) {
        char buffer[1500];
        const ssize_t n = recv(fd_, buffer, sizeof buffer, 0);
        if (n < 20 || std::memcmp(buffer + 8, request.data() + 8, 12) != 0) continue;
        response = parse(std::string_view(buffer, static_cast<std::size_t>(n)));
      }
    }
    return response;
  }

 private:
  static Response parse(std::string_view bytes) {
    Response response;
    const auto u16 = [&](std::size_t at) {
      return static_cast<std::uint16_t>((static_cast<unsigned char>(bytes[at]) << 8) |
                                        static_cast<unsigned char>(bytes[at + 1]));
    };
    response.type = u16(0);
    std::size_t at = 20;
    while (at + 4 <= bytes.size()) {
      const std::uint16_t type = u16(at), length = u16(at + 2);
      if (at + 4 + length > bytes.size()) break;
      const std::string_view value = bytes.substr(at + 4, length);
      if (type == 0x0009 && length >= 4)  // ERROR-CODE
        response.error = (value[2] & 7) * 100 + static_cast<unsigned char>(value[3]);
      if (type == 0x0014) response.realm = value;  // REALM
      if (type == 0x0015) response.nonce = value;  // NONCE
      at += 4 + ((length + 3u) & ~3u);
    }
    return response;
  }
  int fd_ = -1;
};

class StunMessage {
 public:
  explicit StunMessage(std::uint16_t type) {
    static std::mt19937 random{std::random_device{}()};
    put16(type);
    put16(0);
    bytes_ += std::string("\x21\x12\xa4\x42", 4);  // magic cookie
    for (int i = 0; i < 12; ++i) bytes_ += static_cast<char>(random() & 0xff);
  }
  StunMessage& attribute(std::uint16_t type, std::string_view value) {
    put16(type);
    put16(static_cast<std::uint16_t>(value.size()));
    bytes_ += value;
    while (bytes_.size() % 4) bytes_ += '\0';
    set_length(bytes_.size() - 20);
    return *this;
  }
  // MESSAGE-INTEGRITY with the long-term key MD5(username:realm:password).
  std::string with_integrity(const std::string& username, const std::string& realm,
                             const std::string& password) {
    const std::string text = username + ":" + realm + ":" + password;
    unsigned char key[EVP_MAX_MD_SIZE];
    unsigned int key_size = 0;
    EVP_Digest(text.data(), text.size(), key, &key_size, EVP_md5(), nullptr);
    set_length(bytes_.size() - 20 + 24);  // the length counts the integrity attribute
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_size = 0;
    HMAC(EVP_sha1(), key, static_cast<int>(key_size),
         reinterpret_cast<const unsigned char*>(bytes_.data()), bytes_.size(), mac, &mac_size);
    std::string out = bytes_;
    out += std::string("\x00\x08\x00\x14", 4);
    out.append(reinterpret_cast<const char*>(mac), mac_size);
    return out;
  }
  const std::string& bytes() const { return bytes_; }

 private:
  void put16(std::uint16_t value) {
    bytes_ += static_cast<char>(value >> 8);
    bytes_ += static_cast<char>(value & 0xff);
  }
  void set_length(std::size_t length) {
    bytes_[2] = static_cast<char>(length >> 8);
    bytes_[3] = static_cast<char>(length & 0xff);
  }
  std::string bytes_;
};

constexpr std::uint16_t kBinding = 0x0001, kBindingSuccess = 0x0101;
constexpr std::uint16_t kAllocate = 0x0003, kAllocateSuccess = 0x0103, kAllocateError = 0x0113;
const std::string kUdpTransport("\x11\x00\x00\x00", 4);  // REQUESTED-TRANSPORT: UDP (17)

// 0 when coturn grants a TURN allocation to username/password, else the
// STUN error code of the refusal (-1: no answer).
int allocate(std::uint16_t port, const std::string& username, const std::string& password) {
  StunSocket socket(port);
  // The first request has no credentials: coturn answers 401 with its realm and nonce.
  const auto challenge =
      socket.exchange(StunMessage(kAllocate).attribute(0x0019, kUdpTransport).bytes());
  if (challenge.type != kAllocateError || challenge.error != 401 || challenge.nonce.empty())
    return -1;
  const auto answer = socket.exchange(StunMessage(kAllocate)
                                          .attribute(0x0019, kUdpTransport)
                                          .attribute(0x0006, username)          // USERNAME
                                          .attribute(0x0014, challenge.realm)   // REALM
                                          .attribute(0x0015, challenge.nonce)   // NONCE
                                          .with_integrity(username, challenge.realm, password));
  if (answer.type == kAllocateSuccess) return 0;
  if (answer.type == kAllocateError) return answer.error;
  return -1;
}

std::uint16_t free_udp_port() {
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof address;
  bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size);
  close(fd);
  return ntohs(address.sin_port);
}

bool have_turnserver() {
  Child probe({"sh", "-c", "command -v turnserver"}, true);
  return probe.wait_exit() == 0;
}

// coturn on 127.0.0.1 with the REST API secret; waits (bounded) until it
// answers a STUN binding request.
class Coturn {
 public:
  explicit Coturn(const std::string& secret)
      : port_(free_udp_port()),
        relay_base_(static_cast<std::uint16_t>(50000 + (getpid() % 600) * 25)),
        pid_file_(temp_file("coturn-pid", "")),
        db_file_(temp_file("coturn-db", "")),
        child_({"turnserver", "-n", "--listening-ip=127.0.0.1", "--relay-ip=127.0.0.1",
                "--listening-port=" + std::to_string(port_), "--use-auth-secret",
                "--static-auth-secret=" + secret, "--realm=meshd-test", "--no-tls", "--no-dtls",
                "--no-cli", "--min-port=" + std::to_string(relay_base_),
                "--max-port=" + std::to_string(relay_base_ + 24), "--log-file=stdout",
                // Its own files and no RFC 5780 second port (listening port + 1,
                // which another test's coturn may hold): tests run in parallel.
                "--no-rfc5780", "--pidfile=" + pid_file_, "--db=" + db_file_},
               true) {}
  ~Coturn() {
    child_.terminate();
    child_.wait_exit();
    std::remove(pid_file_.c_str());
    std::remove(db_file_.c_str());
  }
  bool wait_ready() {
    const auto deadline = std::chrono::steady_clock::now() + kTimeout;
    while (std::chrono::steady_clock::now() < deadline) {
      StunSocket socket(port_);
      if (socket.exchange(StunMessage(kBinding).bytes()).type == kBindingSuccess) return true;
    }
    return false;
  }
  std::uint16_t port() const { return port_; }

 private:
  std::uint16_t port_;
  std::uint16_t relay_base_;
  std::string pid_file_;
  std::string db_file_;
  Child child_;
};

// The TURN entry of the welcome of a fresh connection to `port`.
p2pmesh::IceServer turn_entry(std::uint16_t port) {
  WsClient client;
  if (!client.connect(port)) return {};
  wire::ServerMessage welcome;
  if (wire::decode(client.last_bytes(), welcome) != wire::DecodeError::none ||
      welcome.ice_servers.empty())
    return {};
  client.close();
  return welcome.ice_servers.back();
}

TEST(IceServers, CoturnAcceptsMeshdCredentials) {
  ASSERT_TRUE(have_turnserver())
      << "coturn's turnserver is not installed: apt-get install coturn (tools/deps.sh)";
  // The free port may be taken between our probe and coturn's bind (other
  // tests' WebRTC peers bind ephemeral UDP ports): a coturn that does not
  // answer is started again on another port, three times at most.
  std::optional<Coturn> coturn;
  for (int attempt = 0; attempt < 3 && !coturn; ++attempt) {
    coturn.emplace(kSecret);
    if (!coturn->wait_ready()) coturn.reset();
  }
  ASSERT_TRUE(coturn) << "coturn did not answer on 127.0.0.1 (3 attempts on free ports)";
  const auto secret_file = temp_file("meshd-turn-secret-coturn", std::string(kSecret) + "\n");
  const std::string url = "turn:127.0.0.1:" + std::to_string(coturn->port()) + "?transport=udp";

  Child meshd(meshd_args({"--turn", url, "--turn-secret-file", secret_file}));
  const auto port = port_from(meshd.first_line());
  ASSERT_NE(port, 0) << meshd.errors();
  const auto turn = turn_entry(port);
  ASSERT_EQ(turn.urls, std::vector<std::string>{url});
  EXPECT_EQ(allocate(coturn->port(), turn.username, turn.credential), 0);
  EXPECT_EQ(allocate(coturn->port(), turn.username, turn.credential + "x"), 401);
  EXPECT_EQ(allocate(coturn->port(), turn.username, "wrong password"), 401);

  // Credentials valid for 1 s are refused 2 s later.
  Child short_lived(meshd_args({"--turn", url, "--turn-secret-file", secret_file,
                                "--turn-ttl", "1s"}));
  const auto short_port = port_from(short_lived.first_line());
  ASSERT_NE(short_port, 0) << short_lived.errors();
  const auto expiring = turn_entry(short_port);
  ASSERT_FALSE(expiring.username.empty());
  std::this_thread::sleep_for(std::chrono::seconds(2));
  EXPECT_EQ(allocate(coturn->port(), expiring.username, expiring.credential), 401);
  std::remove(secret_file.c_str());
}

}  // namespace
}  // namespace meshd::test
