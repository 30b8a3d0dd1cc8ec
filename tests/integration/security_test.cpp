// End-to-end security tests of the sluiced binary against a real PostgreSQL 15 (README "Security"):
// bearer tokens on the JSON and InfluxDB endpoints (none, wrong, right, out of scope; v1 u/p, Basic,
// v2 Token), the limits under abuse (413, rows per request, 429 with Retry-After, slow senders, total
// and per-client connection caps), UDP source allow lists, the metrics counting all of it, and TLS
// with a generated certificate (openssl CLI), with optional and with required client certificates
// (curl as the client).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "pg/connection.h"
#include "pg/migrate.h"
#include "support/daemon_process.h"
#include "support/http_client.h"
#include "support/pg_server.h"

namespace sluice {
namespace {

using namespace std::chrono_literals;
using test::HttpClient;

int run(const std::string& command, std::string& output) {
  output.clear();
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) return -1;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) output.append(buf, n);
  const int status = pclose(p);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string sha256_of(const std::string& token) {
  std::string out;
  EXPECT_EQ(run("printf '%s\\n' '" + token + "' | " + test::sluiced_path() + " hash-token", out), 0) << out;
  while (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

// A TCP connection from a chosen loopback source address (127.0.0.0/8 are all local on Linux).
int connect_from(const std::string& source, int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, source.c_str(), &src.sin_addr);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
    ::close(fd);
    return -1;
  }
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(port));
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Reads what the server sends until it closes or `wait` passes; `closed` tells which.
std::string read_until_close(int fd, std::chrono::milliseconds wait, bool& closed) {
  std::string out;
  closed = false;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          deadline - std::chrono::steady_clock::now()).count());
    if (::poll(&p, 1, std::max(left, 1)) <= 0) continue;
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) {
      closed = true;
      break;
    }
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

void send_all(int fd, const std::string& s) { ASSERT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size())); }

// The value of one sample line of a /metrics scrape ("name{labels}"), -1 when absent.
double metric(int admin_port, const std::string& sample) {
  const auto r = test::http_get(admin_port, "/metrics");
  const auto at = r.body.find("\n" + sample + " ");
  if (at == std::string::npos) return -1;
  return std::stod(r.body.substr(at + sample.size() + 2));
}

// The sum of the samples of `name` whose labels contain `label` (e.g. reason="forbidden"); label
// order in the exposition does not matter.
double metric_sum(int admin_port, const std::string& name, const std::string& label) {
  const auto r = test::http_get(admin_port, "/metrics");
  double sum = 0;
  size_t pos = 0;
  while ((pos = r.body.find("\n" + name + "{", pos)) != std::string::npos) {
    const size_t end = r.body.find('\n', pos + 1);
    const std::string line = r.body.substr(pos + 1, end - pos - 1);
    if (line.find(label) != std::string::npos) sum += std::stod(line.substr(line.rfind(' ') + 1));
    pos = end;
  }
  return sum;
}

