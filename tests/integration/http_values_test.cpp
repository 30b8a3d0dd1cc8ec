// End-to-end value round trips through the real daemon: one throw-away PostgreSQL 15 database with
// the sql/ migrations applied, one built sluiced pointed at it, and for each reference table rows
// POSTed to /v1/write/{table} (default committed ack: the answer comes after COMMIT) and read back
// with psql, comparing the exact text of every column sent.
//
//   test ──HTTP POST──► sluiced (parse → encode → ring → batcher → binary COPY) ──► PostgreSQL
//     └──────────────────────────── psql SELECT ... (exact text) ◄────────────────────┘
//
// Covered: numeric scale/rounding/overflow, timestamps with offsets and fractions, epoch numbers in
// s/ms/us/ns, uuid, jsonb, real (all 27 meter columns), smallint, double precision, varchar limits,
// text, omitted defaulted columns, NDJSON and gzip bodies, mixed good/bad requests, 404, truncated body.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cctype>
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "pg/connection.h"
#include "pg/migrate.h"
#include "support/daemon_process.h"
#include "support/http_client.h"
#include "support/pg_server.h"

namespace sluice {
namespace {

using test::DaemonProcess;
using test::HttpClient;
using test::HttpResponse;
using test::shared_pg_server;

constexpr const char* kDb = "http_values";

// Reference rows the tables point at.
constexpr const char* kSeriesPjm = "5e1d2c3b-0000-4000-8000-000000000001";    // numeric scale
constexpr const char* kSeriesCaiso = "5e1d2c3b-0000-4000-8000-000000000002";  // overflow (stays empty)
constexpr const char* kSeriesMiso = "5e1d2c3b-0000-4000-8000-000000000003";   // timestamps
constexpr const char* kCity = "c17c17c1-0000-4000-8000-0000000000aa";
constexpr const char* kCityGzip = "c17c17c1-0000-4000-8000-0000000000bb";
constexpr const char* kMeter = "d0000000-0000-4000-8000-000000000001";
constexpr const char* kBess = "b0000000-0000-4000-8000-000000000001";

// What the daemon answers when every row was stored.
std::string all_ok(int rows) { return "{\"accepted\":" + std::to_string(rows) + ",\"rejected\":0,\"errors\":[]}"; }

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

class HttpValues : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto& server = shared_pg_server();
    url_ = server.create_database(kDb);
    {
      pg::Connection conn(url_, "http_values_test");
      pg::migrate(conn, std::string(SLUICE_SOURCE_DIR) + "/sql");
      conn.exec(std::string("INSERT INTO series (id, ba_id, type, units) SELECT '") + kSeriesPjm +
                "', id, 'demand', 'MW' FROM balancing_authorities WHERE code = 'PJM';"
                "INSERT INTO series (id, ba_id, type, units) SELECT '" +
                kSeriesCaiso + "', id, 'demand', 'MW' FROM balancing_authorities WHERE code = 'CAISO';" +
                "INSERT INTO series (id, ba_id, type, units) SELECT '" + kSeriesMiso +
                "', id, 'demand', 'MW' FROM balancing_authorities WHERE code = 'MISO';" +
                "INSERT INTO sensors (sensor_id, type) VALUES ('pump-1', 'vibration'), ('pump-2', 'temperature');" +
                "INSERT INTO cities (id, name, latitude, longitude, timezone) VALUES ('" + kCity +
                "', 'Lisbon', 38.722252, -9.139337, 'Europe/Lisbon'), ('" + kCityGzip +
                "', 'Porto', 41.157944, -8.629105, 'Europe/Lisbon');");
    }
    http_port_ = test::free_tcp_port();
    admin_port_ = test::free_tcp_port();
    const std::string config = R"({
  "database": { "url": ")" + url_ + R"(", "connections": 2 },
  "pipeline": { "io_threads": 2, "ring_capacity": 1024 },
  "batch": { "max_rows": 20000, "max_bytes": 8388608, "max_age_ms": 10 },
  "http": { "listen": "127.0.0.1:)" + std::to_string(http_port_) + R"(", "default_precision": "s" },
  "admin": { "listen": "127.0.0.1:)" + std::to_string(admin_port_) + R"(" },
  "log": { "level": "warn" },
  "tables": [
    { "name": "observations", "time_column": "ts" },
    { "name": "sensor_readings", "time_column": "timestamp" },
    { "name": "flux.mg_meter_readings", "time_column": "time" },
    { "name": "flux.mg_bess_readings", "time_column": "time" },
    { "name": "datapoint", "time_column": "timestamp" },
    { "name": "energy_consumption", "time_column": "timestamp" }
  ]
})";
    daemon_ = new DaemonProcess();
    daemon_->start(config, url_, admin_port_, 30);
    client_ = new HttpClient("127.0.0.1", http_port_);
  }

  static void TearDownTestSuite() {
    delete client_;
    client_ = nullptr;
    if (daemon_) {
      const int code = daemon_->stop(15, 30);
      EXPECT_EQ(code, 0) << daemon_->log();
      delete daemon_;
      daemon_ = nullptr;
    }
  }

  static HttpResponse post(const std::string& target, const std::string& body,
                           const std::string& content_type = "application/json",
                           const std::map<std::string, std::string>& headers = {}) {
    return client_->post(target, body, content_type, headers);
  }

  // psql -At output without its final newline: rows separated by '\n', columns by '|'.
  static std::string sql(const std::string& query) {
    std::string out = shared_pg_server().psql(kDb, query);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out;
  }

  static std::string log() { return daemon_ ? daemon_->log() : std::string(); }

  static inline std::string url_;
  static inline int http_port_ = 0;
  static inline int admin_port_ = 0;
  static inline DaemonProcess* daemon_ = nullptr;
  static inline HttpClient* client_ = nullptr;
};

