// SIGHUP config reload of the sluiced binary under sustained HTTP load (daemon/reloader.h):
//   1. a valid, changed config: the live settings are in force at once — http.max_rows_per_request
//      (rows past it rejected), batch.max_rows (flushes with trigger="rows"), http.max_body_bytes
//      (413), log.level (info lines stop) — and a restart-only change (pipeline.io_threads) is named
//      in the log and not applied;
//   2. an invalid config (range errors), then one the catalog refuses (a line protocol mapping to a
//      missing column): every problem logged, the previous config still in force;
//   3. no row lost: every row acknowledged with 200 is in the table, and nothing else is.
// systemd sees RELOADING=1 and then READY=1 for each reload (a NOTIFY_SOCKET bound by the test).
// Also: the database URL from a systemd credential ($CREDENTIALS_DIRECTORY/database-url).
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "pg/connection.h"
#include "pg/migrate.h"
#include "support/daemon_process.h"
#include "support/http_client.h"
#include "support/pg_server.h"

namespace sluice {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

const std::string kSource = SLUICE_SOURCE_DIR;
constexpr int kLoadThreads = 2;
constexpr int kRowsPerRequest = 4;

struct Settings {
  std::string level = "info";
  size_t batch_max_rows = 1000000;
  size_t max_rows_per_request = 1000;
  size_t max_body_bytes = 1 << 20;
  int io_threads = 2;
  std::string extra;  // more top-level keys, with a leading comma
  std::string tables = R"([{"name": "sensor_readings"}])";
};

std::string config_json(int http, int admin, const Settings& s) {
  return R"({
    "database": {"url": "ignored: SLUICE_DATABASE_URL wins", "connections": 2},
    "pipeline": {"io_threads": )" + std::to_string(s.io_threads) + R"(, "ring_capacity": 256},
    "batch": {"max_rows": )" + std::to_string(s.batch_max_rows) + R"(, "max_age_ms": 20},
    "http": {"listen": "127.0.0.1:)" + std::to_string(http) + R"(", "max_rows_per_request": )" +
         std::to_string(s.max_rows_per_request) + R"(, "max_body_bytes": )" + std::to_string(s.max_body_bytes) + R"(},
    "admin": {"listen": "127.0.0.1:)" + std::to_string(admin) + R"("},
    "log": {"level": ")" + s.level + R"("},
    "tables": )" + s.tables + s.extra + "}";
}

long long query_count(const std::string& url, const std::string& sql) {
  pg::Connection conn(url);
  auto r = conn.query(sql);
  return std::atoll(PQgetvalue(r.get(), 0, 0));
}

// `n` rows of sensor `sensor`, timestamps first, first+1, … (unique per sensor: the primary key).
std::string rows_json(const std::string& sensor, long long first, int n) {
  std::string body = "[";
  for (int i = 0; i < n; ++i) {
    if (i) body += ',';
    body += R"({"timestamp":)" + std::to_string(first + i) + R"(,"sensor_id":")" + sensor + R"(","value":)" +
            std::to_string(i) + "}";
  }
  return body + "]";
}

// A unix datagram socket standing in for systemd's NOTIFY_SOCKET.
class NotifySocket {
 public:
  NotifySocket() {
    char tmpl[] = "/tmp/sluice-reload-XXXXXX";
    if (!::mkdtemp(tmpl)) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    path_ = dir_ + "/notify";
    fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path_.c_str());
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) throw std::runtime_error("bind");
  }
  ~NotifySocket() {
    ::close(fd_);
    std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  const std::string& path() const { return path_; }
  // Every message received so far, each as one string ("A=1\nB=2").
  const std::vector<std::string>& drain() {
    pollfd pfd{fd_, POLLIN, 0};
    while (::poll(&pfd, 1, 0) > 0) {
      char buf[4096];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      messages_.emplace_back(buf, static_cast<size_t>(n));
    }
    return messages_;
  }

 private:
  std::string dir_, path_;
  int fd_ = -1;
  std::vector<std::string> messages_;
};

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The value of one sample line ("name{labels} value") in a scrape; -1 when absent.
double sample(const std::string& metrics, const std::string& name_and_labels) {
  const auto at = metrics.find("\n" + name_and_labels + " ");
  if (at == std::string::npos) return -1;
  return std::atof(metrics.c_str() + at + name_and_labels.size() + 2);
}

