// Tests of LineMapper: line protocol bodies mapped onto hand-built tables and encoded to binary COPY
// (block bytes, renames, the extra JSON column, unmapped names, precision, row limits, start-up errors),
// and the no-allocation-per-line property (this binary counts every operator new).
#include "ingest/parse/line_mapping.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <new>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/pg_time.h"
#include "encoder_test_util.h"

namespace {
std::atomic<long> g_allocations{0};
}

__attribute__((noinline)) void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
// noinline (also on operator new): g++ otherwise pairs the inlined malloc/free with new/delete and
// warns (-Wmismatched-new-delete).
__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace sluice::test {
namespace {

constexpr int64_t kNow = 1234567890123456789;  // ns
constexpr int64_t pg_ns(int64_t unix_ns) { return unix_micros_to_pg(unix_ns >= 0 ? unix_ns / 1000 : -((-unix_ns + 999) / 1000)); }

// readings: id bigserial, time timestamptz NOT NULL, host, region, v float8, w int8, s text, ok bool,
//           extra jsonb, meas text, note text DEFAULT
// ops.other: time timestamptz NOT NULL, value float8, site int4, amount numeric
// notime: value float8
Catalog make_catalog() {
  Catalog c;
  TableSchema r;
  r.schema = "public";
  r.name = "readings";
  r.config_name = "readings";
  r.columns.push_back(make_column("id", PgType::int8, true, true));
  r.columns.push_back(make_column("time", PgType::timestamptz, true));
  r.columns.push_back(make_column("host", PgType::text));
  r.columns.push_back(make_column("region", PgType::text));
  r.columns.push_back(make_column("v", PgType::float8));
  r.columns.push_back(make_column("w", PgType::int8));
  r.columns.push_back(make_column("s", PgType::text));
  r.columns.push_back(make_column("ok", PgType::boolean));
  r.columns.push_back(make_column("extra", PgType::jsonb));
  r.columns.push_back(make_column("meas", PgType::text));
  r.columns.push_back(make_column("note", PgType::text, false, true));
  r.time_column = 1;
  c.tables.push_back(std::move(r));
  TableSchema o;
  o.schema = "ops";
  o.name = "other";
  o.config_name = "ops.other";
  o.columns.push_back(make_column("time", PgType::timestamptz, true));
  o.columns.push_back(make_column("value", PgType::float8));
  o.columns.push_back(make_column("site", PgType::int4));
  o.columns.push_back(make_column("amount", PgType::numeric));
  o.time_column = 0;
  c.tables.push_back(std::move(o));
  TableSchema n;
  n.schema = "public";
  n.name = "notime";
  n.config_name = "notime";
  n.columns.push_back(make_column("value", PgType::float8));
  c.tables.push_back(std::move(n));
  for (size_t i = 0; i < c.tables.size(); ++i) {
    c.tables[i].id = static_cast<uint32_t>(i);
    finish_table_schema(c.tables[i]);
  }
  return c;
}

const Catalog& catalog() {
  static const Catalog c = make_catalog();
  return c;
}

std::vector<std::unique_ptr<RowEncoder>> make_encoders() {
  std::vector<std::unique_ptr<RowEncoder>> e;
  for (const auto& t : catalog().tables) e.push_back(std::make_unique<RowEncoder>(t));
  return e;
}

MeasurementMapping mapping(std::string measurement, std::string table) {
  MeasurementMapping m;
  m.measurement = std::move(measurement);
  m.table = std::move(table);
  return m;
}

LineParseResult run(LineMapper& mapper, const std::string& body, EpochPrecision p = EpochPrecision::ns,
                    size_t max_rows = 1000) {
  static auto encoders = make_encoders();
  LineParseResult r;
  mapper.parse(body, p, kNow, encoders, max_rows, r);
  return r;
}

// Decoded rows of the only block of a result.
std::vector<DecodedTuple> rows_of(const LineParseResult& r) {
  EXPECT_EQ(r.blocks.size(), 1u);
  if (r.blocks.empty()) return {};
  auto rows = decode_all(r.blocks[0]->data);
  EXPECT_EQ(rows.size(), r.blocks[0]->rows);
  return rows;
}

// readings columns in a tuple without id/note: time host region v w s ok extra meas
enum RCol { kTime, kHost, kRegion, kV, kW, kS, kOk, kExtra, kMeas };

TEST(LineMapping, EncodesATypicalLine) {
  LineMapper mapper(catalog(), {mapping("m", "readings")});
  LineParseResult r = run(mapper, "m,host=a,region=b v=1.5,w=2i 1700000000000000000\n");
  EXPECT_TRUE(r.syntax_ok);
  EXPECT_EQ(r.rows_accepted, 1u);
  EXPECT_EQ(r.rows_rejected, 0u);
  ASSERT_EQ(r.blocks.size(), 1u);
  const Block& b = *r.blocks[0];
  const int64_t t = pg_ns(1700000000000000000);
  EXPECT_EQ(t, 753315200000000);
  EXPECT_EQ(b.table_id, 0u);
  EXPECT_EQ(b.column_mask, 0u);
  EXPECT_EQ(b.rows, 1u);
  EXPECT_EQ(b.min_time, t);
  EXPECT_EQ(b.max_time, t);
  EXPECT_FALSE(b.ack);
  EXPECT_EQ(hex(b.data), "0009" "00000008" + hex64(t) + "00000001" "61" "00000001" "62" "00000008" "3ff8000000000000" +
                             "00000008" "0000000000000002" "ffffffff" "ffffffff" "ffffffff" "ffffffff");
}

TEST(LineMapping, FieldKindsReachTheirColumns) {
  LineMapper mapper(catalog(), {mapping("m", "readings")});
  LineParseResult r = run(mapper, "m v=-12i,w=7u,ok=T,s=\"a \\\"b\\\"\" 0\nm v=.5,w=3,ok=false,s=\"\" -1\n");
  ASSERT_EQ(r.rows_accepted, 2u) << (r.errors.empty() ? "" : r.errors[0].message);
  auto rows = rows_of(r);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(hex(rows[0].fields[kTime]), hex64(unix_micros_to_pg(0)));
  EXPECT_EQ(hex(rows[0].fields[kV]), "c028000000000000");  // -12.0
  EXPECT_EQ(hex(rows[0].fields[kW]), "0000000000000007");
  EXPECT_EQ(hex(rows[0].fields[kOk]), "01");
  EXPECT_EQ(rows[0].fields[kS], "a \"b\"");
  EXPECT_EQ(hex(rows[1].fields[kTime]), hex64(unix_micros_to_pg(-1)));  // -1 ns floors to -1 µs
  EXPECT_EQ(hex(rows[1].fields[kV]), "3fe0000000000000");  // 0.5
  EXPECT_EQ(hex(rows[1].fields[kW]), "0000000000000003");
  EXPECT_EQ(hex(rows[1].fields[kOk]), "00");
  EXPECT_EQ(rows[1].fields[kS], "");
  EXPECT_EQ(r.blocks[0]->min_time, unix_micros_to_pg(-1));
  EXPECT_EQ(r.blocks[0]->max_time, unix_micros_to_pg(0));
}

TEST(LineMapping, PrecisionAndReceiveTime) {
  LineMapper mapper(catalog(), {mapping("m", "readings")});
  struct Case {
    EpochPrecision p;
    std::string line;
    int64_t pg_time;
  };
  const std::vector<Case> cases = {
      {EpochPrecision::s, "m v=1 1700000000", unix_micros_to_pg(1700000000000000)},
      {EpochPrecision::ms, "m v=1 1700000000123", unix_micros_to_pg(1700000000123000)},
      {EpochPrecision::us, "m v=1 1700000000123456", unix_micros_to_pg(1700000000123456)},
      {EpochPrecision::ns, "m v=1 1700000000123456999", unix_micros_to_pg(1700000000123456)},  // truncated
      {EpochPrecision::ns, "m v=1 -1500", unix_micros_to_pg(-2)},                              // floored
      {EpochPrecision::s, "m v=1", unix_micros_to_pg(1234567890123456)},                       // receive time
      {EpochPrecision::ns, "m v=1", unix_micros_to_pg(1234567890123456)},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.line);
    LineParseResult r = run(mapper, c.line, c.p);
    ASSERT_EQ(r.rows_accepted, 1u) << (r.errors.empty() ? "" : r.errors[0].message);
    auto rows = rows_of(r);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(hex(rows[0].fields[kTime]), hex64(c.pg_time));
    EXPECT_EQ(r.blocks[0]->min_time, c.pg_time);
  }
}

TEST(LineMapping, Renames) {
  MeasurementMapping m = mapping("m", "readings");
  m.tags = {{"h", "host"}, {"r", "region"}};
  m.fields = {{"value", "v"}, {"count", "w"}};
  LineMapper mapper(catalog(), {m});
  LineParseResult r = run(mapper, "m,h=x,r=y value=2,count=3i,s=\"z\"\nm,h=x,host=y value=1\nm,region=q v=4\n");
  EXPECT_EQ(r.rows_accepted, 2u);
  EXPECT_EQ(r.rows_rejected, 1u);
  auto rows = rows_of(r);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].fields[kHost], "x");
  EXPECT_EQ(rows[0].fields[kRegion], "y");
  EXPECT_EQ(hex(rows[0].fields[kV]), "4000000000000000");
  EXPECT_EQ(hex(rows[0].fields[kW]), "0000000000000003");
  EXPECT_EQ(rows[0].fields[kS], "z");
  EXPECT_EQ(rows[1].fields[kRegion], "q");  // names not renamed still map to their own column
  EXPECT_EQ(hex(rows[1].fields[kV]), "4010000000000000");
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].row, 2u);
  EXPECT_EQ(r.errors[0].column, "host");
  EXPECT_EQ(r.errors[0].message, "line 2: column \"host\": given more than once");
}

