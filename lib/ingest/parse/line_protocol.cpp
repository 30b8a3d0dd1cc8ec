// ingest/parse/line_protocol.cpp — see line_protocol.h.
//
// One forward pass per line: memchr finds the line end, then each element is scanned to its first
// unescaped delimiter (16 bytes at a time with SSE2; digits of integers 8 at a time). Tokens without escapes are views into the body; tokens with escapes are
// copied once, unescaped, into unescaped_, which is sized to the line before parsing starts so views into
// it never move. Error messages are built only on the bad path.
#include "ingest/parse/line_protocol.h"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>  // SSE2 is part of the x86-64 baseline: no runtime dispatch needed
#endif

#include "core/ascii_digits.h"
#include "core/decimal_double.h"

namespace sluice {

namespace {

inline bool is_digit(char c) { return static_cast<unsigned char>(c - '0') < 10; }

// Index of the first byte in [i, n) that is ',' or ' ' (or '\\' with kBackslash, '=' with kEquals), else n.
// Bytes up to p + readable (readable >= n) may be read: the scan looks at 16 bytes at a time and ignores
// hits at or after n, so a short token ends in one step when the body goes on after the line.
template <bool kBackslash, bool kEquals>
inline size_t find_stop(const char* p, size_t i, size_t n, size_t readable) {
#if defined(__SSE2__)
  const __m128i comma = _mm_set1_epi8(','), space = _mm_set1_epi8(' ');
  while (i < n && i + 16 <= readable) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + i));
    __m128i m = _mm_or_si128(_mm_cmpeq_epi8(v, comma), _mm_cmpeq_epi8(v, space));
    if constexpr (kBackslash) m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('\\')));
    if constexpr (kEquals) m = _mm_or_si128(m, _mm_cmpeq_epi8(v, _mm_set1_epi8('=')));
    const auto bits = static_cast<unsigned>(_mm_movemask_epi8(m));
    if (bits != 0) return std::min(n, i + static_cast<size_t>(__builtin_ctz(bits)));
    i += 16;
  }
  if (i >= n) return n;
#endif
  for (; i < n; ++i) {
    const char c = p[i];
    if (c == ',' || c == ' ' || (kBackslash && c == '\\') || (kEquals && c == '=')) break;
  }
  return i;
}

// Hash of a key for the duplicate check: its length and its first and last 8 bytes (keys of wide rows
// share prefixes like "energy_imported_" but differ near one end). Collisions only cost a compare.
inline uint64_t key_hash(std::string_view k) {
  const size_t n = k.size();
  uint64_t a = n, b = 0;
  if (n >= 8) {
    std::memcpy(&a, k.data(), 8);
    std::memcpy(&b, k.data() + n - 8, 8);
    b += n;
  } else {
    for (size_t j = 0; j < n; ++j) a = a << 8 | static_cast<unsigned char>(k[j]);
  }
  const unsigned __int128 m = static_cast<unsigned __int128>(a ^ 0x9e3779b97f4a7c15ull) * (b ^ 0xbf58476d1ce4e5b9ull);
  return static_cast<uint64_t>(m) ^ static_cast<uint64_t>(m >> 64);
}

inline bool escapable(char c, bool measurement) {
  return c == ',' || c == ' ' || c == '\\' || (!measurement && c == '=');
}

std::string shown(std::string_view v) {
  std::string out;
  append_for_message(out, v);
  return out;
}

std::string quoted(std::string_view v) { return "\"" + shown(v) + "\""; }

// Non-empty decimal digits (after an optional '-' when `allow_minus`) whose value fits `limit`
// (`limit + 1` for negatives). Returns 0 ok, 1 bad syntax, 2 out of range; on 0, `magnitude` and
// `negative` hold the value.
int parse_integer(std::string_view t, bool allow_minus, uint64_t limit, uint64_t& magnitude, bool& negative) {
  size_t i = 0;
  negative = false;
  if (allow_minus && !t.empty() && t[0] == '-') {
    negative = true;
    i = 1;
  }
  const size_t digits = t.size() - i;
  if (digits == 0) return 1;
  uint64_t v = 0;
  bool overflow = false;
  if (digits <= 19) {  // 10^19 - 1 < 2^64: no overflow check needed
    for (; t.size() - i >= 8; i += 8) {
      const uint64_t eight = load8(t.data() + i);
      if (!all_eight_digits(eight)) return 1;
      v = v * 100000000 + eight_digits_value(eight);
    }
    for (; i < t.size(); ++i) {
      const auto d = static_cast<unsigned>(static_cast<unsigned char>(t[i]) - '0');
      if (d > 9) return 1;
      v = v * 10 + d;
    }
  } else {
    for (; i < t.size(); ++i) {
      if (!is_digit(t[i])) return 1;
      if (!overflow && (__builtin_mul_overflow(v, uint64_t{10}, &v) ||
                        __builtin_add_overflow(v, static_cast<uint64_t>(t[i] - '0'), &v))) {
        overflow = true;
      }
    }
  }
  if (overflow || v > limit + (negative ? 1 : 0)) return 2;
  magnitude = v;
  return 0;
}

