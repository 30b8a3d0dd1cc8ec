// Fuzz target: LineProtocolParser and LineMapper.
//   1. Every parsed line is written back as line protocol (escaping every token) and parsed again by
//      a second parser: the result must be identical (catches escaping/unescaping asymmetries).
//   2. The whole body goes through a LineMapper (renames, extra JSON column, catch-all with
//      measurement column and ignore policy) at two precisions; the invariants of fuzz_common.h must
//      hold, and every extra JSON value must be valid JSON (json_check).
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_common.h"
#include "ingest/parse/json_check.h"
#include "ingest/parse/line_mapping.h"

namespace {

using namespace sluice;

// readings: time, host, v float8, w int8, s text, ok bool, extra jsonb, id bigserial
// other:    time timestamp, meas varchar(16), value float8, site int4, amount numeric(10,3)
std::vector<TableSchema> make_tables() {
  std::vector<TableSchema> tables(2);
  TableSchema& r = tables[0];
  r.config_name = "readings";
  r.columns.push_back(test::make_column("time", PgType::timestamptz, true));
  r.columns.push_back(test::make_column("host", PgType::text));
  r.columns.push_back(test::make_column("v", PgType::float8));
  r.columns.push_back(test::make_column("w", PgType::int8));
  r.columns.push_back(test::make_column("s", PgType::text));
  r.columns.push_back(test::make_column("ok", PgType::boolean));
  r.columns.push_back(test::make_column("extra", PgType::jsonb));
  r.columns.push_back(test::make_column("id", PgType::int8, true, true));
  r.time_column = 0;
  TableSchema& o = tables[1];
  o.config_name = "other";
  o.columns.push_back(test::make_column("time", PgType::timestamp, true));
  Column meas = test::make_column("meas", PgType::varchar);
  meas.max_chars = 16;
  o.columns.push_back(meas);
  o.columns.push_back(test::make_column("value", PgType::float8));
  o.columns.push_back(test::make_column("site", PgType::int4));
  Column amount = test::make_column("amount", PgType::numeric);
  amount.numeric_precision = 10;
  amount.numeric_scale = 3;
  o.columns.push_back(amount);
  o.time_column = 0;
  for (size_t i = 0; i < tables.size(); ++i) {
    tables[i].id = static_cast<uint32_t>(i);
    finish_table_schema(tables[i]);
  }
  return tables;
}

std::vector<MeasurementMapping> make_mappings() {
  MeasurementMapping m;
  m.measurement = "m";
  m.table = "readings";
  m.tags = {{"h", "host"}};
  m.fields = {{"value", "v"}, {"n", "w"}};
  m.extra_json_column = "extra";
  MeasurementMapping star;
  star.measurement = "*";
  star.table = "other";
  star.measurement_column = "meas";
  star.unmapped = UnmappedPolicy::ignore;
  MeasurementMapping strict;
  strict.measurement = "strict";
  strict.table = "readings";
  return {m, star, strict};
}

void append_escaped(std::string& o, std::string_view s, bool measurement) {
  for (char c : s) {
    if (c == ',' || c == ' ' || c == '\\' || (!measurement && c == '=')) o.push_back('\\');
    o.push_back(c);
  }
}

void serialize(const ParsedLine& line, std::string& o) {
  o.clear();
  append_escaped(o, line.measurement, true);
  for (const LineTag& t : line.tags) {
    o.push_back(',');
    append_escaped(o, t.key, false);
    o.push_back('=');
    append_escaped(o, t.value, false);
  }
  o.push_back(' ');
  for (size_t i = 0; i < line.fields.size(); ++i) {
    const LineField& f = line.fields[i];
    if (i) o.push_back(',');
    append_escaped(o, f.key, false);
    o.push_back('=');
    switch (f.kind) {
      case LineFieldKind::string:
        o.push_back('"');
        for (char c : f.value) {
          if (c == '"' || c == '\\') o.push_back('\\');
          o.push_back(c);
        }
        o.push_back('"');
        break;
      case LineFieldKind::integer: o.append(f.value).push_back('i'); break;
      case LineFieldKind::unsigned_integer: o.append(f.value).push_back('u'); break;
      default: o.append(f.value); break;
    }
  }
  if (line.has_timestamp) o.append(" ").append(std::to_string(line.timestamp_ns));
}

void check_same(const ParsedLine& a, const ParsedLine& b) {
  using fuzz::check;
  check(a.measurement == b.measurement, "round trip: measurement");
  check(a.tags.size() == b.tags.size(), "round trip: tag count");
  for (size_t i = 0; i < a.tags.size(); ++i) {
    check(a.tags[i].key == b.tags[i].key && a.tags[i].value == b.tags[i].value, "round trip: tag");
  }
  check(a.fields.size() == b.fields.size(), "round trip: field count");
  for (size_t i = 0; i < a.fields.size(); ++i) {
    const LineField &x = a.fields[i], &y = b.fields[i];
    check(x.key == y.key && x.value == y.value && x.kind == y.kind && x.boolean == y.boolean, "round trip: field");
  }
  check(a.has_timestamp == b.has_timestamp && a.timestamp_ns == b.timestamp_ns, "round trip: timestamp");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::vector<TableSchema> tables = make_tables();
  static const Catalog catalog = [] {
    Catalog c;
    c.tables = tables;
    for (auto& t : c.tables) finish_table_schema(t);
    return c;
  }();
  static LineMapper mapper(catalog, make_mappings(), 8);
  static std::vector<std::unique_ptr<RowEncoder>> encoders = [] {
    std::vector<std::unique_ptr<RowEncoder>> e;
    for (const auto& t : catalog.tables) e.push_back(std::make_unique<RowEncoder>(t));
    return e;
  }();
  static LineProtocolParser parser, reparser;
  static std::string text;
  constexpr int64_t kNow = 1700000000123456789;

  const std::string_view body(reinterpret_cast<const char*>(data), size);

  // 1. Round trip of every good line.
  parser.reset(body, EpochPrecision::ns, kNow);
  ParsedLine line, again;
  LineError err;
  uint32_t last_line_no = 0;
  for (;;) {
    const LineStatus s = parser.next(line, err);
    if (s == LineStatus::end) break;
    const uint32_t no = s == LineStatus::line ? line.line_no : err.line_no;
    fuzz::check(no > last_line_no, "line numbers must increase");
    last_line_no = no;
    if (s == LineStatus::error) {
      fuzz::check(err.message.rfind("line " + std::to_string(no) + ": ", 0) == 0, "error message lacks its line");
      text.clear();
      append_for_message(text, err.message, SIZE_MAX);
      fuzz::check(text == err.message, "error message has control characters or invalid UTF-8");
      continue;
    }
    fuzz::check(!line.measurement.empty() && !line.fields.empty(), "line without measurement or fields");
    serialize(line, text);
    reparser.reset(text, EpochPrecision::ns, kNow);
    LineError err2;
    fuzz::check(reparser.next(again, err2) == LineStatus::line, "round trip: serialized line does not parse");
    check_same(line, again);
    fuzz::check(reparser.next(again, err2) == LineStatus::end, "round trip: more than one line");
  }

  // 2. Mapping and encoding.
  LineParseResult r;
  for (EpochPrecision p : {EpochPrecision::ns, EpochPrecision::s}) {
    mapper.parse(body, p, kNow, encoders, 64, r);
    fuzz::check_result(r, catalog.tables, 8);
    for (const auto& e : r.errors) fuzz::check(e.row >= 1 && e.row <= last_line_no, "error row is not a line");
    for (const auto& b : r.blocks) {
      if (b->table_id != 0) continue;
      for (const auto& tuple : test::decode_all(b->data)) {
        const std::string& extra = tuple.fields[6];  // time host v w s ok extra [id]
        if (extra == "NULL") continue;
        size_t off = 0;
        fuzz::check(!extra.empty() && extra[0] == 1, "jsonb version byte");
        fuzz::check(json_check(std::string_view(extra).substr(1), off), "extra column is not valid JSON");
      }
    }
  }
  return 0;
}
