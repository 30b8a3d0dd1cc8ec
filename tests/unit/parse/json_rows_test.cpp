// Table-driven tests of JsonRowParser: must-parse bodies (accepted/rejected counts, row errors,
// decoded block bytes) and must-reject bodies (syntax errors with their offsets).
#include "ingest/parse/json_rows.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "encoder_test_util.h"

namespace sluice::test {
namespace {

constexpr int64_t kT1 = 757479845000000;  // 2024-01-02T03:04:05Z, PostgreSQL epoch microseconds

// id bigserial, time timestamptz NOT NULL, device text NOT NULL, value float8, meta jsonb,
// note text DEFAULT.
const TableSchema& readings() {
  static const TableSchema t = [] {
    TableSchema s;
    s.schema = "public";
    s.name = "readings";
    s.config_name = "readings";
    s.columns.push_back(make_column("id", PgType::int8, true, true));
    s.columns.push_back(make_column("time", PgType::timestamptz, true));
    s.columns.push_back(make_column("device", PgType::text, true));
    s.columns.push_back(make_column("value", PgType::float8));
    s.columns.push_back(make_column("meta", PgType::jsonb));
    s.columns.push_back(make_column("note", PgType::text, false, true));
    s.time_column = 1;
    finish_table_schema(s);
    return s;  // moved: by_name keeps pointing into the same column buffer
  }();
  return t;
}

JsonParseResult run_parse(const std::string& text, JsonShape shape, size_t max_rows = 1000,
                          size_t max_errors = 100) {
  static RowEncoder enc(readings());
  JsonRowParser parser(max_errors);
  std::string body = text;
  reserve_json_padding(body);
  JsonParseResult r;
  parser.parse(body, body.capacity(), shape, enc, 7, max_rows, r);
  return r;
}

struct ExpectedError {
  uint32_t row;
  std::string column;
  std::string message;  // exact
};

struct ParseCase {
  std::string name;
  JsonShape shape;
  std::string body;
  uint32_t accepted;
  uint32_t rejected;
  std::vector<ExpectedError> errors;
  size_t max_rows = 1000;
};

const std::string kRow = R"({"time":"2024-01-02T03:04:05Z","device":"d1","value":1.5})";
const std::string kRow2 = R"({"time":"2024-01-02T03:04:06Z","device":"d2","value":2})";

const std::vector<ParseCase>& parse_cases() {
  static const std::vector<ParseCase> cases = {
      {"single object", JsonShape::automatic, kRow, 1, 0, {}},
      {"array", JsonShape::automatic, "[" + kRow + "," + kRow2 + "," + kRow + "]", 3, 0, {}},
      {"empty array", JsonShape::automatic, "[]", 0, 0, {}},
      {"whitespace around", JsonShape::automatic, " \r\n\t[ " + kRow + " ,\n " + kRow2 + " ]\n ", 2, 0, {}},
      {"ndjson crlf blank lines", JsonShape::ndjson, kRow + "\r\n\r\n" + kRow2 + "\n\n  \t \n" + kRow + "\r\n", 3, 0, {}},
      {"ndjson without final newline", JsonShape::ndjson, kRow + "\n" + kRow2, 2, 0, {}},
      {"ndjson empty", JsonShape::ndjson, "", 0, 0, {}},
      {"ndjson only blank lines", JsonShape::ndjson, "\n\r\n  \n", 0, 0, {}},
      {"unicode escapes", JsonShape::automatic,
       R"({"time":"2024-01-02T03:04:05Z","device":"caf\u00e9 \ud83d\ude00 \"q\" \\ \/"})", 1, 0, {}},
      {"escaped key", JsonShape::automatic, R"({"tim\u0065":"2024-01-02T03:04:05Z","device":"d"})", 1, 0, {}},
      {"nested jsonb", JsonShape::automatic,
       R"({"time":"2024-01-02T03:04:05Z","device":"d","meta":{"a":[1,{"b":null}],"c":"\u00e9"}})", 1, 0, {}},
      {"explicit nulls", JsonShape::automatic, R"({"time":"2024-01-02T03:04:05Z","device":"d","value":null,"meta":null})",
       1, 0, {}},
      {"unknown column", JsonShape::automatic, R"([{"time":"2024-01-02T03:04:05Z","device":"d","bogus":1}])", 0, 1,
       {{0, "bogus", "unknown column \"bogus\""}}},
      {"unknown column reported once per row", JsonShape::automatic,
       R"([{"bogus":1,"other":2,"value":"x"}])", 0, 1, {{0, "bogus", "unknown column \"bogus\""}}},
      {"wrong type", JsonShape::automatic, R"({"time":"2024-01-02T03:04:05Z","device":"d","value":"abc"})", 0, 1,
       {{0, "value", "column \"value\": expected a number, got a string (only \"NaN\", \"Infinity\" and "
                     "\"-Infinity\" are accepted as strings)"}}},
      {"bool into float", JsonShape::automatic, R"({"time":"2024-01-02T03:04:05Z","device":"d","value":true})", 0, 1,
       {{0, "value", "column \"value\": expected a number, got a boolean"}}},
      {"object into text", JsonShape::ndjson, R"({"time":"2024-01-02T03:04:05Z","device":{"x":1}})", 1, 0, {}},
      {"object into float", JsonShape::ndjson, R"({"time":"2024-01-02T03:04:05Z","device":"d","value":[1]})", 0, 1,
       {{0, "value", "column \"value\": expected a number, got a JSON object or array"}}},
      {"missing required", JsonShape::automatic, R"([{"time":"2024-01-02T03:04:05Z"}])", 0, 1,
       {{0, "device", "missing value for required column \"device\""}}},
      {"null into not null", JsonShape::automatic, R"([{"time":"2024-01-02T03:04:05Z","device":null}])", 0, 1,
       {{0, "device", "column \"device\": null is not allowed (NOT NULL)"}}},
      {"duplicate key", JsonShape::automatic,
       R"([{"time":"2024-01-02T03:04:05Z","device":"a","device":"b"}])", 0, 1,
       {{0, "device", "column \"device\": given more than once"}}},
      {"mixed good and bad", JsonShape::automatic,
       "[" + kRow + R"(,{"time":"2024-13-02T03:04:05Z","device":"x"},)" + kRow2 + R"(,{"device":"y","zz":1})" + "]",
       2, 2,
       {{1, "time", "column \"time\": invalid timestamp \"2024-13-02T03:04:05Z\" (month out of range)"},
        {3, "zz", "unknown column \"zz\""}}},
      {"non-object elements", JsonShape::automatic, "[" + kRow + R"(,5,"x",[1,{"a":2}],null,true])", 1, 5,
       {{1, "", "row is not a JSON object"},
        {2, "", "row is not a JSON object"},
        {3, "", "row is not a JSON object"},
        {4, "", "row is not a JSON object"},
        {5, "", "row is not a JSON object"}}},
      {"ndjson non-object line", JsonShape::ndjson, kRow + "\n[1,2]\n\n\"s\"\n" + kRow2, 2, 2,
       {{1, "", "row is not a JSON object"}, {2, "", "row is not a JSON object"}}},
      {"max rows", JsonShape::automatic, "[" + kRow + "," + kRow2 + "," + kRow + "," + kRow2 + "]", 2, 2,
       {{2, "", "too many rows in one request (limit 2)"}, {3, "", "too many rows in one request (limit 2)"}}, 2},
      {"max rows ndjson", JsonShape::ndjson, kRow + "\n" + kRow2 + "\n" + kRow + "\n", 1, 2,
       {{1, "", "too many rows in one request (limit 1)"}, {2, "", "too many rows in one request (limit 1)"}}, 1},
      {"max rows zero", JsonShape::automatic, kRow, 0, 1, {{0, "", "too many rows in one request (limit 0)"}}, 0},
  };
  return cases;
}

TEST(JsonRows, MustParse) {
  for (const ParseCase& c : parse_cases()) {
    SCOPED_TRACE(c.name);
    JsonParseResult r = run_parse(c.body, c.shape, c.max_rows);
    ASSERT_TRUE(r.syntax_ok) << r.syntax_error << " at " << r.error_offset;
    EXPECT_EQ(r.rows_accepted, c.accepted);
    EXPECT_EQ(r.rows_rejected, c.rejected);
    ASSERT_EQ(r.errors.size(), c.errors.size());
    for (size_t i = 0; i < c.errors.size(); ++i) {
      EXPECT_EQ(r.errors[i].row, c.errors[i].row) << i;
      EXPECT_EQ(r.errors[i].column, c.errors[i].column) << i;
      EXPECT_EQ(r.errors[i].message, c.errors[i].message) << i;
    }
    uint32_t rows_in_blocks = 0;
    for (const auto& b : r.blocks) {
      EXPECT_EQ(b->table_id, 7u);
      EXPECT_GT(b->rows, 0u);
      rows_in_blocks += b->rows;
      EXPECT_EQ(decode_all(b->data).size(), b->rows);
    }
    EXPECT_EQ(rows_in_blocks, c.accepted);
  }
}

struct SyntaxCase {
  std::string name;
  JsonShape shape;
  std::string body;
  size_t offset;
};

const std::vector<SyntaxCase>& syntax_cases() {
  static const std::vector<SyntaxCase> cases = {
      {"truncated array", JsonShape::automatic, R"([{"time":"2024-01-02T03:04:05Z","device":"a"},{"device":)", 56},
      {"truncated object", JsonShape::automatic, R"({"device":"a")", 13},
      {"truncated string", JsonShape::automatic, R"({"device":"a)", 12},
      {"trailing comma", JsonShape::automatic, R"({"device":"a",})", 14},
      {"missing comma", JsonShape::automatic, R"({"device":"a" "value":1})", 14},
      {"trailing garbage", JsonShape::automatic, R"([{"device":"a"}] junk)", 17},
      {"two documents", JsonShape::automatic, R"({"device":"a"} {"device":"b"})", 15},
      {"bad number", JsonShape::automatic, R"({"value":1.5x})", 12},
      {"leading zero", JsonShape::automatic, R"({"value":01})", 10},
      {"bad literal", JsonShape::automatic, R"({"value":tru})", 12},
      {"bad null", JsonShape::automatic, R"({"value":nul})", 12},
      {"bad escape", JsonShape::automatic, R"({"device":"a\qb"})", 13},
      {"invalid utf8", JsonShape::automatic, "{\"device\":\"\xff\"}", 11},
      {"control char in string", JsonShape::automatic, "{\"device\":\"a\x01\"}", 12},
      {"bad nested value", JsonShape::automatic, R"({"meta":{"a":[1,{"b":tru}]}})", 24},
      {"bad nested structure", JsonShape::automatic, R"({"meta":{"a":[1,2}},"device":"x"})", 17},
      {"lone surrogate in nested value", JsonShape::automatic, R"({"meta":["\udc00"]})", 10},
      {"error inside a rejected row", JsonShape::automatic, R"([{"bogus":1,"value":tru}])", 23},
      {"error after max rows", JsonShape::automatic, R"([{"device":"a"},{"device":"b","value":1.}])", 40},
      {"error in non-object element", JsonShape::automatic, R"([5,[1,}])", 6},
      {"empty body", JsonShape::automatic, "", 0},
      {"whitespace body", JsonShape::automatic, "  \n", 3},
      {"scalar root", JsonShape::automatic, "5", 0},
      {"string root", JsonShape::automatic, "\"x\"", 0},
      {"ndjson bad second line", JsonShape::ndjson, "{\"device\":\"a\"}\n{\"device\":", 25},
      {"ndjson two objects on a line", JsonShape::ndjson, "{\"device\":\"a\"}\r\n{\"device\":\"a\"} {\"x\":1}\n", 31},
      {"ndjson array spanning lines", JsonShape::ndjson, "[{\"device\":\"a\"},\n{\"device\":\"b\"}]", 16},
      {"ndjson bad scalar line", JsonShape::ndjson, "{\"device\":\"a\"}\nnope\n", 16},
  };
  return cases;
}

TEST(JsonRows, MustRejectSyntax) {
  for (const SyntaxCase& c : syntax_cases()) {
    SCOPED_TRACE(c.name);
    JsonParseResult r = run_parse(c.body, c.shape, 1);
    EXPECT_FALSE(r.syntax_ok);
    EXPECT_FALSE(r.syntax_error.empty());
    EXPECT_EQ(r.error_offset, c.offset) << r.syntax_error;
    EXPECT_TRUE(r.blocks.empty());
    EXPECT_EQ(r.rows_accepted, 0u);
    EXPECT_EQ(r.rows_rejected, 0u);
    EXPECT_TRUE(r.errors.empty());
  }
}

// ---- decoded block bytes ----

TEST(JsonRows, MixedRowsKeepGoodOnesInOrder) {
  const std::string body = "[" + kRow + R"(,{"device":"bad"},)" + kRow2 + "]";
  JsonParseResult r = run_parse(body, JsonShape::automatic);
  ASSERT_TRUE(r.syntax_ok);
  ASSERT_EQ(r.blocks.size(), 1u);
  const Block& b = *r.blocks[0];
  EXPECT_EQ(b.rows, 2u);
  EXPECT_EQ(b.column_mask, 0u);
  EXPECT_EQ(b.min_time, kT1);
  EXPECT_EQ(b.max_time, kT1 + 1000000);
  EXPECT_FALSE(b.ack);
  // time, device, value, meta (id and note omitted: their defaults apply)
  EXPECT_EQ(hex(b.data), "0004" "00000008" + hex64(kT1) + "00000002" + hex_text("d1") + "00000008" "3ff8000000000000" +
                             "ffffffff" +
                             "0004" "00000008" + hex64(kT1 + 1000000) + "00000002" + hex_text("d2") +
                             "00000008" "4000000000000000" + "ffffffff");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].row, 1u);
  EXPECT_EQ(r.errors[0].column, "time");
  EXPECT_EQ(r.errors[0].message, "missing value for required column \"time\"");
}