bool parse_bool(std::string_view t, bool& out) {
  switch (t.size()) {
    case 1:
      if (t[0] == 't' || t[0] == 'T') return out = true, true;
      if (t[0] == 'f' || t[0] == 'F') return out = false, true;
      return false;
    case 4:
      if (t == "true" || t == "True" || t == "TRUE") return out = true, true;
      return false;
    case 5:
      if (t == "false" || t == "False" || t == "FALSE") return out = false, true;
      return false;
    default:
      return false;
  }
}

}  // namespace

const char* line_field_kind_name(LineFieldKind k) {
  switch (k) {
    case LineFieldKind::floating: return "float";
    case LineFieldKind::integer: return "integer";
    case LineFieldKind::unsigned_integer: return "unsigned";
    case LineFieldKind::string: return "string";
    case LineFieldKind::boolean: return "boolean";
  }
  return "unknown";
}

void append_for_message(std::string& out, std::string_view s, size_t max_bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (i >= max_bytes) {
      out.append("...");
      return;
    }
    const unsigned c = p[i];
    if (c < 0x80) {
      out.push_back(c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c));
      ++i;
      continue;
    }
    // A complete, valid UTF-8 sequence is kept; anything else becomes '?' byte by byte.
    size_t len = 0;
    unsigned lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;
      if (c == 0xED) hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;
      if (c == 0xF4) hi = 0x8F;
    }
    bool ok = len > 0 && i + len <= n && p[i + 1] >= lo && p[i + 1] <= hi;
    for (size_t k = 2; ok && k < len; ++k) ok = (p[i + k] & 0xC0) == 0x80;
    if (ok) {
      out.append(s.substr(i, len));
      i += len;
    } else {
      out.push_back('?');
      ++i;
    }
  }
}

void LineProtocolParser::reset(std::string_view body, EpochPrecision precision, int64_t now_ns) {
  body_ = body;
  pos_ = 0;
  line_no_ = 0;
  precision_ = precision;
  now_ns_ = now_ns;
}

LineStatus LineProtocolParser::next(ParsedLine& out, LineError& err) {
  while (pos_ < body_.size()) {
    const char* base = body_.data();
    const void* nl = std::memchr(base + pos_, '\n', body_.size() - pos_);
    const size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - base) : body_.size();
    std::string_view line = body_.substr(pos_, end - pos_);
    pos_ = nl ? end + 1 : end;
    ++line_no_;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t start = 0;
    while (start < line.size() && (line[start] == ' ' || line[start] == '\t')) ++start;
    if (start == line.size() || line[start] == '#') continue;
    return parse_line(line, start, out, err);
  }
  return LineStatus::end;
}

LineStatus LineProtocolParser::fail(LineError& err, size_t column, std::string message) {
  err.line_no = line_no_;
  err.byte = static_cast<uint32_t>(column + 1);
  err.message = "line " + std::to_string(line_no_) + ": ";
  err.message += message;
  err.message += " (byte " + std::to_string(column + 1) + ")";
  return LineStatus::error;
}

std::string_view LineProtocolParser::unescape_name(std::string_view raw, bool measurement) {
  char* const begin = unescaped_.data() + unescaped_used_;
  char* o = begin;
  for (size_t i = 0; i < raw.size();) {
    if (raw[i] == '\\' && i + 1 < raw.size() && escapable(raw[i + 1], measurement)) {
      *o++ = raw[i + 1];
      i += 2;
    } else {
      *o++ = raw[i++];
    }
  }
  const size_t n = static_cast<size_t>(o - begin);
  unescaped_used_ += n;
  return std::string_view(begin, n);
}

std::string_view LineProtocolParser::unescape_string(std::string_view raw) {
  char* const begin = unescaped_.data() + unescaped_used_;
  char* o = begin;
  for (size_t i = 0; i < raw.size();) {
    if (raw[i] == '\\' && i + 1 < raw.size() && (raw[i + 1] == '"' || raw[i + 1] == '\\')) {
      *o++ = raw[i + 1];
      i += 2;
    } else {
      *o++ = raw[i++];
    }
  }
  const size_t n = static_cast<size_t>(o - begin);
  unescaped_used_ += n;
  return std::string_view(begin, n);
}

