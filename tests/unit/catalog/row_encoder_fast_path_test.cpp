// Fast paths of RowEncoder must give byte for byte what the general paths give:
//   - float8/float4 from decimal text (Clinger's fast path) against std::from_chars, on edge cases
//     (halfway points of float4, 2^53, exponent limits, signed zeros) and on random decimals;
//   - put_unix_micros against put_number of the same value as text with precision us.
#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "core/decimal_double.h"
#include "encoder_test_util.h"

namespace sluice::test {
namespace {

// The field bytes put_number writes for `text`, or "ERR:" + the error message.
std::string encode_number(RowEncoder& enc, std::string_view text) {
  enc.begin_row();
  if (!enc.put_number(0, text)) return "ERR:" + enc.error();
  std::vector<char> out;
  uint64_t mask = 0;
  int64_t mn = INT64_MAX, mx = INT64_MIN;
  if (!enc.end_row(out, mask, mn, mx)) return "ERR(end):" + enc.error();
  const auto rows = decode_all(out);
  if (rows.size() != 1 || rows[0].fields.size() != 1) return "BAD TUPLE";
  return hex(rows[0].fields[0]);
}

// What the general path gives: the decimal syntax check, then std::from_chars over the whole text
// (after a leading '+').
template <typename T>
std::string reference(std::string_view text) {
  static const std::regex decimal(R"([+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?)");
  if (!std::regex_match(text.begin(), text.end(), decimal)) return "ERR";
  const char* b = text.data();
  const char* e = b + text.size();
  if (b < e && *b == '+') ++b;
  T v{};
  const auto r = std::from_chars(b, e, v);
  if (r.ptr != e) return "ERR";
  if (r.ec == std::errc::result_out_of_range) return "ERR";
  if (r.ec != std::errc()) return "ERR";
  std::string bytes(sizeof(T), '\0');
  if constexpr (sizeof(T) == 8) {
    uint64_t bits;
    std::memcpy(&bits, &v, 8);
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>(bits >> (56 - 8 * i));
  } else {
    uint32_t bits;
    std::memcpy(&bits, &v, 4);
    for (int i = 0; i < 4; ++i) bytes[i] = static_cast<char>(bits >> (24 - 8 * i));
  }
  return hex(bytes);
}

// Outcome of one put as text: the row's bytes and time min/max, or the error.
std::string put_outcome(RowEncoder& enc, bool ok) {
  if (!ok) return "ERR:" + enc.error() + " @" + std::to_string(enc.error_column());
  std::vector<char> out;
  uint64_t mask = 0;
  int64_t mn = INT64_MAX, mx = INT64_MIN;
  if (!enc.end_row(out, mask, mn, mx)) return "ERR(end):" + enc.error();
  return hex(out) + " " + std::to_string(mn) + " " + std::to_string(mx);
}

class FloatFastPath : public ::testing::Test {
 protected:
  void SetUp() override {
    f8_.name = "t8";
    f8_.columns.push_back(make_column("v", PgType::float8));
    finish_table_schema(f8_);
    f4_.name = "t4";
    f4_.columns.push_back(make_column("v", PgType::float4));
    finish_table_schema(f4_);
  }

  void check(std::string_view text) {
    RowEncoder e8(f8_), e4(f4_);
    const std::string got8 = encode_number(e8, text), got4 = encode_number(e4, text);
    check_line_protocol_path(text, e8, e4, got8, got4);
    check_json_path(text, e8, e4, got8, got4);
    const std::string want8 = reference<double>(text), want4 = reference<float>(text);
    if (want8 == "ERR") {
      EXPECT_EQ(got8.rfind("ERR:", 0), 0u) << "float8 " << text << " gave " << got8;
    } else {
      EXPECT_EQ(got8, want8) << "float8 " << text;
    }
    if (want4 == "ERR") {
      EXPECT_EQ(got4.rfind("ERR:", 0), 0u) << "float4 " << text << " gave " << got4;
    } else {
      EXPECT_EQ(got4, want4) << "float4 " << text;
    }
  }

