// catalog/row_encoder.cpp — per-type conversion of sender values into binary COPY fields.
//
// Every put_* converts by the column's type and writes the field bytes (big-endian, PostgreSQL
// binary send format) to scratch_; end_row() emits them in column order as one COPY tuple.
// Nothing here allocates once scratch_, slots_ and digits_ have grown to the row size, except the
// error message of a failed value.
#include "catalog/row_encoder.h"

#include <algorithm>
#include <cfloat>
#include <cstddef>
#include <charconv>
#include <cstring>

#include "core/ascii_digits.h"
#include "core/decimal_double.h"
#include "core/pg_time.h"

namespace sluice {
namespace {

constexpr int64_t kPgEpochDays = 10957;  // days_from_civil(2000, 1, 1)
// Accepted time range: 0001-01-01 .. 9999-12-31 23:59:59.999999 (before any UTC offset).
constexpr int64_t kMinTimeUs = (days_from_civil(1, 1, 1) - kPgEpochDays) * kMicrosPerDay;
constexpr int64_t kEndTimeUs = (days_from_civil(10000, 1, 1) - kPgEpochDays) * kMicrosPerDay;

inline void store_be16(char* p, uint16_t v) {
  p[0] = static_cast<char>(v >> 8);
  p[1] = static_cast<char>(v);
}
inline void store_be32(char* p, uint32_t v) {
  v = __builtin_bswap32(v);
  std::memcpy(p, &v, 4);
}
inline void store_be64(char* p, uint64_t v) {
  v = __builtin_bswap64(v);
  std::memcpy(p, &v, 8);
}

inline bool is_digit(char c) { return static_cast<unsigned char>(c - '0') < 10; }

// Copies n <= 16 bytes with at most two (overlapping) loads and stores per side, no libc call.
inline void copy_short(char* o, const char* s, size_t n) {
  if (n >= 8) {
    uint64_t a, b;
    std::memcpy(&a, s, 8);
    std::memcpy(&b, s + n - 8, 8);
    std::memcpy(o, &a, 8);
    std::memcpy(o + n - 8, &b, 8);
  } else if (n >= 4) {
    uint32_t a, b;
    std::memcpy(&a, s, 4);
    std::memcpy(&b, s + n - 4, 4);
    std::memcpy(o, &a, 4);
    std::memcpy(o + n - 4, &b, 4);
  } else if (n > 0) {
    const char a = s[0], b = s[n / 2], c = s[n - 1];
    o[0] = a;
    o[n / 2] = b;
    o[n - 1] = c;
  }
}

// True when the n <= 16 bytes are all ASCII without NUL (0x01..0x7F), checked with at most two
// (overlapping) loads: such text is valid UTF-8 of n code points.
inline bool short_plain_ascii(const char* s, size_t n) {
  if (n >= 8) {
    constexpr uint64_t kHigh = 0x8080808080808080ULL, kLow = 0x0101010101010101ULL;
    uint64_t a, b;
    std::memcpy(&a, s, 8);
    std::memcpy(&b, s + n - 8, 8);
    return (((a | b) & kHigh) | ((a - kLow) & ~a & kHigh) | ((b - kLow) & ~b & kHigh)) == 0;
  }
  if (n >= 4) {
    constexpr uint32_t kHigh = 0x80808080u, kLow = 0x01010101u;
    uint32_t a, b;
    std::memcpy(&a, s, 4);
    std::memcpy(&b, s + n - 4, 4);
    return (((a | b) & kHigh) | ((a - kLow) & ~a & kHigh) | ((b - kLow) & ~b & kHigh)) == 0;
  }
  bool ok = true;
  for (size_t i = 0; i < n; ++i) ok &= static_cast<unsigned char>(s[i] - 1) < 0x7F;
  return ok;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

// Sender text quoted into an error message, cut to a sane length.
std::string quoted_value(std::string_view v) {
  constexpr size_t kMax = 64;
  std::string out = "\"";
  out.append(v.substr(0, kMax));
  if (v.size() > kMax) out.append("...");
  out.push_back('"');
  return out;
}
std::string shown_value(std::string_view v) {
  constexpr size_t kMax = 64;
  std::string out(v.substr(0, kMax));
  if (v.size() > kMax) out.append("...");
  return out;
}

const char* friendly_type(PgType t) {
  switch (t) {
    case PgType::int2: return "smallint";
    case PgType::int4: return "integer";
    case PgType::int8: return "bigint";
    case PgType::float4: return "real";
    case PgType::float8: return "double precision";
    default: return pg_type_name(t);
  }
}

const char* expected_for(PgType t) {
  switch (t) {
    case PgType::timestamptz:
    case PgType::timestamp: return "a timestamp (RFC 3339 string or epoch number)";
    case PgType::date: return "a date string (YYYY-MM-DD)";
    case PgType::float8:
    case PgType::float4:
    case PgType::int2:
    case PgType::int4:
    case PgType::int8:
    case PgType::numeric: return "a number";
    case PgType::boolean: return "true or false";
    case PgType::text:
    case PgType::varchar:
    case PgType::bpchar: return "a string";
    case PgType::uuid: return "a UUID string";
    case PgType::jsonb:
    case PgType::json: return "a JSON value";
  }
  return "a value";
}

// Decimal number syntax: [+-] digits [. digits] [e [+-] digits], or [+-] . digits [...].
bool is_decimal_syntax(std::string_view t) {
  size_t i = 0, n = t.size();
  if (i < n && (t[i] == '-' || t[i] == '+')) ++i;
  size_t mant = 0;
  while (i < n && is_digit(t[i])) ++i, ++mant;
  if (i < n && t[i] == '.') {
    ++i;
    while (i < n && is_digit(t[i])) ++i, ++mant;
  }
  if (mant == 0) return false;
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    if (i < n && (t[i] == '-' || t[i] == '+')) ++i;
    size_t e = 0;
    while (i < n && is_digit(t[i])) ++i, ++e;
    if (e == 0) return false;
  }
  return i == n;
}

// Fast path of decimal text → float8/float4 for the common case, with exactly the result of
// std::from_chars (round to nearest even): exact_decimal_double (core/decimal_double.h), and for
// float4 the double rounded to float unless it is a float halfway point (double rounding). False
// for every other form: the caller takes the general path (syntax check + from_chars).
inline bool fast_decimal_to_float(std::string_view t, bool f4, double& d, float& f) {
  double v;
  if (!exact_decimal_double(t, v)) return false;
  if (f4) return exact_double_to_float(v, f);
  d = v;
  return true;
}

// Strict JSON number grammar (RFC 8259): -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?
bool is_json_number(std::string_view t) {
  double ignored;
  return scan_json_number(t, ignored) != 0;
}

// A decimal number as digits × 10^exp10. The digits (no leading zeros; empty means zero) live in
// `buf` from `start`; buf[0] is a spare '0' so that rounding can carry into a new leading digit.
struct Decimal {
  bool negative = false;
  size_t start = 1;
  size_t n = 0;
  int64_t exp10 = 0;
};

bool parse_decimal(std::string_view t, std::string& buf, Decimal& d) {
  buf.clear();
  buf.push_back('0');
  size_t i = 0, n = t.size();
  d = Decimal{};
  if (i < n && (t[i] == '-' || t[i] == '+')) {
    d.negative = t[i] == '-';
    ++i;
  }
  size_t mant = 0;
  int64_t frac = 0;
  bool point = false;
  for (; i < n; ++i) {
    const char ch = t[i];
    if (is_digit(ch)) {
      ++mant;
      if (point) ++frac;
      if (buf.size() == 1 && ch == '0') continue;  // leading zero
      buf.push_back(ch);
    } else if (ch == '.' && !point) {
      point = true;
    } else {
      break;
    }
  }
  if (mant == 0) return false;
  int64_t e = 0;
  if (i < n && (t[i] == 'e' || t[i] == 'E')) {
    ++i;
    bool eneg = false;
    if (i < n && (t[i] == '-' || t[i] == '+')) {
      eneg = t[i] == '-';
      ++i;
    }
    size_t ed = 0;
    for (; i < n && is_digit(t[i]); ++i, ++ed) {
      if (e < 1000000000) e = e * 10 + (t[i] - '0');
    }
    if (ed == 0) return false;
    if (eneg) e = -e;
  }
  if (i != n) return false;
  d.start = 1;
  d.n = buf.size() - 1;
  d.exp10 = e - frac;
  return true;
}

void strip_trailing_zeros(const std::string& buf, Decimal& d) {
  while (d.n > 0 && buf[d.start + d.n - 1] == '0') {
    --d.n;
    ++d.exp10;
  }
}

// Integral value of digits × 10^exp10 (trailing zeros stripped, exp10 >= 0) with sign, when it
// fits in int64.
bool decimal_to_int64(const std::string& buf, const Decimal& d, int64_t& out) {
  if (d.n == 0) {
    out = 0;
    return true;
  }
  if (d.exp10 < 0 || static_cast<int64_t>(d.n) + d.exp10 > 19) return false;
  unsigned __int128 v = 0;
  for (size_t i = 0; i < d.n; ++i) v = v * 10 + static_cast<unsigned>(buf[d.start + i] - '0');
  for (int64_t i = 0; i < d.exp10; ++i) v *= 10;
  const unsigned __int128 limit = d.negative ? (unsigned __int128)INT64_MAX + 1 : (unsigned __int128)INT64_MAX;
  if (v > limit) return false;
  out = d.negative ? static_cast<int64_t>(-static_cast<__int128>(v)) : static_cast<int64_t>(v);
  return true;
}

// Plain integer text: -?digits, at most 18 digits (cannot overflow).
bool parse_small_int(std::string_view t, int64_t& out) {
  size_t i = 0;
  bool neg = false;
  if (!t.empty() && t[0] == '-') {
    neg = true;
    i = 1;
  }
  const size_t digits = t.size() - i;
  if (digits == 0 || digits > 18) return false;
  int64_t v = 0;
  for (; i < t.size(); ++i) {
    if (!is_digit(t[i])) return false;
    v = v * 10 + (t[i] - '0');
  }
  out = neg ? -v : v;
  return true;
}

// UTF-8 check. Returns the number of code points, or -1 for invalid UTF-8; sets has_nul.
int64_t utf8_length(std::string_view s, bool& has_nul) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  int64_t count = 0;
  has_nul = false;
  if (n >= 8) {
    // Common case first: all ASCII without NUL is n code points. 8 bytes at a time, the last
    // (possibly overlapping) 8 bytes included; anything else goes through the loop below.
    constexpr uint64_t kHigh = 0x8080808080808080ULL, kLow = 0x0101010101010101ULL;
    auto plain = [](uint64_t v) { return (v & kHigh) == 0 && ((v - kLow) & ~v & kHigh) == 0; };
    bool ascii = true;
    for (size_t j = 0; ascii && j + 8 <= n; j += 8) ascii = plain(load8(s.data() + j));
    if (ascii && plain(load8(s.data() + n - 8))) return static_cast<int64_t>(n);
  }
  while (i < n) {
    if (i + 8 <= n) {
      uint64_t v;
      std::memcpy(&v, p + i, 8);
      constexpr uint64_t kHigh = 0x8080808080808080ULL, kLow = 0x0101010101010101ULL;
      if ((v & kHigh) == 0 && ((v - kLow) & ~v & kHigh) == 0) {
        i += 8;
        count += 8;
        continue;
      }
    }
    const unsigned c = p[i];
    if (c < 0x80) {
      if (c == 0) has_nul = true;
      ++i;
      ++count;
      continue;
    }
    size_t len;
    if (c >= 0xC2 && c <= 0xDF) len = 2;
    else if ((c & 0xF0) == 0xE0) len = 3;
    else if (c >= 0xF0 && c <= 0xF4) len = 4;
    else return -1;
    if (i + len > n) return -1;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xC0) != 0x80) return -1;
    }
    if (len == 3) {
      const uint32_t cp = ((c & 0x0F) << 12) | ((p[i + 1] & 0x3F) << 6) | (p[i + 2] & 0x3F);
      if (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF)) return -1;
    } else if (len == 4) {
      const uint32_t cp = ((c & 0x07) << 18) | ((p[i + 1] & 0x3F) << 12) | ((p[i + 2] & 0x3F) << 6) |
                          (p[i + 3] & 0x3F);
      if (cp < 0x10000 || cp > 0x10FFFF) return -1;
    }
    i += len;
    ++count;
  }
  return count;
}