// UTC wall time of a timestamptz column, with microseconds.
std::string utc(const std::string& column) {
  return "to_char(" + column + " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US')";
}

// ------------------------------------------------------------------------------------- observations

TEST_F(HttpValues, ObservationsNumericScaleIsExactAndRoundsHalfAwayFromZero) {
  const std::string s = kSeriesPjm;
  std::string body = "[";
  const std::vector<std::string> values = {"91234.5", "1.2344",        "1.2345",          "-2.0005",
                                           "999999999.999", "0",      "12",              "1.5e3",
                                           "-0.0004", "0.0005",       "123456789.0125", "-7.25E-1"};
  for (size_t i = 0; i < values.size(); ++i) {
    body += "{\"series_id\":\"" + s + "\",\"ts\":\"2024-03-01T00:00:" + (i < 10 ? "0" : "") + std::to_string(i) +
            "Z\",\"value\":" + values[i] + "},";
  }
  // Braced upper-case uuid, explicit quality flag.
  body += "{\"series_id\":\"{5E1D2C3B-0000-4000-8000-000000000001}\",\"ts\":\"2024-03-01T00:01:00Z\","
          "\"value\":42.4242,\"quality_flag\":\"estimated\"}]";

  const HttpResponse r = post("/v1/write/observations", body);
  ASSERT_EQ(r.status, 200) << r.body << log();
  EXPECT_EQ(r.body, all_ok(13));

  EXPECT_EQ(sql("SELECT series_id, " + utc("ts") + ", value, quality_flag, created_at IS NOT NULL "
                "FROM observations WHERE series_id = '" + s + "' ORDER BY ts"),
            s + "|2024-03-01T00:00:00.000000|91234.500|good|t\n" +
            s + "|2024-03-01T00:00:01.000000|1.234|good|t\n" +
            s + "|2024-03-01T00:00:02.000000|1.235|good|t\n" +
            s + "|2024-03-01T00:00:03.000000|-2.001|good|t\n" +
            s + "|2024-03-01T00:00:04.000000|999999999.999|good|t\n" +
            s + "|2024-03-01T00:00:05.000000|0.000|good|t\n" +
            s + "|2024-03-01T00:00:06.000000|12.000|good|t\n" +
            s + "|2024-03-01T00:00:07.000000|1500.000|good|t\n" +
            s + "|2024-03-01T00:00:08.000000|0.000|good|t\n" +
            s + "|2024-03-01T00:00:09.000000|0.001|good|t\n" +
            s + "|2024-03-01T00:00:10.000000|123456789.013|good|t\n" +
            s + "|2024-03-01T00:00:11.000000|-0.725|good|t\n" +
            s + "|2024-03-01T00:01:00.000000|42.424|estimated|t");
  // The stored numerics compare equal to PostgreSQL's own conversion of the same text.
  EXPECT_EQ(sql("SELECT count(*) FROM observations WHERE series_id = '" + s +
                "' AND ts = '2024-03-01T00:00:10Z' AND value = '123456789.0125'::numeric(12,3)"),
            "1");
}

TEST_F(HttpValues, ObservationsNumericOverflowIsRejectedNamingTheColumn) {
  const std::string s = kSeriesCaiso;
  const std::string body =
      "[{\"series_id\":\"" + s + "\",\"ts\":\"2024-03-02T00:00:00Z\",\"value\":1234567890.1},"
      "{\"series_id\":\"" + s + "\",\"ts\":\"2024-03-02T00:00:01Z\",\"value\":999999999.9995}]";
  const HttpResponse r = post("/v1/write/observations", body);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body,
            "{\"accepted\":0,\"rejected\":2,\"errors\":["
            "{\"row\":0,\"column\":\"value\",\"message\":\"value 1234567890.1 does not fit numeric(12,3) of column "
            "\\\"value\\\"\"},"
            "{\"row\":1,\"column\":\"value\",\"message\":\"value 999999999.9995 does not fit numeric(12,3) of column "
            "\\\"value\\\"\"}]}");
  EXPECT_EQ(sql("SELECT count(*) FROM observations WHERE series_id = '" + s + "'"), "0");
}

TEST_F(HttpValues, ObservationsTimestampsWithOffsetsAndFractions) {
  const std::string s = kSeriesMiso;
  const std::vector<std::string> stamps = {
      "2024-03-01T12:00:00+05:30",         // 1
      "2024-03-01T12:00:00-08:00",         // 2
      "2024-03-01T12:00:00Z",              // 3
      "2024-03-01T12:00:00.5Z",            // 4
      "2024-03-01T12:00:00.123456Z",       // 5
      "2024-03-01T13:00:00.9999999Z",      // 6: digits below 1 µs are truncated
      "2024-03-01 23:59:59.999999-00:30",  // 7
      "2024-03-01T01:00:00+0130",          // 8: into the leap day
      "2024-03-01",                        // 9: bare date = midnight UTC
      "2024-03-01t14:15:16.000001z",       // 10
      "2024-03-01T15:00:00+05",            // 11
      "2024-03-01T16:30",                  // 12: no seconds, no offset = UTC
  };
  std::string body = "[";
  for (size_t i = 0; i < stamps.size(); ++i) {
    if (i) body += ",";
    body += "{\"series_id\":\"" + s + "\",\"ts\":\"" + stamps[i] + "\",\"value\":" + std::to_string(i + 1) + "}";
  }
  body += "]";
  const HttpResponse r = post("/v1/write/observations", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, all_ok(12));
  EXPECT_EQ(sql("SELECT value, " + utc("ts") + ", extract(epoch FROM ts) FROM observations WHERE series_id = '" + s +
                "' ORDER BY value"),
            "1.000|2024-03-01T06:30:00.000000|1709274600.000000\n"
            "2.000|2024-03-01T20:00:00.000000|1709323200.000000\n"
            "3.000|2024-03-01T12:00:00.000000|1709294400.000000\n"
            "4.000|2024-03-01T12:00:00.500000|1709294400.500000\n"
            "5.000|2024-03-01T12:00:00.123456|1709294400.123456\n"
            "6.000|2024-03-01T13:00:00.999999|1709298000.999999\n"
            "7.000|2024-03-02T00:29:59.999999|1709339399.999999\n"
            "8.000|2024-02-29T23:30:00.000000|1709249400.000000\n"
            "9.000|2024-03-01T00:00:00.000000|1709251200.000000\n"
            "10.000|2024-03-01T14:15:16.000001|1709302516.000001\n"
            "11.000|2024-03-01T10:00:00.000000|1709287200.000000\n"
            "12.000|2024-03-01T16:30:00.000000|1709310600.000000");
}

