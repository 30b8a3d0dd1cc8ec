// load_catalog() against a real PostgreSQL, and a round trip of RowEncoder bytes through
// COPY ... FROM STDIN (FORMAT binary) to prove the encodings are what the server expects.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/row_encoder.h"
#include "pg/connection.h"
#include "support/pg_server.h"

namespace sluice::test {
namespace {

class CatalogPg : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    PgServer& pg = shared_pg_server();
    url_ = new std::string(pg.create_database("catalog_test"));
    pg.psql("catalog_test", R"sql(
      CREATE SCHEMA flux;
      CREATE TYPE mood AS ENUM ('ok', 'bad');
      CREATE DOMAIN price AS numeric(5,2) NOT NULL;
      CREATE TABLE flux.m (
        "time" timestamptz NOT NULL,
        device_id text NOT NULL,
        id bigserial,
        value numeric(12,3),
        name varchar(10),
        code char(3),
        flag boolean DEFAULT true,
        meta jsonb,
        j json,
        u uuid,
        d date,
        ts timestamp,
        f4 real,
        f8 double precision,
        i2 smallint,
        i4 integer,
        gen integer GENERATED ALWAYS AS (i4 * 2) STORED,
        gone integer,
        ident integer GENERATED ALWAYS AS IDENTITY,
        created timestamptz DEFAULT now(),
        n numeric
      );
      ALTER TABLE flux.m DROP COLUMN gone;
      CREATE TABLE bad (tags text[], addr inet, ok integer);
      CREATE TABLE plain (a integer, t timestamp, t2 timestamptz);
      CREATE TABLE notnull_tz (t timestamptz, t2 timestamptz NOT NULL);
      CREATE TABLE notime (a integer);
      CREATE TABLE typed (p price, m mood, t timestamptz);
      -- row order (TableSchema::row_order): which unique indexes let a batch be split
      CREATE TABLE ro_free (t timestamptz, a integer);
      CREATE TABLE ro_pk (t timestamptz, dev text, v double precision, PRIMARY KEY (t, dev));
      CREATE TABLE ro_two (a integer, b bigint, c uuid, n numeric, PRIMARY KEY (a, b, n), UNIQUE (c, b, a));
      CREATE TABLE ro_include (a integer, b integer, UNIQUE (a) INCLUDE (b));
      CREATE TABLE ro_disjoint (a integer UNIQUE, b integer UNIQUE);
      CREATE TABLE ro_numeric (n numeric PRIMARY KEY, f real);
      CREATE TABLE ro_expr (s text, t timestamptz);
      CREATE UNIQUE INDEX ON ro_expr (lower(s));
      CREATE TABLE ro_partial (a integer, t timestamptz);
      CREATE UNIQUE INDEX ON ro_partial (a) WHERE a > 0;
      CREATE TABLE ro_generated (a integer, g integer GENERATED ALWAYS AS (a + 1) STORED, b text, UNIQUE (g, b));
      CREATE TABLE ro_plain_index (a integer, b integer);
      CREATE INDEX ON ro_plain_index (a);
      CREATE TABLE ro_default (t timestamptz, id bigserial PRIMARY KEY);
    )sql");
  }
  static void TearDownTestSuite() {
    delete url_;
    url_ = nullptr;
  }
  static std::string* url_;
};
std::string* CatalogPg::url_ = nullptr;