class Load {
 public:
  explicit Load(int port) {
    for (int t = 0; t < kLoadThreads; ++t) {
      threads_.emplace_back([this, port, t] {
        test::HttpClient c("127.0.0.1", port);
        long long ts = 1735689600;
        while (!stop_.load()) {
          const std::string body = rows_json("sensor-" + std::to_string(t), ts, kRowsPerRequest);
          const auto r = c.post("/v1/write/sensor_readings", body);
          if (r.status == 200) {
            acked_rows_ += kRowsPerRequest;
            ++requests_;
            ts += kRowsPerRequest;
          } else if (r.status == 429) {
            std::this_thread::sleep_for(5ms);  // ring full: the same rows again
          } else {
            ++unexpected_;
            last_unexpected_ = std::to_string(r.status) + " " + r.body;
            std::this_thread::sleep_for(50ms);
            ts += kRowsPerRequest;  // whatever happened to them, not sent again
          }
        }
      });
    }
  }
  ~Load() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  // Waits until `n` more requests were acknowledged.
  bool progress(long long n, std::chrono::seconds timeout = 20s) {
    const long long target = requests_.load() + n;
    const auto deadline = Clock::now() + timeout;
    while (requests_.load() < target && Clock::now() < deadline) std::this_thread::sleep_for(5ms);
    return requests_.load() >= target;
  }
  long long acked_rows() const { return acked_rows_.load(); }
  long long unexpected() const { return unexpected_.load(); }
  std::string last_unexpected() const { return last_unexpected_; }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<long long> acked_rows_{0}, requests_{0}, unexpected_{0};
  std::string last_unexpected_;
  std::vector<std::thread> threads_;
};

bool wait_for_log(const test::DaemonProcess& d, const std::string& what, size_t count, std::chrono::seconds timeout = 10s) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (count_of(d.log(), what) >= count) return true;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

