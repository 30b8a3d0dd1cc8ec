// policy/planner.h: exact plans for given actual states — empty, matching, drifted, partially
// applied — in every mode, and the mode report of fake detection results (apache license, missing
// extension, too old a TimescaleDB). No database: the planner is a pure function.
#include "policy/planner.h"

#include <gtest/gtest.h>

#include "config/config.h"
#include "core/pg_time.h"
#include "policy/sql_text.h"

namespace sluice::policy {
namespace {

int64_t at(int y, unsigned m, unsigned d, int hh = 0) {
  return unix_micros_to_pg((days_from_civil(y, m, d) * 86400 + hh * 3600) * 1000000LL);
}

Interval iv(const std::string& s) {
  Interval out;
  EXPECT_TRUE(parse_interval(s, out)) << s;
  return out;
}

DesiredTable desired(const std::string& table_json) {
  auto v = desired_from_config(parse_config(R"J({"database": {"url": "x"}, "tables": [)J" + table_json + "]}", "t.json"));
  EXPECT_EQ(v.size(), 1u);
  return v.at(0);
}

// datapoint as the reference document specifies it.
const char* kDatapoint = R"J({"name": "datapoint", "timeseries": {"time_column": "timestamp", "chunk_interval": "1 week",
  "compression": {"enabled": true, "after": "1 month", "segment_by": ["source"], "order_by": ["timestamp DESC"]},
  "retention": {"drop_after": "1 year"}, "indexes": [{"columns": ["source", "timestamp"]}]}})J";

// An aggregate with one refresh policy.
const char* kObservations = R"J({"name": "observations", "timeseries": {"time_column": "ts", "chunk_interval": "1 day",
  "continuous_aggregates": [{"name": "hourly", "bucket_width": "1 hour", "bucket_column": "hour", "group_by": ["series_id"],
    "aggregates": [{"avg_value": "avg(value)"}], "where": "quality_flag = 'good'",
    "refresh_policies": [{"start_offset": "3 hours", "end_offset": "1 hour", "schedule_interval": "1 hour"}]}]}})J";

Detection timescale(const std::string& version = "2.13.1", const std::string& license = "timescale") {
  Detection d;
  d.server_version = "15.8";
  d.timescaledb_installed = true;
  d.timescaledb_version = version;
  d.license = license;
  d.extensions = {"plpgsql", "timescaledb"};
  return d;
}

ActualTable plain_table(const std::string& type = "timestamp with time zone") {
  ActualTable a;
  a.exists = true;
  a.relkind = 'r';
  a.time_column_type = type;
  return a;
}

ActualJob job(int id, JobKind kind, QualifiedName target, const std::string& schedule) {
  ActualJob j;
  j.job_id = id;
  j.kind = kind;
  j.target = std::move(target);
  j.schedule_interval = iv(schedule);
  return j;
}

// The datapoint hypertable exactly as configured.
ActualTable matching_datapoint() {
  ActualTable a = plain_table();
  a.is_hypertable = true;
  a.time_dimension_column = "timestamp";
  a.chunk_interval = iv("7 days");
  a.compression_enabled = true;
  a.segment_by = {"source"};
  a.order_by = {{"timestamp", true, true}};
  a.indexes.push_back({"ix_datapoint_source_timestamp", {"source", "timestamp"}, false, false, "", ""});
  ActualJob c = job(1000, JobKind::compression, {"public", "datapoint"}, "12 hours");
  c.compress_after = iv("1 mon");
  a.compression_jobs.push_back(c);
  ActualJob r = job(1001, JobKind::retention, {"public", "datapoint"}, "1 day");
  r.drop_after = iv("1 year");
  a.retention_jobs.push_back(r);
  return a;
}

std::vector<std::string> sqls(const TablePlan& tp) {
  std::vector<std::string> out;
  for (const auto& s : tp.steps) out.push_back((s.skipped ? "SKIPPED " : "") + s.sql);
  return out;
}

TablePlan plan_one(const DesiredTable& d, const ActualTable& a, Detection det = timescale(), int64_t now = at(2024, 6, 10, 12)) {
  ActualState st;
  st.detection = det;
  st.tables[d.table] = a;
  Plan p = make_plan({d}, st, now);
  EXPECT_EQ(p.tables.size(), 1u);
  return p.tables.at(0);
}

// ----------------------------------------------------------------------------- TimescaleDB

