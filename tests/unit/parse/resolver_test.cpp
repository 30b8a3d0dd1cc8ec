// Tests of the dimension resolvers without a database: key encoding, the per-thread cache (negative
// TTL, bound), ResolverSet start-up errors, the generated SQL, and the parser hooks (JSON and line
// protocol): a miss holds the row back and records the key, the answer fills the column on the next
// parse, unknown keys reject the row naming the resolver and key, and cached keys cost no allocation
// per row (this binary counts every operator new).
#include "catalog/resolver.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <vector>

#include "encoder_test_util.h"
#include "ingest/parse/json_rows.h"
#include "ingest/parse/line_mapping.h"

namespace {
std::atomic<long> g_allocations{0};
}

__attribute__((noinline)) void* operator new(std::size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
// The nothrow form too: libsimdjson allocates its parser with it and frees it with plain delete, so
// both must come from the same (this) allocator, or ASan reports an alloc-dealloc mismatch.
__attribute__((noinline)) void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  return std::malloc(n ? n : 1);
}
__attribute__((noinline)) void operator delete(void* p) noexcept { std::free(p); }
__attribute__((noinline)) void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace sluice::test {
namespace {

// obs: series_id uuid, ts timestamptz NOT NULL, value float8 NOT NULL
// md:  time timestamptz NOT NULL, type int4 NOT NULL, value float8
Catalog make_catalog() {
  Catalog c;
  TableSchema o;
  o.schema = "public";
  o.name = "obs";
  o.config_name = "obs";
  o.columns.push_back(make_column("series_id", PgType::uuid));
  o.columns.push_back(make_column("ts", PgType::timestamptz, true));
  o.columns.push_back(make_column("value", PgType::float8, true));
  o.time_column = 1;
  c.tables.push_back(std::move(o));
  TableSchema m;
  m.schema = "flux";
  m.name = "md";
  m.config_name = "flux.md";
  m.columns.push_back(make_column("time", PgType::timestamptz, true));
  m.columns.push_back(make_column("type", PgType::int4, true));
  m.columns.push_back(make_column("value", PgType::float8));
  m.time_column = 0;
  c.tables.push_back(std::move(m));
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

ResolverSpec series_spec() {
  ResolverSpec s;
  s.table = "obs";
  s.column = "series_id";
  s.keys = {"ba", "type", "subtype"};
  s.nullable_keys = {"subtype"};
  s.unknown = UnknownKeyRule::create;
  s.lookup_sql = "SELECT id FROM series WHERE ...";
  s.create_sql = "INSERT INTO series ...";
  return s;
}

ResolverSpec market_spec() {
  ResolverSpec s;
  s.table = "flux.md";
  s.column = "type";
  s.keys = {"type"};
  s.lookup_table = "flux.md_types";
  s.match = {"name"};
  s.id_column = "id";
  return s;
}

std::string key(std::initializer_list<std::optional<std::string_view>> parts) {
  std::string k;
  for (const auto& p : parts) append_key_part(k, p);
  return k;
}

constexpr const char* kUuid = "0b6e2f49-5c44-4a4c-9a7e-2d6a3c1f0e11";

TEST(ResolverKey, EncodingIsUnambiguousAndRoundTrips) {
  // Same concatenation, different splits → different keys.
  EXPECT_NE(key({"ab", "c"}), key({"a", "bc"}));
  EXPECT_NE(key({"", std::nullopt}), key({std::nullopt, ""}));
  EXPECT_NE(key({"x", std::nullopt}), key({"x", ""}));
  const std::string binary("a\0\xFF\x01z", 5);
  std::vector<std::optional<std::string>> parts;
  ASSERT_TRUE(decode_key(key({"PJM", std::nullopt, "", binary}), parts));
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(parts[0], "PJM");
  EXPECT_FALSE(parts[1].has_value());
  EXPECT_EQ(parts[2], "");
  EXPECT_EQ(parts[3], binary);
  EXPECT_FALSE(decode_key(std::string("\x01\x05\x00\x00\x00" "ab", 7), parts));  // length past the end
  EXPECT_FALSE(decode_key("z", parts));
}

TEST(ResolverKey, DescribeNamesKeysAndValues) {
  ResolverSet set(catalog(), {series_spec()});
  EXPECT_EQ(describe_key(set.resolvers()[0], key({"PJM", "de\"mand", std::nullopt})),
            "ba=\"PJM\", type=\"de\\\"mand\", subtype=null");
}

TEST(ResolverSql, DeclarativeFormQuotesEveryIdentifier) {
  ResolverSpec s = market_spec();
  s.lookup_table = "flux.my\"types";
  s.match = {"Name"};
  s.id_column = "id";
  s.create_values = {{"unit", "it's"}};
  EXPECT_EQ(declarative_lookup_sql(s), "SELECT \"id\"::text FROM \"flux\".\"my\"\"types\" WHERE \"Name\" = $1 LIMIT 1");
  EXPECT_EQ(declarative_create_sql(s), "INSERT INTO \"flux\".\"my\"\"types\" (\"Name\", \"unit\") VALUES ($1, 'it''s')");
}

TEST(ResolverCacheTest, FindPutNegativeTtlAndBound) {
  ResolverCache c(3);
  EXPECT_EQ(c.find("a"), nullptr);
  c.put("a", {true, "1", 0});
  ASSERT_NE(c.find("a"), nullptr);
  EXPECT_EQ(c.find("a")->value, "1");
  c.put("n", {false, "", 1000});
  const auto* n = c.find("n");
  ASSERT_NE(n, nullptr);
  EXPECT_FALSE(ResolverCache::expired(*n, 999));
  EXPECT_TRUE(ResolverCache::expired(*n, 1000));
  EXPECT_FALSE(ResolverCache::expired(*c.find("a"), 1'000'000'000));  // positive entries never expire
  c.put("b", {true, "2", 0});
  EXPECT_EQ(c.size(), 3u);
  c.put("c", {true, "3", 0});  // over the bound: cleared, then stored
  EXPECT_EQ(c.size(), 1u);
  EXPECT_EQ(c.find("a"), nullptr);
  EXPECT_NE(c.find("c"), nullptr);
}

void expect_set_error(std::vector<ResolverSpec> specs, const std::string& part) {
  try {
    ResolverSet set(catalog(), specs);
    ADD_FAILURE() << "no error, expected: " << part;
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
  }
}

TEST(ResolverSetTest, StartUpErrorsNameResolverAndProblem) {
  ResolverSpec s = market_spec();
  s.table = "nope";
  expect_set_error({s}, "resolver \"nope.type\": table \"nope\" is not a configured table");
  s = market_spec();
  s.column = "kind";
  expect_set_error({s}, "resolver \"flux.md.kind\": column \"kind\" is not a column of table \"flux.md\"");
  s = market_spec();
  s.column = "time";
  expect_set_error({s}, "the time column cannot be resolved");
  s = market_spec();
  s.match = {"a", "b"};
  expect_set_error({s}, "match lists 2 columns for 1 keys");
  s = market_spec();
  s.lookup_sql = "SELECT 1";
  expect_set_error({s}, "give either lookup_table (declarative) or lookup_sql, not both");
  s = series_spec();
  s.create_sql.clear();
  expect_set_error({s}, "unknown \"create\" needs create_sql");
  s = series_spec();
  s.nullable_keys = {"region"};
  expect_set_error({s}, "nullable key \"region\" is not one of keys");
  expect_set_error({market_spec(), market_spec()}, "the column has two resolvers");
}

struct Fixture {
  ResolverSet set{catalog(), {series_spec(), market_spec()}};
  ThreadResolvers resolvers{set, catalog().tables.size()};
  std::vector<std::unique_ptr<RowEncoder>> encoders;
  Fixture() {
    for (const auto& t : catalog().tables) encoders.push_back(std::make_unique<RowEncoder>(t));
    resolvers.set_fixed_now_ns(1'000'000'000'000);
  }
  void answer(uint32_t resolver, std::string k, ResolveStatus status, std::string value = {}) {
    ResolveResult r;
    r.resolver = resolver;
    r.key = std::move(k);
    r.status = status;
    (status == ResolveStatus::found ? r.value : r.message) = std::move(value);
    resolvers.apply({r}, resolvers.now_ns());
  }
};

std::string padded(std::string s) {
  reserve_json_padding(s);
  return s;
}

TEST(ResolverJson, MissHoldsRowsBackThenAnswerFillsColumn) {
  Fixture f;
  JsonRowParser parser;
  parser.set_resolvers(&f.resolvers);
  JsonParseResult r;
  const std::string body = padded(
      R"([{"ba":"PJM","type":"demand","ts":"2023-11-14T22:13:20Z","value":1.5},
          {"ba":"PJM","type":"demand","subtype":null,"ts":"2023-11-14T22:13:21Z","value":2},
          {"ba":"XYZ","type":"demand","ts":"2023-11-14T22:13:21Z","value":3},
          {"type":"demand","ts":"2023-11-14T22:13:21Z","value":4}])");
  parser.parse(body, body.capacity(), JsonShape::automatic, *f.encoders[0], 0, 1000, r);
  ASSERT_TRUE(r.syntax_ok) << r.syntax_error;
  // Rows 0-2 wait (neither accepted nor rejected); row 3 lacks a required key.
  EXPECT_EQ(r.rows_accepted, 0u);
  EXPECT_EQ(r.rows_rejected, 1u);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].row, 3u);
  EXPECT_EQ(r.errors[0].column, "series_id");
  EXPECT_EQ(r.errors[0].message, "resolver \"obs.series_id\": key \"ba\" is missing");
  ASSERT_TRUE(f.resolvers.has_misses());
  auto misses = f.resolvers.take_misses();
  ASSERT_EQ(misses.size(), 2u);  // each key once
  EXPECT_EQ(misses[0].key, key({"PJM", "demand", std::nullopt}));
  EXPECT_EQ(misses[1].key, key({"XYZ", "demand", std::nullopt}));
  EXPECT_FALSE(f.resolvers.has_misses());

  f.answer(0, misses[0].key, ResolveStatus::found, kUuid);
  f.answer(0, misses[1].key, ResolveStatus::unknown);
  parser.parse(body, body.capacity(), JsonShape::automatic, *f.encoders[0], 0, 1000, r);
  EXPECT_FALSE(f.resolvers.has_misses());
  EXPECT_EQ(r.rows_accepted, 2u);
  EXPECT_EQ(r.rows_rejected, 2u);
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].row, 2u);
  EXPECT_EQ(r.errors[0].message,
            "resolver \"obs.series_id\": unknown key ba=\"XYZ\", type=\"demand\", subtype=null");
  ASSERT_EQ(r.blocks.size(), 1u);
  EXPECT_EQ(r.blocks[0]->rows, 2u);
  // The uuid's 16 bytes are in the block (first field of each tuple: 2-byte count, 4-byte length).
  const std::string data(r.blocks[0]->data.begin(), r.blocks[0]->data.end());
  EXPECT_EQ(hex(data.substr(6, 16)), "0b6e2f495c444a4c9a7e2d6a3c1f0e11");

  // The negative entry expires after the TTL: the key is asked again.
  f.resolvers.set_fixed_now_ns(f.resolvers.now_ns() + f.set.resolvers()[0].negative_ttl_ns);
  parser.parse(body, body.capacity(), JsonShape::automatic, *f.encoders[0], 0, 1000, r);
  ASSERT_TRUE(f.resolvers.has_misses());
  EXPECT_EQ(f.resolvers.take_misses()[0].key, key({"XYZ", "demand", std::nullopt}));
}

