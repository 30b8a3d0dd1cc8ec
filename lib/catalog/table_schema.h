// catalog/table_schema.h — what sluice knows about one target table.
//
// Loaded once at start-up from pg_catalog (see catalog.h). Columns are in attnum order. A column
// with a default (or identity/serial) is "omittable": senders may leave it out, and then it is left
// out of the COPY column list so PostgreSQL fills it in. Each omittable column owns one bit of a
// Block's column_mask; every other column is always part of the COPY (NULL when not sent).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice {

enum class PgType : uint8_t {
  timestamptz, timestamp, date,
  float8, float4, int2, int4, int8, numeric,
  boolean, text, varchar, bpchar, uuid, jsonb, json,
};

const char* pg_type_name(PgType t);

// Column types that take a number (line protocol tags and resolver ids are put as numbers into them).
inline bool is_number_type(PgType t) {
  switch (t) {
    case PgType::int2:
    case PgType::int4:
    case PgType::int8:
    case PgType::float4:
    case PgType::float8:
    case PgType::numeric:
      return true;
    default:
      return false;
  }
}

struct Column {
  std::string name;
  PgType type = PgType::text;
  uint32_t type_oid = 0;
  int32_t typmod = -1;
  bool not_null = false;
  bool has_default = false;     // DEFAULT, identity or serial: may be omitted by senders
  int numeric_precision = -1;   // numeric(p,s); -1 = unconstrained
  int numeric_scale = -1;
  int max_chars = -1;           // varchar(n) / char(n); -1 = unbounded
  int omit_bit = -1;            // bit in Block::column_mask, or -1 when always sent
};

// Whether the rows of one batch may be written by several connections at once (the writer pool
// shares a batch with idle writers), which gives up their order between the parts. Order decides
// which of two rows with the same key wins (conflict rules ignore and update) or is dead-lettered
// (error), so it may only be given up between rows that can never collide:
//   free   no unique index or exclusion constraint: any split;
//   keyed  every unique index is plain (columns only, no expression, no predicate): rows are split
//          by the values of `order_key`, columns that every unique index contains, so rows that
//          collide in any of them stay in one part, in their order;
//   fixed  anything else (and a schema not loaded from the database): never split.
enum class RowOrder : uint8_t { fixed, free, keyed };

struct TableSchema {
  uint32_t id = 0;              // index in Catalog::tables
  std::string schema;           // e.g. "flux"
  std::string name;             // e.g. "mg_meter_readings"
  std::string config_name;      // the name senders use in /v1/write/{table} (e.g. "flux.mg_meter_readings")
  std::string quoted;           // "flux"."mg_meter_readings", safe to splice into SQL
  std::vector<Column> columns;
  int time_column = -1;         // index into columns, or -1
  uint64_t all_omittable = 0;   // mask with every omit_bit set
  RowOrder row_order = RowOrder::fixed;
  std::vector<int> order_key;   // RowOrder::keyed: indexes into columns (types whose binary form is
                                // one per value: integers, times, text, varchar, uuid, boolean)

  // Column lookup by name; string_view keys point into columns[i].name.
  std::unordered_map<std::string_view, int> by_name;

  int find(std::string_view col) const {
    auto it = by_name.find(col);
    return it == by_name.end() ? -1 : it->second;
  }
  // Quoted column list for a COPY with the given column_mask, e.g. ("time","device_id",...).
  std::string copy_column_list(uint64_t column_mask) const;
  // Positions in a tuple of the given column_mask of the order_key columns it carries (an omitted
  // key column is left out: a coarser split is still a safe one).
  std::vector<int> order_key_fields(uint64_t column_mask) const;
};

}  // namespace sluice
