// tests/integration/policy_tsdb_fixture.h — a throw-away TimescaleDB for the policy tests: the npm
// fixture in tests/fixtures/timescaledb (PGlite + TimescaleDB 2.23 over the wire protocol, see
// DEVELOPERS.md) run as a child process `node server.mjs --port 0 [args]`.
//
//   TsdbServer s; if (auto why = s.start({}); !why.empty()) GTEST_SKIP() << why;
//   pg::Connection conn(s.url());     // ONE connection at a time: the server queues the others
//
// start() returns a reason to skip only when node is not installed; a fixture that cannot be
// installed or does not come up is a test failure (thrown). The child exits when its stdin closes,
// so a crashed test never leaves it behind.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace sluice::test {

inline std::string find_in_path(const std::string& exe) {
  const char* path = std::getenv("PATH");
  std::string p = path ? path : "/usr/local/bin:/usr/bin:/bin";
  size_t start = 0;
  while (start <= p.size()) {
    const auto colon = p.find(':', start);
    const std::string dir = p.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
    const std::string full = (dir.empty() ? "." : dir) + "/" + exe;
    if (::access(full.c_str(), X_OK) == 0) return full;
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  return "";
}

class TsdbServer {
 public:
  TsdbServer() = default;
  TsdbServer(const TsdbServer&) = delete;
  TsdbServer& operator=(const TsdbServer&) = delete;
  ~TsdbServer() { stop(); }

  static std::string fixture_dir() { return std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/timescaledb"; }

  // "" when running; otherwise why the tests must skip (node missing). Throws on real failures.
  std::string start(const std::vector<std::string>& args = {}) {
    const std::string node = find_in_path("node");
    if (node.empty()) {
      return "node is not installed: the TimescaleDB fixture (tests/fixtures/timescaledb, see DEVELOPERS.md) "
             "cannot run; install nodejs and npm to run these tests";
    }
    ensure_installed();
    int in_pipe[2], out_pipe[2];
    if (::pipe2(in_pipe, O_CLOEXEC) != 0 || ::pipe2(out_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    log_path_ = "/tmp/sluice-tsdb-" + std::to_string(::getpid()) + "-" + std::to_string(++counter()) + ".log";
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_pipe[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out_pipe[1], 1);
    posix_spawn_file_actions_addopen(&fa, 2, log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addchdir_np(&fa, fixture_dir().c_str());
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    std::vector<std::string> argv = {node, "server.mjs", "--port", "0"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::vector<char*> cargv;
    for (auto& a : argv) cargv.push_back(a.data());
    cargv.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, node.c_str(), &fa, &attr, cargv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    ::close(in_pipe[0]);
    ::close(out_pipe[1]);
    stdin_fd_ = in_pipe[1];
    if (rc != 0) {
      ::close(out_pipe[0]);
      throw std::runtime_error("cannot start node: " + std::string(std::strerror(rc)));
    }
    // Wait for "READY <port>".
    std::string out;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (out.find('\n') == std::string::npos) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count();
      if (left <= 0) break;
      pollfd p{out_pipe[0], POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char buf[256];
      const ssize_t n = ::read(out_pipe[0], buf, sizeof buf);
      if (n <= 0) break;
      out.append(buf, static_cast<size_t>(n));
    }
    ::close(out_pipe[0]);
    if (out.rfind("READY ", 0) != 0) {
      stop();
      throw std::runtime_error("the TimescaleDB fixture did not start (stdout \"" + out + "\"); log: " + log_path_);
    }
    port_ = std::atoi(out.c_str() + 6);
    return "";
  }

  void stop() {
    if (stdin_fd_ >= 0) ::close(stdin_fd_);
    stdin_fd_ = -1;
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      for (int i = 0; i < 100; ++i) {
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
          pid_ = -1;
          break;
        }
        ::usleep(50 * 1000);
      }
      if (pid_ > 0) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, &status, 0);
        pid_ = -1;
      }
    }
  }

  int port() const { return port_; }
  std::string url() const {
    return "postgresql://postgres:postgres@127.0.0.1:" + std::to_string(port_) + "/postgres?sslmode=disable";
  }

 private:
  static int& counter() {
    static int c = 0;
    return c;
  }

  // Runs the fixture's idempotent install script once per process (npm ci from package-lock.json).
  static void ensure_installed() {
    static bool done = false;
    if (done) return;
    const std::string cmd = "'" + fixture_dir() + "/install' >/tmp/sluice-tsdb-install.log 2>&1";
    if (std::system(cmd.c_str()) != 0) {
      throw std::runtime_error("tests/fixtures/timescaledb/install failed; see /tmp/sluice-tsdb-install.log");
    }
    done = true;
  }

  pid_t pid_ = -1;
  int stdin_fd_ = -1;
  int port_ = 0;
  std::string log_path_;
};

}  // namespace sluice::test
