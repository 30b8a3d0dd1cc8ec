// tests/support/pg_server.cpp — see pg_server.h.
//
// Layout of a server's temporary folder (/tmp/sluice-pg-XXXXXX):
//   owner.pid      pid of the test process that owns the server; a later start() stops and removes
//                  folders whose owner died without stopping its server (crash, ctest timeout kill)
//   data/          the cluster (initdb)
//   postgres.log   server log (pg_ctl -l)
//   .s.PGSQL.PORT  the Unix socket (-k); tests connect over TCP 127.0.0.1 anyway
//
// Child processes are started with posix_spawn (safe in multi-threaded test binaries); as root they
// go through `runuser -u postgres --`, since PostgreSQL refuses to run as root.
#include "support/pg_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

extern char** environ;

namespace sluice::test {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDefaultBinDir = "/usr/lib/postgresql/15/bin";
constexpr const char* kTmpPrefix = "sluice-pg-";
constexpr int kStartAttempts = 5;

struct ProcResult {
  int exit_code = -1;  // exit status, or 128+signal
  std::string out;
  std::string err;
};

// Runs argv (argv[0] is a path) with `input` on stdin, in working directory cwd (may be empty),
// capturing stdout and stderr. Throws only when the process cannot be started.
ProcResult run_process(const std::vector<std::string>& argv, const std::string& input,
                       const std::string& cwd) {
  int out_pipe[2] = {-1, -1};
  int err_pipe[2] = {-1, -1};
  int in_pipe[2] = {-1, -1};
  auto close_fd = [](int& fd) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  };
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0 ||
      ::pipe2(in_pipe, O_CLOEXEC) != 0) {
    const int e = errno;
    for (int* p : {out_pipe, err_pipe, in_pipe}) close_fd(p[0]), close_fd(p[1]);
    throw std::runtime_error(std::string("pipe2: ") + std::strerror(e));
  }

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], 2);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());

  // The child gets default SIGPIPE handling and an empty signal mask whatever the test process did.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);

  pid_t pid = -1;
  const int rc = posix_spawn(&pid, cargv[0], &actions, &attr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  close_fd(in_pipe[0]);
  close_fd(out_pipe[1]);
  close_fd(err_pipe[1]);
  if (rc != 0) {
    close_fd(in_pipe[1]);
    close_fd(out_pipe[0]);
    close_fd(err_pipe[0]);
    throw std::runtime_error("cannot run " + argv[0] + ": " + std::strerror(rc));
  }

  // Feed stdin and drain stdout/stderr together so neither side can block the other. SIGPIPE is
  // blocked in this thread while writing (a child may exit without reading all of its input) and a
  // SIGPIPE raised here is consumed afterwards.
  sigset_t pipe_set, old_mask, pending_before;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  sigpending(&pending_before);
  pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);
  ProcResult result;
  std::size_t written = 0;
  if (input.empty()) close_fd(in_pipe[1]);
  if (in_pipe[1] >= 0) ::fcntl(in_pipe[1], F_SETFL, O_NONBLOCK);
  char buf[8192];
  while (out_pipe[0] >= 0 || err_pipe[0] >= 0) {
    pollfd fds[3];
    int n = 0;
    if (out_pipe[0] >= 0) fds[n++] = {out_pipe[0], POLLIN, 0};
    if (err_pipe[0] >= 0) fds[n++] = {err_pipe[0], POLLIN, 0};
    if (in_pipe[1] >= 0) fds[n++] = {in_pipe[1], POLLOUT, 0};
    if (::poll(fds, static_cast<nfds_t>(n), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (int i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (fds[i].fd == in_pipe[1]) {
        if (fds[i].revents & (POLLERR | POLLHUP)) {
          close_fd(in_pipe[1]);
          continue;
        }
        const ssize_t w = ::write(in_pipe[1], input.data() + written, input.size() - written);
        if (w > 0) written += static_cast<std::size_t>(w);
        if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) close_fd(in_pipe[1]);
        continue;
      }
      const ssize_t r = ::read(fds[i].fd, buf, sizeof buf);
      if (r > 0) {
        (fds[i].fd == out_pipe[0] ? result.out : result.err).append(buf, static_cast<std::size_t>(r));
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        if (fds[i].fd == out_pipe[0]) close_fd(out_pipe[0]);
        else close_fd(err_pipe[0]);
      }
    }
  }
  close_fd(in_pipe[1]);
  close_fd(out_pipe[0]);
  close_fd(err_pipe[0]);
  sigset_t pending_after;
  sigpending(&pending_after);
  if (sigismember(&pending_after, SIGPIPE) && !sigismember(&pending_before, SIGPIPE)) {
    const timespec no_wait{0, 0};
    sigtimedwait(&pipe_set, nullptr, &no_wait);
  }
  pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);

  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  else if (WIFSIGNALED(status)) result.exit_code = 128 + WTERMSIG(status);
  return result;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