inline bool leap_year(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
inline int days_in_month(int y, int m) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && leap_year(y) ? 29 : kDays[m - 1];
}

inline bool read_digits(const char* p, int n, int& v) {
  v = 0;
  for (int i = 0; i < n; ++i) {
    if (!is_digit(p[i])) return false;
    v = v * 10 + (p[i] - '0');
  }
  return true;
}

// YYYY-MM-DD → days since 2000-01-01. `why` explains a failure.
bool parse_date_part(const char* p, const char* e, int64_t& days, const char*& why) {
  int y, mo, d;
  if (e - p < 10 || !read_digits(p, 4, y) || p[4] != '-' || !read_digits(p + 5, 2, mo) || p[7] != '-' ||
      !read_digits(p + 8, 2, d)) {
    why = "expected YYYY-MM-DD";
    return false;
  }
  if (y < 1) {
    why = "year out of range";
    return false;
  }
  if (mo < 1 || mo > 12) {
    why = "month out of range";
    return false;
  }
  if (d < 1 || d > days_in_month(y, mo)) {
    why = "day out of range for month";
    return false;
  }
  days = days_from_civil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d)) - kPgEpochDays;
  return true;
}

// RFC 3339 / ISO 8601 date-time → microseconds since 2000-01-01 UTC (for timestamp: UTC wall time).
//   YYYY-MM-DD[(T|t| )HH:MM[:SS[(.|,)fraction]][Z|z|(+|-)HH[[:]MM]]]
// Digits of the fraction beyond microseconds are truncated. No offset means UTC. A bare date is
// midnight UTC.
bool parse_timestamp_text(std::string_view s, int64_t& out, const char*& why) {
  const char* p = s.data();
  const char* e = p + s.size();
  int64_t days;
  if (!parse_date_part(p, e, days, why)) {
    if (why[0] == 'e') why = "expected RFC 3339, e.g. 2024-01-02T03:04:05Z";
    return false;
  }
  p += 10;
  int64_t secs = 0, frac_us = 0, offset_s = 0;
  if (p != e) {
    why = "expected RFC 3339, e.g. 2024-01-02T03:04:05Z";
    if (*p != 'T' && *p != 't' && *p != ' ') return false;
    ++p;
    int h, mi, sec = 0;
    if (e - p < 5 || !read_digits(p, 2, h) || p[2] != ':' || !read_digits(p + 3, 2, mi)) return false;
    p += 5;
    if (p < e && *p == ':') {
      if (e - p < 3 || !read_digits(p + 1, 2, sec)) return false;
      p += 3;
      if (p < e && (*p == '.' || *p == ',')) {
        ++p;
        int nd = 0;
        while (p < e && is_digit(*p)) {
          if (nd < 6) frac_us = frac_us * 10 + (*p - '0');
          ++nd;
          ++p;
        }
        if (nd == 0) return false;
        for (int k = nd; k < 6; ++k) frac_us *= 10;
      }
    }
    if (p < e) {
      if (*p == 'Z' || *p == 'z') {
        ++p;
      } else if (*p == '+' || *p == '-') {
        const int sign = *p == '-' ? -1 : 1;
        ++p;
        int oh, om = 0;
        if (e - p < 2 || !read_digits(p, 2, oh)) return false;
        p += 2;
        if (p < e) {
          if (*p == ':') ++p;
          if (e - p < 2 || !read_digits(p, 2, om)) return false;
          p += 2;
        }
        if (oh > 23 || om > 59) {
          why = "UTC offset out of range";
          return false;
        }
        offset_s = sign * (oh * 3600 + om * 60);
      } else {
        return false;
      }
    }
    if (p != e) return false;
    if (h > 23) {
      why = "hour out of range";
      return false;
    }
    if (mi > 59) {
      why = "minute out of range";
      return false;
    }
    if (sec > 59) {
      why = "second out of range";
      return false;
    }
    secs = h * 3600 + mi * 60 + sec;
  }
  out = days * kMicrosPerDay + (secs - offset_s) * kMicrosPerSecond + frac_us;
  return true;
}

