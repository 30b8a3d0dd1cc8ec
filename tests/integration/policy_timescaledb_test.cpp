// Integration tests of lib/policy against TimescaleDB 2.23 — the npm fixture in
// tests/fixtures/timescaledb (PGlite over the wire protocol; see DEVELOPERS.md and
// policy_tsdb_fixture.h). The reference schemas come from sql/ and the desired state from the
// shipped presets in config/presets/. Skips (saying why) when node is not installed.
#include <gtest/gtest.h>

#include <memory>
#include <string>
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
#include "policy_tsdb_fixture.h"

namespace sluice::policy {
namespace {

const std::vector<std::string> kPresets = {"grid", "predictive_maintenance", "flux", "datapoint", "energy_forecast"};

Config load_preset(const std::string& name) {
  return load_config(std::string(SLUICE_SOURCE_DIR) + "/config/presets/" + name + ".json");
}

std::vector<DesiredTable> all_presets(bool allow_destructive = false) {
  std::vector<DesiredTable> out;
  for (const auto& p : kPresets) {
    for (auto& d : desired_from_config(load_preset(p))) {
      d.allow_destructive = allow_destructive;
      out.push_back(std::move(d));
    }
  }
  return out;
}

DesiredTable* find_table(std::vector<DesiredTable>& v, const std::string& name) {
  for (auto& d : v) {
    if (d.config_name == name) return &d;
  }
  return nullptr;
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

void apply_migrations(pg::Connection& conn) {
  for (const auto& f : pg::load_migrations(std::string(SLUICE_SOURCE_DIR) + "/sql")) conn.exec(f.sql);
}

const Step* find_step(const Plan& plan, const std::string& table, const std::string& needle) {
  for (const auto& t : plan.tables) {
    if (t.table != table) continue;
    for (const auto& s : t.steps) {
      if (s.description.find(needle) != std::string::npos) return &s;
    }
  }
  return nullptr;
}

// One fixture server for the suite: each test starts by converging the database to the presets.
class PolicyTimescaleTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = std::make_unique<test::TsdbServer>();
    skip_reason_ = server_->start();
    if (!skip_reason_.empty()) return;
    conn_ = std::make_unique<pg::Connection>(server_->url(), "policy test");
    prepare_session(*conn_);
    apply_migrations(*conn_);
  }
  static void TearDownTestSuite() {
    conn_.reset();
    server_.reset();
  }
  void SetUp() override {
    if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
  }
  pg::Connection& conn() { return *conn_; }

  ReconcileResult converge(const std::vector<DesiredTable>& desired) {
    ReconcileResult r = reconcile_database(conn(), desired, now_pg_micros());
    EXPECT_EQ(r.report.failed, 0u) << r.report.format();
    EXPECT_EQ(r.after.plan.pending(), 0u) << r.after.plan.format();
    return r;
  }
  Plan plan(const std::vector<DesiredTable>& desired) { return plan_database(conn(), desired, now_pg_micros()).plan; }

