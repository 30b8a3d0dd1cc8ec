// policy/planner.h — desired × actual → ordered steps. Pure: no database, no clock (now is an input).
//
//   make_plan(desired, actual, now)
//     mode timescaledb        plan_timescaledb_table(): hypertable → chunk interval → indexes →
//                             compression settings + policy → retention policy → continuous aggregates
//                             (create WITH NO DATA + marker comment, materialized_only, refresh policies)
//     mode timescaledb-apache the same; everything needing the community license is a skipped step
//     mode postgresql         plan_fallback_table(): convert to a range-partitioned table (one
//                             transaction) → DEFAULT partition → partitions ahead and for rows waiting in
//                             DEFAULT → retention (detach + drop whole partitions) → summary tables → indexes
//     mode unsupported        no steps; the mode summary says why
//
// Each planned step reflects the state after the steps before it, so a plan applied in order
// converges and the next plan of the same database is empty ("no changes").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "policy/model.h"

namespace sluice::policy {

Plan make_plan(const std::vector<DesiredTable>& desired, const ActualState& actual, int64_t now_pg_us);

TablePlan plan_timescaledb_table(const DesiredTable& d, const ActualState& actual, bool community_license);
TablePlan plan_fallback_table(const DesiredTable& d, const ActualState& actual, int64_t now_pg_us);

// The partition interval of a table in the fallback (chunk_interval, default 7 days).
Interval partition_interval(const DesiredTable& d);

// Fallback: recomputes the buckets of summary table `c` in [lo, hi) (bucket-aligned) in one
// transaction: DELETE the buckets, INSERT them again from the raw rows.
std::string summary_refresh_sql(const DesiredTable& d, const ContinuousAggregateConfig& c, int64_t lo, int64_t hi);
// TimescaleDB: CALL refresh_continuous_aggregate(view, lo, hi) — must run outside a transaction.
std::string cagg_refresh_sql(const QualifiedName& view, int64_t lo, int64_t hi);

// The text a skipped destructive step carries.
extern const char* const kDestructiveSkipReason;

}  // namespace sluice::policy
