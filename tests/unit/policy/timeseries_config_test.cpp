// config/timeseries.h: intervals (parsed as PostgreSQL stores them, compared as intervals) and the
// `timeseries` / `policy` blocks, including their error messages.
#include "config/timeseries.h"

#include <gtest/gtest.h>

#include "config/config.h"

namespace sluice {
namespace {

Interval iv(const std::string& s) {
  Interval out;
  std::string err;
  EXPECT_TRUE(parse_interval(s, out, &err)) << s << ": " << err;
  return out;
}

TEST(Interval, ParsesConfigAndPostgresForms) {
  struct Case {
    const char* text;
    int32_t months, days;
    int64_t micros;
    const char* canonical;
  } cases[] = {
      {"1 day", 0, 1, 0, "1 day"},
      {"7 days", 0, 7, 0, "7 days"},
      {"1 week", 0, 7, 0, "7 days"},
      {"30 minutes", 0, 0, 1800000000LL, "30 minutes"},
      {"1 month", 1, 0, 0, "1 month"},
      {"1 mon", 1, 0, 0, "1 month"},
      {"5 years", 60, 0, 0, "5 years"},
      {"180 days", 0, 180, 0, "180 days"},
      {"2h", 0, 0, 7200000000LL, "2 hours"},
      {"1 hour 30 minutes", 0, 0, 5400000000LL, "1 hour 30 minutes"},
      {"02:00:00", 0, 0, 7200000000LL, "2 hours"},
      {"00:30:00", 0, 0, 1800000000LL, "30 minutes"},
      {"1 year 2 mons 3 days 04:05:06.5", 14, 3, 14706500000LL, "1 year 2 months 3 days 4 hours 5 minutes 6.5 seconds"},
      {"1.5 days", 0, 1, 43200000000LL, "1 day 12 hours"},
      {"@ 10 secs", 0, 0, 10000000LL, "10 seconds"},
  };
  for (const auto& c : cases) {
    const Interval i = iv(c.text);
    EXPECT_EQ(i.months, c.months) << c.text;
    EXPECT_EQ(i.days, c.days) << c.text;
    EXPECT_EQ(i.micros, c.micros) << c.text;
    EXPECT_EQ(format_interval(i), c.canonical) << c.text;
  }
}

TEST(Interval, RefusesWhatIsNotAnInterval) {
  for (const char* bad : {"", "day", "5", "1 fortnight", "1 day x", "12:xx", "abc"}) {
    Interval out;
    std::string err;
    EXPECT_FALSE(parse_interval(bad, out, &err)) << bad;
    EXPECT_FALSE(err.empty()) << bad;
  }
}

TEST(Interval, ComparesAsIntervalsNotStrings) {
  EXPECT_EQ(iv("1 week"), iv("7 days"));
  EXPECT_EQ(iv("01:00:00"), iv("60 minutes"));
  EXPECT_EQ(iv("1 month"), iv("30 days"));  // PostgreSQL's rule
  EXPECT_LT(iv("180 days"), iv("1 year"));
  EXPECT_LT(iv("23 hours"), iv("1 day"));
  EXPECT_GT(iv("5 years"), iv("1 year"));
  EXPECT_NE(iv("2 days"), iv("1 day"));
}

TEST(OrderBy, ParsesDirectionAndNulls) {
  OrderByItem o;
  ASSERT_TRUE(parse_order_by("timestamp DESC", o));
  EXPECT_EQ(o.column, "timestamp");
  EXPECT_TRUE(o.desc);
  EXPECT_TRUE(o.nulls_first);
  ASSERT_TRUE(parse_order_by("\"my col\" asc nulls first", o));
  EXPECT_EQ(o.column, "my col");
  EXPECT_FALSE(o.desc);
  EXPECT_TRUE(o.nulls_first);
  EXPECT_FALSE(parse_order_by("a sideways", o));
}

std::vector<std::string> problems(const std::string& tables, const std::string& extra = "") {
  try {
    parse_config(R"({"database": {"url": "x"}, )" + extra + R"("tables": )" + tables + "}", "t.json");
  } catch (const ConfigError& e) {
    return e.problems();
  }
  return {};
}

TEST(TimeseriesConfig, ParsesEveryFieldOfTheBlock) {
  const Config c = parse_config(R"J({"database": {"url": "x"},
    "policy": {"reconcile_interval": "2 minutes", "drive_jobs": true, "allow_destructive": true,
               "late_refresh_min_interval": "10 seconds", "job_overdue_grace": "1 minute"},
    "tables": [{"name": "flux.m", "timeseries": {"time_column": "time", "chunk_interval": "1 week",
      "compression": {"enabled": true, "after": "1 month", "segment_by": ["source"], "order_by": ["time DESC"]},
      "retention": {"drop_after": "1 year"}, "allow_destructive": true, "partitions_ahead": 5,
      "indexes": [{"columns": ["source", "time DESC"], "type": "BRIN", "name": "ix", "where": "source <> ''"}],
      "continuous_aggregates": [{"name": "m_5m", "bucket_width": "5 minutes", "bucket_column": "time_b",
        "group_by": ["device_id"], "aggregates": [{"z": "avg(v)"}, {"a": "max(v)"}], "where": "v > 0",
        "materialized_only": false, "refresh_on_create": true, "requires_extensions": ["timescaledb_toolkit"],
        "refresh_policies": [{"start_offset": null, "end_offset": "10 minutes", "schedule_interval": "5 minutes"}]}]}}]})J",
                                "t.json");
  EXPECT_EQ(c.policy.reconcile_interval_s, 120);
  EXPECT_TRUE(c.policy.drive_jobs);
  EXPECT_TRUE(c.policy.allow_destructive);
  EXPECT_EQ(c.policy.late_refresh_min_interval_s, 10);
  EXPECT_EQ(c.policy.job_overdue_grace_s, 60);
  ASSERT_TRUE(c.tables[0].timeseries);
  const TimeseriesConfig& ts = *c.tables[0].timeseries;
  EXPECT_EQ(c.tables[0].time_column, "time");  // taken from the block
  EXPECT_EQ(ts.chunk_interval, iv("7 days"));
  ASSERT_TRUE(ts.compression && ts.compression->after && ts.compression->segment_by && ts.compression->order_by);
  EXPECT_EQ(*ts.compression->after, iv("1 month"));
  EXPECT_EQ(*ts.compression->segment_by, std::vector<std::string>{"source"});
  EXPECT_EQ(ts.compression->order_by->at(0).column, "time");
  EXPECT_EQ(ts.retention->drop_after, iv("1 year"));
  EXPECT_TRUE(ts.allow_destructive);
  EXPECT_EQ(ts.partitions_ahead, 5);
  EXPECT_EQ(ts.indexes[0].type, "brin");
  EXPECT_EQ(ts.indexes[0].columns.size(), 2u);
  const auto& ca = ts.continuous_aggregates.at(0);
  EXPECT_EQ(ca.bucket_width, iv("5 minutes"));
  ASSERT_EQ(ca.aggregates.size(), 2u);
  EXPECT_EQ(ca.aggregates[0].name, "z");  // array form keeps the order
  EXPECT_FALSE(ca.materialized_only);
  EXPECT_TRUE(ca.refresh_on_create);
  EXPECT_FALSE(ca.refresh_policies[0].start_offset.has_value());
  EXPECT_EQ(*ca.refresh_policies[0].end_offset, iv("10 minutes"));
}