TEST(Reload, LiveSettingsApplyInvalidConfigsAreRefusedAndNoRowIsLost) {
  auto& server = test::shared_pg_server();
  const std::string url = server.create_database("reload");
  {
    pg::Connection conn(url);
    pg::migrate(conn, kSource + "/sql");
    conn.exec("INSERT INTO sensors (sensor_id) SELECT 'sensor-' || g FROM generate_series(0, 9) g");
  }
  const int http = test::free_tcp_port(), admin = test::free_tcp_port();
  NotifySocket ns;
  test::DaemonProcess d;
  Settings a;
  d.start(config_json(http, admin, a), url, admin, 30, true, {{"NOTIFY_SOCKET", ns.path()}});

  Load load(http);
  ASSERT_TRUE(load.progress(30)) << d.log();
  // Before: flushes by age only (max_rows is far away); 10 rows in one request are fine.
  std::string m = test::http_get(admin, "/metrics").body;
  EXPECT_EQ(sample(m, "sluice_batches_flushed_total{trigger=\"rows\"}"), 0) << m;
  EXPECT_EQ(sample(m, "sluice_config_reloads_total{result=\"applied\"}"), 0) << m;
  const double loaded_at = sample(m, "sluice_config_last_reload_success_timestamp_seconds");
  EXPECT_GT(loaded_at, 1.7e9) << "start-up counts as a successful load";
  test::HttpClient probe("127.0.0.1", http);
  long long probe_rows = 0;
  auto r = probe.post("/v1/write/sensor_readings", rows_json("sensor-9", 1735689600, 10));
  ASSERT_EQ(r.status, 200) << r.body;
  probe_rows += 10;

  // 1. A valid config with live changes and one restart-only change.
  Settings b;
  b.level = "warn";
  b.batch_max_rows = kRowsPerRequest;  // every request's block now reaches max_rows alone
  b.max_rows_per_request = 8;
  b.max_body_bytes = 2048;
  b.io_threads = 3;
  std::ofstream(d.config_path()) << config_json(http, admin, b);
  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_for_log(d, "event=config_reload result=applied", 1)) << d.log();
  ASSERT_TRUE(load.progress(30)) << d.log();

  const std::string log1 = d.log();
  for (const char* line : {"event=config_changed change=\"batch.max_rows: 1000000 -> 4\"",
                           "event=config_changed change=\"http.max_rows_per_request: 1000 -> 8\"",
                           "event=config_changed change=\"http.max_body_bytes: 1048576 -> 2048\"",
                           "event=config_changed change=\"log.level: 'info' -> 'warn'\"",
                           "event=config_reload_needs_restart setting=pipeline.io_threads",
                           "event=config_reload result=applied changed=4 needs_restart=1"}) {
    EXPECT_NE(log1.find(line), std::string::npos) << line << "\n" << log1;
  }
  // max_rows_per_request 8: rows 9 and 10 are refused, the first 8 stored.
  r = probe.post("/v1/write/sensor_readings", rows_json("sensor-9", 1735689700, 10));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("\"accepted\":8,\"rejected\":2"), std::string::npos) << r.body;
  probe_rows += 8;
  // max_body_bytes 2048: a larger body is 413.
  r = probe.post("/v1/write/sensor_readings", rows_json("sensor-9", 1735689800, 60));
  EXPECT_EQ(r.status, 413) << r.body;
  // batch.max_rows 4: the load's blocks are flushed by rows now.
  m = test::http_get(admin, "/metrics").body;
  EXPECT_GE(sample(m, "sluice_batches_flushed_total{trigger=\"rows\"}"), 20) << m;
  EXPECT_EQ(sample(m, "sluice_config_reloads_total{result=\"applied\"}"), 1) << m;
  EXPECT_GE(sample(m, "sluice_config_last_reload_success_timestamp_seconds"), loaded_at) << m;
  // io_threads needs a restart: still 2 rings.
  EXPECT_EQ(sample(m, "sluice_ring_capacity_blocks{thread=\"2\"}"), -1) << m;
  EXPECT_EQ(sample(m, "sluice_ring_capacity_blocks{thread=\"1\"}"), 256) << m;

  // 2a. Invalid values: both problems logged, nothing changes.
  Settings c = b;
  c.batch_max_rows = 0;
  c.max_rows_per_request = 0;
  std::ofstream(d.config_path()) << config_json(http, admin, c);
  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_for_log(d, "event=config_reload result=invalid", 1)) << d.log();
  // 2b. Valid JSON, but a mapping the catalog refuses (no such column).
  Settings e = b;
  e.extra = R"(, "measurements": [{"measurement": "cpu", "table": "sensor_readings", "fields": {"v": "no_such_column"}}])";
  std::ofstream(d.config_path()) << config_json(http, admin, e);
  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_for_log(d, "event=config_reload result=invalid", 2)) << d.log();
  ASSERT_TRUE(load.progress(30)) << d.log();

  const std::string log2 = d.log();
  EXPECT_NE(log2.find("problem=\"batch.max_rows: 0 is out of range"), std::string::npos) << log2;
  EXPECT_NE(log2.find("problem=\"http.max_rows_per_request: 0 is out of range"), std::string::npos) << log2;
  EXPECT_NE(log2.find("problem=\"measurements: "), std::string::npos) << log2;
  EXPECT_NE(log2.find("no_such_column"), std::string::npos) << log2;
  // log.level is still warn: the info line of each reload request is not written after the first.
  EXPECT_EQ(count_of(log2, "event=reload_requested"), 1u) << log2;
  // The B settings are still in force.
  r = probe.post("/v1/write/sensor_readings", rows_json("sensor-9", 1735689900, 10));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(r.body.find("\"accepted\":8,\"rejected\":2"), std::string::npos) << r.body;
  probe_rows += 8;
  m = test::http_get(admin, "/metrics").body;
  EXPECT_EQ(sample(m, "sluice_config_reloads_total{result=\"applied\"}"), 1) << m;
  EXPECT_EQ(sample(m, "sluice_config_reloads_total{result=\"invalid\"}"), 2) << m;
  // The admin listener shows the level in force, and sets it until the next reload.
  EXPECT_EQ(test::http_get(admin, "/loglevel").body, "warning\n");
  {
    test::HttpClient admin_client("127.0.0.1", admin);
    auto put = admin_client.request("PUT", "/loglevel", "info");
    EXPECT_EQ(put.status, 200) << put.body;
    EXPECT_EQ(put.body, "info\n");
    put = admin_client.request("PUT", "/loglevel", "chatty");
    EXPECT_EQ(put.status, 400) << put.body;
  }
  EXPECT_EQ(test::http_get(admin, "/loglevel").body, "info\n");
  EXPECT_TRUE(wait_for_log(d, "event=log_level_changed source=admin level=info", 1)) << d.log();

  // 3. Nothing lost.
  load.stop();
  EXPECT_EQ(load.unexpected(), 0) << load.last_unexpected();
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  EXPECT_EQ(query_count(url, "SELECT count(*) FROM sensor_readings"), load.acked_rows() + probe_rows) << d.log();

  // systemd: RELOADING=1 then READY=1, three times, after the first READY=1.
  int reloading = 0, ready_after = 0;
  bool in_reload = false;
  for (const auto& msg : ns.drain()) {
    if (msg.find("RELOADING=1") != std::string::npos) {
      EXPECT_FALSE(in_reload);
      EXPECT_NE(msg.find("MONOTONIC_USEC="), std::string::npos) << msg;
      in_reload = true;
      ++reloading;
    } else if (in_reload && msg.find("READY=1") != std::string::npos) {
      in_reload = false;
      ++ready_after;
    }
  }
  EXPECT_EQ(reloading, 3);
  EXPECT_EQ(ready_after, 3);
}