TEST(PlannerTimescale, EmptyStateGetsTheWholeLifecycleInOrder) {
  const TablePlan tp = plan_one(desired(kDatapoint), plain_table());
  EXPECT_EQ(sqls(tp), (std::vector<std::string>{
                          "SELECT create_hypertable('\"public\".\"datapoint\"', by_range('timestamp', INTERVAL '7 days'), "
                          "if_not_exists => true, migrate_data => true)",
                          "CREATE INDEX IF NOT EXISTS \"ix_datapoint_source_timestamp\" ON \"public\".\"datapoint\" USING "
                          "btree (\"source\", \"timestamp\")",
                          "ALTER TABLE \"public\".\"datapoint\" SET (timescaledb.compress, timescaledb.compress_segmentby = "
                          "'\"source\"', timescaledb.compress_orderby = '\"timestamp\" DESC')",
                          "SELECT add_compression_policy('\"public\".\"datapoint\"', INTERVAL '1 month')",
                          "SELECT add_retention_policy('\"public\".\"datapoint\"', INTERVAL '1 year')",
                      }));
  EXPECT_EQ(tp.steps[0].description, "public.datapoint is not a hypertable: make it one on timestamp with 7 days chunks");
  for (const auto& s : tp.steps) {
    EXPECT_FALSE(s.destructive);
    EXPECT_FALSE(s.non_transactional);
  }
}

TEST(PlannerTimescale, MatchingStateHasNoSteps) {
  const TablePlan tp = plan_one(desired(kDatapoint), matching_datapoint());
  EXPECT_TRUE(tp.steps.empty());
  EXPECT_TRUE(tp.notes.empty());
}

TEST(PlannerTimescale, DriftedSettingsArePlannedBack) {
  ActualTable a = matching_datapoint();
  a.chunk_interval = iv("1 day");
  a.segment_by = {"source", "id"};
  a.compression_jobs[0].compress_after = iv("3 days");
  a.retention_jobs[0].drop_after = iv("2 years");  // the config's 1 year is shorter: destructive
  const TablePlan tp = plan_one(desired(kDatapoint), a);
  EXPECT_EQ(sqls(tp), (std::vector<std::string>{
                          "SELECT set_chunk_time_interval('\"public\".\"datapoint\"', INTERVAL '7 days')",
                          "ALTER TABLE \"public\".\"datapoint\" SET (timescaledb.compress_segmentby = '\"source\"')",
                          "SELECT remove_compression_policy('\"public\".\"datapoint\"', if_exists => true);\n"
                          "SELECT add_compression_policy('\"public\".\"datapoint\"', INTERVAL '1 month')",
                          "SKIPPED SELECT remove_retention_policy('\"public\".\"datapoint\"', if_exists => true);\n"
                          "SELECT add_retention_policy('\"public\".\"datapoint\"', INTERVAL '1 year')",
                      }));
  EXPECT_EQ(tp.steps[0].description, "chunk interval is 1 day, config says 7 days (applies to new chunks)");
  EXPECT_EQ(tp.steps[1].description, "compression segment_by is [source, id], config says [source]");
  EXPECT_EQ(tp.steps[2].description, "compression policy (job 1000) compresses after 3 days, config says 1 month");
  EXPECT_TRUE(tp.steps[3].destructive);
  EXPECT_EQ(tp.steps[3].skip_reason, kDestructiveSkipReason);
  EXPECT_EQ(tp.pending(), 3u);

  // Allowed: the same step is applied; a longer retention is never destructive.
  DesiredTable d = desired(kDatapoint);
  d.allow_destructive = true;
  EXPECT_FALSE(plan_one(d, a).steps[3].skipped);
  a.retention_jobs[0].drop_after = iv("6 months");
  EXPECT_FALSE(plan_one(desired(kDatapoint), a).steps[3].destructive);
}

TEST(PlannerTimescale, IntervalsAreComparedAsIntervals) {
  ActualTable a = matching_datapoint();
  a.chunk_interval = iv("1 week");           // == 7 days
  a.compression_jobs[0].compress_after = iv("30 days");  // == 1 mon in PostgreSQL's comparison
  a.retention_jobs[0].drop_after = iv("12 mons");
  EXPECT_TRUE(plan_one(desired(kDatapoint), a).steps.empty());
}

