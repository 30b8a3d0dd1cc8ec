#include "policy/planner.h"

#include <algorithm>
#include <set>

#include "policy/sql_text.h"

namespace sluice::policy {

const char* const kDestructiveSkipReason =
    "it would delete data: set \"allow_destructive\": true in the table's timeseries block (or in policy) to apply it";

namespace {

constexpr const char* kLicenseReason =
    "needs the TimescaleDB community license (timescaledb.license = 'timescale'); this database runs the apache "
    "license";
constexpr size_t kMaxPartitionsPerPlan = 1000;

bool same(const std::optional<Interval>& a, const std::optional<Interval>& b) {
  if (a.has_value() != b.has_value()) return false;
  return !a || *a == *b;
}

std::string text_of(const std::optional<Interval>& iv) { return iv ? format_interval(*iv) : "NULL"; }

std::string join(const std::vector<std::string>& v, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) s += (i ? sep : "") + v[i];
  return s;
}

std::string list_text(const std::vector<std::string>& v) { return "[" + join(v, ", ") + "]"; }

std::string order_text(const std::vector<OrderByItem>& v) {
  std::vector<std::string> parts;
  for (const auto& o : v) {
    std::string s = o.column + (o.desc ? " DESC" : " ASC");
    if (o.nulls_first != o.desc) s += o.nulls_first ? " NULLS FIRST" : " NULLS LAST";
    parts.push_back(s);
  }
  return list_text(parts);
}

std::string segment_by_literal(const std::vector<std::string>& cols) {
  std::vector<std::string> q;
  for (const auto& c : cols) q.push_back(quote_ident(c));
  return quote_literal(join(q, ", "));
}

std::string order_by_literal(const std::vector<OrderByItem>& items) {
  std::vector<std::string> q;
  for (const auto& o : items) q.push_back(order_by_sql(o));
  return quote_literal(join(q, ", "));
}

std::string policy_text(const std::optional<Interval>& start, const std::optional<Interval>& end,
                        const Interval& schedule) {
  return "window " + text_of(start) + " → " + text_of(end) + " every " + format_interval(schedule);
}

class Builder {
 public:
  Builder(const DesiredTable& d, TablePlan& tp) : d_(d), tp_(tp) {}

  Step& add(std::string description, std::string sql) {
    Step s;
    s.table = d_.config_name;
    s.description = std::move(description);
    s.sql = std::move(sql);
    tp_.steps.push_back(std::move(s));
    return tp_.steps.back();
  }
  // A destructive step: skipped unless the config allows it. Returns true when it will be applied.
  bool destructive(Step& s, const std::string& reason = kDestructiveSkipReason) {
    s.destructive = true;
    if (!d_.allow_destructive) {
      s.skipped = true;
      s.skip_reason = reason;
      return false;
    }
    return true;
  }
  void skip(Step& s, std::string reason) {
    s.skipped = true;
    s.skip_reason = std::move(reason);
  }
  void note(std::string n) { tp_.notes.push_back(std::move(n)); }

