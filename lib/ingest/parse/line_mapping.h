// ingest/parse/line_mapping.h — line protocol bodies to encoded Blocks: measurement → table, tag/field → column.
//
//   body ──LineProtocolParser──► ParsedLine ──mapping of its measurement──► RowEncoder(table).put_*(column, v)
//                                   │                                          │ end_row()
//                                   └─► bad line → errors (line number)         ▼
//              LineParseResult.blocks: one Block per distinct (table, column_mask), rows in body order within
//              each; bad lines → errors {row = 1-based line number, column, message "line N: ..."}
//
// Mapping rules (one MeasurementMapping per measurement, at most one "*" catch-all):
//   - table: the config name of the target table (Catalog::find); empty means "the measurement's name"
//     (not allowed for "*"). The table needs a timestamptz/timestamp time column: it receives the line's
//     timestamp (or the receive time).
//   - A tag or field goes to the column named by its rename, else to the column of the same name. Names
//     that reach the time column, measurement_column or extra_json_column count as having no column.
//   - A name without a column goes into extra_json_column when there is one (a JSON object of the
//     unmapped tags as strings and fields typed: {"host":"a","v":1.5,"n":2,"ok":true,"s":"x"}; the column
//     is left unset when nothing is unmapped), else the line is rejected (UnmappedPolicy::reject) or the
//     name is dropped (ignore).
//   - Values by kind: float/integer/unsigned → put_number (NumberKind floating/integer/unsigned_integer,
//     i/u suffix stripped; a float the scanner already converted goes through put_float_value, which
//     gives the same result), string → put_string, boolean → put_bool. Tag values are strings
//     (put_string), except into int2/int4/int8/float4/float8/numeric columns, where they go through
//     put_number so numeric tags (e.g. sensor=17) can fill number columns.
//   - measurement_column (optional, text/varchar/char) receives the measurement name.
// The Catalog must outlive the LineMapper. Constructor errors (start-up) throw std::runtime_error naming
// the mapping, the table and the column; parse() never throws.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/row_encoder.h"
#include "ingest/parse/json_rows.h"  // JsonParseResult, RowError
#include "ingest/parse/row_blocks.h"
#include "ingest/parse/line_protocol.h"

namespace sluice {

struct ColumnRename {
  std::string from;  // tag or field name in the line
  std::string to;    // column name
};

enum class UnmappedPolicy : uint8_t { reject, ignore };

struct MeasurementMapping {
  std::string measurement;                 // "*" = any measurement without its own mapping
  std::string table;                       // config name of the target table; empty = the measurement
  std::vector<ColumnRename> tags, fields;  // renames; names not listed map to the column of the same name
  std::string extra_json_column;           // optional json/jsonb column collecting unmapped tags+fields
  UnmappedPolicy unmapped = UnmappedPolicy::reject;  // when a name has no column and no extra_json_column
  std::string measurement_column;          // optional: column that receives the measurement name
};

// The same shape as the JSON result: syntax_ok is always true (a line protocol body is never rejected
// as a whole) and error_offset 0; RowError::row is the 1-based line number of the bad line and its
// message starts with "line N: ".
using LineParseResult = JsonParseResult;

class LineMapper {  // one per IO thread; built from the mappings and the Catalog at start-up
 public:
  // Throws std::runtime_error naming the mapping, the table and the column when a mapping names an
  // unknown table, a rename targets a missing column, a special column is missing or of the wrong type,
  // a measurement is mapped twice, etc.
  LineMapper(const Catalog& catalog, const std::vector<MeasurementMapping>& mappings, size_t max_errors = 100);
  ~LineMapper();
  LineMapper(const LineMapper&) = delete;
  LineMapper& operator=(const LineMapper&) = delete;

  // Parses a whole body: each good line → one row through encoders[table_id] (indexed like
  // Catalog::tables; the encoders' precision is set here). After max_rows lines, the rest are rejected
  // with "too many rows in one request (limit N)". Blocks get table_id, column_mask, rows,
  // min_time/max_time and data; ack is left empty. `now_ns` is the receive time (Unix ns) used for
  // lines without a timestamp. `allowed_tables` (indexed like Catalog::tables; null = all): a line
  // whose table is not allowed is rejected with RejectKind::forbidden (the request token's scope).
  void parse(std::string_view body, EpochPrecision precision, int64_t now_ns,
             std::vector<std::unique_ptr<RowEncoder>>& encoders, size_t max_rows, LineParseResult& out,
             const std::vector<char>* allowed_tables = nullptr);

  // Dimension resolvers of this thread (catalog/resolver.h), or nullptr. Tags and fields named by a
  // resolver key of the line's table (by their own name, or by the column their rename names) go to the
  // resolver instead of a column; a line whose key
  // is not cached is neither accepted nor rejected (the miss is recorded); an unknown key rejects it.
  void set_resolvers(ThreadResolvers* resolvers) { resolvers_ = resolvers; }

 private:
  struct Target;
  struct Run;
  Target* find_target(std::string_view measurement);

  const Catalog* catalog_;
  size_t max_errors_;
  std::vector<std::unique_ptr<Target>> targets_;
  std::unordered_map<std::string_view, Target*> by_measurement_;  // keys point into targets_
  Target* star_ = nullptr;
  std::string last_measurement_;  // one-entry cache of find_target
  Target* last_target_ = nullptr;

  LineProtocolParser parser_;
  std::string json_;                     // the extra JSON object of the current line
  std::vector<uint32_t> unmapped_tags_;  // indexes of the current line's tags without a column
  RowBlocks blocks_;                     // files rows under their (table, column set) block
  ThreadResolvers* resolvers_ = nullptr;
};

}  // namespace sluice
