// Table-driven tests of RowEncoder: exact field bytes for every type, every rejection.
#include "catalog/row_encoder.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "encoder_test_util.h"

namespace sluice::test {
namespace {

enum class Put { str, num, boolean, json, null };

struct ColSpec {
  PgType type;
  int precision = -1;  // numeric
  int scale = -1;
  int max_chars = -1;  // varchar/bpchar
  bool not_null = false;
};

struct Case {
  ColSpec col;
  Put put;
  std::string input;
  std::string expected;  // accept: hex of the field bytes ("NULL" for NULL); reject: message substring
  EpochPrecision precision = EpochPrecision::s;
};

std::string describe(const Case& c) {
  return std::string(pg_type_name(c.col.type)) + " put#" + std::to_string(static_cast<int>(c.put)) + " \"" +
         c.input + "\"";
}

TableSchema one_column_table(const ColSpec& s) {
  TableSchema t;
  t.schema = "public";
  t.name = "t";
  Column c = make_column("v", s.type, s.not_null);
  c.numeric_precision = s.precision;
  c.numeric_scale = s.scale;
  c.max_chars = s.max_chars;
  t.columns.push_back(c);
  finish_table_schema(t);
  return t;
}

bool do_put(RowEncoder& enc, Put put, const std::string& input) {
  switch (put) {
    case Put::str: return enc.put_string(0, input);
    case Put::num: return enc.put_number(0, input);
    case Put::boolean: return enc.put_bool(0, input == "true");
    case Put::json: return enc.put_json(0, input);
    case Put::null: return enc.put_null(0);
  }
  return false;
}

// Encodes one single-column row; on success returns the field bytes as hex (or "NULL").
bool encode_one(const Case& c, std::string& field_hex, std::string& error) {
  TableSchema t = one_column_table(c.col);
  RowEncoder enc(t);
  enc.set_precision(c.precision);
  enc.begin_row();
  if (!do_put(enc, c.put, c.input)) {
    error = enc.error();
    return false;
  }
  std::vector<char> out;
  uint64_t mask = 99;
  int64_t mn = INT64_MAX, mx = INT64_MIN;
  if (!enc.end_row(out, mask, mn, mx)) {
    error = enc.error();
    return false;
  }
  DecodedTuple tup;
  if (!decode_tuple(out.data(), out.size(), tup) || tup.bytes != out.size() || tup.fields.size() != 1) {
    error = "malformed tuple " + hex(out);
    return false;
  }
  field_hex = tup.fields[0] == "NULL" ? "NULL" : hex(tup.fields[0]);
  return true;
}

const ColSpec kTz{PgType::timestamptz};
const ColSpec kTs{PgType::timestamp};
const ColSpec kDate{PgType::date};
const ColSpec kF8{PgType::float8};
const ColSpec kF4{PgType::float4};
const ColSpec kI2{PgType::int2};
const ColSpec kI4{PgType::int4};
const ColSpec kI8{PgType::int8};
const ColSpec kNum{PgType::numeric};
const ColSpec kNum12_3{PgType::numeric, 12, 3};
const ColSpec kNum5_2{PgType::numeric, 5, 2};
const ColSpec kNum3_m2{PgType::numeric, 3, -2};
const ColSpec kNum10_5{PgType::numeric, 10, 5};
const ColSpec kBool{PgType::boolean};
const ColSpec kText{PgType::text};
const ColSpec kVarchar3{PgType::varchar, -1, -1, 3};
const ColSpec kBpchar2{PgType::bpchar, -1, -1, 2};
const ColSpec kUuid{PgType::uuid};
const ColSpec kJsonb{PgType::jsonb};
const ColSpec kJson{PgType::json};
const ColSpec kTextNotNull{PgType::text, -1, -1, -1, true};

constexpr int64_t kT1 = 757479845000000;  // 2024-01-02T03:04:05Z in PG epoch microseconds

const std::vector<Case>& accept_cases() {
  static const std::vector<Case> cases = {
      // timestamptz strings
      {kTz, Put::str, "2024-01-02T03:04:05Z", hex64(kT1)},
      {kTz, Put::str, "2024-01-02t03:04:05z", hex64(kT1)},
      {kTz, Put::str, "2024-01-02 03:04:05Z", hex64(kT1)},
      {kTz, Put::str, "2024-01-02T03:04:05", hex64(kT1)},  // no offset: UTC
      {kTz, Put::str, "2024-01-02T08:34:05.123456789+05:30", hex64(kT1 + 123456)},  // ns truncated
      {kTz, Put::str, "2024-01-01T19:04:05-08:00", hex64(kT1)},
      {kTz, Put::str, "2024-01-02T08:34:05+0530", hex64(kT1)},
      {kTz, Put::str, "2024-01-02T05:04:05+02", hex64(kT1)},
      {kTz, Put::str, "2024-01-02T03:04:05.5Z", hex64(kT1 + 500000)},
      {kTz, Put::str, "2024-01-02T03:04:05,25Z", hex64(kT1 + 250000)},
      {kTz, Put::str, "2024-01-02T03:04Z", hex64(kT1 - 5000000)},
      {kTz, Put::str, "2024-01-02", hex64(757468800000000)},
      {kTz, Put::str, "2024-02-29T23:59:59.999999Z", hex64(762566399999999)},
      {kTz, Put::str, "1969-12-31T23:59:59Z", hex64(-946684801000000)},
      {kTz, Put::str, "0001-01-01T00:00:00Z", hex64(-63082281600000000)},
      {kTz, Put::str, "9999-12-31T23:59:59.999999Z", hex64(252455615999999999)},
      {kTz, Put::str, "2000-02-29T00:00:00Z", hex64(59LL * 86400000000)},  // 2000 is a leap year
      // timestamptz epoch numbers
      {kTz, Put::num, "1700000000", hex64(753315200000000)},
      {kTz, Put::num, "1700000000.25", hex64(753315200250000)},
      {kTz, Put::num, "1.7e9", hex64(753315200000000)},
      {kTz, Put::num, "-1", hex64(-946684801000000)},
      {kTz, Put::num, "-0.5", hex64(-946684800500000)},
      {kTz, Put::num, "1700000000250", hex64(753315200250000), EpochPrecision::ms},
      {kTz, Put::num, "1700000000250.5", hex64(753315200250500), EpochPrecision::ms},
      {kTz, Put::num, "1700000000250000", hex64(753315200250000), EpochPrecision::us},
      {kTz, Put::num, "1700000000250000999", hex64(753315200250000), EpochPrecision::ns},
      {kTz, Put::num, "170000000025000099", hex64(-776684799975000), EpochPrecision::ns},
      {kTz, Put::num, "-1500", hex64(-946684800000002), EpochPrecision::ns},  // floor
      // timestamp without time zone: offsets convert to UTC wall time
      {kTs, Put::str, "2024-01-02T03:04:05", hex64(kT1)},
      {kTs, Put::str, "2024-01-02T08:34:05+05:30", hex64(kT1)},
      {kTs, Put::num, "1700000000", hex64(753315200000000)},
      // date
      {kDate, Put::str, "2024-03-01", "0000227a"},
      {kDate, Put::str, "1999-12-31", "ffffffff"},
      {kDate, Put::str, "2000-01-01", "00000000"},
      // float8
      {kF8, Put::num, "1.5", "3ff8000000000000"},
      {kF8, Put::num, "-0", "8000000000000000"},
      {kF8, Put::num, "42", "4045000000000000"},
      {kF8, Put::num, "1e308", "7fe1ccf385ebc8a0"},
      {kF8, Put::str, "NaN", "7ff8000000000000"},
      {kF8, Put::str, "nan", "7ff8000000000000"},
      {kF8, Put::str, "Infinity", "7ff0000000000000"},
      {kF8, Put::str, "-Infinity", "fff0000000000000"},
      // float4
      {kF4, Put::num, "1.5", "3fc00000"},
      {kF4, Put::num, "3.4e38", "7f7fc99e"},
      {kF4, Put::num, "1e-45", "00000001"},
      {kF4, Put::str, "Infinity", "7f800000"},
      // integers
      {kI2, Put::num, "32767", "7fff"},
      {kI2, Put::num, "-32768", "8000"},
      {kI2, Put::num, "3.0", "0003"},
      {kI2, Put::num, "1e3", "03e8"},
      {kI2, Put::num, "-0", "0000"},
      {kI4, Put::num, "2147483647", "7fffffff"},
      {kI4, Put::num, "-2147483648", "80000000"},
      {kI4, Put::num, "0.0001e4", "00000001"},
      {kI8, Put::num, "9223372036854775807", "7fffffffffffffff"},
      {kI8, Put::num, "-9223372036854775808", "8000000000000000"},
      {kI8, Put::num, "123456789012345678", "01b69b4ba630f34e"},
      {kI8, Put::num, "1.5e1", "000000000000000f"},
      {kI8, Put::num, "00042", "000000000000002a"},
      // numeric (expected bytes from Python's decimal module)
      {kNum, Put::num, "0", "0000000000000000"},
      {kNum, Put::num, "123.45", "0002000000000002007b1194"},
      {kNum, Put::num, "-0.0001", "0001ffff400000040001"},
      {kNum, Put::num, "12345678", "000200010000000004d2162e"},
      {kNum, Put::num, "1e20", "00010005000000000001"},
      {kNum, Put::num, "1.50", "000200000000000200011388"},
      {kNum, Put::num, "-0.000", "0000000000000003"},
      {kNum, Put::num, "3.14159265358979323846", "00060000000000140003058724310e051efc0f06"},
      {kNum, Put::num, "0.00001234", "0001fffe0000000804d2"},
      {kNum, Put::str, "NaN", "00000000c0000000"},
      {kNum12_3, Put::num, "1.23456", "00020000000000030001092e"},
      {kNum12_3, Put::num, "-1.2345", "00020000400000030001092e"},  // half away from zero
      {kNum12_3, Put::num, "123456789.9995", "0003000200000003000109291a86"},
      {kNum12_3, Put::num, "1234.5678e-2", "0002000000000003000c0d84"},
      {kNum5_2, Put::num, "0.001", "0000000000000002"},
      {kNum5_2, Put::num, "0.005", "0001ffff000000020064"},
      {kNum5_2, Put::num, "999.994", "000200000000000203e726ac"},
      {kNum3_m2, Put::num, "12345", "0002000100000000000108fc"},
      {kNum10_5, Put::num, "99999.99995", "00040001000000050009270f270f1388"},
      // bool
      {kBool, Put::boolean, "true", "01"},
      {kBool, Put::boolean, "false", "00"},
      {kBool, Put::str, "TRUE", "01"},
      {kBool, Put::str, "False", "00"},
      // text
      {kText, Put::str, "h\xc3\xa9llo", hex_text("h\xc3\xa9llo")},
      {kText, Put::str, "", ""},
      {kText, Put::num, "1.50", hex_text("1.50")},
      {kText, Put::boolean, "true", hex_text("true")},
      {kText, Put::json, "{\"a\":1}", hex_text("{\"a\":1}")},
      {kText, Put::str, "\xf0\x9f\x98\x80 emoji and a long ascii tail", hex_text("\xf0\x9f\x98\x80 emoji and a long ascii tail")},
      {kVarchar3, Put::str, "abc", hex_text("abc")},
      {kVarchar3, Put::str, "\xc3\xa4\xc3\xb6\xc3\xbc", hex_text("\xc3\xa4\xc3\xb6\xc3\xbc")},  // 3 code points
      {kVarchar3, Put::str, "abc  ", hex_text("abc  ")},  // excess spaces: PostgreSQL cuts them
      {kBpchar2, Put::str, "ab", hex_text("ab")},
      {kBpchar2, Put::str, "a", hex_text("a")},
      // uuid
      {kUuid, Put::str, "123e4567-e89b-12d3-a456-426614174000", "123e4567e89b12d3a456426614174000"},
      {kUuid, Put::str, "123E4567-E89B-12D3-A456-426614174000", "123e4567e89b12d3a456426614174000"},
      {kUuid, Put::str, "{123e4567-e89b-12d3-a456-426614174000}", "123e4567e89b12d3a456426614174000"},
      {kUuid, Put::str, "123e4567e89b12d3a456426614174000", "123e4567e89b12d3a456426614174000"},
      // jsonb / json
      {kJsonb, Put::str, "a\"b\\c", "01" + hex_text("\"a\\\"b\\\\c\"")},
      {kJsonb, Put::str, "line\n\t\x01", "01" + hex_text("\"line\\n\\t\\u0001\"")},
      {kJsonb, Put::str, "\xc3\xa9", "01" + hex_text("\"\xc3\xa9\"")},
      {kJsonb, Put::num, "1.5e3", "01" + hex_text("1.5e3")},
      {kJsonb, Put::boolean, "true", "01" + hex_text("true")},
      {kJsonb, Put::json, "{\"a\":[1,2,{\"b\":null}]}", "01" + hex_text("{\"a\":[1,2,{\"b\":null}]}")},
      {kJsonb, Put::json, "[\"\\\\u0000\"]", "01" + hex_text("[\"\\\\u0000\"]")},  // escaped backslash, not NUL
      {kJson, Put::json, "[1, 2]", hex_text("[1, 2]")},
      {kJson, Put::str, std::string("a\0b", 3), hex_text("\"a\\u0000b\"")},
      {kJson, Put::num, "-0.5", hex_text("-0.5")},
      {kJson, Put::boolean, "false", hex_text("false")},
      // null
      {kText, Put::null, "", "NULL"},
      {kI4, Put::null, "", "NULL"},
  };
  return cases;
}

struct RejectCase {
  ColSpec col;
  Put put;
  std::string input;
  std::string message;  // substring of the error
  EpochPrecision precision = EpochPrecision::s;
};

const std::vector<RejectCase>& reject_cases() {
  static const std::vector<RejectCase> cases = {
      {kTz, Put::str, "2024-13-01T00:00:00Z", "column \"v\": invalid timestamp \"2024-13-01T00:00:00Z\" (month out of range)"},
      {kTz, Put::str, "2024-00-01T00:00:00Z", "month out of range"},
      {kTz, Put::str, "2023-02-29T00:00:00Z", "day out of range for month"},
      {kTz, Put::str, "2024-04-31T00:00:00Z", "day out of range for month"},
      {kTz, Put::str, "1900-02-29T00:00:00Z", "day out of range for month"},
      {kTz, Put::str, "2024-01-02T24:00:00Z", "hour out of range"},
      {kTz, Put::str, "2024-01-02T23:60:00Z", "minute out of range"},
      {kTz, Put::str, "2024-01-02T23:59:60Z", "second out of range"},
      {kTz, Put::str, "2024-01-02T03:04:05+24:00", "UTC offset out of range"},
      {kTz, Put::str, "2024-01-02T03:04:05+05:60", "UTC offset out of range"},
      {kTz, Put::str, "0000-01-01T00:00:00Z", "year out of range"},
      {kTz, Put::str, "2024-01-02T03:04:05.Z", "invalid timestamp"},
      {kTz, Put::str, "2024-01-02T03:04:05Zjunk", "invalid timestamp"},
      {kTz, Put::str, "2024-01-02T03:04:05+5", "invalid timestamp"},
      {kTz, Put::str, "2024-01-02X03:04:05Z", "invalid timestamp"},
      {kTz, Put::str, "24-01-02", "invalid timestamp"},
      {kTz, Put::str, "", "invalid timestamp"},
      {kTz, Put::str, "1700000000", "invalid timestamp"},
      {kTz, Put::num, "1e30", "column \"v\": timestamp out of range"},
      {kTz, Put::num, "99999999999999", "timestamp out of range"},
      {kTz, Put::num, "9999999999999999999999", "timestamp out of range", EpochPrecision::ns},
      {kTz, Put::num, "12abc", "invalid number"},
      {kTz, Put::boolean, "true", "column \"v\": expected a timestamp (RFC 3339 string or epoch number), got a boolean"},
      {kTz, Put::json, "{}", "got a JSON object or array"},
      {kDate, Put::str, "2024-02-30", "column \"v\": invalid date \"2024-02-30\" (day out of range for month)"},
      {kDate, Put::str, "2024-01-02T00:00:00Z", "invalid date"},
      {kDate, Put::str, "2024-1-2", "invalid date"},
      {kDate, Put::num, "8826", "column \"v\": expected a date string (YYYY-MM-DD), got a number"},
      {kF8, Put::num, "1e400", "column \"v\": value 1e400 is out of range for double precision"},
      {kF8, Put::num, "1e-400", "out of range for double precision"},
      {kF8, Put::num, "abc", "invalid number \"abc\""},
      {kF8, Put::num, "inf", "invalid number"},
      {kF8, Put::num, "1.5x", "invalid number"},
      {kF8, Put::str, "1.5", "column \"v\": expected a number, got a string"},
      {kF8, Put::boolean, "true", "column \"v\": expected a number, got a boolean"},
      {kF8, Put::json, "[1]", "expected a number, got a JSON object or array"},
      {kF4, Put::num, "4e38", "value 4e38 is out of range for real"},
      {kF4, Put::num, "1e-46", "out of range for real"},
      {kI2, Put::num, "32768", "column \"v\": value 32768 is out of range for smallint"},
      {kI2, Put::num, "-32769", "out of range for smallint"},
      {kI2, Put::num, "3.5", "column \"v\": value 3.5 is not an integer"},
      {kI2, Put::num, "1e-1", "is not an integer"},
      {kI2, Put::str, "5", "column \"v\": expected a number, got a string"},
      {kI4, Put::num, "2147483648", "out of range for integer"},
      {kI4, Put::num, "1e10", "out of range for integer"},
      {kI8, Put::num, "9223372036854775808", "out of range for bigint"},
      {kI8, Put::num, "-9223372036854775809", "out of range for bigint"},
      {kI8, Put::num, "1e19", "out of range for bigint"},
      {kI8, Put::num, "1e999999999999", "out of range for bigint"},
      {kI8, Put::num, "", "invalid number"},
      {kI8, Put::num, "-", "invalid number"},
      {kI8, Put::num, "1e", "invalid number"},
      {kI8, Put::boolean, "false", "got a boolean"},
      {kNum12_3, Put::num, "12345678901.5", "value 12345678901.5 does not fit numeric(12,3) of column \"v\""},
      {kNum12_3, Put::num, "999999999.9995", "does not fit numeric(12,3)"},  // rounds up to 10 digits
      {kNum5_2, Put::num, "999.995", "does not fit numeric(5,2)"},
      {kNum5_2, Put::str, "NaN", "NaN is not allowed"},
      {kNum3_m2, Put::num, "123456", "does not fit numeric(3,-2)"},
      {kNum, Put::str, "1.5", "column \"v\": expected a number, got a string"},
      {kNum, Put::num, "1.2.3", "invalid number"},
      {kNum, Put::num, "1e-20000", "too many fractional digits"},
      {kNum, Put::num, "1e200000", "out of range for numeric"},
      {kBool, Put::str, "t", "column \"v\": expected true or false, got the string \"t\""},
      {kBool, Put::str, "yes", "expected true or false"},
      {kBool, Put::num, "1", "column \"v\": expected true or false, got a number"},
      {kText, Put::str, std::string("a\0b", 3), "column \"v\": text must not contain NUL"},
      {kText, Put::str, "\xff", "column \"v\": invalid UTF-8"},
      {kText, Put::str, "\xc3", "invalid UTF-8"},
      {kText, Put::str, "\xed\xa0\x80", "invalid UTF-8"},  // surrogate
      {kText, Put::str, "\xc0\xaf", "invalid UTF-8"},      // overlong
      {kText, Put::num, "1.5x", "invalid number"},
      {kVarchar3, Put::str, "abcd", "column \"v\": value is 4 characters long; varchar(3) allows 3"},
      {kVarchar3, Put::str, "ab cd", "varchar(3) allows 3"},
      {kVarchar3, Put::boolean, "true", "value is 4 characters long; varchar(3) allows 3"},
      {kBpchar2, Put::str, "abc", "column \"v\": value is 3 characters long; char(2) allows 2"},
      {kUuid, Put::str, "123e4567-e89b-12d3-a456-42661417400", "column \"v\": invalid UUID"},
      {kUuid, Put::str, "123e4567e89b-12d3-a456-426614174000", "invalid UUID"},
      {kUuid, Put::str, "g23e4567-e89b-12d3-a456-426614174000", "invalid UUID"},
      {kUuid, Put::str, "{123e4567-e89b-12d3-a456-426614174000", "invalid UUID"},
      {kUuid, Put::num, "5", "column \"v\": expected a UUID string, got a number"},
      {kJsonb, Put::str, std::string("a\0b", 3), "jsonb cannot store NUL"},
      {kJsonb, Put::json, "[\"a\\u0000\"]", "jsonb cannot store NUL"},
      {kJsonb, Put::num, "+5", "invalid JSON number"},
      {kJsonb, Put::num, "01", "invalid JSON number"},
      {kJsonb, Put::num, ".5", "invalid JSON number"},
      {kTextNotNull, Put::null, "", "column \"v\": null is not allowed"},
  };
  return cases;
}

TEST(RowEncoderValues, MustAccept) {
  for (const Case& c : accept_cases()) {
    std::string got, error;
    ASSERT_TRUE(encode_one(c, got, error)) << describe(c) << ": " << error;
    EXPECT_EQ(got, c.expected) << describe(c);
  }
}

TEST(RowEncoderValues, MustReject) {
  for (const RejectCase& r : reject_cases()) {
    Case c{r.col, r.put, r.input, "", r.precision};
    std::string got, error;
    ASSERT_FALSE(encode_one(c, got, error)) << describe(c) << " was accepted as " << got;
    EXPECT_NE(error.find(r.message), std::string::npos) << describe(c) << ": got \"" << error << "\"";
  }
}

TEST(RowEncoderValues, ErrorColumnIsSet) {
  Case c{kI2, Put::num, "99999", ""};
  TableSchema t = one_column_table(c.col);
  RowEncoder enc(t);
  enc.begin_row();
  EXPECT_FALSE(enc.put_number(0, "99999"));
  EXPECT_EQ(enc.error_column(), 0);
  enc.begin_row();
  EXPECT_TRUE(enc.error().empty());
  EXPECT_EQ(enc.error_column(), -1);
  EXPECT_FALSE(enc.put_number(7, "1"));
  EXPECT_EQ(enc.error_column(), -1);
  EXPECT_EQ(enc.error(), "column index 7 out of range");
}

TEST(EpochPrecision, Parse) {
  EpochPrecision p = EpochPrecision::s;
  EXPECT_TRUE(parse_epoch_precision("ms", p));
  EXPECT_EQ(p, EpochPrecision::ms);
  EXPECT_TRUE(parse_epoch_precision("us", p));
  EXPECT_EQ(p, EpochPrecision::us);
  EXPECT_TRUE(parse_epoch_precision("ns", p));
  EXPECT_EQ(p, EpochPrecision::ns);
  EXPECT_TRUE(parse_epoch_precision("s", p));
  EXPECT_EQ(p, EpochPrecision::s);
  EXPECT_FALSE(parse_epoch_precision("h", p));
  EXPECT_FALSE(parse_epoch_precision("", p));
  EXPECT_EQ(p, EpochPrecision::s);
}

// ---- whole rows: column order, omittable columns, NULLs, required columns, time range ----

class RowTest : public ::testing::Test {
 protected:
  void SetUp() override {
    t_.schema = "public";
    t_.name = "readings";
    t_.columns.push_back(make_column("id", PgType::int8, true, true));          // bigserial
    t_.columns.push_back(make_column("time", PgType::timestamptz, true));
    t_.columns.push_back(make_column("device", PgType::text, true));
    t_.columns.push_back(make_column("value", PgType::float8));
    t_.columns.push_back(make_column("note", PgType::text, false, true));       // DEFAULT ''
    t_.time_column = 1;
    finish_table_schema(t_);
  }
  TableSchema t_;
};

TEST_F(RowTest, SchemaBits) {
  EXPECT_EQ(t_.columns[0].omit_bit, 0);
  EXPECT_EQ(t_.columns[1].omit_bit, -1);
  EXPECT_EQ(t_.columns[4].omit_bit, 1);
  EXPECT_EQ(t_.all_omittable, 3u);
  EXPECT_EQ(t_.find("device"), 2);
  EXPECT_EQ(t_.find("nope"), -1);
}

TEST_F(RowTest, OmittedDefaultsAreLeftOutOfTheTuple) {
  RowEncoder enc(t_);
  std::vector<char> out;
  uint64_t mask = 77;
  int64_t mn = INT64_MAX, mx = INT64_MIN;
  enc.begin_row();
  ASSERT_TRUE(enc.put_string(2, "d1"));  // order of puts does not matter
  ASSERT_TRUE(enc.put_number(3, "1.5"));
  ASSERT_TRUE(enc.put_string(1, "2024-01-02T03:04:05Z"));
  ASSERT_TRUE(enc.end_row(out, mask, mn, mx)) << enc.error();
  EXPECT_EQ(mask, 0u);
  EXPECT_EQ(hex(out), "0003" "00000008" + hex64(kT1) + "00000002" + hex_text("d1") + "00000008" "3ff8000000000000");
  EXPECT_EQ(mn, kT1);
  EXPECT_EQ(mx, kT1);
}

TEST_F(RowTest, PresentDefaultsSetTheirMaskBits) {
  RowEncoder enc(t_);
  std::vector<char> out;
  uint64_t mask = 0;
  int64_t mn = INT64_MAX, mx = INT64_MIN;
  enc.begin_row();
  ASSERT_TRUE(enc.put_number(0, "7"));
  ASSERT_TRUE(enc.put_string(1, "2024-01-02T03:04:05Z"));
  ASSERT_TRUE(enc.put_string(2, "d"));
  ASSERT_TRUE(enc.put_null(4));  // explicit null for a defaulted column: sent as NULL
  ASSERT_TRUE(enc.end_row(out, mask, mn, mx)) << enc.error();
  EXPECT_EQ(mask, 3u);
  EXPECT_EQ(hex(out), "0005" "00000008" "0000000000000007" "00000008" + hex64(kT1) + "00000001" + hex_text("d") +
                          "ffffffff" "ffffffff");
  EXPECT_EQ(t_.copy_column_list(mask), "(\"id\",\"time\",\"device\",\"value\",\"note\")");

  enc.begin_row();
  ASSERT_TRUE(enc.put_string(1, "2024-01-02T03:04:06Z"));
  ASSERT_TRUE(enc.put_string(2, "e"));
  ASSERT_TRUE(enc.put_string(4, "n"));
  ASSERT_TRUE(enc.end_row(out, mask, mn, mx)) << enc.error();
  EXPECT_EQ(mask, 2u);
  EXPECT_EQ(t_.copy_column_list(mask), "(\"time\",\"device\",\"value\",\"note\")");
  EXPECT_EQ(mn, kT1);
  EXPECT_EQ(mx, kT1 + 1000000);
  auto rows = decode_all(out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1].fields.size(), 4u);
  EXPECT_EQ(rows[1].fields[3], "n");
}

TEST_F(RowTest, MissingRequiredColumn) {
  RowEncoder enc(t_);
  std::vector<char> out;
  uint64_t mask = 0;
  int64_t mn = INT64_MAX, mx = INT64_MIN;
  enc.begin_row();
  ASSERT_TRUE(enc.put_string(1, "2024-01-02T03:04:05Z"));
  EXPECT_FALSE(enc.end_row(out, mask, mn, mx));
  EXPECT_EQ(enc.error(), "missing value for required column \"device\"");
  EXPECT_EQ(enc.error_column(), 2);
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(mn, INT64_MAX);  // failed rows leave the time range alone
}

TEST_F(RowTest, DuplicateColumnIsAnError) {
  RowEncoder enc(t_);
  enc.begin_row();
  ASSERT_TRUE(enc.put_string(2, "a"));
  EXPECT_FALSE(enc.put_string(2, "b"));
  EXPECT_EQ(enc.error(), "column \"device\": given more than once");
  EXPECT_EQ(enc.error_column(), 2);
}

TEST_F(RowTest, NoTimeValueLeavesRangeUntouched) {
  // time is NOT NULL here, so use a table whose time column is nullable.
  TableSchema t;
  t.columns.push_back(make_column("ts", PgType::timestamptz));
  t.columns.push_back(make_column("v", PgType::int4));
  t.time_column = 0;
  finish_table_schema(t);
  RowEncoder enc(t);
  std::vector<char> out;
  uint64_t mask = 0;
  int64_t mn = 5, mx = 6;
  enc.begin_row();
  ASSERT_TRUE(enc.put_number(1, "1"));
  ASSERT_TRUE(enc.end_row(out, mask, mn, mx));
  EXPECT_EQ(mn, 5);
  EXPECT_EQ(mx, 6);
  EXPECT_EQ(hex(out), "0002" "ffffffff" "00000004" "00000001");
}

TEST_F(RowTest, DateTimeColumnRangeInMicros) {
  TableSchema t;
  t.columns.push_back(make_column("day", PgType::date, true));
  t.time_column = 0;
  finish_table_schema(t);
  RowEncoder enc(t);
  std::vector<char> out;
  uint64_t mask = 0;
  int64_t mn = INT64_MAX, mx = INT64_MIN;
  enc.begin_row();
  ASSERT_TRUE(enc.put_string(0, "2000-01-03"));
  ASSERT_TRUE(enc.end_row(out, mask, mn, mx));
  EXPECT_EQ(mn, 2 * 86400000000LL);
  EXPECT_EQ(mx, 2 * 86400000000LL);
}

TEST_F(RowTest, FailedRowLeavesNothingAndNextRowIsClean) {
  RowEncoder enc(t_);
  std::vector<char> out;
  uint64_t mask = 0;
  int64_t mn = INT64_MAX, mx = INT64_MIN;
  enc.begin_row();
  ASSERT_TRUE(enc.put_string(1, "2024-01-02T03:04:05Z"));
  ASSERT_TRUE(enc.put_string(2, "a long device name that takes scratch space"));
  EXPECT_FALSE(enc.put_number(3, "x"));
  enc.begin_row();
  ASSERT_TRUE(enc.put_string(1, "2024-01-02T03:04:05Z"));
  ASSERT_TRUE(enc.put_string(2, "b"));
  ASSERT_TRUE(enc.end_row(out, mask, mn, mx)) << enc.error();
  EXPECT_EQ(hex(out), "0003" "00000008" + hex64(kT1) + "00000001" + hex_text("b") + "ffffffff");
}

TEST(TableSchema, CopyColumnListQuotes) {
  TableSchema t;
  t.columns.push_back(make_column("time", PgType::timestamptz));
  t.columns.push_back(make_column("we\"ird", PgType::text, false, true));
  t.columns.push_back(make_column("device_id", PgType::text));
  t.columns.push_back(make_column("x", PgType::int4, false, true));
  finish_table_schema(t);
  EXPECT_EQ(t.copy_column_list(0), "(\"time\",\"device_id\")");
  EXPECT_EQ(t.copy_column_list(1), "(\"time\",\"we\"\"ird\",\"device_id\")");
  EXPECT_EQ(t.copy_column_list(2), "(\"time\",\"device_id\",\"x\")");
  EXPECT_EQ(t.copy_column_list(t.all_omittable), "(\"time\",\"we\"\"ird\",\"device_id\",\"x\")");
}

TEST(TableSchema, TypeNames) {
  EXPECT_STREQ(pg_type_name(PgType::timestamptz), "timestamptz");
  EXPECT_STREQ(pg_type_name(PgType::float8), "float8");
  EXPECT_STREQ(pg_type_name(PgType::bpchar), "bpchar");
  EXPECT_STREQ(pg_type_name(PgType::json), "json");
}

TEST(TableSchema, MoreThan64DefaultsThrows) {
  TableSchema t;
  for (int i = 0; i < 65; ++i) t.columns.push_back(make_column("c" + std::to_string(i), PgType::int4, false, true));
  EXPECT_THROW(finish_table_schema(t), std::runtime_error);
  t.columns.pop_back();
  EXPECT_NO_THROW(finish_table_schema(t));
  EXPECT_EQ(t.all_omittable, ~uint64_t{0});
  EXPECT_EQ(t.columns[63].omit_bit, 63);
}

TEST(Catalog, CopiesReindex) {
  Catalog copy;
  {
    Catalog c;
    c.tables.resize(1);
    c.tables[0].config_name = "flux.m";
    c.tables[0].columns.push_back(make_column("a_rather_long_column_name_beyond_sso", PgType::int4));
    c.tables[0].columns.push_back(make_column("b", PgType::int4));
    finish_table_schema(c.tables[0]);
    copy = c;
  }
  const TableSchema* t = copy.find("flux.m");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->find("a_rather_long_column_name_beyond_sso"), 0);
  EXPECT_EQ(t->find("b"), 1);
  EXPECT_EQ(copy.find("m"), nullptr);
}

}  // namespace
}  // namespace sluice::test
