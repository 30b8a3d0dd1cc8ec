// policy/model.h — the data the policy manager works on: desired state, detected capabilities,
// actual state, and the plan (ordered steps).
//
//   Config.tables[].timeseries ──desired_from_config──► [DesiredTable]
//   database ──detect()──► Detection ──classify()──► PolicyMode
//   database ──introspect()──► ActualState                         (introspect.h)
//   plan(desired, actual, now) ──► Plan {per table: differences, steps{sql, destructive, ...}}
//   apply_plan(conn, plan) ──► ApplyReport                           (apply.h)
//
// Everything here is plain data: the planner is a pure function of it, so its tests need no database.
// Times are PostgreSQL microseconds since 2000-01-01 UTC (core/pg_time.h).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/timeseries.h"

namespace sluice::policy {

// ------------------------------------------------------------------------------------ desired

struct QualifiedName {
  std::string schema;
  std::string name;
  std::string text() const { return schema + "." + name; }  // unquoted, for messages and labels
  bool operator<(const QualifiedName& o) const { return schema != o.schema ? schema < o.schema : name < o.name; }
  bool operator==(const QualifiedName& o) const { return schema == o.schema && name == o.name; }
};

// "flux.x" → {flux, x}; "x" → {default_schema, x}.
QualifiedName split_name(const std::string& name, const std::string& default_schema = "public");

struct DesiredTable {
  std::string config_name;   // as written in the config ("observations", "flux.market_data")
  QualifiedName table;
  TimeseriesConfig ts;
  bool allow_destructive = false;  // table's own flag or policy.allow_destructive
};

// Every table with a `timeseries` block, in config order.
std::vector<DesiredTable> desired_from_config(const Config& config);

// ------------------------------------------------------------------------------------ detection

enum class PolicyMode {
  timescaledb,         // TimescaleDB >= 2.13, community license: everything
  timescaledb_apache,  // TimescaleDB, apache license: hypertables and chunk intervals only
  plain_postgres,      // no TimescaleDB: range partitions, summary tables (the fallback)
  unsupported,         // TimescaleDB older than 2.13, or no database: nothing is changed
};
const char* mode_name(PolicyMode m);

struct Detection {
  std::string server_version;         // e.g. "15.8"
  int server_version_num = 0;         // e.g. 150008
  bool timescaledb_installed = false; // row in pg_extension
  bool timescaledb_available = false; // row in pg_available_extensions
  std::string timescaledb_version;    // extversion, e.g. "2.13.1" or "2.23.0-dev"
  std::string license;                // current_setting('timescaledb.license'): timescale | apache | ""
  std::vector<std::string> extensions;  // installed extensions
  bool has_extension(const std::string& name) const;
};

struct ModeReport {
  PolicyMode mode = PolicyMode::unsupported;
  std::string summary;  // one line for humans: what was found and what sluice will do
};
ModeReport classify(const Detection& d);

// "2.13.1" / "2.23.0-dev" ≥ major.minor?  False when unparsable.
bool version_at_least(const std::string& version, int major, int minor);

// ------------------------------------------------------------------------------------ actual

enum class JobKind { compression, retention, refresh, other };
const char* job_kind_name(JobKind k);

struct ActualJob {
  int job_id = 0;
  JobKind kind = JobKind::other;
  QualifiedName target;                 // hypertable, or the continuous aggregate for refresh jobs
  Interval schedule_interval;
  bool scheduled = true;
  std::optional<Interval> compress_after;  // compression
  std::optional<Interval> drop_after;      // retention
  std::optional<Interval> start_offset;    // refresh (none = NULL)
  std::optional<Interval> end_offset;      // refresh (none = NULL)
};

struct ActualCagg {
  QualifiedName view;
  QualifiedName hypertable;
  bool materialized_only = true;
  std::string comment;                  // sluice's marker "sluice:definition=<hash>" or anything else
  std::vector<ActualJob> refresh_jobs;
};

struct IndexInfo {
  std::string name;
  std::vector<std::string> columns;     // key columns (expressions: empty string)
  bool unique = false;
  bool primary = false;
  std::string constraint_name;          // when the index backs a PRIMARY KEY / UNIQUE constraint
  std::string definition;               // pg_get_indexdef, or the constraint's ADD CONSTRAINT text
};

struct Partition {
  std::string name;
  bool is_default = false;
  int64_t lo = 0;  // inclusive, pg micros
  int64_t hi = 0;  // exclusive
  bool bounded = false;  // lo/hi known (false: MINVALUE/MAXVALUE or another key type)
};

struct DependentView {
  QualifiedName name;
  std::string definition;  // pg_get_viewdef
  int depth = 1;           // 1 = on the table itself
};

struct ActualTable {
  bool exists = false;
  char relkind = 'r';                    // r plain, p partitioned
  std::string time_column_type;          // format_type of the time column ("" = no such column)
  std::vector<IndexInfo> indexes;

  // TimescaleDB
  bool is_hypertable = false;
  std::string time_dimension_column;
  std::optional<Interval> chunk_interval;
  bool compression_enabled = false;
  std::vector<std::string> segment_by;
  std::vector<OrderByItem> order_by;
  std::vector<ActualJob> compression_jobs;
  std::vector<ActualJob> retention_jobs;

  // plain PostgreSQL
  std::string partition_strategy;        // "range" / "list" / "hash" when relkind p
  std::string partition_column;          // single-column range key
  std::vector<Partition> partitions;
  std::vector<int64_t> unpartitioned_buckets;  // starts of partition-sized ranges holding rows that sit
                                               // in the DEFAULT partition (or, for a plain table, in it)
  int64_t default_rows = 0;              // rows in the DEFAULT partition
  bool has_rows = false;
  std::vector<std::string> foreign_keys;     // "ALTER TABLE ... ADD CONSTRAINT ..." bodies: name + def
  std::vector<std::string> foreign_key_names;
  std::vector<std::string> incoming_foreign_keys;  // "other_table.constraint"
  std::vector<DependentView> dependent_views;
  std::vector<std::string> dependent_matviews;
  std::vector<std::pair<QualifiedName, std::string>> owned_sequences;  // sequence, column
  std::vector<std::string> identity_columns;
};

struct ActualRelation {
  char relkind = 0;      // 0 missing, r table, v view, m matview, p partitioned
  std::string comment;
};

struct ActualState {
  Detection detection;
  std::map<QualifiedName, ActualTable> tables;      // every desired table
  std::vector<ActualCagg> caggs;                    // every continuous aggregate (TimescaleDB)
  std::map<QualifiedName, ActualRelation> relations;  // every desired aggregate name
};

// ------------------------------------------------------------------------------------ the plan

struct Step {
  std::string table;                 // config name of the table it belongs to
  std::string description;           // what differs / what it does
  std::string sql;                   // exact SQL (may hold several statements)
  bool destructive = false;          // deletes data, drops an aggregate or rewrites a table
  bool non_transactional = false;    // must run outside a transaction block (autocommit)
  bool skipped = false;              // will not be applied (destructive without permission, unsupported)
  std::string skip_reason;
};

struct TablePlan {
  std::string table;                 // config name
  std::vector<std::string> notes;    // findings that need no SQL (unmanaged objects, info)
  std::vector<Step> steps;
  size_t pending() const;            // steps that apply would run
};

struct Plan {
  ModeReport mode;
  std::vector<TablePlan> tables;
  size_t pending() const;
  size_t skipped() const;
  // Human-readable report: per table what differs and the SQL ("matches the config" when nothing).
  std::string format() const;
};

}  // namespace sluice::policy
