// End-to-end tests of the InfluxDB line protocol endpoints of the sluiced binary against a real
// PostgreSQL 15: POST /write (1.x) and /api/v2/write (2.x) with every precision, escapes, mixed
// good and bad lines (400, the good ones stored), gzip bodies, /ping and /health, UDP "line"
// listeners, and the official InfluxDB JavaScript client (@influxdata/influxdb-client, from
// tests/fixtures/influx-client) writing unmodified. The client test skips only when node is absent.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <memory>
#include <stdexcept>
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

using test::HttpClient;

std::string gzip(const std::string& in) {
  z_stream zs{};
  if (deflateInit2(&zs, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
    throw std::runtime_error("deflateInit2 failed");
  }
  std::string out(deflateBound(&zs, in.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  const int rc = deflate(&zs, Z_FINISH);
  deflateEnd(&zs);
  if (rc != Z_STREAM_END) throw std::runtime_error("deflate did not finish");
  out.resize(zs.total_out);
  return out;
}

// Runs a shell command; returns its exit code and output (stdout + stderr).
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

class Influx : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    url_ = test::shared_pg_server().create_database("influx_test");
    {
      pg::Connection conn(url_, "influx_test");
      pg::migrate(conn, std::string(SLUICE_SOURCE_DIR) + "/sql");
      conn.exec("INSERT INTO sensors (sensor_id, type) VALUES ('pump-1', 'vibration'), ('pump-2', 'temperature'), "
                "('gz-1', 'temperature'), ('udp-1', 'temperature'), ('node-1', 'temperature')");
    }
    http_port_ = test::free_tcp_port();
    admin_port_ = test::free_tcp_port();
    udp_port_ = test::free_tcp_port();
    const std::string config = R"({
  "database": { "url": "ignored", "connections": 2 },
  "pipeline": { "io_threads": 2 },
  "batch": { "max_age_ms": 10 },
  "http": { "listen": "127.0.0.1:)" + std::to_string(http_port_) + R"(" },
  "udp": [ { "listen": "127.0.0.1:)" + std::to_string(udp_port_) + R"(", "format": "line", "precision": "s" } ],
  "admin": { "listen": "127.0.0.1:)" + std::to_string(admin_port_) + R"(" },
  "log": { "level": "warn" },
  "tables": [ { "name": "sensor_readings" }, { "name": "datapoint" } ],
  "measurements": [
    { "measurement": "sensor", "table": "sensor_readings",
      "tags": { "id": "sensor_id" }, "fields": { "v": "value" },
      "extra_json_column": "sensor_metadata" },
    { "measurement": "dp", "table": "datapoint", "tags": { "src": "source" }, "unmapped": "ignore" }
  ]
})";
    daemon_ = new test::DaemonProcess();
    daemon_->start(config, url_, admin_port_);
  }

  static void TearDownTestSuite() {
    if (daemon_) EXPECT_EQ(daemon_->stop(), 0) << daemon_->log();
    delete daemon_;
    daemon_ = nullptr;
  }

  // The first cell of a query ("" for NULL).
  static std::string q(const std::string& sql) {
    pg::Connection conn(url_, "influx_test check");
    auto r = conn.query(sql);
    return PQntuples(r.get()) > 0 ? PQgetvalue(r.get(), 0, 0) : std::string("<no rows>");
  }

  // Rows of one sensor as "epoch_us|value|unit|quality|metadata;..." in time order.
  static std::string sensor_rows(const std::string& sensor) {
    return q("SELECT string_agg(format('%s|%s|%s|%s|%s', (extract(epoch FROM \"timestamp\") * 1000000)::bigint, value, "
             "coalesce(unit, '-'), coalesce(quality::text, '-'), coalesce(sensor_metadata::text, '-')), ';' "
             "ORDER BY \"timestamp\") FROM sensor_readings WHERE sensor_id = '" + sensor + "'");
  }

  static inline std::string url_;
  static inline int http_port_ = 0, admin_port_ = 0, udp_port_ = 0;
  static inline test::DaemonProcess* daemon_ = nullptr;
};