  // The line protocol path: scan_float_text recognises exactly the line protocol float text, its
  // fast form gives exactly exact_decimal_double's double, and put_float_value with that double
  // gives exactly what put_number of the text gives.
  void check_line_protocol_path(std::string_view text, RowEncoder& e8, RowEncoder& e4, const std::string& want8,
                                const std::string& want4) {
    static const std::regex line_float(R"(-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?)");
    double scanned = 0, exact = 0;
    const int form = scan_float_text(text, scanned);
    const bool is_float = std::regex_match(text.begin(), text.end(), line_float);
    EXPECT_EQ(form != 0, is_float) << text;
    const bool fast = exact_decimal_double(text, exact);
    EXPECT_EQ(form == 2, fast) << text;
    if (form != 2) return;
    EXPECT_EQ(std::memcmp(&scanned, &exact, 8), 0) << text;
    EXPECT_EQ(via_value(e8, text, scanned, NumberKind::floating), want8) << "float8 put_float_value " << text;
    EXPECT_EQ(via_value(e4, text, scanned, NumberKind::floating), want4) << "float4 put_float_value " << text;
  }

  // The JSON path: scan_json_number recognises exactly RFC 8259 number text, its fast form is
  // exact_decimal_double's, and put_float_value(NumberKind::any) with it gives what put_number gives.
  void check_json_path(std::string_view text, RowEncoder& e8, RowEncoder& e4, const std::string& want8,
                       const std::string& want4) {
    static const std::regex json_number(R"(-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)");
    double scanned = 0, exact = 0;
    const int form = scan_json_number(text, scanned);
    EXPECT_EQ(form != 0, std::regex_match(text.begin(), text.end(), json_number)) << "json " << text;
    if (form == 0) return;
    EXPECT_EQ(form == 2, exact_decimal_double(text, exact)) << "json " << text;
    if (form != 2) return;
    EXPECT_EQ(std::memcmp(&scanned, &exact, 8), 0) << "json " << text;
    EXPECT_EQ(via_value(e8, text, scanned, NumberKind::any), want8) << "float8 json put_float_value " << text;
    EXPECT_EQ(via_value(e4, text, scanned, NumberKind::any), want4) << "float4 json put_float_value " << text;
  }

  // The field bytes of put_float_value(0, text, v, kind), or "ERR:" + the error message.
  static std::string via_value(RowEncoder& enc, std::string_view text, double v, NumberKind kind) {
    enc.begin_row();
    if (!enc.put_float_value(0, text, v, kind)) return "ERR:" + enc.error();
    std::vector<char> out;
    uint64_t mask = 0;
    int64_t mn = INT64_MAX, mx = INT64_MIN;
    if (!enc.end_row(out, mask, mn, mx)) return "ERR(end):" + enc.error();
    const auto rows = decode_all(out);
    if (rows.size() != 1 || rows[0].fields.size() != 1) return std::string("BAD TUPLE");
    return hex(rows[0].fields[0]);
  }