 private:
  const DesiredTable& d_;
  TablePlan& tp_;
};

bool index_has_column(const IndexInfo& ix, const std::string& col) {
  return std::find(ix.columns.begin(), ix.columns.end(), col) != ix.columns.end();
}

// Unique indexes that do not include the time column: TimescaleDB and native partitioning both refuse them.
std::vector<std::string> blocking_unique_indexes(const ActualTable& a, const std::string& col) {
  std::vector<std::string> out;
  for (const auto& ix : a.indexes) {
    if (ix.unique && !index_has_column(ix, col)) out.push_back(ix.name + " (" + join(ix.columns, ", ") + ")");
  }
  return out;
}

void plan_indexes(const DesiredTable& d, const ActualTable& a, Builder& b) {
  for (const auto& ix : d.ts.indexes) {
    const std::string name = ix.name.empty() ? default_index_name(d, ix) : ix.name;
    const bool exists = std::any_of(a.indexes.begin(), a.indexes.end(), [&](const IndexInfo& i) { return i.name == name; });
    if (exists) continue;
    std::vector<std::string> cols;
    for (const auto& c : ix.columns) cols.push_back(order_by_sql(c));
    std::string sql = "CREATE INDEX IF NOT EXISTS " + quote_ident(name) + " ON " + qualified(d.table) + " USING " +
                      ix.type + " (" + join(cols, ", ") + ")";
    if (!ix.where.empty()) sql += " WHERE " + ix.where;
    b.add("index " + name + " is missing", sql);
  }
}

std::string create_cagg_sql(const DesiredTable& d, const ContinuousAggregateConfig& c, const QualifiedName& v) {
  return "CREATE MATERIALIZED VIEW " + qualified(v) +
         " WITH (timescaledb.continuous, timescaledb.materialized_only = " + (c.materialized_only ? "true" : "false") +
         ") AS " + aggregate_select(d, c, true) + " WITH NO DATA;\nCOMMENT ON VIEW " + qualified(v) + " IS " +
         quote_literal(aggregate_marker(d, c, true));
}

std::string add_cagg_policy_sql(const QualifiedName& v, const RefreshPolicyConfig& p) {
  return "SELECT add_continuous_aggregate_policy(" + regclass_literal(v) +
         ", start_offset => " + optional_interval_literal(p.start_offset) +
         ", end_offset => " + optional_interval_literal(p.end_offset) +
         ", schedule_interval => " + interval_literal(p.schedule_interval) + ")";
}

void plan_new_cagg(const DesiredTable& d, const ContinuousAggregateConfig& c, const QualifiedName& v, Builder& b,
                   const std::string& why) {
  b.add(why, create_cagg_sql(d, c, v));
  if (c.refresh_on_create) {
    b.add("fill continuous aggregate " + v.text() + " from the existing rows",
          "CALL refresh_continuous_aggregate(" + regclass_literal(v) + ", NULL, NULL)")
        .non_transactional = true;
  }
  for (const auto& p : c.refresh_policies) {
    b.add("add refresh policy of " + v.text() + ": " + policy_text(p.start_offset, p.end_offset, p.schedule_interval),
          add_cagg_policy_sql(v, p));
  }
}

void plan_cagg_policies(const ContinuousAggregateConfig& c, const ActualCagg& ac, Builder& b) {
  const QualifiedName& v = ac.view;
  std::vector<const ActualJob*> actual;
  for (const auto& j : ac.refresh_jobs) actual.push_back(&j);
  std::vector<const RefreshPolicyConfig*> wanted;
  for (const auto& p : c.refresh_policies) {
    auto it = std::find_if(actual.begin(), actual.end(), [&](const ActualJob* j) {
      return same(j->start_offset, p.start_offset) && same(j->end_offset, p.end_offset);
    });
    if (it == actual.end()) {
      wanted.push_back(&p);
      continue;
    }
    const ActualJob* j = *it;
    actual.erase(it);
    if (j->schedule_interval != p.schedule_interval) {
      b.add("refresh policy of " + v.text() + " (job " + std::to_string(j->job_id) + ") runs every " +
                format_interval(j->schedule_interval) + ", config says " + format_interval(p.schedule_interval),
            "SELECT alter_job(" + std::to_string(j->job_id) + ", schedule_interval => " +
                interval_literal(p.schedule_interval) + ")");
    }
  }
  auto remove_sql = [&](const ActualJob* j) {
    if (ac.refresh_jobs.size() == 1) {
      return "SELECT remove_continuous_aggregate_policy(" + regclass_literal(v) + ", if_exists => true)";
    }
    return "SELECT delete_job(" + std::to_string(j->job_id) + ")";
  };
  if (actual.size() == 1 && wanted.size() == 1) {
    const ActualJob* j = actual[0];
    const RefreshPolicyConfig* p = wanted[0];
    b.add("refresh policy of " + v.text() + " is " + policy_text(j->start_offset, j->end_offset, j->schedule_interval) +
              ", config says " + policy_text(p->start_offset, p->end_offset, p->schedule_interval),
          remove_sql(j) + ";\n" + add_cagg_policy_sql(v, *p));
    return;
  }
  for (const ActualJob* j : actual) {
    b.add("refresh policy of " + v.text() + " (job " + std::to_string(j->job_id) + ", " +
              policy_text(j->start_offset, j->end_offset, j->schedule_interval) + ") is not in the config",
          remove_sql(j));
  }
  for (const RefreshPolicyConfig* p : wanted) {
    b.add("refresh policy of " + v.text() + " is missing: " +
              policy_text(p->start_offset, p->end_offset, p->schedule_interval),
          add_cagg_policy_sql(v, *p));
  }
}

bool missing_extension(const ContinuousAggregateConfig& c, const Detection& det, std::string& which) {
  for (const auto& e : c.requires_extensions) {
    if (!det.has_extension(e)) {
      which = e;
      return true;
    }
  }
  return false;
}

}  // namespace