// Hex digit values by byte, -1 for every other byte.
constexpr auto kHexValue = [] {
  struct Table {
    int8_t v[256];
  } t{};
  for (int c = 0; c < 256; ++c) {
    t.v[c] = c >= '0' && c <= '9' ? static_cast<int8_t>(c - '0')
             : c >= 'a' && c <= 'f' ? static_cast<int8_t>(c - 'a' + 10)
             : c >= 'A' && c <= 'F' ? static_cast<int8_t>(c - 'A' + 10)
                                    : int8_t{-1};
  }
  return t;
}();

// 32 hex digits, plain or 8-4-4-4-12 with hyphens, optionally in {braces}. Every digit pair is
// looked up without a branch; one sign test at the end says whether all 32 were hex digits.
bool parse_uuid(std::string_view s, unsigned char out[16]) {
  static constexpr uint8_t kHyphenated[16] = {0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34};
  if (s.size() >= 2 && s.front() == '{' && s.back() == '}') s = s.substr(1, s.size() - 2);
  const bool hyphens = s.size() == 36;
  if (!hyphens && s.size() != 32) return false;
  if (hyphens && (s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-')) return false;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  int bad = 0;
  for (size_t k = 0; k < 16; ++k) {
    const size_t at = hyphens ? kHyphenated[k] : 2 * k;
    const int hi = kHexValue.v[p[at]], lo = kHexValue.v[p[at + 1]];
    bad |= hi | lo;
    out[k] = static_cast<unsigned char>(static_cast<unsigned>(hi) << 4 | static_cast<unsigned>(lo));
  }
  return bad >= 0;
}

// Bytes of `s` escaped as a JSON string body (without the quotes).
size_t json_escaped_size(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') n += 2;
    else if (c < 0x20) n += (c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t') ? 2 : 6;
    else n += 1;
  }
  return n;
}

char* json_escape(std::string_view s, char* o) {
  static constexpr char kHex[] = "0123456789abcdef";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') {
      *o++ = '\\';
      *o++ = static_cast<char>(c);
    } else if (c < 0x20) {
      *o++ = '\\';
      switch (c) {
        case '\b': *o++ = 'b'; break;
        case '\f': *o++ = 'f'; break;
        case '\n': *o++ = 'n'; break;
        case '\r': *o++ = 'r'; break;
        case '\t': *o++ = 't'; break;
        default:
          *o++ = 'u';
          *o++ = '0';
          *o++ = '0';
          *o++ = kHex[c >> 4];
          *o++ = kHex[c & 15];
      }
    } else {
      *o++ = static_cast<char>(c);
    }
  }
  return o;
}