TEST(JsonRows, UnicodeAndNestedValuesDecode) {
  const std::string body =
      R"({"time":"2024-01-02T03:04:05Z","device":"caf\u00e9 \ud83d\ude00 \"q\"","meta":{"a": [1, {"b":null}] }})";
  JsonParseResult r = run_parse(body, JsonShape::automatic);
  ASSERT_TRUE(r.syntax_ok) << r.syntax_error;
  ASSERT_EQ(r.blocks.size(), 1u);
  auto rows = decode_all(r.blocks[0]->data);
  ASSERT_EQ(rows.size(), 1u);
  ASSERT_EQ(rows[0].fields.size(), 4u);
  EXPECT_EQ(rows[0].fields[1], "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\"");
  EXPECT_EQ(rows[0].fields[2], "NULL");
  EXPECT_EQ(rows[0].fields[3], std::string("\x01") + R"({"a": [1, {"b":null}] })");
}

TEST(JsonRows, NumbersArePassedAsTokens) {
  TableSchema t;
  t.columns.push_back(make_column("n", PgType::numeric));
  t.columns.push_back(make_column("j", PgType::json));
  t.columns.push_back(make_column("s", PgType::text));
  finish_table_schema(t);
  RowEncoder enc(t);
  JsonRowParser parser;
  std::string body = R"([{"n": 1.50 , "j": -2.5e+3 ,"s":12345678901234567890123}])";
  reserve_json_padding(body);
  JsonParseResult r;
  parser.parse(body, body.capacity(), JsonShape::automatic, enc, 0, 10, r);
  ASSERT_TRUE(r.syntax_ok) << r.syntax_error;
  ASSERT_EQ(r.blocks.size(), 1u);
  auto rows = decode_all(r.blocks[0]->data);
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(hex(rows[0].fields[0]), "000200000000000200011388");  // numeric 1.50, dscale 2
  EXPECT_EQ(rows[0].fields[1], "-2.5e+3");
  EXPECT_EQ(rows[0].fields[2], "12345678901234567890123");
  EXPECT_EQ(r.blocks[0]->min_time, INT64_MAX);  // no time column
}