class Security : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    url_ = test::shared_pg_server().create_database("security_test");
    {
      pg::Connection conn(url_, "security_test");
      pg::migrate(conn, std::string(SLUICE_SOURCE_DIR) + "/sql");
      conn.exec("INSERT INTO sensors (sensor_id, type) VALUES ('sec-1', 'vibration'), ('udp-ok', 't'), ('udp-no', 't'), ('node-1', 't')");
    }
    http_port_ = test::free_tcp_port();
    admin_port_ = test::free_tcp_port();
    udp_port_ = test::free_tcp_port();
    const std::string config = R"({
  "database": { "url": "ignored", "connections": 1 },
  "pipeline": { "io_threads": 2 },
  "batch": { "max_age_ms": 10 },
  "http": { "listen": "127.0.0.1:)" + std::to_string(http_port_) + R"(", "max_body_bytes": 2048,
            "header_timeout_ms": 300, "body_timeout_ms": 500, "max_rows_per_request": 5,
            "max_connections": 4, "max_connections_per_client": 2 },
  "auth": { "tokens": [
    { "name": "sensors", "sha256": ")" + sha256_of("sensor-token") + R"(", "tables": ["sensor_readings"] },
    { "name": "all", "sha256": ")" + sha256_of("all-token") + R"(", "tables": ["*"] },
    { "name": "limited", "sha256": ")" + sha256_of("limited-token") + R"(", "tables": ["*"],
      "max_requests_per_second": 0.2, "burst": 2 } ] },
  "udp": [ { "listen": "127.0.0.1:)" + std::to_string(udp_port_) + R"(", "format": "line", "precision": "s",
             "allow": ["127.0.0.1/32"] } ],
  "admin": { "listen": "127.0.0.1:)" + std::to_string(admin_port_) + R"(" },
  "log": { "level": "warn" },
  "tables": [ { "name": "sensor_readings" }, { "name": "datapoint" } ],
  "measurements": [
    { "measurement": "sensor", "table": "sensor_readings", "tags": { "id": "sensor_id" }, "fields": { "v": "value" },
      "unmapped": "ignore" },
    { "measurement": "dp", "table": "datapoint", "tags": { "src": "source" }, "unmapped": "ignore" }
  ]
})";
    daemon_ = new test::DaemonProcess();
    daemon_->start(config, url_, admin_port_);
  }

  static void TearDownTestSuite() {
    if (daemon_) {
      const std::string log = daemon_->log();
      for (const char* secret : {"sensor-token", "all-token", "limited-token"}) {
        EXPECT_EQ(log.find(secret), std::string::npos) << "a token reached the log";
      }
      EXPECT_EQ(daemon_->stop(), 0) << daemon_->log();
    }
    delete daemon_;
    daemon_ = nullptr;
  }

  static std::string q(const std::string& sql) {
    pg::Connection conn(url_, "security_test check");
    auto r = conn.query(sql);
    return PQntuples(r.get()) > 0 ? PQgetvalue(r.get(), 0, 0) : std::string("<no rows>");
  }
  static bool eventually(const std::function<bool()>& f, std::chrono::milliseconds wait = 5000ms) {
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (std::chrono::steady_clock::now() < deadline) {
      if (f()) return true;
      std::this_thread::sleep_for(20ms);
    }
    return f();
  }
  static std::string row(int ts) {
    return "[{\"timestamp\":" + std::to_string(ts) + ",\"sensor_id\":\"sec-1\",\"value\":1.5}]";
  }
  static std::map<std::string, std::string> bearer(const std::string& token) {
    return {{"Authorization", "Bearer " + token}};
  }

  static inline std::string url_;
  static inline int http_port_ = 0, admin_port_ = 0, udp_port_ = 0;
  static inline test::DaemonProcess* daemon_ = nullptr;
};

TEST_F(Security, JsonWritesNeedATokenWithTheTableInScope) {
  HttpClient c("127.0.0.1", http_port_);
  auto none = c.post("/v1/write/sensor_readings", row(1000));
  EXPECT_EQ(none.status, 401) << none.body;
  EXPECT_EQ(none.headers["www-authenticate"], "Bearer realm=\"sluice\"");
  auto wrong = c.post("/v1/write/sensor_readings", row(1001), "application/json", bearer("not-a-token"));
  EXPECT_EQ(wrong.status, 401) << wrong.body;
  EXPECT_EQ(wrong.body, R"({"error":"invalid token"})");
  auto scope = c.post("/v1/write/datapoint", R"([{"time":1,"value":1}])", "application/json", bearer("sensor-token"));
  EXPECT_EQ(scope.status, 403) << scope.body;
  EXPECT_EQ(scope.body, R"({"error":"this token may not write table \"datapoint\""})");
  auto right = c.post("/v1/write/sensor_readings", row(1002), "application/json", bearer("sensor-token"));
  EXPECT_EQ(right.status, 200) << right.body;
  EXPECT_EQ(q("SELECT string_agg(extract(epoch FROM \"timestamp\")::bigint::text, ',') FROM sensor_readings "
              "WHERE sensor_id = 'sec-1' AND \"timestamp\" < to_timestamp(2000)"),
            "1002") << "only the authorized write is stored";
  // Health stays open.
  EXPECT_EQ(c.get("/v1/health").status, 200);
  EXPECT_EQ(c.get("/ping").status, 204);

  EXPECT_GE(metric(admin_port_, "sluice_http_auth_failures_total{reason=\"missing\"}"), 1);
  EXPECT_GE(metric(admin_port_, "sluice_http_auth_failures_total{reason=\"invalid\"}"), 1);
  EXPECT_GE(metric(admin_port_, "sluice_http_auth_failures_total{reason=\"forbidden\"}"), 1);
}

