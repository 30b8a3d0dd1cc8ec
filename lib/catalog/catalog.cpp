// catalog/catalog.cpp — loads TableSchemas from pg_catalog (start-up only; may throw).
#include "catalog/catalog.h"

#include <libpq-fe.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <stdexcept>

#include "pg/connection.h"

namespace sluice {
namespace {

constexpr const char* kSupportedTypes =
    "timestamptz, timestamp, date, double precision, real, smallint, integer, bigint, numeric, "
    "boolean, text, varchar, char, uuid, jsonb, json";

bool type_from_oid(uint32_t oid, PgType& out) {
  switch (oid) {
    case 1184: out = PgType::timestamptz; return true;
    case 1114: out = PgType::timestamp; return true;
    case 1082: out = PgType::date; return true;
    case 701: out = PgType::float8; return true;
    case 700: out = PgType::float4; return true;
    case 21: out = PgType::int2; return true;
    case 23: out = PgType::int4; return true;
    case 20: out = PgType::int8; return true;
    case 1700: out = PgType::numeric; return true;
    case 16: out = PgType::boolean; return true;
    case 25: out = PgType::text; return true;
    case 1043: out = PgType::varchar; return true;
    case 1042: out = PgType::bpchar; return true;
    case 2950: out = PgType::uuid; return true;
    case 3802: out = PgType::jsonb; return true;
    case 114: out = PgType::json; return true;
    default: return false;
  }
}

pg::Result run(PGconn* conn, const char* sql, const std::vector<std::string>& params) {
  std::vector<const char*> values;
  values.reserve(params.size());
  for (const auto& p : params) values.push_back(p.c_str());
  pg::Result r(PQexecParams(conn, sql, static_cast<int>(values.size()), nullptr, values.data(),
                            nullptr, nullptr, 0));
  if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    throw std::runtime_error("catalog query failed: " + pg::error_message(conn, r.get()));
  }
  return r;
}

// A domain is read through its base type (one level); an enum travels as text.
constexpr const char* kTableSql =
    "SELECT c.oid FROM pg_catalog.pg_class c "
    "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p', 'f')";

constexpr const char* kColumnsSql =
    "SELECT a.attname, "
    "       CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END, "
    "       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END, "
    "       a.attnotnull OR (t.typtype = 'd' AND t.typnotnull), "
    "       a.atthasdef OR a.attidentity <> '', "
    "       a.attgenerated <> '', "
    "       pg_catalog.format_type(a.atttypid, a.atttypmod), "
    "       t.typtype "
    "FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid "
    "WHERE a.attrelid = $1::oid AND a.attnum > 0 AND NOT a.attisdropped "
    "ORDER BY a.attnum";

// Unique indexes (primary key included) and exclusion constraints, one row per key column: the
// index, whether it is plain (no expression, no predicate, not an exclusion constraint) and the
// column's name (NULL for an expression).
constexpr const char* kUniqueIndexesSql =
    "SELECT i.indexrelid, i.indpred IS NULL AND i.indexprs IS NULL AND NOT i.indisexclusion, a.attname "
    "FROM pg_catalog.pg_index i "
    "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
    "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum AND k.attnum > 0 "
    "WHERE i.indrelid = $1::oid AND (i.indisunique OR i.indisexclusion) AND k.ord <= i.indnkeyatts "
    "ORDER BY i.indexrelid, k.ord";

bool is_true(const PGresult* r, int row, int col) { return PQgetvalue(r, row, col)[0] == 't'; }

// Types whose binary COPY form is the same for equal values (so equal keys hash equally): not
// numeric (1.0 and 1.00 differ in scale), floats (-0 and 0), bpchar (trailing blanks) or json.
bool order_key_type(PgType t) {
  switch (t) {
    case PgType::int2:
    case PgType::int4:
    case PgType::int8:
    case PgType::timestamptz:
    case PgType::timestamp:
    case PgType::date:
    case PgType::text:
    case PgType::varchar:
    case PgType::uuid:
    case PgType::boolean:
      return true;
    default:
      return false;
  }
}

// RowOrder and order_key from the table's unique indexes (see table_schema.h).
void load_row_order(PGconn* conn, const std::string& oid, TableSchema& t) {
  pg::Result r = run(conn, kUniqueIndexesSql, {oid});
  const int n = PQntuples(r.get());
  if (n == 0) {
    t.row_order = RowOrder::free;
    t.order_key.clear();
    return;
  }
  std::vector<int> common;  // columns every index so far contains
  bool first_index = true;
  for (int i = 0; i < n;) {
    const std::string index = PQgetvalue(r.get(), i, 0);
    std::vector<int> columns;
    for (; i < n && index == PQgetvalue(r.get(), i, 0); ++i) {
      if (!is_true(r.get(), i, 1) || PQgetisnull(r.get(), i, 2)) {
        t.row_order = RowOrder::fixed;
        t.order_key.clear();
        return;
      }
      const std::string name = PQgetvalue(r.get(), i, 2);
      for (size_t c = 0; c < t.columns.size(); ++c) {  // a generated column is not there: left out
        if (t.columns[c].name == name && order_key_type(t.columns[c].type)) columns.push_back(static_cast<int>(c));
      }
    }
    if (first_index) {
      common = columns;
      first_index = false;
    } else {
      std::vector<int> both;
      for (int c : common) {
        if (std::find(columns.begin(), columns.end(), c) != columns.end()) both.push_back(c);
      }
      common = std::move(both);
    }
  }
  std::sort(common.begin(), common.end());
  t.order_key = std::move(common);
  t.row_order = t.order_key.empty() ? RowOrder::fixed : RowOrder::keyed;
}

void load_table(PGconn* conn, const TableSpec& spec, TableSchema& t, std::vector<std::string>& errors) {
  t.config_name = spec.name;
  auto dot = spec.name.find('.');
  if (dot == std::string::npos) {
    t.schema = "public";
    t.name = spec.name;
  } else {
    t.schema = spec.name.substr(0, dot);
    t.name = spec.name.substr(dot + 1);
  }
  t.quoted = pg::quote_ident(t.schema) + "." + pg::quote_ident(t.name);
  const std::string label = "table " + t.schema + "." + t.name;

  if (t.schema.empty() || t.name.empty()) {
    errors.push_back(label + ": invalid table name \"" + spec.name + "\"");
    return;
  }
  pg::Result rel = run(conn, kTableSql, {t.schema, t.name});
  if (PQntuples(rel.get()) == 0) {
    errors.push_back(label + " does not exist");
    return;
  }
  std::string oid = PQgetvalue(rel.get(), 0, 0);
  pg::Result cols = run(conn, kColumnsSql, {oid});

  size_t error_count = errors.size();
  const int n = PQntuples(cols.get());
  for (int i = 0; i < n; ++i) {
    const PGresult* r = cols.get();
    if (is_true(r, i, 5)) continue;  // generated column: PostgreSQL computes it, never sent
    Column c;
    c.name = PQgetvalue(r, i, 0);
    c.type_oid = static_cast<uint32_t>(std::strtoul(PQgetvalue(r, i, 1), nullptr, 10));
    c.typmod = static_cast<int32_t>(std::strtol(PQgetvalue(r, i, 2), nullptr, 10));
    c.not_null = is_true(r, i, 3);
    c.has_default = is_true(r, i, 4);
    const char typtype = PQgetvalue(r, i, 7)[0];
    bool ok = typtype == 'e' ? (c.type = PgType::text, true) : type_from_oid(c.type_oid, c.type);
    if (!ok) {
      errors.push_back(label + " column \"" + c.name + "\": type " + PQgetvalue(r, i, 6) +
                       " is not supported (supported: " + kSupportedTypes + ")");
      continue;
    }
    if (c.type == PgType::numeric && c.typmod >= 4) {
      const int32_t v = c.typmod - 4;
      c.numeric_precision = (v >> 16) & 0xffff;
      c.numeric_scale = ((v & 0x7ff) ^ 1024) - 1024;  // PostgreSQL 15 allows negative scales
    }
    if ((c.type == PgType::varchar || c.type == PgType::bpchar) && c.typmod >= 4) {
      c.max_chars = c.typmod - 4;
    }
    t.columns.push_back(std::move(c));
  }
  if (errors.size() != error_count) return;

  int defaults = 0;
  for (const Column& c : t.columns) defaults += c.has_default ? 1 : 0;
  if (defaults > 64) {
    errors.push_back(label + ": " + std::to_string(defaults) +
                     " columns have defaults; at most 64 are supported");
    return;
  }
  load_row_order(conn, oid, t);

  t.time_column = -1;
  if (!spec.time_column.empty()) {
    for (size_t i = 0; i < t.columns.size(); ++i) {
      if (t.columns[i].name == spec.time_column) t.time_column = static_cast<int>(i);
    }
    if (t.time_column < 0) {
      errors.push_back(label + ": time column \"" + spec.time_column + "\" does not exist");
      return;
    }
    PgType ty = t.columns[t.time_column].type;
    if (ty != PgType::timestamptz && ty != PgType::timestamp && ty != PgType::date) {
      errors.push_back(label + ": time column \"" + spec.time_column + "\" has type " +
                       pg_type_name(ty) + " (must be timestamptz, timestamp or date)");
      return;
    }
  } else {
    for (size_t i = 0; i < t.columns.size() && t.time_column < 0; ++i) {
      if (t.columns[i].type == PgType::timestamptz && t.columns[i].not_null) t.time_column = static_cast<int>(i);
    }
    for (size_t i = 0; i < t.columns.size() && t.time_column < 0; ++i) {
      PgType ty = t.columns[i].type;
      if (ty == PgType::timestamptz || ty == PgType::timestamp) t.time_column = static_cast<int>(i);
    }
  }
}

}  // namespace