std::string tail(const std::string& text, std::size_t max_chars = 3000) {
  return text.size() <= max_chars ? text : "..." + text.substr(text.size() - max_chars);
}

std::string quote_ident(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

bool pid_alive(pid_t pid) { return pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM); }

std::mutex& stale_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

int free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    const int e = errno;
    ::close(fd);
    throw std::runtime_error(std::string("cannot find a free port: ") + std::strerror(e));
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

PgServer::~PgServer() {
  try {
    stop();
  } catch (...) {
    // A destructor never throws; stop() already tried its best.
  }
}

namespace {

// Runs a PostgreSQL server binary (initdb, pg_ctl) as the right user.
ProcResult run_pg_tool(bool as_postgres, const std::string& bin_dir, const std::string& tool,
                       const std::vector<std::string>& args, const std::string& cwd) {
  std::vector<std::string> argv;
  if (as_postgres) argv = {"/usr/sbin/runuser", "-u", "postgres", "--"};
  argv.push_back(bin_dir + "/" + tool);
  argv.insert(argv.end(), args.begin(), args.end());
  return run_process(argv, "", cwd);
}

// Stops and removes server folders left behind by test processes that died without stop().
void remove_stale_servers(const std::string& bin_dir, bool as_postgres) {
  std::lock_guard<std::mutex> guard(stale_mutex());
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/tmp", ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(kTmpPrefix, 0) != 0) continue;
    const std::string dir = entry.path().string();
    std::ifstream in(dir + "/owner.pid");
    pid_t owner = 0;
    if (!(in >> owner) || pid_alive(owner)) continue;  // no owner yet, or still alive
    struct stat st{};
    if (::stat(dir.c_str(), &st) != 0) continue;
    if (st.st_uid != ::geteuid() && !(as_postgres && ::geteuid() == 0)) continue;
    if (fs::exists(dir + "/data/postmaster.pid", ec)) {
      run_pg_tool(as_postgres, bin_dir, "pg_ctl", {"-D", dir + "/data", "-m", "immediate", "-w", "stop"},
                  dir);
    }
    fs::remove_all(dir, ec);
  }
}

}  // namespace

void PgServer::start() {
  if (running_) return;
  if (!dir_.empty()) {
    start_again();
    return;
  }
  const char* env_bin = std::getenv("SLUICE_PG_BINDIR");
  bin_dir_ = env_bin && *env_bin ? env_bin : kDefaultBinDir;
  if (::access((bin_dir_ + "/initdb").c_str(), X_OK) != 0 ||
      ::access((bin_dir_ + "/pg_ctl").c_str(), X_OK) != 0) {
    throw std::runtime_error("PostgreSQL 15 server binaries not found in " + bin_dir_ +
                             " (install postgresql-15: scripts/install-deps, or set SLUICE_PG_BINDIR)");
  }
  as_postgres_ = ::geteuid() == 0;
  try {
    remove_stale_servers(bin_dir_, as_postgres_);
  } catch (const std::exception&) {
    // Best effort only.
  }

  std::string templ = std::string("/tmp/") + kTmpPrefix + "XXXXXX";
  if (::mkdtemp(templ.data()) == nullptr) {
    throw std::runtime_error(std::string("mkdtemp: ") + std::strerror(errno));
  }
  dir_ = templ;
  {
    std::ofstream pid_file(dir_ + "/owner.pid");
    pid_file << ::getpid() << "\n";
  }
  if (as_postgres_) {
    const passwd* pw = ::getpwnam("postgres");
    if (pw == nullptr) {
      stop();
      throw std::runtime_error("running as root but there is no `postgres` user (install postgresql-15)");
    }
    if (::chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) {
      const int e = errno;
      stop();
      throw std::runtime_error("chown " + templ + " to postgres: " + std::strerror(e));
    }
  }

  const ProcResult init =
      run_pg_tool(as_postgres_, bin_dir_, "initdb",
                  {"-D", dir_ + "/data", "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8",
                   "--locale=C"},
                  dir_);
  if (init.exit_code != 0) {
    const std::string message = "initdb failed (exit " + std::to_string(init.exit_code) +
                                "): " + tail(init.err + init.out);
    stop();
    throw std::runtime_error(message);
  }

  std::string last_error;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    port_ = free_tcp_port();
    try {
      start_again();
      return;
    } catch (const std::exception& e) {
      last_error = e.what();
      // Only a lost race for the port is worth another port; anything else is final.
      if (last_error.find("Address already in use") == std::string::npos &&
          last_error.find("could not bind") == std::string::npos &&
          last_error.find("could not create any TCP/IP sockets") == std::string::npos) {
        break;
      }
    }
  }
  stop();
  throw std::runtime_error("PostgreSQL did not start: " + last_error);
}

