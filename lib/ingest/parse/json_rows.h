// ingest/parse/json_rows.h — JSON request bodies to encoded Blocks, one pass, no per-row allocation.
//
//   body (padded) ──simdjson On-Demand──► object per row ──► RowEncoder.put_*(column, value)
//                                                             │ end_row()
//                                                             ▼
//                             JsonParseResult.blocks: one Block per distinct column_mask, rows in
//                             body order within each; bad rows → errors (index, column, reason)
//
// Shapes: `automatic` takes one JSON object (one row) or an array of objects; `ndjson` takes one
// object per line ('\n' or "\r\n"; blank lines are skipped and do not count as rows).
//
// Every key is a column name; values map by JSON type: string → put_string (unescaped), number →
// put_number (the token text), true/false → put_bool, null → put_null, object/array →
// put_json (the raw text, validated). A row with an unknown key, a non-object element, or a value
// its column refuses is rejected on its own; the other rows are kept. Any JSON syntax error
// (truncated input, trailing content, bad numbers or literals, invalid UTF-8, also inside nested
// values and inside rejected rows) rejects the whole body: syntax_ok = false and nothing is
// accepted. RowError::row is the 0-based index of the row in the body (for ndjson: among the
// non-blank lines).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/resolver.h"
#include "catalog/row_encoder.h"
#include "core/block.h"

namespace sluice {

// Bytes the caller must have allocated after the body's last byte (simdjson::SIMDJSON_PADDING):
// parse() needs capacity >= body.size() + kJsonPadding. The padding's content does not matter.
inline constexpr size_t kJsonPadding = 64;

// Grows a body string so that it can be parsed in place: capacity() >= size() + kJsonPadding.
inline void reserve_json_padding(std::string& body) { body.reserve(body.size() + kJsonPadding); }

enum class JsonShape : uint8_t { automatic, ndjson };  // automatic = one object or an array of objects

// Why a row was refused before reaching the database (every refusal is counted by kind).
// forbidden: a line protocol line for a table outside the request token's scope (auth.tokens[].tables).
enum class RejectKind : uint8_t { invalid_value, unknown_column, missing_column, malformed, too_many_rows, forbidden };
inline constexpr size_t kRejectKinds = 6;
inline RejectKind encoder_reject_kind(const RowEncoder& e) {
  return e.error_is_missing() ? RejectKind::missing_column : RejectKind::invalid_value;
}

struct RowError {
  uint32_t row = 0;     // 0-based index of the row in the body
  std::string column;   // the column (or unknown key) at fault; empty for row-level problems
  std::string message;  // names the column, e.g. `column "value": expected a number, got a string`
  RejectKind kind = RejectKind::invalid_value;
};

struct JsonParseResult {
  bool syntax_ok = true;     // false: unparseable body, nothing accepted (blocks empty, counts 0)
  size_t error_offset = 0;   // byte offset of the syntax problem in the body
  std::string syntax_error;  // simdjson's message (or ours for checks simdjson does not make)
  uint32_t rows_accepted = 0, rows_rejected = 0;
  std::array<uint32_t, kRejectKinds> rejected_by_kind{};  // every rejected row, by kind
  std::vector<RowError> errors;  // at most max_errors kept; rows_rejected counts all
  std::vector<BlockPtr> blocks;  // one Block per distinct column_mask, rows in body order within each
};

class JsonRowParser {  // one per IO thread, reused; owns a simdjson::ondemand::parser
 public:
  explicit JsonRowParser(size_t max_errors = 100);
  ~JsonRowParser();
  JsonRowParser(const JsonRowParser&) = delete;
  JsonRowParser& operator=(const JsonRowParser&) = delete;

  // body must have capacity >= size + kJsonPadding (the caller reserves; see reserve_json_padding).
  // Stops accepting after max_rows (the rest rejected with "too many rows in one request (limit N)").
  // Blocks get table_id, column_mask, rows, min_time/max_time and data; ack is left empty.
  void parse(std::string_view body, size_t capacity, JsonShape shape, RowEncoder& encoder, uint32_t table_id,
             size_t max_rows, JsonParseResult& out);

  // Dimension resolvers of this thread (catalog/resolver.h), or nullptr. Members named by a resolver
  // key of the table go to the resolver, not to columns; a row whose key is not cached is neither
  // accepted nor rejected (the miss is recorded in `resolvers`); an unknown key rejects the row.
  void set_resolvers(ThreadResolvers* resolvers);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  size_t max_errors_;
};

}  // namespace sluice
