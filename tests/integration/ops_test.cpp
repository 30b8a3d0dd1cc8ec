// Operations tests of the sluiced binary: the systemd notify protocol (READY=1 only once /readyz is
// 200, STATUS= lines, WATCHDOG=1 at half of WATCHDOG_USEC, STOPPING=1 on SIGTERM, SIGHUP not
// fatal), thread names, `systemd-analyze verify` of systemd/sluiced.service, `promtool check
// metrics` on a real scrape, the Grafana dashboard's metric names, and the Dockerfile's package
// lists against the built binary and scripts/install-deps.
//
// The notify socket is a unix datagram socket the test binds in a temporary folder and passes to
// the child as NOTIFY_SOCKET, exactly as systemd does.
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "pg/connection.h"
#include "pg/migrate.h"
#include "support/daemon_process.h"
#include "support/http_client.h"
#include "support/pg_server.h"

namespace sluice {
namespace {

using test::DaemonProcess;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const std::string kSource = SLUICE_SOURCE_DIR;

struct Ports {
  int http = test::free_tcp_port();
  int admin = test::free_tcp_port();
  int udp = test::free_tcp_port();
};

std::string config_json(const Ports& p, int writer_connections = 2) {
  return R"({
    "database": {"url": "ignored: SLUICE_DATABASE_URL wins", "connections": )" +
         std::to_string(writer_connections) + R"(},
    "pipeline": {"io_threads": 2, "ring_capacity": 64},
    "batch": {"max_rows": 5000, "max_age_ms": 20},
    "http": {"listen": "127.0.0.1:)" + std::to_string(p.http) + R"("},
    "udp": [{"listen": "127.0.0.1:)" + std::to_string(p.udp) + R"(", "table": "sensor_readings"}],
    "admin": {"listen": "127.0.0.1:)" + std::to_string(p.admin) + R"("},
    "log": {"level": "info"},
    "tables": [{"name": "sensor_readings"}, {"name": "datapoint"}]
  })";
}

std::string fresh_database(test::PgServer& server, const std::string& name, int sensors) {
  const std::string url = server.create_database(name);
  pg::Connection conn(url);
  pg::migrate(conn, kSource + "/sql");
  conn.exec("INSERT INTO sensors (sensor_id, type, location, status) SELECT 'sensor-' || g, 'temperature', 'lab', "
            "'active' FROM generate_series(0, " + std::to_string(sensors - 1) + ") g");
  return url;
}

long long count_rows(const std::string& url) {
  pg::Connection conn(url);
  auto r = conn.query("SELECT count(*) FROM sensor_readings");
  return std::atoll(PQgetvalue(r.get(), 0, 0));
}

