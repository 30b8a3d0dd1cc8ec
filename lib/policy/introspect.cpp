#include "policy/introspect.h"

#include <algorithm>
#include <set>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "policy/planner.h"
#include "policy/sql_text.h"

namespace sluice::policy {
namespace {

using Rows = std::vector<std::vector<std::string>>;

// Runs a query; NULL becomes "" (callers that care use coalesce / IS NULL columns).
Rows rows(pg::Connection& conn, const std::string& sql, const std::vector<std::string>& params = {}) {
  pg::Result r = conn.query(sql, params);
  Rows out;
  const int n = PQntuples(r.get());
  const int f = PQnfields(r.get());
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    std::vector<std::string> row;
    row.reserve(static_cast<size_t>(f));
    for (int j = 0; j < f; ++j) row.emplace_back(PQgetisnull(r.get(), i, j) ? "" : PQgetvalue(r.get(), i, j));
    out.push_back(std::move(row));
  }
  return out;
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  if (s.empty()) return out;
  size_t start = 0;
  while (true) {
    const auto p = s.find(sep, start);
    out.push_back(s.substr(start, p == std::string::npos ? std::string::npos : p - start));
    if (p == std::string::npos) break;
    start = p + 1;
  }
  return out;
}

std::optional<Interval> interval_of(const std::string& text) {
  Interval iv;
  if (text.empty() || !parse_interval(text, iv)) return std::nullopt;
  return iv;
}

// Splits "a, \"b, c\" DESC" at top-level commas.
std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  bool quoted = false;
  for (char c : text) {
    if (c == '"') quoted = !quoted;
    if (c == ',' && !quoted) {
      out.push_back(cur);
      cur.clear();
      continue;
    }
    cur.push_back(c);
  }
  if (!cur.empty() || !out.empty()) out.push_back(cur);
  for (auto& s : out) {
    while (!s.empty() && s.front() == ' ') s.erase(0, 1);
    while (!s.empty() && s.back() == ' ') s.pop_back();
  }
  out.erase(std::remove_if(out.begin(), out.end(), [](const std::string& s) { return s.empty(); }), out.end());
  return out;
}

const std::string kEpochMicros = "946684800000000";

// SQL: pg micros (bigint) of a timestamptz expression.
std::string pg_micros_sql(const std::string& expr) {
  return "((extract(epoch from " + expr + ") * 1000000)::bigint - " + kEpochMicros + ")";
}

void read_indexes(pg::Connection& conn, const std::string& oid, const QualifiedName& table, ActualTable& a) {
  const Rows r = rows(conn,
                      "SELECT i.relname, x.indisunique, x.indisprimary, coalesce(con.conname, ''), "
                      "pg_get_indexdef(x.indexrelid), coalesce(pg_get_constraintdef(con.oid), ''), "
                      "(SELECT string_agg(coalesce(a.attname, ''), chr(31) ORDER BY k.ord) "
                      "   FROM unnest(x.indkey::int2[]) WITH ORDINALITY k(attnum, ord) "
                      "   LEFT JOIN pg_attribute a ON a.attrelid = x.indrelid AND a.attnum = k.attnum "
                      "  WHERE k.ord <= x.indnkeyatts) "
                      "FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid "
                      "LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = x.indrelid "
                      "     AND con.contype IN ('p', 'u', 'x') "
                      "WHERE x.indrelid = $1::oid ORDER BY i.relname",
                      {oid});
  for (const auto& row : r) {
    IndexInfo ix;
    ix.name = row[0];
    ix.unique = row[1] == "t";
    ix.primary = row[2] == "t";
    ix.constraint_name = row[3];
    ix.definition = ix.constraint_name.empty()
                        ? row[4]
                        : "ALTER TABLE " + qualified(table) + " ADD CONSTRAINT " + quote_ident(ix.constraint_name) + " " + row[5];
    ix.columns = split(row[6], '\x1f');
    a.indexes.push_back(std::move(ix));
  }
}