TEST(PlannerTimescale, PartiallyAppliedStateOnlyGetsTheRest) {
  ActualTable a = matching_datapoint();
  a.compression_jobs.clear();
  a.retention_jobs.clear();
  a.indexes.clear();
  const TablePlan tp = plan_one(desired(kDatapoint), a);
  EXPECT_EQ(sqls(tp), (std::vector<std::string>{
                          "CREATE INDEX IF NOT EXISTS \"ix_datapoint_source_timestamp\" ON \"public\".\"datapoint\" USING "
                          "btree (\"source\", \"timestamp\")",
                          "SELECT add_compression_policy('\"public\".\"datapoint\"', INTERVAL '1 month')",
                          "SELECT add_retention_policy('\"public\".\"datapoint\"', INTERVAL '1 year')",
                      }));
}

TEST(PlannerTimescale, ContinuousAggregateIsCreatedWithItsMarkerAndPolicy) {
  const DesiredTable d = desired(kObservations);
  ActualTable a = plain_table();
  a.is_hypertable = true;
  a.time_dimension_column = "ts";
  a.chunk_interval = iv("1 day");
  const TablePlan tp = plan_one(d, a);
  const std::string select =
      "SELECT time_bucket(INTERVAL '1 hour', \"ts\") AS \"hour\", \"series_id\", avg(value) AS \"avg_value\" FROM "
      "\"public\".\"observations\" WHERE quality_flag = 'good' GROUP BY time_bucket(INTERVAL '1 hour', \"ts\"), \"series_id\"";
  EXPECT_EQ(sqls(tp), (std::vector<std::string>{
                          "CREATE MATERIALIZED VIEW \"public\".\"hourly\" WITH (timescaledb.continuous, "
                          "timescaledb.materialized_only = true) AS " + select + " WITH NO DATA;\n"
                          "COMMENT ON VIEW \"public\".\"hourly\" IS 'sluice:definition=" + fnv1a_hex(select) + "'",
                          "SELECT add_continuous_aggregate_policy('\"public\".\"hourly\"', start_offset => INTERVAL "
                          "'3 hours', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour')",
                      }));
}

ActualState with_cagg(const DesiredTable& d, ActualCagg c) {
  ActualState st;
  st.detection = timescale();
  ActualTable a = plain_table();
  a.is_hypertable = true;
  a.time_dimension_column = "ts";
  a.chunk_interval = iv("1 day");
  st.tables[d.table] = a;
  st.caggs.push_back(std::move(c));
  return st;
}

ActualCagg matching_cagg(const DesiredTable& d) {
  ActualCagg c;
  c.view = {"public", "hourly"};
  c.hypertable = d.table;
  c.materialized_only = true;
  c.comment = aggregate_marker(d, d.ts.continuous_aggregates[0], true);
  ActualJob j = job(1002, JobKind::refresh, c.view, "1 hour");
  j.start_offset = iv("03:00:00");
  j.end_offset = iv("01:00:00");
  c.refresh_jobs.push_back(j);
  return c;
}

TEST(PlannerTimescale, AggregateDriftIsPlannedBack) {
  const DesiredTable d = desired(kObservations);
  EXPECT_TRUE(plan_timescaledb_table(d, with_cagg(d, matching_cagg(d)), true).steps.empty());

  ActualCagg c = matching_cagg(d);
  c.refresh_jobs[0].schedule_interval = iv("6 hours");
  c.materialized_only = false;
  TablePlan tp = plan_timescaledb_table(d, with_cagg(d, c), true);
  EXPECT_EQ(sqls(tp), (std::vector<std::string>{
                          "ALTER MATERIALIZED VIEW \"public\".\"hourly\" SET (timescaledb.materialized_only = true)",
                          "SELECT alter_job(1002, schedule_interval => INTERVAL '1 hour')",
                      }));

  c = matching_cagg(d);
  c.refresh_jobs[0].start_offset = iv("1 day");
  tp = plan_timescaledb_table(d, with_cagg(d, c), true);
  EXPECT_EQ(sqls(tp), (std::vector<std::string>{
                          "SELECT remove_continuous_aggregate_policy('\"public\".\"hourly\"', if_exists => true);\n"
                          "SELECT add_continuous_aggregate_policy('\"public\".\"hourly\"', start_offset => INTERVAL "
                          "'3 hours', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour')",
                      }));
  EXPECT_EQ(tp.steps[0].description,
            "refresh policy of public.hourly is window 1 day → 1 hour every 1 hour, config says window 3 hours → 1 hour "
            "every 1 hour");

  // Policy removed by hand.
  c = matching_cagg(d);
  c.refresh_jobs.clear();
  tp = plan_timescaledb_table(d, with_cagg(d, c), true);
  ASSERT_EQ(tp.steps.size(), 1u);
  EXPECT_EQ(tp.steps[0].description, "refresh policy of public.hourly is missing: window 3 hours → 1 hour every 1 hour");
}