// Tokens are replaced live: a token added by a reload is accepted at once (also on a keep-alive
// connection opened before), a removed one is refused, and a scope change applies to the next request.
TEST(Reload, TokensAndScopesAreReplacedLive) {
  auto& server = test::shared_pg_server();
  const std::string url = server.create_database("reload_tokens");
  {
    pg::Connection conn(url);
    pg::migrate(conn, kSource + "/sql");
    conn.exec("INSERT INTO sensors (sensor_id) VALUES ('sensor-t')");
  }
  // sha256("alpha-token") and sha256("beta-token") (`printf %s alpha-token | sha256sum`).
  const std::string alpha = "a336d9b1d8b8647875238537ca5087b0ea335afd2032936aecdffc3e4b13f720";
  const std::string beta = "863d63c0bd3a94bfca84ed2063a7355a226faff82ca50b90158bf183aa1a9e61";
  auto with_tokens = [&](const std::string& tokens) {
    Settings s;
    s.extra = R"(, "auth": {"tokens": [)" + tokens + "]}";
    s.tables = R"([{"name": "sensor_readings"}, {"name": "sensors"}])";  // scopes must name listed tables
    return s;
  };
  const int http = test::free_tcp_port(), admin = test::free_tcp_port();
  test::DaemonProcess d;
  d.start(config_json(http, admin, with_tokens(R"({"name": "a", "sha256": ")" + alpha +
                                               R"(", "tables": ["sensor_readings"]})")),
          url, admin, 30, true);
  test::HttpClient c("127.0.0.1", http);
  const std::map<std::string, std::string> as_alpha{{"Authorization", "Bearer alpha-token"}};
  const std::map<std::string, std::string> as_beta{{"Authorization", "Bearer beta-token"}};
  auto post = [&](const std::map<std::string, std::string>& who, long long ts) {
    return c.post("/v1/write/sensor_readings", rows_json("sensor-t", ts, 1), "application/json", who).status;
  };
  EXPECT_EQ(post(as_alpha, 1735689600), 200);
  EXPECT_EQ(post(as_beta, 1735689601), 401);

  // alpha removed, beta added with a scope that does not include sensor_readings.
  std::ofstream(d.config_path()) << config_json(
      http, admin, with_tokens(R"({"name": "b", "sha256": ")" + beta + R"(", "tables": ["sensors"]})"));
  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_for_log(d, "event=config_reload result=applied", 1)) << d.log();
  EXPECT_EQ(d.log().find("needs_restart setting=auth"), std::string::npos) << d.log();
  EXPECT_EQ(post(as_alpha, 1735689602), 401);
  EXPECT_EQ(post(as_beta, 1735689603), 403);

  // beta's scope widened.
  std::ofstream(d.config_path()) << config_json(
      http, admin, with_tokens(R"({"name": "b", "sha256": ")" + beta + R"(", "tables": ["*"]})"));
  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_for_log(d, "event=config_reload result=applied", 2)) << d.log();
  EXPECT_EQ(post(as_beta, 1735689604), 200);

  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  EXPECT_EQ(query_count(url, "SELECT count(*) FROM sensor_readings"), 2);
  EXPECT_EQ(d.log().find("alpha-token"), std::string::npos) << d.log();
  EXPECT_EQ(d.log().find(alpha), std::string::npos) << "a token hash in the log:\n" << d.log();
}