// Starts of partition-sized ranges that hold rows in `rel`.
std::vector<int64_t> row_buckets(pg::Connection& conn, const std::string& rel, const std::string& col, const Interval& iv) {
  std::vector<int64_t> out;
  if (iv.months == 0) {
    const Rows r = rows(conn, "SELECT DISTINCT " +
                                  pg_micros_sql("date_bin(" + interval_literal(iv) + ", " + quote_ident(col) +
                                                "::timestamptz, TIMESTAMPTZ '2000-01-03 00:00:00+00')") +
                                  " FROM " + rel + " WHERE " + quote_ident(col) + " IS NOT NULL ORDER BY 1 LIMIT 1001");
    for (const auto& row : r) out.push_back(std::stoll(row[0]));
  } else {
    const Rows r = rows(conn, "SELECT DISTINCT " + pg_micros_sql("date_trunc('month', " + quote_ident(col) + "::timestamptz)") +
                                  " FROM " + rel + " WHERE " + quote_ident(col) + " IS NOT NULL ORDER BY 1 LIMIT 12001");
    std::set<int64_t> b;
    for (const auto& row : r) b.insert(bucket_floor(std::stoll(row[0]), iv));
    out.assign(b.begin(), b.end());
  }
  return out;
}

void read_fallback(pg::Connection& conn, const DesiredTable& d, const std::string& oid, ActualTable& a) {
  const std::string tbl = qualified(d.table);
  const std::string& col = d.ts.time_column;
  const Interval iv = partition_interval(d);
  const bool time_ok = a.time_column_type == "timestamp with time zone" || a.time_column_type == "timestamp without time zone";
  if (a.relkind == 'p') {
    const Rows key = rows(conn,
                          "SELECT pt.partstrat, pt.partnatts, coalesce(a.attname, '') FROM pg_partitioned_table pt "
                          "LEFT JOIN pg_attribute a ON a.attrelid = pt.partrelid AND a.attnum = pt.partattrs[0] "
                          "WHERE pt.partrelid = $1::oid",
                          {oid});
    if (!key.empty()) {
      a.partition_strategy = key[0][0] == "r" ? "range" : key[0][0] == "l" ? "list" : "hash";
      if (key[0][1] == "1") a.partition_column = key[0][2];
    }
    if (a.partition_strategy != "range" || a.partition_column != col || !time_ok) return;
    const Rows parts = rows(
        conn,
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT', " +
            pg_micros_sql("(b)[1]::timestamptz") + ", " + pg_micros_sql("(b)[2]::timestamptz") +
            " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "LEFT JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid), "
            "'^FOR VALUES FROM \\(''([^'']*)''\\) TO \\(''([^'']*)''\\)$') AS b ON true "
            "WHERE i.inhparent = $1::oid ORDER BY 3 NULLS FIRST",
        {oid});
    for (const auto& row : parts) {
      Partition p;
      p.name = row[0];
      p.is_default = row[1] == "t";
      if (!row[2].empty() && !row[3].empty()) {
        p.lo = std::stoll(row[2]);
        p.hi = std::stoll(row[3]);
        p.bounded = true;
      }
      a.partitions.push_back(p);
      if (p.is_default) {
        const std::string def = qualified({d.table.schema, p.name});
        a.default_rows = std::stoll(rows(conn, "SELECT count(*) FROM " + def)[0][0]);
        if (a.default_rows > 0) a.unpartitioned_buckets = row_buckets(conn, def, col, iv);
      }
    }
    a.has_rows = rows(conn, "SELECT EXISTS (SELECT 1 FROM " + tbl + ")")[0][0] == "t";
    return;
  }
  if (a.relkind != 'r') return;
  // A plain table: what converting it needs to know.
  a.has_rows = rows(conn, "SELECT EXISTS (SELECT 1 FROM " + tbl + ")")[0][0] == "t";
  if (a.has_rows && time_ok) a.unpartitioned_buckets = row_buckets(conn, tbl, col, iv);
  for (const auto& r : rows(conn, "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                                  "WHERE conrelid = $1::oid AND contype = 'f' ORDER BY conname",
                            {oid})) {
    a.foreign_key_names.push_back(r[0]);
    a.foreign_keys.push_back(quote_ident(r[0]) + " " + r[1]);
  }
  for (const auto& r : rows(conn, "SELECT conrelid::regclass::text || '.' || conname FROM pg_constraint "
                                  "WHERE confrelid = $1::oid AND contype = 'f' AND conrelid <> $1::oid ORDER BY 1",
                            {oid})) {
    a.incoming_foreign_keys.push_back(r[0]);
  }
  const Rows deps = rows(conn,
                         "WITH RECURSIVE deps(oid, depth) AS ("
                         "  SELECT r.ev_class, 1 FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid "
                         "   WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass "
                         "     AND d.refobjid = $1::oid AND r.ev_class <> $1::oid "
                         "  UNION "
                         "  SELECT r.ev_class, deps.depth + 1 FROM deps JOIN pg_depend d ON d.refobjid = deps.oid "
                         "    JOIN pg_rewrite r ON r.oid = d.objid "
                         "   WHERE d.classid = 'pg_rewrite'::regclass AND d.refclassid = 'pg_class'::regclass "
                         "     AND r.ev_class <> deps.oid AND deps.depth < 20) "
                         "SELECT n.nspname, c.relname, c.relkind, pg_get_viewdef(c.oid), max(deps.depth) "
                         "FROM deps JOIN pg_class c ON c.oid = deps.oid JOIN pg_namespace n ON n.oid = c.relnamespace "
                         "GROUP BY n.nspname, c.relname, c.relkind, c.oid ORDER BY 5, 1, 2",
                         {oid});
  for (const auto& r : deps) {
    if (r[2] == "m") {
      a.dependent_matviews.push_back(r[0] + "." + r[1]);
      continue;
    }
    DependentView v;
    v.name = {r[0], r[1]};
    v.definition = r[3];
    while (!v.definition.empty() && (v.definition.back() == ';' || v.definition.back() == ' ' || v.definition.back() == '\n')) {
      v.definition.pop_back();
    }
    while (!v.definition.empty() && (v.definition.front() == ' ' || v.definition.front() == '\n')) v.definition.erase(0, 1);
    v.depth = std::stoi(r[4]);
    a.dependent_views.push_back(std::move(v));
  }
  for (const auto& r : rows(conn,
                            "SELECT sn.nspname, s.relname, a.attname FROM pg_depend d "
                            "JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' "
                            "JOIN pg_namespace sn ON sn.oid = s.relnamespace "
                            "JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid "
                            "WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass "
                            "  AND d.refobjid = $1::oid AND d.deptype = 'a' ORDER BY 1, 2",
                            {oid})) {
    a.owned_sequences.push_back({{r[0], r[1]}, r[2]});
  }
  for (const auto& r : rows(conn, "SELECT attname FROM pg_attribute WHERE attrelid = $1::oid AND attnum > 0 "
                                  "AND NOT attisdropped AND attidentity <> '' ORDER BY attnum",
                            {oid})) {
    a.identity_columns.push_back(r[0]);
  }
}