TEST(JsonRows, BlocksPerColumnMask) {
  const std::string a = R"({"time":"2024-01-02T03:04:05Z","device":"a"})";                 // mask 0
  const std::string b = R"({"time":"2024-01-02T03:04:06Z","device":"b","id":5})";          // mask 1
  const std::string c = R"({"time":"2024-01-02T03:04:07Z","device":"c","note":"n"})";      // mask 2
  const std::string d = R"({"time":"2024-01-02T03:04:03Z","device":"d"})";                 // mask 0
  const std::string e = R"({"id":6,"time":"2024-01-02T03:04:08Z","device":"e"})";          // mask 1
  JsonParseResult r = run_parse(a + "\n" + b + "\n" + c + "\n" + d + "\n" + e + "\n", JsonShape::ndjson);
  ASSERT_TRUE(r.syntax_ok) << r.syntax_error;
  EXPECT_EQ(r.rows_accepted, 5u);
  ASSERT_EQ(r.blocks.size(), 3u);
  EXPECT_EQ(r.blocks[0]->column_mask, 0u);
  EXPECT_EQ(r.blocks[1]->column_mask, 1u);
  EXPECT_EQ(r.blocks[2]->column_mask, 2u);
  EXPECT_EQ(r.blocks[0]->rows, 2u);
  EXPECT_EQ(r.blocks[1]->rows, 2u);
  EXPECT_EQ(r.blocks[2]->rows, 1u);
  EXPECT_EQ(r.blocks[0]->min_time, kT1 - 2000000);
  EXPECT_EQ(r.blocks[0]->max_time, kT1);
  EXPECT_EQ(r.blocks[1]->min_time, kT1 + 1000000);
  EXPECT_EQ(r.blocks[1]->max_time, kT1 + 3000000);
  auto rows0 = decode_all(r.blocks[0]->data);
  ASSERT_EQ(rows0.size(), 2u);
  EXPECT_EQ(rows0[0].fields[1], "a");
  EXPECT_EQ(rows0[1].fields[1], "d");
  auto rows1 = decode_all(r.blocks[1]->data);
  ASSERT_EQ(rows1.size(), 2u);
  ASSERT_EQ(rows1[0].fields.size(), 5u);  // id, time, device, value, meta
  EXPECT_EQ(hex(rows1[0].fields[0]), "0000000000000005");
  EXPECT_EQ(rows1[0].fields[2], "b");
  EXPECT_EQ(hex(rows1[1].fields[0]), "0000000000000006");
  EXPECT_EQ(rows1[1].fields[2], "e");
  auto rows2 = decode_all(r.blocks[2]->data);
  ASSERT_EQ(rows2.size(), 1u);
  ASSERT_EQ(rows2[0].fields.size(), 5u);  // time, device, value, meta, note
  EXPECT_EQ(rows2[0].fields[4], "n");
}

