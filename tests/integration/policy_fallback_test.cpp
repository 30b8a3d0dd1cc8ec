// Integration tests of lib/policy's plain-PostgreSQL fallback against the real PostgreSQL 15
// (tests/support/pg_server.h): conversion into a range-partitioned table, partitions ahead and on
// demand, retention that drops whole partitions only, summary tables that match a direct GROUP BY
// after late data, and rows ingested through sluiced landing in the partitions. Each test uses its
// own database with the sql/ migrations applied; the clock is an input (fixed times), except in the
// daemon test.
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/pg_time.h"
#include "pg/connection.h"
#include "pg/migrate.h"
#include "policy/introspect.h"
#include "policy/planner.h"
#include "policy/policy_manager.h"
#include "policy/reconcile.h"
#include "policy/sql_text.h"
#include "support/daemon_process.h"
#include "support/http_client.h"
#include "support/pg_server.h"

namespace sluice::policy {
namespace {

using test::shared_pg_server;

int64_t at(int y, unsigned m, unsigned d, int hh = 0, int mm = 0) {
  return unix_micros_to_pg((days_from_civil(y, m, d) * 86400 + hh * 3600 + mm * 60) * 1000000LL);
}

std::string scalar(pg::Connection& conn, const std::string& sql) {
  pg::Result r = conn.query(sql);
  if (PQntuples(r.get()) == 0 || PQgetisnull(r.get(), 0, 0)) return "<null>";
  return PQgetvalue(r.get(), 0, 0);
}

std::vector<std::string> column(pg::Connection& conn, const std::string& sql) {
  pg::Result r = conn.query(sql);
  std::vector<std::string> out;
  for (int i = 0; i < PQntuples(r.get()); ++i) out.emplace_back(PQgetisnull(r.get(), i, 0) ? "<null>" : PQgetvalue(r.get(), i, 0));
  return out;
}

std::vector<DesiredTable> desired_from(const std::string& tables_json) {
  return desired_from_config(parse_config(R"({"database": {"url": "x"}, "tables": )" + tables_json + "}", "test.json"));
}

std::vector<std::string> partitions(pg::Connection& conn, const std::string& table) {
  return column(conn, "SELECT c.relname || ' ' || pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
                      "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = '" + table + "'::regclass ORDER BY 1");
}

class PolicyFallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::string db;
    for (char c : name) db.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    url_ = shared_pg_server().create_database("pf_" + db.substr(0, 40));
    conn_ = std::make_unique<pg::Connection>(url_, "policy fallback test");
    pg::migrate(*conn_, std::string(SLUICE_SOURCE_DIR) + "/sql");
    prepare_session(*conn_);
  }
  pg::Connection& conn() { return *conn_; }
  ReconcileResult converge(const std::vector<DesiredTable>& desired, int64_t now) {
    ReconcileResult r = reconcile_database(conn(), desired, now);
    EXPECT_EQ(r.before.plan.mode.mode, PolicyMode::plain_postgres);
    EXPECT_EQ(r.report.failed, 0u) << r.report.format() << r.before.plan.format();
    EXPECT_EQ(r.after.plan.pending(), 0u) << r.after.plan.format();
    return r;
  }

  std::string url_;
  std::unique_ptr<pg::Connection> conn_;
};

const char* kDatapoint = R"J([{"name": "datapoint", "timeseries": {"time_column": "timestamp", "chunk_interval": "1 day",
    "retention": {"drop_after": "3 days"}, "partitions_ahead": 3}}])J";

