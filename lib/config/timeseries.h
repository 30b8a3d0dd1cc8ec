// config/timeseries.h — the declarative time-series lifecycle of a table (`tables[].timeseries`) and
// the daemon-wide `policy` settings, plus PostgreSQL-style intervals.
//
//   "timeseries": { "time_column", "chunk_interval", "compression", "retention",
//                   "continuous_aggregates": [...], "indexes": [...], "allow_destructive" }
//        │ parse_timeseries() (called by config.cpp for each table; problems collected, never thrown)
//        ▼
//   TimeseriesConfig ──► lib/policy builds the desired state, compares it with the database
//
// Intervals are parsed into months / days / microseconds exactly as PostgreSQL stores an interval,
// so "1 week" == "7 days" and "01:00:00" == "1 hour"; they are compared as intervals (PostgreSQL's
// rule: a month counts 30 days, a day 24 hours), never as strings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sluice {

struct Interval {
  int32_t months = 0;
  int32_t days = 0;
  int64_t micros = 0;

  // PostgreSQL's interval ordering key: micros + (days + 30 * months) * 24 h.
  __int128 cmp_key() const;
  // Length in microseconds with PostgreSQL's approximations (month = 30 days, day = 24 h).
  int64_t approx_micros() const;
  bool is_zero() const { return months == 0 && days == 0 && micros == 0; }
  bool fixed_length() const { return months == 0; }  // days count as 24 h (UTC)
};

// Equality and ordering as PostgreSQL compares intervals ('1 mon' = '30 days').
bool operator==(const Interval& a, const Interval& b);
bool operator!=(const Interval& a, const Interval& b);
bool operator<(const Interval& a, const Interval& b);
bool operator>(const Interval& a, const Interval& b);

// Parses "1 day", "7 days", "30 minutes", "1 week", "1 month", "5 years", "2h", "1 hour 30 minutes",
// and PostgreSQL's own output ("1 year 2 mons 3 days 04:05:06.5", "02:00:00", "-1 days").
// Returns false (with a message in *error) for anything else. A bare number is refused.
bool parse_interval(std::string_view text, Interval& out, std::string* error = nullptr);
// Canonical text, accepted by PostgreSQL's INTERVAL '…': "5 years", "1 month", "7 days",
// "2 hours", "30 minutes", "1 day 12 hours", "0" for zero.
std::string format_interval(const Interval& iv);

// "col", "col DESC", "col ASC NULLS FIRST": a column with a sort direction.
struct OrderByItem {
  std::string column;
  bool desc = false;
  bool nulls_first = false;  // PostgreSQL's default: NULLS FIRST for DESC, NULLS LAST for ASC
  bool operator==(const OrderByItem& o) const {
    return column == o.column && desc == o.desc && nulls_first == o.nulls_first;
  }
};
bool parse_order_by(std::string_view text, OrderByItem& out, std::string* error = nullptr);

struct CompressionConfig {
  bool enabled = true;
  std::optional<Interval> after;                       // compression policy; none = not managed
  std::optional<std::vector<std::string>> segment_by;  // none = TimescaleDB's default, not compared
  std::optional<std::vector<OrderByItem>> order_by;    // none = TimescaleDB's default, not compared
};

struct RetentionConfig {
  bool enabled = true;  // false: a retention policy that exists is removed
  Interval drop_after;
};

struct RefreshPolicyConfig {
  std::optional<Interval> start_offset;  // none (JSON null) = from the beginning
  std::optional<Interval> end_offset;    // none (JSON null) = up to the newest data
  Interval schedule_interval;
};

struct AggregateColumn {
  std::string name;  // output column
  std::string expr;  // SQL aggregate expression, e.g. avg(value)
};

struct ContinuousAggregateConfig {
  std::string name;                     // "view" (the table's schema) or "schema.view"
  Interval bucket_width;
  std::string bucket_column = "bucket"; // name of the time_bucket(...) output column
  std::vector<AggregateColumn> aggregates;
  std::vector<std::string> group_by;    // columns grouped by besides the bucket
  std::string where;                    // SQL condition on the raw rows ("" = none)
  std::string select;                   // instead of the above: the view's whole SELECT, verbatim
  bool materialized_only = true;        // false = real-time aggregate
  bool refresh_on_create = false;       // refresh the whole range once after creating it
  std::vector<std::string> requires_extensions;  // e.g. timescaledb_toolkit for counter_agg()
  std::vector<RefreshPolicyConfig> refresh_policies;
};

struct IndexConfig {
  std::vector<OrderByItem> columns;
  std::string type = "btree";
  std::string name;   // default: ix_<table>_<col>_<col>...
  std::string where;  // partial index condition ("" = none)
};

struct TimeseriesConfig {
  std::string time_column;              // default: tables[].time_column
  std::optional<Interval> chunk_interval;  // none: TimescaleDB's default (7 days), not compared
  std::optional<CompressionConfig> compression;  // none: not managed
  std::optional<RetentionConfig> retention;      // none: not managed
  std::vector<ContinuousAggregateConfig> continuous_aggregates;
  std::vector<IndexConfig> indexes;
  bool allow_destructive = false;       // apply steps that delete data (also policy.allow_destructive)
  int partitions_ahead = 3;             // plain PostgreSQL: partitions kept ready beyond now
};

// Daemon-wide `policy` block.
struct PolicySettings {
  bool enabled = true;                  // reconcile in the daemon (plan/apply commands work anyway)
  int reconcile_interval_s = 300;       // reconcile every 5 minutes after the start-up one
  bool drive_jobs = false;              // CALL run_job() for overdue or failing policy jobs
  bool allow_destructive = false;       // for every table
  int late_refresh_min_interval_s = 60; // at most one late-data refresh per aggregate this often
  int job_overdue_grace_s = 300;        // a job this late (past next_start) counts as overdue
};

// Reads `tables[i].timeseries` (path e.g. "tables[2].timeseries"); appends problems, never throws.
TimeseriesConfig parse_timeseries(const nlohmann::json& v, const std::string& path,
                                  const std::string& default_time_column, std::vector<std::string>& problems);
PolicySettings parse_policy_settings(const nlohmann::json& v, const std::string& path,
                                     std::vector<std::string>& problems);

}  // namespace sluice