TEST(LineMapping, ExtraJsonColumnCollectsUnmappedNames) {
  MeasurementMapping m = mapping("m", "readings");
  m.extra_json_column = "extra";
  LineMapper mapper(catalog(), {m});
  const std::string body =
      "m,host=a,zone=z\\\"q v=1.5,x=.5,y=-007i,z=3u,b=t,str=\"a\\\"b\\\\c\",n=-0.e5,time=2i 1\n"
      "m,host=b,zone=tab\there,ctl=\x01 v=2,f=false,big=12.50E+3\n"
      "m,host=c v=3\n"
      "m,q=a q=1\n";
  LineParseResult r = run(mapper, body);
  EXPECT_EQ(r.rows_accepted, 3u);
  EXPECT_EQ(r.rows_rejected, 1u);
  auto rows = rows_of(r);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].fields[kHost], "a");
  EXPECT_EQ(hex(rows[0].fields[kV]), "3ff8000000000000");
  EXPECT_EQ(rows[0].fields[kExtra],
            "\x01{\"zone\":\"z\\\\\\\"q\",\"x\":0.5,\"y\":-7,\"z\":3,\"b\":true,\"str\":\"a\\\"b\\\\c\",\"n\":-0e5,"
            "\"time\":2}");
  EXPECT_EQ(rows[1].fields[kExtra], "\x01{\"zone\":\"tab\\there\",\"ctl\":\"\\u0001\",\"f\":false,\"big\":12.50E+3}");
  EXPECT_EQ(rows[2].fields[kExtra], "NULL");  // nothing unmapped: the column is left unset
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].row, 4u);
  EXPECT_EQ(r.errors[0].column, "q");
  EXPECT_EQ(r.errors[0].message, "line 4: tag and field \"q\" both go to extra_json_column \"extra\"");
}