// ---------------------------------------------------------------------------------------- datapoint

TEST_F(HttpValues, DatapointEpochNumbersInEveryPrecision) {
  auto row = [](const std::string& source, const std::string& ts, int value) {
    return "{\"timestamp\":" + ts + ",\"source\":\"" + source + "\",\"value\":" + std::to_string(value) + "}";
  };
  HttpResponse r = post("/v1/write/datapoint?precision=ms",
                        "[" + row("epoch-ms", "1709294400123", 1) + "," + row("epoch-ms", "1709294400123.5", 2) + "," +
                            row("epoch-ms", "\"2024-03-01T12:00:00Z\"", 3) + "]");
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, all_ok(3));
  r = post("/v1/write/datapoint?precision=us",
           "[" + row("epoch-us", "1709294400123456", 1) + "," + row("epoch-us", "-1", 2) + "]");
  EXPECT_EQ(r.status, 200) << r.body;
  r = post("/v1/write/datapoint?precision=ns",
           "[" + row("epoch-ns", "1709294400123456789", 1) + "," + row("epoch-ns", "1709294400123456999", 2) + "," +
               row("epoch-ns", "1.709294400e18", 3) + "]");
  EXPECT_EQ(r.status, 200) << r.body;
  r = post("/v1/write/datapoint?precision=s",
           "[" + row("epoch-s", "1709294400", 1) + "," + row("epoch-s", "1709294400.25", 2) + "," +
               row("epoch-s", "1.7092944e9", 3) + "," + row("epoch-s", "-1.5", 4) + "," + row("epoch-s", "0", 5) + "]");
  EXPECT_EQ(r.status, 200) << r.body;
  // No precision parameter: http.default_precision (s).
  r = post("/v1/write/datapoint", row("epoch-default", "1709294401", 1));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, all_ok(1));

  EXPECT_EQ(sql("SELECT source, value, " + utc("\"timestamp\"") +
                ", metadata IS NULL, id IS NOT NULL FROM datapoint WHERE source LIKE 'epoch-%' ORDER BY source, value"),
            "epoch-default|1|2024-03-01T12:00:01.000000|t|t\n"
            "epoch-ms|1|2024-03-01T12:00:00.123000|t|t\n"
            "epoch-ms|2|2024-03-01T12:00:00.123500|t|t\n"
            "epoch-ms|3|2024-03-01T12:00:00.000000|t|t\n"
            "epoch-ns|1|2024-03-01T12:00:00.123456|t|t\n"
            "epoch-ns|2|2024-03-01T12:00:00.123456|t|t\n"
            "epoch-ns|3|2024-03-01T12:00:00.000000|t|t\n"
            "epoch-s|1|2024-03-01T12:00:00.000000|t|t\n"
            "epoch-s|2|2024-03-01T12:00:00.250000|t|t\n"
            "epoch-s|3|2024-03-01T12:00:00.000000|t|t\n"
            "epoch-s|4|1969-12-31T23:59:58.500000|t|t\n"
            "epoch-s|5|1970-01-01T00:00:00.000000|t|t\n"
            "epoch-us|1|2024-03-01T12:00:00.123456|t|t\n"
            "epoch-us|2|1969-12-31T23:59:59.999999|t|t");

  r = post("/v1/write/datapoint?precision=minutes", row("epoch-bad", "1", 1));
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body, "{\"error\":\"invalid precision \\\"minutes\\\" (use s, ms, us or ns)\"}");
  EXPECT_EQ(sql("SELECT count(*) FROM datapoint WHERE source = 'epoch-bad'"), "0");
}