void PgServer::start_again() {
  if (running_) return;
  if (dir_.empty()) throw std::runtime_error("PgServer::start_again() without a data directory");
  const std::string log = dir_ + "/postgres.log";
  std::error_code ec;
  const auto log_size_before = fs::exists(log, ec) ? fs::file_size(log, ec) : 0;
  const std::string options = "-p " + std::to_string(port_) + " -k " + dir_ +
                              " -c listen_addresses=127.0.0.1 -c fsync=off"
                              " -c max_connections=100 -c shared_buffers=128MB";
  const ProcResult r = run_pg_tool(
      as_postgres_, bin_dir_, "pg_ctl",
      {"-w", "-t", "60", "-D", dir_ + "/data", "-l", log, "-o", options, "start"}, dir_);
  if (r.exit_code != 0) {
    std::string log_text = read_text(log);
    if (log_size_before < log_text.size()) log_text = log_text.substr(log_size_before);
    // A half-started server (timeout) must not linger.
    run_pg_tool(as_postgres_, bin_dir_, "pg_ctl", {"-D", dir_ + "/data", "-m", "immediate", "-w", "stop"},
                dir_);
    throw std::runtime_error("pg_ctl start on port " + std::to_string(port_) + " failed (exit " +
                             std::to_string(r.exit_code) + "): " + tail(r.err + r.out) +
                             "\n--- server log ---\n" + tail(log_text));
  }
  running_ = true;
}

void PgServer::stop_keep_data() {
  if (!running_ || dir_.empty()) return;
  running_ = false;
  const ProcResult r = run_pg_tool(as_postgres_, bin_dir_, "pg_ctl",
                                   {"-D", dir_ + "/data", "-m", "fast", "-w", "-t", "60", "stop"}, dir_);
  if (r.exit_code != 0) {
    // Fast shutdown did not finish: do not leave a server behind.
    run_pg_tool(as_postgres_, bin_dir_, "pg_ctl", {"-D", dir_ + "/data", "-m", "immediate", "-w", "stop"},
                dir_);
  }
}

void PgServer::restart() {
  stop_keep_data();
  // The same port: clients of an outage test reconnect to the same URL.
  std::string last_error;
  for (int attempt = 0; attempt < kStartAttempts; ++attempt) {
    try {
      start_again();
      return;
    } catch (const std::exception& e) {
      last_error = e.what();
      std::this_thread::sleep_for(std::chrono::milliseconds(200 * (attempt + 1)));
    }
  }
  throw std::runtime_error("PostgreSQL did not restart: " + last_error);
}

void PgServer::stop() {
  try {
    stop_keep_data();
  } catch (...) {
  }
  if (!dir_.empty()) {
    std::error_code ec;
    fs::remove_all(dir_, ec);
    dir_.clear();
  }
  running_ = false;
}

std::string PgServer::url(const std::string& database) const {
  return "postgresql://postgres@127.0.0.1:" + std::to_string(port_) + "/" + database;
}

std::string PgServer::create_database(const std::string& name) {
  const std::string q = quote_ident(name);
  psql("postgres", "DROP DATABASE IF EXISTS " + q + " WITH (FORCE);\nCREATE DATABASE " + q + ";\n");
  return url(name);
}

std::string PgServer::psql(const std::string& database, const std::string& sql) const {
  if (!running_) throw std::runtime_error("PgServer::psql(): the server is not running");
  const ProcResult r = run_process(
      {bin_dir_ + "/psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-At", "-d", url(database)}, sql, "");
  if (r.exit_code != 0) {
    throw std::runtime_error("psql failed (exit " + std::to_string(r.exit_code) + ") on " +
                             database + ": " + tail(r.err));
  }
  return r.out;
}

PgServer& shared_pg_server() {
  // Constructed on first use, destroyed (server stopped, folder removed) at normal process exit.
  static PgServer server;
  static std::once_flag started;
  std::call_once(started, [] { server.start(); });
  return server;
}

}  // namespace sluice::test
