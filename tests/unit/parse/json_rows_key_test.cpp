// JsonRowParser's raw-key fast path: a key is matched as written against the column seen at its
// position in the previous row, and unescaped only when that fails. These cases must behave exactly
// like the unescaping lookup: escaped spellings of a cached name, prefixes and extensions of it,
// bad escapes at a cached position, and column names containing '"' or '\' (never matched raw).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "encoder_test_util.h"
#include "ingest/parse/json_rows.h"

namespace sluice::test {
namespace {

// value float8, name text, we"ird text, back\slash text, "a" float8 (a prefix of no other column).
const TableSchema& keys_table() {
  static const TableSchema t = [] {
    TableSchema s;
    s.schema = "public";
    s.name = s.config_name = "keys";
    s.columns.push_back(make_column("value", PgType::float8));
    s.columns.push_back(make_column("name", PgType::text));
    s.columns.push_back(make_column("we\"ird", PgType::text));
    s.columns.push_back(make_column("back\\slash", PgType::text));
    s.columns.push_back(make_column("a", PgType::float8));
    finish_table_schema(s);
    return s;
  }();
  return t;
}

struct Parsed {
  JsonParseResult r;
  std::vector<DecodedTuple> rows;
};

// One parser for all bodies of a test, as on an IO thread: the key cache outlives a body.
Parsed parse(JsonRowParser& parser, const std::string& text) {
  static RowEncoder enc(keys_table());
  std::string body = text;
  reserve_json_padding(body);
  Parsed p;
  parser.parse(body, body.capacity(), JsonShape::automatic, enc, 0, 1000, p.r);
  for (const auto& b : p.r.blocks) {
    for (auto& row : decode_all(b->data)) p.rows.push_back(std::move(row));
  }
  return p;
}

TEST(JsonRowKeys, EscapedSpellingsOfACachedNameMap) {
  JsonRowParser parser;
  const Parsed p = parse(parser, R"([{"value":1,"name":"x"},{"value":2,"name":"y"},)"
                                 R"({"v\u0061lue":3,"nam\u0065":"z"},{"\u0076alue":4,"name":"w"},{"value":5,"name":"v"}])");
  ASSERT_TRUE(p.r.syntax_ok) << p.r.syntax_error;
  EXPECT_EQ(p.r.rows_accepted, 5u);
  ASSERT_EQ(p.rows.size(), 5u);
  EXPECT_EQ(hex(p.rows[2].fields[0]), "4008000000000000");  // 3.0
  EXPECT_EQ(p.rows[2].fields[1], "z");
  EXPECT_EQ(hex(p.rows[3].fields[0]), "4010000000000000");  // 4.0
  EXPECT_EQ(hex(p.rows[4].fields[0]), "4014000000000000");  // 5.0
}

TEST(JsonRowKeys, PrefixesAndExtensionsOfACachedNameAreUnknown) {
  JsonRowParser parser;
  const Parsed p = parse(parser, R"([{"value":1},{"valu":2},{"value":3},{"values":4},{"value\u0000":5},{"":6},{"value":7}])");
  ASSERT_TRUE(p.r.syntax_ok) << p.r.syntax_error;
  EXPECT_EQ(p.r.rows_accepted, 3u);
  EXPECT_EQ(p.r.rows_rejected, 4u);
  ASSERT_EQ(p.r.errors.size(), 4u);
  EXPECT_EQ(p.r.errors[0].row, 1u);
  EXPECT_EQ(p.r.errors[0].message, "unknown column \"valu\"");
  EXPECT_EQ(p.r.errors[1].message, "unknown column \"values\"");
  EXPECT_EQ(p.r.errors[2].column, std::string("value\0", 6));
  EXPECT_EQ(p.r.errors[3].message, "unknown column \"\"");
}

TEST(JsonRowKeys, BadEscapeAtACachedPositionIsASyntaxError) {
  JsonRowParser parser;
  const Parsed p = parse(parser, R"([{"value":1},{"val\ue":2}])");
  EXPECT_FALSE(p.r.syntax_ok);
  EXPECT_EQ(p.r.rows_accepted, 0u);
  EXPECT_TRUE(p.r.blocks.empty());
}

TEST(JsonRowKeys, NamesWithQuoteOrBackslashMatchOnlyUnescaped) {
  JsonRowParser parser;
  // Rows 1-2 cache both columns; row 3 repeats them; the raw spellings are never the names.
  const Parsed p = parse(parser, R"([{"we\"ird":"a","back\\slash":"b"},{"we\"ird":"c","back\\slash":"d"},)"
                                 R"({"we\u0022ird":"e","back\u005cslash":"f"}])");
  ASSERT_TRUE(p.r.syntax_ok) << p.r.syntax_error;
  EXPECT_EQ(p.r.rows_accepted, 3u);
  ASSERT_EQ(p.rows.size(), 3u);
  EXPECT_EQ(p.rows[1].fields[2], "c");
  EXPECT_EQ(p.rows[1].fields[3], "d");
  EXPECT_EQ(p.rows[2].fields[2], "e");
  EXPECT_EQ(p.rows[2].fields[3], "f");
  // The bytes of the name as written raw are a bad escape ("\s"), never the column back\slash.
  const Parsed bad = parse(parser, R"([{"we\"ird":"a","back\\slash":"b"},{"we\"ird":"a","back\slash":"b"}])");
  EXPECT_FALSE(bad.r.syntax_ok);
}

TEST(JsonRowKeys, CacheSurvivesBodiesAndKeyOrderChanges) {
  JsonRowParser parser;
  ASSERT_TRUE(parse(parser, R"({"value":1,"name":"x","a":2})").r.syntax_ok);
  const Parsed p = parse(parser, R"([{"a":1,"value":2,"name":"x"},{"name":"y","a":3,"value":4}])");
  ASSERT_TRUE(p.r.syntax_ok) << p.r.syntax_error;
  ASSERT_EQ(p.rows.size(), 2u);
  EXPECT_EQ(hex(p.rows[0].fields[0]), "4000000000000000");  // value 2
  EXPECT_EQ(hex(p.rows[0].fields[4]), "3ff0000000000000");  // a 1
  EXPECT_EQ(p.rows[1].fields[1], "y");
  EXPECT_EQ(hex(p.rows[1].fields[0]), "4010000000000000");  // value 4
  EXPECT_EQ(hex(p.rows[1].fields[4]), "4008000000000000");  // a 3
}

}  // namespace
}  // namespace sluice::test