// True when raw JSON text contains the escape \u0000, which jsonb cannot store.
bool has_json_nul_escape(std::string_view j) {
  const char* p = j.data();
  const char* e = p + j.size();
  while (p < e) {
    const void* hit = std::memchr(p, '\\', static_cast<size_t>(e - p));
    if (!hit) return false;
    p = static_cast<const char*>(hit);
    if (e - p >= 6 && p[1] == 'u' && p[2] == '0' && p[3] == '0' && p[4] == '0' && p[5] == '0') return true;
    p += 2;  // skip the escaped character
  }
  return false;
}

inline int64_t floor_div4(int64_t a) { return a >= 0 ? a / 4 : -((-a + 3) / 4); }

}  // namespace

bool parse_epoch_precision(std::string_view text, EpochPrecision& out) {
  if (text == "s") out = EpochPrecision::s;
  else if (text == "ms") out = EpochPrecision::ms;
  else if (text == "us") out = EpochPrecision::us;
  else if (text == "ns") out = EpochPrecision::ns;
  else return false;
  return true;
}

RowEncoder::RowEncoder(const TableSchema& table) : table_(&table) {
  slots_.resize(table.columns.size());
  scratch_.resize(256);
  digits_.reserve(64);
}

void RowEncoder::begin_row() {
  for (Slot& s : slots_) s.length = -2;
  scratch_used_ = 0;
  row_has_time_ = false;
  error_column_ = -1;
  error_.clear();
}

bool RowEncoder::fail_raw(int column, std::string_view message) {
  error_column_ = column;
  error_missing_ = false;
  error_.assign(message);
  return false;
}

bool RowEncoder::fail(int column, std::string_view message) {
  if (column < 0 || static_cast<size_t>(column) >= table_->columns.size()) return fail_raw(column, message);
  std::string m = "column \"" + table_->columns[column].name + "\": ";
  m.append(message);
  return fail_raw(column, m);
}

bool RowEncoder::fail_type(int column, const char* got) {
  std::string m = "expected ";
  m += expected_for(table_->columns[column].type);
  m += ", got ";
  m += got;
  return fail(column, m);
}

inline bool RowEncoder::claim(int column) {
  if (static_cast<size_t>(column) < slots_.size() && slots_[column].length == -2) [[likely]] return true;
  return claim_failed(column);
}