  static std::unique_ptr<test::TsdbServer> server_;
  static std::unique_ptr<pg::Connection> conn_;
  static std::string skip_reason_;
};
std::unique_ptr<test::TsdbServer> PolicyTimescaleTest::server_;
std::unique_ptr<pg::Connection> PolicyTimescaleTest::conn_;
std::string PolicyTimescaleTest::skip_reason_;

TEST_F(PolicyTimescaleTest, ApplyOnAnEmptyDatabaseCreatesEveryPresetThenSecondApplyIsANoOp) {
  const auto desired = all_presets();
  const ReconcileResult first = reconcile_database(conn(), desired, now_pg_micros());
  EXPECT_EQ(first.before.plan.mode.mode, PolicyMode::timescaledb) << first.before.plan.mode.summary;
  EXPECT_EQ(first.report.failed, 0u) << first.report.format();
  EXPECT_GT(first.report.applied, 15u) << first.report.format();
  EXPECT_EQ(first.after.plan.pending(), 0u) << first.after.plan.format();

  EXPECT_EQ(column(conn(), "SELECT hypertable_schema || '.' || hypertable_name FROM timescaledb_information.hypertables "
                           "WHERE hypertable_schema IN ('public', 'flux') ORDER BY 1"),
            (std::vector<std::string>{"flux.market_data", "flux.mg_bess_readings", "flux.mg_meter_readings",
                                      "public.datapoint", "public.energy_consumption", "public.observations",
                                      "public.sensor_readings", "public.weather_data"}));
  EXPECT_EQ(scalar(conn(), "SELECT time_interval::text FROM timescaledb_information.dimensions WHERE hypertable_name = 'observations'"),
            "1 day");
  EXPECT_EQ(scalar(conn(), "SELECT time_interval::text FROM timescaledb_information.dimensions WHERE hypertable_name = 'datapoint'"),
            "7 days");
  // Compression settings and policies.
  EXPECT_EQ(column(conn(), "SELECT hypertable_name FROM timescaledb_information.hypertables WHERE compression_enabled ORDER BY 1"),
            (std::vector<std::string>{"datapoint", "market_data", "mg_bess_readings", "mg_meter_readings", "observations",
                                      "sensor_readings"}));
  EXPECT_EQ(scalar(conn(), "SELECT segmentby || ' | ' || orderby FROM timescaledb_information.hypertable_compression_settings "
                           "WHERE hypertable = 'datapoint'::regclass"),
            "source | \"timestamp\" DESC");
  EXPECT_EQ(column(conn(), "SELECT hypertable_name || ' ' || (config->>'compress_after') FROM timescaledb_information.jobs "
                           "WHERE proc_name = 'policy_compression' ORDER BY 1"),
            (std::vector<std::string>{"datapoint 1 mon", "market_data 7 days", "mg_bess_readings 7 days",
                                      "mg_meter_readings 7 days", "observations 7 days", "sensor_readings 7 days"}));
  EXPECT_EQ(column(conn(), "SELECT hypertable_name || ' ' || (config->>'drop_after') FROM timescaledb_information.jobs "
                           "WHERE proc_name = 'policy_retention' ORDER BY 1"),
            (std::vector<std::string>{"datapoint 1 year", "energy_consumption 2 years", "observations 5 years",
                                      "sensor_readings 180 days", "weather_data 2 years"}));
  // Continuous aggregates and their refresh policies.
  EXPECT_EQ(column(conn(), "SELECT view_name || ' on ' || hypertable_name || ' ' || materialized_only "
                           "FROM timescaledb_information.continuous_aggregates ORDER BY 1"),
            (std::vector<std::string>{"daily_aggregates on observations true", "hourly_aggregates on observations true",
                                      "hourly_consumption on energy_consumption true",
                                      "sensor_readings_summary_hourly on sensor_readings true"}));
  EXPECT_EQ(column(conn(), "SELECT hypertable_name || ' ' || (config->>'start_offset') || ' ' || (config->>'end_offset') || "
                           "' ' || schedule_interval::text FROM timescaledb_information.jobs "
                           "WHERE proc_name = 'policy_refresh_continuous_aggregate' ORDER BY 1"),
            (std::vector<std::string>{"daily_aggregates 7 days 1 day 1 day", "hourly_aggregates 03:00:00 01:00:00 01:00:00",
                                      "hourly_consumption 30 days 01:00:00 01:00:00",
                                      "sensor_readings_summary_hourly 02:30:00 00:30:00 00:30:00"}));
  EXPECT_EQ(scalar(conn(), "SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_datapoint_source_timestamp'"), "1");

  // What could not be applied is reported with its reason.
  const Step* counter = find_step(first.after.plan, "flux.mg_meter_readings", "mg_meter_readings_5m_intermediate");
  ASSERT_NE(counter, nullptr) << first.after.plan.format();
  EXPECT_TRUE(counter->skipped);
  EXPECT_NE(counter->skip_reason.find("timescaledb_toolkit"), std::string::npos);

  // Second apply: nothing to do, and it says so.
  const ReconcileResult second = reconcile_database(conn(), desired, now_pg_micros());
  EXPECT_EQ(second.report.applied, 0u);
  EXPECT_EQ(second.report.failed, 0u);
  EXPECT_NE(second.report.format().find("no changes"), std::string::npos) << second.report.format();
  EXPECT_NE(second.before.plan.format().find("no changes"), std::string::npos);
}

TEST_F(PolicyTimescaleTest, RemovedRetentionPolicyIsShownThenRestored) {
  const auto desired = all_presets();
  converge(desired);
  conn().exec("SELECT remove_retention_policy('observations')");
  const Plan p = plan(desired);
  ASSERT_EQ(p.pending(), 1u) << p.format();
  const Step* s = find_step(p, "observations", "retention policy is missing");
  ASSERT_NE(s, nullptr) << p.format();
  EXPECT_EQ(s->sql, "SELECT add_retention_policy('\"public\".\"observations\"', INTERVAL '5 years')");
  EXPECT_NE(p.format().find("SELECT add_retention_policy"), std::string::npos);
  converge(desired);
  EXPECT_EQ(scalar(conn(), "SELECT config->>'drop_after' FROM timescaledb_information.jobs "
                           "WHERE proc_name = 'policy_retention' AND hypertable_name = 'observations'"),
            "5 years");
}

TEST_F(PolicyTimescaleTest, ChangedCompressAfterIsShownThenRestored) {
  const auto desired = all_presets();
  converge(desired);
  conn().exec("SELECT remove_compression_policy('datapoint'); SELECT add_compression_policy('datapoint', INTERVAL '3 days')");
  const Plan p = plan(desired);
  ASSERT_EQ(p.pending(), 1u) << p.format();
  const Step* s = find_step(p, "datapoint", "compresses after 3 days, config says 1 month");
  ASSERT_NE(s, nullptr) << p.format();
  EXPECT_EQ(s->sql,
            "SELECT remove_compression_policy('\"public\".\"datapoint\"', if_exists => true);\n"
            "SELECT add_compression_policy('\"public\".\"datapoint\"', INTERVAL '1 month')");
  converge(desired);
  EXPECT_EQ(scalar(conn(), "SELECT config->>'compress_after' FROM timescaledb_information.jobs "
                           "WHERE proc_name = 'policy_compression' AND hypertable_name = 'datapoint'"),
            "1 mon");
}

TEST_F(PolicyTimescaleTest, ChangedChunkIntervalIsShownThenRestored) {
  const auto desired = all_presets();
  converge(desired);
  conn().exec("SELECT set_chunk_time_interval('observations', INTERVAL '2 days')");
  const Plan p = plan(desired);
  ASSERT_EQ(p.pending(), 1u) << p.format();
  const Step* s = find_step(p, "observations", "chunk interval is 2 days, config says 1 day");
  ASSERT_NE(s, nullptr) << p.format();
  EXPECT_EQ(s->sql, "SELECT set_chunk_time_interval('\"public\".\"observations\"', INTERVAL '1 day')");
  converge(desired);
  EXPECT_EQ(scalar(conn(), "SELECT time_interval::text FROM timescaledb_information.dimensions WHERE hypertable_name = 'observations'"),
            "1 day");
}

TEST_F(PolicyTimescaleTest, ChangedAggregatePolicyIsShownThenRestored) {
  const auto desired = all_presets();
  converge(desired);
  // Schedule only: fixed with alter_job.
  const std::string job = scalar(conn(), "SELECT job_id FROM timescaledb_information.jobs WHERE hypertable_name = 'hourly_aggregates'");
  conn().exec("SELECT alter_job(" + job + ", schedule_interval => INTERVAL '6 hours')");
  Plan p = plan(desired);
  ASSERT_EQ(p.pending(), 1u) << p.format();
  const Step* s = find_step(p, "observations", "runs every 6 hours, config says 1 hour");
  ASSERT_NE(s, nullptr) << p.format();
  EXPECT_EQ(s->sql, "SELECT alter_job(" + job + ", schedule_interval => INTERVAL '1 hour')");
  converge(desired);
  // Offsets: the policy is removed and added again.
  conn().exec("SELECT remove_continuous_aggregate_policy('sensor_readings_summary_hourly'); "
              "SELECT add_continuous_aggregate_policy('sensor_readings_summary_hourly', start_offset => INTERVAL '1 day', "
              "end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes')");
  p = plan(desired);
  ASSERT_EQ(p.pending(), 1u) << p.format();
  s = find_step(p, "sensor_readings", "config says window 2 hours 30 minutes → 30 minutes every 30 minutes");
  ASSERT_NE(s, nullptr) << p.format();
  EXPECT_EQ(s->sql,
            "SELECT remove_continuous_aggregate_policy('\"public\".\"sensor_readings_summary_hourly\"', if_exists => true);\n"
            "SELECT add_continuous_aggregate_policy('\"public\".\"sensor_readings_summary_hourly\"', start_offset => "
            "INTERVAL '2 hours 30 minutes', end_offset => INTERVAL '30 minutes', schedule_interval => INTERVAL '30 minutes')");
  converge(desired);
  EXPECT_EQ(scalar(conn(), "SELECT (config->>'start_offset') || ' ' || (config->>'end_offset') FROM timescaledb_information.jobs "
                           "WHERE hypertable_name = 'sensor_readings_summary_hourly'"),
            "02:30:00 00:30:00");
}

TEST_F(PolicyTimescaleTest, ShorterRetentionNeedsAllowDestructive) {
  auto desired = all_presets();
  converge(desired);
  // The database keeps 10 years; the config says 5: shortening deletes data.
  conn().exec("SELECT remove_retention_policy('observations'); SELECT add_retention_policy('observations', INTERVAL '10 years')");
  Plan p = plan(desired);
  const Step* s = find_step(p, "observations", "drops chunks older than 10 years, config says 5 years");
  ASSERT_NE(s, nullptr) << p.format();
  EXPECT_TRUE(s->destructive);
  EXPECT_TRUE(s->skipped);
  EXPECT_EQ(p.pending(), 0u);
  ReconcileResult r = reconcile_database(conn(), desired, now_pg_micros());
  EXPECT_EQ(r.report.applied, 0u);
  EXPECT_EQ(scalar(conn(), "SELECT config->>'drop_after' FROM timescaledb_information.jobs "
                           "WHERE proc_name = 'policy_retention' AND hypertable_name = 'observations'"),
            "10 years");
  find_table(desired, "observations")->allow_destructive = true;
  converge(desired);
  EXPECT_EQ(scalar(conn(), "SELECT config->>'drop_after' FROM timescaledb_information.jobs "
                           "WHERE proc_name = 'policy_retention' AND hypertable_name = 'observations'"),
            "5 years");
}

TEST_F(PolicyTimescaleTest, MaterializedOnlyDriftAndChangedDefinition) {
  auto desired = all_presets();
  converge(desired);
  conn().exec("ALTER MATERIALIZED VIEW daily_aggregates SET (timescaledb.materialized_only = false)");
  Plan p = plan(desired);
  const Step* s = find_step(p, "observations", "daily_aggregates is real-time, config says materialized-only");
  ASSERT_NE(s, nullptr) << p.format();
  converge(desired);
  // A changed definition of an aggregate sluice created: drop + create, destructive.
  auto* obs = find_table(desired, "observations");
  obs->ts.continuous_aggregates[1].aggregates.push_back({"max_ts", "max(ts)"});
  p = plan(desired);
  s = find_step(p, "observations", "definition of continuous aggregate public.daily_aggregates changed");
  ASSERT_NE(s, nullptr) << p.format();
  EXPECT_TRUE(s->skipped);
  obs->allow_destructive = true;
  converge(desired);
  EXPECT_EQ(scalar(conn(), "SELECT count(*) FROM information_schema.columns WHERE table_name = 'daily_aggregates' "
                           "AND column_name = 'max_ts'"),
            "1");
  EXPECT_EQ(scalar(conn(), "SELECT count(*) FROM timescaledb_information.jobs WHERE hypertable_name = 'daily_aggregates'"), "1");
}

TEST_F(PolicyTimescaleTest, LateRowsOlderThanTheRefreshWindowRefreshTheAggregate) {
  const auto desired = all_presets();
  converge(desired);
  PolicyManagerOptions opts;
  opts.desired = desired;
  opts.settings.late_refresh_min_interval_s = 0;
  PolicyManager manager(opts);
  const int64_t now = now_pg_micros();
  manager.run_once(conn(), now);
  conn().exec("INSERT INTO series (id, ba_id, type, units) SELECT '00000000-0000-0000-0000-0000000000aa', id, 'co2', 'g/kWh' "
              "FROM balancing_authorities WHERE code = 'SPP' ON CONFLICT DO NOTHING");
  // Three days ago: older than hourly_aggregates' window (3 hours), inside daily_aggregates' (1 week).
  const int64_t t0 = bucket_floor(now - 3LL * 86400 * 1000000, Interval{0, 0, 3600LL * 1000000});
  conn().exec("INSERT INTO observations (series_id, ts, value) SELECT '00000000-0000-0000-0000-0000000000aa', " +
              timestamptz_literal(t0) + " + n * INTERVAL '10 minutes', n FROM generate_series(0, 11) n");
  manager.note_committed_range("observations", t0, t0 + 110LL * 60 * 1000000);
  manager.process_late_data(conn(), now, true);
  EXPECT_EQ(column(conn(), "SELECT data_points || ' ' || avg_value FROM hourly_aggregates WHERE series_id = "
                           "'00000000-0000-0000-0000-0000000000aa' ORDER BY hour"),
            (std::vector<std::string>{"6 2.5000000000000000", "6 8.5000000000000000"}));
  EXPECT_EQ(scalar(conn(), "SELECT count(*) FROM daily_aggregates"), "0");  // its own policy covers 3 days ago
  EXPECT_EQ(manager.status().refreshes.at("hourly_aggregates"), 1);
  EXPECT_EQ(manager.status().refreshes.count("daily_aggregates"), 0u);
}

TEST_F(PolicyTimescaleTest, JobHealthIsExportedAndDriveJobsRunsJobsNoWorkerRan) {
  const auto desired = all_presets();
  converge(desired);
  PolicyManagerOptions opts;
  opts.desired = desired;
  opts.settings.drive_jobs = true;
  PolicyManager manager(opts);
  const int64_t now = now_pg_micros();
  manager.run_once(conn(), now);
  PolicyStatus st = manager.status();
  ASSERT_EQ(st.jobs.size(), 15u);  // 6 compression + 5 retention + 4 refresh
  EXPECT_EQ(st.jobs_driven.at("observations|retention"), 1);
  EXPECT_EQ(st.jobs_driven.at("hourly_aggregates|refresh"), 1);
  EXPECT_EQ(st.job_drive_failures, 0);
  // Not again before a schedule interval has passed.
  manager.run_once(conn(), now + 1000000);
  EXPECT_EQ(manager.status().jobs_driven.at("observations|retention"), 1);
  manager.run_once(conn(), now + 25LL * 3600 * 1000000);
  EXPECT_EQ(manager.status().jobs_driven.at("observations|retention"), 2);

  metrics::Families fams;
  manager.collect(fams);
  std::vector<std::string> names;
  for (const auto& f : fams) {
    if (f.metric.empty()) continue;
    if (f.name == "sluice_policy_job_failures_total") {
      bool seen = false;
      for (const auto& m : f.metric) {
        std::map<std::string, std::string> l;
        for (const auto& p : m.label) l[p.name] = p.value;
        if (l["table"] == "datapoint" && l["kind"] == "compression") seen = true;
      }
      EXPECT_TRUE(seen);
    }
    names.push_back(f.name);
  }
  for (const char* want : {"sluice_policy_job_last_success_timestamp_seconds", "sluice_policy_job_failures_total",
                           "sluice_policy_job_next_start_timestamp_seconds", "sluice_policy_jobs_driven_total"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), want), names.end()) << want;
  }
}