Interval partition_interval(const DesiredTable& d) {
  if (d.ts.chunk_interval) return *d.ts.chunk_interval;
  Interval week;
  week.days = 7;
  return week;
}

namespace {

// The table's actual state when it exists with its time column; otherwise notes why nothing is
// managed and returns null. Both modes start from this.
const ActualTable* managed_table(const DesiredTable& d, const ActualState& st, Builder& b) {
  auto found = st.tables.find(d.table);
  if (found == st.tables.end() || !found->second.exists) {
    b.note("table " + d.table.text() + " does not exist (create it first, e.g. sluiced migrate)");
    return nullptr;
  }
  if (found->second.time_column_type.empty()) {
    b.note("column " + d.ts.time_column + " does not exist in " + d.table.text() + ": nothing is managed");
    return nullptr;
  }
  return &found->second;
}

}  // namespace

// =============================================================================== TimescaleDB

TablePlan plan_timescaledb_table(const DesiredTable& d, const ActualState& st, bool community) {
  TablePlan tp;
  tp.table = d.config_name;
  Builder b(d, tp);
  const ActualTable* managed = managed_table(d, st, b);
  if (!managed) return tp;
  ActualTable a = *managed;
  const std::string& col = d.ts.time_column;
  const std::string rel = regclass_literal(d.table);

  // 1. hypertable
  if (!a.is_hypertable) {
    if (a.relkind == 'p') {
      b.note(d.table.text() + " is a natively partitioned table; TimescaleDB cannot convert it: nothing is managed");
      return tp;
    }
    std::string sql = "SELECT create_hypertable(" + rel + ", by_range(" + quote_literal(col) +
                      (d.ts.chunk_interval ? ", " + interval_literal(*d.ts.chunk_interval) : std::string()) +
                      "), if_not_exists => true, migrate_data => true)";
    Step& s = b.add(d.table.text() + " is not a hypertable: make it one on " + col +
                        (d.ts.chunk_interval ? " with " + format_interval(*d.ts.chunk_interval) + " chunks" : ""),
                    sql);
    const auto blocking = blocking_unique_indexes(a, col);
    if (!blocking.empty()) {
      b.skip(s, "unique index " + join(blocking, ", ") + " does not include the time column " + col +
                    "; TimescaleDB requires every unique index of a hypertable to include it");
      return tp;
    }
    a.is_hypertable = true;
    a.time_dimension_column = col;
    a.chunk_interval = d.ts.chunk_interval;
  } else if (a.time_dimension_column != col) {
    b.note("hypertable " + d.table.text() + " is partitioned on " + a.time_dimension_column + ", the config says " + col +
           ": a hypertable's time column cannot change; nothing is managed");
    return tp;
  }

  // 2. chunk interval (applies to chunks created from now on)
  if (d.ts.chunk_interval && a.chunk_interval && *a.chunk_interval != *d.ts.chunk_interval) {
    b.add("chunk interval is " + format_interval(*a.chunk_interval) + ", config says " +
              format_interval(*d.ts.chunk_interval) + " (applies to new chunks)",
          "SELECT set_chunk_time_interval(" + rel + ", " + interval_literal(*d.ts.chunk_interval) + ")");
  }

  // 3. indexes
  plan_indexes(d, a, b);

  // 4. compression
  if (d.ts.compression) {
    const CompressionConfig& c = *d.ts.compression;
    const ActualJob* job = a.compression_jobs.empty() ? nullptr : &a.compression_jobs[0];
    if (c.enabled) {
      const bool seg_differs = c.segment_by && *c.segment_by != a.segment_by;
      const bool ord_differs = c.order_by && *c.order_by != a.order_by;
      std::vector<std::string> opts;
      if (!a.compression_enabled) opts.push_back("timescaledb.compress");
      if (c.segment_by && (seg_differs || !a.compression_enabled)) {
        opts.push_back("timescaledb.compress_segmentby = " + segment_by_literal(*c.segment_by));
      }
      if (c.order_by && (ord_differs || !a.compression_enabled)) {
        opts.push_back("timescaledb.compress_orderby = " + order_by_literal(*c.order_by));
      }
      if (!opts.empty()) {
        std::string why;
        if (!a.compression_enabled) {
          why = "compression is off: enable it";
          if (c.segment_by) why += ", segment by " + list_text(*c.segment_by);
          if (c.order_by) why += ", order by " + order_text(*c.order_by);
        } else {
          std::vector<std::string> parts;
          if (seg_differs) parts.push_back("segment_by is " + list_text(a.segment_by) + ", config says " + list_text(*c.segment_by));
          if (ord_differs) parts.push_back("order_by is " + order_text(a.order_by) + ", config says " + order_text(*c.order_by));
          why = "compression " + join(parts, "; ");
        }
        Step& s = b.add(why, "ALTER TABLE " + qualified(d.table) + " SET (" + join(opts, ", ") + ")");
        if (!community) b.skip(s, kLicenseReason);
      }
      if (c.after) {
        const std::string add = "SELECT add_compression_policy(" + rel + ", " + interval_literal(*c.after) + ")";
        if (!job) {
          Step& s = b.add("compression policy is missing: compress chunks older than " + format_interval(*c.after), add);
          if (!community) b.skip(s, kLicenseReason);
        } else if (!job->compress_after || *job->compress_after != *c.after) {
          b.add("compression policy (job " + std::to_string(job->job_id) + ") compresses after " +
                    text_of(job->compress_after) + ", config says " + format_interval(*c.after),
                "SELECT remove_compression_policy(" + rel + ", if_exists => true);\n" + add);
        }
      }
    } else {
      if (job) {
        b.add("compression policy (job " + std::to_string(job->job_id) + ") exists, config disables compression",
              "SELECT remove_compression_policy(" + rel + ", if_exists => true)");
      }
      if (a.compression_enabled) {
        b.add("compression is on, config disables it (fails while compressed chunks exist)",
              "ALTER TABLE " + qualified(d.table) + " SET (timescaledb.compress = false)");
      }
    }
  }

  // 5. retention
  if (d.ts.retention) {
    const RetentionConfig& r = *d.ts.retention;
    const ActualJob* job = a.retention_jobs.empty() ? nullptr : &a.retention_jobs[0];
    if (r.enabled) {
      const std::string add = "SELECT add_retention_policy(" + rel + ", " + interval_literal(r.drop_after) + ")";
      if (!job) {
        Step& s = b.add("retention policy is missing: drop chunks older than " + format_interval(r.drop_after), add);
        if (!community) b.skip(s, kLicenseReason);
      } else if (!job->drop_after || *job->drop_after != r.drop_after) {
        const bool shorter = job->drop_after && r.drop_after < *job->drop_after;
        Step& s = b.add("retention policy (job " + std::to_string(job->job_id) + ") drops chunks older than " +
                            text_of(job->drop_after) + ", config says " + format_interval(r.drop_after),
                        "SELECT remove_retention_policy(" + rel + ", if_exists => true);\n" + add);
        if (shorter) b.destructive(s);
      }
    } else if (job) {
      b.add("retention policy (job " + std::to_string(job->job_id) + ") exists, config disables retention",
            "SELECT remove_retention_policy(" + rel + ", if_exists => true)");
    }
  }

  // 6. continuous aggregates
  std::set<QualifiedName> wanted;
  for (const auto& c : d.ts.continuous_aggregates) {
    const QualifiedName v = split_name(c.name, d.table.schema);
    wanted.insert(v);
    const ActualCagg* ac = nullptr;
    for (const auto& x : st.caggs) {
      if (x.view == v) ac = &x;
    }
    std::string ext;
    if (!ac && !community) {
      b.skip(b.add("continuous aggregate " + v.text() + " is missing", create_cagg_sql(d, c, v)), kLicenseReason);
      continue;
    }
    if (!ac && missing_extension(c, st.detection, ext)) {
      b.skip(b.add("continuous aggregate " + v.text() + " is missing", create_cagg_sql(d, c, v)),
             "its definition needs the " + ext + " extension, which is not installed (CREATE EXTENSION " + ext + ")");
      continue;
    }
    if (!ac) {
      auto rel_it = st.relations.find(v);
      if (rel_it != st.relations.end() && rel_it->second.relkind != 0) {
        b.note(v.text() + " exists and is not a continuous aggregate: not touched");
        continue;
      }
      plan_new_cagg(d, c, v, b, "continuous aggregate " + v.text() + " is missing");
      continue;
    }
    if (!(ac->hypertable == d.table)) {
      b.note("continuous aggregate " + v.text() + " is defined on " + ac->hypertable.text() + ", not on " +
             d.table.text() + ": not touched");
      continue;
    }
    const std::string marker = aggregate_marker(d, c, true);
    if (ac->comment.rfind(kMarkerPrefix, 0) == 0 && ac->comment != marker) {
      Step& s = b.add("definition of continuous aggregate " + v.text() +
                          " changed in the config: drop it and create it again (its materialized rows are recomputed)",
                      "DROP MATERIALIZED VIEW " + qualified(v) + ";\n" + create_cagg_sql(d, c, v));
      if (b.destructive(s)) {
        if (c.refresh_on_create) {
          b.add("fill continuous aggregate " + v.text() + " from the existing rows",
                "CALL refresh_continuous_aggregate(" + regclass_literal(v) + ", NULL, NULL)")
              .non_transactional = true;
        }
        for (const auto& p : c.refresh_policies) {
          b.add("add refresh policy of " + v.text() + ": " + policy_text(p.start_offset, p.end_offset, p.schedule_interval),
                add_cagg_policy_sql(v, p));
        }
        continue;
      }
    } else if (ac->comment.rfind(kMarkerPrefix, 0) != 0) {
      b.note("continuous aggregate " + v.text() + " was not created by sluice: its definition is not compared");
    }
    if (ac->materialized_only != c.materialized_only) {
      b.add("continuous aggregate " + v.text() + " is " + (ac->materialized_only ? "materialized-only" : "real-time") +
                ", config says " + (c.materialized_only ? "materialized-only" : "real-time"),
            "ALTER MATERIALIZED VIEW " + qualified(v) + " SET (timescaledb.materialized_only = " +
                (c.materialized_only ? "true" : "false") + ")");
    }
    plan_cagg_policies(c, *ac, b);
  }
  for (const auto& x : st.caggs) {
    if (!(x.hypertable == d.table) || wanted.count(x.view)) continue;
    if (x.comment.rfind(kMarkerPrefix, 0) == 0) {
      Step& s = b.add("continuous aggregate " + x.view.text() + " (created by sluice) is no longer in the config: drop it",
                      "DROP MATERIALIZED VIEW " + qualified(x.view));
      b.destructive(s);
    } else {
      b.note("continuous aggregate " + x.view.text() + " is not in the config and was not created by sluice: left alone");
    }
  }
  return tp;
}