TEST_F(Influx, V1AndV2PrecisionsLandAtTheSameInstants) {
  HttpClient c("127.0.0.1", http_port_);
  struct Case {
    std::string target;
    std::string ts;
  } cases[] = {
      {"/write?db=telemetry&precision=s", "1700000000"},
      {"/write?db=telemetry&rp=autogen&precision=ms", "1700000001000"},
      {"/write?db=telemetry&precision=u", "1700000002000000"},
      {"/write?db=telemetry&precision=n", "1700000003000000000"},
      {"/write?db=telemetry", "1700000004000000000"},
      {"/api/v2/write?org=o&bucket=b&precision=s", "1700000005"},
      {"/api/v2/write?org=o&bucket=b&precision=ms", "1700000006000"},
      {"/api/v2/write?org=o&bucket=b&precision=us", "1700000007000000"},
      {"/api/v2/write?org=o&bucket=b&precision=ns", "1700000008000000000"},
      {"/api/v2/write?org=o&bucket=b", "1700000009000000000"},
  };
  int i = 0;
  for (const auto& k : cases) {
    auto r = c.post(k.target, "sensor,id=pump-1 v=" + std::to_string(i++) + ".5 " + k.ts, "text/plain; charset=utf-8",
                    {{"Authorization", "Token whatever"}});
    EXPECT_EQ(r.status, 204) << k.target << " " << r.body;
    EXPECT_EQ(r.body, "");
    EXPECT_EQ(r.headers.count("content-length"), 0u) << k.target;
  }
  std::string want;
  for (int s = 0; s < 10; ++s) {
    if (s) want += ';';
    want += std::to_string((1700000000LL + s) * 1000000) + "|" + std::to_string(s) + ".5|-|-|-";
  }
  EXPECT_EQ(sensor_rows("pump-1"), want);

  auto m = c.post("/write?db=x&precision=m", "sensor,id=pump-1 v=1 1", "text/plain");
  EXPECT_EQ(m.status, 400);
  EXPECT_NE(m.body.find("precision \\\"m\\\" (minutes/hours) is not supported"), std::string::npos) << m.body;
  auto v2n = c.post("/api/v2/write?org=o&bucket=b&precision=n", "sensor,id=pump-1 v=1 1", "text/plain");
  EXPECT_EQ(v2n.status, 400) << v2n.body;
  EXPECT_EQ(c.request("GET", "/write?db=x").status, 405);
}