void finish_table_schema(TableSchema& table) {
  int bit = 0;
  table.all_omittable = 0;
  table.by_name.clear();
  for (size_t i = 0; i < table.columns.size(); ++i) {
    Column& c = table.columns[i];
    if (c.has_default) {
      if (bit >= 64) {
        throw std::runtime_error("table " + table.schema + "." + table.name +
                                 ": more than 64 columns have defaults");
      }
      c.omit_bit = bit;
      table.all_omittable |= uint64_t{1} << bit;
      ++bit;
    } else {
      c.omit_bit = -1;
    }
    table.by_name.emplace(std::string_view(c.name), static_cast<int>(i));
  }
}

Catalog::Catalog(const Catalog& other) : tables(other.tables) {
  for (auto& t : tables) finish_table_schema(t);
}

Catalog& Catalog::operator=(const Catalog& other) {
  if (this != &other) {
    tables = other.tables;
    for (auto& t : tables) finish_table_schema(t);
  }
  return *this;
}

const TableSchema* Catalog::find(std::string_view config_name) const {
  for (const auto& t : tables) {
    if (t.config_name == config_name) return &t;
  }
  return nullptr;
}

Catalog load_catalog(PGconn* conn, const std::vector<TableSpec>& specs) {
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
    throw std::runtime_error("catalog: no database connection");
  }
  Catalog catalog;
  catalog.tables.resize(specs.size());
  std::vector<std::string> errors;
  for (size_t i = 0; i < specs.size(); ++i) {
    for (size_t j = 0; j < i; ++j) {
      if (specs[j].name == specs[i].name) {
        errors.push_back("table " + specs[i].name + " is configured twice");
      }
    }
    catalog.tables[i].id = static_cast<uint32_t>(i);
    load_table(conn, specs[i], catalog.tables[i], errors);
  }
  if (!errors.empty()) {
    std::string message;
    for (const auto& e : errors) {
      if (!message.empty()) message.push_back('\n');
      message += e;
    }
    throw std::runtime_error(message);
  }
  for (auto& t : catalog.tables) finish_table_schema(t);
  return catalog;
}

}  // namespace sluice
