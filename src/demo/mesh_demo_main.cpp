// mesh-demo: one command to see the mesh. Starts meshd (which serves the
// dashboard at /), then native peers (mesh-peer --demo) in one or more
// groups, shows progress while they join, prints the dashboard URL, and on
// Ctrl-C / SIGTERM stops the peers, then meshd, and waits for every child
// (children also get SIGTERM if mesh-demo itself dies: PR_SET_PDEATHSIG).
// See docs/dashboard.md.
#include <fcntl.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

struct GroupSpec {
  std::string name;
  int peers = 0;
};

bool valid_group(const std::string& g) {
  if (g.empty() || g.size() > 64) return false;
  for (const char c : g)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
  return true;
}

// "default:12,group2:4"; an entry without a count gets `default_count`.
bool parse_groups(const std::string& spec, int default_count, std::vector<GroupSpec>& out,
                  std::string& error) {
  std::stringstream in(spec);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    GroupSpec g;
    const auto colon = item.find(':');
    g.name = item.substr(0, colon);
    g.peers = default_count;
    if (colon != std::string::npos) {
      try {
        std::size_t used = 0;
        g.peers = std::stoi(item.substr(colon + 1), &used);
        if (used != item.size() - colon - 1) throw std::invalid_argument("trailing");
      } catch (const std::exception&) {
        error = "bad peer count in '" + item + "'";
        return false;
      }
    }
    if (!valid_group(g.name)) {
      error = "bad group name '" + g.name + "' (1-64 of [A-Za-z0-9_-])";
      return false;
    }
    if (g.peers < 1 || g.peers > 500) {
      error = "peer count of '" + g.name + "' must be 1..500";
      return false;
    }
    out.push_back(g);
  }
  if (out.empty()) {
    error = "no group in --groups";
    return false;
  }
  return true;
}

struct Child {
  pid_t pid = -1;
  std::string name;
  fs::path log;
  bool joined = false;
};

pid_t spawn(const fs::path& program, const std::vector<std::string>& args, const fs::path& log) {
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid > 0) return pid;
  // Child: own process group (the terminal's Ctrl-C reaches mesh-demo only,
  // which stops everything in order), dies with its parent.
  setpgid(0, 0);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(1);
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  const int in = open("/dev/null", O_RDONLY);
  const int out = open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (in < 0 || out < 0) _exit(127);
  dup2(in, 0);
  dup2(out, 1);
  dup2(out, 2);
  std::vector<char*> argv;
  std::string prog = program.string();
  argv.push_back(prog.data());
  std::vector<std::string> copy = args;
  for (auto& a : copy) argv.push_back(a.data());
  argv.push_back(nullptr);
  execv(prog.c_str(), argv.data());
  std::fprintf(stderr, "mesh-demo: cannot run %s: %s\n", prog.c_str(), std::strerror(errno));
  _exit(127);
}

bool alive(Child& child) {
  if (child.pid <= 0) return false;
  int status = 0;
  const pid_t r = waitpid(child.pid, &status, WNOHANG);
  if (r == child.pid) {
    child.pid = -1;
    return false;
  }
  return true;
}