TEST(ResolverJson, FailedKeyAndNonScalarKeyAreRejectedWithReason) {
  Fixture f;
  JsonRowParser parser;
  parser.set_resolvers(&f.resolvers);
  JsonParseResult r;
  f.answer(1, key({"gas"}), ResolveStatus::failed, "create failed: permission denied");
  const std::string body = padded(R"({"type":"gas","time":"2023-11-14T22:13:20Z","value":1}
{"type":{"a":1},"time":"2023-11-14T22:13:20Z","value":1}
{"type":"oil","time":"2023-11-14T22:13:20Z","value":1})");
  parser.parse(body, body.capacity(), JsonShape::ndjson, *f.encoders[1], 1, 1000, r);
  ASSERT_TRUE(r.syntax_ok) << r.syntax_error;
  EXPECT_EQ(r.rows_rejected, 2u);
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].message,
            "resolver \"flux.md.type\": key type=\"gas\" could not be resolved: create failed: permission denied");
  EXPECT_EQ(r.errors[1].message, "resolver key \"type\": expected a string, number or boolean");
  ASSERT_TRUE(f.resolvers.has_misses());
  EXPECT_EQ(f.resolvers.take_misses()[0].key, key({"oil"}));
  // An integer id goes into the int4 column.
  f.answer(1, key({"oil"}), ResolveStatus::found, "7");
  parser.parse(body, body.capacity(), JsonShape::ndjson, *f.encoders[1], 1, 1000, r);
  EXPECT_EQ(r.rows_accepted, 1u);
  ASSERT_EQ(r.blocks.size(), 1u);
  const std::string data(r.blocks[0]->data.begin(), r.blocks[0]->data.end());
  // time (4 + 8 bytes), then type: length 4, value 7.
  EXPECT_EQ(hex(data.substr(2 + 12, 8)), "0000000400000007");
  EXPECT_EQ(f.resolvers.counters(1).unknown_rejects.load(), 2u);  // the failed key, twice
}

