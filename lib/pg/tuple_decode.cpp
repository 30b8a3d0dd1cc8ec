// pg/tuple_decode.cpp — binary COPY tuple walking and decoding to JSON (dead-letter path only).
#include "pg/tuple_decode.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>

#include <nlohmann/json.hpp>

#include "core/pg_time.h"

namespace sluice::pg {

namespace {

uint16_t be16(const char* p) {
  return static_cast<uint16_t>((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]));
}
uint32_t be32(const char* p) {
  return (uint32_t{static_cast<uint8_t>(p[0])} << 24) | (uint32_t{static_cast<uint8_t>(p[1])} << 16) |
         (uint32_t{static_cast<uint8_t>(p[2])} << 8) | uint32_t{static_cast<uint8_t>(p[3])};
}
uint64_t be64(const char* p) { return (uint64_t{be32(p)} << 32) | be32(p + 4); }

std::string hex_string(const char* p, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\\x";
  for (size_t i = 0; i < n; ++i) {
    out.push_back(kHex[static_cast<uint8_t>(p[i]) >> 4]);
    out.push_back(kHex[static_cast<uint8_t>(p[i]) & 15]);
  }
  return out;
}

// Valid UTF-8 without NUL (jsonb refuses \u0000).
bool clean_utf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<uint8_t>(s[i]);
    if (c == 0) return false;
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<uint8_t>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (char ch : s) {
    const auto c = static_cast<uint8_t>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(ch);
        }
    }
  }
  out.push_back('"');
}

void append_text_or_hex(std::string& out, const char* p, size_t n) {
  const std::string_view s(p, n);
  if (clean_utf8(s)) {
    append_json_string(out, s);
  } else {
    append_json_string(out, hex_string(p, n));
  }
}

template <typename F>
void append_float(std::string& out, F v) {
  if (std::isnan(v)) {
    out += "\"NaN\"";
  } else if (std::isinf(v)) {
    out += v > 0 ? "\"Infinity\"" : "\"-Infinity\"";
  } else {
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

// Appends the value of one non-NULL field; false when its bytes do not fit the type.
bool append_value(std::string& out, const Column& col, const char* p, size_t n) {
  switch (col.type) {
    case PgType::timestamptz:
    case PgType::timestamp:
      if (n != 8) return false;
      append_json_string(out, pg_timestamp_to_rfc3339(static_cast<int64_t>(be64(p))));
      return true;
    case PgType::date:
      if (n != 4) return false;
      append_json_string(out, pg_date_to_text(static_cast<int32_t>(be32(p))));
      return true;
    case PgType::float8: {
      if (n != 8) return false;
      const uint64_t bits = be64(p);
      double v;
      std::memcpy(&v, &bits, 8);
      append_float(out, v);
      return true;
    }
    case PgType::float4: {
      if (n != 4) return false;
      const uint32_t bits = be32(p);
      float v;
      std::memcpy(&v, &bits, 4);
      append_float(out, v);
      return true;
    }
    case PgType::int2:
      if (n != 2) return false;
      out += std::to_string(static_cast<int16_t>(be16(p)));
      return true;
    case PgType::int4:
      if (n != 4) return false;
      out += std::to_string(static_cast<int32_t>(be32(p)));
      return true;
    case PgType::int8:
      if (n != 8) return false;
      out += std::to_string(static_cast<int64_t>(be64(p)));
      return true;
    case PgType::numeric: {
      const std::string text = numeric_binary_to_text(p, n);
      if (text.empty()) return false;
      if (text == "NaN" || text == "Infinity" || text == "-Infinity") {
        append_json_string(out, text);
      } else {
        out += text;
      }
      return true;
    }
    case PgType::boolean:
      if (n != 1) return false;
      out += p[0] ? "true" : "false";
      return true;
    case PgType::text:
    case PgType::varchar:
    case PgType::bpchar:
      append_text_or_hex(out, p, n);
      return true;
    case PgType::uuid: {
      if (n != 16) return false;
      static constexpr char kHex[] = "0123456789abcdef";
      std::string s;
      for (size_t i = 0; i < 16; ++i) {
        if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
        s.push_back(kHex[static_cast<uint8_t>(p[i]) >> 4]);
        s.push_back(kHex[static_cast<uint8_t>(p[i]) & 15]);
      }
      append_json_string(out, s);
      return true;
    }
    case PgType::jsonb:
    case PgType::json: {
      size_t skip = 0;
      if (col.type == PgType::jsonb) {
        if (n < 1 || p[0] != 1) return false;  // jsonb binary format version 1
        skip = 1;
      }
      const std::string_view text(p + skip, n - skip);
      if (clean_utf8(text) && text.find("\\u0000") == std::string_view::npos &&
          nlohmann::json::accept(text.begin(), text.end())) {
        out.append(text);
      } else {
        append_text_or_hex(out, p + skip, n - skip);
      }
      return true;
    }
  }
  return false;
}

}  // namespace

bool split_tuples(const std::vector<char>& data, uint32_t block_index, std::vector<TupleSpan>& out) {
  const char* p = data.data();
  const size_t end = data.size();
  size_t off = 0;
  while (off < end) {
    const size_t start = off;
    if (end - off < 2) return false;
    const int16_t fields = static_cast<int16_t>(be16(p + off));
    off += 2;
    if (fields < 0) return false;
    for (int16_t f = 0; f < fields; ++f) {
      if (end - off < 4) return false;
      const int32_t len = static_cast<int32_t>(be32(p + off));
      off += 4;
      if (len < -1) return false;
      if (len > 0) {
        if (end - off < static_cast<size_t>(len)) return false;
        off += static_cast<size_t>(len);
      }
    }
    if (off - start > UINT32_MAX || start > UINT32_MAX) return false;
    out.push_back(TupleSpan{block_index, static_cast<uint32_t>(start), static_cast<uint32_t>(off - start)});
  }
  return true;
}

std::string tuple_to_json(const TableSchema& table, uint64_t column_mask, const char* data, size_t size) {
  std::string out = "{";
  auto fallback = [&] {
    std::string f = "{\"_tuple_hex\":";
    append_json_string(f, hex_string(data, size));
    f.push_back('}');
    return f;
  };
  if (size < 2) return fallback();
  const int fields = static_cast<int16_t>(be16(data));
  size_t off = 2;
  int field = 0;
  for (const Column& col : table.columns) {
    if (col.omit_bit >= 0 && (column_mask & (uint64_t{1} << col.omit_bit)) == 0) continue;
    if (field >= fields || size - off < 4) return fallback();
    const int32_t len = static_cast<int32_t>(be32(data + off));
    off += 4;
    if (field > 0) out.push_back(',');
    append_json_string(out, col.name);
    out.push_back(':');
    if (len < 0) {
      out += "null";
    } else {
      if (size - off < static_cast<size_t>(len)) return fallback();
      const size_t before = out.size();
      if (!append_value(out, col, data + off, static_cast<size_t>(len))) {
        out.resize(before);
        append_json_string(out, hex_string(data + off, static_cast<size_t>(len)));
      }
      off += static_cast<size_t>(len);
    }
    ++field;
  }
  if (field != fields || off != size) return fallback();
  out.push_back('}');
  return out;
}

std::string numeric_binary_to_text(const char* p, size_t n) {
  if (n < 8) return {};
  const int ndigits = static_cast<int16_t>(be16(p));
  const int weight = static_cast<int16_t>(be16(p + 2));
  const uint16_t sign = be16(p + 4);
  const int dscale = static_cast<int16_t>(be16(p + 6));
  if (sign == 0xC000) return "NaN";
  if (sign == 0xD000) return "Infinity";
  if (sign == 0xF000) return "-Infinity";
  if ((sign != 0 && sign != 0x4000) || ndigits < 0 || dscale < 0 || n != 8 + 2 * static_cast<size_t>(ndigits)) {
    return {};
  }
  auto digit = [&](int i) -> int {  // base-10000 digit i (0 = the most significant stored one)
    return i >= 0 && i < ndigits ? static_cast<int16_t>(be16(p + 8 + 2 * i)) : 0;
  };
  for (int i = 0; i < ndigits; ++i) {
    if (digit(i) < 0 || digit(i) > 9999) return {};
  }
  std::string out;
  if (sign == 0x4000) out.push_back('-');
  if (weight < 0) {
    out.push_back('0');
  } else {
    for (int i = 0; i <= weight; ++i) {
      char buf[8];
      std::snprintf(buf, sizeof buf, i == 0 ? "%d" : "%04d", digit(i));
      out += buf;
    }
  }
  if (dscale > 0) {
    out.push_back('.');
    std::string frac;
    for (int i = weight + 1; static_cast<int>(frac.size()) < dscale; ++i) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "%04d", digit(i));
      frac += buf;
    }
    frac.resize(static_cast<size_t>(dscale));
    out += frac;
  }
  if (out == "-0" || (out.size() > 1 && out[0] == '-' && out.find_first_not_of("-0.") == std::string::npos)) {
    out.erase(0, 1);  // negative zero prints as zero
  }
  return out;
}

