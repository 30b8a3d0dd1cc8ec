// pg/tuple_decode.h — walks and decodes the binary COPY tuples of a Block (for bad-row isolation
// and the dead-letter store).
//
//   Block::data = tuple tuple tuple ...      tuple = int16 field count
//                                                     · per field: int32 length (-1 = NULL) · bytes
//   split_tuples() ──► [TupleSpan{block, offset, size}]   the writer bisects these spans
//   tuple_to_json() ──► {"column": value, ...}            a rejected row, readable, for sluice_dead_letter
//
// Decoding follows the PostgreSQL binary send formats of the types sluice encodes (PgType):
// timestamptz/timestamp as RFC 3339 text (UTC, "Z"), date as YYYY-MM-DD, integers and floats as
// JSON numbers (NaN/Infinity as strings), numeric as its exact decimal text (a JSON number),
// bool, text/varchar/char and uuid as strings, json/jsonb as the JSON value itself. Anything that
// does not decode (bad length, invalid UTF-8, NUL, invalid JSON) becomes the string "\\x<hex>".
// Only the dead-letter path calls the decoders; they allocate freely.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/table_schema.h"

namespace sluice::pg {

struct TupleSpan {
  uint32_t block = 0;   // index of the block in its batch
  uint32_t offset = 0;  // byte offset of the tuple in Block::data
  uint32_t size = 0;    // bytes of the tuple (field count included)
};

// Appends one span per tuple of data. False when the bytes are not a sequence of well-formed
// tuples (out is then left with the spans found before the problem).
bool split_tuples(const std::vector<char>& data, uint32_t block_index, std::vector<TupleSpan>& out);

// The tuple as a JSON object keyed by column name; the tuple's fields are the columns of the COPY
// list for column_mask (TableSchema::copy_column_list). Never throws; a tuple that does not match
// the column list becomes {"_tuple_hex": "\\x..."}.
std::string tuple_to_json(const TableSchema& table, uint64_t column_mask, const char* data, size_t size);

// Single values (exposed for tests).
std::string numeric_binary_to_text(const char* data, size_t size);  // "" when malformed
std::string pg_timestamp_to_rfc3339(int64_t pg_micros);             // "2024-03-01T00:00:16.5Z"
std::string pg_date_to_text(int32_t pg_days);                       // "2024-03-01"

}  // namespace sluice::pg
