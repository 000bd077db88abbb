// meshd-load: load generator and benchmark for meshd (see docs/meshd.md).
//
// Opens N WebSocket connections to meshd (spawning it, or an existing one),
// drives publishers at a given rate, and prints one summary line: delivered
// topic messages per second, publish-to-delivery latency p50/p99, meshd's
// CPU and RSS. Modes:
//   fanout  generic pub/sub (meshd --open): N connections in topics of
//           --group-size subscribers, --publishers per topic, --rate
//           publications per second in total, --payload bytes each
//   idle    N connections that only subscribe; reports RSS per connection
//   mesh    --groups x --peers peers speaking WIRE.md (access rules on):
//           each subscribes to <g>.mesh and its own topics, publishes its
//           status every --status-interval s, and each group makes
//           --link-changes connected_to/disconnected_from per second.
//           As paced peers do (docs/membership.md): --refresh-per-s R
//           stretches a peer's interval to max(interval, peers / R); --churn
//           P replaces P% of each group per minute with what the peers send
//           then (--churn-announce status: the leaver's departure, the
//           newcomer's snapshot, its status, then its --churn-links links
//           in one status, and --churn-shed links shed by one end each;
//           links: as peers before status version 4, the leaver's
//           neighbours' disconnected_from, the new links from both ends,
//           and a status once they are measured); --batch-ms
//           asks meshd for batches of <g>.mesh updates (SubscribeRequest.batch_ms)
//
// --cluster N (fanout): N meshd nodes on one spawned nats-server
// (docs/cluster.md); connection i goes to node i % N, so every topic spans
// the nodes; latency is split into same-node and cross-node deliveries, CPU
// summed over the nodes (and the nats-server's apart). --compare-cluster N:
// alternate rounds of one plain meshd and of N nodes, same total load.
//
// --tls: wss:// (OpenSSL, non-blocking, in the same epoll loop); a spawned
// meshd gets --tls-cert/--tls-key (given, or a throwaway self-signed
// certificate). --compare-tls: alternate rounds of plain and TLS (fresh
// meshd each) and print the medians of both and their ratio.
//
// A lean client on purpose (one thread, epoll, hand-written WebSocket
// framing) so that the load generator is not the bottleneck on a 2-core box.
// Raises RLIMIT_NOFILE to its hard limit; 10,000 connections need about
// 10,100 descriptors here and as many in meshd (ulimit -Hn >= 10240).

#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <arpa/inet.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "wire.hpp"

namespace {

namespace wire = p2pmesh::wire;
using Clock = std::chrono::steady_clock;

std::int64_t now_us(Clock::time_point origin) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - origin).count();
}

// ---- meshd process: spawn, port, CPU and RSS from /proc ----

struct MeshdProcess {
  pid_t pid = -1;
  bool spawned = false;
  std::uint16_t port = 0;

  // read_port: the program prints "... listening on HOST:PORT" first (meshd).
  bool spawn(const std::string& program, std::vector<std::string> args, bool read_port = true) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    pid = fork();
    if (pid == 0) {
      if (read_port) {
        dup2(fds[1], STDOUT_FILENO);
      } else {  // nats-server: its log is noise here
        const int null = open("/dev/null", O_WRONLY);
        dup2(null, STDOUT_FILENO);
        dup2(null, STDERR_FILENO);
      }
      close(fds[0]);
      close(fds[1]);
      std::vector<char*> argv;
      std::string prog = program;
      argv.push_back(prog.data());
      for (auto& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv(prog.c_str(), argv.data());
      std::perror(("execv " + prog).c_str());
      _exit(127);
    }
    close(fds[1]);
    spawned = true;
    if (!read_port) {
      close(fds[0]);
      return true;
    }
    FILE* out = fdopen(fds[0], "r");
    char line[256] = {};
    const bool ok = out && fgets(line, sizeof line, out);
    if (out) fclose(out);
    if (!ok) return false;
    const char* colon = std::strrchr(line, ':');
    if (!colon) return false;
    port = static_cast<std::uint16_t>(std::atoi(colon + 1));
    return port != 0;
  }

  void signal_stop() {
    if (spawned && pid > 0) kill(pid, SIGTERM);
  }
  void stop() {
    if (!spawned || pid <= 0) return;
    kill(pid, SIGTERM);
    int status = 0;
    waitpid(pid, &status, 0);
    spawned = false;
  }

  double cpu_seconds() const {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto close_paren = text.rfind(')');
    if (close_paren == std::string::npos) return 0;
    std::istringstream fields(text.substr(close_paren + 2));
    std::string field;
    unsigned long long utime = 0, stime = 0;
    for (int i = 3; i <= 15 && fields >> field; ++i) {
      if (i == 14) utime = std::stoull(field);
      if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
  }

  double rss_kib() const {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line))
      if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6));
    return 0;
  }
};

// ---- a lean WebSocket client connection ----

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;  // --tls
  enum class State : std::uint8_t {
    connecting,
    handshaking,  // TLS
    upgrading,
    open,
    closed
  } state = State::connecting;
  p2pmesh::PeerId id = 0;
  std::uint8_t node = 0;  // --cluster: index of the node it is connected to
  std::uint32_t group = 0;
  std::uint32_t index_in_group = 0;
  bool publisher = false;
  std::string in;
  std::size_t in_off = 0;
  std::string out;
  std::size_t out_off = 0;
  bool want_write = false;
  std::vector<p2pmesh::PeerId> links;  // mesh mode
  std::uint32_t next_status_us = 0;    // mesh mode
  // mesh mode: when it (re)subscribed; statuses sent before are the
  // snapshot's, not live deliveries (no latency sample)
  std::uint32_t joined_us = 0;
};

struct Stats {
  std::uint64_t delivered = 0;  // frames
  std::uint64_t updates = 0;    // mesh mode: messages, a batch frame holding several
  std::uint64_t welcomes = 0;
  std::uint64_t closed = 0;
  std::vector<std::uint32_t> latency_us;  // histogram, 1 us buckets up to 2 s
  std::uint64_t latency_overflow = 0;
  bool measuring = false;
  Stats() : latency_us(2'000'000, 0) {}
  void record(std::int64_t us) {
    if (!measuring) return;
    if (us < 0) us = 0;
    if (us >= static_cast<std::int64_t>(latency_us.size()))
      ++latency_overflow;
    else
      ++latency_us[static_cast<std::size_t>(us)];
  }
  double percentile(double p) const {
    std::uint64_t total = latency_overflow;
    for (auto c : latency_us) total += c;
    if (total == 0) return -1;
    const auto target = static_cast<std::uint64_t>(p * static_cast<double>(total));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < latency_us.size(); ++i) {
      seen += latency_us[i];
      if (seen > target) return static_cast<double>(i);
    }
    return static_cast<double>(latency_us.size());
  }
};

class Load {
 public:
  // `tls`: a client context for wss://, null for ws://.
  // Connection i goes to ports[i % ports.size()] (--cluster: one per node).
  Load(std::vector<std::uint16_t> ports, Clock::time_point origin, SSL_CTX* tls)
      : ports_(std::move(ports)), origin_(origin), tls_(tls) {
    epoll_ = epoll_create1(0);
  }
  ~Load() {
    for (auto& c : conns_) {
      SSL_free(c.ssl);
      if (c.fd >= 0) close(c.fd);
    }
    close(epoll_);
  }

