// policy/introspect.h — reads what the database has: capabilities (detect) and the actual state of
// every desired table (introspect). Read-only; start-up style: throws pg::PgError on database errors.
//
//   detect():      version(), pg_extension (extversion), pg_available_extensions,
//                  current_setting('timescaledb.license', true)
//   introspect():  pg_class / pg_index / pg_constraint / pg_depend for every desired table, then
//     TimescaleDB: timescaledb_information.hypertables, .dimensions, .jobs (+ config jsonb),
//                  .continuous_aggregates, compression settings (.compression_settings, or
//                  .hypertable_compression_settings where the former is gone)
//     PostgreSQL:  partitions (pg_inherits + partition bounds), rows waiting in the DEFAULT partition
//
// prepare_session() sets what the policy connection relies on: TimeZone UTC, ISO dates, postgres
// interval style, warnings only, and a lock_timeout so DDL never queues behind ingest for long.
#pragma once

#include <string>
#include <vector>

#include "pg/connection.h"
#include "policy/model.h"

namespace sluice::policy {

void prepare_session(pg::Connection& conn, int lock_timeout_ms = 5000);

Detection detect(pg::Connection& conn);

ActualState introspect(pg::Connection& conn, const std::vector<DesiredTable>& desired, const Detection& detection,
                       PolicyMode mode);

// Parses hypertable_compression_settings' text columns: segmentby "a, \"b c\"", orderby
// "\"time\" DESC, x NULLS FIRST".
std::vector<std::string> parse_segmentby_text(const std::string& text);
std::vector<OrderByItem> parse_orderby_text(const std::string& text);

// A job's config jsonb (text) into the interval fields of `job` (compress_after, drop_after,
// start_offset, end_offset); unknown keys are ignored, integer offsets (integer time columns) skipped.
void parse_job_config(const std::string& config_json, ActualJob& job);

}  // namespace sluice::policy
