// catalog/catalog.h — the target tables, learned from pg_catalog once at start-up.
//
//   config (TableSpec list) ──► load_catalog(conn) ──► Catalog{tables[id]} ──► RowEncoder per table
//                               (pg_class, pg_namespace,                      (IO threads, read-only)
//                                pg_attribute, pg_type)
//
// The Catalog is built before any IO thread starts and is read-only afterwards, so threads share it
// without locks. Start-up code: load_catalog() throws std::runtime_error listing every problem it
// found (missing tables, unsupported column types, bad time columns), one per line.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "catalog/table_schema.h"

typedef struct pg_conn PGconn;  // libpq's connection handle (same declaration as libpq-fe.h)

namespace sluice {

struct TableSpec {
  std::string name;         // "table" (schema public) or "schema.table"; names are case-sensitive
  std::string time_column;  // may be empty: then the first NOT NULL timestamptz column, else the
                            // first timestamptz/timestamp column, else none
};

class Catalog {
 public:
  std::vector<TableSchema> tables;  // tables[i].id == i

  Catalog() = default;
  Catalog(Catalog&&) = default;
  Catalog& operator=(Catalog&&) = default;
  // Copies re-point each table's by_name index at the copy's own column names.
  Catalog(const Catalog& other);
  Catalog& operator=(const Catalog& other);

  // By the name senders use (TableSpec::name as configured); nullptr when unknown.
  const TableSchema* find(std::string_view config_name) const;
};

// Queries the catalog for every spec (in order: tables[i] comes from specs[i]). Throws
// std::runtime_error with all problems joined by newlines.
Catalog load_catalog(PGconn* conn, const std::vector<TableSpec>& specs);

// Completes a hand-built or loaded schema: assigns omit_bit 0,1,2... to the columns with
// has_default (in column order), sets all_omittable and rebuilds by_name. Call it again after
// copying a TableSchema (by_name points into columns[i].name). Throws std::runtime_error when
// more than 64 columns have defaults.
void finish_table_schema(TableSchema& table);

}  // namespace sluice