// =============================================================================== plain PostgreSQL

std::string summary_refresh_sql(const DesiredTable& d, const ContinuousAggregateConfig& c, int64_t lo, int64_t hi) {
  const QualifiedName v = split_name(c.name, d.table.schema);
  const std::string col = quote_ident(d.ts.time_column);
  return "DELETE FROM " + qualified(v) + " WHERE " + quote_ident(c.bucket_column) + " >= " + timestamptz_literal(lo) +
         " AND " + quote_ident(c.bucket_column) + " < " + timestamptz_literal(hi) + ";\nINSERT INTO " + qualified(v) +
         " " + aggregate_select(d, c, false, col + " >= " + timestamptz_literal(lo) + " AND " + col + " < " + timestamptz_literal(hi));
}

std::string cagg_refresh_sql(const QualifiedName& view, int64_t lo, int64_t hi) {
  return "CALL refresh_continuous_aggregate(" + regclass_literal(view) + ", " + timestamptz_literal(lo) + ", " +
         timestamptz_literal(hi) + ")";
}

namespace {

std::string partition_bounds(int64_t lo, int64_t hi) {
  return "FOR VALUES FROM (" + quote_literal(format_pg_time(lo)) + ") TO (" + quote_literal(format_pg_time(hi)) + ")";
}

std::string default_partition_name(const std::string& table) {
  std::string base = table;
  if (base.size() > 55) base = base.substr(0, 55);
  return base + "_default";
}

bool overlaps(const std::vector<Partition>& parts, int64_t lo, int64_t hi) {
  for (const auto& p : parts) {
    if (p.is_default) continue;
    if (!p.bounded) return true;  // unknown bounds: do not risk an overlap error
    if (p.lo < hi && lo < p.hi) return true;
  }
  return false;
}

void plan_summaries(const DesiredTable& d, const ActualState& st, Builder& b) {
  for (const auto& c : d.ts.continuous_aggregates) {
    const QualifiedName v = split_name(c.name, d.table.schema);
    const std::string create_desc = "summary table " + v.text() + " (continuous aggregate without TimescaleDB) is missing";
    std::string ext;
    if (!c.select.empty()) {
      b.note("continuous aggregate " + v.text() + " is given as a verbatim select, which needs TimescaleDB: "
             "without it there is no summary table (give \"aggregates\" instead)");
      continue;
    }
    if (missing_extension(c, st.detection, ext)) {
      b.note("continuous aggregate " + v.text() + " needs the " + ext + " extension, which is not installed: skipped");
      continue;
    }
    if (bucket_expression(d, c, false).empty()) {
      b.note("continuous aggregate " + v.text() + ": a bucket of " + format_interval(c.bucket_width) +
             " cannot be computed without TimescaleDB (fixed widths, 1 month or 1 year only): skipped");
      continue;
    }
    const std::string marker = aggregate_marker(d, c, false);
    std::vector<std::string> idx_cols = {quote_ident(c.bucket_column)};
    for (const auto& g : c.group_by) idx_cols.push_back(quote_ident(g));
    std::string idx_name = v.name;
    if (idx_name.size() > 52) idx_name = idx_name.substr(0, 52);
    idx_name += "_bucket_idx";
    const std::string create = "CREATE TABLE " + qualified(v) + " AS " + aggregate_select(d, c, false) + ";\nCREATE INDEX " +
                               quote_ident(idx_name) + " ON " + qualified(v) + " (" + join(idx_cols, ", ") +
                               ");\nCOMMENT ON TABLE " + qualified(v) + " IS " + quote_literal(marker);
    auto rel_it = st.relations.find(v);
    const ActualRelation none;
    const ActualRelation& r = rel_it == st.relations.end() ? none : rel_it->second;
    if (r.relkind == 0) {
      b.add(create_desc + ": create it from the existing rows", create);
    } else if (r.relkind != 'r' || r.comment.rfind(kMarkerPrefix, 0) != 0) {
      b.note(v.text() + " exists and was not created by sluice: not touched");
      continue;
    } else if (r.comment != marker) {
      Step& s = b.add("definition of summary table " + v.text() + " changed in the config: drop it and create it again",
                      "DROP TABLE " + qualified(v) + ";\n" + create);
      b.destructive(s);
    }
    if (!c.materialized_only) {
      b.note("real-time aggregation is unavailable without TimescaleDB: " + v.text() + " shows refreshed buckets only");
    }
    for (const auto& p : c.refresh_policies) {
      b.note("summary table " + v.text() + " is refreshed by sluice: " +
             policy_text(p.start_offset, p.end_offset, p.schedule_interval) + ", and after late rows are committed");
    }
  }
}

}  // namespace