std::vector<MeasurementMapping> mappings() {
  MeasurementMapping g;
  g.measurement = "grid";
  g.table = "obs";
  MeasurementMapping m;
  m.measurement = "market";
  m.table = "flux.md";
  m.tags = {{"kind", "type"}};  // the renamed tag is the key "type"
  return {g, m};
}

// A LineMapper of mappings() with the fixture's resolvers.
struct LineFixture : Fixture {
  LineMapper mapper{catalog(), mappings()};
  LineParseResult r;
  LineFixture() { mapper.set_resolvers(&resolvers); }
  void parse(const std::string& body, size_t max_rows = 1000) {
    mapper.parse(body, EpochPrecision::ns, 0, encoders, max_rows, r);
  }
};

TEST(ResolverLine, KeysFromTagsAndFieldsAndRenames) {
  LineFixture f;
  LineParseResult& r = f.r;
  const std::string body =
      "grid,ba=PJM,type=demand value=91234.5 1700000000000000000\n"
      "market,kind=wholesale_price value=55.2 1700000000000000000\n"
      "market value=1,type=\"niv\" 1700000000000000000\n";
  f.parse(body);
  EXPECT_EQ(r.rows_accepted + r.rows_rejected, 0u);
  auto misses = f.resolvers.take_misses();
  ASSERT_EQ(misses.size(), 3u);
  EXPECT_EQ(misses[0].resolver, 0u);
  EXPECT_EQ(misses[0].key, key({"PJM", "demand", std::nullopt}));
  EXPECT_EQ(misses[1].key, key({"wholesale_price"}));
  EXPECT_EQ(misses[2].key, key({"niv"}));
  f.answer(0, misses[0].key, ResolveStatus::found, kUuid);
  f.answer(1, misses[1].key, ResolveStatus::found, "2");
  f.answer(1, misses[2].key, ResolveStatus::unknown);
  f.parse(body);
  EXPECT_FALSE(f.resolvers.has_misses());
  EXPECT_EQ(r.rows_accepted, 2u);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].row, 3u);
  EXPECT_EQ(r.errors[0].column, "type");
  EXPECT_EQ(r.errors[0].message,
            "line 3: resolver \"flux.md.type\": unknown key type=\"niv\" (unknown keys are rejected)");
  EXPECT_EQ(f.resolvers.counters(0).hits.load(), 1u);
  EXPECT_EQ(f.resolvers.counters(0).misses.load(), 1u);
}