TEST(LineMapping, UnmappedRejectAndIgnore) {
  {
    LineMapper mapper(catalog(), {mapping("m", "readings")});  // reject is the default
    LineParseResult r = run(mapper, "m,host=a v=1,x=2\nm,zone=z v=1\nm v=1,time=5i\nm v=1\n");
    EXPECT_EQ(r.rows_accepted, 1u);
    EXPECT_EQ(r.rows_rejected, 3u);
    ASSERT_EQ(r.errors.size(), 3u);
    EXPECT_EQ(r.errors[0].row, 1u);
    EXPECT_EQ(r.errors[0].column, "x");
    EXPECT_EQ(r.errors[0].message, "line 1: no column for field \"x\" in table \"readings\"");
    EXPECT_EQ(r.errors[1].row, 2u);
    EXPECT_EQ(r.errors[1].column, "zone");
    EXPECT_EQ(r.errors[1].message, "line 2: no column for tag \"zone\" in table \"readings\"");
    EXPECT_EQ(r.errors[2].message, "line 3: no column for field \"time\" in table \"readings\"");
  }
  {
    MeasurementMapping m = mapping("m", "readings");
    m.unmapped = UnmappedPolicy::ignore;
    LineMapper mapper(catalog(), {m});
    LineParseResult r = run(mapper, "m,host=a,zone=z v=1,x=2,time=3i\n");
    EXPECT_EQ(r.rows_accepted, 1u);
    EXPECT_EQ(r.rows_rejected, 0u);
    auto rows = rows_of(r);
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].fields[kHost], "a");
    EXPECT_EQ(hex(rows[0].fields[kV]), "3ff0000000000000");
    EXPECT_EQ(hex(rows[0].fields[kTime]), hex64(pg_ns(kNow)));
    EXPECT_EQ(rows[0].fields[kExtra], "NULL");
  }
}