TEST_F(PolicyFallbackTest, EmptyTableIsConvertedWithPartitionsAheadAndTheModeIsReported) {
  const auto desired = desired_from(kDatapoint);
  const int64_t now = at(2024, 6, 10, 12);
  const PlanResult p = plan_database(conn(), desired, now);
  EXPECT_EQ(p.plan.mode.mode, PolicyMode::plain_postgres);
  EXPECT_NE(p.plan.mode.summary.find("TimescaleDB is not installed"), std::string::npos) << p.plan.mode.summary;
  EXPECT_NE(p.plan.mode.summary.find("compression is unavailable"), std::string::npos);
  ASSERT_EQ(p.plan.tables.size(), 1u);
  ASSERT_EQ(p.plan.tables[0].steps.size(), 1u) << p.plan.format();
  EXPECT_FALSE(p.plan.tables[0].steps[0].destructive);  // empty: nothing is rewritten
  EXPECT_NE(p.plan.format().find("convert it into a table range-partitioned on timestamp by 1 day (4 partitions"),
            std::string::npos) << p.plan.format();

  converge(desired, now);
  EXPECT_EQ(scalar(conn(), "SELECT relkind FROM pg_class WHERE oid = 'datapoint'::regclass"), "p");
  EXPECT_EQ(partitions(conn(), "datapoint"),
            (std::vector<std::string>{
                "datapoint_default DEFAULT",
                "datapoint_p20240610 FOR VALUES FROM ('2024-06-10 00:00:00+00') TO ('2024-06-11 00:00:00+00')",
                "datapoint_p20240611 FOR VALUES FROM ('2024-06-11 00:00:00+00') TO ('2024-06-12 00:00:00+00')",
                "datapoint_p20240612 FOR VALUES FROM ('2024-06-12 00:00:00+00') TO ('2024-06-13 00:00:00+00')",
                "datapoint_p20240613 FOR VALUES FROM ('2024-06-13 00:00:00+00') TO ('2024-06-14 00:00:00+00')"}));
  // Indexes and the primary key came along.
  EXPECT_EQ(column(conn(), "SELECT indexname FROM pg_indexes WHERE tablename = 'datapoint' ORDER BY 1"),
            (std::vector<std::string>{"datapoint_pkey", "ix_datapoint_source", "ix_datapoint_source_timestamp",
                                      "ix_datapoint_timestamp"}));
  // A day later one more partition is created ahead; nothing else.
  const PlanResult later = plan_database(conn(), desired, at(2024, 6, 11, 1));
  ASSERT_EQ(later.plan.pending(), 1u) << later.plan.format();
  EXPECT_EQ(later.plan.tables[0].steps[0].sql,
            "CREATE TABLE \"public\".\"datapoint_p20240614\" PARTITION OF \"public\".\"datapoint\" FOR VALUES FROM "
            "('2024-06-14 00:00:00+00') TO ('2024-06-15 00:00:00+00')");
}