// Inlined into parse_line (its only caller): the call costs as much as scanning a short token.
[[gnu::always_inline]] inline std::string_view LineProtocolParser::scan_name(std::string_view line, size_t& i,
                                                                             bool measurement, bool stop_at_equals) {
  const size_t start = i;
  const size_t n = line.size();
  const char* const p = line.data();
  const size_t readable = static_cast<size_t>(body_.data() + body_.size() - p);
  bool escaped = false;
  for (;;) {
    i = stop_at_equals ? find_stop<true, true>(p, i, n, readable) : find_stop<true, false>(p, i, n, readable);
    if (i >= n || p[i] != '\\') break;
    if (i + 1 < n && escapable(p[i + 1], measurement)) {
      escaped = true;
      i += 2;
    } else {
      ++i;
    }
  }
  const std::string_view raw = line.substr(start, i - start);
  return escaped ? unescape_name(raw, measurement) : raw;
}

bool LineProtocolParser::has_duplicates(bool tags, std::string_view& duplicate) {
  const size_t n = tags ? tags_.size() : fields_.size();
  auto key = [&](size_t k) { return tags ? tags_[k].key : fields_[k].key; };
  if (n < 2) return false;
  if (n <= 16) {
    for (size_t a = 1; a < n; ++a) {
      for (size_t b = 0; b < a; ++b) {
        if (key(a) == key(b)) {
          duplicate = key(a);
          return true;
        }
      }
    }
    return false;
  }
  // Many keys (wide tables): a hash set of key indexes instead of n² compares or a sort per line.
  size_t slots = 64;
  while (slots < 2 * n) slots *= 2;
  if (dup_slots_.size() < slots) dup_slots_.resize(slots);
  std::fill(dup_slots_.begin(), dup_slots_.begin() + static_cast<std::ptrdiff_t>(slots), 0u);
  for (size_t k = 0; k < n; ++k) {
    const std::string_view name = key(k);
    const uint64_t h = key_hash(name);
    for (size_t at = h & (slots - 1);; at = (at + 1) & (slots - 1)) {
      const uint32_t slot = dup_slots_[at];
      if (slot == 0) {
        dup_slots_[at] = static_cast<uint32_t>(k + 1);
        break;
      }
      if (key(slot - 1) == name) {
        duplicate = name;
        return true;
      }
    }
  }
  return false;
}

LineStatus LineProtocolParser::check_duplicates(LineError& err) {
  // Points at the second occurrence when it is a view into the line (not an unescaped copy).
  std::string_view duplicate;
  auto where = [&](std::string_view key) {
    const char* p = key.data();
    return p >= line_.data() && p < line_.data() + line_.size() ? static_cast<size_t>(p - line_.data())
                                                                 : measurement_at_;
  };
  if (has_duplicates(true, duplicate)) return fail(err, where(duplicate), "duplicate tag " + quoted(duplicate));
  if (has_duplicates(false, duplicate)) return fail(err, where(duplicate), "duplicate field " + quoted(duplicate));
  return LineStatus::line;
}