TEST_F(HttpValues, DatapointJsonbMetadataAndDoublePrecision) {
  const std::string meta1 =
      R"({"unit":"kWh","tags":["a","b"],"nested":{"depth":2,"ok":true,"none":null,"pi":3.14159,"deeper":{"list":[[1],[2,{"x":"y"}]]}}})";
  const std::string meta2 = R"([1,2.5,"x",{"k":[]}])";
  const std::string body = "[" 
      R"({"timestamp":"2024-03-05T00:00:00Z","source":"meta-1","value":0.1,"metadata":)" + meta1 + "}," +
      R"({"timestamp":"2024-03-05T00:00:01Z","source":"meta-2","value":-1.7976931348623157e308,"metadata":)" + meta2 + "}," +
      R"({"timestamp":"2024-03-05T00:00:02Z","source":"meta-3","value":5e-324,"metadata":"just a \"string\""},)"
      R"({"timestamp":"2024-03-05T00:00:03Z","source":"meta-4","value":123456789012345678,"metadata":42},)"
      R"({"timestamp":"2024-03-05T00:00:04Z","source":"meta-5","value":"NaN","metadata":null},)"
      R"({"timestamp":"2024-03-05T00:00:05Z","source":"meta-6","value":"-Infinity","metadata":true},)"
      R"({"timestamp":"2024-03-05T00:00:06Z","source":"meta-7","value":-0.000123,"metadata":{}})"
      "]";
  const HttpResponse r = post("/v1/write/datapoint", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, all_ok(7));

  EXPECT_EQ(sql("SELECT source, value, coalesce(metadata::text, '<null>') FROM datapoint "
                "WHERE source LIKE 'meta-%' ORDER BY source"),
            "meta-1|0.1|{\"tags\": [\"a\", \"b\"], \"unit\": \"kWh\", \"nested\": {\"ok\": true, \"pi\": 3.14159, "
            "\"none\": null, \"depth\": 2, \"deeper\": {\"list\": [[1], [2, {\"x\": \"y\"}]]}}}\n"
            "meta-2|-1.7976931348623157e+308|[1, 2.5, \"x\", {\"k\": []}]\n"
            "meta-3|5e-324|\"just a \\\"string\\\"\"\n"
            "meta-4|1.2345678901234568e+17|42\n"
            "meta-5|NaN|<null>\n"
            "meta-6|-Infinity|true\n"
            "meta-7|-0.000123|{}");
  EXPECT_EQ(sql("SELECT metadata = '" + meta1 + "'::jsonb FROM datapoint WHERE source = 'meta-1'"), "t");
  EXPECT_EQ(sql("SELECT metadata = '" + meta2 + "'::jsonb FROM datapoint WHERE source = 'meta-2'"), "t");
  EXPECT_EQ(sql("SELECT metadata #>> '{nested,deeper,list,1,1,x}', jsonb_typeof(metadata -> 'nested' -> 'none') "
                "FROM datapoint WHERE source = 'meta-1'"),
            "y|null");
  EXPECT_EQ(sql("SELECT value = '0.1'::float8 FROM datapoint WHERE source = 'meta-1'"), "t");
  EXPECT_EQ(sql("SELECT value = '5e-324'::float8 FROM datapoint WHERE source = 'meta-3'"), "t");
}

TEST_F(HttpValues, GzipBodyIsInflated) {
  std::string body = "[";
  for (int i = 0; i < 200; ++i) {
    if (i) body += ",";
    body += "{\"timestamp\":\"2024-03-06T00:00:00Z\",\"source\":\"gzip\",\"value\":" + std::to_string(i) + ".5," +
            "\"metadata\":{\"i\":" + std::to_string(i) + "}}";
  }
  body += "]";
  const std::string compressed = gzip(body);
  ASSERT_LT(compressed.size(), body.size());
  const HttpResponse r = post("/v1/write/datapoint", compressed, "application/json", {{"Content-Encoding", "gzip"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, all_ok(200));
  // sum of i + 0.5 for i in 0..199 = 19900 + 100.
  EXPECT_EQ(sql("SELECT count(*), sum(value), min(value), max(value), sum((metadata->>'i')::int), "
                "bool_and(value = (metadata->>'i')::int + 0.5) FROM datapoint WHERE source = 'gzip'"),
            "200|20000|0.5|199.5|19900|t");
}

// ---------------------------------------------------------------------------------- sensor_readings

TEST_F(HttpValues, SensorReadingsDoublesVarcharJsonbAndDefaults) {
  std::string fifty_e;  // 50 code points, 100 bytes
  for (int i = 0; i < 50; ++i) fifty_e += "\xC3\xA9";
  const std::string meta0 = R"({"axis":"x","fw":{"version":"2.1.0","build":1042},"thresholds":[4.5,7.1]})";
  const std::string body = "["
      R"({"timestamp":"2024-03-01T08:00:00Z","sensor_id":"pump-1","sensor_type":"vibration","value":0.731,"unit":"mm/s","quality":0.98,"sensor_metadata":)" +
      meta0 + "}," +
      R"({"timestamp":"2024-03-01T08:00:00Z","sensor_id":"pump-2","value":-40,"unit":")" + fifty_e +
      R"(","quality":null,"sensor_metadata":"plain"},)"
      R"({"timestamp":"2024-03-01T08:00:01Z","sensor_id":"pump-1","value":1e-7,"unit":"a \"quoted\" \\ \u00e9 \ud83d\ude00","quality":1},)"
      R"({"timestamp":"2024-03-01T08:00:02Z","sensor_id":"pump-1","value":1e300,"unit":"12345678901234567890123456789012345678901234567890   "})"
      "]";
  const HttpResponse r = post("/v1/write/sensor_readings", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, all_ok(4));

  EXPECT_EQ(sql("SELECT sensor_id, " + utc("\"timestamp\"") +
                ", coalesce(sensor_type, '<null>'), value, unit, length(unit), coalesce(quality::text, '<null>'), "
                "coalesce(sensor_metadata::text, '<null>') FROM sensor_readings "
                "WHERE \"timestamp\" BETWEEN '2024-03-01T08:00:00Z' AND '2024-03-01T08:00:02Z' ORDER BY 2, 1"),
            "pump-1|2024-03-01T08:00:00.000000|vibration|0.731|mm/s|4|0.98|"
            "{\"fw\": {\"build\": 1042, \"version\": \"2.1.0\"}, \"axis\": \"x\", \"thresholds\": [4.5, 7.1]}\n"
            "pump-2|2024-03-01T08:00:00.000000|<null>|-40|" + fifty_e + "|50|<null>|\"plain\"\n"
            "pump-1|2024-03-01T08:00:01.000000|<null>|1e-07|a \"quoted\" \\ \xC3\xA9 \xF0\x9F\x98\x80|16|1|<null>\n"
            "pump-1|2024-03-01T08:00:02.000000|<null>|1e+300|12345678901234567890123456789012345678901234567890|50|"
            "<null>|<null>");
  EXPECT_EQ(sql("SELECT sensor_metadata = '" + meta0 + "'::jsonb FROM sensor_readings "
                "WHERE sensor_id = 'pump-1' AND \"timestamp\" = '2024-03-01T08:00:00Z'"),
            "t");
  // Omitted defaulted columns are filled by the database: id from the sequence, the two timestamps.
  EXPECT_EQ(sql("SELECT count(*), count(DISTINCT id), bool_and(id >= 1), bool_and(created_at IS NOT NULL), "
                "bool_and(updated_at IS NOT NULL) FROM sensor_readings "
                "WHERE \"timestamp\" BETWEEN '2024-03-01T08:00:00Z' AND '2024-03-01T08:00:02Z'"),
            "4|4|t|t|t");
}

