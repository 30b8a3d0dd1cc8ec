#include "config/config.h"

#include <algorithm>
#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>

namespace sluice {
namespace {

const char* kMinimal = R"({"database": {"url": "postgresql://u@h/db"}, "tables": [{"name": "t"}]})";

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override { clear_env(); }
  void TearDown() override { clear_env(); }
  static void clear_env() {
    for (const char* v : {"SLUICE_DATABASE_URL", "SLUICE_DATABASE_URL_FILE", "CREDENTIALS_DIRECTORY"}) unsetenv(v);
  }

  std::vector<std::string> problems(const std::string& text) {
    try {
      parse_config(text, "test.json");
    } catch (const ConfigError& e) {
      return e.problems();
    }
    return {};
  }
};

TEST_F(ConfigTest, MinimalConfigGetsTheDocumentedDefaults) {
  const Config c = parse_config(kMinimal, "test.json");
  EXPECT_EQ(c.database.url, "postgresql://u@h/db");
  EXPECT_EQ(c.database.connections, 2);
  EXPECT_EQ(c.pipeline.io_threads, 2);
  EXPECT_EQ(c.pipeline.ring_capacity, 1024u);
  EXPECT_EQ(c.batch.max_rows, 20000u);
  EXPECT_EQ(c.batch.max_bytes, 8u << 20);
  EXPECT_EQ(c.batch.max_age_ms, 50);
  EXPECT_EQ(c.batch.split_min_rows, 500u);
  EXPECT_EQ(c.http.listen, "127.0.0.1:8080");
  EXPECT_EQ(c.http.max_body_bytes, 16u << 20);
  EXPECT_EQ(c.http.default_precision, "s");
  EXPECT_EQ(c.admin.listen, "127.0.0.1:9100");
  EXPECT_EQ(c.log.level, "info");
  ASSERT_EQ(c.tables.size(), 1u);
  EXPECT_EQ(c.tables[0].name, "t");
  EXPECT_TRUE(c.udp.empty());
}

TEST_F(ConfigTest, SplitMinRowsTakesZeroAndRefusesNegatives) {
  const Config c = parse_config(R"({"database": {"url": "x"}, "batch": {"split_min_rows": 0},
                                    "tables": [{"name": "t"}]})", "c.json");
  EXPECT_EQ(c.batch.split_min_rows, 0u);
  const auto p = problems(R"({"database": {"url": "x"}, "batch": {"split_min_rows": -1}, "tables": [{"name": "t"}]})");
  ASSERT_EQ(p.size(), 1u) << ::testing::PrintToString(p);
  EXPECT_EQ(p[0], "batch.split_min_rows: -1 is out of range [0, 10000000]");
}

TEST_F(ConfigTest, CommentsAreAllowed) {
  const Config c = parse_config(R"(// leading comment
    { /* block */ "database": {"url": "x"}, // trailing
      "tables": [{"name": "a"}, {"name": "flux.b", "time_column": "time"}] })", "c.json");
  ASSERT_EQ(c.tables.size(), 2u);
  EXPECT_EQ(c.tables[1].time_column, "time");
}

TEST_F(ConfigTest, EnvironmentOverridesTheDatabaseUrl) {
  setenv("SLUICE_DATABASE_URL", "postgresql://env@h/db", 1);
  EXPECT_EQ(parse_config(kMinimal, "t").database.url, "postgresql://env@h/db");
  EXPECT_EQ(parse_config(R"({"tables": [{"name": "t"}]})", "t").database.url, "postgresql://env@h/db");
}