std::string pg_timestamp_to_rfc3339(int64_t pg_micros) {
  if (pg_micros == INT64_MAX) return "infinity";
  if (pg_micros == INT64_MIN) return "-infinity";
  int64_t days = pg_micros / kMicrosPerDay;
  int64_t rem = pg_micros % kMicrosPerDay;
  if (rem < 0) {
    rem += kMicrosPerDay;
    --days;
  }
  std::string date = pg_date_to_text(static_cast<int32_t>(days));
  const int64_t secs = rem / kMicrosPerSecond;
  const int64_t micros = rem % kMicrosPerSecond;
  char buf[48];
  std::snprintf(buf, sizeof buf, "T%02d:%02d:%02d", static_cast<int>(secs / 3600), static_cast<int>(secs / 60 % 60),
                static_cast<int>(secs % 60));
  std::string out = date + buf;
  if (micros) {
    std::snprintf(buf, sizeof buf, ".%06lld", static_cast<long long>(micros));
    std::string frac = buf;
    while (frac.back() == '0') frac.pop_back();
    out += frac;
  }
  out.push_back('Z');
  return out;
}

std::string pg_date_to_text(int32_t pg_days) {
  if (pg_days == INT32_MAX) return "infinity";
  if (pg_days == INT32_MIN) return "-infinity";
  // Howard Hinnant's civil_from_days, on days since 1970-01-01.
  int64_t z = static_cast<int64_t>(pg_days) + kPgEpochUnixSeconds / 86400 + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t y = static_cast<int64_t>(yoe) + era * 400;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  const unsigned d = doy - (153 * mp + 2) / 5 + 1;
  const unsigned m = mp < 10 ? mp + 3 : mp - 9;
  y += m <= 2;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%04lld-%02u-%02u", static_cast<long long>(y), m, d);
  return buf;
}

}  // namespace sluice::pg
