// The spool's Block record codec: round trip, a reordered catalog, a new nullable column, errors.
#include "spool/block_codec.h"

#include <gtest/gtest.h>

namespace sluice::spool {
namespace {

Column col(std::string name, bool has_default = false) {
  Column c;
  c.name = std::move(name);
  c.type = PgType::int4;
  c.has_default = has_default;
  return c;
}

TableSchema make_table(std::vector<Column> cols, uint32_t id = 0) {
  TableSchema t;
  t.id = id;
  t.schema = "public";
  t.name = "m";
  t.config_name = "m";
  t.quoted = "\"public\".\"m\"";
  t.columns = std::move(cols);
  finish_table_schema(t);
  return t;
}

void field(std::vector<char>& out, int32_t v) {
  const char b[8] = {0, 0, 0, 4, char(v >> 24), char(v >> 16), char(v >> 8), char(v)};
  out.insert(out.end(), b, b + 8);
}
void tuple(std::vector<char>& out, std::initializer_list<int32_t> values) {
  out.push_back(0);
  out.push_back(static_cast<char>(values.size()));
  for (int32_t v : values) field(out, v);
}

TEST(BlockCodec, RoundTripKeepsEverything) {
  Catalog cat;
  cat.tables.push_back(make_table({col("a"), col("b", true), col("c")}));
  Block b;
  b.table_id = 0;
  b.column_mask = 1;  // b present
  b.rows = 2;
  b.min_time = 10;
  b.max_time = 20;
  tuple(b.data, {1, 2, 3});
  tuple(b.data, {4, 5, 6});
  std::string payload;
  encode_block(cat.tables[0], b, payload);
  Block out;
  std::string error;
  ASSERT_TRUE(decode_block(cat, payload, out, error)) << error;
  EXPECT_EQ(out.table_id, 0u);
  EXPECT_EQ(out.column_mask, 1u);
  EXPECT_EQ(out.rows, 2u);
  EXPECT_EQ(out.min_time, 10);
  EXPECT_EQ(out.max_time, 20);
  EXPECT_EQ(out.data, b.data);
}

TEST(BlockCodec, ReorderedAndExtendedCatalogRewritesTuples) {
  Catalog before;
  before.tables.push_back(make_table({col("a"), col("b")}));
  Block b;
  b.rows = 1;
  tuple(b.data, {1, 2});
  std::string payload;
  encode_block(before.tables[0], b, payload);

  // Today: another table first (ids shift), columns in another order, a new nullable column.
  Catalog today;
  TableSchema other = make_table({col("x")}, 0);
  other.config_name = "other";
  today.tables.push_back(other);
  finish_table_schema(today.tables[0]);
  today.tables.push_back(make_table({col("b"), col("new"), col("a")}, 1));
  Block out;
  std::string error;
  ASSERT_TRUE(decode_block(today, payload, out, error)) << error;
  EXPECT_EQ(out.table_id, 1u);
  std::vector<char> want;
  want.push_back(0);
  want.push_back(3);
  field(want, 2);
  const char null_field[4] = {'\xff', '\xff', '\xff', '\xff'};
  want.insert(want.end(), null_field, null_field + 4);
  field(want, 1);
  EXPECT_EQ(out.data, want);
}

TEST(BlockCodec, MissingTableOrColumnAndGarbageAreErrors) {
  Catalog cat;
  cat.tables.push_back(make_table({col("a"), col("b")}));
  Block b;
  b.rows = 1;
  tuple(b.data, {1, 2});
  std::string payload;
  encode_block(cat.tables[0], b, payload);

  Catalog no_b;
  no_b.tables.push_back(make_table({col("a")}));
  Block out;
  std::string error;
  EXPECT_FALSE(decode_block(no_b, payload, out, error));
  EXPECT_NE(error.find("\"b\""), std::string::npos) << error;

  Catalog renamed;
  renamed.tables.push_back(make_table({col("a"), col("b")}));
  renamed.tables[0].config_name = "n";
  EXPECT_FALSE(decode_block(renamed, payload, out, error));
  EXPECT_NE(error.find("no longer configured"), std::string::npos) << error;

  EXPECT_FALSE(decode_block(cat, payload.substr(0, payload.size() - 1), out, error));
  EXPECT_FALSE(decode_block(cat, "", out, error));
}

}  // namespace
}  // namespace sluice::spool