// A SIGHUP naming a file that has become unreadable keeps the running config; a URL changed in
// the credential file needs a restart and is never written to the log.
TEST(Reload, UnreadableFileAndChangedDatabaseUrl) {
  auto& server = test::shared_pg_server();
  const std::string url = server.create_database("reload_url");
  {
    pg::Connection conn(url);
    pg::migrate(conn, kSource + "/sql");
  }
  char tmpl[] = "/tmp/sluice-reload-url-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string url_file = std::string(tmpl) + "/database-url";
  std::ofstream(url_file) << url << "\n";
  const int http = test::free_tcp_port(), admin = test::free_tcp_port();
  test::DaemonProcess d;
  // SLUICE_DATABASE_URL="" leaves the choice to SLUICE_DATABASE_URL_FILE.
  d.start(config_json(http, admin, Settings{}), "", admin, 30, true, {{"SLUICE_DATABASE_URL_FILE", url_file}});
  EXPECT_NE(d.log().find("database_url_source=\"file " + url_file + "\""), std::string::npos) << d.log();

  std::ofstream(url_file) << "postgresql://postgres:s3cr3t-pw@127.0.0.1:1/elsewhere\n";
  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_for_log(d, "event=config_reload result=applied", 1)) << d.log();
  EXPECT_NE(d.log().find("event=config_reload_needs_restart setting=database.url"), std::string::npos) << d.log();

  const std::string config = d.config_path();
  ASSERT_EQ(::rename(config.c_str(), (config + ".moved").c_str()), 0);
  ASSERT_EQ(::kill(d.pid(), SIGHUP), 0);
  ASSERT_TRUE(wait_for_log(d, "event=config_reload result=invalid", 1)) << d.log();
  EXPECT_NE(d.log().find("problem=\"file not found or not readable\""), std::string::npos) << d.log();

  // Still writing to the original database.
  test::HttpClient c("127.0.0.1", http);
  EXPECT_EQ(c.post("/v1/write/sensors", "[]").status, 404);
  EXPECT_EQ(test::http_get(admin, "/readyz").status, 200);
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  EXPECT_EQ(d.log().find("s3cr3t-pw"), std::string::npos) << "a password in the log:\n" << d.log();
  std::system(("rm -rf '" + std::string(tmpl) + "'").c_str());
}

// systemd LoadCredential=: the URL from $CREDENTIALS_DIRECTORY/database-url, logged without its
// password; a JOURNAL_STREAM that is not our stderr keeps the log on stderr.
TEST(Credentials, SystemdCredentialDirectory) {
  auto& server = test::shared_pg_server();
  const std::string url = server.create_database("reload_cred");
  {
    pg::Connection conn(url);
    pg::migrate(conn, kSource + "/sql");
    conn.exec("ALTER ROLE postgres PASSWORD 'cred-pw-123'");  // trust auth: accepted, not needed
  }
  char tmpl[] = "/tmp/sluice-cred-XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl;
  const std::string with_password = "postgresql://postgres:cred-pw-123@" + url.substr(url.find('@') + 1);
  std::ofstream(dir + "/database-url") << with_password << "\n";
  const int http = test::free_tcp_port(), admin = test::free_tcp_port();
  test::DaemonProcess d;
  d.start(config_json(http, admin, Settings{}), "", admin, 30, true,
          {{"CREDENTIALS_DIRECTORY", dir}, {"JOURNAL_STREAM", "1:2"}});
  test::HttpClient c("127.0.0.1", http);
  const auto r = c.post("/v1/write/sensor_readings", "[]");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
  const std::string log = d.log();
  EXPECT_NE(log.find("database_url_source=\"credential database-url\""), std::string::npos) << log;
  EXPECT_NE(log.find("database=\"postgresql://postgres:***@"), std::string::npos) << log;
  EXPECT_NE(log.find("log_sink=stderr"), std::string::npos) << log;
  EXPECT_EQ(log.find("cred-pw-123"), std::string::npos) << log;
  std::system(("rm -rf '" + dir + "'").c_str());
}

}  // namespace
}  // namespace sluice