TEST_F(HttpValues, SensorReadingsVarcharOverLimitIsRejected) {
  const std::string long_unit(51, 'u');
  const std::string body = R"({"timestamp":"2024-03-01T08:30:00Z","sensor_id":"pump-1","value":1,"unit":")" +
                           long_unit + "\"}";
  const HttpResponse r = post("/v1/write/sensor_readings", body);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body,
            "{\"accepted\":0,\"rejected\":1,\"errors\":[{\"row\":0,\"column\":\"unit\",\"message\":"
            "\"column \\\"unit\\\": value is 51 characters long; varchar(50) allows 50\"}]}");
  EXPECT_EQ(sql("SELECT count(*) FROM sensor_readings WHERE \"timestamp\" = '2024-03-01T08:30:00Z'"), "0");
}

TEST_F(HttpValues, MixedRequestStoresGoodRowsAndReportsEachBadOne) {
  const std::string body = "["
      R"({"timestamp":"2024-03-01T09:00:00Z","sensor_id":"pump-1","value":1.5},)"                        // 0 good
      R"({"timestamp":"2024-03-01T09:00:01Z","sensor_id":"pump-1","value":2,"colour":"red"},)"          // 1 unknown
      R"({"timestamp":"2024-03-01T09:00:00Z","sensor_id":"pump-2","value":2.5,"unit":"C"},)"            // 2 good
      R"({"timestamp":"2024-03-01T09:00:02Z","sensor_id":"pump-1","value":"high"},)"                    // 3 type
      R"({"timestamp":"2024-03-01T09:00:03Z","value":3},)"                                              // 4 missing
      R"({"timestamp":"2024-02-30T09:00:00Z","sensor_id":"pump-1","value":4},)"                         // 5 bad date
      R"({"timestamp":"2024-03-01T09:00:04Z","sensor_id":"pump-1","value":5,"sensor_metadata":{"a":[1,{"b":null}]}},)"  // 6 good
      R"({"timestamp":"2024-03-01T09:00:05Z","sensor_id":"pump-1","value":6,"quality":true},)"          // 7 bool
      "42,"                                                                                              // 8 not an object
      R"({"timestamp":"2024-03-01T09:00:06Z","sensor_id":"pump-1","value":null},)"                      // 9 null
      R"({"timestamp":"2024-03-01T09:00:07Z","sensor_id":"pump-1","value":7,"unit":"x","unit":"y"})"    // 10 twice
      "]";
  const HttpResponse r = post("/v1/write/sensor_readings", body);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body,
            "{\"accepted\":3,\"rejected\":8,\"errors\":["
            "{\"row\":1,\"column\":\"colour\",\"message\":\"unknown column \\\"colour\\\"\"},"
            "{\"row\":3,\"column\":\"value\",\"message\":\"column \\\"value\\\": expected a number, got a string "
            "(only \\\"NaN\\\", \\\"Infinity\\\" and \\\"-Infinity\\\" are accepted as strings)\"},"
            "{\"row\":4,\"column\":\"sensor_id\",\"message\":\"missing value for required column \\\"sensor_id\\\"\"},"
            "{\"row\":5,\"column\":\"timestamp\",\"message\":\"column \\\"timestamp\\\": invalid timestamp "
            "\\\"2024-02-30T09:00:00Z\\\" (day out of range for month)\"},"
            "{\"row\":7,\"column\":\"quality\",\"message\":\"column \\\"quality\\\": expected a number, got a boolean\"},"
            "{\"row\":8,\"column\":\"\",\"message\":\"row is not a JSON object\"},"
            "{\"row\":9,\"column\":\"value\",\"message\":\"column \\\"value\\\": null is not allowed (NOT NULL)\"},"
            "{\"row\":10,\"column\":\"unit\",\"message\":\"column \\\"unit\\\": given more than once\"}]}");
  EXPECT_EQ(sql("SELECT sensor_id, " + utc("\"timestamp\"") +
                ", value, coalesce(unit, '<null>'), coalesce(sensor_metadata::text, '<null>') FROM sensor_readings "
                "WHERE \"timestamp\" >= '2024-03-01T09:00:00Z' AND \"timestamp\" < '2024-03-01T10:00:00Z' "
                "ORDER BY 2, 1"),
            "pump-1|2024-03-01T09:00:00.000000|1.5|<null>|<null>\n"
            "pump-2|2024-03-01T09:00:00.000000|2.5|C|<null>\n"
            "pump-1|2024-03-01T09:00:04.000000|5|<null>|{\"a\": [1, {\"b\": null}]}");
}

// ------------------------------------------------------------------------------------------- flux.*