  std::vector<Conn> conns_;
  Stats stats;
  // --cluster (fanout): latencies of same-node and cross-node deliveries
  // (the payload's byte 8 holds the publisher's node).
  std::unique_ptr<Stats> same_node, cross_node;
  std::string mode;
  std::size_t payload_size = 64;

  // Opens connections until there are `count` (those already open stay; at
  // most `parallel` handshakes at once) and waits for their welcomes.
  bool open_all(std::size_t count, std::size_t parallel) {
    std::size_t started = conns_.size();
    conns_.resize(count);
    const auto deadline = Clock::now() + std::chrono::seconds(60 + count / 200);
    while (stats.welcomes + stats.closed < count) {
      while (started < count && started - (stats.welcomes + stats.closed) < parallel) {
        start_connect(started);
        ++started;
      }
      poll(1);
      if (Clock::now() > deadline) {
        std::fprintf(stderr, "meshd-load: timed out opening connections (%llu/%zu)\n",
                     static_cast<unsigned long long>(stats.welcomes), count);
        return false;
      }
    }
    if (stats.closed) {
      std::fprintf(stderr, "meshd-load: %llu connections failed\n",
                   static_cast<unsigned long long>(stats.closed));
      return false;
    }
    return true;
  }

  void send_frame(Conn& c, const std::string& message) {
    // Client frames are masked; a zero key leaves the payload as is.
    char header[14];
    std::size_t n = 0;
    header[n++] = static_cast<char>(0x82);
    const std::size_t len = message.size();
    if (len < 126) {
      header[n++] = static_cast<char>(0x80 | len);
    } else if (len <= 0xffff) {
      header[n++] = static_cast<char>(0x80 | 126);
      header[n++] = static_cast<char>(len >> 8);
      header[n++] = static_cast<char>(len & 0xff);
    } else {
      header[n++] = static_cast<char>(0x80 | 127);
      for (int shift = 56; shift >= 0; shift -= 8)
        header[n++] = static_cast<char>((static_cast<std::uint64_t>(len) >> shift) & 0xff);
    }
    for (int i = 0; i < 4; ++i) header[n++] = 0;
    c.out.append(header, n);
    c.out.append(message);
    mark_write(c);
  }

  void subscribe(Conn& c, const std::string& topic, std::uint32_t batch_ms = 0) {
    wire::ClientMessage m;
    m.kind = wire::ClientMessage::Kind::subscribe;
    m.topic = topic;
    m.batch_ms = batch_ms;
    send_frame(c, wire::encode(m));
  }

  void unsubscribe(Conn& c, const std::string& topic) {
    wire::ClientMessage m;
    m.kind = wire::ClientMessage::Kind::unsubscribe;
    m.topic = topic;
    send_frame(c, wire::encode(m));
  }

  void publish(Conn& c, const std::string& topic, const std::string& payload) {
    wire::ClientMessage m;
    m.kind = wire::ClientMessage::Kind::publish;
    m.topics = {topic};
    m.payload = payload;
    send_frame(c, wire::encode(m));
  }

  // Appends a pre-encoded frame whose last payload_size bytes start with the
  // send time (fan-out mode: no encoding on the hot path).
  void publish_template(Conn& c, const std::string& frame) {
    const std::size_t at = c.out.size() + frame.size() - payload_size;
    c.out.append(frame);
    const std::int64_t t = now_us(origin_);
    std::memcpy(&c.out[at], &t, sizeof t);
    mark_write(c);
  }

  void flush_all() {
    for (std::size_t i : dirty_) {
      Conn& c = conns_[i];
      c.want_write = false;
      write_some(c);
    }
    dirty_.clear();
  }

  void poll(int timeout_ms) {
    flush_all();
    epoll_event events[512];
    const int n = epoll_wait(epoll_, events, 512, timeout_ms);
    for (int i = 0; i < n; ++i) {
      Conn& c = conns_[events[i].data.u64];
      if (events[i].events & (EPOLLERR | EPOLLHUP)) {
        if (c.state == Conn::State::connecting) {
          fail(c);
          continue;
        }
      }
      if (events[i].events & EPOLLOUT) on_writable(c);
      if (events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) on_readable(c);
    }
  }

  // Mesh mode: called for each delivered message body.
  std::function<void(Conn&, const std::string_view topic, std::string_view body)> on_topic;

 private:
  void start_connect(std::size_t index) {
    Conn& c = conns_[index];
    c.fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      std::perror("socket");
      fail(c);
      return;
    }
    int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    c.node = static_cast<std::uint8_t>(index % ports_.size());
    addr.sin_port = htons(ports_[c.node]);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connect(c.fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u64 = index;
    epoll_ctl(epoll_, EPOLL_CTL_ADD, c.fd, &ev);
    c.want_write = true;
    c.out =
        "GET /service HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
  }

  void fail(Conn& c) {
    if (c.state == Conn::State::closed) return;
    c.state = Conn::State::closed;
    ++stats.closed;
    SSL_free(c.ssl);
    c.ssl = nullptr;
    if (c.fd >= 0) {
      epoll_ctl(epoll_, EPOLL_CTL_DEL, c.fd, nullptr);
      close(c.fd);
      c.fd = -1;
    }
  }

  void mark_write(Conn& c) {
    if (c.want_write || c.state == Conn::State::connecting ||
        c.state == Conn::State::handshaking)
      return;
    c.want_write = true;
    dirty_.push_back(static_cast<std::size_t>(&c - conns_.data()));
  }

  void set_epollout(Conn& c, bool on) {
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.u64 = static_cast<std::uint64_t>(&c - conns_.data());
    epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
  }

  // send(), or SSL_write one record at a time: after WANT_WRITE, OpenSSL
  // takes the same bytes again from wherever c.out now is (moving buffer).
  ssize_t send_some(Conn& c, const char* data, std::size_t size) {
    if (!c.ssl) return ::send(c.fd, data, size, MSG_NOSIGNAL | MSG_DONTWAIT);
    ERR_clear_error();
    const int n = SSL_write(c.ssl, data, static_cast<int>(std::min<std::size_t>(size, 1 << 30)));
    if (n > 0) return n;
    const int error = SSL_get_error(c.ssl, n);
    errno = error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ ? EAGAIN : EPIPE;
    return -1;
  }