TEST_F(ConfigTest, EveryProblemIsReportedAtOnceWithItsPath) {
  const auto p = problems(R"({
    "database": {"connections": 100},
    "pipeline": {"io_threads": "two"},
    "http": {"listen": "8080", "default_precision": "h", "bogus": 1},
    "udp": [{"listen": "127.0.0.1:1", "table": "missing", "format": "csv"}, {"table": "t"}],
    "log": {"level": "loud"},
    "tables": [{"name": "t"}, {"name": "t"}, {"time_column": "x"}],
    "extra": true
  })");
  const std::vector<std::string> expected = {
      "database.connections: 100 is out of range [1, 64]",
      "pipeline.io_threads: expected an integer",
      "http.bogus: unknown setting",
      "http.listen: \"8080\" is not host:port",
      "http.default_precision: \"h\" is not one of s, ms, us, ns",
      "udp[0].format: \"csv\" is not supported (supported: ndjson, line)",
      "udp[1].listen: required",
      "log.level: \"loud\" is not one of trace, debug, info, warn, error, critical, off",
      "tables[1].name: table \"t\" is listed twice",
      "tables[2].name: required",
      "udp[0].table: \"missing\" is not listed in tables",
      "extra: unknown setting",
      "database.url: required (or database.url_file, env SLUICE_DATABASE_URL or SLUICE_DATABASE_URL_FILE, or the "
      "systemd credential database-url)",
  };
  for (const auto& e : expected) {
    EXPECT_NE(std::find(p.begin(), p.end(), e), p.end()) << "missing: " << e;
  }
  EXPECT_EQ(p.size(), expected.size()) << ::testing::PrintToString(p);
}

TEST_F(ConfigTest, SummaryCountsTheProblems) {
  try {
    parse_config(R"({"tables": []})", "f.json");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("f.json: 2 problems\n", 0), 0u) << e.what();
  }
}

TEST_F(ConfigTest, InvalidJsonNamesTheFileAndPosition) {
  try {
    parse_config("{\"tables\": [", "broken.json");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("broken.json: not valid JSON"), std::string::npos) << e.what();
  }
}

TEST_F(ConfigTest, MissingFileIsAClearError) {
  EXPECT_THROW(load_config("/nonexistent/sluice.json"), ConfigError);
}

TEST_F(ConfigTest, ShippedConfigsAreValid) {
  for (const char* f : {"config/local.json", "config/example.json"}) {
    const std::string path = std::string(SLUICE_SOURCE_DIR) + "/" + f;
    EXPECT_NO_THROW(load_config(path)) << path;
  }
}

TEST_F(ConfigTest, MeasurementsAndUdpLineListeners) {
  const Config c = parse_config(R"({"database": {"url": "postgresql://u@h/db"}, "tables": [{"name": "t"}],
    "udp": [{"listen": "127.0.0.1:8094", "format": "line"}],
    "measurements": [{"measurement": "m", "table": "t", "tags": {"host": "h"}, "fields": {"v": "value"},
                      "extra_json_column": "x", "unmapped": "ignore", "measurement_column": "mc"},
                     {"measurement": "t"}]})",
                                "test.json");
  ASSERT_EQ(c.measurements.size(), 2u);
  EXPECT_EQ(c.measurements[0].table, "t");
  ASSERT_EQ(c.measurements[0].tags.size(), 1u);
  EXPECT_EQ(c.measurements[0].tags[0], (std::pair<std::string, std::string>{"host", "h"}));
  EXPECT_EQ(c.measurements[0].fields[0], (std::pair<std::string, std::string>{"v", "value"}));
  EXPECT_EQ(c.measurements[0].extra_json_column, "x");
  EXPECT_EQ(c.measurements[0].unmapped, "ignore");
  EXPECT_EQ(c.measurements[0].measurement_column, "mc");
  EXPECT_EQ(c.measurements[1].unmapped, "reject");
  ASSERT_EQ(c.udp.size(), 1u);
  EXPECT_EQ(c.udp[0].format, "line");
  EXPECT_EQ(c.udp[0].precision, "ns");  // line protocol default
}

TEST_F(ConfigTest, MeasurementProblemsAreAllListed) {
  auto p = problems(R"({"database": {"url": "postgresql://u@h/db"}, "tables": [{"name": "t"}],
    "udp": [{"listen": "127.0.0.1:1", "format": "line", "table": "t"}, {"listen": "127.0.0.1:2"}],
    "measurements": [{"measurement": "m", "table": "nope", "unmapped": "drop", "tags": {"a": 1}},
                     {"measurement": "m", "table": "t"}, {"measurement": "*"}, {"table": "t", "typo": 1}]})");
  const std::vector<std::string> want = {
      "udp[0].table: not used with format \"line\" (measurements map lines to tables)",
      "udp[1].table: required (format ndjson)",
      "measurements[0].tags.a: expected a column name",
      "measurements[0].unmapped: \"drop\" is not one of reject, ignore",
      "measurements[1].measurement: \"m\" is mapped twice (also measurements[0])",
      "measurements[2].table: required for the catch-all measurement \"*\"",
      "measurements[3].measurement: required",
      "measurements[3].typo: unknown setting",
      "measurements[0].table: table \"nope\" is not listed in tables",
  };
  for (const auto& w : want) EXPECT_NE(std::find(p.begin(), p.end(), w), p.end()) << w;
  EXPECT_EQ(p.size(), want.size()) << ::testing::PrintToString(p);
}