LineStatus LineProtocolParser::parse_line(std::string_view line, size_t i, ParsedLine& out, LineError& err) {
  const size_t n = line.size();
  tags_.clear();
  fields_.clear();
  if (unescaped_.size() < n) unescaped_.resize(n);
  unescaped_used_ = 0;

  // Measurement.
  const size_t measurement_at = i;
  const std::string_view measurement = scan_name(line, i, true, false);
  if (i == measurement_at) return fail(err, measurement_at, "missing measurement");

  // Tags.
  while (i < n && line[i] == ',') {
    ++i;
    const size_t key_at = i;
    const std::string_view key = scan_name(line, i, false, true);
    if (i == key_at) return fail(err, key_at, "missing tag key");
    if (i >= n || line[i] != '=') return fail(err, key_at, "invalid tag " + quoted(key) + " (expected key=value)");
    ++i;
    const size_t value_at = i;
    const std::string_view value = scan_name(line, i, false, true);
    if (i == value_at) return fail(err, value_at, "missing tag value for " + quoted(key));
    if (i < n && line[i] == '=') {
      return fail(err, i, "invalid tag value for " + quoted(key) + ": unescaped '=' (write \\=)");
    }
    tags_.push_back(LineTag{key, value});
  }
  if (i >= n) return fail(err, i, "missing field set");
  // line[i] == ' ' here: scan_name stops only at ',', ' ' or the end.
  while (i < n && line[i] == ' ') ++i;
  if (i >= n) return fail(err, i, "missing field set");

  // Fields.
  for (;;) {
    const size_t key_at = i;
    const std::string_view key = scan_name(line, i, false, true);
    if (i == key_at) return fail(err, key_at, "missing field key");
    if (i >= n || line[i] != '=') {
      return fail(err, key_at, "invalid field " + quoted(key) + " (expected key=value)");
    }
    ++i;
    const size_t value_at = i;
    LineField f;
    f.key = key;
    if (i < n && line[i] == '"') {
      ++i;
      bool escaped = false;
      while (i < n) {
        const char c = line[i];
        if (c == '\\' && i + 1 < n && (line[i + 1] == '"' || line[i + 1] == '\\')) {
          escaped = true;
          i += 2;
          continue;
        }
        if (c == '"') break;
        ++i;
      }
      if (i >= n) return fail(err, value_at, "unterminated string value for " + quoted(key));
      const std::string_view raw = line.substr(value_at + 1, i - value_at - 1);
      ++i;  // closing quote
      if (i < n && line[i] != ',' && line[i] != ' ') {
        return fail(err, i, "invalid field value for " + quoted(key) + ": content after the closing quote");
      }
      f.kind = LineFieldKind::string;
      f.value = escaped ? unescape_string(raw) : raw;
    } else {
      i = find_stop<false, false>(line.data(), i, n, static_cast<size_t>(body_.data() + body_.size() - line.data()));
      const std::string_view v = line.substr(value_at, i - value_at);
      if (v.empty()) return fail(err, value_at, "missing field value for " + quoted(key));
      int check = 1;
      uint64_t magnitude = 0;
      bool negative = false;
      const char last = v.back();
      if (last == 'i') {
        f.kind = LineFieldKind::integer;
        f.value = v.substr(0, v.size() - 1);
        check = parse_integer(f.value, true, static_cast<uint64_t>(INT64_MAX), magnitude, negative);
      } else if (last == 'u') {
        f.kind = LineFieldKind::unsigned_integer;
        f.value = v.substr(0, v.size() - 1);
        check = parse_integer(f.value, false, UINT64_MAX, magnitude, negative);
      } else if (const int form = scan_float_text(v, f.number); form != 0) {
        // Before the booleans: no float text is a boolean literal. Form 2: f.number is its double.
        f.kind = LineFieldKind::floating;
        f.has_number = form == 2;
        f.value = v;
        check = 0;
      } else if (parse_bool(v, f.boolean)) {
        f.kind = LineFieldKind::boolean;
        f.value = v;
        check = 0;
      }
      if (check == 1) return fail(err, value_at, "invalid field value for " + quoted(key) + ": " + shown(v));
      if (check == 2) {
        return fail(err, value_at,
                    std::string(f.kind == LineFieldKind::integer ? "integer" : "unsigned") +
                        " field value out of range for " + quoted(key) + ": " + shown(v));
      }
    }
    fields_.push_back(f);
    if (i < n && line[i] == ',') {
      ++i;
      continue;
    }
    break;  // ' ' or the end
  }

  // Timestamp.
  while (i < n && line[i] == ' ') ++i;
  bool has_timestamp = false;
  int64_t timestamp_ns = now_ns_;
  if (i < n) {
    const size_t ts_at = i;
    const void* space = std::memchr(line.data() + i, ' ', n - i);
    i = space ? static_cast<size_t>(static_cast<const char*>(space) - line.data()) : n;
    const std::string_view ts = line.substr(ts_at, i - ts_at);
    while (i < n && line[i] == ' ') ++i;
    if (i < n) return fail(err, i, "unexpected content after the timestamp");
    uint64_t magnitude = 0;
    bool negative = false;
    const int check = parse_integer(ts, true, static_cast<uint64_t>(INT64_MAX), magnitude, negative);
    if (check == 1) return fail(err, ts_at, "invalid timestamp: " + shown(ts));
    int64_t v = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
    static constexpr int64_t kFactor[] = {1000000000, 1000000, 1000, 1};  // s, ms, us, ns
    const bool in_range = check == 0 && !__builtin_mul_overflow(v, kFactor[static_cast<int>(precision_)], &v);
    if (!in_range) return fail(err, ts_at, "timestamp out of range: " + shown(ts));
    has_timestamp = true;
    timestamp_ns = v;
  }

  line_ = line;
  measurement_at_ = measurement_at;
  if (!defer_duplicates_ && check_duplicates(err) == LineStatus::error) return LineStatus::error;

  out.measurement = measurement;
  out.tags = std::span<const LineTag>(tags_.data(), tags_.size());
  out.fields = std::span<const LineField>(fields_.data(), fields_.size());
  out.has_timestamp = has_timestamp;
  out.timestamp_ns = timestamp_ns;
  out.line_no = line_no_;
  return LineStatus::line;
}

}  // namespace sluice