  TableSchema f8_, f4_;
};

TEST_F(FloatFastPath, EdgeCasesMatchFromChars) {
  const char* const cases[] = {
      "0", "-0", "0.0", "-0.0", "0e5", "-0e-5", "00", "007", "1.", "-1.", ".5", "-.5", "5.e3",
      "1", "-1", "1.5", "123.456", "-20000.125", "49.987", "1234567890.1", "999999999.9",
      // 2^53 and around: the fast path takes mantissas up to 2^53
      "9007199254740992", "9007199254740993", "9007199254740991", "-9007199254740992",
      "9007199254740993e-5", "900719925474099.2", "90071992547409.93",
      // 19 and 20 digits
      "1234567890123456789", "12345678901234567890", "0.1234567890123456789", "1.0000000000000000000",
      "0000000000000000001.5",
      // exponent limits of the fast path (±22) and beyond
      "1e22", "1e23", "-1e22", "1e-22", "1e-23", "123e20", "123e-25", "1.5e21", "4.2e-21", "1E10", "1e+5",
      "1e0000", "1e0001", "1e00001", "1e-0022", "12.5E-07",
      // float4 halfway points (ties to even) and near them
      "16777217", "16777219", "16777217.000001", "16777216.999999", "33554434", "33554435", "33554437",
      "1.00000005960464477539", "1.000000059604644775390625", "0.500000029802322387695312", "8388608.5",
      "8388609.5", "-16777217",
      // float4 overflow / underflow (general path)
      "3.4028235e38", "3.4028236e38", "1e39", "1e40", "-1e40", "1e-46", "1e-45", "1.17549435e-38",
      // double overflow / underflow
      "1e308", "1.8e308", "1e-400", "4.9e-324",
      // not numbers: the general path's errors
      "", "-", ".", "-.", "e5", "1e", "1e+", "1e-", "1.2.3", "1..2", "--1", "+-1", "+1", "+.5", "1e5e5",
      "0x10", "inf", "nan", "-inf", "Infinity", "1 ", " 1", "1,5", "١"};
  for (const char* c : cases) check(c);
}

TEST_F(FloatFastPath, RandomDecimalsMatchFromChars) {
  std::mt19937_64 rng(42);
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::string t;
  for (int n = 0; n < 100000; ++n) {
    t.clear();
    if (pick(0, 3) == 0) t.push_back('-');
    const int digits = pick(1, 21);
    const int point = pick(-1, digits);  // -1: no point
    for (int i = 0; i < digits; ++i) {
      if (i == point) t.push_back('.');
      // Leading digits are often small so that mantissas land near 2^24 and 2^53 too.
      t.push_back(static_cast<char>('0' + pick(0, 9)));
    }
    if (point == digits) t.push_back('.');
    if (pick(0, 2) == 0) {
      t.push_back(pick(0, 1) ? 'e' : 'E');
      const int sign = pick(0, 2);
      if (sign == 1) t.push_back('-');
      if (sign == 2) t.push_back('+');
      t += std::to_string(pick(0, 30));
    }
    check(t);
    if (HasFailure()) return;
  }
}

TEST_F(FloatFastPath, Float4HalfwayPointsOfEveryBinade) {
  // m × 2^k halfway between two floats, written exactly in decimal when it is an integer.
  for (int shift = 0; shift <= 29; ++shift) {
    const uint64_t base = (uint64_t{1} << 24) + 1;  // odd: halfway between 2^24 and 2^24 + 2
    const uint64_t v = base << shift;
    check(std::to_string(v));
    check(std::to_string(v + 1));
    check(std::to_string(v - 1));
    check(std::to_string(v) + ".5");
    check(std::to_string(v) + "e-3");
  }
}

// put_float_value on columns that are not float8/float4 (and on bad column indexes, a column given
// twice, a float4 halfway point) gives what put_number(text, kind) gives: the same bytes or the same
// error, for line protocol floats (floating) and JSON numbers (any).
TEST(FloatValue, SameAsPutNumberOnEveryColumnType) {
  TableSchema t;
  t.name = "t";
  const PgType types[] = {PgType::float8, PgType::float4,  PgType::int2,    PgType::int4,  PgType::int8,
                          PgType::numeric, PgType::text,   PgType::varchar, PgType::jsonb, PgType::json,
                          PgType::boolean, PgType::uuid,   PgType::date,    PgType::timestamptz};
  for (PgType type : types) t.columns.push_back(make_column(std::string("c_") + pg_type_name(type), type));
  Column limited = make_column("c_numeric_5_2", PgType::numeric);
  limited.numeric_precision = 5;
  limited.numeric_scale = 2;
  t.columns.push_back(limited);
  Column short_text = make_column("c_varchar_3", PgType::varchar);
  short_text.max_chars = 3;
  t.columns.push_back(short_text);
  finish_table_schema(t);
  const int ncols = static_cast<int>(t.columns.size());
  const char* const texts[] = {"0",      "-0",   "1.5",  "-20000.125", "16777217", "1e22", "1e-22", "123e20",
                               "5.",     ".5",   "-.5",  "70000",      "1234.567", "3.0",  "1e5",   "40000",
                               "1e-5",   "999.995", "33554435", "9007199254740992", "1.000000059604644"};
  int json_texts = 0;
  for (const char* text : texts) {
    double v = 0;
    ASSERT_EQ(scan_float_text(text, v), 2) << text;
    // Line protocol floats (kind floating) and, where the text is a JSON number, JSON (kind any).
    double json_v = 0;
    const bool json = scan_json_number(text, json_v) == 2;
    json_texts += json;
    for (const NumberKind kind : {NumberKind::floating, NumberKind::any}) {
      if (kind == NumberKind::any && !json) continue;
      for (int c = -1; c <= ncols; ++c) {
        for (int twice = 0; twice < 2; ++twice) {
          RowEncoder a(t), b(t);
          a.begin_row();
          b.begin_row();
          if (twice && c >= 0 && c < ncols) {  // the column already has a value
            ASSERT_TRUE(a.put_null(c));
            ASSERT_TRUE(b.put_null(c));
          }
          const std::string want = put_outcome(a, a.put_number(c, text, kind));
          const std::string got = put_outcome(b, b.put_float_value(c, text, v, kind));
          EXPECT_EQ(got, want) << "column " << c << " text " << text << " twice " << twice << " kind "
                               << static_cast<int>(kind);
        }
      }
    }
  }
  EXPECT_GE(json_texts, 15);
}

// The table-driven UUID parser against a plain reference: every accepted form, a bad byte at every
// position, misplaced hyphens, braces, wrong lengths.
TEST(UuidFastPath, SameAsReference) {
  TableSchema t;
  t.name = "t";
  t.columns.push_back(make_column("u", PgType::uuid));
  finish_table_schema(t);
  auto reference = [](std::string_view s) -> std::string {
    if (s.size() >= 2 && s.front() == '{' && s.back() == '}') s = s.substr(1, s.size() - 2);
    const bool hyphens = s.size() == 36;
    if (!hyphens && s.size() != 32) return "ERR";
    std::string bytes;
    int nibble = -1;
    for (size_t i = 0; i < s.size(); ++i) {
      if (hyphens && (i == 8 || i == 13 || i == 18 || i == 23)) {
        if (s[i] != '-') return "ERR";
        continue;
      }
      const char c = s[i];
      int v;
      if (c >= '0' && c <= '9') v = c - '0';
      else if (c >= 'a' && c <= 'f') v = c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v = c - 'A' + 10;
      else return "ERR";
      if (nibble < 0) {
        nibble = v;
      } else {
        bytes.push_back(static_cast<char>(nibble << 4 | v));
        nibble = -1;
      }
    }
    return hex(bytes);
  };
  auto encoded = [&](std::string_view s) -> std::string {
    RowEncoder enc(t);
    enc.begin_row();
    if (!enc.put_string(0, s)) {
      EXPECT_EQ(enc.error(), "column \"u\": invalid UUID \"" + std::string(s.substr(0, 64)) + (s.size() > 64 ? "..." : "") + "\"");
      return "ERR";
    }
    std::vector<char> out;
    uint64_t mask = 0;
    int64_t mn = INT64_MAX, mx = INT64_MIN;
    if (!enc.end_row(out, mask, mn, mx)) return "ERR(end)";
    const auto rows = decode_all(out);
    return rows.size() == 1 && rows[0].fields.size() == 1 ? hex(rows[0].fields[0]) : "BAD TUPLE";
  };
  const std::string base = "01234567-89ab-cdef-ABCD-EF0123456789";
  std::vector<std::string> cases = {base, "{" + base + "}", "0123456789abcdefABCDEF0123456789",
                                    "{0123456789abcdefABCDEF0123456789}", "", "{}", "{" + base, base + "}",
                                    base.substr(1), base + "0", "0123456789abcdefABCDEF012345678",
                                    "01234567089ab-cdef-ABCD-EF012345678", "01234567-89ab-cdef-ABCD0EF0123456789"};
  const char bad[] = {'g', 'G', '-', ' ', '\0', '\x80', '\xff', '/', ':', '@', '`', '{', '}'};
  for (const std::string& form : {base, std::string("0123456789abcdefABCDEF0123456789"), "{" + base + "}"}) {
    for (size_t at = 0; at < form.size(); ++at) {
      for (char b : bad) {
        std::string s = form;
        s[at] = b;
        cases.push_back(s);
      }
    }
  }
  std::mt19937_64 rng(7);
  for (int n = 0; n < 2000; ++n) {
    std::string s = n % 2 ? base : std::string("0123456789abcdefABCDEF0123456789");
    for (char& c : s) {
      if (c != '-') c = "0123456789abcdefABCDEF"[rng() % 22];
    }
    cases.push_back(s);
  }
  for (const std::string& s : cases) EXPECT_EQ(encoded(s), reference(s)) << hex(s);
}

// Short text is checked and copied with overlapping loads and stores (put_text_bytes, end_row): the
// tuple holds exactly the bytes given, for every length around the 4/8/16-byte steps, into text and
// into varchar(n) at and below its limit.
TEST(TextFastPath, BytesOfEveryShortLength) {
  TableSchema t;
  t.name = "t";
  t.columns.push_back(make_column("a", PgType::text));
  t.columns.push_back(make_column("b", PgType::varchar));
  finish_table_schema(t);
  for (size_t len = 0; len <= 24; ++len) {
    std::string s;
    for (size_t i = 0; i < len; ++i) s.push_back(static_cast<char>('A' + i));
    t.columns[1].max_chars = static_cast<int>(len);
    RowEncoder enc(t);
    enc.begin_row();
    ASSERT_TRUE(enc.put_string(0, s)) << enc.error();
    ASSERT_TRUE(enc.put_string(1, s)) << enc.error();
    std::vector<char> out;
    uint64_t mask = 0;
    int64_t mn = INT64_MAX, mx = INT64_MIN;
    ASSERT_TRUE(enc.end_row(out, mask, mn, mx)) << enc.error();
    const auto rows = decode_all(out);
    ASSERT_EQ(rows.size(), 1u);
    ASSERT_EQ(rows[0].fields.size(), 2u);
    EXPECT_EQ(rows[0].fields[0], s) << len;
    EXPECT_EQ(rows[0].fields[1], s) << len;
    if (len > 0) {
      t.columns[1].max_chars = static_cast<int>(len) - 1;
      RowEncoder short_enc(t);
      short_enc.begin_row();
      EXPECT_FALSE(short_enc.put_string(1, s));
      EXPECT_EQ(short_enc.error(), "column \"b\": value is " + std::to_string(len) + " characters long; varchar(" +
                                       std::to_string(len - 1) + ") allows " + std::to_string(len - 1));
    }
  }
}

class UnixMicros : public ::testing::Test {
 protected:
  void SetUp() override {
    t_.name = "t";
    t_.columns.push_back(make_column("time", PgType::timestamptz, true));
    t_.columns.push_back(make_column("local", PgType::timestamp));
    t_.columns.push_back(make_column("n", PgType::int8));
    t_.time_column = 0;
    finish_table_schema(t_);
  }