// A server started with timescaledb.license = 'apache'. This PGlite build refuses the community
// features but still reads current_setting('timescaledb.license') as 'timescale', so sluice cannot
// tell the mode in advance here (the apache-mode planning is covered by the unit tests over a
// Detection with license "apache"). What this shows: every refusal is reported per step with the
// database's reason, the other steps and tables go on, nothing crashes, the connection stays usable.
TEST(PolicyTimescaleApache, ApacheLicensedServerRefusalsAreReportedPerStep) {
  test::TsdbServer server;
  if (auto why = server.start({"--license", "apache"}); !why.empty()) GTEST_SKIP() << why;
  pg::Connection conn(server.url(), "policy test");
  prepare_session(conn);
  apply_migrations(conn);
  const auto desired = all_presets();
  const ReconcileResult r = reconcile_database(conn, desired, now_pg_micros());
  // "enable compression" of each compressed table, "add retention policy" of the two energy tables
  EXPECT_EQ(r.report.failed, 8u) << r.report.format();
  for (const auto& res : r.report.results) {
    if (res.ok) continue;
    EXPECT_TRUE(res.description.find("compression is off") != std::string::npos ||
                res.description.find("retention policy is missing") != std::string::npos)
        << res.description;
    EXPECT_NE(res.error.find("not supported under the current"), std::string::npos) << res.error;
  }
  EXPECT_NE(r.report.format().find("FAILED   datapoint: compression is off"), std::string::npos) << r.report.format();
  EXPECT_EQ(scalar(conn, "SELECT count(*) FROM timescaledb_information.hypertables"), "8");
  EXPECT_EQ(scalar(conn, "SELECT time_interval::text FROM timescaledb_information.dimensions WHERE hypertable_name = 'datapoint'"),
            "7 days");
  EXPECT_TRUE(conn.ok());
}

// A server without the extension: the plain-PostgreSQL fallback is chosen and said so.
TEST(PolicyTimescaleMissing, MissingExtensionIsReportedAndTheFallbackPlanned) {
  test::TsdbServer server;
  if (auto why = server.start({"--no-timescaledb"}); !why.empty()) GTEST_SKIP() << why;
  pg::Connection conn(server.url(), "policy test");
  prepare_session(conn);
  apply_migrations(conn);
  const PlanResult r = plan_database(conn, all_presets(), now_pg_micros());
  EXPECT_FALSE(r.detection.timescaledb_installed);
  EXPECT_EQ(r.plan.mode.mode, PolicyMode::plain_postgres);
  EXPECT_NE(r.plan.mode.summary.find("TimescaleDB is not installed"), std::string::npos) << r.plan.mode.summary;
  EXPECT_NE(find_step(r.plan, "datapoint", "convert it into a table range-partitioned on timestamp by 7 days"), nullptr)
      << r.plan.format();
}

}  // namespace
}  // namespace sluice::policy