TEST_F(CatalogPg, LoadsColumnsTypesDefaultsAndTimeColumn) {
  pg::Connection conn(*url_);
  Catalog cat = load_catalog(conn.get(), {{"flux.m", ""}, {"plain", ""}, {"notnull_tz", ""}, {"notime", ""}});
  ASSERT_EQ(cat.tables.size(), 4u);
  const TableSchema* t = cat.find("flux.m");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->id, 0u);
  EXPECT_EQ(t->schema, "flux");
  EXPECT_EQ(t->name, "m");
  EXPECT_EQ(t->quoted, "\"flux\".\"m\"");
  std::vector<std::string> names;
  for (const auto& c : t->columns) names.push_back(c.name);
  EXPECT_EQ(names, (std::vector<std::string>{"time", "device_id", "id", "value", "name", "code", "flag", "meta",
                                             "j", "u", "d", "ts", "f4", "f8", "i2", "i4", "ident", "created",
                                             "n"}));
  auto col = [&](const char* n) -> const Column& { return t->columns.at(t->find(n)); };
  EXPECT_EQ(col("time").type, PgType::timestamptz);
  EXPECT_TRUE(col("time").not_null);
  EXPECT_EQ(col("time").omit_bit, -1);
  EXPECT_EQ(col("id").type, PgType::int8);
  EXPECT_TRUE(col("id").has_default);
  EXPECT_EQ(col("id").omit_bit, 0);
  EXPECT_EQ(col("value").type, PgType::numeric);
  EXPECT_EQ(col("value").numeric_precision, 12);
  EXPECT_EQ(col("value").numeric_scale, 3);
  EXPECT_EQ(col("n").numeric_precision, -1);
  EXPECT_EQ(col("name").type, PgType::varchar);
  EXPECT_EQ(col("name").max_chars, 10);
  EXPECT_EQ(col("code").type, PgType::bpchar);
  EXPECT_EQ(col("code").max_chars, 3);
  EXPECT_EQ(col("flag").omit_bit, 1);
  EXPECT_EQ(col("meta").type, PgType::jsonb);
  EXPECT_EQ(col("j").type, PgType::json);
  EXPECT_EQ(col("u").type, PgType::uuid);
  EXPECT_EQ(col("d").type, PgType::date);
  EXPECT_EQ(col("ts").type, PgType::timestamp);
  EXPECT_EQ(col("f4").type, PgType::float4);
  EXPECT_EQ(col("f8").type, PgType::float8);
  EXPECT_EQ(col("f8").type_oid, 701u);
  EXPECT_EQ(col("i2").type, PgType::int2);
  EXPECT_EQ(col("i4").type, PgType::int4);
  EXPECT_EQ(col("ident").omit_bit, 2);  // identity counts as a default
  EXPECT_EQ(col("created").omit_bit, 3);
  EXPECT_EQ(t->find("gen"), -1);   // generated: never sent
  EXPECT_EQ(t->find("gone"), -1);  // dropped
  EXPECT_EQ(t->all_omittable, 0xFu);
  EXPECT_EQ(t->time_column, 0);

  EXPECT_EQ(cat.find("plain")->schema, "public");
  EXPECT_EQ(cat.find("plain")->time_column, 1);       // first timestamp/timestamptz
  EXPECT_EQ(cat.find("notnull_tz")->time_column, 1);  // NOT NULL timestamptz wins
  EXPECT_EQ(cat.find("notime")->time_column, -1);
  EXPECT_EQ(cat.find("notime")->id, 3u);
}

// Splitting a batch between writers gives up the order between the parts: allowed freely without
// unique indexes, by the columns all unique indexes share (of types whose binary form is one per
// value), never with an expression or partial unique index or unique indexes sharing no column.
TEST_F(CatalogPg, RowOrderFollowsTheUniqueIndexes) {
  pg::Connection conn(*url_);
  const std::vector<std::string> names = {"ro_free", "ro_pk", "ro_two", "ro_include", "ro_disjoint", "ro_numeric",
                                          "ro_expr", "ro_partial", "ro_generated", "ro_plain_index", "ro_default"};
  std::vector<TableSpec> specs;
  for (const auto& n : names) specs.push_back(TableSpec{n, ""});
  const Catalog c = load_catalog(conn.get(), specs);
  auto key_names = [&](const std::string& table) {
    const TableSchema* t = c.find(table);
    std::string out = t->row_order == RowOrder::free ? "free" : t->row_order == RowOrder::keyed ? "keyed" : "fixed";
    for (int i : t->order_key) out += " " + t->columns[i].name;
    return out;
  };
  EXPECT_EQ(key_names("ro_free"), "free");
  EXPECT_EQ(key_names("ro_plain_index"), "free");  // not unique: no conflict possible
  EXPECT_EQ(key_names("ro_pk"), "keyed t dev");
  EXPECT_EQ(key_names("ro_two"), "keyed a b");  // shared by both; numeric n is left out
  EXPECT_EQ(key_names("ro_include"), "keyed a");  // INCLUDE columns are not part of the key
  EXPECT_EQ(key_names("ro_disjoint"), "fixed");
  EXPECT_EQ(key_names("ro_numeric"), "fixed");
  EXPECT_EQ(key_names("ro_expr"), "fixed");
  EXPECT_EQ(key_names("ro_partial"), "fixed");
  EXPECT_EQ(key_names("ro_generated"), "keyed b");  // the generated column is computed, not sent

  // Tuple positions of the key for a column mask: ro_pk has no omittable column.
  EXPECT_EQ(c.find("ro_pk")->order_key_fields(0), (std::vector<int>{0, 1}));
  EXPECT_EQ(c.find("ro_two")->order_key_fields(0), (std::vector<int>{0, 1}));
  // A key column with a default is in the tuple only when the mask carries it.
  EXPECT_EQ(key_names("ro_default"), "keyed id");
  EXPECT_TRUE(c.find("ro_default")->order_key_fields(0).empty());
  EXPECT_EQ(c.find("ro_default")->order_key_fields(1), (std::vector<int>{1}));
}