TEST_F(PolicyFallbackTest, RowsOutsideThePartitionsAreMovedOnDemandAndRetentionDropsOnlyWholePartitions) {
  const auto desired = desired_from(kDatapoint);
  converge(desired, at(2024, 6, 10, 12));
  // Rows in a prepared partition, and early/late rows that land in DEFAULT.
  conn().exec("INSERT INTO datapoint (\"timestamp\", source, value) VALUES "
              "('2024-06-10 13:00+00', 'a', 1), ('2024-06-05 10:00+00', 'a', 2), ('2024-06-08 23:59+00', 'b', 3), "
              "('2024-06-20 08:00+00', 'c', 4)");
  EXPECT_EQ(scalar(conn(), "SELECT count(*) FROM datapoint_default"), "3");
  const PlanResult p = plan_database(conn(), desired, at(2024, 6, 10, 12));
  EXPECT_NE(p.plan.format().find("wait in the DEFAULT partition: create partition datapoint_p20240608"), std::string::npos)
      << p.plan.format();
  // 06-05 is wholly older than the retention (cutoff 06-07 12:00): deleted, not partitioned.
  EXPECT_NE(p.plan.format().find("DELETE FROM \"public\".\"datapoint_default\" WHERE \"timestamp\" < TIMESTAMPTZ "
                                 "'2024-06-06 00:00:00+00'"),
            std::string::npos)
      << p.plan.format();
  converge(desired, at(2024, 6, 10, 12));
  EXPECT_EQ(scalar(conn(), "SELECT count(*) FROM datapoint_default"), "0");
  EXPECT_EQ(column(conn(), "SELECT tableoid::regclass::text || ' ' || value FROM datapoint ORDER BY value"),
            (std::vector<std::string>{"datapoint_p20240610 1", "datapoint_p20240608 3", "datapoint_p20240620 4"}));

  // Two days later the cutoff is 06-09 00:30: 06-08 is wholly past it (dropped), 06-10 is not.
  const PlanResult later = plan_database(conn(), desired, at(2024, 6, 12, 0, 30));
  EXPECT_NE(later.plan.format().find("partition datapoint_p20240608 (2024-06-08 00:00:00+00 to 2024-06-09 00:00:00+00) is "
                                     "wholly older than the retention of 3 days: drop it"),
            std::string::npos)
      << later.plan.format();
  converge(desired, at(2024, 6, 12, 0, 30));
  EXPECT_EQ(column(conn(), "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                           "WHERE i.inhparent = 'datapoint'::regclass ORDER BY 1"),
            (std::vector<std::string>{"datapoint_default", "datapoint_p20240610", "datapoint_p20240611",
                                      "datapoint_p20240612", "datapoint_p20240613", "datapoint_p20240614",
                                      "datapoint_p20240615", "datapoint_p20240620"}));
  EXPECT_EQ(column(conn(), "SELECT value::text FROM datapoint ORDER BY value"), (std::vector<std::string>{"1", "4"}));
}

TEST_F(PolicyFallbackTest, TableWithRowsViewsAndForeignKeysIsConvertedOnlyWhenAllowed) {
  conn().exec("INSERT INTO series (id, ba_id, type, units) SELECT '00000000-0000-0000-0000-000000000001', id, 'demand', 'MW' "
              "FROM balancing_authorities WHERE code = 'PJM';"
              "INSERT INTO observations (series_id, ts, value) SELECT '00000000-0000-0000-0000-000000000001', "
              "TIMESTAMPTZ '2024-06-01 00:00+00' + n * INTERVAL '1 hour', n FROM generate_series(0, 71) n");
  auto desired = desired_from(R"J([{"name": "observations", "timeseries": {"time_column": "ts", "chunk_interval": "1 day"}}])J");
  const int64_t now = at(2024, 6, 3, 12);
  PlanResult p = plan_database(conn(), desired, now);
  ASSERT_EQ(p.plan.tables[0].steps.size(), 1u) << p.plan.format();
  EXPECT_TRUE(p.plan.tables[0].steps[0].skipped);
  EXPECT_TRUE(p.plan.tables[0].steps[0].destructive);
  EXPECT_NE(p.plan.tables[0].steps[0].skip_reason.find("it holds rows"), std::string::npos);

  desired[0].allow_destructive = true;
  converge(desired, now);
  EXPECT_EQ(scalar(conn(), "SELECT relkind FROM pg_class WHERE oid = 'observations'::regclass"), "p");
  EXPECT_EQ(scalar(conn(), "SELECT count(*) FROM observations"), "72");
  EXPECT_EQ(column(conn(), "SELECT tableoid::regclass::text || ' ' || count(*) FROM observations GROUP BY tableoid ORDER BY 1"),
            (std::vector<std::string>{"observations_p20240601 24", "observations_p20240602 24", "observations_p20240603 24"}));
  // The views were re-created, the key and the foreign key kept.
  EXPECT_EQ(scalar(conn(), "SELECT series_count || ' ' || latest_data_time FROM ba_summary WHERE code = 'PJM'"),
            "1 2024-06-03 23:00:00+00");
  EXPECT_EQ(column(conn(), "SELECT conname || ' ' || contype::text FROM pg_constraint WHERE conrelid = 'observations'::regclass "
                           "ORDER BY 1"),
            (std::vector<std::string>{"observations_pkey p", "observations_series_id_fkey f"}));
  EXPECT_THROW(conn().exec("INSERT INTO observations (series_id, ts, value) VALUES "
                           "('00000000-0000-0000-0000-000000000001', '2024-06-01 00:00+00', 1)"),
               pg::PgError);  // the primary key still holds
}

TEST_F(PolicyFallbackTest, TablesThatCannotBePartitionedAreReportedWithTheReason) {
  conn().exec("CREATE TABLE keyed_by_id (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), "
              "\"timestamp\" timestamptz NOT NULL, v float8)");
  const auto desired = desired_from(R"J([{"name": "keyed_by_id", "timeseries": {"time_column": "timestamp",
      "chunk_interval": "1 month", "retention": {"drop_after": "2 years"}}}])J");
  const PlanResult p = plan_database(conn(), desired, at(2024, 6, 3));
  ASSERT_EQ(p.plan.tables[0].steps.size(), 1u) << p.plan.format();
  EXPECT_TRUE(p.plan.tables[0].steps[0].skipped);
  EXPECT_NE(p.plan.tables[0].steps[0].skip_reason.find(
                "unique index keyed_by_id_pkey (id) does not include the partition column timestamp"),
            std::string::npos)
      << p.plan.tables[0].steps[0].skip_reason;
  const ReconcileResult r = reconcile_database(conn(), desired, at(2024, 6, 3));
  EXPECT_EQ(r.report.applied, 0u);
  EXPECT_EQ(scalar(conn(), "SELECT relkind FROM pg_class WHERE oid = 'keyed_by_id'::regclass"), "r");
}

