// bench_mesh: native peers over real libwebrtc data channels and a real
// meshd, on 127.0.0.1 only. For each size (default 12 and 32):
//   in one process (N p2pmesh::Peer): time to a connected mesh after the last
//     start, broadcast latency (send -> last delivery, p50/p99), throughput of
//     1 KiB broadcasts (deliveries/s and MB/s of payload delivered);
//   as N mesh-peer processes (when --mesh-peer is given): time to a connected
//     mesh, then RSS and CPU of each idle process over a few seconds.
// Prints one summary line per size. Usage:
//   bench_mesh [--sizes 12,32] [--mesh-peer PATH] [--meshd PATH] [--messages N] [--unsigned]
//              [--max-receiver-tags N]
// First it prints the cost of one Ed25519 signature and check (libsodium) of
// a 1 KiB broadcast; --unsigned runs the mesh without signed broadcasts,
// --max-receiver-tags N sets PeerConfig::max_receiver_tags (0: every relayed
// copy's signature is checked).
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ed25519_key.hpp"
#include "p2pmesh/peer.hpp"
#include "receiver_tags.hpp"
#include "server.hpp"
#include "signed_broadcast.hpp"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

bool wait_until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return done();
}

long rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + (pid ? std::to_string(pid) : std::string("self")) + "/status");
  std::string key;
  while (in >> key) {
    if (key == "VmRSS:") {
      long kb = 0;
      in >> kb;
      return kb;
    }
    in.ignore(1 << 16, '\n');
  }
  return 0;
}

// Pages only this process has (Private_Clean + Private_Dirty): RSS also counts
// the code of libwebrtc, OpenSSL, NSS and libstdc++ that every peer shares.
long private_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/smaps_rollup");
  std::string key;
  long total = 0;
  while (in >> key) {
    if (key == "Private_Clean:" || key == "Private_Dirty:") {
      long kb = 0;
      in >> kb;
      total += kb;
    }
    in.ignore(1 << 16, '\n');
  }
  return total;
}

double cpu_seconds(pid_t pid) {  // utime + stime
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), {});
  const auto close = stat.rfind(')');
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15; ++i) {
    rest >> field;
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double self_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
         static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
  return v[std::min(i, v.size() - 1)];
}

bool complete(const std::vector<p2pmesh::PeerSnapshot>& snaps, std::vector<p2pmesh::PeerId> ids) {
  std::sort(ids.begin(), ids.end());
  for (const auto& s : snaps) {
    if (s.reachable.size() + 1 != ids.size()) return false;
  }
  return true;
}

struct InProcessResult {
  double connect_ms = -1;
  double p50_ms = 0, p99_ms = 0;
  double deliveries_per_s = 0, mb_per_s = 0;
  double cpu_us_per_delivery = 0;  // the whole process (peers + meshd) while sending
  double cpu_ms_per_peer_s = 0;  // CPU (ms) per peer per second while idle
  long rss_kb_per_peer = 0;
  double checks_per_delivery = 0;  // Ed25519 checks per delivered message (the rest came
                                   // straight from their source, had a receiver tag, or unsigned)
  double tags_per_delivery = 0;    // receiver tags checked per delivered message
};

// Microseconds per Ed25519 signature and per check of a 1 KiB broadcast's
// signing bytes (the median of 5 runs of 2,000 each).
std::pair<double, double> signature_cost_us() {
  const p2pmesh::native::Ed25519Key key;
  const std::string message = p2pmesh::broadcast_signing_bytes("bench", 7, 1, std::string(1024, 'x'));
  const std::string signature = key.sign(message);
  std::vector<double> sign_us, verify_us;
  constexpr int kRounds = 2000;
  for (int run = 0; run < 5; ++run) {
    auto t0 = Clock::now();
    for (int i = 0; i < kRounds; ++i) {
      if (key.sign(message).size() != signature.size()) std::abort();
    }
    sign_us.push_back(ms_since(t0) * 1000.0 / kRounds);
    t0 = Clock::now();
    for (int i = 0; i < kRounds; ++i) {
      if (!p2pmesh::native::ed25519_verify(key.public_key(), message, signature)) std::abort();
    }
    verify_us.push_back(ms_since(t0) * 1000.0 / kRounds);
  }
  return {percentile(sign_us, 0.5), percentile(verify_us, 0.5)};
}