void read_timescaledb(pg::Connection& conn, ActualState& st) {
  std::map<QualifiedName, ActualTable*> by_name;
  for (auto& [name, t] : st.tables) by_name[name] = &t;
  for (const auto& r : rows(conn, "SELECT hypertable_schema, hypertable_name, compression_enabled "
                                  "FROM timescaledb_information.hypertables")) {
    auto it = by_name.find({r[0], r[1]});
    if (it == by_name.end()) continue;
    it->second->is_hypertable = true;
    it->second->compression_enabled = r[2] == "t";
  }
  for (const auto& r : rows(conn, "SELECT hypertable_schema, hypertable_name, column_name, "
                                  "coalesce(time_interval::text, '') FROM timescaledb_information.dimensions "
                                  "ORDER BY hypertable_schema, hypertable_name, dimension_number")) {
    auto it = by_name.find({r[0], r[1]});
    if (it == by_name.end() || !it->second->time_dimension_column.empty()) continue;
    it->second->time_dimension_column = r[2];
    it->second->chunk_interval = interval_of(r[3]);
  }
  // Compression settings: the per-column view of 2.13 where it exists, else the per-hypertable one.
  const bool per_column =
      rows(conn, "SELECT to_regclass('timescaledb_information.compression_settings') IS NOT NULL")[0][0] == "t";
  if (per_column) {
    for (const auto& r : rows(conn, "SELECT hypertable_schema, hypertable_name, attname, "
                                    "coalesce(segmentby_column_index::text, ''), coalesce(orderby_column_index::text, ''), "
                                    "coalesce(orderby_asc::text, ''), coalesce(orderby_nullsfirst::text, '') "
                                    "FROM timescaledb_information.compression_settings "
                                    "ORDER BY hypertable_schema, hypertable_name, segmentby_column_index, orderby_column_index")) {
      auto it = by_name.find({r[0], r[1]});
      if (it == by_name.end()) continue;
      if (!r[3].empty()) it->second->segment_by.push_back(r[2]);
    }
    for (const auto& r : rows(conn, "SELECT hypertable_schema, hypertable_name, attname, orderby_asc, orderby_nullsfirst "
                                    "FROM timescaledb_information.compression_settings WHERE orderby_column_index IS NOT NULL "
                                    "ORDER BY hypertable_schema, hypertable_name, orderby_column_index")) {
      auto it = by_name.find({r[0], r[1]});
      if (it == by_name.end()) continue;
      OrderByItem o;
      o.column = r[2];
      o.desc = r[3] == "f";
      o.nulls_first = r[4] == "t";
      it->second->order_by.push_back(o);
    }
  } else {
    for (const auto& r : rows(conn, "SELECT n.nspname, c.relname, coalesce(s.segmentby, ''), coalesce(s.orderby, '') "
                                    "FROM timescaledb_information.hypertable_compression_settings s "
                                    "JOIN pg_class c ON c.oid = s.hypertable JOIN pg_namespace n ON n.oid = c.relnamespace")) {
      auto it = by_name.find({r[0], r[1]});
      if (it == by_name.end()) continue;
      it->second->segment_by = parse_segmentby_text(r[2]);
      it->second->order_by = parse_orderby_text(r[3]);
    }
  }
  // Policy jobs.
  std::vector<ActualJob> refresh_jobs;
  for (const auto& r : rows(conn, "SELECT job_id, proc_name, coalesce(hypertable_schema, ''), coalesce(hypertable_name, ''), "
                                  "schedule_interval::text, coalesce(config::text, '{}'), scheduled "
                                  "FROM timescaledb_information.jobs WHERE proc_name IN ('policy_compression', "
                                  "'policy_retention', 'policy_refresh_continuous_aggregate') ORDER BY job_id")) {
    ActualJob j;
    j.job_id = std::stoi(r[0]);
    j.kind = r[1] == "policy_compression" ? JobKind::compression
             : r[1] == "policy_retention" ? JobKind::retention
                                          : JobKind::refresh;
    j.target = {r[2], r[3]};
    if (auto iv = interval_of(r[4])) j.schedule_interval = *iv;
    parse_job_config(r[5], j);
    j.scheduled = r[6] == "t";
    if (j.kind == JobKind::refresh) {
      refresh_jobs.push_back(j);
      continue;
    }
    auto it = by_name.find(j.target);
    if (it == by_name.end()) continue;
    (j.kind == JobKind::compression ? it->second->compression_jobs : it->second->retention_jobs).push_back(j);
  }
  for (const auto& r : rows(conn, "SELECT view_schema, view_name, hypertable_schema, hypertable_name, materialized_only, "
                                  "coalesce(obj_description(format('%I.%I', view_schema, view_name)::regclass, 'pg_class'), '') "
                                  "FROM timescaledb_information.continuous_aggregates ORDER BY 1, 2")) {
    ActualCagg c;
    c.view = {r[0], r[1]};
    c.hypertable = {r[2], r[3]};
    c.materialized_only = r[4] == "t";
    c.comment = r[5];
    for (const auto& j : refresh_jobs) {
      if (j.target == c.view) c.refresh_jobs.push_back(j);
    }
    st.caggs.push_back(std::move(c));
  }
}

}  // namespace

