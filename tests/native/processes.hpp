#pragma once
// The real programs as child processes, driven as a script would drive them:
// stdin and stdout (and, when asked, stderr) on pipes, read line by line.
// Every child is killed when its Child goes, and dies with the test
// (PR_SET_PDEATHSIG).

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace p2pmesh::test {

class Child {
 public:
  // argv[0] is the program's path. `capture_stderr`: stderr is kept too
  // (error_lines()); else the child writes to the test's stderr.
  explicit Child(std::vector<std::string> argv, bool capture_stderr = false);
  ~Child();
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  void kill9();
  // Sends SIGTERM and waits up to `timeout` for a clean exit; returns the
  // wait status (-1 if it is still running).
  int terminate(std::chrono::milliseconds timeout);
  // Waits up to `timeout` for the child to exit by itself; the wait status,
  // or -1 if it is still running.
  int wait_exit(std::chrono::milliseconds timeout);
  void write_line(const std::string& line);
  std::vector<std::string> lines() const;        // stdout
  std::vector<std::string> error_lines() const;  // stderr, with capture_stderr

 private:
  struct Output {
    int fd = -1;
    std::thread reader;
    mutable std::mutex mutex;
    std::vector<std::string> lines;
    void read_loop();
  };
  pid_t pid_ = -1;
  int in_ = -1;
  std::unique_ptr<Output> out_;
  std::unique_ptr<Output> err_;
};

// meshd as a process on 127.0.0.1, on an ephemeral port (--port-file), with
// `extra_args` (e.g. --tls-cert FILE --tls-key FILE). Its log goes to the
// test's stderr.
class MeshdProcess {
 public:
  explicit MeshdProcess(std::vector<std::string> extra_args = {});
  // 0 when meshd did not start within 10 s.
  int port() const { return port_; }
  std::string url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/service"; }

 private:
  int port_ = 0;
  std::unique_ptr<Child> child_;
};

}  // namespace p2pmesh::test