TEST_F(PolicyFallbackTest, SummaryTablesMatchADirectGroupByAfterLateData) {
  const auto desired = desired_from(R"J([{"name": "sensor_readings", "timeseries": {"time_column": "timestamp",
      "chunk_interval": "1 day", "partitions_ahead": 2,
      "continuous_aggregates": [{"name": "sensor_readings_summary_hourly", "bucket_width": "1 hour", "bucket_column": "hour",
        "group_by": ["sensor_id"], "aggregates": [{"avg_value": "avg(value)"}, {"max_value": "max(value)"},
        {"min_value": "min(value)"}, {"reading_count": "count(*)"}],
        "refresh_policies": [{"start_offset": "3 hours", "end_offset": "1 hour", "schedule_interval": "1 hour"}]}]}}])J");
  conn().exec("INSERT INTO sensors (sensor_id) VALUES ('s1'), ('s2')");
  PolicyManagerOptions opts;
  opts.database_url = url_;
  opts.desired = desired;
  opts.settings.late_refresh_min_interval_s = 0;
  PolicyManager manager(opts);
  const int64_t now = at(2024, 6, 10, 12);
  const ApplyReport rep = manager.run_once(conn(), now);
  EXPECT_EQ(rep.failed, 0u) << rep.format();
  EXPECT_EQ(scalar(conn(), "SELECT obj_description('sensor_readings_summary_hourly'::regclass, 'pg_class') LIKE "
                           "'sluice:definition=%'"),
            "t");

  const std::string diff =
      "SELECT count(*) FROM ((SELECT hour, sensor_id, round(avg_value::numeric, 6), max_value, min_value, reading_count "
      "FROM sensor_readings_summary_hourly EXCEPT SELECT date_trunc('hour', \"timestamp\"), sensor_id, "
      "round(avg(value)::numeric, 6), max(value), min(value), count(*) FROM sensor_readings GROUP BY 1, 2) UNION ALL "
      "(SELECT date_trunc('hour', \"timestamp\"), sensor_id, round(avg(value)::numeric, 6), max(value), min(value), count(*) "
      "FROM sensor_readings GROUP BY 1, 2 EXCEPT SELECT hour, sensor_id, round(avg_value::numeric, 6), max_value, "
      "min_value, reading_count FROM sensor_readings_summary_hourly)) d";

  // Current rows.
  conn().exec("INSERT INTO sensor_readings (\"timestamp\", sensor_id, value) SELECT TIMESTAMPTZ '2024-06-10 09:00+00' + "
              "n * INTERVAL '7 minutes', CASE WHEN n % 2 = 0 THEN 's1' ELSE 's2' END, n * 1.5 FROM generate_series(0, 20) n");
  manager.note_committed_range("sensor_readings", at(2024, 6, 10, 9), at(2024, 6, 10, 11, 20));
  manager.process_late_data(conn(), now, true);
  EXPECT_EQ(scalar(conn(), diff), "0");
  EXPECT_EQ(scalar(conn(), "SELECT count(*) FROM sensor_readings_summary_hourly"), "6");

  // Late rows, three days back (they land in DEFAULT; the manager refreshes their buckets), and a
  // row added to an existing bucket.
  conn().exec("INSERT INTO sensor_readings (\"timestamp\", sensor_id, value) VALUES ('2024-06-07 05:10+00', 's1', 100), "
              "('2024-06-07 05:50+00', 's1', 300), ('2024-06-07 06:10+00', 's2', 7), ('2024-06-10 09:01+00', 's1', -50)");
  manager.note_committed_range("sensor_readings", at(2024, 6, 7, 5, 10), at(2024, 6, 7, 6, 10));
  manager.note_committed_range("sensor_readings", at(2024, 6, 10, 9, 1), at(2024, 6, 10, 9, 1));
  manager.process_late_data(conn(), now, true);
  EXPECT_EQ(scalar(conn(), diff), "0");
  EXPECT_EQ(scalar(conn(), "SELECT avg_value || ' ' || reading_count FROM sensor_readings_summary_hourly "
                           "WHERE hour = '2024-06-07 05:00+00' AND sensor_id = 's1'"),
            "200 2");
  EXPECT_EQ(scalar(conn(), "SELECT min_value FROM sensor_readings_summary_hourly "
                           "WHERE hour = '2024-06-10 09:00+00' AND sensor_id = 's1'"),
            "-50");
  const PolicyStatus st = manager.status();
  EXPECT_EQ(st.mode, PolicyMode::plain_postgres);
  EXPECT_EQ(st.refreshes.at("sensor_readings_summary_hourly"), 2);
  EXPECT_EQ(st.default_partition_rows.at("sensor_readings"), 0);

  // The late rows wait in DEFAULT until the next reconcile gives them a partition.
  EXPECT_EQ(scalar(conn(), "SELECT count(*) FROM sensor_readings_default"), "3");
  manager.run_once(conn(), now);
  EXPECT_EQ(scalar(conn(), "SELECT count(*) FROM sensor_readings_default"), "0");
  EXPECT_EQ(scalar(conn(), "SELECT count(*) FROM sensor_readings_p20240607"), "3");
  EXPECT_EQ(scalar(conn(), diff), "0");

  // Metrics.
  metrics::Families fams;
  manager.collect(fams);
  bool found = false;
  for (const auto& f : fams) {
    if (f.name != "sluice_policy_mode") continue;
    for (const auto& m : f.metric) {
      if (m.label.size() == 1 && m.label[0].value == "postgresql") {
        EXPECT_EQ(m.gauge.value, 1.0);
        found = true;
      }
    }
  }
  EXPECT_TRUE(found);
}