TEST_F(CatalogPg, DomainsAndEnums) {
  pg::Connection conn(*url_);
  Catalog cat = load_catalog(conn.get(), {{"typed", "t"}});
  const TableSchema& t = cat.tables[0];
  EXPECT_EQ(t.columns[0].type, PgType::numeric);
  EXPECT_EQ(t.columns[0].numeric_precision, 5);
  EXPECT_EQ(t.columns[0].numeric_scale, 2);
  EXPECT_TRUE(t.columns[0].not_null);
  EXPECT_EQ(t.columns[1].type, PgType::text);
  EXPECT_EQ(t.time_column, 2);
}

TEST_F(CatalogPg, CollectsAllErrors) {
  pg::Connection conn(*url_);
  try {
    load_catalog(conn.get(), {{"flux.x", ""}, {"bad", ""}, {"plain", "nope"}, {"plain2", ""}, {"notime", "a"}});
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    const std::string m = e.what();
    EXPECT_EQ(m,
              "table flux.x does not exist\n"
              "table public.bad column \"tags\": type text[] is not supported (supported: timestamptz, timestamp, "
              "date, double precision, real, smallint, integer, bigint, numeric, boolean, text, varchar, char, "
              "uuid, jsonb, json)\n"
              "table public.bad column \"addr\": type inet is not supported (supported: timestamptz, timestamp, "
              "date, double precision, real, smallint, integer, bigint, numeric, boolean, text, varchar, char, "
              "uuid, jsonb, json)\n"
              "table public.plain: time column \"nope\" does not exist\n"
              "table public.plain2 does not exist\n"
              "table public.notime: time column \"a\" has type int4 (must be timestamptz, timestamp or date)");
  }
}

// ---- encoder bytes through a real binary COPY ----

std::string copy_in(PGconn* conn, const TableSchema& t, uint64_t mask, const std::vector<char>& tuples) {
  std::string sql = "COPY " + t.quoted + " " + t.copy_column_list(mask) + " FROM STDIN (FORMAT binary)";
  pg::Result r(PQexec(conn, sql.c_str()));
  if (PQresultStatus(r.get()) != PGRES_COPY_IN) return pg::error_message(conn, r.get());
  std::string data("PGCOPY\n\377\r\n\0", 11);
  data.append(8, '\0');  // flags, header extension length
  data.append(tuples.data(), tuples.size());
  data.append("\xff\xff", 2);
  if (PQputCopyData(conn, data.data(), static_cast<int>(data.size())) != 1 || PQputCopyEnd(conn, nullptr) != 1) {
    return pg::error_message(conn, nullptr);
  }
  std::string error;
  while (PGresult* res = PQgetResult(conn)) {
    if (PQresultStatus(res) != PGRES_COMMAND_OK) error = pg::error_message(conn, res);
    PQclear(res);
  }
  return error;
}