TEST(LineMapping, MeasurementLookupAndCatchAll) {
  {
    LineMapper mapper(catalog(), {mapping("m", "readings")});
    LineParseResult r = run(mapper, "zz v=1\nm v=1\nzz v=1\n");
    EXPECT_EQ(r.rows_accepted, 1u);
    ASSERT_EQ(r.errors.size(), 2u);
    EXPECT_EQ(r.errors[0].row, 1u);
    EXPECT_EQ(r.errors[0].column, "");
    EXPECT_EQ(r.errors[0].message, "line 1: no table is mapped for measurement \"zz\"");
    EXPECT_EQ(r.errors[1].row, 3u);
  }
  {
    MeasurementMapping star = mapping("*", "readings");
    star.measurement_column = "meas";
    LineMapper mapper(catalog(), {mapping("readings", ""), star});  // "" = the table named like the measurement
    LineParseResult r = run(mapper, "cpu v=1\nreadings v=2\nmem v=3\n");
    EXPECT_EQ(r.rows_accepted, 3u);
    auto rows = rows_of(r);
    ASSERT_EQ(rows.size(), 3u);
    EXPECT_EQ(rows[0].fields[kMeas], "cpu");
    EXPECT_EQ(rows[1].fields[kMeas], "NULL");  // its own mapping has no measurement_column
    EXPECT_EQ(rows[2].fields[kMeas], "mem");
  }
}