// Resolver keys do not go through the mapper's name caches, so a line with them always has its
// duplicate keys checked, however many clean lines of the same names came before.
TEST(ResolverLine, DuplicateKeyIsRejectedAfterCleanLinesOfTheSameNames) {
  LineFixture f;
  const LineParseResult& r = f.r;
  f.parse(
      "grid,ba=PJM,type=demand value=1 1700000000000000000\n"
      "grid,ba=PJM,type=demand value=2 1700000000000000000\n"
      "grid,ba=PJM,ba=MISO value=3 1700000000000000000\n");
  EXPECT_EQ(r.rows_rejected, 1u);
  ASSERT_EQ(r.errors.size(), 1u);
  EXPECT_EQ(r.errors[0].row, 3u);
  EXPECT_EQ(r.errors[0].message, "line 3: duplicate tag \"ba\" (byte 13)");
  EXPECT_EQ(r.errors[0].kind, RejectKind::malformed);
}

TEST(ResolverLine, CachedKeysAllocateNothingPerLine) {
  LineFixture f;
  f.answer(0, key({"PJM", "demand", std::nullopt}), ResolveStatus::found, kUuid);
  f.answer(0, key({"PJM", "demand", "solar"}), ResolveStatus::found, kUuid);
  auto lines = [](int n) {
    std::string b;
    for (int i = 0; i < n; ++i) {
      b += "grid,ba=PJM,type=demand";
      if (i % 2) b += ",subtype=solar";
      b += " value=" + std::to_string(i) + " " + std::to_string(1700000000 + i) + "000000000\n";
    }
    return b;
  };
  auto allocations = [&](const std::string& body) {
    f.parse(body, 100000);  // warm
    const long before = g_allocations.load();
    f.parse(body, 100000);
    return g_allocations.load() - before;
  };
  const long small = allocations(lines(10));
  ASSERT_EQ(f.r.rows_accepted, 10u);
  const long large = allocations(lines(2000));
  ASSERT_EQ(f.r.rows_accepted, 2000u);
  EXPECT_LE(large, small + 2);  // block data growth only
}

}  // namespace
}  // namespace sluice::test