// The 25 real columns of flux.mg_meter_readings in table order: value sent (JSON token) and the text
// PostgreSQL 15 prints for it (shortest text that reads back as the same float4).
struct RealCase {
  const char* column;
  const char* sent;
  const char* stored;
};
const RealCase kMeterValues[] = {
    {"frequency", "50.02", "50.02"},
    {"voltage_line_average", "230.4", "230.4"},
    {"current_phase_a", "12.5", "12.5"},
    {"current_phase_b", "12.75", "12.75"},
    {"current_phase_c", "-0.125", "-0.125"},
    {"current_phase_average", "8.375", "8.375"},
    {"power_phase_a_active", "2875.3", "2875.3"},
    {"power_phase_b_active", "2934.1", "2934.1"},
    {"power_phase_c_active", "-12.06", "-12.06"},
    {"power_total_active", "5797.34", "5797.34"},
    {"power_total_reactive", "1e-5", "1e-05"},
    {"power_total_apparent", "6012.9", "6012.9"},
    {"power_factor_total", "0.964", "0.964"},
    {"energy_imported_active", "123456.7", "123456.7"},
    {"energy_exported_active", "0", "0"},
    {"energy_imported_phase_a_active", "41152.23", "41152.23"},
    {"energy_exported_phase_a_active", "3.4e38", "3.4e+38"},
    {"energy_imported_phase_b_active", "\"NaN\"", "NaN"},
    {"energy_exported_phase_b_active", "1.5", "1.5"},
    {"energy_imported_phase_c_active", "\"Infinity\"", "Infinity"},
    {"energy_exported_phase_c_active", "-1.5e-3", "-0.0015"},
    {"energy_imported_reactive", "987.654", "987.654"},
    {"energy_exported_reactive", "16777216", "1.6777216e+07"},
    {"energy_imported_apparent", "7", "7"},
    {"energy_exported_apparent", "1E3", "1000"},
};

TEST_F(HttpValues, MeterReadingsAllColumnsInOneRow) {
  // time + device_id + the 25 real columns: every column without a default.
  std::string row = std::string("{\"time\":\"2024-03-01T10:00:00.250+01:00\",\"device_id\":\"") + kMeter + "\"";
  std::string select, expected, same;
  for (const RealCase& c : kMeterValues) {
    row += std::string(",\"") + c.column + "\":" + c.sent;
    select += std::string(", ") + c.column;
    expected += std::string("|") + c.stored;
    std::string literal = c.sent;
    if (literal.front() == '"') literal = literal.substr(1, literal.size() - 2);
    same += std::string(" AND ") + c.column + " = '" + literal + "'::real";
  }
  row += "}";
  const HttpResponse r = post("/v1/write/flux.mg_meter_readings", row);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, all_ok(1));

  EXPECT_EQ(sql("SELECT " + utc("\"time\"") + ", device_id" + select +
                ", id IS NOT NULL, created_at IS NOT NULL FROM flux.mg_meter_readings WHERE device_id = '" + kMeter +
                "'"),
            std::string("2024-03-01T09:00:00.250000|") + kMeter + expected + "|t|t");
  // Bit-exact: each column equals PostgreSQL's own float4 conversion of the text sent.
  EXPECT_EQ(sql("SELECT count(*) FROM flux.mg_meter_readings WHERE device_id = '" + std::string(kMeter) + "'" + same),
            "1");
}

TEST_F(HttpValues, MeterReadingsRealOutOfRangeAndBadUuidAreRejected) {
  const std::string other = "d0000000-0000-4000-8000-000000000002";
  const std::string body = "["
      R"({"time":"2024-03-01T10:05:00Z","device_id":")" + other + R"(","energy_imported_active":3.5e38},)"
      R"({"time":"2024-03-01T10:05:01Z","device_id":")" + other + R"(","frequency":1e-50},)"
      R"({"time":"2024-03-01T10:05:02Z","device_id":"not-a-uuid","frequency":50},)"
      R"({"time":"2024-03-01T10:05:03Z","device_id":")" + other + R"(","frequency":"fast"},)"
      R"({"time":"2024-03-01T10:05:04Z","device_id":")" + other + R"(","frequency":49.98})"
      "]";
  const HttpResponse r = post("/v1/write/flux.mg_meter_readings", body);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body,
            "{\"accepted\":1,\"rejected\":4,\"errors\":["
            "{\"row\":0,\"column\":\"energy_imported_active\",\"message\":\"column \\\"energy_imported_active\\\": "
            "value 3.5e38 is out of range for real\"},"
            "{\"row\":1,\"column\":\"frequency\",\"message\":\"column \\\"frequency\\\": value 1e-50 is out of range "
            "for real\"},"
            "{\"row\":2,\"column\":\"device_id\",\"message\":\"column \\\"device_id\\\": invalid UUID "
            "\\\"not-a-uuid\\\"\"},"
            "{\"row\":3,\"column\":\"frequency\",\"message\":\"column \\\"frequency\\\": expected a number, got a "
            "string (only \\\"NaN\\\", \\\"Infinity\\\" and \\\"-Infinity\\\" are accepted as strings)\"}]}");
  EXPECT_EQ(sql("SELECT " + utc("\"time\"") + ", frequency, voltage_line_average IS NULL FROM flux.mg_meter_readings "
                "WHERE device_id = '" + other + "'"),
            "2024-03-01T10:05:04.000000|49.98|t");
}