namespace {
void log_notice(void*, const char* message) {
  std::string m = message ? message : "";
  while (!m.empty() && m.back() == '\n') m.pop_back();
  spdlog::debug("event=policy_db_notice message=\"{}\"", m);
}
}  // namespace

void prepare_session(pg::Connection& conn, int lock_timeout_ms) {
  PQsetNoticeProcessor(conn.get(), log_notice, nullptr);
  conn.exec("SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'; "
            "SET client_min_messages = warning; SET lock_timeout = " + std::to_string(lock_timeout_ms));
}

Detection detect(pg::Connection& conn) {
  Detection d;
  const Rows v = rows(conn, "SELECT current_setting('server_version'), current_setting('server_version_num')");
  d.server_version = v[0][0];
  const auto sp = d.server_version.find(' ');
  if (sp != std::string::npos) d.server_version.resize(sp);
  d.server_version_num = std::atoi(v[0][1].c_str());
  for (const auto& r : rows(conn, "SELECT extname, extversion FROM pg_extension ORDER BY extname")) {
    d.extensions.push_back(r[0]);
    if (r[0] == "timescaledb") {
      d.timescaledb_installed = true;
      d.timescaledb_version = r[1];
    }
  }
  d.timescaledb_available =
      rows(conn, "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')")[0][0] == "t";
  if (d.timescaledb_installed) {
    // Reading an information view loads the extension's library, which defines timescaledb.license.
    try {
      rows(conn, "SELECT count(*) FROM timescaledb_information.hypertables");
    } catch (const pg::PgError&) {
    }
    d.license = rows(conn, "SELECT coalesce(current_setting('timescaledb.license', true), '')")[0][0];
  }
  return d;
}

