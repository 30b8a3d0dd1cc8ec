// End-to-end tests of the sluiced binary against a real PostgreSQL 15: the command line, UDP
// ingestion, metrics after a known workload, and SIGTERM under load losing nothing accepted.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "catalog/catalog.h"
#include "catalog/resolver.h"
#include "config/config.h"
#include "pg/connection.h"
#include "pg/migrate.h"
#include "support/daemon_process.h"
#include "support/http_client.h"
#include "support/pg_server.h"

namespace sluice {
namespace {

using test::DaemonProcess;
using test::HttpClient;

struct Ports {
  int http = test::free_tcp_port();
  int admin = test::free_tcp_port();
  int udp = test::free_tcp_port();
};

std::string config_json(const Ports& p, const std::string& extra_batch = "") {
  return R"({
    "database": {"url": "ignored: SLUICE_DATABASE_URL wins", "connections": 2},
    "pipeline": {"io_threads": 2, "ring_capacity": 64},
    "batch": {"max_rows": 5000, "max_age_ms": 20)" + extra_batch + R"(},
    "http": {"listen": "127.0.0.1:)" + std::to_string(p.http) + R"("},
    "udp": [{"listen": "127.0.0.1:)" + std::to_string(p.udp) + R"(", "table": "sensor_readings"}],
    "admin": {"listen": "127.0.0.1:)" + std::to_string(p.admin) + R"("},
    "log": {"level": "warn"},
    "tables": [{"name": "sensor_readings"}, {"name": "datapoint"}]
  })";
}

// A fresh database with the migrations and `sensors` registered for ids sensor-0..n-1.
std::string fresh_database(const std::string& name, int sensors) {
  auto& server = test::shared_pg_server();
  const std::string url = server.create_database(name);
  pg::Connection conn(url);
  pg::migrate(conn, std::string(SLUICE_SOURCE_DIR) + "/sql");
  conn.exec("INSERT INTO sensors (sensor_id, type, location, status) SELECT 'sensor-' || g, 'temperature', 'lab', "
            "'active' FROM generate_series(0, " + std::to_string(sensors - 1) + ") g");
  return url;
}

long long count_rows(const std::string& url, const std::string& where = "true") {
  pg::Connection conn(url);
  auto r = conn.query("SELECT count(*) FROM sensor_readings WHERE " + where);
  return std::atoll(PQgetvalue(r.get(), 0, 0));
}

// Rows for one sender: sensor_id fixed, one reading per second from 2025-01-01 + first.
std::string rows_json(int sensor, long long first, int n) {
  std::string body = "[";
  for (int i = 0; i < n; ++i) {
    if (i) body += ',';
    body += R"({"timestamp":)" + std::to_string(1735689600LL + first + i) + R"(,"sensor_id":"sensor-)" +
            std::to_string(sensor) + R"(","value":)" + std::to_string(first + i) + ".25}";
  }
  return body + "]";
}

TEST(DaemonCli, CheckConfigListsEveryProblemAndExits2) {
  char path[] = "/tmp/sluice-badcfg-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  const std::string bad = R"({
    // comments are fine
    "database": {"url": "postgresql://x@127.0.0.1/db", "connections": 0},
    "http": {"listen": "nonsense", "default_precision": "minutes"},
    "batch": {"max_rowz": 10},
    "tables": []
  })";
  ASSERT_EQ(write(fd, bad.data(), bad.size()), static_cast<ssize_t>(bad.size()));
  close(fd);
  std::string out;
  const int code = test::run_sluiced(std::string("check-config --config ") + path, out);
  unlink(path);
  EXPECT_EQ(code, 2) << out;
  EXPECT_NE(out.find("5 problems"), std::string::npos) << out;
  EXPECT_NE(out.find("database.connections: 0 is out of range"), std::string::npos) << out;
  EXPECT_NE(out.find("http.listen: \"nonsense\" is not host:port"), std::string::npos) << out;
  EXPECT_NE(out.find("http.default_precision"), std::string::npos) << out;
  EXPECT_NE(out.find("batch.max_rowz: unknown setting"), std::string::npos) << out;
  EXPECT_NE(out.find("tables: required"), std::string::npos) << out;
}