// Microseconds to tag a 1 KiB broadcast for 11 members (a 12-peer group)
// and to check one tag, shared keys already made (the median of 5 runs).
std::pair<double, double> receiver_tag_cost_us() {
  const p2pmesh::native::Ed25519Key source;
  std::vector<std::unique_ptr<p2pmesh::native::Ed25519Key>> members;
  std::vector<p2pmesh::TagReceiver> receivers;
  for (p2pmesh::PeerId id = 1; id <= 11; ++id) {
    members.push_back(std::make_unique<p2pmesh::native::Ed25519Key>());
    receivers.push_back({id, members.back()->public_key()});
  }
  p2pmesh::native::ReceiverTags source_tags(source), member_tags(*members[0]);
  const std::string message = p2pmesh::broadcast_signing_bytes("bench", 7, 1, std::string(1024, 'x'));
  const std::string tags = source_tags.tag(message, receivers);
  const std::string tag(p2pmesh::find_receiver_tag(tags, 1));
  std::vector<double> tag_us, check_us;
  constexpr int kRounds = 2000;
  for (int run = 0; run < 5; ++run) {
    auto t0 = Clock::now();
    for (int i = 0; i < kRounds; ++i) {
      if (source_tags.tag(message, receivers) != tags) std::abort();
    }
    tag_us.push_back(ms_since(t0) * 1000.0 / kRounds);
    t0 = Clock::now();
    for (int i = 0; i < kRounds; ++i) {
      if (!member_tags.check(source.public_key(), message, tag)) std::abort();
    }
    check_us.push_back(ms_since(t0) * 1000.0 / kRounds);
  }
  return {percentile(tag_us, 0.5), percentile(check_us, 0.5)};
}