TEST_F(PolicyFallbackTest, RowsIngestedThroughSluicedLandInTheManagedPartitions) {
  const int admin = test::free_tcp_port();
  const int http = test::free_tcp_port();
  const std::string config = R"({"database": {"url": "unused"}, "http": {"listen": "127.0.0.1:)" + std::to_string(http) +
                             R"("}, "admin": {"listen": "127.0.0.1:)" + std::to_string(admin) +
                             R"("}, "policy": {"reconcile_interval": "1 second"},
      "tables": [{"name": "datapoint", "timeseries": {"time_column": "timestamp", "chunk_interval": "1 day",
        "retention": {"drop_after": "30 days"}, "partitions_ahead": 2}}]})";
  test::DaemonProcess d;
  d.start(config, url_, admin);
  auto wait_for = [&](const std::string& sql, const std::string& want) {
    std::string got;
    for (int i = 0; i < 150; ++i) {
      got = scalar(conn(), sql);
      if (got == want) return got;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return got;
  };
  EXPECT_EQ(wait_for("SELECT relkind FROM pg_class WHERE oid = 'datapoint'::regclass", "p"), "p") << d.log();

  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const std::string body = "[{\"timestamp\": " + std::to_string(now_s) + ", \"source\": \"now\", \"value\": 1}, "
                           "{\"timestamp\": " + std::to_string(now_s - 10 * 86400) + ", \"source\": \"late\", \"value\": 2}, "
                           "{\"timestamp\": " + std::to_string(now_s - 40 * 86400) + ", \"source\": \"expired\", \"value\": 3}]";
  test::HttpClient client("127.0.0.1", http);
  const auto res = client.post("/v1/write/datapoint", body);
  EXPECT_EQ(res.status, 200) << res.body;
  // The current row lands in its prepared partition at once; the late one is moved out of DEFAULT
  // into a partition of its own by the next reconcile; the one past retention is deleted.
  EXPECT_EQ(wait_for("SELECT count(*) FROM datapoint_default", "0"), "0") << d.log();
  EXPECT_EQ(column(conn(), "SELECT source || ' ' || (tableoid::regclass::text LIKE 'datapoint_p%') FROM datapoint ORDER BY value"),
            (std::vector<std::string>{"now true", "late true"}));
  const std::string metrics = test::http_get(admin, "/metrics").body;
  EXPECT_NE(metrics.find("sluice_policy_mode{mode=\"postgresql\"} 1"), std::string::npos) << metrics;
  EXPECT_NE(metrics.find("sluice_policy_default_partition_rows{table=\"datapoint\"} 0"), std::string::npos);
  EXPECT_EQ(d.stop(), 0) << d.log();
}