TablePlan plan_fallback_table(const DesiredTable& d, const ActualState& st, int64_t now) {
  TablePlan tp;
  tp.table = d.config_name;
  Builder b(d, tp);
  const ActualTable* managed = managed_table(d, st, b);
  if (!managed) return tp;
  ActualTable a = *managed;
  const std::string& col = d.ts.time_column;
  if (d.ts.compression && d.ts.compression->enabled) {
    b.note("compression is unavailable without TimescaleDB: the compression settings are not applied");
  }
  const bool time_ok = a.time_column_type == "timestamp with time zone" || a.time_column_type == "timestamp without time zone";
  const Interval iv = partition_interval(d);
  const std::string tbl = qualified(d.table);
  const std::string default_name = default_partition_name(d.table.name);
  const QualifiedName default_q{d.table.schema, default_name};
  std::optional<int64_t> cutoff;
  if (d.ts.retention && d.ts.retention->enabled) cutoff = add_interval(now, d.ts.retention->drop_after, -1);

  bool partitions_managed = false;
  if (!time_ok) {
    b.note("time column " + col + " is " + a.time_column_type +
           ": range partitions are managed for timestamptz/timestamp columns only");
  } else if (a.relkind == 'r') {
    // Convert the plain table: one transaction that swaps in a partitioned copy.
    std::set<int64_t> buckets(a.unpartitioned_buckets.begin(), a.unpartitioned_buckets.end());
    const int64_t first = bucket_floor(now, iv);
    for (int k = 0; k <= d.ts.partitions_ahead; ++k) buckets.insert(bucket_add(first, iv, k));
    std::vector<Partition> created;
    for (int64_t lo : buckets) {
      if (created.size() >= kMaxPartitionsPerPlan) break;
      Partition p;
      p.name = partition_name(d.table.name, lo, iv);
      p.lo = lo;
      p.hi = bucket_add(lo, iv);
      p.bounded = true;
      created.push_back(p);
    }
    const QualifiedName old{d.table.schema, (d.table.name.size() > 50 ? d.table.name.substr(0, 50) : d.table.name) + "__sluice_old"};
    std::string sql = "LOCK TABLE " + tbl + " IN ACCESS EXCLUSIVE MODE";
    for (auto it = a.dependent_views.rbegin(); it != a.dependent_views.rend(); ++it) sql += ";\nDROP VIEW " + qualified(it->name);
    for (const auto& [seq, c] : a.owned_sequences) sql += ";\nALTER SEQUENCE " + qualified(seq) + " OWNED BY NONE";
    sql += ";\nALTER TABLE " + tbl + " RENAME TO " + quote_ident(old.name);
    sql += ";\nCREATE TABLE " + tbl + " (LIKE " + qualified(old) +
           " INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE INCLUDING COMMENTS) PARTITION BY RANGE (" +
           quote_ident(col) + ")";
    for (const auto& p : created) {
      sql += ";\nCREATE TABLE " + qualified({d.table.schema, p.name}) + " PARTITION OF " + tbl + " " + partition_bounds(p.lo, p.hi);
    }
    sql += ";\nCREATE TABLE " + qualified(default_q) + " PARTITION OF " + tbl + " DEFAULT";
    sql += ";\nINSERT INTO " + tbl + " SELECT * FROM " + qualified(old);
    sql += ";\nDROP TABLE " + qualified(old);
    for (const auto& ix : a.indexes) sql += ";\n" + ix.definition;
    for (const auto& fk : a.foreign_keys) sql += ";\nALTER TABLE " + tbl + " ADD CONSTRAINT " + fk;
    for (const auto& [seq, c] : a.owned_sequences) {
      sql += ";\nALTER SEQUENCE " + qualified(seq) + " OWNED BY " + tbl + "." + quote_ident(c);
    }
    for (const auto& v : a.dependent_views) sql += ";\nCREATE VIEW " + qualified(v.name) + " AS " + v.definition;
    Step& s = b.add(d.table.text() + " is a plain table: convert it into a table range-partitioned on " + col + " by " +
                        format_interval(iv) + " (" + std::to_string(created.size()) + " partitions and a DEFAULT partition" +
                        (a.has_rows ? ", rows copied" : "") + ")",
                    sql);
    std::vector<std::string> blockers;
    for (const auto& u : blocking_unique_indexes(a, col)) {
      blockers.push_back("unique index " + u + " does not include the partition column " + col);
    }
    for (const auto& f : a.incoming_foreign_keys) blockers.push_back("foreign key " + f + " references it");
    for (const auto& m : a.dependent_matviews) blockers.push_back("materialized view " + m + " depends on it");
    for (const auto& c : a.identity_columns) blockers.push_back("identity column " + c + " would restart its sequence");
    if (!blockers.empty()) {
      b.skip(s, "it cannot be converted into a partitioned table: " + join(blockers, "; ") +
                    ". Change the schema by hand; until then its partitions and retention are not managed");
    } else if (a.has_rows) {
      s.destructive = true;
      if (!d.allow_destructive) {
        b.skip(s, "it holds rows: converting rewrites all of them under an exclusive lock. Set \"allow_destructive\": "
                  "true to allow it; until then its partitions and retention are not managed");
      }
    }
    if (!s.skipped) {
      a.relkind = 'p';
      a.partition_strategy = "range";
      a.partition_column = col;
      a.partitions = created;
      Partition def;
      def.name = default_name;
      def.is_default = true;
      a.partitions.push_back(def);
      a.unpartitioned_buckets.clear();
      a.default_rows = 0;
      partitions_managed = true;
    }
  } else if (a.relkind == 'p') {
    if (a.partition_strategy != "range" || a.partition_column != col) {
      b.note(d.table.text() + " is partitioned by " + a.partition_strategy + " on " +
             (a.partition_column.empty() ? std::string("an expression or several columns") : a.partition_column) +
             ", not by range on " + col + ": partitions are not managed");
    } else {
      partitions_managed = true;
      const bool has_default = std::any_of(a.partitions.begin(), a.partitions.end(), [](const Partition& p) { return p.is_default; });
      if (!has_default) {
        b.add("no DEFAULT partition: add one, so that rows outside the prepared partitions are kept (sluice moves them "
              "into their own partitions)",
              "CREATE TABLE " + qualified(default_q) + " PARTITION OF " + tbl + " DEFAULT");
      }
      // Rows waiting in the DEFAULT partition: each range gets its own partition (rows moved in one transaction).
      std::string default_rel;
      for (const auto& p : a.partitions) {
        if (p.is_default) default_rel = qualified({d.table.schema, p.name});
      }
      std::vector<int64_t> expired;
      size_t made = 0;
      for (int64_t lo : a.unpartitioned_buckets) {
        const int64_t hi = bucket_add(lo, iv);
        if (cutoff && hi <= *cutoff) {
          expired.push_back(lo);
          continue;
        }
        if (overlaps(a.partitions, lo, hi) || default_rel.empty() || made >= kMaxPartitionsPerPlan) continue;
        const std::string pname = partition_name(d.table.name, lo, iv);
        const std::string pq = qualified({d.table.schema, pname});
        const std::string range = quote_ident(col) + " >= " + timestamptz_literal(lo) + " AND " + quote_ident(col) + " < " +
                                  timestamptz_literal(hi);
        b.add("rows from " + format_pg_time(lo) + " to " + format_pg_time(hi) +
                  " wait in the DEFAULT partition: create partition " + pname + " and move them into it",
              "CREATE TABLE " + pq + " (LIKE " + tbl + " INCLUDING DEFAULTS INCLUDING CONSTRAINTS);\nWITH moved AS (DELETE FROM " +
                  default_rel + " WHERE " + range + " RETURNING *) INSERT INTO " + pq + " SELECT * FROM moved;\nALTER TABLE " +
                  tbl + " ATTACH PARTITION " + pq + " " + partition_bounds(lo, hi));
        Partition p;
        p.name = pname;
        p.lo = lo;
        p.hi = hi;
        p.bounded = true;
        a.partitions.push_back(p);
        ++made;
      }
      if (!expired.empty() && !default_rel.empty()) {
        const int64_t upto = bucket_add(*std::max_element(expired.begin(), expired.end()), iv);
        b.add("rows older than the retention (" + format_interval(d.ts.retention->drop_after) +
                  ") wait in the DEFAULT partition: delete them",
              "DELETE FROM " + default_rel + " WHERE " + quote_ident(col) + " < " + timestamptz_literal(upto));
      }
      // Partitions ahead of now.
      const int64_t first = bucket_floor(now, iv);
      for (int k = 0; k <= d.ts.partitions_ahead; ++k) {
        const int64_t lo = bucket_add(first, iv, k);
        const int64_t hi = bucket_add(lo, iv);
        if (overlaps(a.partitions, lo, hi)) continue;
        const std::string pname = partition_name(d.table.name, lo, iv);
        b.add("partition for " + format_pg_time(lo) + " to " + format_pg_time(hi) + " is missing (kept " +
                  std::to_string(d.ts.partitions_ahead) + " ahead)",
              "CREATE TABLE " + qualified({d.table.schema, pname}) + " PARTITION OF " + tbl + " " + partition_bounds(lo, hi));
        Partition p;
        p.name = pname;
        p.lo = lo;
        p.hi = hi;
        p.bounded = true;
        a.partitions.push_back(p);
      }
    }
  }

  // Retention: detach and drop partitions wholly older than now - drop_after.
  if (partitions_managed && cutoff) {
    std::vector<const Partition*> old;
    for (const auto& p : a.partitions) {
      if (!p.is_default && p.bounded && p.hi <= *cutoff) old.push_back(&p);
    }
    std::sort(old.begin(), old.end(), [](const Partition* x, const Partition* y) { return x->lo < y->lo; });
    for (const Partition* p : old) {
      const std::string pq = qualified({d.table.schema, p->name});
      b.add("partition " + p->name + " (" + format_pg_time(p->lo) + " to " + format_pg_time(p->hi) +
                ") is wholly older than the retention of " + format_interval(d.ts.retention->drop_after) + ": drop it",
            "ALTER TABLE " + tbl + " DETACH PARTITION " + pq + ";\nDROP TABLE " + pq);
    }
  }

  plan_summaries(d, st, b);
  plan_indexes(d, a, b);
  return tp;
}

// =============================================================================== entry point

Plan make_plan(const std::vector<DesiredTable>& desired, const ActualState& actual, int64_t now_pg_us) {
  Plan plan;
  plan.mode = classify(actual.detection);
  for (const auto& d : desired) {
    switch (plan.mode.mode) {
      case PolicyMode::timescaledb:
        plan.tables.push_back(plan_timescaledb_table(d, actual, true));
        break;
      case PolicyMode::timescaledb_apache:
        plan.tables.push_back(plan_timescaledb_table(d, actual, false));
        break;
      case PolicyMode::plain_postgres:
        plan.tables.push_back(plan_fallback_table(d, actual, now_pg_us));
        break;
      case PolicyMode::unsupported: {
        TablePlan tp;
        tp.table = d.config_name;
        tp.notes.push_back("not managed: " + plan.mode.summary);
        plan.tables.push_back(std::move(tp));
        break;
      }
    }
  }
  return plan;
}

}  // namespace sluice::policy