TEST(PlannerTimescale, DroppingAnAggregateIsDestructiveAndForeignOnesAreLeftAlone) {
  DesiredTable d = desired(kObservations);
  ActualCagg ours = matching_cagg(d);
  ours.view = {"public", "old_hourly"};
  ActualCagg theirs = matching_cagg(d);
  theirs.view = {"public", "hand_made"};
  theirs.comment = "";
  ActualState st = with_cagg(d, matching_cagg(d));
  st.caggs.push_back(ours);
  st.caggs.push_back(theirs);
  TablePlan tp = plan_timescaledb_table(d, st, true);
  EXPECT_EQ(sqls(tp), std::vector<std::string>{"SKIPPED DROP MATERIALIZED VIEW \"public\".\"old_hourly\""});
  EXPECT_TRUE(tp.steps[0].destructive);
  EXPECT_EQ(tp.notes, std::vector<std::string>{"continuous aggregate public.hand_made is not in the config and was not "
                                               "created by sluice: left alone"});
  // A changed definition of one sluice created: drop + create, destructive.
  d.ts.continuous_aggregates[0].aggregates.push_back({"n", "count(*)"});
  d.allow_destructive = true;
  tp = plan_timescaledb_table(d, with_cagg(d, matching_cagg(desired(kObservations))), true);
  ASSERT_EQ(tp.steps.size(), 2u);
  EXPECT_EQ(tp.steps[0].sql.rfind("DROP MATERIALIZED VIEW \"public\".\"hourly\";\nCREATE MATERIALIZED VIEW", 0), 0u);
  EXPECT_TRUE(tp.steps[0].destructive);
  EXPECT_FALSE(tp.steps[0].skipped);
  EXPECT_EQ(tp.steps[1].sql.rfind("SELECT add_continuous_aggregate_policy", 0), 0u);
}

TEST(PlannerTimescale, RefreshOnCreateIsIssuedOutsideATransaction) {
  DesiredTable d = desired(kObservations);
  d.ts.continuous_aggregates[0].refresh_on_create = true;
  d.ts.continuous_aggregates[0].refresh_policies.clear();
  ActualTable a = plain_table();
  a.is_hypertable = true;
  a.time_dimension_column = "ts";
  a.chunk_interval = iv("1 day");
  const TablePlan tp = plan_one(d, a);
  ASSERT_EQ(tp.steps.size(), 2u);
  EXPECT_FALSE(tp.steps[0].non_transactional);
  EXPECT_TRUE(tp.steps[1].non_transactional);
  EXPECT_EQ(tp.steps[1].sql, "CALL refresh_continuous_aggregate('\"public\".\"hourly\"', NULL, NULL)");
}

TEST(PlannerTimescale, MissingExtensionAndBlockingUniqueIndexAreSkippedWithTheReason) {
  DesiredTable d = desired(kObservations);
  d.ts.continuous_aggregates[0].requires_extensions = {"timescaledb_toolkit"};
  ActualTable a = plain_table();
  a.indexes.push_back({"t_pkey", {"id"}, true, true, "t_pkey", ""});
  TablePlan tp = plan_one(d, a);
  ASSERT_EQ(tp.steps.size(), 1u);  // nothing after an impossible hypertable
  EXPECT_TRUE(tp.steps[0].skipped);
  EXPECT_EQ(tp.steps[0].skip_reason, "unique index t_pkey (id) does not include the time column ts; TimescaleDB requires "
                                     "every unique index of a hypertable to include it");
  a.indexes.clear();
  tp = plan_one(d, a);
  ASSERT_EQ(tp.steps.size(), 2u);
  EXPECT_TRUE(tp.steps[1].skipped);
  EXPECT_EQ(tp.steps[1].skip_reason, "its definition needs the timescaledb_toolkit extension, which is not installed "
                                     "(CREATE EXTENSION timescaledb_toolkit)");
}

