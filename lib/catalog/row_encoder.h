// catalog/row_encoder.h — turns one sender row into one binary COPY tuple, checking every value.
//
//   parser (JSON, line protocol) ── put_*(column, value) ──► per-column scratch slots
//                                   end_row() ──► tuple bytes appended to Block::data
//
// One RowEncoder per (IO thread, table); it is reused for every row and allocates nothing once
// warm. Values are converted by the *column's* type, never the sender's: a JSON number written to
// a numeric(12,3) column is parsed from its exact decimal text; a string written to a uuid column
// must parse as a uuid; an integer is fine for a float column; a float goes into an integer column
// only when it is integral and in range. A failed put_*/end_row leaves error() set and the row is
// dropped by calling begin_row() again; nothing of it reaches the block.
//
// Value rules (column type → accepted input):
//   timestamptz, timestamp  string YYYY-MM-DD[(T|t| )HH:MM[:SS[.fraction]][Z|z|±HH[[:]MM]]]: no offset
//                           means UTC, a bare date is midnight UTC, fraction digits below 1 µs are
//                           truncated; years 0001-9999, no leap second (:60), offsets up to ±23:59.
//                           For timestamp (no tz) an offset converts to UTC wall time. Number: epoch
//                           in set_precision() units (s by default), may have a fraction/exponent;
//                           floored to the microsecond.
//   date                    string YYYY-MM-DD only.
//   float8, float4          number; strings only "NaN", "Infinity", "-Infinity" (any case). Values
//                           that overflow or underflow the type are rejected.
//   int2, int4, int8        number that is integral ("3.0" and "1e3" are fine) and in range.
//   numeric                 number, converted from its decimal text (never via double). numeric(p,s)
//                           rounds to s digits half away from zero and rejects values with more than
//                           p-s integer digits; dscale is s, else the number's own fraction digits.
//                           String "NaN" only for unconstrained numeric.
//   boolean                 true/false, or the strings "true"/"false" (any case).
//   text, varchar, bpchar   string (valid UTF-8, no NUL); a number keeps its text, a boolean becomes
//                           "true"/"false", put_json keeps the raw JSON. varchar(n)/char(n) count
//                           code points; excess trailing spaces are allowed (PostgreSQL cuts them).
//   uuid                    32 hex digits, plain or 8-4-4-4-12, optionally in {braces}, any case.
//   jsonb, json             string → JSON string, number → its text, boolean → true/false,
//                           put_json → the raw text (jsonb refuses \u0000).
// put_null on a NOT NULL column fails. Error messages name the column: `column "x": ...`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/table_schema.h"

namespace sluice {

// Unit of bare epoch numbers written to time columns (the `precision` query parameter).
enum class EpochPrecision : uint8_t { s, ms, us, ns };
bool parse_epoch_precision(std::string_view text, EpochPrecision& out);

// What the sender's syntax says a number is. JSON numbers are `any`; line protocol marks
// integers with `i` and unsigned with `u`, everything else is a float.
enum class NumberKind : uint8_t { any, integer, unsigned_integer, floating };

class RowEncoder {
 public:
  explicit RowEncoder(const TableSchema& table);

  const TableSchema& table() const { return *table_; }
  void set_precision(EpochPrecision p) { precision_ = p; }

  void begin_row();

  // Each put returns false with error() set when the value does not fit the column.
  // Putting the same column twice in one row is an error.
  bool put_null(int column);
  bool put_string(int column, std::string_view unescaped);
  bool put_number(int column, std::string_view text, NumberKind kind = NumberKind::any);
  // put_number(column, text, kind) for a `text` whose correctly rounded double is already known
  // (`exact`, e.g. from exact_decimal_double of core/decimal_double.h, as the line protocol and JSON
  // scanners compute it): float8 and float4 columns take it without parsing the text again; every
  // other column, and a float4 halfway case, goes through the text as put_number does.
  bool put_float_value(int column, std::string_view text, double exact, NumberKind kind = NumberKind::floating);
  bool put_bool(int column, bool value);
  bool put_json(int column, std::string_view json_text);  // raw JSON object/array, json/jsonb/text only
  // Unix epoch microseconds (e.g. a line protocol timestamp): the same checks and result as
  // put_number() of the value's decimal text with precision us, without the text round trip.
  bool put_unix_micros(int column, int64_t unix_us);

  // Completes the row: every NOT NULL column without a default must have a value. Appends the
  // tuple to `out`, sets `mask` (assigned, not OR-ed) to the omit bits of the omittable columns
  // present in this row, and updates min/max of the time column (PostgreSQL epoch microseconds;
  // untouched when the row has no time column value). The tuple's fields: every column with
  // omit_bit -1 (NULL when not put) plus the omittable columns put in this row, in column order.
  // On failure `out`, `mask` and min/max are untouched.
  bool end_row(std::vector<char>& out, uint64_t& mask, int64_t& min_time, int64_t& max_time);

  // The failed column (-1 for a row-level problem) and a message that names the column.
  int error_column() const { return error_column_; }
  // True when the last failure was a required column without a value (not a bad value).
  bool error_is_missing() const { return error_missing_; }
  const std::string& error() const { return error_; }

 private:
  struct Slot {
    uint32_t offset = 0;  // into scratch_
    int32_t length = -2;  // -2 = not set in this row, -1 = NULL, else byte length
  };
  bool fail(int column, std::string_view message);   // message is prefixed with `column "x": `
  bool fail_raw(int column, std::string_view message);  // message used as is
  bool fail_type(int column, const char* got);          // `expected <column type>, got <got>`
  bool claim(int column);  // checks range and duplicates
  bool claim_failed(int column);  // the error of a failed claim (out of line)
  char* alloc(int column, size_t length);  // reserves the slot's bytes at the end of scratch_
  bool set_time(int column, int64_t pg_micros);
  bool put_text_bytes(int column, std::string_view utf8);  // text/varchar/bpchar with checks
  bool put_json_string(int column, std::string_view unescaped);
  bool put_numeric(int column, std::string_view text);
  bool put_integer(int column, std::string_view text);
  bool put_epoch(int column, std::string_view text);
  bool put_float(int column, std::string_view text, bool special_names);

  const TableSchema* table_;
  EpochPrecision precision_ = EpochPrecision::s;
  std::vector<Slot> slots_;
  std::vector<char> scratch_;  // values of the current row: [0, scratch_used_)
  size_t scratch_used_ = 0;
  int64_t row_time_ = 0;
  bool row_has_time_ = false;
  int error_column_ = -1;
  bool error_missing_ = false;
  std::string error_;
  std::string digits_;  // decimal digits of the number being converted (numeric, integers, epochs)
};

}  // namespace sluice