// SIGTERM, then SIGKILL after `grace`; reaps every child.
void stop_all(std::vector<Child>& children, std::chrono::milliseconds grace) {
  for (auto& c : children)
    if (c.pid > 0) kill(c.pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (;;) {
    bool any = false;
    for (auto& c : children) any = alive(c) || any;
    if (!any) return;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(20ms);
  }
  for (auto& c : children) {
    if (c.pid > 0) {
      kill(c.pid, SIGKILL);
      waitpid(c.pid, nullptr, 0);
      c.pid = -1;
    }
  }
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

fs::path self_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path(".") : exe.parent_path();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "mesh-demo: meshd + native peers (mesh-peer --demo) + the observer dashboard. Prints the "
      "dashboard URL; Ctrl-C stops everything."};
  int peers = 12;
  std::string groups_spec = "default:12,group2:4";
  std::string host = "0.0.0.0";
  int port = 8000;
  bool loopback = false;
  unsigned report_ms = 1000, ping_ms = 5000;
  std::string log_dir, web_root;
  app.add_option("--peers", peers, "Peers of the first group (default 12)")->check(CLI::Range(1, 500));
  app.add_option("--groups", groups_spec,
                 "Groups and their peer counts, e.g. default:12,group2:4 (a group without a count gets "
                 "--peers)")
      ->capture_default_str();
  app.add_option("--host", host, "meshd listen address")->capture_default_str();
  app.add_option("--port", port, "meshd and dashboard port (0 = any free port)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  app.add_flag("--loopback", loopback, "Peers use only 127.0.0.1 for WebRTC (tests)");
  app.add_option("--report-ms", report_ms, "State report interval of each peer")
      ->check(CLI::Range(100u, 60000u))
      ->capture_default_str();
  app.add_option("--ping-ms", ping_ms, "Ping interval of each peer")
      ->check(CLI::Range(100u, 3600000u))
      ->capture_default_str();
  app.add_option("--log-dir", log_dir, "Keep meshd's and the peers' logs there (default: a temporary "
                                       "directory removed at exit)");
  app.add_option("--web-root", web_root, "Passed to meshd (default: meshd's own choice, the source "
                                         "tree's web/ from build/<preset>/bin)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::vector<GroupSpec> groups;
  std::string error;
  if (!parse_groups(groups_spec, peers, groups, error)) {
    std::cerr << "mesh-demo: --groups: " << error << "\n";
    return 2;
  }
  if (app.count("--peers")) groups[0].peers = peers;

  const fs::path bin = self_dir();
  const fs::path meshd = bin / "meshd";
  const fs::path mesh_peer = bin / "mesh-peer";
  for (const auto& p : {meshd, mesh_peer}) {
    if (access(p.c_str(), X_OK) != 0) {
      std::cerr << "mesh-demo: " << p.string() << " not found (build the meshd and mesh-peer targets)\n";
      return 2;
    }
  }

  bool temporary = log_dir.empty();
  fs::path dir;
  if (temporary) {
    char pattern[] = "/tmp/mesh-demo.XXXXXX";
    if (!mkdtemp(pattern)) {
      std::cerr << "mesh-demo: mkdtemp: " << std::strerror(errno) << "\n";
      return 1;
    }
    dir = pattern;
  } else {
    dir = log_dir;
    std::error_code ec;
    fs::create_directories(dir, ec);
  }

  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  std::vector<Child> server(1);
  std::vector<Child> peer_children;
  int rc = 0;
  auto finish = [&](int code) {
    std::cout << "\nmesh-demo: stopping " << peer_children.size() << " peers and meshd..." << std::endl;
    stop_all(peer_children, 3000ms);
    stop_all(server, 4000ms);
    if (temporary) {
      std::error_code ec;
      fs::remove_all(dir, ec);
    } else {
      std::cout << "mesh-demo: logs in " << dir.string() << "\n";
    }
    std::cout << "mesh-demo: stopped" << std::endl;
    return code;
  };

  // meshd
  const fs::path port_file = dir / "meshd.port";
  server[0].name = "meshd";
  server[0].log = dir / "meshd.log";
  std::vector<std::string> meshd_args = {"--host", host, "--port", std::to_string(port),
                                         "--port-file", port_file.string(), "--log-level", "warn"};
  if (!web_root.empty()) {
    meshd_args.push_back("--web-root");
    meshd_args.push_back(web_root);
  }
  server[0].pid = spawn(meshd, meshd_args, server[0].log);
  if (server[0].pid < 0) {
    std::cerr << "mesh-demo: fork: " << std::strerror(errno) << "\n";
    return finish(1);
  }
  int bound = 0;
  for (auto deadline = std::chrono::steady_clock::now() + 10s;
       std::chrono::steady_clock::now() < deadline && !g_stop;) {
    if (!alive(server[0])) break;
    const std::string text = read_file(port_file);
    if (!text.empty() && text.back() == '\n') {
      bound = std::atoi(text.c_str());
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  if (g_stop) return finish(130);
  if (bound <= 0) {
    std::cerr << "mesh-demo: meshd did not start:\n" << read_file(server[0].log);
    return finish(1);
  }
  const std::string peer_host = (host == "0.0.0.0" || host == "::" || host.empty()) ? "127.0.0.1" : host;
  const std::string url_host =
      (host == "0.0.0.0" || host == "::" || host.empty()) ? "localhost" : host;
  const std::string ws_url = "ws://" + peer_host + ":" + std::to_string(bound) + "/service";
  const std::string dashboard = "http://" + url_host + ":" + std::to_string(bound) + "/";
  std::cout << "mesh-demo: meshd on port " << bound << ", dashboard: " << dashboard << std::endl;

  // peers
  int total = 0;
  for (const auto& g : groups) total += g.peers;
  std::cout << "mesh-demo: starting " << total << " peers (";
  for (std::size_t i = 0; i < groups.size(); ++i)
    std::cout << (i ? ", " : "") << groups[i].peers << " in " << groups[i].name;
  std::cout << ")" << std::endl;
  for (const auto& g : groups) {
    for (int i = 0; i < g.peers && !g_stop; ++i) {
      Child c;
      c.name = g.name + "-" + std::to_string(i + 1);
      c.log = dir / ("peer-" + c.name + ".log");
      std::vector<std::string> args = {"--url", ws_url, "--group", g.name, "--demo", "--stay",
                                       "--report-ms", std::to_string(report_ms), "--ping-ms",
                                       std::to_string(ping_ms)};
      if (loopback) args.push_back("--loopback");
      c.pid = spawn(mesh_peer, args, c.log);
      if (c.pid < 0) {
        std::cerr << "mesh-demo: fork: " << std::strerror(errno) << "\n";
        return finish(1);
      }
      peer_children.push_back(c);
      std::this_thread::sleep_for(30ms);
    }
  }
  // Progress: a peer counts as joined once it printed its welcome.
  int joined = 0;
  const auto started = std::chrono::steady_clock::now();
  while (!g_stop && joined < total && std::chrono::steady_clock::now() - started < 60s) {
    joined = 0;
    for (auto& c : peer_children) {
      if (!c.joined && read_file(c.log).find("\"event\":\"welcome\"") != std::string::npos)
        c.joined = true;
      joined += c.joined ? 1 : 0;
    }
    std::cout << "\rmesh-demo: peers joined " << joined << "/" << total << std::flush;
    if (joined < total) std::this_thread::sleep_for(100ms);
  }
  std::cout << std::endl;
  if (g_stop) return finish(130);
  if (joined < total) std::cout << "mesh-demo: " << total - joined << " peers did not join yet (logs in "
                                << dir.string() << ")\n";
  std::cout << "mesh-demo: ready. Open " << dashboard << "  (Ctrl-C stops everything)" << std::endl;

  // Run until a signal; meshd ending is fatal, peers ending is reported.
  while (!g_stop) {
    std::this_thread::sleep_for(100ms);
    if (!alive(server[0])) {
      std::cerr << "mesh-demo: meshd exited:\n" << read_file(server[0].log);
      rc = 1;
      break;
    }
    for (auto& c : peer_children) {
      if (c.pid > 0 && !alive(c)) std::cerr << "mesh-demo: peer " << c.name << " exited\n";
    }
  }
  return finish(rc);
}