TEST(DaemonCli, HelpVersionAndBadArguments) {
  std::string out;
  EXPECT_EQ(test::run_sluiced("--help", out), 0);
  EXPECT_NE(out.find("check-config"), std::string::npos);
  EXPECT_EQ(test::run_sluiced("--version", out), 0);
  EXPECT_EQ(out.rfind("sluiced ", 0), 0u) << out;
  EXPECT_EQ(test::run_sluiced("--bogus", out), 2);
  EXPECT_EQ(test::run_sluiced("run", out), 2);  // no --config
}

TEST(DaemonCli, UnknownTableAndUnsupportedColumnTypeFailAtStartup) {
  const std::string url = fresh_database("daemon_badtable", 1);
  test::shared_pg_server().psql("daemon_badtable", "CREATE TABLE odd (t timestamptz NOT NULL, tags text[])");
  Ports p;
  std::string cfg = config_json(p);
  cfg.replace(cfg.find(R"({"name": "datapoint"})"), 21, R"({"name": "odd"}, {"name": "nope"})");
  char path[] = "/tmp/sluice-cfg-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_EQ(write(fd, cfg.data(), cfg.size()), static_cast<ssize_t>(cfg.size()));
  close(fd);
  std::string out;
  const int code = test::run_sluiced(std::string("--config ") + path, out, url);
  unlink(path);
  EXPECT_EQ(code, 1) << out;
  EXPECT_NE(out.find("column \"tags\""), std::string::npos) << out;
  EXPECT_NE(out.find("text[]"), std::string::npos) << out;
  EXPECT_NE(out.find("nope"), std::string::npos) << out;
}

// Every table of the shipped configs exists in the migrated schema and has only supported types.
TEST(DaemonCli, ShippedConfigsMatchTheMigratedSchema) {
  const std::string url = fresh_database("daemon_shipped", 1);
  pg::Connection conn(url);
  for (const char* file : {"config/local.json", "config/example.json"}) {
    const Config c = load_config(std::string(SLUICE_SOURCE_DIR) + "/" + file);
    std::vector<TableSpec> specs;
    for (const auto& t : c.tables) specs.push_back({t.name, t.time_column});
    Catalog catalog;
    ASSERT_NO_THROW(catalog = load_catalog(conn.get(), specs)) << file;
    EXPECT_EQ(catalog.tables.size(), c.tables.size()) << file;
    std::vector<ResolverConfig> resolvers;  // their tables and columns exist too
    for (const auto& t : c.tables) resolvers.insert(resolvers.end(), t.resolvers.begin(), t.resolvers.end());
    EXPECT_NO_THROW(ResolverSet(catalog, resolvers)) << file;
  }
}