  void write_some(Conn& c) {
    if (c.fd < 0) return;
    while (c.out_off < c.out.size()) {
      const ssize_t n = send_some(c, c.out.data() + c.out_off, c.out.size() - c.out_off);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) {
          set_epollout(c, true);
          return;
        }
        fail(c);
        return;
      }
      c.out_off += static_cast<std::size_t>(n);
    }
    c.out.clear();
    c.out_off = 0;
  }

  // TLS: one more step of the client handshake; the upgrade request follows it.
  void handshake(Conn& c) {
    ERR_clear_error();
    const int result = SSL_do_handshake(c.ssl);
    if (result == 1) {
      c.state = Conn::State::upgrading;
      set_epollout(c, false);
      write_some(c);
      return;
    }
    const int error = SSL_get_error(c.ssl, result);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
      set_epollout(c, error == SSL_ERROR_WANT_WRITE);
      return;
    }
    if (stats.closed == 0) {
      char reason[256];
      ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
      std::fprintf(stderr, "meshd-load: TLS handshake failed: %s\n", reason);
    }
    fail(c);
  }

  void on_writable(Conn& c) {
    if (c.state == Conn::State::handshaking) {
      handshake(c);
      return;
    }
    if (c.state == Conn::State::connecting) {
      int error = 0;
      socklen_t len = sizeof error;
      getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &len);
      if (error) {
        fail(c);
        return;
      }
      c.want_write = false;
      if (tls_) {
        c.ssl = SSL_new(tls_);
        SSL_set_fd(c.ssl, c.fd);
        SSL_set_connect_state(c.ssl);
        SSL_set_tlsext_host_name(c.ssl, "localhost");
        SSL_set1_host(c.ssl, "localhost");  // checked when the context verifies (--ca-file)
        c.state = Conn::State::handshaking;
        handshake(c);
        return;
      }
      c.state = Conn::State::upgrading;
    }
    set_epollout(c, false);
    write_some(c);
  }

  void on_readable(Conn& c) {
    if (c.fd < 0) return;
    if (c.state == Conn::State::handshaking) {
      handshake(c);
      return;
    }
    char buffer[65536];
    if (!c.ssl) {
      const ssize_t n = ::recv(c.fd, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        fail(c);
        return;
      }
      if (n < 0) return;
      c.in.append(buffer, static_cast<std::size_t>(n));
      on_input(c);
      return;
    }
    // TLS: read until OpenSSL wants the socket again, or decrypted bytes
    // could wait in OpenSSL for an epoll event that never comes.
    while (c.ssl) {
      ERR_clear_error();
      const int n = SSL_read(c.ssl, buffer, sizeof buffer);
      if (n <= 0) {
        const int error = SSL_get_error(c.ssl, n);
        if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE) fail(c);
        return;
      }
      c.in.append(buffer, static_cast<std::size_t>(n));
      on_input(c);
    }
  }

  void on_input(Conn& c) {
    if (c.state == Conn::State::upgrading) {
      const auto end = c.in.find("\r\n\r\n");
      if (end == std::string::npos) return;
      if (c.in.compare(0, 12, "HTTP/1.1 101") != 0) {
        std::fprintf(stderr, "meshd-load: upgrade refused: %.40s\n", c.in.c_str());
        fail(c);
        return;
      }
      c.state = Conn::State::open;
      c.in_off = end + 4;
    }
    parse_frames(c);
  }

  void parse_frames(Conn& c) {
    const std::int64_t t = now_us(origin_);
    for (;;) {
      const std::size_t avail = c.in.size() - c.in_off;
      if (avail < 2) break;
      const auto* p = reinterpret_cast<const unsigned char*>(c.in.data() + c.in_off);
      std::size_t len = p[1] & 0x7f;
      std::size_t header = 2;
      if (len == 126) {
        if (avail < 4) break;
        len = (std::size_t{p[2]} << 8) | p[3];
        header = 4;
      } else if (len == 127) {
        if (avail < 10) break;
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
        header = 10;
      }
      if (avail < header + len) break;
      const std::string_view payload(c.in.data() + c.in_off + header, len);
      const unsigned opcode = p[0] & 0x0f;
      c.in_off += header + len;
      if (opcode == 0x9) {  // ping: answer with a pong
        std::string pong;
        pong.push_back(static_cast<char>(0x8a));
        pong.push_back(static_cast<char>(0x80 | payload.size()));
        pong.append(4, '\0');
        pong.append(payload);
        c.out.append(pong);
        mark_write(c);
        continue;
      }
      if (opcode == 0x8) {
        fail(c);
        return;
      }
      if (opcode != 0x2) continue;
      if (c.id == 0) {
        wire::ServerMessage m;
        if (wire::decode(payload, m) == wire::DecodeError::none &&
            m.kind == wire::ServerMessage::Kind::welcome) {
          c.id = m.welcome_id;
          ++stats.welcomes;
        }
        continue;
      }
      if (stats.measuring) ++stats.delivered;
      if (on_topic) {
        wire::ServerMessage m;
        if (wire::decode(payload, m) == wire::DecodeError::none) {
          if (m.kind == wire::ServerMessage::Kind::topic_batch) {
            for (const auto& entry : m.batch) on_topic(c, m.topic, entry.body);
            if (stats.measuring) stats.updates += m.batch.size();
          } else {
            on_topic(c, m.topic, m.body);
            if (stats.measuring) ++stats.updates;
          }
        }
      } else if (payload.size() >= payload_size) {
        std::int64_t sent = 0;
        const char* body = payload.data() + payload.size() - payload_size;
        std::memcpy(&sent, body, sizeof sent);
        stats.record(t - sent);
        if (same_node)
          (static_cast<std::uint8_t>(body[8]) == c.node ? *same_node : *cross_node).record(t - sent);
      }
    }
    if (c.in_off == c.in.size()) {
      c.in.clear();
      c.in_off = 0;
    } else if (c.in_off > 65536) {
      c.in.erase(0, c.in_off);
      c.in_off = 0;
    }
  }

  std::vector<std::uint16_t> ports_;
  Clock::time_point origin_;
  SSL_CTX* tls_ = nullptr;
  int epoll_ = -1;
  std::vector<std::size_t> dirty_;
};

void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

double self_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

std::string self_dir() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : exe.parent_path().string();
}

// ---- TLS (--tls) ----

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// The client side. Without --ca-file the certificate is not verified: this
// is a load generator on loopback against a meshd it usually spawned itself
// with a throwaway certificate; verification would measure nothing.
SslCtxPtr client_context(const std::string& ca_file) {
  SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  SSL_CTX_set_read_ahead(ctx.get(), 1);
  if (ca_file.empty()) {
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
  } else {
    if (SSL_CTX_load_verify_locations(ctx.get(), ca_file.c_str(), nullptr) != 1) {
      std::fprintf(stderr, "meshd-load: cannot read --ca-file %s\n", ca_file.c_str());
      return nullptr;
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);  // and the name: localhost
  }
  return ctx;
}

// A throwaway self-signed certificate for a spawned meshd (localhost,
// 127.0.0.1; EC P-256, one day) in a fresh directory; false on failure.
bool make_certificate(const std::string& dir, std::string& cert_file, std::string& key_file) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  bool ok = key && cert;
  if (ok) {
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509V3_CTX ctx;
    X509V3_set_ctx_nodb(&ctx);
    X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
    X509_EXTENSION* san =
        X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    ok = san && X509_add_ext(cert, san, -1) == 1 && X509_sign(cert, key, EVP_sha256()) > 0;
    X509_EXTENSION_free(san);
  }
  cert_file = dir + "/cert.pem";
  key_file = dir + "/key.pem";
  if (ok) {
    FILE* out = std::fopen(cert_file.c_str(), "w");
    ok = out && PEM_write_X509(out, cert) == 1;
    if (out) std::fclose(out);
  }
  if (ok) {
    FILE* out = std::fopen(key_file.c_str(), "w");
    ok = out && PEM_write_PrivateKey(out, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
    if (out) std::fclose(out);
  }
  X509_free(cert);
  EVP_PKEY_free(key);
  return ok;
}