TEST(JsonRows, FirstRowWithDefaultsRelabelsTheBlock) {
  JsonParseResult r = run_parse(R"([{"time":"2024-01-02T03:04:05Z","device":"a","note":"x"}])", JsonShape::automatic);
  ASSERT_EQ(r.blocks.size(), 1u);
  EXPECT_EQ(r.blocks[0]->column_mask, 2u);
}

TEST(JsonRows, MaxErrorsCapsTheListNotTheCount) {
  std::string body = "[";
  for (int i = 0; i < 5; ++i) body += std::string(i ? "," : "") + R"({"nope":1})";
  body += "]";
  static RowEncoder enc(readings());
  JsonRowParser parser(2);
  reserve_json_padding(body);
  JsonParseResult r;
  parser.parse(body, body.capacity(), JsonShape::automatic, enc, 0, 100, r);
  ASSERT_TRUE(r.syntax_ok);
  EXPECT_EQ(r.rows_rejected, 5u);
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[1].row, 1u);
}

TEST(JsonRows, ParserIsReusableAndResetsResults) {
  RowEncoder enc(readings());
  JsonRowParser parser;
  JsonParseResult r;
  std::string bad = R"([{"device":)";
  reserve_json_padding(bad);
  parser.parse(bad, bad.capacity(), JsonShape::automatic, enc, 0, 100, r);
  EXPECT_FALSE(r.syntax_ok);
  for (int i = 0; i < 3; ++i) {
    std::string good = "[" + kRow + R"(,{"x":1}])";
    reserve_json_padding(good);
    parser.parse(good, good.capacity(), JsonShape::automatic, enc, 0, 100, r);
    ASSERT_TRUE(r.syntax_ok) << r.syntax_error;
    EXPECT_EQ(r.error_offset, 0u);
    EXPECT_EQ(r.rows_accepted, 1u);
    EXPECT_EQ(r.rows_rejected, 1u);
    EXPECT_EQ(r.errors.size(), 1u);
    EXPECT_EQ(r.blocks.size(), 1u);
  }
}