bool RowEncoder::claim_failed(int column) {
  if (column < 0 || static_cast<size_t>(column) >= slots_.size()) {
    return fail_raw(-1, "column index " + std::to_string(column) + " out of range");
  }
  return fail(column, "given more than once");
}

inline char* RowEncoder::alloc(int column, size_t length) {
  const size_t offset = scratch_used_;
  scratch_used_ += length;
  // Grown, never shrunk: no zero-filling per value once warm.
  if (scratch_used_ > scratch_.size()) [[unlikely]] scratch_.resize(std::max(scratch_used_, 2 * scratch_.size()));
  slots_[column].offset = static_cast<uint32_t>(offset);
  slots_[column].length = static_cast<int32_t>(length);
  return scratch_.data() + offset;
}

bool RowEncoder::set_time(int column, int64_t pg_micros) {
  if (pg_micros < kMinTimeUs - kMicrosPerDay || pg_micros >= kEndTimeUs + kMicrosPerDay) {
    return fail(column, "timestamp out of range (years 0001..9999)");
  }
  store_be64(alloc(column, 8), static_cast<uint64_t>(pg_micros));
  if (column == table_->time_column) {
    row_time_ = pg_micros;
    row_has_time_ = true;
  }
  return true;
}

bool RowEncoder::put_null(int column) {
  if (!claim(column)) return false;
  if (table_->columns[column].not_null) return fail(column, "null is not allowed (NOT NULL)");
  slots_[column].length = -1;
  return true;
}

bool RowEncoder::put_text_bytes(int column, std::string_view s) {
  const Column& c = table_->columns[column];
  // Short ASCII text within the length limit (tags, units, ids): what the general checks below give
  // for it, without the UTF-8 loop and the memcpy call.
  if (s.size() <= 16 && short_plain_ascii(s.data(), s.size()) &&
      (c.max_chars < 0 || static_cast<int64_t>(s.size()) <= c.max_chars)) {
    copy_short(alloc(column, s.size()), s.data(), s.size());
    return true;
  }
  bool has_nul = false;
  const int64_t chars = utf8_length(s, has_nul);
  if (chars < 0) return fail(column, "invalid UTF-8");
  if (has_nul) return fail(column, "text must not contain NUL (\\u0000) characters");
  if (c.max_chars >= 0 && chars > c.max_chars) {
    // PostgreSQL accepts (and cuts) excess characters that are all spaces.
    size_t spaces = 0;
    while (spaces < s.size() && s[s.size() - 1 - spaces] == ' ') ++spaces;
    if (chars - static_cast<int64_t>(spaces) > c.max_chars) {
      return fail(column, "value is " + std::to_string(chars) + " characters long; " +
                              (c.type == PgType::bpchar ? "char(" : "varchar(") + std::to_string(c.max_chars) +
                              ") allows " +
                              std::to_string(c.max_chars));
    }
  }
  std::memcpy(alloc(column, s.size()), s.data(), s.size());
  return true;
}

bool RowEncoder::put_json_string(int column, std::string_view s) {
  const Column& c = table_->columns[column];
  bool has_nul = false;
  if (utf8_length(s, has_nul) < 0) return fail(column, "invalid UTF-8");
  if (has_nul && c.type == PgType::jsonb) return fail(column, "jsonb cannot store NUL (\\u0000) characters");
  const size_t version = c.type == PgType::jsonb ? 1 : 0;
  char* o = alloc(column, version + 2 + json_escaped_size(s));
  if (version) *o++ = 1;
  *o++ = '"';
  o = json_escape(s, o);
  *o = '"';
  return true;
}

bool RowEncoder::put_string(int column, std::string_view v) {
  if (!claim(column)) return false;
  const Column& c = table_->columns[column];
  switch (c.type) {
    case PgType::timestamptz:
    case PgType::timestamp: {
      int64_t us;
      const char* why = "";
      if (!parse_timestamp_text(v, us, why)) {
        return fail(column, "invalid timestamp " + quoted_value(v) + " (" + why + ")");
      }
      return set_time(column, us);
    }
    case PgType::date: {
      int64_t days;
      const char* why = "";
      if (v.size() != 10 || !parse_date_part(v.data(), v.data() + v.size(), days, why)) {
        if (v.size() != 10) why = "expected YYYY-MM-DD";
        return fail(column, "invalid date " + quoted_value(v) + " (" + why + ")");
      }
      store_be32(alloc(column, 4), static_cast<uint32_t>(static_cast<int32_t>(days)));
      if (column == table_->time_column) {
        row_time_ = days * kMicrosPerDay;
        row_has_time_ = true;
      }
      return true;
    }
    case PgType::float8:
    case PgType::float4:
      return put_float(column, v, true);
    case PgType::numeric:
      if (iequals(v, "NaN")) {
        if (c.numeric_precision > 0) return fail(column, "NaN is not allowed in a constrained numeric");
        char* o = alloc(column, 8);
        store_be16(o, 0);
        store_be16(o + 2, 0);
        store_be16(o + 4, 0xC000);
        store_be16(o + 6, 0);
        return true;
      }
      return fail_type(column, "a string");
    case PgType::int2:
    case PgType::int4:
    case PgType::int8:
      return fail_type(column, "a string");
    case PgType::boolean:
      if (iequals(v, "true") || iequals(v, "false")) {
        *alloc(column, 1) = v.size() == 4 ? 1 : 0;
        return true;
      }
      return fail(column, "expected true or false, got the string " + quoted_value(v));
    case PgType::text:
    case PgType::varchar:
    case PgType::bpchar:
      return put_text_bytes(column, v);
    case PgType::uuid: {
      unsigned char bytes[16];
      if (!parse_uuid(v, bytes)) return fail(column, "invalid UUID " + quoted_value(v));
      std::memcpy(alloc(column, 16), bytes, 16);
      return true;
    }
    case PgType::jsonb:
    case PgType::json:
      return put_json_string(column, v);
  }
  return fail_type(column, "a string");
}