TEST_F(Security, InfluxClientsSendTheTokenTheirWays) {
  HttpClient c("127.0.0.1", http_port_);
  // v1: ?u=&p= and HTTP Basic (the password is the token); v2: Authorization: Token.
  auto v1 = c.post("/write?db=x&u=anyone&p=sensor-token&precision=s", "sensor,id=sec-1 v=1 2001", "text/plain");
  EXPECT_EQ(v1.status, 204) << v1.body;
  auto basic = c.post("/write?db=x&precision=s", "sensor,id=sec-1 v=2 2002", "text/plain",
                      {{"Authorization", "Basic dXNlcjpzZW5zb3ItdG9rZW4="}});  // user:sensor-token
  EXPECT_EQ(basic.status, 204) << basic.body;
  auto v2 = c.post("/api/v2/write?org=o&bucket=b&precision=s", "sensor,id=sec-1 v=3 2003", "text/plain",
                   {{"Authorization", "Token sensor-token"}});
  EXPECT_EQ(v2.status, 204) << v2.body;
  auto v1_wrong = c.post("/write?db=x&u=anyone&p=nope&precision=s", "sensor,id=sec-1 v=9 2009", "text/plain");
  EXPECT_EQ(v1_wrong.status, 401);
  EXPECT_EQ(v1_wrong.body, R"({"code":"unauthorized","message":"invalid token"})");
  auto v2_none = c.post("/api/v2/write?org=o&bucket=b&precision=s", "sensor,id=sec-1 v=9 2010", "text/plain");
  EXPECT_EQ(v2_none.status, 401);

  // Every line for a table outside the scope: 403. Mixed: the in-scope lines are stored, the others
  // are reported per line (400 partial write).
  auto forbidden = c.post("/api/v2/write?org=o&bucket=b&precision=s", "dp,src=a value=1 2004", "text/plain",
                          {{"Authorization", "Token sensor-token"}});
  EXPECT_EQ(forbidden.status, 403) << forbidden.body;
  EXPECT_NE(forbidden.body.find("this token may not write table \\\"datapoint\\\""), std::string::npos) << forbidden.body;
  auto mixed = c.post("/api/v2/write?org=o&bucket=b&precision=s",
                      "sensor,id=sec-1 v=5 2005\ndp,src=a value=1 2006\n", "text/plain",
                      {{"Authorization", "Token sensor-token"}});
  EXPECT_EQ(mixed.status, 400) << mixed.body;
  EXPECT_NE(mixed.body.find("\"line\":2"), std::string::npos) << mixed.body;
  EXPECT_TRUE(eventually([] {
    return q("SELECT string_agg(value::text, ',' ORDER BY \"timestamp\") FROM sensor_readings WHERE sensor_id = 'sec-1' "
             "AND \"timestamp\" BETWEEN to_timestamp(2000) AND to_timestamp(2999)") == "1,2,3,5";
  }));
  EXPECT_EQ(q("SELECT count(*) FROM datapoint"), "0");
  // The all-tables token writes datapoint.
  auto all = c.post("/api/v2/write?org=o&bucket=b&precision=s", "dp,src=a value=1 2007", "text/plain",
                    {{"Authorization", "Token all-token"}});
  EXPECT_EQ(all.status, 204) << all.body;
  EXPECT_EQ(q("SELECT count(*) FROM datapoint"), "1");
  EXPECT_EQ(metric_sum(admin_port_, "sluice_rows_rejected_total", "reason=\"forbidden\""), 2);
}

// The official InfluxDB 2.x JavaScript client (tests/fixtures/influx-client) with its token setting.
TEST_F(Security, OfficialInfluxClientAuthenticatesWithItsTokenSetting) {
  std::string out;
  if (run("command -v node", out) != 0) GTEST_SKIP() << "node is not installed (tests/fixtures/influx-client)";
  const std::string dir = std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/influx-client";
  ASSERT_EQ(access((dir + "/node_modules/@influxdata/influxdb-client/package.json").c_str(), R_OK), 0)
      << "the client is not installed: run tests/fixtures/influx-client/install";
  const std::string base = "cd '" + dir + "' && node write.mjs http://127.0.0.1:" + std::to_string(http_port_);
  EXPECT_EQ(run(base + " wrong-token", out), 1) << out;
  EXPECT_NE(out.find("401"), std::string::npos) << out;
  EXPECT_EQ(q("SELECT count(*) FROM sensor_readings WHERE sensor_id = 'node-1'"), "0");
  ASSERT_EQ(run(base + " sensor-token", out), 0) << out;
  EXPECT_EQ(q("SELECT count(*) FROM sensor_readings WHERE sensor_id = 'node-1'"), "6");
}