TEST_F(HttpValues, BessReadingsSmallintAndReal) {
  const std::string d = kBess;
  auto row = [&](const std::string& time, const std::string& rest) {
    return "{\"time\":\"" + time + "\",\"device_id\":\"" + d + "\"" + rest + "}";
  };
  const std::string body = "[" +
      row("2024-03-01T11:00:00Z", R"(,"soe":87.5,"target_power":-250.5,"available_inverter_blocks":32767,"command_source":-32768)") + "," +
      row("2024-03-01T11:00:01Z", R"(,"soe":0,"target_power":1e3,"available_inverter_blocks":3.0,"command_source":1e2)") + "," +
      row("2024-03-01T11:00:02Z", R"(,"soe":null,"target_power":null,"available_inverter_blocks":null,"command_source":0)") + "," +
      row("2024-03-01T11:00:03Z", "") + "," +
      row("2024-03-01T11:00:04Z", R"(,"available_inverter_blocks":-0,"command_source":2.50e1)") + "]";
  HttpResponse r = post("/v1/write/flux.mg_bess_readings", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, all_ok(5));
  EXPECT_EQ(sql("SELECT " + utc("\"time\"") +
                ", coalesce(soe::text, '<null>'), coalesce(target_power::text, '<null>'), "
                "coalesce(available_inverter_blocks::text, '<null>'), coalesce(command_source::text, '<null>'), "
                "id IS NOT NULL, created_at IS NOT NULL FROM flux.mg_bess_readings WHERE device_id = '" + d +
                "' ORDER BY \"time\""),
            "2024-03-01T11:00:00.000000|87.5|-250.5|32767|-32768|t|t\n"
            "2024-03-01T11:00:01.000000|0|1000|3|100|t|t\n"
            "2024-03-01T11:00:02.000000|<null>|<null>|<null>|0|t|t\n"
            "2024-03-01T11:00:03.000000|<null>|<null>|<null>|<null>|t|t\n"
            "2024-03-01T11:00:04.000000|<null>|<null>|0|25|t|t");

  const std::string bad = "[" +
      row("2024-03-01T11:01:00Z", R"(,"available_inverter_blocks":32768)") + "," +
      row("2024-03-01T11:01:01Z", R"(,"command_source":2.5)") + "," +
      row("2024-03-01T11:01:02Z", R"(,"command_source":"7")") + "," +
      row("2024-03-01T11:01:03Z", R"(,"available_inverter_blocks":-32769)") + "," +
      "{\"device_id\":\"" + d + "\",\"soe\":1}," +
      R"({"time":"2024-03-01T11:01:05Z","soe":1})" + "]";
  r = post("/v1/write/flux.mg_bess_readings", bad);
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body,
            "{\"accepted\":0,\"rejected\":6,\"errors\":["
            "{\"row\":0,\"column\":\"available_inverter_blocks\",\"message\":\"column "
            "\\\"available_inverter_blocks\\\": value 32768 is out of range for smallint\"},"
            "{\"row\":1,\"column\":\"command_source\",\"message\":\"column \\\"command_source\\\": value 2.5 is not "
            "an integer\"},"
            "{\"row\":2,\"column\":\"command_source\",\"message\":\"column \\\"command_source\\\": expected a "
            "number, got a string\"},"
            "{\"row\":3,\"column\":\"available_inverter_blocks\",\"message\":\"column "
            "\\\"available_inverter_blocks\\\": value -32769 is out of range for smallint\"},"
            "{\"row\":4,\"column\":\"time\",\"message\":\"missing value for required column \\\"time\\\"\"},"
            "{\"row\":5,\"column\":\"device_id\",\"message\":\"missing value for required column "
            "\\\"device_id\\\"\"}]}");
  EXPECT_EQ(sql("SELECT count(*) FROM flux.mg_bess_readings WHERE \"time\" >= '2024-03-01T11:01:00Z'"), "0");
}

// ------------------------------------------------------------------------------- energy_consumption

TEST_F(HttpValues, EnergyConsumptionNdjsonNumericDefaultsAndJsonb) {
  const std::string c = kCity;
  std::string c_plain;  // 32 upper-case hex digits, no dashes
  for (char ch : c) {
    if (ch != '-') c_plain += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  }
  const std::string meta0 = R"({"source":"smart-meter","quality":{"complete":true,"gaps":[]}})";
  const std::string body =
      R"({"city_id":")" + c + R"(","timestamp":"2024-03-01T00:00:00Z","consumption_kwh":1234.567,"peak_demand_kw":0.005,"metadata":)" + meta0 + "}\r\n"
      "\n"
      R"({"city_id":")" + c + R"(","timestamp":"2024-03-01T02:00:00+01:00","consumption_kwh":1e3})" "\n"
      R"({"city_id":")" + c_plain + R"(","timestamp":"2024-03-01T02:00:00Z","consumption_kwh":12.5e-1,"peak_demand_kw":-0.004,"metadata":{}})" "\n"
      R"({"city_id":")" + c + R"(","timestamp":"2024-03-01T03:00:00Z","consumption_kwh":9999999999.994})";
  const HttpResponse r = post("/v1/write/energy_consumption", body, "application/x-ndjson");
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, all_ok(4));
  EXPECT_EQ(sql("SELECT " + utc("\"timestamp\"") +
                ", consumption_kwh, coalesce(peak_demand_kw::text, '<null>'), metadata::text, id IS NOT NULL, "
                "created_at IS NOT NULL FROM energy_consumption WHERE city_id = '" + c +
                "' AND \"timestamp\" < '2024-03-02' ORDER BY \"timestamp\""),
            "2024-03-01T00:00:00.000000|1234.57|0.01|{\"source\": \"smart-meter\", \"quality\": {\"gaps\": [], "
            "\"complete\": true}}|t|t\n"
            "2024-03-01T01:00:00.000000|1000.00|<null>|{}|t|t\n"
            "2024-03-01T02:00:00.000000|1.25|0.00|{}|t|t\n"
            "2024-03-01T03:00:00.000000|9999999999.99|<null>|{}|t|t");
  EXPECT_EQ(sql("SELECT metadata = '" + meta0 + "'::jsonb FROM energy_consumption WHERE city_id = '" + c +
                "' AND \"timestamp\" = '2024-03-01T00:00:00Z'"),
            "t");
}