bool RowEncoder::put_float(int column, std::string_view t, bool special_names) {
  const Column& c = table_->columns[column];
  const bool f4 = c.type == PgType::float4;
  double d = 0;
  float f = 0;
  if (special_names) {
    if (iequals(t, "NaN")) d = __builtin_nan("");
    else if (iequals(t, "Infinity")) d = __builtin_inf();
    else if (iequals(t, "-Infinity")) d = -__builtin_inf();
    else return fail(column, "expected a number, got a string (only \"NaN\", \"Infinity\" and \"-Infinity\" are accepted as strings)");
    f = static_cast<float>(d);
  } else if (!fast_decimal_to_float(t, f4, d, f)) {
    if (!is_decimal_syntax(t)) return fail(column, "invalid number " + quoted_value(t));
    const char* b = t.data();
    const char* e = b + t.size();
    if (*b == '+') ++b;
    std::from_chars_result r = f4 ? std::from_chars(b, e, f) : std::from_chars(b, e, d);
    if (r.ec == std::errc::result_out_of_range) {
      return fail(column, "value " + shown_value(t) + " is out of range for " + friendly_type(c.type));
    }
    if (r.ec != std::errc() || r.ptr != e) return fail(column, "invalid number " + quoted_value(t));
  }
  if (f4) {
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    store_be32(alloc(column, 4), bits);
  } else {
    uint64_t bits;
    std::memcpy(&bits, &d, 8);
    store_be64(alloc(column, 8), bits);
  }
  return true;
}

bool RowEncoder::put_float_value(int column, std::string_view text, double exact, NumberKind kind) {
  if (static_cast<size_t>(column) < slots_.size()) {
    const PgType type = table_->columns[column].type;
    if (type == PgType::float8) {
      if (!claim(column)) return false;
      uint64_t bits;
      std::memcpy(&bits, &exact, 8);
      store_be64(alloc(column, 8), bits);
      return true;
    }
    if (type == PgType::float4) {
      if (!claim(column)) return false;
      float f;
      if (!exact_double_to_float(exact, f)) return put_float(column, text, false);
      uint32_t bits;
      std::memcpy(&bits, &f, 4);
      store_be32(alloc(column, 4), bits);
      return true;
    }
  }
  return put_number(column, text, kind);
}

bool RowEncoder::put_integer(int column, std::string_view t) {
  const Column& c = table_->columns[column];
  int64_t v;
  if (!parse_small_int(t, v)) {
    Decimal d;
    if (!parse_decimal(t, digits_, d)) return fail(column, "invalid number " + quoted_value(t));
    strip_trailing_zeros(digits_, d);
    if (d.n > 0 && d.exp10 < 0) return fail(column, "value " + shown_value(t) + " is not an integer");
    if (!decimal_to_int64(digits_, d, v)) {
      return fail(column, "value " + shown_value(t) + " is out of range for " + friendly_type(c.type));
    }
  }
  switch (c.type) {
    case PgType::int2:
      if (v < INT16_MIN || v > INT16_MAX) break;
      store_be16(alloc(column, 2), static_cast<uint16_t>(static_cast<int16_t>(v)));
      return true;
    case PgType::int4:
      if (v < INT32_MIN || v > INT32_MAX) break;
      store_be32(alloc(column, 4), static_cast<uint32_t>(static_cast<int32_t>(v)));
      return true;
    default:
      store_be64(alloc(column, 8), static_cast<uint64_t>(v));
      return true;
  }
  return fail(column, "value " + shown_value(t) + " is out of range for " + friendly_type(c.type));
}

bool RowEncoder::put_epoch(int column, std::string_view t) {
  static constexpr int kUnitExp[] = {6, 3, 0, -3};  // s, ms, us, ns → µs
  const int unit_exp = kUnitExp[static_cast<int>(precision_)];
  int64_t v;
  if (parse_small_int(t, v)) {
    // Fast path: plain integers (|v| < 10^18).
    int64_t us;
    if (unit_exp == 6) {
      if (__builtin_mul_overflow(v, int64_t{1000000}, &us)) return fail(column, "timestamp out of range");
    } else if (unit_exp == 3) {
      if (__builtin_mul_overflow(v, int64_t{1000}, &us)) return fail(column, "timestamp out of range");
    } else if (unit_exp == 0) {
      us = v;
    } else {
      us = v >= 0 ? v / 1000 : -((-v + 999) / 1000);  // floor
    }
    if (us > INT64_MAX / 2 || us < INT64_MIN / 2) return fail(column, "timestamp out of range");
    return set_time(column, unix_micros_to_pg(us));
  }
  Decimal d;
  if (!parse_decimal(t, digits_, d)) return fail(column, "invalid number " + quoted_value(t));
  strip_trailing_zeros(digits_, d);
  const int64_t e = d.exp10 + unit_exp;
  // Integer part of digits × 10^e (floor for negatives), within ±2^62.
  unsigned __int128 mag = 0;
  bool frac = false;
  if (d.n > 0) {
    const int64_t int_digits = static_cast<int64_t>(d.n) + e;
    if (int_digits > 19) return fail(column, "timestamp out of range");
    const int64_t keep = std::min<int64_t>(static_cast<int64_t>(d.n), int_digits);
    for (int64_t i = 0; i < keep; ++i) mag = mag * 10 + static_cast<unsigned>(digits_[d.start + i] - '0');
    for (int64_t i = 0; i < e; ++i) mag *= 10;
    frac = keep < static_cast<int64_t>(d.n);  // trailing zeros are stripped: any dropped digit is > 0
  }
  if (mag > (unsigned __int128)(INT64_MAX / 2)) return fail(column, "timestamp out of range");
  int64_t us = static_cast<int64_t>(mag);
  if (d.negative) us = frac ? -us - 1 : -us;
  return set_time(column, unix_micros_to_pg(us));
}

