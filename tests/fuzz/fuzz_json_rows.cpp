// Fuzz target: JsonRowParser (both shapes) with a RowEncoder over a table that has one column of
// nearly every type. Checks the invariants of fuzz_common.h on every result.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.h"

namespace {

using namespace sluice;

std::vector<TableSchema> make_tables() {
  std::vector<TableSchema> tables(1);
  TableSchema& t = tables[0];
  t.schema = "public";
  t.name = "fuzz";
  t.config_name = "fuzz";
  t.columns.push_back(test::make_column("id", PgType::int8, true, true));
  t.columns.push_back(test::make_column("time", PgType::timestamptz, true));
  t.columns.push_back(test::make_column("device", PgType::text, true));
  t.columns.push_back(test::make_column("value", PgType::float8));
  t.columns.push_back(test::make_column("f4", PgType::float4));
  t.columns.push_back(test::make_column("i2", PgType::int2));
  t.columns.push_back(test::make_column("i4", PgType::int4));
  Column n = test::make_column("amount", PgType::numeric);
  n.numeric_precision = 8;
  n.numeric_scale = 2;
  t.columns.push_back(n);
  t.columns.push_back(test::make_column("big", PgType::numeric));
  t.columns.push_back(test::make_column("ok", PgType::boolean));
  Column v = test::make_column("code", PgType::varchar);
  v.max_chars = 8;
  t.columns.push_back(v);
  t.columns.push_back(test::make_column("sid", PgType::uuid));
  t.columns.push_back(test::make_column("day", PgType::date));
  t.columns.push_back(test::make_column("local", PgType::timestamp));
  t.columns.push_back(test::make_column("meta", PgType::jsonb));
  t.columns.push_back(test::make_column("raw", PgType::json));
  t.columns.push_back(test::make_column("note", PgType::text, false, true));
  t.time_column = 1;
  finish_table_schema(t);
  return tables;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<TableSchema> tables = make_tables();
  static RowEncoder encoder(tables[0]);
  static JsonRowParser parser(8);
  constexpr size_t kMaxErrors = 8;

  std::string body(reinterpret_cast<const char*>(data), size);
  reserve_json_padding(body);
  JsonParseResult r;
  for (JsonShape shape : {JsonShape::automatic, JsonShape::ndjson}) {
    encoder.set_precision(size % 2 ? EpochPrecision::ms : EpochPrecision::s);
    parser.parse(body, body.capacity(), shape, encoder, 0, 64, r);
    fuzz::check_result(r, tables, kMaxErrors);
  }
  return 0;
}