TEST(PlannerTimescale, MissingTableAndColumnAreNotes) {
  ActualState st;
  st.detection = timescale();
  Plan p = make_plan({desired(kDatapoint)}, st, 0);
  EXPECT_EQ(p.tables[0].notes, std::vector<std::string>{"table public.datapoint does not exist (create it first, e.g. sluiced migrate)"});
  EXPECT_TRUE(p.tables[0].steps.empty());
  EXPECT_EQ(plan_one(desired(kDatapoint), plain_table("")).notes,
            std::vector<std::string>{"column timestamp does not exist in public.datapoint: nothing is managed"});
}

// ----------------------------------------------------------------------------- modes

TEST(PlannerModes, ApacheLicenseSkipsWhatNeedsTheCommunityLicense) {
  const ModeReport m = classify(timescale("2.13.1", "apache"));
  EXPECT_EQ(m.mode, PolicyMode::timescaledb_apache);
  EXPECT_EQ(m.summary,
            "TimescaleDB 2.13.1 on PostgreSQL 15.8 runs under the apache license (timescaledb.license = 'apache'): "
            "hypertables and chunk intervals are managed; compression, continuous aggregates, retention and refresh "
            "policies need the community license (timescaledb.license = 'timescale') and are reported as unavailable");
  const TablePlan tp = plan_one(desired(kDatapoint), plain_table(), timescale("2.13.1", "apache"));
  ASSERT_EQ(tp.steps.size(), 5u);
  EXPECT_FALSE(tp.steps[0].skipped);  // hypertable
  EXPECT_FALSE(tp.steps[1].skipped);  // index
  for (size_t i = 2; i < 5; ++i) {
    EXPECT_TRUE(tp.steps[i].skipped) << tp.steps[i].description;
    EXPECT_NE(tp.steps[i].skip_reason.find("community license"), std::string::npos);
  }
}

TEST(PlannerModes, OldTimescaleIsUnsupportedAndNothingIsPlanned) {
  ActualState st;
  st.detection = timescale("2.11.2");
  st.tables[{"public", "datapoint"}] = plain_table();
  const Plan p = make_plan({desired(kDatapoint)}, st, 0);
  EXPECT_EQ(p.mode.mode, PolicyMode::unsupported);
  EXPECT_EQ(p.mode.summary, "TimescaleDB 2.11.2 on PostgreSQL 15.8 is not supported: sluice needs TimescaleDB 2.13 or "
                            "newer; nothing is changed");
  EXPECT_EQ(p.pending(), 0u);
  EXPECT_NE(p.format().find("not managed: TimescaleDB 2.11.2"), std::string::npos);
  EXPECT_TRUE(version_at_least("2.23.0-dev", 2, 13));
  EXPECT_FALSE(version_at_least("garbage", 2, 13));
}

TEST(PlannerModes, MissingExtensionChoosesTheFallback) {
  Detection d;
  d.server_version = "15.8";
  d.timescaledb_available = true;
  const ModeReport m = classify(d);
  EXPECT_EQ(m.mode, PolicyMode::plain_postgres);
  EXPECT_EQ(m.summary.rfind("TimescaleDB is not installed on PostgreSQL 15.8 (it is available: CREATE EXTENSION "
                            "timescaledb enables it): plain PostgreSQL fallback",
                            0),
            0u);
}

// ----------------------------------------------------------------------------- plain PostgreSQL

const char* kFallback = R"J({"name": "datapoint", "timeseries": {"time_column": "timestamp", "chunk_interval": "1 day",
  "compression": {"after": "7 days"}, "retention": {"drop_after": "2 days"}, "partitions_ahead": 1}})J";

Detection plain() {
  Detection d;
  d.server_version = "15.8";
  return d;
}