TEST_F(ConfigTest, ResolversBothForms) {
  const Config c = parse_config(R"({"database": {"url": "x"}, "tables": [{"name": "obs", "resolvers": [
      {"column": "series_id", "keys": ["ba", "type", "subtype"], "nullable_keys": ["subtype"], "unknown": "create",
       "lookup_sql": "SELECT 1", "create_sql": "INSERT 1", "negative_ttl_ms": 500, "cache_size": 10},
      {"column": "kind", "keys": ["k"], "lookup_table": "flux.kinds", "match": ["name"], "id_column": "id"}]}]})",
                                "t");
  ASSERT_EQ(c.tables[0].resolvers.size(), 2u);
  const ResolverConfig& a = c.tables[0].resolvers[0];
  EXPECT_EQ(a.table, "obs");
  EXPECT_EQ(a.column, "series_id");
  EXPECT_EQ(a.keys, (std::vector<std::string>{"ba", "type", "subtype"}));
  EXPECT_EQ(a.nullable_keys, (std::vector<std::string>{"subtype"}));
  EXPECT_EQ(a.unknown, UnknownKeyRule::create);
  EXPECT_EQ(a.lookup_sql, "SELECT 1");
  EXPECT_EQ(a.create_sql, "INSERT 1");
  EXPECT_EQ(a.negative_ttl_ms, 500);
  EXPECT_EQ(a.cache_size, 10u);
  const ResolverConfig& b = c.tables[0].resolvers[1];
  EXPECT_EQ(b.unknown, UnknownKeyRule::reject);
  EXPECT_EQ(b.lookup_table, "flux.kinds");
  EXPECT_EQ(b.match, (std::vector<std::string>{"name"}));
  EXPECT_EQ(b.id_column, "id");
  EXPECT_EQ(b.negative_ttl_ms, 30000);
}

TEST_F(ConfigTest, ResolverProblemsNameTheirPath) {
  const auto p = problems(R"({"database": {"url": "x"}, "tables": [{"name": "obs", "resolvers": [
      {"keys": [], "unknown": "maybe", "lookup_table": "t", "lookup_sql": "S", "colour": 1},
      {"column": "a", "keys": ["k", "k"], "nullable_keys": ["z"], "lookup_table": "t", "match": ["x", "y", "z"]},
      {"column": "b", "keys": ["k"], "unknown": "create", "lookup_sql": "S", "id_column": "id"},
      {"column": "b", "keys": ["k"], "lookup_table": "t", "match": ["m"], "id_column": "id",
       "create_values": {"type": "x"}, "cache_size": 0}]}]})");
  auto has = [&](const std::string& s) { return std::find(p.begin(), p.end(), s) != p.end(); };
  const std::string r = "tables[0].resolvers";
  EXPECT_TRUE(has(r + "[0].colour: unknown setting"));
  EXPECT_TRUE(has(r + "[0].column: required"));
  EXPECT_TRUE(has(r + "[0].keys: must name at least one key"));
  EXPECT_TRUE(has(r + "[0].unknown: \"maybe\" is not one of reject, create"));
  EXPECT_TRUE(has(r + "[0]: give either lookup_table (declarative form) or lookup_sql (SQL form), not both"));
  EXPECT_TRUE(has(r + "[1].keys: \"k\" is listed twice"));
  EXPECT_TRUE(has(r + "[1].nullable_keys: \"z\" is not one of keys"));
  EXPECT_TRUE(has(r + "[1].match: 3 columns for 2 keys (one match column per key)"));
  EXPECT_TRUE(has(r + "[1].id_column: required with lookup_table"));
  EXPECT_TRUE(has(r + "[2].id_column: belongs to the declarative form (lookup_table)"));
  EXPECT_TRUE(has(r + "[2].create_sql: required with unknown \"create\" and lookup_sql"));
  EXPECT_TRUE(has(r + "[3].cache_size: 0 is out of range [1, 100000000]"));
  EXPECT_TRUE(has(r + "[3].unknown: create_sql/create_values are only used with unknown \"create\""));
  EXPECT_TRUE(has(r + "[3].column: \"b\" has more than one resolver"));
}