TEST(Daemon, UdpDatagramsArriveAndMalformedOnesAreCounted) {
  const std::string url = fresh_database("daemon_udp", 4);
  Ports p;
  DaemonProcess d;
  d.start(config_json(p), url, p.admin);

  const int s = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(p.udp));
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  // 3 datagrams of 10 NDJSON rows each, plus a malformed one and one with a bad row.
  for (int dgram = 0; dgram < 3; ++dgram) {
    std::string payload;
    for (int i = 0; i < 10; ++i) {
      payload += R"({"timestamp":"2025-02-01T00:00:)" + std::string(i < 10 ? "0" : "") + std::to_string(i) +
                 R"(Z","sensor_id":"sensor-)" + std::to_string(dgram) + R"(","value":)" + std::to_string(i) + "}\n";
    }
    sendto(s, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  }
  const std::string malformed = R"({"timestamp": "2025-02-01T00:00:00Z", "sensor_id": )";
  sendto(s, malformed.data(), malformed.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  const std::string one_bad = "{\"timestamp\":\"2025-02-01T00:01:00Z\",\"sensor_id\":\"sensor-3\",\"value\":1}\n"
                              "{\"timestamp\":\"2025-02-01T00:01:01Z\",\"sensor_id\":\"sensor-3\",\"value\":\"x\"}\n";
  sendto(s, one_bad.data(), one_bad.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  close(s);

  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (count_rows(url) < 31 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(count_rows(url), 31);
  EXPECT_EQ(count_rows(url, "sensor_id = 'sensor-1' AND value = 9 AND timestamp = '2025-02-01T00:00:09Z'"), 1);

  const std::string metrics = test::http_get(p.admin, "/metrics").body;
  EXPECT_NE(metrics.find("sluice_udp_datagrams_dropped_total{cause=\"malformed\",listener=\"127.0.0.1:" +
                         std::to_string(p.udp) + "\"} 1"),
            std::string::npos) << metrics;
  EXPECT_NE(metrics.find("sluice_rows_rejected_total{reason=\"invalid_value\",table=\"sensor_readings\"} 1"),
            std::string::npos) << metrics;
  EXPECT_EQ(d.stop(SIGTERM), 0);
}

// Started while its database is down, sluiced is alive but not ready, and becomes ready by itself
// once the database is up.
TEST(Daemon, NotReadyUntilTheDatabaseIsReachable) {
  test::PgServer server;
  server.start();
  const std::string url = server.create_database("late");
  {
    pg::Connection conn(url);
    pg::migrate(conn, std::string(SLUICE_SOURCE_DIR) + "/sql");
  }
  server.stop_keep_data();
  Ports p;
  DaemonProcess d;
  d.start(config_json(p), url, p.admin, 30, /*wait_for_ready=*/false);
  EXPECT_EQ(test::http_get(p.admin, "/healthz").status, 200);
  EXPECT_EQ(test::http_get(p.admin, "/readyz").status, 503);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_EQ(test::http_get(p.admin, "/readyz").status, 503);
  server.start_again();
  int status = 0;
  for (int i = 0; i < 200 && status != 200; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    status = test::http_get(p.admin, "/readyz").status;
  }
  EXPECT_EQ(status, 200) << d.log();
  EXPECT_EQ(d.stop(SIGTERM), 0) << d.log();
}

TEST(Daemon, MetricsAfterAKnownWorkload) {
  const std::string url = fresh_database("daemon_metrics", 2);
  Ports p;
  DaemonProcess d;
  d.start(config_json(p), url, p.admin);
  HttpClient c("127.0.0.1", p.http);
  for (int r = 0; r < 5; ++r) {
    auto resp = c.post("/v1/write/sensor_readings", rows_json(0, r * 100, 100));
    ASSERT_EQ(resp.status, 200) << resp.body;
  }
  auto bad = c.post("/v1/write/sensor_readings", R"([{"timestamp":1,"sensor_id":"sensor-1","value":1},{"sensor_id":"sensor-1","value":2}])");
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(c.post("/v1/write/no_such_table", "[]").status, 404);

  const std::string m = test::http_get(p.admin, "/metrics").body;
  EXPECT_NE(m.find("sluice_rows_received_total{table=\"sensor_readings\"} 502"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_rows_accepted_total{table=\"sensor_readings\"} 501"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_rows_committed_total{table=\"sensor_readings\"} 501"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_rows_rejected_total{reason=\"missing_column\",table=\"sensor_readings\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_http_requests_refused_total{reason=\"unknown_table\"} 1"), std::string::npos) << m;
  EXPECT_NE(m.find("sluice_copy_duration_seconds_count"), std::string::npos) << m;
  EXPECT_EQ(test::http_get(p.admin, "/readyz").status, 200);
  EXPECT_EQ(d.stop(SIGTERM), 0);
}

// A row the database refuses (foreign key) is isolated: the other rows of the request are stored,
// the refused one is in sluice_dead_letter with its SQLSTATE, and the answer says so.
TEST(Daemon, RowsTheDatabaseRefusesAreDeadLetteredAndTheOthersStored) {
  const std::string url = fresh_database("daemon_dead_letter", 1);
  Ports p;
  DaemonProcess d;
  d.start(config_json(p), url, p.admin);
  HttpClient c("127.0.0.1", p.http);
  const auto r = c.post("/v1/write/sensor_readings",
                        R"([{"timestamp":"2025-03-01T00:00:00Z","sensor_id":"sensor-0","value":1},
                            {"timestamp":"2025-03-01T00:00:01Z","sensor_id":"not-registered","value":2},
                            {"timestamp":"2025-03-01T00:00:02Z","sensor_id":"sensor-0","value":3}])");
  EXPECT_EQ(r.status, 400) << r.body;  // the sender's data: not a fault to retry
  EXPECT_NE(r.body.find("\"accepted\":2,\"rejected\":1"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("sluice_dead_letter"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("23503"), std::string::npos) << r.body;
  EXPECT_EQ(count_rows(url), 2);
  pg::Connection conn(url);
  auto dl = conn.query("SELECT table_name, sqlstate, row_data->>'sensor_id', row_data->>'value' FROM sluice_dead_letter");
  ASSERT_EQ(PQntuples(dl.get()), 1);
  EXPECT_STREQ(PQgetvalue(dl.get(), 0, 1), "23503");
  EXPECT_STREQ(PQgetvalue(dl.get(), 0, 2), "not-registered");
  EXPECT_STREQ(PQgetvalue(dl.get(), 0, 3), "2");
  const std::string m = test::http_get(p.admin, "/metrics").body;
  EXPECT_NE(m.find("sluice_dead_letter_rows_total{table=\"sensor_readings\"} 1"), std::string::npos) << m;
  EXPECT_EQ(d.stop(SIGTERM), 0);
}

// Senders post continuously; SIGTERM arrives mid-load. Every request answered 200 must be in the
// table after sluiced exits 0, and nothing must be stored twice.
void sigterm_under_load(const std::string& db_name, const std::string& ack_mode) {
  constexpr int kSenders = 4;
  constexpr int kRowsPerRequest = 200;
  const std::string url = fresh_database(db_name, kSenders);
  Ports p;
  DaemonProcess d;
  d.start(config_json(p), url, p.admin);

  std::atomic<bool> go{true};
  std::vector<long long> acked(kSenders, 0);
  std::vector<std::thread> senders;
  for (int s = 0; s < kSenders; ++s) {
    senders.emplace_back([&, s] {
      HttpClient c("127.0.0.1", p.http);
      for (long long first = 0; go.load(); first += kRowsPerRequest) {
        auto r = c.post("/v1/write/sensor_readings", rows_json(s, first, kRowsPerRequest), "application/json",
                        {{"X-Sluice-Ack", ack_mode}});
        if (r.status != 200) break;  // 503 while stopping, or the connection closed
        acked[s] += kRowsPerRequest;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  const int code = d.stop(SIGTERM);
  go = false;
  for (auto& t : senders) t.join();
  EXPECT_EQ(code, 0) << d.log();

  long long total_acked = 0;
  for (int s = 0; s < kSenders; ++s) {
    total_acked += acked[s];
    // A sender's acknowledged requests are a prefix of its sequence: all of them must be stored.
    const std::string sensor = "sensor_id = 'sensor-" + std::to_string(s) + "'";
    EXPECT_EQ(count_rows(url, sensor + " AND timestamp < to_timestamp(" + std::to_string(1735689600LL + acked[s]) + ")"),
              acked[s]) << "sender " << s;
    // At most the one request in flight at SIGTERM may be stored without its answer arriving.
    EXPECT_LE(count_rows(url, sensor), acked[s] + kRowsPerRequest) << "sender " << s;
  }
  EXPECT_GT(total_acked, 10 * kRowsPerRequest) << "the load did not run";
  // No duplicates: the primary key would have refused them, so check the writer saw no failure.
  const std::string log = d.log();
  EXPECT_EQ(log.find("error"), std::string::npos) << log;
}

TEST(Daemon, SigtermUnderLoadLosesNothingAcknowledgedAccepted) { sigterm_under_load("daemon_term_acc", "accepted"); }
TEST(Daemon, SigtermUnderLoadLosesNothingAcknowledgedCommitted) { sigterm_under_load("daemon_term_com", "committed"); }

}  // namespace
}  // namespace sluice