// Runs a shell command; returns its exit code (-1 when it did not exit), output in `out`.
int sh(const std::string& cmd, std::string& out) {
  out.clear();
  std::FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  const int status = ::pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool have_command(const std::string& name) {
  std::string out;
  return sh("command -v " + name, out) == 0;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string make_temp_dir() {
  char tmpl[] = "/tmp/sluice-ops-XXXXXX";
  if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp failed");
  return tmpl;
}

// A systemd-compatible notify socket: every datagram is one message of newline-separated
// assignments; messages are kept in arrival order with their arrival time.
class NotifySocket {
 public:
  NotifySocket() : dir_(make_temp_dir()), path_(dir_ + "/notify") {
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      throw std::runtime_error("cannot bind the notify socket " + path_);
    }
  }
  ~NotifySocket() {
    ::close(fd_);
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  const std::string& path() const { return path_; }

  struct Message {
    std::string text;
    Clock::time_point at;
  };

  // Reads messages until one contains `line` (a whole line) or the timeout passes; returns its
  // index in messages(), or -1.
  int wait_for(const std::string& line, std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (size_t i = checked_; ; ++i) {
      while (i >= messages_.size()) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0 || !receive(static_cast<int>(left))) return -1;
      }
      if (has_line(messages_[i].text, line)) {
        checked_ = i + 1;
        return static_cast<int>(i);
      }
    }
  }
  // Collects whatever arrives during `d`.
  void drain_for(std::chrono::milliseconds d) {
    const auto deadline = Clock::now() + d;
    for (;;) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return;
      receive(static_cast<int>(left));
    }
  }
  // Messages from index `from` on that contain `line`.
  int count(const std::string& line, size_t from = 0) const {
    int n = 0;
    for (size_t i = from; i < messages_.size(); ++i) n += has_line(messages_[i].text, line) ? 1 : 0;
    return n;
  }
  const std::vector<Message>& messages() const { return messages_; }
  std::string dump() const {
    std::string s;
    for (const auto& m : messages_) s += "[" + m.text + "]\n";
    return s;
  }

  static bool has_line(const std::string& text, const std::string& line) {
    std::istringstream in(text);
    std::string l;
    while (std::getline(in, l)) {
      if (l == line || (line.back() == '*' && l.rfind(line.substr(0, line.size() - 1), 0) == 0)) return true;
    }
    return false;
  }

 private:
  bool receive(int timeout_ms) {
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, timeout_ms) <= 0) return false;
    char buf[4096];
    const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n < 0) return false;
    messages_.push_back({std::string(buf, static_cast<size_t>(n)), Clock::now()});
    return true;
  }

  std::string dir_;
  std::string path_;
  int fd_ = -1;
  std::vector<Message> messages_;
  size_t checked_ = 0;
};

std::set<std::string> thread_names(pid_t pid) {
  std::set<std::string> names;
  const std::string dir = "/proc/" + std::to_string(pid) + "/task";
  DIR* d = ::opendir(dir.c_str());
  if (!d) return names;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::string comm = read_file(dir + "/" + e->d_name + "/comm");
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    names.insert(comm);
  }
  ::closedir(d);
  return names;
}

// ---------------------------------------------------------------------------------------------
// systemd notify protocol

// Started while its database is down: STATUS says so, READY=1 is not sent and /readyz is 503;
// once the database is up READY=1 arrives, and /readyz is already 200 at that moment.
TEST(SystemdNotify, ReadyOnlyOnceReadyzIs200) {
  test::PgServer server;
  server.start();
  const std::string url = fresh_database(server, "ops_late", 1);
  server.stop_keep_data();

  NotifySocket ns;
  Ports p;
  DaemonProcess d;
  d.start(config_json(p), url, p.admin, 30, /*wait_for_ready=*/false, {{"NOTIFY_SOCKET", ns.path()}});
  ASSERT_GE(ns.wait_for("STATUS=waiting for the database*", 10s), 0) << ns.dump() << d.log();
  EXPECT_EQ(ns.count("READY=1"), 0) << ns.dump();
  EXPECT_EQ(test::http_get(p.admin, "/readyz").status, 503);
  EXPECT_EQ(ns.count("STATUS=connecting to the database"), 1) << ns.dump();

  server.start_again();
  const int ready = ns.wait_for("READY=1", 30s);
  ASSERT_GE(ready, 0) << ns.dump() << d.log();
  EXPECT_EQ(test::http_get(p.admin, "/readyz").status, 200) << d.log();
  // The READY=1 message carries the status line too.
  EXPECT_TRUE(NotifySocket::has_line(ns.messages()[ready].text,
                                     "STATUS=ready: 2 tables, 2 io threads, 2 writer connections"))
      << ns.dump();
  EXPECT_EQ(ns.count("READY=1"), 1);
  EXPECT_EQ(ns.count("WATCHDOG=1"), 0) << "no WATCHDOG_USEC, no pings:\n" << ns.dump();

  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  ns.drain_for(100ms);
  const int stopping = ns.wait_for("STOPPING=1", 0ms);
  ASSERT_GT(stopping, ready) << ns.dump();
  EXPECT_TRUE(NotifySocket::has_line(ns.messages()[stopping].text, "STATUS=stopping*")) << ns.dump();
}