TEST(TimeseriesConfig, EveryProblemIsReportedWithItsPath) {
  const auto p = problems(R"J([{"name": "t", "timeseries": {"time_column": "ts", "chunk_interval": "soon", "colour": 1,
      "retention": {"drop_after": "-1 day"},
      "continuous_aggregates": [{"name": "a", "bucket_width": "1 hour", "aggregates": {"x": "avg(v)"},
        "refresh_policies": [{"start_offset": "2 hours", "end_offset": "1 hour", "schedule_interval": "1 hour"},
                             {"start_offset": "1 hour", "end_offset": "2 hours", "schedule_interval": "1 hour"}]},
        {"name": "b", "select": "DELETE FROM t"}]}}])J",
                            R"("policy": {"reconcile_interval": "1 month"}, )");
  const std::vector<std::string> want = {
      "policy.reconcile_interval: must be at least 1 second, without months",
      "tables[0].timeseries.chunk_interval: \"soon\" is not an interval (expected a number before \"soon\")",
      "tables[0].timeseries.retention.drop_after: \"-1 day\" must be positive",
      "tables[0].timeseries.continuous_aggregates[0].refresh_policies[0]: the window 2 hours → 1 hour covers less than "
      "two buckets of 1 hour (TimescaleDB requires at least two)",
      "tables[0].timeseries.continuous_aggregates[0].refresh_policies[1]: start_offset must be larger than end_offset",
      "tables[0].timeseries.continuous_aggregates[1].select: must be a SELECT statement",
      "tables[0].timeseries.colour: unknown setting",
  };
  EXPECT_EQ(p, want);
}

TEST(TimeseriesConfig, TimeColumnMustBeKnownAndAgree) {
  EXPECT_EQ(problems(R"([{"name": "t", "timeseries": {}}])"),
            std::vector<std::string>{"tables[0].timeseries.time_column: required (here or in the table's time_column)"});
  EXPECT_EQ(problems(R"([{"name": "t", "time_column": "a", "timeseries": {"time_column": "b"}}])"),
            std::vector<std::string>{"tables[0].timeseries.time_column: differs from tables[0].time_column"});
  EXPECT_TRUE(problems(R"([{"name": "t", "time_column": "a", "timeseries": {}}])").empty());
}

TEST(TimeseriesConfig, EveryShippedPresetLoads) {
  for (const char* p : {"grid", "predictive_maintenance", "flux", "datapoint", "energy_forecast"}) {
    EXPECT_NO_THROW(load_config(std::string(SLUICE_SOURCE_DIR) + "/config/presets/" + p + ".json")) << p;
  }
}

}  // namespace
}  // namespace sluice