TEST_F(Security, BodyAndRowLimits) {
  HttpClient c("127.0.0.1", http_port_);
  auto big = c.post("/v1/write/sensor_readings", std::string(3000, ' ') + row(3000), "application/json",
                    bearer("all-token"));
  EXPECT_EQ(big.status, 413) << big.body;
  HttpClient d("127.0.0.1", http_port_);
  std::string rows = "[";
  for (int i = 0; i < 6; ++i) {
    if (i) rows += ',';
    rows += "{\"timestamp\":" + std::to_string(3100 + i) + ",\"sensor_id\":\"sec-1\",\"value\":1}";
  }
  rows += "]";
  auto many = d.post("/v1/write/sensor_readings", rows, "application/json", bearer("all-token"));
  EXPECT_EQ(many.status, 400) << many.body;
  EXPECT_NE(many.body.find("too many rows"), std::string::npos) << many.body;
}

TEST_F(Security, RateLimitPerTokenAnswers429WithRetryAfter) {
  HttpClient c("127.0.0.1", http_port_);
  EXPECT_EQ(c.post("/v1/write/sensor_readings", row(4000), "application/json", bearer("limited-token")).status, 200);
  EXPECT_EQ(c.post("/v1/write/sensor_readings", row(4001), "application/json", bearer("limited-token")).status, 200);
  auto limited = c.post("/v1/write/sensor_readings", row(4002), "application/json", bearer("limited-token"));
  EXPECT_EQ(limited.status, 429) << limited.body;
  const int retry = std::atoi(limited.headers["retry-after"].c_str());
  EXPECT_GE(retry, 1);
  EXPECT_LE(retry, 5);
  // Other tokens are not affected.
  EXPECT_EQ(c.post("/v1/write/sensor_readings", row(4003), "application/json", bearer("all-token")).status, 200);
  EXPECT_GE(metric(admin_port_, "sluice_http_rate_limited_total"), 1);
  EXPECT_EQ(q("SELECT count(*) FROM sensor_readings WHERE \"timestamp\" = to_timestamp(4002)"), "0");
}

TEST_F(Security, SlowSendersAreCutOff) {
  const double before = metric(admin_port_, "sluice_http_timeouts_total");
  // Half a header, then silence: closed after header_timeout (300 ms).
  int fd = connect_from("127.0.0.1", http_port_);
  ASSERT_GE(fd, 0);
  send_all(fd, "POST /v1/write/sensor_readings HTTP/1.1\r\nHost: x\r\n");
  const auto t0 = std::chrono::steady_clock::now();
  bool closed = false;
  read_until_close(fd, 3000ms, closed);
  EXPECT_TRUE(closed);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 2000ms);
  ::close(fd);
  // A body that stalls: closed after body_timeout (500 ms).
  fd = connect_from("127.0.0.1", http_port_);
  ASSERT_GE(fd, 0);
  send_all(fd, "POST /v1/write/sensor_readings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer all-token\r\n"
               "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n[{\"times");
  read_until_close(fd, 3000ms, closed);
  EXPECT_TRUE(closed);
  ::close(fd);
  EXPECT_TRUE(eventually([&] { return metric(admin_port_, "sluice_http_timeouts_total") >= before + 2; }));
}

