// policy/sql_text.h — SQL text builders and time arithmetic shared by the planner, the late-data
// refresher and the fallback. Pure functions: identifiers are always quoted, literals escaped.
//
//   qualified({flux, m})            → "flux"."m"
//   regclass_literal({flux, m})     → '"flux"."m"'            (for create_hypertable('…'), …)
//   interval_literal({0, 7, 0})     → INTERVAL '7 days'
//   timestamptz_literal(pg_us)      → TIMESTAMPTZ '2024-01-01 00:00:00+00'
//   bucket_floor(t, width)          → start of the bucket holding t (time_bucket's alignment)
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/timeseries.h"
#include "policy/model.h"

namespace sluice::policy {

std::string quote_ident(const std::string& name);
std::string quote_literal(const std::string& text);
std::string qualified(const QualifiedName& n);
std::string regclass_literal(const QualifiedName& n);
std::string interval_literal(const Interval& iv);
std::string optional_interval_literal(const std::optional<Interval>& iv);  // NULL when none
std::string order_by_sql(const OrderByItem& item);  // "col" DESC [NULLS LAST]

// UTC text of a pg-epoch microsecond time: "2024-01-01 00:00:00+00" (fraction only when non-zero).
std::string format_pg_time(int64_t pg_us);
std::string timestamptz_literal(int64_t pg_us);

// time_bucket()'s alignment: fixed widths count from 2000-01-03 00:00 UTC (a Monday), month widths
// from 2000-01-01. Works for any time, including before 2000.
int64_t bucket_floor(int64_t pg_us, const Interval& width);
int64_t bucket_add(int64_t bucket_start, const Interval& width, int n = 1);
// Adds/subtracts an interval the way PostgreSQL does for timestamptz in UTC (months, then days, then µs).
int64_t add_interval(int64_t pg_us, const Interval& iv, int sign = 1);

// FNV-1a 64 of text as 16 hex digits (the definition marker of aggregates sluice created).
std::string fnv1a_hex(const std::string& text);
inline constexpr const char* kMarkerPrefix = "sluice:definition=";

// The SELECT of a continuous aggregate (TimescaleDB: time_bucket) or of a fallback summary table
// (plain PostgreSQL: date_bin / date_trunc). `extra_where` is ANDed into the WHERE clause.
std::string aggregate_select(const DesiredTable& t, const ContinuousAggregateConfig& c, bool timescaledb,
                             const std::string& extra_where = "");
// The bucket expression over the table's time column.
std::string bucket_expression(const DesiredTable& t, const ContinuousAggregateConfig& c, bool timescaledb);
// Marker comment of an aggregate: kMarkerPrefix + hash of its definition.
std::string aggregate_marker(const DesiredTable& t, const ContinuousAggregateConfig& c, bool timescaledb);

// Default name of an extra index: ix_<table>_<col>_<col>…, at most 63 bytes.
std::string default_index_name(const DesiredTable& t, const IndexConfig& ix);
// Partition name: <table>_pYYYYMMDD (…_HHMM when the interval is shorter than a day), ≤ 63 bytes.
std::string partition_name(const std::string& table, int64_t lo, const Interval& interval);

}  // namespace sluice::policy