TEST(JsonRows, KeyOrderChangesBetweenRows) {
  // The per-position key cache must not confuse columns when rows order keys differently.
  const std::string body =
      R"([{"time":"2024-01-02T03:04:05Z","device":"a","value":1},)"
      R"({"value":2,"device":"b","time":"2024-01-02T03:04:05Z"},)"
      R"({"device":"c","time":"2024-01-02T03:04:05Z"}])";
  JsonParseResult r = run_parse(body, JsonShape::automatic);
  ASSERT_TRUE(r.syntax_ok);
  ASSERT_EQ(r.rows_accepted, 3u);
  auto rows = decode_all(r.blocks[0]->data);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1].fields[1], "b");
  EXPECT_EQ(hex(rows[1].fields[2]), "4000000000000000");
  EXPECT_EQ(rows[2].fields[1], "c");
  EXPECT_EQ(rows[2].fields[2], "NULL");
}

TEST(JsonRows, MissingPaddingIsRefused) {
  RowEncoder enc(readings());
  JsonRowParser parser;
  JsonParseResult r;
  std::string body = kRow;
  parser.parse(body, body.size(), JsonShape::automatic, enc, 0, 100, r);
  EXPECT_FALSE(r.syntax_ok);
  EXPECT_EQ(r.rows_accepted, 0u);
}

}  // namespace
}  // namespace sluice::test