TEST_F(Security, ConnectionCapsInTotalAndPerClient) {
  // Wait for the connections of earlier tests to be gone.
  ASSERT_TRUE(eventually([] { return metric(admin_port_, "sluice_http_connections") == 0; }));
  const double refused_before = metric(admin_port_, "sluice_http_connections_refused_total");
  const double per_client_before = metric(admin_port_, "sluice_http_client_connections_refused_total");
  const std::string ping = "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<int> open;
  for (const char* src : {"127.0.0.1", "127.0.0.1"}) {
    int fd = connect_from(src, http_port_);
    ASSERT_GE(fd, 0);
    send_all(fd, ping);
    bool closed = false;
    EXPECT_NE(read_until_close(fd, 300ms, closed).find("204"), std::string::npos);
    open.push_back(fd);
  }
  // A third from the same address: 503, per client.
  int fd = connect_from("127.0.0.1", http_port_);
  ASSERT_GE(fd, 0);
  bool closed = false;
  auto answer = read_until_close(fd, 2000ms, closed);
  EXPECT_NE(answer.find("503"), std::string::npos) << answer;
  EXPECT_NE(answer.find("too many connections from this client"), std::string::npos) << answer;
  ::close(fd);
  // Two more from another address fill the total cap of 4; a fifth (third address) is refused.
  for (int i = 0; i < 2; ++i) {
    int other = connect_from("127.0.0.2", http_port_);
    ASSERT_GE(other, 0);
    send_all(other, ping);
    EXPECT_NE(read_until_close(other, 300ms, closed).find("204"), std::string::npos);
    open.push_back(other);
  }
  fd = connect_from("127.0.0.3", http_port_);
  ASSERT_GE(fd, 0);
  answer = read_until_close(fd, 2000ms, closed);
  EXPECT_NE(answer.find("503"), std::string::npos) << answer;
  EXPECT_NE(answer.find("{\"error\":\"too many connections\"}"), std::string::npos) << answer;
  ::close(fd);
  EXPECT_EQ(metric(admin_port_, "sluice_http_client_connections_refused_total"), per_client_before + 1);
  EXPECT_EQ(metric(admin_port_, "sluice_http_connections_refused_total"), refused_before + 1);
  for (int f : open) ::close(f);
  EXPECT_TRUE(eventually([] { return metric(admin_port_, "sluice_http_connections") == 0; }));
}