// ---- one run: connections, load, one summary line ----

struct Options {
  std::string mode = "fanout";
  std::string meshd_path = self_dir() + "/meshd";
  std::vector<std::string> meshd_args;
  int port = 0;
  int pid = 0;
  std::size_t connections = 1000;
  std::size_t group_size = 100;
  std::size_t publishers = 1;
  double rate = 10000;
  std::size_t payload = 64;
  double duration = 5;
  double warmup = 1;
  std::size_t groups = 100;
  std::size_t peers = 100;
  double status_interval = 60;
  double link_changes = 10;
  double refresh_per_s = 0;   // mesh: 0 = a status every interval (no pacing)
  double churn = 0;           // mesh: % of each group replaced per minute
  std::size_t churn_links = 4;
  // What peers publish for a churn event: "status", today's (version 4:
  // the newcomer's links in one status with their RTTs, shed links said by
  // one end, no link downs for a departed peer); "links", before (a
  // connected_to from both ends per link, the leaver's neighbours'
  // disconnected_from, then a status for the RTTs).
  std::string churn_announce = "status";
  std::size_t churn_shed = 2;  // status: links shed to make room per event
  std::uint32_t batch_ms = 0;
  std::size_t parallel = 64;
  // TLS: the spawned meshd's files (generated when empty), the client's CA.
  std::string tls_cert;
  std::string tls_key;
  std::string ca_file;
  std::size_t cluster = 0;  // --cluster N: N meshd nodes on a spawned nats-server
  std::string nats_server = "nats-server";
};

struct Figures {
  bool ok = false;
  double delivered_rate = 0;   // messages per second
  double p50_us = 0;
  double p99_us = 0;
  double meshd_cpu = 0;        // fraction of one core
  double per_cpu_second = 0;   // delivered per meshd CPU second
  double rss_per_connection_kib = 0;
  // --cluster
  double same_p50_us = 0, same_p99_us = 0, cross_p50_us = 0, cross_p99_us = 0;
  double nats_cpu = 0;         // fraction of one core
};

// A loopback port nobody listens on (for the spawned nats-server).
std::uint16_t free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  std::uint16_t port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

bool listening(std::uint16_t port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  close(fd);
  return ok;
}

// GET path on 127.0.0.1:port, the whole response ("" when it fails).
std::string http_get(std::uint16_t port, const std::string& path) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string response;
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string request = "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buffer[4096];
      ssize_t n = 0;
      while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0)
        response.append(buffer, static_cast<std::size_t>(n));
    }
  }
  close(fd);
  return response;
}

// What a run measures: one meshd, or (--cluster) N meshd nodes and the
// nats-server they share.
struct Servers {
  std::vector<MeshdProcess> nodes;
  MeshdProcess nats;

  std::vector<std::uint16_t> ports() const {
    std::vector<std::uint16_t> result;
    for (const auto& node : nodes) result.push_back(node.port);
    return result;
  }
  bool measurable() const { return nodes.front().pid > 0; }
  double meshd_cpu_seconds() const {
    double sum = 0;
    for (const auto& node : nodes) sum += node.cpu_seconds();
    return sum;
  }
  double meshd_rss_kib() const {
    double sum = 0;
    for (const auto& node : nodes) sum += node.rss_kib();
    return sum;
  }
  double nats_cpu_seconds() const { return nats.spawned ? nats.cpu_seconds() : 0; }
  void signal_stop() {
    for (auto& node : nodes) node.signal_stop();
  }
  void stop() {
    for (auto& node : nodes) node.stop();
    nats.stop();
  }