TEST(LineMapping, BlocksPerTableAndColumnMask) {
  LineMapper mapper(catalog(), {mapping("m", "readings"), mapping("o", "ops.other")});
  const std::string body =
      "m,host=a v=1 1000000000\n"
      "o,site=17 value=2.5,amount=12.50 2000000000\n"
      "m,host=b v=2,id=5i 3000000000\n"
      "m,host=c v=3 4000000000\n"
      "o value=1 5000000000\n"
      "m,host=d v=4,id=6i,note=\"n\" 6000000000\n";
  LineParseResult r = run(mapper, body);
  EXPECT_EQ(r.rows_accepted, 6u);
  ASSERT_EQ(r.blocks.size(), 4u);
  struct Expect {
    uint32_t table;
    uint64_t mask;
    uint32_t rows;
    int64_t min_s, max_s;
  };
  const Expect e[] = {{0, 0, 2, 1, 4}, {1, 0, 2, 2, 5}, {0, 1, 1, 3, 3}, {0, 3, 1, 6, 6}};
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(r.blocks[i]->table_id, e[i].table);
    EXPECT_EQ(r.blocks[i]->column_mask, e[i].mask);
    EXPECT_EQ(r.blocks[i]->rows, e[i].rows);
    EXPECT_EQ(r.blocks[i]->min_time, unix_micros_to_pg(e[i].min_s * 1000000));
    EXPECT_EQ(r.blocks[i]->max_time, unix_micros_to_pg(e[i].max_s * 1000000));
    EXPECT_EQ(decode_all(r.blocks[i]->data).size(), e[i].rows);
  }
  auto m0 = decode_all(r.blocks[0]->data);
  EXPECT_EQ(m0[0].fields[kHost], "a");
  EXPECT_EQ(m0[1].fields[kHost], "c");
  auto o = decode_all(r.blocks[1]->data);
  ASSERT_EQ(o[0].fields.size(), 4u);
  EXPECT_EQ(hex(o[0].fields[1]), "4004000000000000");          // 2.5
  EXPECT_EQ(hex(o[0].fields[2]), "00000011");                  // numeric tag into int4
  EXPECT_EQ(hex(o[0].fields[3]), "0002000000000002000c1388");  // numeric 12.50
  EXPECT_EQ(o[1].fields[2], "NULL");
  auto m1 = decode_all(r.blocks[2]->data);
  ASSERT_EQ(m1[0].fields.size(), 10u);  // id first
  EXPECT_EQ(hex(m1[0].fields[0]), "0000000000000005");
  auto m3 = decode_all(r.blocks[3]->data);
  ASSERT_EQ(m3[0].fields.size(), 11u);
  EXPECT_EQ(m3[0].fields[10], "n");
}

TEST(LineMapping, BodyMixingGoodAndBadLines) {
  LineMapper mapper(catalog(), {mapping("m", "readings"), mapping("o", "ops.other")});
  const std::string body =
      "m v=1 1\n"
      "m v=\"str\" 2\n"
      "m v=1,w=1.5 3\r\n"
      "bad line\n"
      "# comment\n"
      "m w=99999999999999999999u\n"
      "m w=18446744073709551615u 6\n"
      "o,site=abc value=1\n"
      "m v=true\n"
      "m,host=x v=2 7\n";
  LineParseResult r = run(mapper, body);
  EXPECT_EQ(r.rows_accepted, 2u);
  EXPECT_EQ(r.rows_rejected, 7u);
  struct E {
    uint32_t row;
    std::string column, message;
  };
  const std::vector<E> expected = {
      {2, "v", "line 2: column \"v\": expected a number, got a string (only \"NaN\", \"Infinity\" and \"-Infinity\" are accepted as strings)"},
      {3, "w", "line 3: column \"w\": value 1.5 is not an integer"},
      {4, "", "line 4: invalid field \"line\" (expected key=value) (byte 5)"},
      {6, "", "line 6: unsigned field value out of range for \"w\": 99999999999999999999u (byte 5)"},
      {7, "w", "line 7: column \"w\": value 18446744073709551615 is out of range for bigint"},
      {8, "site", "line 8: column \"site\": invalid number \"abc\""},
      {9, "v", "line 9: column \"v\": expected a number, got a boolean"},
  };
  ASSERT_EQ(r.errors.size(), expected.size());
  for (size_t i = 0; i < expected.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(r.errors[i].row, expected[i].row);
    EXPECT_EQ(r.errors[i].column, expected[i].column);
    EXPECT_EQ(r.errors[i].message, expected[i].message);
  }
  auto rows = rows_of(r);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(hex(rows[0].fields[kTime]), hex64(unix_micros_to_pg(0)));
  EXPECT_EQ(rows[1].fields[kHost], "x");
}