TEST_F(Security, UdpFromOutsideTheAllowedNetworksIsDroppedAndCounted) {
  auto send_from = [](const std::string& source, const std::string& payload) {
    int s = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    inet_pton(AF_INET, source.c_str(), &src.sin_addr);
    ASSERT_EQ(::bind(s, reinterpret_cast<sockaddr*>(&src), sizeof src), 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(static_cast<uint16_t>(udp_port_));
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    ASSERT_EQ(::sendto(s, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to),
              static_cast<ssize_t>(payload.size()));
    ::close(s);
  };
  const std::string label = "cause=\"not_allowed\"";
  send_from("127.0.0.2", "sensor,id=udp-no v=1 5000");
  send_from("127.0.0.1", "sensor,id=udp-ok v=2 5001");
  EXPECT_TRUE(eventually([] { return q("SELECT count(*) FROM sensor_readings WHERE sensor_id = 'udp-ok'") == "1"; }));
  EXPECT_TRUE(eventually([&] { return metric_sum(admin_port_, "sluice_udp_datagrams_dropped_total", label) == 1; }))
      << test::http_get(admin_port_, "/metrics").body;
  EXPECT_EQ(q("SELECT count(*) FROM sensor_readings WHERE sensor_id = 'udp-no'"), "0");
}

// ---------------------------------------------------------------------------------------------
// TLS

class Tls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = std::filesystem::temp_directory_path() / ("sluice-tls-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    const std::string d = dir_.string();
    std::string out;
    // A CA, a server certificate for 127.0.0.1 and a client certificate, both signed by the CA;
    // and a client certificate from a CA the server does not trust.
    const std::string script =
        "set -e; cd " + d + "; "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=sluice-test-ca; "
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=127.0.0.1; "
        "printf 'subjectAltName=IP:127.0.0.1\\n' > san.ext; "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext; "
        "openssl req -newkey rsa:2048 -nodes -keyout client.key -out client.csr -subj /CN=meter-7; "
        "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2; "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout rogue.key -out rogue.pem -days 2 -subj /CN=rogue";
    ASSERT_EQ(run("bash -c \"" + script + "\"", out), 0) << out;
    url_ = test::shared_pg_server().create_database("security_tls_test");
    pg::Connection conn(url_, "security_tls_test");
    pg::migrate(conn, std::string(SLUICE_SOURCE_DIR) + "/sql");
    conn.exec("INSERT INTO sensors (sensor_id, type) VALUES ('tls-1', 't')");
  }
  static void TearDownTestSuite() { std::filesystem::remove_all(dir_); }

  void start(bool require_client_cert) {
    http_port_ = test::free_tcp_port();
    admin_port_ = test::free_tcp_port();
    const std::string d = dir_.string();
    const std::string config = R"({
  "database": { "url": "ignored", "connections": 1 },
  "pipeline": { "io_threads": 1 },
  "batch": { "max_age_ms": 10 },
  "http": { "listen": "127.0.0.1:)" + std::to_string(http_port_) + R"(", "header_timeout_ms": 1000,
            "tls": { "cert_file": ")" + d + R"(/server.pem", "key_file": ")" + d + R"(/server.key",
                     "client_ca_file": ")" + d + R"(/ca.pem", "require_client_cert": )" +
                               (require_client_cert ? "true" : "false") + R"( } },
  "admin": { "listen": "127.0.0.1:)" + std::to_string(admin_port_) + R"(" },
  "log": { "level": "warn" },
  "tables": [ { "name": "sensor_readings" } ]
})";
    daemon_.start(config, url_, admin_port_);
  }
  void TearDown() override {
    if (daemon_.running()) EXPECT_EQ(daemon_.stop(), 0) << daemon_.log();
  }

  // POSTs one row with curl; returns the HTTP status, or -curl_exit_code when the request failed.
  int curl_post(int ts, const std::string& client_cert = "", const std::string& scheme = "https") {
    const std::string d = dir_.string();
    std::string cmd = "curl -sS -o /dev/null -w '%{http_code}' --max-time 5 --cacert " + d + "/ca.pem";
    if (!client_cert.empty()) cmd += " --cert " + d + "/" + client_cert + ".pem --key " + d + "/" + client_cert + ".key";
    cmd += " -H 'Content-Type: application/json' --data '[{\"timestamp\":" + std::to_string(ts) +
           ",\"sensor_id\":\"tls-1\",\"value\":1}]' " + scheme + "://127.0.0.1:" + std::to_string(http_port_) +
           "/v1/write/sensor_readings";
    std::string out;
    const int rc = run(cmd, out);
    last_output_ = out;
    if (rc != 0) return -rc;
    return std::atoi(out.c_str());
  }
  static std::string q(const std::string& sql) {
    pg::Connection conn(url_, "security_tls_test check");
    auto r = conn.query(sql);
    return PQntuples(r.get()) > 0 ? PQgetvalue(r.get(), 0, 0) : std::string("<no rows>");
  }

  static inline std::filesystem::path dir_;
  static inline std::string url_;
  int http_port_ = 0, admin_port_ = 0;
  test::DaemonProcess daemon_;
  std::string last_output_;
};

TEST_F(Tls, OptionalClientCertificate) {
  start(false);
  EXPECT_EQ(curl_post(100), 200) << last_output_;
  EXPECT_EQ(curl_post(101, "client"), 200) << last_output_;
  EXPECT_LT(curl_post(102, "rogue"), 0) << "a presented certificate must verify: " << last_output_;
  EXPECT_LT(curl_post(103, "", "http"), 0) << "plain HTTP on the TLS port gets no answer: " << last_output_;
  EXPECT_EQ(q("SELECT string_agg(extract(epoch FROM \"timestamp\")::bigint::text, ',' ORDER BY 1) FROM sensor_readings "
              "WHERE \"timestamp\" < to_timestamp(200)"),
            "100,101");
  const auto r = test::http_get(admin_port_, "/metrics");
  EXPECT_NE(r.body.find("sluice_http_tls_handshake_failures_total 2"), std::string::npos) << r.body;
}

TEST_F(Tls, RequiredClientCertificate) {
  start(true);
  EXPECT_LT(curl_post(200), 0) << "no client certificate: the handshake fails: " << last_output_;
  EXPECT_LT(curl_post(201, "rogue"), 0) << last_output_;
  EXPECT_EQ(curl_post(202, "client"), 200) << last_output_;
  EXPECT_EQ(q("SELECT string_agg(extract(epoch FROM \"timestamp\")::bigint::text, ',') FROM sensor_readings "
              "WHERE \"timestamp\" BETWEEN to_timestamp(200) AND to_timestamp(299)"),
            "202");
}

}  // namespace
}  // namespace sluice