bool RowEncoder::put_numeric(int column, std::string_view t) {
  const Column& c = table_->columns[column];
  Decimal d;
  if (!parse_decimal(t, digits_, d)) return fail(column, "invalid number " + quoted_value(t));
  int64_t dscale;
  const bool constrained = c.numeric_precision > 0;
  if (constrained) {
    const int64_t s = c.numeric_scale;
    if (d.exp10 < -s) {
      // Round to `s` fractional digits, half away from zero (like PostgreSQL's round_var).
      const int64_t drop = -s - d.exp10;
      if (drop > static_cast<int64_t>(d.n)) {
        d.n = 0;
      } else {
        const size_t keep = d.n - static_cast<size_t>(drop);
        const bool up = digits_[d.start + keep] >= '5';
        d.n = keep;
        if (up) {
          size_t i = d.start + keep;  // one past the last kept digit
          for (;;) {
            if (i == d.start) {  // carry out of the top: the spare '0' before start becomes '1'
              --d.start;
              digits_[d.start] = '1';
              ++d.n;
              break;
            }
            --i;
            if (digits_[i] == '9') {
              digits_[i] = '0';
            } else {
              ++digits_[i];
              break;
            }
          }
        }
      }
      d.exp10 = -s;
    }
    const int64_t int_digits = d.n > 0 ? std::max<int64_t>(0, static_cast<int64_t>(d.n) + d.exp10) : 0;
    if (int_digits > c.numeric_precision - s) {
      std::string m = "value " + shown_value(t) + " does not fit numeric(" + std::to_string(c.numeric_precision) +
                      "," + std::to_string(s) + ") of column \"" + c.name + "\"";
      return fail_raw(column, m);
    }
    dscale = std::max<int64_t>(s, 0);
  } else {
    dscale = std::max<int64_t>(0, -d.exp10);
    if (dscale > 0x3FFF) return fail(column, "value " + shown_value(t) + " has too many fractional digits for numeric");
  }
  strip_trailing_zeros(digits_, d);
  if (d.n == 0) {
    char* o = alloc(column, 8);
    store_be16(o, 0);
    store_be16(o + 2, 0);
    store_be16(o + 4, 0);
    store_be16(o + 6, static_cast<uint16_t>(dscale));
    return true;
  }
  const int64_t p_first = static_cast<int64_t>(d.n) - 1 + d.exp10;
  const int64_t weight = floor_div4(p_first);
  const int64_t last = floor_div4(d.exp10);
  const int64_t ndigits = weight - last + 1;
  if (weight > INT16_MAX || weight < INT16_MIN || ndigits > 3000) {
    return fail(column, "value " + shown_value(t) + " is out of range for numeric");
  }
  char* o = alloc(column, 8 + 2 * static_cast<size_t>(ndigits));
  store_be16(o, static_cast<uint16_t>(ndigits));
  store_be16(o + 2, static_cast<uint16_t>(static_cast<int16_t>(weight)));
  store_be16(o + 4, d.negative ? 0x4000 : 0x0000);
  store_be16(o + 6, static_cast<uint16_t>(dscale));
  o += 8;
  const char* digits = digits_.data() + d.start;
  const int64_t n = static_cast<int64_t>(d.n);
  for (int64_t idx = 0; idx < ndigits; ++idx) {
    const int64_t g = weight - idx;
    unsigned value = 0;
    for (int k = 3; k >= 0; --k) {
      const int64_t i = p_first - (4 * g + k);
      value = value * 10 + ((i >= 0 && i < n) ? static_cast<unsigned>(digits[i] - '0') : 0);
    }
    store_be16(o, static_cast<uint16_t>(value));
    o += 2;
  }
  return true;
}

bool RowEncoder::put_number(int column, std::string_view t, NumberKind kind) {
  if (!claim(column)) return false;
  const Column& c = table_->columns[column];
  switch (c.type) {
    case PgType::timestamptz:
    case PgType::timestamp:
      return put_epoch(column, t);
    case PgType::date:
      return fail_type(column, "a number");
    case PgType::float8:
    case PgType::float4:
      return put_float(column, t, false);
    case PgType::int2:
    case PgType::int4:
    case PgType::int8:
      return put_integer(column, t);
    case PgType::numeric:
      return put_numeric(column, t);
    case PgType::boolean:
      return fail_type(column, "a number");
    case PgType::text:
    case PgType::varchar:
    case PgType::bpchar:
      if (!is_decimal_syntax(t)) return fail(column, "invalid number " + quoted_value(t));
      return put_text_bytes(column, t);
    case PgType::uuid:
      return fail_type(column, "a number");
    case PgType::jsonb:
    case PgType::json: {
      if (!is_json_number(t)) return fail(column, "invalid JSON number " + quoted_value(t));
      const size_t version = c.type == PgType::jsonb ? 1 : 0;
      char* o = alloc(column, version + t.size());
      if (version) *o++ = 1;
      std::memcpy(o, t.data(), t.size());
      return true;
    }
  }
  return fail_type(column, "a number");
}