TEST_F(Influx, EscapesTypesAndMixedLinesStoreTheGoodOnesAndAnswer400) {
  HttpClient c("127.0.0.1", http_port_);
  const std::string body =
      "sensor,id=pump-2,unit=deg\\ C\\,raw v=2.5,quality=0.5 1700000100000000000\n"
      "sensor,id=pump-2 v=\"bad\" 1700000101000000000\n"
      "# a comment, then a blank line\n"
      "\n"
      "sensor,id=pump-2,site=lab\\=1 v=3i,note=\"say \\\"hi\\\"\",ok=t 1700000102000000000\r\n"
      "dp,src=a\\=b\\ c value=7,dropped=1i 1700000103000000000\n"
      "this line has no fields\n";
  auto r = c.post("/api/v2/write?org=o&bucket=b&precision=ns", body, "text/plain");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(r.body.rfind(R"({"code":"invalid","message":"partial write: 3 lines written, 2 lines rejected; first: line 2: )", 0), 0u) << r.body;
  EXPECT_NE(r.body.find(R"("line":2,"errors":[{"line":2,"message":"line 2: )"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find(R"({"line":7,"message":"line 7: )"), std::string::npos) << r.body;
  EXPECT_EQ(sensor_rows("pump-2"),
            "1700000100000000|2.5|deg C,raw|0.5|-;"
            "1700000102000000|3|-|-|{\"ok\": true, \"note\": \"say \\\"hi\\\"\", \"site\": \"lab=1\"}");
  EXPECT_EQ(q("SELECT format('%s|%s|%s|%s', (extract(epoch FROM \"timestamp\") * 1000000)::bigint, source, value, "
              "coalesce(metadata::text, '-')) FROM datapoint"),
            "1700000103000000|a=b c|7|-");
}

TEST_F(Influx, GzipBodies) {
  HttpClient c("127.0.0.1", http_port_);
  std::string body;
  for (int i = 0; i < 200; ++i) {
    body += "sensor,id=gz-1 v=" + std::to_string(i) + " " + std::to_string(1700001000 + i) + "\n";
  }
  auto r = c.post("/write?db=x&precision=s", gzip(body), "text/plain", {{"Content-Encoding", "gzip"}});
  EXPECT_EQ(r.status, 204) << r.body;
  EXPECT_EQ(q("SELECT format('%s|%s|%s', count(*), sum(value), min(\"timestamp\") = to_timestamp(1700001000)) "
              "FROM sensor_readings WHERE sensor_id = 'gz-1'"),
            "200|19900|t");
  auto bad = c.post("/write?db=x", "not gzip", "text/plain", {{"Content-Encoding", "gzip"}});
  EXPECT_EQ(bad.status, 400) << bad.body;
}

TEST_F(Influx, PingAndHealthAnswerAsInfluxDB) {
  auto ping = test::http_get(http_port_, "/ping");
  EXPECT_EQ(ping.status, 204);
  EXPECT_EQ(ping.body, "");
  ASSERT_EQ(ping.headers.count("x-influxdb-version"), 1u);
  EXPECT_FALSE(ping.headers["x-influxdb-version"].empty());
  EXPECT_EQ(ping.headers["x-influxdb-build"], "OSS");
  HttpClient c("127.0.0.1", http_port_);
  auto head = c.request("HEAD", "/ping");
  EXPECT_EQ(head.status, 204);
  auto health = test::http_get(http_port_, "/health");
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(health.body, "{\"name\":\"sluice\",\"message\":\"ready for queries and writes\",\"status\":\"pass\","
                         "\"checks\":[],\"version\":\"" + ping.headers["x-influxdb-version"] + "\"}");
  EXPECT_EQ(test::http_get(http_port_, "/v1/health").status, 200);  // the sluice one is still there
}

TEST_F(Influx, UdpLineDatagrams) {
  const int s = socket(AF_INET, SOCK_DGRAM, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(udp_port_));
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  const std::string d1 = "sensor,id=udp-1 v=1.25 1700002000\nsensor,id=udp-1 v=oops 1700002001\n"
                         "sensor,id=udp-1,unit=C v=2.5 1700002002\n";
  const std::string d2 = "sensor,id=udp-1 v=-3e2 1700002003";
  sendto(s, d1.data(), d1.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  sendto(s, d2.data(), d2.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
  close(s);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (q("SELECT count(*) FROM sensor_readings WHERE sensor_id = 'udp-1'") != "3" &&
         std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(sensor_rows("udp-1"),
            "1700002000000000|1.25|-|-|-;1700002002000000|2.5|C|-|-;1700002003000000|-300|-|-|-");
}

TEST_F(Influx, OfficialJavaScriptClientWritesUnmodified) {
  std::string out;
  if (run("command -v node", out) != 0) {
    GTEST_SKIP() << "node is not installed: the official InfluxDB client (tests/fixtures/influx-client) cannot run; "
                    "install nodejs and npm, then run tests/fixtures/influx-client/install";
  }
  const std::string dir = std::string(SLUICE_SOURCE_DIR) + "/tests/fixtures/influx-client";
  ASSERT_EQ(access((dir + "/node_modules/@influxdata/influxdb-client/package.json").c_str(), R_OK), 0)
      << "the client is not installed: run tests/fixtures/influx-client/install";
  const int code = run("cd '" + dir + "' && node write.mjs http://127.0.0.1:" + std::to_string(http_port_), out);
  ASSERT_EQ(code, 0) << out;
  EXPECT_NE(out.find("written"), std::string::npos) << out;
  // The client adds the default tag site=lab (no column: it lands in sensor_metadata).
  EXPECT_EQ(sensor_rows("node-1"),
            "1700000000000000|20.5|C|0|{\"site\": \"lab\"};"
            "1700000001000000|21.5|F|0.25|{\"site\": \"lab\"};"
            "1700000002000000|22.5|C|0.5|{\"site\": \"lab\"};"
            "1700000003000000|23.5|F|0.75|{\"site\": \"lab\"};"
            "1700000004000000|24.5|C|1|{\"site\": \"lab\"};"
            "1700000005000000|-0.0015|deg C, raw|-|{\"site\": \"lab\"}")
      << out;
}

}  // namespace
}  // namespace sluice