TEST_F(CatalogPg, EncodedRowsCopyIntoPostgres) {
  PgServer& pg = shared_pg_server();
  pg.psql("catalog_test", "TRUNCATE flux.m; SET TIME ZONE 'UTC';");
  pg::Connection conn(*url_);
  Catalog cat = load_catalog(conn.get(), {{"flux.m", ""}});
  const TableSchema& t = cat.tables[0];
  RowEncoder enc(t);
  std::vector<char> out;
  uint64_t mask = 0;
  int64_t mn = INT64_MAX, mx = INT64_MIN;
  auto c = [&](const char* n) { return t.find(n); };

  enc.begin_row();
  ASSERT_TRUE(enc.put_string(c("time"), "2024-01-02T08:34:05.123456789+05:30"));
  ASSERT_TRUE(enc.put_string(c("device_id"), "d\xc3\xa9v-1"));
  ASSERT_TRUE(enc.put_number(c("id"), "42"));
  ASSERT_TRUE(enc.put_number(c("value"), "-12345.67891"));
  ASSERT_TRUE(enc.put_string(c("name"), "\xc3\xa4\xc3\xb6\xc3\xbc"));
  ASSERT_TRUE(enc.put_string(c("code"), "ab"));
  ASSERT_TRUE(enc.put_bool(c("flag"), false));
  ASSERT_TRUE(enc.put_json(c("meta"), "{\"b\": [1, 2.50, \"x\\n\"], \"a\": null}"));
  ASSERT_TRUE(enc.put_string(c("j"), "quote\" and \x01"));
  ASSERT_TRUE(enc.put_string(c("u"), "{123E4567-E89B-12D3-A456-426614174000}"));
  ASSERT_TRUE(enc.put_string(c("d"), "1999-12-31"));
  ASSERT_TRUE(enc.put_string(c("ts"), "2024-02-29 23:59:59.5-01:00"));
  ASSERT_TRUE(enc.put_number(c("f4"), "1.5"));
  ASSERT_TRUE(enc.put_string(c("f8"), "-Infinity"));
  ASSERT_TRUE(enc.put_number(c("i2"), "-32768"));
  ASSERT_TRUE(enc.put_number(c("i4"), "1e3"));
  ASSERT_TRUE(enc.put_number(c("n"), "-0.000100"));
  ASSERT_TRUE(enc.end_row(out, mask, mn, mx)) << enc.error();
  ASSERT_EQ(mask, 3u);  // id, flag
  ASSERT_EQ(copy_in(conn.get(), t, mask, out), "");

  out.clear();
  enc.begin_row();
  ASSERT_TRUE(enc.put_number(c("time"), "1700000000.25"));
  ASSERT_TRUE(enc.put_string(c("device_id"), "d2"));
  ASSERT_TRUE(enc.put_number(c("value"), "0.0005"));
  ASSERT_TRUE(enc.put_number(c("n"), "123456789012345678901234567890.000000000000000000001"));
  ASSERT_TRUE(enc.put_string(c("meta"), "just a string"));
  ASSERT_TRUE(enc.put_number(c("j"), "1.5e300"));
  ASSERT_TRUE(enc.end_row(out, mask, mn, mx)) << enc.error();
  ASSERT_EQ(mask, 0u);
  ASSERT_EQ(copy_in(conn.get(), t, mask, out), "");

  // psql -At: '|' between fields, NULL as an empty field.
  const std::string got = pg.psql(
      "catalog_test",
      "SET TIME ZONE 'UTC'; SET extra_float_digits = 0;"
      "SELECT \"time\", device_id, id, value, name, code, flag, meta, j, u, d, ts, f4, f8, i2, i4, gen, "
      "ident IS NOT NULL, created IS NOT NULL, n FROM flux.m ORDER BY \"time\";");
  EXPECT_EQ(got,
            "2023-11-14 22:13:20.25+00|d2|1|0.001|||t|\"just a string\"|1.5e300|||||||||t|t|"
            "123456789012345678901234567890.000000000000000000001\n"
            "2024-01-02 03:04:05.123456+00|d\xc3\xa9v-1|42|-12345.679|\xc3\xa4\xc3\xb6\xc3\xbc|ab |f|"
            "{\"a\": null, \"b\": [1, 2.50, \"x\\n\"]}|\"quote\\\" and \\u0001\"|"
            "123e4567-e89b-12d3-a456-426614174000|1999-12-31|2024-03-01 00:59:59.5|1.5|-Infinity|-32768|1000|2000|"
            "t|t|-0.000100\n");
}

}  // namespace
}  // namespace sluice::test