bool RowEncoder::put_unix_micros(int column, int64_t us) {
  if (column < 0 || static_cast<size_t>(column) >= slots_.size() ||
      (table_->columns[column].type != PgType::timestamptz && table_->columns[column].type != PgType::timestamp)) {
    char text[24];
    const auto r = std::to_chars(text, text + sizeof text, us);
    const EpochPrecision saved = precision_;
    precision_ = EpochPrecision::us;
    const bool ok = put_number(column, std::string_view(text, static_cast<size_t>(r.ptr - text)), NumberKind::integer);
    precision_ = saved;
    return ok;
  }
  if (!claim(column)) return false;
  // put_epoch with unit µs: its integer path (up to 18 digits) and its decimal path (19 digits,
  // magnitude at most INT64_MAX / 2) refuse the same values.
  if (us > INT64_MAX / 2 || us < -(INT64_MAX / 2)) return fail(column, "timestamp out of range");
  return set_time(column, unix_micros_to_pg(us));
}

bool RowEncoder::put_bool(int column, bool value) {
  if (!claim(column)) return false;
  const Column& c = table_->columns[column];
  const std::string_view text = value ? "true" : "false";
  switch (c.type) {
    case PgType::boolean:
      *alloc(column, 1) = value ? 1 : 0;
      return true;
    case PgType::text:
    case PgType::varchar:
    case PgType::bpchar:
      return put_text_bytes(column, text);
    case PgType::jsonb:
    case PgType::json: {
      const size_t version = c.type == PgType::jsonb ? 1 : 0;
      char* o = alloc(column, version + text.size());
      if (version) *o++ = 1;
      std::memcpy(o, text.data(), text.size());
      return true;
    }
    default:
      return fail_type(column, "a boolean");
  }
}

bool RowEncoder::put_json(int column, std::string_view j) {
  if (!claim(column)) return false;
  const Column& c = table_->columns[column];
  switch (c.type) {
    case PgType::text:
    case PgType::varchar:
    case PgType::bpchar:
      return put_text_bytes(column, j);
    case PgType::jsonb:
    case PgType::json: {
      bool has_nul = false;
      if (utf8_length(j, has_nul) < 0) return fail(column, "invalid UTF-8");
      if (c.type == PgType::jsonb && has_json_nul_escape(j)) {
        return fail(column, "jsonb cannot store NUL (\\u0000) characters");
      }
      const size_t version = c.type == PgType::jsonb ? 1 : 0;
      char* o = alloc(column, version + j.size());
      if (version) *o++ = 1;
      std::memcpy(o, j.data(), j.size());
      return true;
    }
    default:
      return fail_type(column, "a JSON object or array");
  }
}

bool RowEncoder::end_row(std::vector<char>& out, uint64_t& mask, int64_t& min_time, int64_t& max_time) {
  const auto& cols = table_->columns;
  const size_t ncols = cols.size();
  // One pass, written into room for every field (2 + 4 per column + the row's value bytes) and
  // trimmed after; a missing required column puts `out` back to its old size.
  const size_t base = out.size();
  out.resize(base + 2 + 4 * ncols + scratch_used_);
  char* o = out.data() + base + 2;
  uint64_t present = 0;
  size_t fields = 0;
  for (size_t i = 0; i < ncols; ++i) {
    const Column& c = cols[i];
    const int32_t len = slots_[i].length;
    if (len == -2) {
      if (c.omit_bit >= 0) continue;
      if (c.not_null) {
        out.resize(base);
        fail_raw(static_cast<int>(i), "missing value for required column \"" + c.name + "\"");
        error_missing_ = true;
        return false;
      }
      store_be32(o, 0xFFFFFFFFu);
      o += 4;
      ++fields;
      continue;
    }
    if (c.omit_bit >= 0) present |= uint64_t{1} << c.omit_bit;
    ++fields;
    store_be32(o, static_cast<uint32_t>(len));
    o += 4;
    const char* src = scratch_.data() + slots_[i].offset;
    // Fixed sizes (float8, int8, timestamps, float4, int4, uuid) as inline moves, not memcpy calls.
    switch (len) {
      case 8: std::memcpy(o, src, 8); break;
      case 4: std::memcpy(o, src, 4); break;
      case 16: std::memcpy(o, src, 16); break;
      default:
        if (len > 16) std::memcpy(o, src, static_cast<size_t>(len));
        else if (len > 0) copy_short(o, src, static_cast<size_t>(len));  // -1 is NULL: no bytes
    }
    if (len > 0) o += len;
  }
  store_be16(out.data() + base, static_cast<uint16_t>(fields));
  out.resize(static_cast<size_t>(o - out.data()));
  mask = present;
  if (row_has_time_) {
    if (row_time_ < min_time) min_time = row_time_;
    if (row_time_ > max_time) max_time = row_time_;
  }
  return true;
}

}  // namespace sluice