TEST(LineMapping, MaxRowsAndMaxErrors) {
  {
    LineMapper mapper(catalog(), {mapping("m", "readings")});
    LineParseResult r = run(mapper, "m v=1\n\n# c\nm v=2\nm v=3\nm v=\n", EpochPrecision::ns, 2);
    EXPECT_EQ(r.rows_accepted, 2u);
    EXPECT_EQ(r.rows_rejected, 2u);
    ASSERT_EQ(r.errors.size(), 2u);
    EXPECT_EQ(r.errors[0].row, 5u);
    EXPECT_EQ(r.errors[0].message, "line 5: too many rows in one request (limit 2)");
    EXPECT_EQ(r.errors[1].row, 6u);
    EXPECT_EQ(r.errors[1].message, "line 6: too many rows in one request (limit 2)");
  }
  {
    LineMapper mapper(catalog(), {mapping("m", "readings")}, 2);
    LineParseResult r = run(mapper, "x\nx\nx\nm v=1\nx\n");
    EXPECT_EQ(r.rows_accepted, 1u);
    EXPECT_EQ(r.rows_rejected, 4u);
    ASSERT_EQ(r.errors.size(), 2u);
    EXPECT_EQ(r.errors[1].row, 2u);
  }
}

TEST(LineMapping, ResultIsResetBetweenBodies) {
  LineMapper mapper(catalog(), {mapping("m", "readings")});
  auto encoders = make_encoders();
  LineParseResult r;
  mapper.parse("m v=1\nnope\n", EpochPrecision::ns, kNow, encoders, 100, r);
  EXPECT_EQ(r.rows_accepted, 1u);
  mapper.parse("m v=2\n", EpochPrecision::ns, kNow, encoders, 100, r);
  EXPECT_EQ(r.rows_accepted, 1u);
  EXPECT_EQ(r.rows_rejected, 0u);
  EXPECT_TRUE(r.errors.empty());
  ASSERT_EQ(r.blocks.size(), 1u);
  EXPECT_EQ(r.blocks[0]->rows, 1u);
  mapper.parse("", EpochPrecision::ns, kNow, encoders, 100, r);
  EXPECT_EQ(r.rows_accepted, 0u);
  EXPECT_TRUE(r.blocks.empty());
}

// The parser leaves the duplicate key check to the mapper, which skips it for a line whose names are
// the ones its caches hold at the same positions, already checked. Over random lines and bodies,
// with the caches carried from body to body and two targets, exactly the lines with a duplicate tag
// or field are rejected, each with the message the parser gives on its own.
TEST(LineMapping, DuplicateKeysAreRejectedAsByTheParserWhateverTheCaches) {
  MeasurementMapping m = mapping("m", "readings");
  m.extra_json_column = "extra";  // unmapped names (x, y) go to the JSON column, duplicates would too
  MeasurementMapping o = mapping("o", "ops.other");
  o.unmapped = UnmappedPolicy::ignore;
  LineMapper mapper(catalog(), {m, o}, 1000);
  auto encoders = make_encoders();
  std::mt19937 rng(7);
  const char* const tag_keys[] = {"host", "region", "x"};
  const char* const field_keys[] = {"v", "w", "y"};
  const char* const field_values[] = {"1.5", "2i", "3"};
  size_t lines_total = 0, duplicate_lines = 0;
  for (int b = 0; b < 400; ++b) {
    std::string body;
    const unsigned lines = 1 + rng() % 5;
    for (unsigned l = 0; l < lines; ++l) {
      body += rng() % 4 == 0 ? "o" : "m";
      for (unsigned t = 0, nt = rng() % 4; t < nt; ++t) body += std::string(",") + tag_keys[rng() % 3] + "=a";
      for (unsigned f = 0, nf = 1 + rng() % 3; f < nf; ++f) {
        const unsigned k = rng() % 3;
        body += std::string(f == 0 ? " " : ",") + field_keys[k] + "=" + field_values[k];
      }
      body += "\n";
    }
    std::map<uint32_t, std::string> expected;  // line → the parser's message
    LineProtocolParser reference(body, EpochPrecision::ns, kNow);
    ParsedLine pl;
    LineError e;
    for (LineStatus s; (s = reference.next(pl, e)) != LineStatus::end;) {
      if (s == LineStatus::error) expected[e.line_no] = e.message;
    }
    LineParseResult r;
    mapper.parse(body, EpochPrecision::ns, kNow, encoders, 1000, r);
    std::map<uint32_t, std::string> got;
    for (const RowError& err : r.errors) got[err.row] = err.message;
    EXPECT_EQ(got, expected) << body;
    EXPECT_EQ(r.rows_accepted + expected.size(), lines) << body;
    lines_total += lines;
    duplicate_lines += expected.size();
  }
  // Both kinds of line are common enough to matter.
  EXPECT_GT(duplicate_lines, lines_total / 5);
  EXPECT_LT(duplicate_lines, lines_total * 4 / 5);
}

