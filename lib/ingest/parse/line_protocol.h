// ingest/parse/line_protocol.h — InfluxDB line protocol (1.x/2.x), one line at a time, no allocation once warm.
//
//   body ──reset()──► LineProtocolParser ──next()──► ParsedLine (views)  ──► caller maps it (line_mapping.h)
//                       (one per IO thread)      └─► LineError (line, byte, message); the next line goes on
//
// Grammar:  measurement[,tag=value...] field=value[,field=value...] [timestamp]
//   - Lines end in '\n' ("\r\n" too). Blank lines (spaces/tabs only) and lines whose first non-blank
//     character is '#' are skipped. Leading spaces/tabs are ignored. The separators are single or repeated
//     spaces (' '); trailing spaces after the last element are allowed.
//   - Escapes: measurement `\,` `\ ` `\\`; tag keys, tag values and field keys `\,` `\=` `\ ` `\\`. A
//     backslash before any other character is kept literally (`a\b` stays `a\b`). An unescaped '=' in a
//     tag value is an error.
//   - Field values: float `1` `1.5` `-1.5e-3` `1E10` `.5` `5.` (no '+' sign, no NaN/Inf; the range is
//     checked by the column's encoder), integer `-12i` (int64 range), unsigned `12u` (uint64 range),
//     string `"..."` with `\"` and `\\` escapes (other backslashes literal; a string cannot span lines),
//     boolean `t T true True TRUE f F false False FALSE`.
//   - Duplicate tag keys and duplicate field keys in one line are rejected (InfluxDB keeps the last field;
//     sluice refuses the ambiguity: "duplicate field \"v\"").
//   - Timestamp: optional integer (may be negative) in the request's precision (ns, us, ms, s); it must fit
//     int64 nanoseconds. Absent → `now_ns` given to reset() and has_timestamp = false.
// Tokens are views into the body, or into the parser's unescape buffer when they contained escapes; all
// views of a ParsedLine stay valid until the next call to next() or reset().
// Errors read `line 3: invalid field value for "temp": 12.5.3 (byte 17)`: the 1-based physical line
// number (blank and comment lines count) and the 1-based byte column in that line.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "catalog/row_encoder.h"  // EpochPrecision

namespace sluice {

enum class LineFieldKind : uint8_t { floating, integer, unsigned_integer, string, boolean };
const char* line_field_kind_name(LineFieldKind k);  // "float", "integer", "unsigned", "string", "boolean"

struct LineTag {
  std::string_view key;
  std::string_view value;
};

struct LineField {
  std::string_view key;
  // floating: the number as written; integer/unsigned: the digits without the i/u suffix (with '-' for a
  // negative integer); string: the unescaped content without quotes; boolean: the literal as written.
  std::string_view value;
  LineFieldKind kind = LineFieldKind::floating;
  bool boolean = false;  // the value of a boolean field
  // floating: true when `number` is the correctly rounded double of `value`, computed while scanning
  // (exact_decimal_double of core/decimal_double.h: short mantissas and small exponents, the usual case);
  // else the value is only known to be float text (RowEncoder::put_float_value / put_number).
  bool has_number = false;
  double number = 0;
};

struct ParsedLine {
  std::string_view measurement;
  std::span<const LineTag> tags;      // in line order
  std::span<const LineField> fields;  // in line order, at least one
  bool has_timestamp = false;
  int64_t timestamp_ns = 0;           // Unix epoch nanoseconds (the receive time when !has_timestamp)
  uint32_t line_no = 0;               // 1-based
};

struct LineError {
  uint32_t line_no = 0;  // 1-based
  uint32_t byte = 0;     // 1-based byte column in the line where the problem is
  std::string message;   // complete: `line 3: missing field set (byte 9)`
};

enum class LineStatus : uint8_t { line, error, end };

// Appends sender text for an error message: at most `max_bytes` bytes (then "..."), control
// characters and invalid UTF-8 replaced by '?', so messages are always printable valid UTF-8.
void append_for_message(std::string& out, std::string_view sender_text, size_t max_bytes = 64);

class LineProtocolParser {  // one per IO thread, reused for every body
 public:
  LineProtocolParser() = default;
  LineProtocolParser(std::string_view body, EpochPrecision precision, int64_t now_ns) {
    reset(body, precision, now_ns);
  }

  // Starts a new body. `body` must stay alive while next() is called.
  void reset(std::string_view body, EpochPrecision precision, int64_t now_ns);

  // The next non-blank, non-comment line: `line` (fills `out`), `error` (fills `err`; the cursor is
  // already on the following line) or `end`. Never throws.
  LineStatus next(ParsedLine& out, LineError& err);

  uint32_t line_no() const { return line_no_; }  // physical lines consumed so far

  // Duplicate tag keys and duplicate field keys make a line an error. With the check deferred, next()
  // does not look for them and the caller must call check_duplicates() for each line next() returns
  // unless it knows that line's keys are distinct (the LineMapper knows when a line's keys are the
  // ones it has already checked at the same positions). Default: checked in next().
  void defer_duplicate_check(bool defer) { defer_duplicates_ = defer; }
  // For the line next() returned last: `error` with the error next() would have given for a
  // duplicate tag or field (filled into `err`), else `line`.
  LineStatus check_duplicates(LineError& err);

 private:
  LineStatus parse_line(std::string_view line, size_t start, ParsedLine& out, LineError& err);
  // Scans an identifier (measurement, tag key/value, field key) from `i` to the first unescaped
  // delimiter; returns the (unescaped) token and advances `i`.
  std::string_view scan_name(std::string_view line, size_t& i, bool measurement, bool stop_at_equals);
  std::string_view unescape_name(std::string_view raw, bool measurement);
  std::string_view unescape_string(std::string_view raw);
  bool has_duplicates(bool tags, std::string_view& duplicate);
  LineStatus fail(LineError& err, size_t column, std::string message);

  std::string_view body_;
  size_t pos_ = 0;
  uint32_t line_no_ = 0;
  EpochPrecision precision_ = EpochPrecision::ns;
  int64_t now_ns_ = 0;
  std::vector<LineTag> tags_;
  std::vector<LineField> fields_;
  std::vector<uint32_t> dup_slots_;  // open-addressing set for duplicate checks of long lines (reused)
  bool defer_duplicates_ = false;
  std::string_view line_;        // the line next() returned last, and where its measurement starts
  size_t measurement_at_ = 0;
  std::string unescaped_;                 // sized >= the current line's length
  size_t unescaped_used_ = 0;
};

}  // namespace sluice