TEST_F(HttpValues, EnergyConsumptionNdjsonMixedRowsCountNonBlankLines) {
  const std::string c = kCity;
  const std::string body =
      R"({"city_id":")" + c + R"(","timestamp":"2024-03-02T00:00:00Z","consumption_kwh":1})" "\n"
      "\n"
      R"({"city_id":")" + c + R"(","timestamp":"2024-03-02T00:30:00Z"})" "\n"
      R"({"city_id":"nope","timestamp":"2024-03-02T00:40:00Z","consumption_kwh":1})" "\n"
      "\r\n"
      R"({"city_id":")" + c + R"(","timestamp":"2024-03-02T00:50:00Z","consumption_kwh":12345678901.5})" "\n"
      R"({"city_id":")" + c + R"(","timestamp":"2024-03-02T01:00:00Z","consumption_kwh":2.345,"metadata":{"k":"v"}})" "\n";
  const HttpResponse r = post("/v1/write/energy_consumption", body, "application/x-ndjson");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.body,
            "{\"accepted\":2,\"rejected\":3,\"errors\":["
            "{\"row\":1,\"column\":\"consumption_kwh\",\"message\":\"missing value for required column "
            "\\\"consumption_kwh\\\"\"},"
            "{\"row\":2,\"column\":\"city_id\",\"message\":\"column \\\"city_id\\\": invalid UUID \\\"nope\\\"\"},"
            "{\"row\":3,\"column\":\"consumption_kwh\",\"message\":\"value 12345678901.5 does not fit numeric(12,2) "
            "of column \\\"consumption_kwh\\\"\"}]}");
  EXPECT_EQ(sql("SELECT " + utc("\"timestamp\"") + ", consumption_kwh, metadata::text FROM energy_consumption "
                "WHERE city_id = '" + c + "' AND \"timestamp\" >= '2024-03-02' ORDER BY \"timestamp\""),
            "2024-03-02T00:00:00.000000|1.00|{}\n"
            "2024-03-02T01:00:00.000000|2.35|{\"k\": \"v\"}");
}

TEST_F(HttpValues, EnergyConsumptionGzipNdjson) {
  std::string body;
  for (int h = 0; h < 48; ++h) {
    char ts[32];
    std::snprintf(ts, sizeof ts, "2024-03-%02dT%02d:00:00Z", 1 + h / 24, h % 24);
    body += std::string("{\"city_id\":\"") + kCityGzip + "\",\"timestamp\":\"" + ts +
            "\",\"consumption_kwh\":" + std::to_string(h) + ".25,\"peak_demand_kw\":" + std::to_string(2 * h) + "}\n";
  }
  const HttpResponse r = post("/v1/write/energy_consumption", gzip(body), "application/x-ndjson",
                              {{"Content-Encoding", "gzip"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.body, all_ok(48));
  // sum of h + 0.25 for h in 0..47 = 1128 + 12; peak 2h sums to 2256.
  EXPECT_EQ(sql("SELECT count(*), sum(consumption_kwh), sum(peak_demand_kw), " + utc("min(\"timestamp\")") + ", " +
                utc("max(\"timestamp\")") + " FROM energy_consumption WHERE city_id = '" + kCityGzip + "'"),
            "48|1140.00|2256.00|2024-03-01T00:00:00.000000|2024-03-02T23:00:00.000000");
  EXPECT_EQ(sql("SELECT consumption_kwh, peak_demand_kw FROM energy_consumption WHERE city_id = '" +
                std::string(kCityGzip) + "' AND \"timestamp\" = '2024-03-02T13:00:00Z'"),
            "37.25|74.00");
}

// ---------------------------------------------------------------------------------- request errors

TEST_F(HttpValues, UnknownTableIs404) {
  const std::string row = R"({"time":"2024-03-01T00:00:00Z","type":1,"value":1})";
  HttpResponse r = post("/v1/write/no_such_table", row);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body,
            "{\"error\":\"unknown table \\\"no_such_table\\\" (sluice writes only to the tables listed in its "
            "config)\"}");
  // Exists in the database but is not in the config.
  r = post("/v1/write/flux.market_data", row);
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body,
            "{\"error\":\"unknown table \\\"flux.market_data\\\" (sluice writes only to the tables listed in its "
            "config)\"}");
  EXPECT_EQ(sql("SELECT count(*) FROM flux.market_data"), "0");
}

TEST_F(HttpValues, TruncatedBodyIs400WithOffsetAndStoresNothing) {
  const std::string full = std::string("[{\"series_id\":\"") + kSeriesPjm +
                           "\",\"ts\":\"2024-03-03T00:00:00Z\",\"value\":1},{\"series_id\":\"" + kSeriesPjm +
                           "\",\"ts\":\"2024-03-03T00:00:01Z\",\"value\":2}]";
  const std::string truncated = full.substr(0, full.size() - 12);  // ends inside the second row
  const HttpResponse r = post("/v1/write/observations", truncated);
  EXPECT_EQ(r.status, 400);
  // The document ends early: the offset is the end of the body.
  EXPECT_EQ(r.body,
            "{\"error\":\"body is not valid JSON: JSON document ended early in the middle of an object or array.\","
            "\"offset\":" + std::to_string(truncated.size()) + "}");
  EXPECT_EQ(truncated.size(), 171u);
  EXPECT_EQ(sql("SELECT count(*) FROM observations WHERE ts >= '2024-03-03' AND ts < '2024-03-04'"), "0");
  // The connection is still usable afterwards.
  const HttpResponse ok = post("/v1/write/observations", full);
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(sql("SELECT count(*) FROM observations WHERE ts >= '2024-03-03' AND ts < '2024-03-04'"), "2");
}

}  // namespace
}  // namespace sluice