  void check(int column, int64_t us) {
    RowEncoder a(t_), b(t_);
    a.set_precision(EpochPrecision::us);
    a.begin_row();
    const std::string text = std::to_string(us);
    const std::string want = put_outcome(a, a.put_number(column, text, NumberKind::integer));
    b.set_precision(EpochPrecision::ms);  // put_unix_micros does not depend on the precision
    b.begin_row();
    const std::string got = put_outcome(b, b.put_unix_micros(column, us));
    EXPECT_EQ(got, want) << "column " << column << " value " << us;
  }

  TableSchema t_;
};

TEST_F(UnixMicros, SameAsPutNumberWithPrecisionUs) {
  const int64_t values[] = {0,
                            1,
                            -1,
                            1735689600000000,                    // 2025-01-01
                            -62135596800000000,                  // 0001-01-01
                            -62135596800000001,                  // just before
                            -62135596800000000 - 86400000000,    // a day before (the encoder's slack)
                            -62135596800000000 - 86400000001,
                            253402300799999999,                  // 9999-12-31 23:59:59.999999
                            253402300800000000,                  // 10000-01-01
                            253402300800000000 + 86400000000,
                            999999999999999999,
                            1000000000000000000,
                            INT64_MAX / 2,
                            INT64_MAX / 2 + 1,
                            INT64_MIN / 2,
                            INT64_MIN / 2 - 1,
                            INT64_MAX,
                            INT64_MIN};
  for (int64_t v : values) {
    check(0, v);  // time column (timestamptz)
    check(1, v);  // timestamp, not the time column
    check(2, v);  // not a time column: the text path
  }
}

TEST_F(UnixMicros, SecondPutOfTheColumnIsRefused) {
  RowEncoder enc(t_);
  enc.begin_row();
  ASSERT_TRUE(enc.put_unix_micros(0, 5));
  EXPECT_FALSE(enc.put_unix_micros(0, 6));
  EXPECT_EQ(enc.error(), "column \"time\": given more than once");
  EXPECT_FALSE(enc.put_unix_micros(7, 6));
  EXPECT_EQ(enc.error_column(), -1);
}

// end_row writes in one pass into room it trims after: a row refused for a missing required column
// after good rows leaves the earlier tuples byte for byte and the size as it was; the next row
// appends right after them.
TEST(EndRow, RefusedRowLeavesEarlierTuplesAndSize) {
  TableSchema t;
  t.name = "t";
  t.columns.push_back(make_column("id", PgType::int8, true, true));  // omittable
  t.columns.push_back(make_column("time", PgType::timestamptz, true));
  t.columns.push_back(make_column("device", PgType::text, true));
  t.columns.push_back(make_column("value", PgType::float4));
  t.time_column = 1;
  finish_table_schema(t);
  RowEncoder enc(t);
  std::vector<char> out;
  uint64_t mask = 9;
  int64_t mn = INT64_MAX, mx = INT64_MIN;
  enc.begin_row();
  ASSERT_TRUE(enc.put_unix_micros(1, 946684800000000 + 5));  // PostgreSQL epoch + 5 µs
  ASSERT_TRUE(enc.put_string(2, "dev"));
  ASSERT_TRUE(enc.put_number(3, "1.5"));
  ASSERT_TRUE(enc.end_row(out, mask, mn, mx)) << enc.error();
  const std::string first = "0003" "00000008" + hex64(5) + "00000003" + hex_text("dev") + "00000004" "3fc00000";
  EXPECT_EQ(hex(out), first);
  EXPECT_EQ(mask, 0u);
  enc.begin_row();
  ASSERT_TRUE(enc.put_number(0, "7"));
  ASSERT_TRUE(enc.put_number(3, "2.5"));
  ASSERT_TRUE(enc.put_string(2, "a device name long enough to need more room than the tuple before"));
  EXPECT_FALSE(enc.end_row(out, mask, mn, mx));
  EXPECT_EQ(enc.error(), "missing value for required column \"time\"");
  EXPECT_TRUE(enc.error_is_missing());
  EXPECT_EQ(hex(out), first);
  EXPECT_EQ(mask, 0u);
  EXPECT_EQ(mn, 5);
  enc.begin_row();
  ASSERT_TRUE(enc.put_unix_micros(1, 946684800000000 + 6));
  ASSERT_TRUE(enc.put_string(2, "d2"));
  ASSERT_TRUE(enc.put_number(0, "7"));
  ASSERT_TRUE(enc.end_row(out, mask, mn, mx)) << enc.error();
  EXPECT_EQ(hex(out), first + "0004" "00000008" "0000000000000007" "00000008" + hex64(6) + "00000002" + hex_text("d2") +
                          "ffffffff");
  EXPECT_EQ(mask, 1u);
  EXPECT_EQ(mx, 6);
}

// The ASCII pre-check of the UTF-8 validation (8 bytes at a time, the last 8 overlapping): a NUL, a
// multi-byte character or an invalid byte at any position of strings of 0..40 bytes.
TEST(TextFastPath, NulMultibyteAndInvalidBytesAtEveryPosition) {
  TableSchema t;
  t.name = "t";
  Column c = make_column("s", PgType::varchar);
  t.columns.push_back(c);
  finish_table_schema(t);
  for (size_t len = 1; len <= 40; ++len) {
    for (size_t at = 0; at < len; ++at) {
      for (int kind = 0; kind < 4; ++kind) {
        std::string s(len, 'x');
        std::string want_error;
        size_t chars = len;
        switch (kind) {
          case 0: s[at] = '\0'; want_error = "column \"s\": text must not contain NUL (\\u0000) characters"; break;
          case 1: s[at] = '\xff'; want_error = "column \"s\": invalid UTF-8"; break;
          case 2: s.replace(at, 1, "\xc3\xa9"); break;  // e-acute: 2 bytes, 1 code point
          case 3: s[at] = '\x7f'; break;                 // DEL is plain ASCII
        }
        // varchar(chars) accepts the string, varchar(chars - 1) refuses it with the count.
        for (int limit = 0; limit < 2; ++limit) {
          t.columns[0].max_chars = static_cast<int>(chars) - limit;
          RowEncoder enc(t);
          enc.begin_row();
          const bool ok = enc.put_string(0, s);
          SCOPED_TRACE("len " + std::to_string(len) + " at " + std::to_string(at) + " kind " + std::to_string(kind));
          if (!want_error.empty()) {
            EXPECT_FALSE(ok);
            EXPECT_EQ(enc.error(), want_error);
          } else if (limit == 0) {
            EXPECT_TRUE(ok) << enc.error();
          } else {
            EXPECT_FALSE(ok);
            EXPECT_EQ(enc.error(), "column \"s\": value is " + std::to_string(chars) + " characters long; varchar(" +
                                       std::to_string(chars - 1) + ") allows " + std::to_string(chars - 1));
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace sluice::test