TEST_F(ConfigTest, SpoolAndAckSettings) {
  const Config d = parse_config(kMinimal, "t");
  EXPECT_FALSE(d.spool.enabled);
  EXPECT_EQ(d.spool.dir, "spool");
  EXPECT_EQ(d.spool.max_bytes, uint64_t{1} << 30);
  EXPECT_EQ(d.spool.segment_bytes, uint64_t{64} << 20);
  EXPECT_TRUE(d.spool.fsync);
  EXPECT_EQ(d.http.ack, "committed");
  EXPECT_EQ(d.http.idempotency_ttl_s, 86400);

  const Config c = parse_config(R"({"database": {"url": "x"}, "tables": [{"name": "t"}],
      "http": {"ack": "spooled", "idempotency_ttl_s": 600},
      "spool": {"enabled": true, "dir": "/var/lib/sluice/spool", "max_bytes": 1048576,
                "segment_bytes": 65536, "group_commit_us": 500, "fsync": false}})", "t");
  EXPECT_EQ(c.http.ack, "spooled");
  EXPECT_EQ(c.http.idempotency_ttl_s, 600);
  EXPECT_TRUE(c.spool.enabled);
  EXPECT_EQ(c.spool.dir, "/var/lib/sluice/spool");
  EXPECT_EQ(c.spool.max_bytes, 1048576u);
  EXPECT_EQ(c.spool.segment_bytes, 65536u);
  EXPECT_EQ(c.spool.group_commit_us, 500);
  EXPECT_FALSE(c.spool.fsync);

  const auto p = problems(R"({"database": {"url": "x"}, "tables": [{"name": "t"}],
      "http": {"ack": "spooled"},
      "spool": {"max_bytes": 100000, "segment_bytes": 200000, "bogus": 1}})");
  const std::vector<std::string> expected = {
      "spool.bogus: unknown setting",
      "spool.segment_bytes: larger than spool.max_bytes (100000)",
      "http.ack: \"spooled\" needs the spool (spool.enabled: true)",
  };
  for (const auto& e : expected) EXPECT_NE(std::find(p.begin(), p.end(), e), p.end()) << "missing: " << e;
  EXPECT_EQ(p.size(), expected.size()) << ::testing::PrintToString(p);
  EXPECT_EQ(problems(R"({"database": {"url": "x"}, "tables": [{"name": "t"}], "http": {"ack": "maybe"}})"),
            std::vector<std::string>{"http.ack: \"maybe\" is not one of committed, spooled, accepted"});
}

TEST(SplitHostPort, AcceptsHostPortAndBracketedV6) {
  std::string host;
  uint16_t port = 0;
  EXPECT_TRUE(split_host_port("127.0.0.1:8080", host, port));
  EXPECT_EQ(host, "127.0.0.1");
  EXPECT_EQ(port, 8080);
  EXPECT_TRUE(split_host_port("[::1]:9", host, port));
  EXPECT_EQ(host, "::1");
  EXPECT_EQ(port, 9);
  EXPECT_FALSE(split_host_port("::1:9", host, port));
  EXPECT_FALSE(split_host_port("host:", host, port));
  EXPECT_FALSE(split_host_port("host:70000", host, port));
  EXPECT_FALSE(split_host_port(":80", host, port));
}


TEST_F(ConfigTest, PipelineSinkIsCopyByDefaultAndNullOnRequest) {
  EXPECT_EQ(parse_config(kMinimal, "t").pipeline.sink, "copy");
  const Config c = parse_config(
      R"({"database": {"url": "postgresql://u@h/db"}, "pipeline": {"sink": "null"}, "tables": [{"name": "t"}]})", "t");
  EXPECT_EQ(c.pipeline.sink, "null");
  try {
    parse_config(R"({"database": {"url": "postgresql://u@h/db"}, "pipeline": {"sink": "void"}, "tables": [{"name": "t"}]})",
                 "f.json");
    FAIL() << "expected ConfigError";
  } catch (const ConfigError& e) {
    ASSERT_EQ(e.problems().size(), 1u);
    EXPECT_EQ(e.problems()[0], "pipeline.sink: \"void\" is not one of copy, null");
  }
}

}  // namespace
}  // namespace sluice