TEST(LineMapping, MissingEncoderIsARejectedLine) {
  LineMapper mapper(catalog(), {mapping("o", "ops.other")});
  std::vector<std::unique_ptr<RowEncoder>> encoders;
  encoders.push_back(std::make_unique<RowEncoder>(catalog().tables[0]));
  LineParseResult r;
  mapper.parse("o value=1\n", EpochPrecision::ns, kNow, encoders, 100, r);
  EXPECT_EQ(r.rows_rejected, 1u);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].message, "line 1: internal error: no encoder for table \"ops.other\"");
}

struct StartupCase {
  std::string name;
  std::vector<MeasurementMapping> mappings;
  std::string message;  // exact
};

TEST(LineMapping, StartupErrors) {
  auto with = [](MeasurementMapping m, auto change) {
    change(m);
    return m;
  };
  const std::vector<StartupCase> cases = {
      {"unknown table", {mapping("m", "nope")}, "line protocol mapping \"m\": table \"nope\" is not a configured table"},
      {"measurement name as table", {mapping("cpu", "")},
       "line protocol mapping \"cpu\": table \"cpu\" is not a configured table"},
      {"catch-all without table", {mapping("*", "")}, "line protocol mapping \"*\": the catch-all mapping \"*\" needs a table"},
      {"empty measurement", {mapping("", "readings")}, "line protocol mapping #1: measurement is empty"},
      {"mapped twice", {mapping("m", "readings"), mapping("m", "ops.other")},
       "line protocol mapping \"m\": measurement is mapped more than once"},
      {"no time column", {mapping("m", "notime")},
       "line protocol mapping \"m\", table \"notime\": the table has no time column for the line timestamps"},
      {"tag rename to missing column", {with(mapping("m", "readings"), [](auto& m) { m.tags = {{"h", "hostname"}}; })},
       "line protocol mapping \"m\", table \"readings\": tag rename \"h\" -> \"hostname\": column \"hostname\" is not a "
       "column of the table"},
      {"field rename to missing column", {with(mapping("m", "readings"), [](auto& m) { m.fields = {{"x", "y"}}; })},
       "line protocol mapping \"m\", table \"readings\": field rename \"x\" -> \"y\": column \"y\" is not a column of "
       "the table"},
      {"rename to the time column", {with(mapping("m", "readings"), [](auto& m) { m.fields = {{"t", "time"}}; })},
       "line protocol mapping \"m\", table \"readings\": field rename \"t\" -> \"time\": column \"time\" is the time "
       "column"},
      {"renamed twice", {with(mapping("m", "readings"), [](auto& m) { m.tags = {{"h", "host"}, {"h", "region"}}; })},
       "line protocol mapping \"m\", table \"readings\": tag rename \"h\" -> \"region\": \"h\" is renamed more than "
       "once"},
      {"empty rename", {with(mapping("m", "readings"), [](auto& m) { m.tags = {{"", "host"}}; })},
       "line protocol mapping \"m\", table \"readings\": tag rename \"\" -> \"host\": both names must be given"},
      {"missing extra column", {with(mapping("m", "readings"), [](auto& m) { m.extra_json_column = "xx"; })},
       "line protocol mapping \"m\", table \"readings\": extra_json_column \"xx\" is not a column of the table"},
      {"extra column not json", {with(mapping("m", "readings"), [](auto& m) { m.extra_json_column = "host"; })},
       "line protocol mapping \"m\", table \"readings\": extra_json_column \"host\" must be json or jsonb, not text"},
      {"measurement column not text", {with(mapping("m", "readings"), [](auto& m) { m.measurement_column = "v"; })},
       "line protocol mapping \"m\", table \"readings\": measurement_column \"v\" must be text, varchar or char, not "
       "float8"},
      {"missing measurement column", {with(mapping("m", "readings"), [](auto& m) { m.measurement_column = "zz"; })},
       "line protocol mapping \"m\", table \"readings\": measurement_column \"zz\" is not a column of the table"},
      {"rename to the extra column",
       {with(mapping("m", "readings"), [](auto& m) {
         m.extra_json_column = "extra";
         m.tags = {{"e", "extra"}};
       })},
       "line protocol mapping \"m\", table \"readings\": tag rename \"e\" -> \"extra\": column \"extra\" is the "
       "extra_json_column"},
      {"all problems at once", {mapping("a", "nope"), mapping("b", "notime")},
       "line protocol mapping \"a\": table \"nope\" is not a configured table\n"
       "line protocol mapping \"b\", table \"notime\": the table has no time column for the line timestamps"},
  };
  for (const StartupCase& c : cases) {
    SCOPED_TRACE(c.name);
    try {
      LineMapper mapper(catalog(), c.mappings);
      ADD_FAILURE() << "no exception";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()), c.message);
    }
  }
}