ActualState introspect(pg::Connection& conn, const std::vector<DesiredTable>& desired, const Detection& detection,
                       PolicyMode mode) {
  ActualState st;
  st.detection = detection;
  if (mode == PolicyMode::unsupported) return st;
  for (const auto& d : desired) {
    ActualTable a;
    const Rows r = rows(conn,
                        "SELECT c.oid, c.relkind, coalesce(format_type(a.atttypid, a.atttypmod), '') "
                        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = $3 AND a.attnum > 0 "
                        "     AND NOT a.attisdropped "
                        "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')",
                        {d.table.schema, d.table.name, d.ts.time_column});
    if (!r.empty()) {
      a.exists = true;
      const std::string oid = r[0][0];
      a.relkind = r[0][1].empty() ? 'r' : r[0][1][0];
      a.time_column_type = r[0][2];
      read_indexes(conn, oid, d.table, a);
      if (mode == PolicyMode::plain_postgres) read_fallback(conn, d, oid, a);
    }
    st.tables[d.table] = std::move(a);
    for (const auto& c : d.ts.continuous_aggregates) {
      const QualifiedName v = split_name(c.name, d.table.schema);
      const Rows rr = rows(conn,
                           "SELECT c.relkind, coalesce(obj_description(c.oid, 'pg_class'), '') FROM pg_class c "
                           "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                           {v.schema, v.name});
      ActualRelation rel;
      if (!rr.empty()) {
        rel.relkind = rr[0][0].empty() ? '?' : rr[0][0][0];
        rel.comment = rr[0][1];
      }
      st.relations[v] = rel;
    }
  }
  if (mode == PolicyMode::timescaledb || mode == PolicyMode::timescaledb_apache) read_timescaledb(conn, st);
  return st;
}

std::vector<std::string> parse_segmentby_text(const std::string& text) {
  std::vector<std::string> out;
  for (const auto& part : split_list(text)) {
    OrderByItem o;
    if (parse_order_by(part, o)) out.push_back(o.column);
  }
  return out;
}

std::vector<OrderByItem> parse_orderby_text(const std::string& text) {
  std::vector<OrderByItem> out;
  for (const auto& part : split_list(text)) {
    OrderByItem o;
    if (parse_order_by(part, o)) out.push_back(o);
  }
  return out;
}

void parse_job_config(const std::string& config_json, ActualJob& job) {
  nlohmann::json j = nlohmann::json::parse(config_json, nullptr, false);
  if (!j.is_object()) return;
  auto get = [&](const char* key) -> std::optional<Interval> {
    auto it = j.find(key);
    if (it == j.end() || !it->is_string()) return std::nullopt;
    return interval_of(it->get<std::string>());
  };
  job.compress_after = get("compress_after");
  job.drop_after = get("drop_after");
  job.start_offset = get("start_offset");
  job.end_offset = get("end_offset");
}

}  // namespace sluice::policy