  // --cluster: the nats-server, then the nodes; true once every node hears all.
  bool start_cluster(const Options& o, const std::vector<std::string>& meshd_args) {
    const std::uint16_t nats_port = free_port();
    if (!nats.spawn(o.nats_server, {"-a", "127.0.0.1", "-p", std::to_string(nats_port)}, false)) {
      std::fprintf(stderr, "meshd-load: could not start %s\n", o.nats_server.c_str());
      return false;
    }
    nats.port = nats_port;
    const auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!listening(nats_port)) {
      if (Clock::now() > deadline) {
        std::fprintf(stderr, "meshd-load: nats-server did not listen on %u\n", nats_port);
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    nodes.resize(o.cluster);
    for (std::size_t i = 0; i < o.cluster; ++i) {
      std::vector<std::string> args = meshd_args;
      for (const std::string& arg : {std::string("--nats"),
                                     "nats://127.0.0.1:" + std::to_string(nats_port),
                                     std::string("--node-id"), std::to_string(i + 1)})
        args.push_back(arg);
      if (!nodes[i].spawn(o.meshd_path, args)) {
        std::fprintf(stderr, "meshd-load: could not start node %zu (%s)\n", i + 1,
                     o.meshd_path.c_str());
        return false;
      }
    }
    const std::string heard = "meshd_cluster_nodes " + std::to_string(o.cluster) + "\n";
    for (const auto& node : nodes)
      while (http_get(node.port, "/metrics").find(heard) == std::string::npos) {
        if (Clock::now() > deadline) {
          std::fprintf(stderr, "meshd-load: the %zu nodes did not hear each other\n", o.cluster);
          return false;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    return true;
  }
};

// `tls`: null for ws://, else the client context (and a spawned meshd gets
// --tls-cert/--tls-key).
Figures run(const Options& o, SSL_CTX* tls) {
  Figures figures;
  const bool is_mesh = o.mode == "mesh";
  const std::size_t total = is_mesh ? o.groups * o.peers : o.connections;
  const char* tls_note = tls ? " tls=on" : "";

  Servers servers;
  servers.nodes.resize(1);
  if (o.port != 0) {
    servers.nodes[0].port = static_cast<std::uint16_t>(o.port);
    servers.nodes[0].pid = o.pid;
  } else {
    std::vector<std::string> args = {"--host", "127.0.0.1", "--port", "0", "--log-level", "warn",
                                     "--max-connections", std::to_string(total + 100),
                                     "--max-http-connections", "4096", "--idle-timeout", "0"};
    if (!is_mesh) {
      args.push_back("--open");
      args.push_back("--rate");
      args.push_back("0");
    }
    if (tls) {
      for (const auto* arg : {"--tls-cert", o.tls_cert.c_str(), "--tls-key", o.tls_key.c_str()})
        args.push_back(arg);
    }
    for (auto& a : o.meshd_args) args.push_back(a);
    if (o.cluster > 0) {
      if (!servers.start_cluster(o, args)) {
        servers.stop();
        return figures;
      }
    } else if (!servers.nodes[0].spawn(o.meshd_path, args)) {
      std::fprintf(stderr, "meshd-load: could not start %s\n", o.meshd_path.c_str());
      return figures;
    }
  }
  const double rss_before = servers.measurable() ? servers.meshd_rss_kib() : 0;

  const auto origin = Clock::now();
  Load load(servers.ports(), origin, tls);
  load.payload_size = o.payload;
  load.mode = o.mode;
  if (o.cluster > 0) {
    load.same_node = std::make_unique<Stats>();
    load.cross_node = std::make_unique<Stats>();
  }
  // idle: the first connections pay meshd's one-time costs (the first
  // handshake's SHA-1 pages in ~2 MB of libcrypto, the loops' buffers), which
  // are not per connection: RSS per connection is measured from after them.
  std::size_t warmup = 0;
  double rss_warm = rss_before;
  if (o.mode == "idle" && servers.measurable()) {
    warmup = std::min<std::size_t>(100, total / 10);
    if (!load.open_all(warmup, o.parallel)) {
      servers.stop();
      return figures;
    }
    const auto until = Clock::now() + std::chrono::milliseconds(200);
    while (Clock::now() < until) load.poll(10);
    rss_warm = servers.meshd_rss_kib();
  }
  if (!load.open_all(total, o.parallel)) {
    servers.stop();
    return figures;
  }
  auto& conns = load.conns_;

  // Subscriptions.
  std::mt19937 rng(42);
  // Paced peers: the group's unchanged statuses at refresh_per_s in all.
  const double status_interval =
      o.refresh_per_s > 0 ? std::max(o.status_interval, static_cast<double>(o.peers) / o.refresh_per_s)
                          : o.status_interval;
  if (is_mesh) {
    for (std::size_t i = 0; i < conns.size(); ++i) {
      auto& c = conns[i];
      c.group = static_cast<std::uint32_t>(i / o.peers);
      c.index_in_group = static_cast<std::uint32_t>(i % o.peers);
      const std::string g = "g" + std::to_string(c.group);
      for (const char* ch : {"offer", "answer", "candidate", "fallback"})
        load.subscribe(c, g + "." + std::to_string(c.id) + "." + ch);
      load.subscribe(c, g + ".mesh", o.batch_ms);
      c.next_status_us = static_cast<std::uint32_t>(
          std::uniform_real_distribution<double>(0, status_interval * 1e6)(rng));
    }
  } else {
    for (std::size_t i = 0; i < conns.size(); ++i) {
      auto& c = conns[i];
      c.group = static_cast<std::uint32_t>(i / o.group_size);
      c.index_in_group = static_cast<std::uint32_t>(i % o.group_size);
      c.publisher = c.index_in_group < o.publishers;
      load.subscribe(c, "t" + std::to_string(c.group));
    }
  }
  // Let the subscriptions (and mesh snapshots) settle.
  {
    const auto until = Clock::now() + std::chrono::milliseconds(500 + total / 20);
    while (Clock::now() < until) load.poll(5);
  }

  if (o.mode == "idle") {
    const auto until = Clock::now() + std::chrono::seconds(1);
    while (Clock::now() < until) load.poll(10);
    const double rss_after = servers.meshd_rss_kib();
    figures.rss_per_connection_kib = (rss_after - rss_warm) / static_cast<double>(total - warmup);
    std::printf(
        "meshd-load mode=idle connections=%zu meshd_rss_before=%.1fMiB meshd_rss_after_%zu=%.1fMiB "
        "meshd_rss=%.1fMiB rss_per_connection=%.2fKiB (%.0f B, from connection %zu on)%s\n",
        total, rss_before / 1024, warmup, rss_warm / 1024, rss_after / 1024,
        figures.rss_per_connection_kib, figures.rss_per_connection_kib * 1024, warmup + 1, tls_note);
    std::fflush(stdout);
    servers.stop();
    figures.ok = true;
    return figures;
  }

  // Per-publisher pre-encoded frames (fanout).
  std::vector<std::size_t> publisher_index;
  std::vector<std::string> templates(conns.size());
  if (!is_mesh) {
    for (std::size_t i = 0; i < conns.size(); ++i) {
      if (!conns[i].publisher) continue;
      publisher_index.push_back(i);
      wire::ClientMessage m;
      m.kind = wire::ClientMessage::Kind::publish;
      m.topics = {"t" + std::to_string(conns[i].group)};
      m.payload = std::string(o.payload, 'p');
      m.payload[8] = static_cast<char>(conns[i].node);  // see Load::same_node
      const std::string message = wire::encode(m);
      std::string frame;
      frame.push_back(static_cast<char>(0x82));
      if (message.size() < 126) {
        frame.push_back(static_cast<char>(0x80 | message.size()));
      } else {
        frame.push_back(static_cast<char>(0x80 | 126));
        frame.push_back(static_cast<char>(message.size() >> 8));
        frame.push_back(static_cast<char>(message.size() & 0xff));
      }
      frame.append(4, '\0');
      frame += message;
      templates[i] = std::move(frame);
    }
  } else {
    // Mesh: latency from status messages (their id is the send time in us,
    // which only grows, as WIRE.md requires).
    load.on_topic = [&](Conn& c, std::string_view, std::string_view body) {
      wire::MeshUpdate u;
      if (wire::decode(body, u) != wire::DecodeError::none) return;
      if (u.kind == wire::MeshUpdate::Kind::status && u.status.id > c.joined_us && !u.left)
        load.stats.record(now_us(origin) - static_cast<std::int64_t>(u.status.id));
    };
  }

  const double seconds_total = o.warmup + o.duration;
  const auto start = Clock::now();
  double cpu_start = 0;
  double nats_cpu_start = 0;
  double load_cpu_start = 0;
  Clock::time_point measure_start{};
  std::uint64_t sent = 0;
  std::uint64_t link_events = 0;
  std::uint64_t churn_events = 0;
  std::unordered_map<p2pmesh::PeerId, std::size_t> index_of;
  for (std::size_t i = 0; i < conns.size(); ++i) index_of[conns[i].id] = i;
  auto by_id = [&](p2pmesh::PeerId id) -> Conn* {
    const auto it = index_of.find(id);
    return it == index_of.end() ? nullptr : &conns[it->second];
  };
  auto link_change = [](p2pmesh::PeerId source, p2pmesh::PeerId peer, bool connected) {
    wire::MeshUpdate u;
    u.source = source;
    u.kind = connected ? wire::MeshUpdate::Kind::connected_to
                       : wire::MeshUpdate::Kind::disconnected_from;
    u.peer = peer;
    return wire::encode(u);
  };
  auto status_of = [&](const Conn& c) {
    wire::MeshUpdate u;
    u.source = c.id;
    u.kind = wire::MeshUpdate::Kind::status;
    u.status.connected_to = c.links;
    u.status.id = static_cast<std::uint32_t>(now_us(origin));
    // Today's peers: meshd also drops a shed link from the other end's record.
    if (o.churn_announce == "status") u.status.version = wire::kVersionLinkDownByOneEnd;
    return wire::encode(u);
  };
  std::uint64_t sent_at_measure = 0;
  std::size_t next_publisher = 0;
  for (;;) {
    const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
    if (elapsed >= seconds_total) break;
    if (!load.stats.measuring && elapsed >= o.warmup) {
      load.stats.measuring = true;
      if (load.same_node) load.same_node->measuring = load.cross_node->measuring = true;
      measure_start = Clock::now();
      cpu_start = servers.measurable() ? servers.meshd_cpu_seconds() : 0;
      nats_cpu_start = servers.nats_cpu_seconds();
      load_cpu_start = self_cpu_seconds();
      sent_at_measure = sent;
    }
    if (!is_mesh) {
      const auto due = static_cast<std::uint64_t>(elapsed * o.rate);
      while (sent < due) {
        const std::size_t i = publisher_index[next_publisher];
        next_publisher = (next_publisher + 1) % publisher_index.size();
        load.publish_template(conns[i], templates[i]);
        ++sent;
      }
    } else {
      const auto t = static_cast<std::uint32_t>(now_us(origin));
      const auto interval = static_cast<std::uint32_t>(status_interval * 1e6);
      for (auto& c : conns) {
        if (c.state != Conn::State::open || t < c.next_status_us) continue;
        c.next_status_us += interval;
        load.publish(c, "g" + std::to_string(c.group) + ".mesh", status_of(c));
        ++sent;
      }
      const auto due = static_cast<std::uint64_t>(elapsed * o.link_changes * o.groups);
      while (link_events < due) {
        const std::size_t g = link_events % o.groups;
        ++link_events;
        auto& a = conns[g * o.peers + rng() % o.peers];
        auto& b = conns[g * o.peers + rng() % o.peers];
        if (&a == &b) continue;
        wire::MeshUpdate u;
        u.source = a.id;
        const auto it = std::find(a.links.begin(), a.links.end(), b.id);
        if (it != a.links.end()) {
          a.links.erase(it);
          u.kind = wire::MeshUpdate::Kind::disconnected_from;
        } else {
          a.links.push_back(b.id);
          u.kind = wire::MeshUpdate::Kind::connected_to;
        }
        u.peer = b.id;
        load.publish(a, "g" + std::to_string(a.group) + ".mesh", wire::encode(u));
        ++sent;
      }
      // Churn: a peer leaves and a newcomer takes its place (the same
      // connection: meshd's work is the departure, the snapshot, the join).
      const auto churn_due =
          static_cast<std::uint64_t>(elapsed * o.churn / 100 / 60 * static_cast<double>(o.peers) *
                                     static_cast<double>(o.groups));
      while (churn_events < churn_due) {
        const std::size_t g = churn_events % o.groups;
        ++churn_events;
        auto& leaver = conns[g * o.peers + rng() % o.peers];
        if (leaver.state != Conn::State::open) continue;
        const std::string mesh = "g" + std::to_string(leaver.group) + ".mesh";
        load.unsubscribe(leaver, mesh);  // meshd announces the departure
        const bool one_status = o.churn_announce == "status";
        for (const p2pmesh::PeerId gone : leaver.links) {
          Conn* neighbour = by_id(gone);
          if (!neighbour) continue;
          std::erase(neighbour->links, leaver.id);
          if (one_status) continue;  // the departure notice says it
          load.publish(*neighbour, mesh, link_change(neighbour->id, leaver.id, false));
          ++sent;
        }
        leaver.links.clear();
        load.subscribe(leaver, mesh, o.batch_ms);  // the newcomer: snapshot
        leaver.joined_us = static_cast<std::uint32_t>(now_us(origin));
        load.publish(leaver, mesh, status_of(leaver));
        ++sent;
        for (std::size_t k = 0; k < o.churn_links; ++k) {
          auto& other = conns[g * o.peers + rng() % o.peers];
          if (&other == &leaver || std::count(leaver.links.begin(), leaver.links.end(), other.id))
            continue;
          leaver.links.push_back(other.id);
          other.links.push_back(leaver.id);
          if (one_status) continue;
          load.publish(leaver, mesh, link_change(leaver.id, other.id, true));
          load.publish(other, mesh, link_change(other.id, leaver.id, true));
          sent += 2;
        }
        // Its links' first RTTs (and, for "status", the links themselves).
        load.publish(leaver, mesh, status_of(leaver));
        ++sent;
        for (std::size_t k = 0; one_status && k < o.churn_shed; ++k) {
          // A member full of links sheds one for the newcomer and says so.
          auto& full = conns[g * o.peers + rng() % o.peers];
          if (&full == &leaver || full.state != Conn::State::open || full.links.empty()) continue;
          const p2pmesh::PeerId shed = full.links.back();
          full.links.pop_back();
          if (Conn* other = by_id(shed)) std::erase(other->links, full.id);
          load.publish(full, mesh, link_change(full.id, shed, false));
          ++sent;
        }
      }
    }
    load.poll(1);
  }
  const double measured = std::chrono::duration<double>(Clock::now() - measure_start).count();
  const double load_cpu = self_cpu_seconds() - load_cpu_start;
  const double cpu = servers.measurable() ? servers.meshd_cpu_seconds() - cpu_start : 0;
  const double nats_cpu = servers.nats_cpu_seconds() - nats_cpu_start;
  const double rss = servers.measurable() ? servers.meshd_rss_kib() : 0;
  const double delivered_rate = static_cast<double>(load.stats.delivered) / measured;
  const double publish_rate = static_cast<double>(sent - sent_at_measure) / measured;
  figures.delivered_rate = delivered_rate;
  figures.p50_us = load.stats.percentile(0.5);
  figures.p99_us = load.stats.percentile(0.99);
  figures.meshd_cpu = cpu / measured;
  figures.per_cpu_second = cpu > 0 ? static_cast<double>(load.stats.delivered) / cpu : 0.0;
  figures.rss_per_connection_kib = (rss - rss_before) / static_cast<double>(total);
  figures.nats_cpu = nats_cpu / measured;
  std::string cluster_note;
  if (load.same_node) {
    figures.same_p50_us = load.same_node->percentile(0.5);
    figures.same_p99_us = load.same_node->percentile(0.99);
    figures.cross_p50_us = load.cross_node->percentile(0.5);
    figures.cross_p99_us = load.cross_node->percentile(0.99);
    char note[256];
    std::snprintf(note, sizeof note,
                  " nodes=%zu same_node_p50=%.0fus same_node_p99=%.0fus cross_node_p50=%.0fus "
                  "cross_node_p99=%.0fus nats_cpu=%.0f%% (meshd_cpu and rss: all nodes)",
                  o.cluster, figures.same_p50_us, figures.same_p99_us, figures.cross_p50_us,
                  figures.cross_p99_us, 100.0 * figures.nats_cpu);
    cluster_note = note;
  }
  if (!is_mesh) {
    const double expected = publish_rate * static_cast<double>(o.group_size);
    std::printf(
        "meshd-load mode=fanout connections=%zu group_size=%zu publishers=%zu payload=%zu "
        "publish_rate=%.0f/s delivered=%.0f/s expected=%.0f/s (%.1f%%) p50=%.0fus p99=%.0fus "
        "meshd_cpu=%.0f%% load_cpu=%.0f%% delivered_per_meshd_cpu_second=%.0f meshd_rss=%.1fMiB "
        "closed=%llu%s%s\n",
        total, o.group_size, publisher_index.size(), o.payload, publish_rate, delivered_rate,
        expected, 100.0 * delivered_rate / expected, figures.p50_us, figures.p99_us,
        100.0 * cpu / measured, 100.0 * load_cpu / measured, figures.per_cpu_second, rss / 1024,
        static_cast<unsigned long long>(load.stats.closed), tls_note, cluster_note.c_str());
  } else {
    const double peers = static_cast<double>(total);
    std::printf(
        "meshd-load mode=mesh groups=%zu peers=%zu status_interval=%.0fs refresh_per_s=%g "
        "churn=%g%%/min churn_announce=%s batch_ms=%u link_changes=%.0f/s/group "
        "publish_rate=%.0f/s delivered=%.0f/s frames_per_peer=%.1f/s updates_per_peer=%.1f/s "
        "status_p50=%.0fus status_p99=%.0fus "
        "meshd_cpu=%.1f%% load_cpu=%.1f%% meshd_rss=%.1fMiB rss_per_peer=%.2fKiB closed=%llu%s\n",
        o.groups, o.peers, status_interval, o.refresh_per_s, o.churn, o.churn_announce.c_str(),
        o.batch_ms, o.link_changes,
        publish_rate, delivered_rate, delivered_rate / peers,
        static_cast<double>(load.stats.updates) / measured / peers, figures.p50_us,
        figures.p99_us, 100.0 * cpu / measured, 100.0 * load_cpu / measured, rss / 1024,
        figures.rss_per_connection_kib, static_cast<unsigned long long>(load.stats.closed),
        tls_note);
  }
  std::fflush(stdout);
  // Graceful: meshd sends close frames; keep answering them.
  servers.signal_stop();
  const auto until = Clock::now() + std::chrono::seconds(3);
  while (load.stats.closed < total && Clock::now() < until) load.poll(5);
  servers.stop();
  figures.ok = true;
  return figures;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

// --compare-tls: plain and TLS rounds alternately (a fresh meshd each), then
// the medians of each and TLS/plain.
int compare_tls(const Options& o, SSL_CTX* tls, std::size_t rounds) {
  std::vector<Figures> plain, secure;
  for (std::size_t round = 0; round < rounds; ++round) {
    for (SSL_CTX* context : {static_cast<SSL_CTX*>(nullptr), tls}) {
      const Figures figures = run(o, context);
      if (!figures.ok) return 1;
      (context ? secure : plain).push_back(figures);
    }
  }
  const auto med = [](const std::vector<Figures>& runs, double Figures::*field) {
    std::vector<double> values;
    for (const auto& f : runs) values.push_back(f.*field);
    return median(values);
  };
  const auto ratio = [](double tls_value, double plain_value) {
    return plain_value != 0 ? tls_value / plain_value : 0.0;
  };
  if (o.mode == "idle") {
    const double p = med(plain, &Figures::rss_per_connection_kib);
    const double t = med(secure, &Figures::rss_per_connection_kib);
    std::printf(
        "meshd-load compare-tls mode=idle connections=%zu rounds=%zu (medians) "
        "plain: rss_per_connection=%.2fKiB tls: rss_per_connection=%.2fKiB tls/plain=%.2f\n",
        o.connections, rounds, p, t, ratio(t, p));
    return 0;
  }
  const double pd = med(plain, &Figures::delivered_rate), td = med(secure, &Figures::delivered_rate);
  const double pc = med(plain, &Figures::per_cpu_second), tc = med(secure, &Figures::per_cpu_second);
  std::printf(
      "meshd-load compare-tls mode=%s rounds=%zu (medians) "
      "plain: delivered=%.0f/s p50=%.0fus p99=%.0fus meshd_cpu=%.0f%% per_meshd_cpu_second=%.0f "
      "tls: delivered=%.0f/s p50=%.0fus p99=%.0fus meshd_cpu=%.0f%% per_meshd_cpu_second=%.0f "
      "tls/plain: delivered=%.2f per_meshd_cpu_second=%.2f\n",
      o.mode.c_str(), rounds, pd, med(plain, &Figures::p50_us), med(plain, &Figures::p99_us),
      100 * med(plain, &Figures::meshd_cpu), pc, td, med(secure, &Figures::p50_us),
      med(secure, &Figures::p99_us), 100 * med(secure, &Figures::meshd_cpu), tc, ratio(td, pd),
      ratio(tc, pc));
  return 0;
}

// --compare-cluster N (fanout): rounds of one plain meshd and of N nodes on
// NATS alternately, the same load; medians of each and cluster/single.
int compare_cluster(Options o, SSL_CTX* tls, std::size_t rounds, std::size_t nodes) {
  std::vector<Figures> single, cluster;
  for (std::size_t round = 0; round < rounds; ++round) {
    for (const std::size_t n : {std::size_t{0}, nodes}) {
      o.cluster = n;
      const Figures figures = run(o, tls);
      if (!figures.ok) return 1;
      (n ? cluster : single).push_back(figures);
    }
  }
  const auto med = [](const std::vector<Figures>& runs, double Figures::*field) {
    std::vector<double> values;
    for (const auto& f : runs) values.push_back(f.*field);
    return median(values);
  };
  const double sd = med(single, &Figures::delivered_rate), cd = med(cluster, &Figures::delivered_rate);
  const double sc = med(single, &Figures::meshd_cpu), cc = med(cluster, &Figures::meshd_cpu);
  const double nc = med(cluster, &Figures::nats_cpu);
  // CPU microseconds per delivered message: meshd (all nodes), and NATS.
  const auto per_message = [](double cpu, double delivered) {
    return delivered > 0 ? 1e6 * cpu / delivered : 0.0;
  };
  std::printf(
      "meshd-load compare-cluster nodes=%zu rounds=%zu (medians) "
      "single: delivered=%.0f/s p50=%.0fus p99=%.0fus meshd_cpu=%.0f%% cpu_per_message=%.2fus "
      "cluster: delivered=%.0f/s p50=%.0fus p99=%.0fus same_node_p50=%.0fus same_node_p99=%.0fus "
      "cross_node_p50=%.0fus cross_node_p99=%.0fus meshd_cpu=%.0f%% (%.0f%% per node) "
      "nats_cpu=%.0f%% cpu_per_message=%.2fus (meshd %.2fus + nats %.2fus) "
      "cluster/single: delivered=%.2f cpu_per_message=%.2f\n",
      nodes, rounds, sd, med(single, &Figures::p50_us), med(single, &Figures::p99_us), 100 * sc,
      per_message(sc, sd), cd, med(cluster, &Figures::p50_us), med(cluster, &Figures::p99_us),
      med(cluster, &Figures::same_p50_us), med(cluster, &Figures::same_p99_us),
      med(cluster, &Figures::cross_p50_us), med(cluster, &Figures::cross_p99_us), 100 * cc,
      100 * cc / static_cast<double>(nodes), 100 * nc, per_message(cc + nc, cd),
      per_message(cc, cd), per_message(nc, cd), sd > 0 ? cd / sd : 0.0,
      per_message(sc, sd) > 0 ? per_message(cc + nc, cd) / per_message(sc, sd) : 0.0);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"meshd-load: load generator and benchmark for meshd; prints one summary line"};
  app.option_defaults()->always_capture_default();
  Options o;
  bool tls = false;
  bool compare = false;
  std::size_t rounds = 3;

  app.add_option("--mode", o.mode, "fanout, idle or mesh")
      ->check(CLI::IsMember({"fanout", "idle", "mesh"}));
  app.add_option("--meshd", o.meshd_path, "meshd program to spawn (ignored with --port)");
  app.add_option("--meshd-arg", o.meshd_args, "Extra argument for the spawned meshd (repeatable)");
  auto* port_option =
      app.add_option("--port", o.port, "Use a running meshd on 127.0.0.1:PORT instead of spawning");
  app.add_option("--pid", o.pid, "Its process id (for CPU and RSS)");
  app.add_option("--connections", o.connections, "fanout/idle: connections")
      ->check(CLI::Range(std::size_t{1}, std::size_t{60000}));
  app.add_option("--group-size", o.group_size, "fanout/idle: subscribers per topic")
      ->check(CLI::Range(std::size_t{1}, std::size_t{60000}));
  app.add_option("--publishers", o.publishers, "fanout: publishers per topic")
      ->check(CLI::Range(std::size_t{1}, std::size_t{60000}));
  app.add_option("--rate", o.rate, "fanout: publications per second, in total")
      ->check(CLI::PositiveNumber);
  app.add_option("--payload", o.payload, "fanout: payload bytes (>= 8)")
      ->check(CLI::Range(std::size_t{8}, std::size_t{60000}));
  app.add_option("--duration", o.duration, "Measured seconds")->check(CLI::PositiveNumber);
  app.add_option("--warmup", o.warmup, "Seconds of load before measuring")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--groups", o.groups, "mesh: groups")->check(CLI::Range(1, 10000));
  app.add_option("--peers", o.peers, "mesh: peers per group")->check(CLI::Range(2, 10000));
  app.add_option("--status-interval", o.status_interval, "mesh: seconds between a peer's statuses")
      ->check(CLI::PositiveNumber);
  app.add_option("--link-changes", o.link_changes, "mesh: link changes per second per group")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--refresh-per-s", o.refresh_per_s,
                 "mesh: paced peers, a group's unchanged statuses at this rate in all (a peer's "
                 "interval max(--status-interval, peers / R)); 0: every interval")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--churn", o.churn, "mesh: percent of each group replaced per minute")
      ->check(CLI::Range(0.0, 6000.0));
  app.add_option("--churn-links", o.churn_links, "mesh: links a newcomer makes")
      ->check(CLI::Range(std::size_t{0}, std::size_t{64}));
  app.add_option("--churn-announce", o.churn_announce,
                 "mesh: what peers publish per churn event: status (today's: the newcomer's "
                 "links in one status, --churn-shed links shed by one end) or links (before: "
                 "a connected_to from both ends per link, the leaver's neighbours' "
                 "disconnected_from, a status for the RTTs)")
      ->check(CLI::IsMember({"status", "links"}));
  app.add_option("--churn-shed", o.churn_shed, "mesh, --churn-announce status: links shed per event")
      ->check(CLI::Range(std::size_t{0}, std::size_t{64}));
  app.add_option("--batch-ms", o.batch_ms,
                 "mesh: subscribe to <g>.mesh with this batch_ms (0: one frame per update)")
      ->check(CLI::Range(0u, 10000u));
  app.add_option("--parallel", o.parallel, "Handshakes in flight while connecting")
      ->check(CLI::Range(std::size_t{1}, std::size_t{4096}));
  app.add_flag("--tls", tls,
               "wss:// (the spawned meshd gets --tls-cert/--tls-key, a throwaway self-signed "
               "certificate unless given)");
  app.add_option("--tls-cert", o.tls_cert, "With --tls: certificate chain for the spawned meshd")
      ->check(CLI::ExistingFile);
  app.add_option("--tls-key", o.tls_key, "With --tls: its key")->check(CLI::ExistingFile);
  app.add_option("--ca-file", o.ca_file,
                 "With --tls: verify meshd's certificate (name: localhost) against this CA; "
                 "without it nothing is verified (a load generator on loopback)")
      ->check(CLI::ExistingFile);
  app.add_flag("--compare-tls", compare,
               "Alternate plain and TLS rounds (fresh meshd each) and print the medians of "
               "both and TLS/plain")
      ->excludes(port_option);
  auto* cluster_option = app.add_option(
      "--cluster", o.cluster,
      "fanout: spawn N meshd nodes on one spawned nats-server (docs/cluster.md); connection i "
      "goes to node i % N; latency split into same-node and cross-node")
      ->check(CLI::Range(std::size_t{1}, std::size_t{255}))
      ->excludes(port_option);
  std::size_t compare_nodes = 0;
  app.add_option("--compare-cluster", compare_nodes,
                 "fanout: alternate rounds of one plain meshd and of N cluster nodes (same "
                 "load) and print the medians of both and cluster/single")
      ->check(CLI::Range(std::size_t{1}, std::size_t{255}))
      ->excludes(port_option)
      ->excludes(cluster_option);
  app.add_option("--nats-server", o.nats_server,
                 "nats-server program for --cluster/--compare-cluster (found in PATH, /usr/sbin)");
  app.add_option("--rounds", rounds, "--compare-tls / --compare-cluster: rounds of each")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100}));
  CLI11_PARSE(app, argc, argv);
  if ((o.cluster || compare_nodes) && o.mode != "fanout") {
    std::fprintf(stderr, "meshd-load: --cluster and --compare-cluster measure the fanout mode\n");
    return 2;
  }
  if ((o.cluster || compare_nodes) && o.payload < 9) {
    std::fprintf(stderr, "meshd-load: --cluster needs --payload >= 9 (time and node)\n");
    return 2;
  }
  if ((o.cluster || compare_nodes) && compare) {
    std::fprintf(stderr, "meshd-load: --compare-tls and the cluster options do not mix\n");
    return 2;
  }
  if ((o.cluster || compare_nodes) && o.nats_server.find('/') == std::string::npos) {
    // execv needs a path: PATH, then Debian's /usr/sbin.
    std::string found;
    const char* path = std::getenv("PATH");
    std::istringstream dirs(std::string(path ? path : "") + ":/usr/sbin:/usr/bin");
    for (std::string dir; std::getline(dirs, dir, ':') && found.empty();)
      if (!dir.empty() && access((dir + "/" + o.nats_server).c_str(), X_OK) == 0)
        found = dir + "/" + o.nats_server;
    if (found.empty()) {
      std::fprintf(stderr, "meshd-load: %s not found: install nats-server (tools/deps.sh)\n",
                   o.nats_server.c_str());
      return 2;
    }
    o.nats_server = found;
  }
  if (o.tls_cert.empty() != o.tls_key.empty()) {
    std::fprintf(stderr, "meshd-load: --tls-cert and --tls-key go together\n");
    return 2;
  }

  raise_fd_limit();
  signal(SIGPIPE, SIG_IGN);
  tls = tls || compare;
  SslCtxPtr client;
  std::string throwaway_dir;
  if (tls) {
    client = client_context(o.ca_file);
    if (!client) return 1;
    if (o.port == 0 && o.tls_cert.empty()) {
      char dir[] = "/tmp/meshd-load-XXXXXX";
      if (!mkdtemp(dir) || !make_certificate(dir, o.tls_cert, o.tls_key)) {
        std::fprintf(stderr, "meshd-load: cannot make a throwaway certificate\n");
        return 1;
      }
      throwaway_dir = dir;
    }
  }
  const int status = compare         ? compare_tls(o, client.get(), rounds)
                     : compare_nodes ? compare_cluster(o, client.get(), rounds, compare_nodes)
                                     : (run(o, client.get()).ok ? 0 : 1);
  if (!throwaway_dir.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(throwaway_dir, ignored);
  }
  return status;
}