// WATCHDOG_USEC=400 ms for this pid: pings every ~200 ms. SIGHUP is logged and changes nothing;
// SIGTERM then stops it cleanly with STOPPING=1. The threads carry their names.
TEST(SystemdNotify, WatchdogPingsSighupIsHarmlessAndThreadsAreNamed) {
  const std::string url = fresh_database(test::shared_pg_server(), "ops_watchdog", 1);
  NotifySocket ns;
  Ports p;
  DaemonProcess d;
  d.start(config_json(p), url, p.admin, 30, true,
          {{"NOTIFY_SOCKET", ns.path()}, {"WATCHDOG_USEC", "400000"}, {"WATCHDOG_PID", "{pid}"}});
  const int ready = ns.wait_for("READY=1", 10s);
  ASSERT_GE(ready, 0) << ns.dump() << d.log();
  ns.drain_for(1500ms);
  const int pings = ns.count("WATCHDOG=1", static_cast<size_t>(ready));
  EXPECT_GE(pings, 4) << ns.dump();  // 7 expected; a loaded machine may lose a few ticks
  EXPECT_LE(pings, 8) << ns.dump();

  const auto names = thread_names(d.pid());
  for (const char* n : {"sluice-io-0", "sluice-io-1", "sluice-batcher", "sluice-writer-0", "sluice-writer-1",
                        "sluice-admin", "sluice-signal"}) {
    EXPECT_EQ(names.count(n), 1u) << n << " among: " << [&] {
      std::string all;
      for (const auto& x : names) all += x + " ";
      return all;
    }();
  }

  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  const size_t before_hup = ns.messages().size();
  ns.drain_for(600ms);
  EXPECT_EQ(test::http_get(p.admin, "/readyz").status, 200) << d.log();
  EXPECT_GE(ns.count("WATCHDOG=1", before_hup), 2) << "still pinging after SIGHUP\n" << ns.dump();
  EXPECT_NE(d.log().find("event=reload_requested"), std::string::npos) << d.log();

  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  ns.drain_for(100ms);
  EXPECT_EQ(ns.count("STOPPING=1"), 1) << ns.dump();
}

// sd_watchdog_enabled() ignores a WATCHDOG_USEC meant for another process.
TEST(SystemdNotify, NoWatchdogForAnotherPid) {
  const std::string url = fresh_database(test::shared_pg_server(), "ops_nowatchdog", 1);
  NotifySocket ns;
  Ports p;
  DaemonProcess d;
  d.start(config_json(p, 1), url, p.admin, 30, true,
          {{"NOTIFY_SOCKET", ns.path()}, {"WATCHDOG_USEC", "200000"}, {"WATCHDOG_PID", "1"}});
  ASSERT_GE(ns.wait_for("READY=1", 10s), 0) << ns.dump() << d.log();
  ns.drain_for(600ms);
  EXPECT_EQ(ns.count("WATCHDOG=1"), 0) << ns.dump();
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

// ---------------------------------------------------------------------------------------------
// systemd-analyze verify

TEST(SystemdUnit, VerifyPasses) {
  if (!have_command("systemd-analyze")) GTEST_SKIP() << "systemd-analyze not installed (Debian package systemd)";
  const std::string dir = make_temp_dir();
  std::string unit = read_file(kSource + "/systemd/sluiced.service");
  const std::string exec = "ExecStart=/usr/bin/sluiced ";
  const auto at = unit.find(exec);
  ASSERT_NE(at, std::string::npos) << "ExecStart no longer starts /usr/bin/sluiced";
  unit.replace(at, exec.size(), "ExecStart=" + test::sluiced_path() + " ");
  std::ofstream(dir + "/sluiced.service") << unit;
  std::string out;
  const int code = sh("systemd-analyze verify '" + dir + "/sluiced.service'", out);
  std::system(("rm -rf '" + dir + "'").c_str());
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "") << "warnings from systemd-analyze verify";
  // What the daemon relies on is there.
  for (const char* line : {"Type=notify", "NotifyAccess=main", "WatchdogSec=30", "ExecReload=/bin/kill -HUP $MAINPID",
                           "StateDirectory=sluice", "NoNewPrivileges=yes", "User=sluice",
                           "LoadCredential=database-url:/etc/sluice/database-url"}) {
    EXPECT_NE(unit.find(std::string("\n") + line + "\n"), std::string::npos) << line;
  }
}