InProcessResult run_in_process(std::size_t n, int messages, bool sign, std::uint32_t max_receiver_tags) {
  InProcessResult r;
  meshd::Config config;
  config.host = "127.0.0.1";
  config.port = 0;
  config.rate_per_second = 0;  // the benchmark floods; meshd's limit is not under test
  meshd::Server server(config);
  const auto port = server.listen();
  std::thread server_thread([&] { server.run(); });
  const std::string url = "ws://127.0.0.1:" + std::to_string(port) + "/service";
  const long rss_before = rss_kb(0);

  // Each broadcast: payload starts with its index; record delivery times.
  std::mutex mutex;
  std::vector<Clock::time_point> sent_at;
  std::vector<Clock::time_point> last_delivery;
  std::vector<int> deliveries;
  std::atomic<long> delivered_total{0};
  auto on_message = [&](p2pmesh::PeerId, const std::string& bytes) {
    delivered_total.fetch_add(1);
    const auto now = Clock::now();
    const std::size_t idx = std::strtoul(bytes.c_str(), nullptr, 10);
    std::lock_guard lock(mutex);
    if (idx < last_delivery.size()) {
      last_delivery[idx] = std::max(last_delivery[idx], now);
      ++deliveries[idx];
    }
  };

  std::vector<std::unique_ptr<p2pmesh::Peer>> peers;
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) std::this_thread::sleep_for(50ms);
    p2pmesh::PeerConfig pc;
    pc.server_urls = {url};
    pc.group = "bench";
    pc.loopback_only = true;
    pc.sign_broadcasts = sign;
    pc.max_receiver_tags = max_receiver_tags;
    p2pmesh::PeerCallbacks callbacks;
    callbacks.on_message = on_message;
    peers.push_back(std::make_unique<p2pmesh::Peer>(pc, callbacks));
    peers.back()->start();
  }
  const auto last_start = Clock::now();
  auto snaps = [&] {
    std::vector<p2pmesh::PeerSnapshot> out;
    for (auto& p : peers) out.push_back(p->snapshot());
    return out;
  };
  auto ids = [&] {
    std::vector<p2pmesh::PeerId> out;
    for (auto& p : peers) out.push_back(p->id());
    return out;
  };
  if (wait_until([&] { return complete(snaps(), ids()); }, 30s)) r.connect_ms = ms_since(last_start);

  // Idle: CPU and RSS per peer.
  std::this_thread::sleep_for(1s);
  const double cpu0 = self_cpu_seconds();
  const auto idle0 = Clock::now();
  std::this_thread::sleep_for(3s);
  r.cpu_ms_per_peer_s = (self_cpu_seconds() - cpu0) * 1000.0 / ms_since(idle0) * 1000.0 / static_cast<double>(n);
  r.rss_kb_per_peer = (rss_kb(0) - rss_before) / static_cast<long>(n);

  // Latency: one broadcast at a time, from rotating peers.
  const int latency_runs = 200;
  sent_at.assign(static_cast<std::size_t>(latency_runs), {});
  last_delivery.assign(static_cast<std::size_t>(latency_runs), {});
  deliveries.assign(static_cast<std::size_t>(latency_runs), 0);
  std::vector<double> latencies;
  for (int i = 0; i < latency_runs; ++i) {
    std::string payload = std::to_string(i) + ":latency";
    {
      std::lock_guard lock(mutex);
      sent_at[static_cast<std::size_t>(i)] = Clock::now();
    }
    peers[static_cast<std::size_t>(i) % n]->broadcast(payload);
    wait_until(
        [&] {
          std::lock_guard lock(mutex);
          return deliveries[static_cast<std::size_t>(i)] >= static_cast<int>(n - 1);
        },
        5s);
    std::lock_guard lock(mutex);
    latencies.push_back(std::chrono::duration<double, std::milli>(last_delivery[static_cast<std::size_t>(i)] -
                                                                  sent_at[static_cast<std::size_t>(i)])
                            .count());
  }
  r.p50_ms = percentile(latencies, 0.5);
  r.p99_ms = percentile(latencies, 0.99);

  // Throughput: `messages` broadcasts of 1 KiB from rotating peers, paced in
  // bursts so no link queue overflows; deliveries counted until all arrive.
  {
    std::lock_guard lock(mutex);
    last_delivery.clear();
    deliveries.clear();
  }
  const long before = delivered_total.load();
  const long expected = static_cast<long>(messages) * static_cast<long>(n - 1);
  const std::string body(1024 - 16, 'x');
  const double cpu_before = self_cpu_seconds();
  const auto t0 = Clock::now();
  for (int i = 0; i < messages; ++i) {
    peers[static_cast<std::size_t>(i) % n]->broadcast("999999999:" + body);
    if (i % 64 == 63) {
      // Keep at most ~4 bursts in flight.
      wait_until([&] { return delivered_total.load() - before >= static_cast<long>(i - 255) * static_cast<long>(n - 1); },
                 10s);
    }
  }
  wait_until([&] { return delivered_total.load() - before >= expected; }, 60s);
  const double seconds = ms_since(t0) / 1000.0;
  const long got = delivered_total.load() - before;
  r.deliveries_per_s = static_cast<double>(got) / seconds;
  r.mb_per_s = static_cast<double>(got) * 1024.0 / seconds / 1e6;
  r.cpu_us_per_delivery = (self_cpu_seconds() - cpu_before) * 1e6 / static_cast<double>(std::max(got, 1L));
  if (got != expected) std::fprintf(stderr, "bench: %ld of %ld deliveries\n", got, expected);
  std::uint64_t checks = 0, tags = 0, delivered = 0;
  for (const p2pmesh::PeerSnapshot& s : snaps()) {
    checks += s.counters.signatures_checked - s.counters.receiver_tags_checked;
    tags += s.counters.receiver_tags_checked;
    delivered += s.counters.delivered;
  }
  r.checks_per_delivery = static_cast<double>(checks) / static_cast<double>(std::max<std::uint64_t>(delivered, 1));
  r.tags_per_delivery = static_cast<double>(tags) / static_cast<double>(std::max<std::uint64_t>(delivered, 1));

  for (auto& p : peers) p->stop();
  peers.clear();
  server.stop();
  server_thread.join();
  return r;
}

// ---- mesh-peer processes

struct Proc {
  pid_t pid = -1;
  int out = -1;
  std::string buffer;
  std::size_t reachable = 0;
  std::size_t links = 0;     // from view events (--print-view)
  long links_up_events = 0;  // link_up minus link_down events
};