// ---- no allocation per line once warm ----

std::string repeat_lines(int n) {
  std::string body;
  for (int i = 0; i < n; ++i) {
    body += "m,host=a,region=b v=1.5,w=" + std::to_string(i) + "i 17000000000" + std::to_string(10000000 + i) + "\n";
  }
  return body;
}

TEST(LineMappingAlloc, ParserDoesNotAllocateOnceWarm) {
  const std::string body = repeat_lines(1000) + "m\\ x,t\\ 1=v\\,2 f\\=1=\"s\\\"\" 5\n";
  LineProtocolParser parser;
  ParsedLine line;
  LineError err;
  auto drain = [&] {
    size_t n = 0;
    parser.reset(body, EpochPrecision::ns, kNow);
    while (parser.next(line, err) == LineStatus::line) ++n;
    return n;
  };
  ASSERT_EQ(drain(), 1001u);
  const long before = g_allocations.load();
  EXPECT_EQ(drain(), 1001u);
  EXPECT_EQ(g_allocations.load() - before, 0);
}

TEST(LineMappingAlloc, MapperAllocatesPerBodyNotPerLine) {
  MeasurementMapping m = mapping("m", "readings");
  m.extra_json_column = "extra";
  m.tags = {{"region", "region"}};
  LineMapper mapper(catalog(), {m});
  auto encoders = make_encoders();
  LineParseResult r;
  auto allocations = [&](const std::string& body) {
    mapper.parse(body, EpochPrecision::ns, kNow, encoders, 100000, r);  // warm
    const long before = g_allocations.load();
    mapper.parse(body, EpochPrecision::ns, kNow, encoders, 100000, r);
    return g_allocations.load() - before;
  };
  const std::string extra = "m,host=a,zone=z v=1,x=2i\n";
  const long small = allocations(repeat_lines(10) + extra);
  ASSERT_EQ(r.rows_accepted, 11u);
  const long large = allocations(repeat_lines(2000) + extra);
  ASSERT_EQ(r.rows_accepted, 2001u);
  EXPECT_LE(small, 4);  // the Block, its data, (growth)
  EXPECT_LE(large, small + 2);  // data growth only
}

}  // namespace
}  // namespace sluice::test
