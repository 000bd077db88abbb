#include "processes.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <stdexcept>

#include "support.hpp"  // wait_until

#ifndef MESHD_BINARY
#error "MESHD_BINARY: the path of meshd (tests/native/CMakeLists.txt)"
#endif

namespace p2pmesh::test {

using namespace std::chrono_literals;

Child::Child(std::vector<std::string> argv, bool capture_stderr)
    : out_(std::make_unique<Output>()) {
  int in[2], out[2], err[2] = {-1, -1};
  if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0 ||
      (capture_stderr && pipe2(err, O_CLOEXEC) != 0)) {
    throw std::runtime_error("pipe");
  }
  pid_ = fork();
  if (pid_ == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the test
    dup2(in[0], 0);
    dup2(out[1], 1);
    if (capture_stderr) dup2(err[1], 2);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execv(args[0], args.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  in_ = in[1];
  out_->fd = out[0];
  out_->reader = std::thread([o = out_.get()] { o->read_loop(); });
  if (capture_stderr) {
    close(err[1]);
    err_ = std::make_unique<Output>();
    err_->fd = err[0];
    err_->reader = std::thread([o = err_.get()] { o->read_loop(); });
  }
}

Child::~Child() {
  kill9();
  if (in_ >= 0) close(in_);
  for (Output* o : {out_.get(), err_.get()}) {
    if (!o) continue;
    o->reader.join();
    close(o->fd);
  }
}

void Child::kill9() {
  if (pid_ > 0) {
    ::kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
}

int Child::terminate(std::chrono::milliseconds timeout) {
  if (pid_ > 0) ::kill(pid_, SIGTERM);
  return wait_exit(timeout);
}

int Child::wait_exit(std::chrono::milliseconds timeout) {
  int status = -1;
  wait_until(
      [&] {
        if (pid_ <= 0 || waitpid(pid_, &status, WNOHANG) != pid_) return false;
        pid_ = -1;
        return true;
      },
      timeout);
  return pid_ > 0 ? -1 : status;
}

void Child::write_line(const std::string& line) {
  const std::string data = line + "\n";
  (void)!::write(in_, data.data(), data.size());
}

std::vector<std::string> Child::lines() const {
  std::lock_guard lock(out_->mutex);
  return out_->lines;
}

std::vector<std::string> Child::error_lines() const {
  if (!err_) return {};
  std::lock_guard lock(err_->mutex);
  return err_->lines;
}

void Child::Output::read_loop() {
  std::string pending;
  char buffer[4096];
  for (;;) {
    const ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n <= 0) return;
    pending.append(buffer, static_cast<std::size_t>(n));
    std::size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      std::lock_guard lock(mutex);
      lines.push_back(pending.substr(0, nl));
      pending.erase(0, nl + 1);
    }
  }
}

MeshdProcess::MeshdProcess(std::vector<std::string> extra_args) {
  static int instances = 0;
  const std::string port_file = "/tmp/p2pmesh-native-test-" + std::to_string(getpid()) + "-" +
                                std::to_string(++instances) + ".port";
  std::remove(port_file.c_str());
  std::vector<std::string> argv = {MESHD_BINARY, "--host", "127.0.0.1", "--port", "0",
                                   "--port-file", port_file};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  child_ = std::make_unique<Child>(std::move(argv));
  // The port file is complete once it holds a number.
  wait_until([&] { return (std::ifstream(port_file) >> port_) && port_ > 0; }, 10s);
  std::remove(port_file.c_str());
}

}  // namespace p2pmesh::test