Proc spawn(const std::vector<std::string>& argv) {
  int out[2];
  int in[2];
  if (pipe2(out, O_CLOEXEC) != 0 || pipe2(in, O_CLOEXEC) != 0) std::abort();
  Proc p;
  p.pid = fork();
  if (p.pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    dup2(in[0], 0);
    dup2(out[1], 1);
    const int null_fd = open("/dev/null", O_WRONLY);
    dup2(null_fd, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(out[1]);
  close(in[0]);  // stdin stays open (write end kept) so the peer does not leave
  p.out = out[0];
  fcntl(p.out, F_SETFL, O_NONBLOCK);
  return p;
}

// Reads what the process printed; keeps the latest view's counts.
void poll_view(Proc& p) {
  char buf[8192];
  ssize_t n;
  while ((n = read(p.out, buf, sizeof buf)) > 0) p.buffer.append(buf, static_cast<std::size_t>(n));
  std::size_t nl;
  while ((nl = p.buffer.find('\n')) != std::string::npos) {
    const std::string line = p.buffer.substr(0, nl);
    p.buffer.erase(0, nl + 1);
    if (line.find("\"event\":\"link_up\"") != std::string::npos) ++p.links_up_events;
    if (line.find("\"event\":\"link_down\"") != std::string::npos) --p.links_up_events;
    if (line.find("\"event\":\"view\"") == std::string::npos) continue;
    auto count = [&](const char* key) {
      const auto at = line.find(key);
      const auto open = line.find('[', at);
      const auto close = line.find(']', open);
      const std::string list = line.substr(open + 1, close - open - 1);
      return list.empty() ? std::size_t{0} : static_cast<std::size_t>(std::count(list.begin(), list.end(), ',') + 1);
    };
    p.reachable = count("\"reachable\"");
    p.links = count("\"links\"");
  }
}

struct ProcessResult {
  double connect_ms = -1;
  double rss_mb_avg = 0, rss_mb_max = 0;
  double private_mb_avg = 0;
  double cpu_pct_avg = 0, cpu_pct_max = 0;
  double links_avg = 0;
};

ProcessResult run_processes(std::size_t n, const std::string& meshd_bin, const std::string& peer_bin) {
  ProcessResult r;
  const std::string port_file = "/tmp/bench_mesh_" + std::to_string(getpid()) + ".port";
  std::remove(port_file.c_str());
  Proc server = spawn({meshd_bin, "--host", "127.0.0.1", "--port", "0", "--port-file", port_file});
  wait_until([&] { return std::ifstream(port_file).good(); }, 10s);
  int port = 0;
  std::ifstream(port_file) >> port;
  std::remove(port_file.c_str());
  const std::string url = "ws://127.0.0.1:" + std::to_string(port) + "/service";
  auto start_peers = [&](const std::string& group, std::vector<std::string> extra) {
    std::vector<Proc> started;
    for (std::size_t i = 0; i < n; ++i) {
      if (i > 0) std::this_thread::sleep_for(50ms);
      std::vector<std::string> args{peer_bin, "--url", url, "--group", group, "--loopback"};
      args.insert(args.end(), extra.begin(), extra.end());
      started.push_back(spawn(args));
    }
    return started;
  };
  auto stop_peers = [](std::vector<Proc>& procs) {
    for (auto& p : procs) {
      kill(p.pid, SIGKILL);
      waitpid(p.pid, nullptr, 0);
      close(p.out);
    }
  };

  // Connect time: the views are polled every 20 ms (--print-view).
  std::vector<Proc> procs = start_peers("connect", {"--print-view", "--view-interval-ms", "20"});
  const auto last_start = Clock::now();
  if (wait_until(
          [&] {
            bool all = true;
            for (auto& p : procs) {
              poll_view(p);
              all = all && p.reachable + 1 == n;
            }
            return all;
          },
          30s)) {
    r.connect_ms = ms_since(last_start);
  }
  stop_peers(procs);

  // Idle: fresh peers without that polling, after the joins' link changes and
  // first statuses have settled, over a full status interval (10 s).
  procs = start_peers("idle", {});
  std::this_thread::sleep_for(5s);
  std::vector<double> cpu0;
  for (auto& p : procs) cpu0.push_back(cpu_seconds(p.pid));
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(10s);
  const double seconds = ms_since(t0) / 1000.0;
  for (std::size_t i = 0; i < procs.size(); ++i) {
    poll_view(procs[i]);
    const double pct = (cpu_seconds(procs[i].pid) - cpu0[i]) / seconds * 100.0;
    const double rss = static_cast<double>(rss_kb(procs[i].pid)) / 1024.0;
    r.cpu_pct_avg += pct / static_cast<double>(n);
    r.cpu_pct_max = std::max(r.cpu_pct_max, pct);
    r.rss_mb_avg += rss / static_cast<double>(n);
    r.rss_mb_max = std::max(r.rss_mb_max, rss);
    r.private_mb_avg += static_cast<double>(private_kb(procs[i].pid)) / 1024.0 / static_cast<double>(n);
    r.links_avg += static_cast<double>(procs[i].links_up_events) / static_cast<double>(n);
  }
  stop_peers(procs);
  kill(server.pid, SIGKILL);
  waitpid(server.pid, nullptr, 0);
  close(server.out);
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::size_t> sizes = {12, 32};
  std::string mesh_peer, meshd_bin;
  int messages = 2000;
  bool sign = true;
  std::uint32_t max_receiver_tags = p2pmesh::defaults::kMaxReceiverTags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_mesh: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--sizes") {
      sizes.clear();
      std::stringstream list(next());
      std::string item;
      while (std::getline(list, item, ',')) sizes.push_back(std::stoul(item));
    } else if (arg == "--mesh-peer") {
      mesh_peer = next();
    } else if (arg == "--meshd") {
      meshd_bin = next();
    } else if (arg == "--messages") {
      messages = std::stoi(next());
    } else if (arg == "--unsigned") {
      sign = false;
    } else if (arg == "--max-receiver-tags") {
      max_receiver_tags = static_cast<std::uint32_t>(std::stoul(next()));
    } else if (arg == "--help" || arg == "-h") {
      std::puts("bench_mesh [--sizes 12,32] [--messages N] [--mesh-peer PATH --meshd PATH] [--unsigned] "
                "[--max-receiver-tags N]");
      return 0;
    } else {
      std::fprintf(stderr, "bench_mesh: unknown argument %s (see --help)\n", arg.c_str());
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  const auto [sign_us, verify_us] = signature_cost_us();
  const auto [tag_us, tag_check_us] = receiver_tag_cost_us();
  std::printf("bench_mesh Ed25519 (libsodium), 1 KiB broadcast: sign %.1f us, verify %.1f us; "
              "receiver tags: 11 made in %.1f us, one checked in %.1f us\n",
              sign_us, verify_us, tag_us, tag_check_us);
  for (const std::size_t n : sizes) {
    const InProcessResult in = run_in_process(n, messages, sign, max_receiver_tags);
    std::printf(
        "bench_mesh n=%zu %s in-process: connected %.0f ms after last start; broadcast latency p50 "
        "%.2f ms p99 %.2f ms; 1 KiB throughput %.0f deliveries/s (%.1f MB/s), CPU %.0f us per delivery; idle CPU %.2f ms/s "
        "per peer; RSS %.1f MB per peer; %.2f signature checks and %.2f receiver tag checks per delivery",
        n, !sign ? "unsigned" : in.tags_per_delivery > 0 ? "signed with receiver tags" : "signed", in.connect_ms,
        in.p50_ms, in.p99_ms, in.deliveries_per_s, in.mb_per_s, in.cpu_us_per_delivery,
        in.cpu_ms_per_peer_s, static_cast<double>(in.rss_kb_per_peer) / 1024.0, in.checks_per_delivery,
        in.tags_per_delivery);
    if (!mesh_peer.empty() && !meshd_bin.empty()) {
      const ProcessResult pr = run_processes(n, meshd_bin, mesh_peer);
      std::printf(
          " | processes: connected %.0f ms after last start; idle mesh-peer (%.1f links avg) RSS "
          "%.1f MB avg %.1f max (private %.1f MB avg, the rest shared code), CPU %.2f%% avg %.2f%% max of a core",
          pr.connect_ms, pr.links_avg, pr.rss_mb_avg, pr.rss_mb_max, pr.private_mb_avg, pr.cpu_pct_avg,
          pr.cpu_pct_max);
    }
    std::printf("\n");
    std::fflush(stdout);
  }
  return 0;
}