// The writers report every committed time range to the policy manager: late rows posted over HTTP
// refresh the summary table's buckets without waiting for its schedule.
TEST_F(PolicyFallbackTest, LateRowsPostedThroughSluicedRefreshTheSummaryTable) {
  const int admin = test::free_tcp_port();
  const int http = test::free_tcp_port();
  const std::string config = R"({"database": {"url": "unused"}, "http": {"listen": "127.0.0.1:)" + std::to_string(http) +
                             R"("}, "admin": {"listen": "127.0.0.1:)" + std::to_string(admin) +
                             R"J("}, "policy": {"reconcile_interval": "1 hour", "late_refresh_min_interval": "0 seconds"},
      "tables": [{"name": "datapoint", "timeseries": {"time_column": "timestamp", "chunk_interval": "1 day",
        "partitions_ahead": 2, "continuous_aggregates": [{"name": "datapoint_hourly", "bucket_width": "1 hour",
          "bucket_column": "hour", "group_by": ["source"], "aggregates": [{"total": "sum(value)"}, {"n": "count(*)"}],
          "refresh_policies": [{"start_offset": "3 hours", "end_offset": "1 hour", "schedule_interval": "1 day"}]}]}}]})J";
  test::DaemonProcess d;
  d.start(config, url_, admin);
  auto wait_for = [&](const std::string& sql, const std::string& want) {
    std::string got;
    for (int i = 0; i < 150; ++i) {
      got = scalar(conn(), sql);
      if (got == want) return got;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return got;
  };
  ASSERT_EQ(wait_for("SELECT count(*) FROM pg_class WHERE relname = 'datapoint_hourly'", "1"), "1") << d.log();

  const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  const long long day_ago = (now_s - 86400) / 3600 * 3600;  // an hour bucket far outside the refresh window
  std::string body = "[";
  for (int i = 0; i < 6; ++i) {
    if (i) body += ',';
    body += "{\"timestamp\": " + std::to_string(day_ago + i * 600) + ", \"source\": \"late-" + std::to_string(i % 2) +
            "\", \"value\": " + std::to_string(i + 1) + "}";
  }
  body += "]";
  test::HttpClient client("127.0.0.1", http);
  const auto res = client.post("/v1/write/datapoint", body);
  ASSERT_EQ(res.status, 200) << res.body;
  const std::string diff =
      "SELECT count(*) FROM ((SELECT hour, source, total, n FROM datapoint_hourly EXCEPT "
      "SELECT date_trunc('hour', \"timestamp\"), source, sum(value), count(*) FROM datapoint GROUP BY 1, 2) UNION ALL "
      "(SELECT date_trunc('hour', \"timestamp\"), source, sum(value), count(*) FROM datapoint GROUP BY 1, 2 EXCEPT "
      "SELECT hour, source, total, n FROM datapoint_hourly)) d";
  EXPECT_EQ(wait_for("SELECT count(*) FROM datapoint_hourly", "2"), "2") << d.log();
  EXPECT_EQ(scalar(conn(), diff), "0");
  EXPECT_EQ(scalar(conn(), "SELECT total || ' ' || n FROM datapoint_hourly WHERE source = 'late-0'"), "9 3");
  EXPECT_EQ(d.stop(), 0) << d.log();
}

}  // namespace
}  // namespace sluice::policy