// ---------------------------------------------------------------------------------------------
// /metrics: promtool and the Grafana dashboard

// Metric names in PromQL expressions: identifiers starting with sluice_.
std::set<std::string> dashboard_metric_names(const nlohmann::json& j) {
  std::set<std::string> names;
  const std::regex name_re("sluice_[a-zA-Z0-9_]+");
  std::vector<const nlohmann::json*> stack{&j};
  while (!stack.empty()) {
    const nlohmann::json* n = stack.back();
    stack.pop_back();
    if (n->is_object()) {
      for (auto it = n->begin(); it != n->end(); ++it) {
        if ((it.key() == "expr" || it.key() == "query") && it.value().is_string()) {
          const std::string e = it.value().get<std::string>();
          for (auto m = std::sregex_iterator(e.begin(), e.end(), name_re); m != std::sregex_iterator(); ++m) {
            names.insert(m->str());
          }
        } else {
          stack.push_back(&it.value());
        }
      }
    } else if (n->is_array()) {
      for (const auto& v : *n) stack.push_back(&v);
    }
  }
  return names;
}

// Sample names in a text exposition (the part of each sample line before '{' or ' ').
std::set<std::string> exposed_names(const std::string& metrics) {
  std::set<std::string> names;
  std::istringstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("# TYPE ", 0) == 0) names.insert(line.substr(7, line.find(' ', 7) - 7));
    if (line.empty() || line[0] == '#') continue;
    names.insert(line.substr(0, line.find_first_of("{ ")));
  }
  return names;
}