TEST(PlannerFallback, EmptyPlainTableIsConvertedInOneStep) {
  ActualTable a = plain_table();
  a.indexes.push_back({"datapoint_pkey", {"id", "timestamp"}, true, true, "datapoint_pkey",
                       "ALTER TABLE \"public\".\"datapoint\" ADD CONSTRAINT \"datapoint_pkey\" PRIMARY KEY (id, \"timestamp\")"});
  const TablePlan tp = plan_one(desired(kFallback), a, plain(), at(2024, 6, 10, 12));
  ASSERT_EQ(tp.steps.size(), 1u);
  EXPECT_EQ(tp.steps[0].sql,
            "LOCK TABLE \"public\".\"datapoint\" IN ACCESS EXCLUSIVE MODE;\n"
            "ALTER TABLE \"public\".\"datapoint\" RENAME TO \"datapoint__sluice_old\";\n"
            "CREATE TABLE \"public\".\"datapoint\" (LIKE \"public\".\"datapoint__sluice_old\" INCLUDING DEFAULTS INCLUDING "
            "CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (\"timestamp\");\n"
            "CREATE TABLE \"public\".\"datapoint_p20240610\" PARTITION OF \"public\".\"datapoint\" FOR VALUES FROM "
            "('2024-06-10 00:00:00+00') TO ('2024-06-11 00:00:00+00');\n"
            "CREATE TABLE \"public\".\"datapoint_p20240611\" PARTITION OF \"public\".\"datapoint\" FOR VALUES FROM "
            "('2024-06-11 00:00:00+00') TO ('2024-06-12 00:00:00+00');\n"
            "CREATE TABLE \"public\".\"datapoint_default\" PARTITION OF \"public\".\"datapoint\" DEFAULT;\n"
            "INSERT INTO \"public\".\"datapoint\" SELECT * FROM \"public\".\"datapoint__sluice_old\";\n"
            "DROP TABLE \"public\".\"datapoint__sluice_old\";\n"
            "ALTER TABLE \"public\".\"datapoint\" ADD CONSTRAINT \"datapoint_pkey\" PRIMARY KEY (id, \"timestamp\")");
  EXPECT_FALSE(tp.steps[0].destructive);
  EXPECT_EQ(tp.notes, std::vector<std::string>{"compression is unavailable without TimescaleDB: the compression settings "
                                               "are not applied"});
}

Partition part(const std::string& name, int64_t lo, int64_t hi) {
  Partition p;
  p.name = name;
  p.lo = lo;
  p.hi = hi;
  p.bounded = true;
  return p;
}

ActualTable partitioned() {
  ActualTable a = plain_table();
  a.relkind = 'p';
  a.partition_strategy = "range";
  a.partition_column = "timestamp";
  Partition def;
  def.name = "datapoint_default";
  def.is_default = true;
  a.partitions = {def, part("datapoint_p20240607", at(2024, 6, 7), at(2024, 6, 8)),
                  part("datapoint_p20240610", at(2024, 6, 10), at(2024, 6, 11))};
  return a;
}

TEST(PlannerFallback, PartitionsAheadOnDemandAndRetention) {
  ActualTable a = partitioned();
  a.unpartitioned_buckets = {at(2024, 6, 1), at(2024, 6, 9)};  // rows waiting in DEFAULT
  a.default_rows = 5;
  const TablePlan tp = plan_one(desired(kFallback), a, plain(), at(2024, 6, 10, 12));
  EXPECT_EQ(sqls(tp),
            (std::vector<std::string>{
                "CREATE TABLE \"public\".\"datapoint_p20240609\" (LIKE \"public\".\"datapoint\" INCLUDING DEFAULTS INCLUDING "
                "CONSTRAINTS);\nWITH moved AS (DELETE FROM \"public\".\"datapoint_default\" WHERE \"timestamp\" >= TIMESTAMPTZ "
                "'2024-06-09 00:00:00+00' AND \"timestamp\" < TIMESTAMPTZ '2024-06-10 00:00:00+00' RETURNING *) INSERT INTO "
                "\"public\".\"datapoint_p20240609\" SELECT * FROM moved;\nALTER TABLE \"public\".\"datapoint\" ATTACH "
                "PARTITION \"public\".\"datapoint_p20240609\" FOR VALUES FROM ('2024-06-09 00:00:00+00') TO ('2024-06-10 "
                "00:00:00+00')",
                "DELETE FROM \"public\".\"datapoint_default\" WHERE \"timestamp\" < TIMESTAMPTZ '2024-06-02 00:00:00+00'",
                "CREATE TABLE \"public\".\"datapoint_p20240611\" PARTITION OF \"public\".\"datapoint\" FOR VALUES FROM "
                "('2024-06-11 00:00:00+00') TO ('2024-06-12 00:00:00+00')",
                "ALTER TABLE \"public\".\"datapoint\" DETACH PARTITION \"public\".\"datapoint_p20240607\";\nDROP TABLE "
                "\"public\".\"datapoint_p20240607\"",
            }));
  // Cutoff 06-08 12:00: 06-07 is wholly older; 06-09 (moved just now) and 06-10 are not.
  for (const auto& s : tp.steps) EXPECT_FALSE(s.skipped);
}

TEST(PlannerFallback, MatchingPartitionedTableHasNoSteps) {
  ActualTable a = partitioned();
  a.partitions.erase(a.partitions.begin() + 1);  // nothing older than the retention
  a.partitions.push_back(part("datapoint_p20240611", at(2024, 6, 11), at(2024, 6, 12)));
  const TablePlan tp = plan_one(desired(kFallback), a, plain(), at(2024, 6, 10, 12));
  EXPECT_TRUE(tp.steps.empty()) << Plan{ModeReport{}, {tp}}.format();
}

TEST(PlannerFallback, SummaryTableIsCreatedAndABlockedConversionSaysWhy) {
  DesiredTable d = desired(kObservations);
  ActualTable a = plain_table();
  a.has_rows = true;
  a.incoming_foreign_keys = {"alerts.alerts_obs_fkey"};
  ActualState st;
  st.detection = plain();
  st.tables[d.table] = a;
  const TablePlan tp = plan_fallback_table(d, st, at(2024, 6, 10, 12));
  ASSERT_EQ(tp.steps.size(), 2u);
  EXPECT_TRUE(tp.steps[0].skipped);
  EXPECT_EQ(tp.steps[0].skip_reason,
            "it cannot be converted into a partitioned table: foreign key alerts.alerts_obs_fkey references it. Change the "
            "schema by hand; until then its partitions and retention are not managed");
  const std::string select =
      "SELECT date_bin(INTERVAL '1 hour', \"ts\", TIMESTAMPTZ '2000-01-03 00:00:00+00') AS \"hour\", \"series_id\", "
      "avg(value) AS \"avg_value\" FROM \"public\".\"observations\" WHERE quality_flag = 'good' GROUP BY "
      "date_bin(INTERVAL '1 hour', \"ts\", TIMESTAMPTZ '2000-01-03 00:00:00+00'), \"series_id\"";
  EXPECT_EQ(tp.steps[1].sql, "CREATE TABLE \"public\".\"hourly\" AS " + select +
                                 ";\nCREATE INDEX \"hourly_bucket_idx\" ON \"public\".\"hourly\" (\"hour\", \"series_id\");\n"
                                 "COMMENT ON TABLE \"public\".\"hourly\" IS 'sluice:definition=" + fnv1a_hex(select) + "'");
  EXPECT_EQ(summary_refresh_sql(d, d.ts.continuous_aggregates[0], at(2024, 6, 1), at(2024, 6, 1, 2)),
            "DELETE FROM \"public\".\"hourly\" WHERE \"hour\" >= TIMESTAMPTZ '2024-06-01 00:00:00+00' AND \"hour\" < "
            "TIMESTAMPTZ '2024-06-01 02:00:00+00';\nINSERT INTO \"public\".\"hourly\" SELECT date_bin(INTERVAL '1 hour', "
            "\"ts\", TIMESTAMPTZ '2000-01-03 00:00:00+00') AS \"hour\", \"series_id\", avg(value) AS \"avg_value\" FROM "
            "\"public\".\"observations\" WHERE (quality_flag = 'good') AND \"ts\" >= TIMESTAMPTZ '2024-06-01 00:00:00+00' "
            "AND \"ts\" < TIMESTAMPTZ '2024-06-01 02:00:00+00' GROUP BY date_bin(INTERVAL '1 hour', \"ts\", TIMESTAMPTZ "
            "'2000-01-03 00:00:00+00'), \"series_id\"");
}

TEST(PlanFormat, SaysNoChangesOrListsTheSql) {
  Plan p;
  p.mode = classify(timescale());
  p.tables.push_back(TablePlan{"datapoint", {}, {}});
  EXPECT_EQ(p.format(), "mode: timescaledb — TimescaleDB 2.13.1 on PostgreSQL 15.8 (license: timescale): hypertables, "
                        "compression, retention and continuous aggregates are managed\n\ndatapoint: matches the config\n\n"
                        "no changes\n");
  ActualTable a = matching_datapoint();
  a.retention_jobs.clear();
  p.tables[0] = plan_one(desired(kDatapoint), a);
  EXPECT_NE(p.format().find("datapoint: 1 change(s)\n  - retention policy is missing: drop chunks older than 1 year\n"
                            "    SELECT add_retention_policy('\"public\".\"datapoint\"', INTERVAL '1 year')\n\n1 change(s) to apply\n"),
            std::string::npos)
      << p.format();
}

}  // namespace
}  // namespace sluice::policy