class MetricsScrape : public ::testing::Test {
 protected:
  // One daemon, one known workload, one scrape for every test of this fixture.
  static void SetUpTestSuite() {
    url_ = fresh_database(test::shared_pg_server(), "ops_metrics", 2);
    ports_ = new Ports;
    daemon_ = new DaemonProcess;
    daemon_->start(config_json(*ports_), url_, ports_->admin);
    test::HttpClient c("127.0.0.1", ports_->http);
    std::string body = "[";
    for (int i = 0; i < 20; ++i) {
      if (i) body += ',';
      body += R"({"timestamp":)" + std::to_string(1735689600 + i) + R"(,"sensor_id":"sensor-0","value":)" +
              std::to_string(i) + "}";
    }
    body += "]";
    status_ok_ = c.post("/v1/write/sensor_readings", body).status;
    status_bad_ = c.post("/v1/write/sensor_readings", R"([{"timestamp":1,"sensor_id":"sensor-1","value":"x"}])").status;
    status_missing_ = c.post("/v1/write/no_such_table", "[]").status;
    // sensor-9 is not registered: the database refuses the row (foreign key, SQLSTATE class 23).
    status_fk_ = c.post("/v1/write/sensor_readings", R"([{"timestamp":1735690000,"sensor_id":"sensor-9","value":1}])").status;
    const int s = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(ports_->udp));
    ::inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    const std::string dgram = "{\"timestamp\":\"2025-02-01T00:00:00Z\",\"sensor_id\":\"sensor-1\",\"value\":1}\n"
                              "{\"timestamp\":\"2025-02-01T00:00:01Z\",\"sensor_id\":\"sensor-1\",\"value\":2}\n";
    ::sendto(s, dgram.data(), dgram.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    const std::string junk = "{\"timestamp\": ";
    ::sendto(s, junk.data(), junk.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    ::close(s);
    const auto deadline = Clock::now() + 10s;
    while (count_rows(url_) < 22 && Clock::now() < deadline) std::this_thread::sleep_for(20ms);
    // The datagram counters are bumped on the IO thread before the rows reach the database,
    // the malformed one right after its neighbour: give it a moment.
    std::this_thread::sleep_for(100ms);
    metrics_ = test::http_get(ports_->admin, "/metrics").body;
  }
  static void TearDownTestSuite() {
    delete daemon_;
    delete ports_;
  }

  static inline std::string url_;
  static inline Ports* ports_ = nullptr;
  static inline DaemonProcess* daemon_ = nullptr;
  static inline std::string metrics_;
  static inline int status_ok_ = 0, status_bad_ = 0, status_missing_ = 0, status_fk_ = 0;
};

TEST_F(MetricsScrape, KnownWorkloadValues) {
  EXPECT_EQ(status_ok_, 200);
  EXPECT_EQ(status_bad_, 400);
  EXPECT_EQ(status_missing_, 404);
  EXPECT_EQ(status_fk_, 400);  // the row is refused by the database and dead-lettered: not retryable
  EXPECT_EQ(count_rows(url_), 22);
  const std::string& m = metrics_;
  for (const char* sample : {
           "sluice_rows_received_total{table=\"sensor_readings\"} 24",
           "sluice_rows_accepted_total{table=\"sensor_readings\"} 23",
           "sluice_rows_committed_total{table=\"sensor_readings\"} 22",
           "sluice_rows_committed_total{table=\"datapoint\"} 0",
           "sluice_rows_rejected_total{reason=\"invalid_value\",table=\"sensor_readings\"} 1",
           "sluice_rows_failed_total{table=\"sensor_readings\"} 1",
           "sluice_copy_failures_total{sqlstate_class=\"23\"} 1",
           "sluice_http_requests_refused_total{reason=\"unknown_table\"} 1",
           "sluice_http_responses_total{code=\"2xx\"} 1",
           "sluice_http_responses_total{code=\"4xx\"} 3",
           "sluice_http_responses_total{code=\"5xx\"} 0",
           "sluice_db_connections_up 2",
           "sluice_writer_queue_batches 0",
           "sluice_ring_capacity_blocks{thread=\"0\"} 64",
       }) {
    EXPECT_NE(m.find(std::string("\n") + sample + "\n"), std::string::npos) << sample << "\n" << m;
  }
  EXPECT_NE(m.find("sluice_udp_datagrams_received_total{listener=\"127.0.0.1:" + std::to_string(ports_->udp) + "\"} 2\n"),
            std::string::npos) << m;
  // Drops per listener and cause.
  const std::string listener = "listener=\"127.0.0.1:" + std::to_string(ports_->udp) + "\"";
  EXPECT_NE(m.find("sluice_udp_datagrams_dropped_total{cause=\"malformed\"," + listener + "} 1\n"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_udp_datagrams_dropped_total{cause=\"ring_full\"," + listener + "} 0\n"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_udp_datagrams_dropped_total{cause=\"kernel\"," + listener + "} 0\n"), std::string::npos) << m;
}

TEST_F(MetricsScrape, PromtoolCheckMetricsPasses) {
  if (!have_command("promtool")) GTEST_SKIP() << "promtool not installed (Debian package prometheus)";
  ASSERT_FALSE(metrics_.empty());
  const std::string dir = make_temp_dir();
  std::ofstream(dir + "/metrics.txt") << metrics_;
  std::string out;
  const int code = sh("promtool check metrics < '" + dir + "/metrics.txt'", out);
  std::system(("rm -rf '" + dir + "'").c_str());
  EXPECT_EQ(code, 0) << out;
  EXPECT_EQ(out, "") << "promtool lint problems";
}

TEST_F(MetricsScrape, DashboardUsesOnlyExposedMetrics) {
  const std::string text = read_file(kSource + "/docs/grafana/sluice-dashboard.json");
  ASSERT_FALSE(text.empty()) << "docs/grafana/sluice-dashboard.json missing";
  const auto j = nlohmann::json::parse(text);
  const auto used = dashboard_metric_names(j);
  const auto exposed = exposed_names(metrics_);
  EXPECT_GE(used.size(), 15u);
  for (const auto& name : used) EXPECT_EQ(exposed.count(name), 1u) << name << " is not in /metrics";
}

// docs/alerts.yml: valid for promtool, and every sluice_* series it uses is exposed.
TEST_F(MetricsScrape, AlertRulesPassPromtoolAndUseExposedMetrics) {
  const std::string rules = read_file(kSource + "/docs/alerts.yml");
  ASSERT_FALSE(rules.empty()) << "docs/alerts.yml missing";
  if (have_command("promtool")) {
    std::string out;
    EXPECT_EQ(sh("promtool check rules '" + kSource + "/docs/alerts.yml'", out), 0) << out;
    EXPECT_NE(out.find("SUCCESS"), std::string::npos) << out;
  } else {
    ADD_FAILURE() << "promtool not installed (scripts/install-deps --tests installs it)";
  }
  const auto exposed = exposed_names(metrics_);
  const std::regex name_re("sluice_[a-zA-Z0-9_]+");
  // The expressions only: `expr: …` lines and the indented lines of an `expr: |` block.
  std::string exprs;
  {
    std::istringstream in(rules);
    std::string line;
    size_t block_indent = std::string::npos;
    while (std::getline(in, line)) {
      const size_t indent = line.find_first_not_of(' ');
      if (block_indent != std::string::npos && indent != std::string::npos && indent > block_indent) {
        exprs += line + "\n";
        continue;
      }
      block_indent = std::string::npos;
      const auto at = line.find("expr:");
      if (at == std::string::npos || indent != at) continue;
      exprs += line + "\n";
      if (line.find('|', at) != std::string::npos) block_indent = indent;
    }
  }
  std::set<std::string> used;
  for (auto m = std::sregex_iterator(exprs.begin(), exprs.end(), name_re); m != std::sregex_iterator(); ++m) {
    used.insert(m->str());
  }
  EXPECT_GE(used.size(), 10u);
  for (const auto& name : used) EXPECT_EQ(exposed.count(name), 1u) << name << " is not in /metrics";
  // The reload and logging series exist from the start.
  for (const char* sample : {"sluice_config_reloads_total{result=\"applied\"} 0",
                             "sluice_config_reloads_total{result=\"invalid\"} 0",
                             "sluice_log_messages_dropped_total 0"}) {
    EXPECT_NE(metrics_.find(std::string("\n") + sample + "\n"), std::string::npos) << sample;
  }
}

// ---------------------------------------------------------------------------------------------
// Dockerfile package lists

// Packages of one `apt-get install` in the Dockerfile stage that starts with `from_line`.
std::set<std::string> dockerfile_packages(const std::string& dockerfile, const std::string& from_line) {
  std::set<std::string> pkgs;
  const auto stage = dockerfile.find(from_line);
  if (stage == std::string::npos) return pkgs;
  const auto install = dockerfile.find("apt-get install", stage);
  if (install == std::string::npos) return pkgs;
  const auto end = dockerfile.find("&&", install);
  std::istringstream in(dockerfile.substr(install + 15, end - install - 15));
  std::string w;
  while (in >> w) {
    if (w == "\\" || w[0] == '-') continue;
    pkgs.insert(w);
  }
  return pkgs;
}

// Packages of scripts/install-deps between the comment `# <section>` and the next comment line.
std::set<std::string> install_deps_section(const std::string& script, const std::string& section) {
  std::set<std::string> pkgs;
  std::istringstream in(script);
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(' ');
    if (first == std::string::npos) continue;
    if (line[first] == '#') {
      inside = line.substr(first) == "# " + section;
      continue;
    }
    if (!inside) continue;
    if (line[first] == ')') break;
    std::istringstream words(line.substr(0, line.find('#')));
    std::string w;
    while (words >> w) pkgs.insert(w);
  }
  return pkgs;
}

std::string join(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += x + " ";
  return out;
}

TEST(Dockerfile, RuntimePackagesAreTheBinarysLibraries) {
  if (!have_command("dpkg") || !have_command("ldd")) GTEST_SKIP() << "needs dpkg and ldd (Debian)";
  const std::string dockerfile = read_file(kSource + "/Dockerfile");
  auto runtime = dockerfile_packages(dockerfile, "FROM debian:12-slim");
  ASSERT_FALSE(runtime.empty()) << "no apt-get install in the debian:12-slim stage";
  // The health check's tools, not libraries.
  EXPECT_EQ(runtime.erase("curl"), 1u);
  EXPECT_EQ(runtime.erase("ca-certificates"), 1u);

  // The packages of the libraries sluiced links directly (NEEDED), as dpkg knows them.
  std::string out;
  ASSERT_EQ(sh("objdump -p '" + test::sluiced_path() + "' | awk '/NEEDED/ {print $2}'", out), 0) << out;
  std::istringstream needed(out);
  std::string lib;
  std::string ldd;
  ASSERT_EQ(sh("ldd '" + test::sluiced_path() + "'", ldd), 0) << ldd;
  std::set<std::string> linked;
  while (needed >> lib) {
    const std::regex re(std::regex_replace(lib, std::regex(R"([.+])"), R"(\$&)") + R"( => (\S+))");
    std::smatch m;
    ASSERT_TRUE(std::regex_search(ldd, m, re)) << lib << " not resolved by ldd:\n" << ldd;
    std::string owner;
    std::string path = m[1].str();
    if (sh("dpkg -S '" + path + "'", owner) != 0) {
      // usrmerge: dpkg may know the library under /lib rather than /usr/lib, or the reverse.
      path = path.rfind("/usr/", 0) == 0 ? path.substr(4) : "/usr" + path;
      ASSERT_EQ(sh("dpkg -S '" + path + "'", owner), 0) << lib << ": " << owner;
    }
    linked.insert(owner.substr(0, owner.find_first_of(":")));
  }
  // Part of every Debian image (Priority: required).
  for (const char* base : {"libc6", "libstdc++6", "libgcc-s1"}) linked.erase(base);
  EXPECT_EQ(join(runtime), join(linked)) << "Dockerfile runtime packages vs the binary's NEEDED libraries";
}

TEST(Dockerfile, BuildStageInstallsTheLibrariesOfInstallDeps) {
  const std::string dockerfile = read_file(kSource + "/Dockerfile");
  const std::string script = read_file(kSource + "/scripts/install-deps");
  const auto build = dockerfile_packages(dockerfile, "FROM debian:12 AS build");
  ASSERT_FALSE(build.empty());
  const auto libraries = install_deps_section(script, "libraries");
  const auto toolchain = install_deps_section(script, "toolchain");
  ASSERT_FALSE(libraries.empty());
  std::set<std::string> build_libs;
  std::set<std::string> build_tools;
  for (const auto& p : build) (toolchain.count(p) ? build_tools : build_libs).insert(p);
  EXPECT_EQ(join(build_libs), join(libraries)) << "Dockerfile build stage vs scripts/install-deps \"# libraries\"";
  EXPECT_EQ(join(build_tools), "build-essential cmake ninja-build pkg-config ");
}

TEST(DockerCompose, DescribesTheStack) {
  const std::string compose = read_file(kSource + "/docker-compose.yml");
  ASSERT_FALSE(compose.empty());
  for (const char* s : {"timescale/timescaledb:latest-pg15", "migrate", "healthcheck", "service_completed_successfully",
                        "service_healthy", "SLUICE_DATABASE_URL"}) {
    EXPECT_NE(compose.find(s), std::string::npos) << s;
  }
  std::string out;
  if (have_command("docker") && sh("docker compose version", out) == 0) {
    EXPECT_EQ(sh("docker compose -f '" + kSource + "/docker-compose.yml' config -q", out), 0) << out;
  }
}

}  // namespace
}  // namespace sluice
