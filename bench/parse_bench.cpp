// bench/parse_bench.cpp — micro-benchmark of the IO thread's per-row work: parse → map → encode.
//
//   fixed-seed body (JSON array | NDJSON | line protocol, 1000 rows) ──► JsonRowParser / LineMapper
//        ──► RowEncoder per table ──► JsonParseResult.blocks (binary COPY tuples)
//
// Tables are hand-built TableSchemas matching sql/ (sensor_readings, flux.mg_meter_readings,
// observations); no database is needed. Parser, mapper, encoders and the result object are reused
// across iterations as the IO thread reuses them; the blocks are freed each iteration (the IO thread
// hands them to the ring). items_per_second = rows parsed (good + bad) per second on one thread.
//
//   sluice-parse-bench [--rows N] [google benchmark flags, e.g. --benchmark_repetitions=5]
#include <benchmark/benchmark.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "catalog/catalog.h"
#include "catalog/row_encoder.h"
#include "ingest/parse/json_rows.h"
#include "ingest/parse/line_mapping.h"

namespace {

using namespace sluice;

constexpr uint64_t kSeed = 20240501;
constexpr int64_t kStartUnixMs = 1735689600000;  // 2025-01-01T00:00:00Z
constexpr int64_t kNowNs = 1735700000000000000;
size_t g_rows = 1000;

// --- tables (sql/001_grid.sql, 002_predictive_maintenance.sql, 003_flux.sql) ---------------------

Column col(std::string name, PgType type, bool not_null = false, bool has_default = false, int max_chars = -1) {
  Column c;
  c.name = std::move(name);
  c.type = type;
  c.not_null = not_null;
  c.has_default = has_default;
  c.max_chars = max_chars;
  return c;
}

const char* const kMeterFloats[] = {
    "frequency", "voltage_line_average", "current_phase_a", "current_phase_b", "current_phase_c",
    "current_phase_average", "power_phase_a_active", "power_phase_b_active", "power_phase_c_active",
    "power_total_active", "power_total_reactive", "power_total_apparent", "power_factor_total",
    "energy_imported_active", "energy_exported_active", "energy_imported_phase_a_active",
    "energy_exported_phase_a_active", "energy_imported_phase_b_active", "energy_exported_phase_b_active",
    "energy_imported_phase_c_active", "energy_exported_phase_c_active", "energy_imported_reactive",
    "energy_exported_reactive", "energy_imported_apparent", "energy_exported_apparent"};
constexpr int kMeterFloatCount = sizeof kMeterFloats / sizeof kMeterFloats[0];
static_assert(kMeterFloatCount == 25);

enum TableId : uint32_t { kSensorReadings = 0, kMeterReadings = 1, kObservations = 2 };

Catalog make_catalog() {
  Catalog c;
  TableSchema s;
  s.schema = "public";
  s.name = s.config_name = "sensor_readings";
  s.columns.push_back(col("timestamp", PgType::timestamptz, true));
  s.columns.push_back(col("sensor_id", PgType::varchar, true, false, 255));
  s.columns.push_back(col("sensor_type", PgType::varchar, false, false, 50));
  s.columns.push_back(col("value", PgType::float8, true));
  s.columns.push_back(col("unit", PgType::varchar, false, false, 50));
  s.columns.push_back(col("quality", PgType::float8));
  s.columns.push_back(col("sensor_metadata", PgType::jsonb));
  s.columns.push_back(col("id", PgType::int4, true, true));
  s.columns.push_back(col("created_at", PgType::timestamptz, false, true));
  s.columns.push_back(col("updated_at", PgType::timestamptz, false, true));
  s.time_column = 0;
  c.tables.push_back(std::move(s));

  TableSchema m;
  m.schema = "flux";
  m.name = "mg_meter_readings";
  m.config_name = "flux.mg_meter_readings";
  m.columns.push_back(col("time", PgType::timestamptz, true));
  m.columns.push_back(col("device_id", PgType::uuid, true));
  m.columns.push_back(col("id", PgType::uuid, true, true));
  m.columns.push_back(col("created_at", PgType::timestamptz, true, true));
  for (const char* f : kMeterFloats) m.columns.push_back(col(f, PgType::float4));
  m.time_column = 0;
  c.tables.push_back(std::move(m));

  TableSchema o;
  o.schema = "public";
  o.name = o.config_name = "observations";
  o.columns.push_back(col("series_id", PgType::uuid));
  o.columns.push_back(col("ts", PgType::timestamptz, true));
  Column value = col("value", PgType::numeric, true);
  value.numeric_precision = 12;
  value.numeric_scale = 3;
  o.columns.push_back(value);
  o.columns.push_back(col("quality_flag", PgType::varchar, false, true, 10));
  o.columns.push_back(col("created_at", PgType::timestamptz, false, true));
  o.time_column = 1;
  c.tables.push_back(std::move(o));

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

std::vector<MeasurementMapping> mappings() {
  std::vector<MeasurementMapping> m(3);
  m[0].measurement = "sensor_readings";
  m[0].extra_json_column = "sensor_metadata";  // unmapped tags/fields (e.g. firmware) land here
  m[1].measurement = "mg_meter";
  m[1].table = "flux.mg_meter_readings";
  m[2].measurement = "observations";
  return m;
}

// --- body generation (fixed seed) ---------------------------------------------------------------

struct Gen {
  std::mt19937_64 rng{kSeed};
  char buf[512];

  int uniform(int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); }
  // A decimal with `frac` digits in [lo, hi] (in units of 10^-frac), as text.
  std::string decimal(int lo, int hi, int frac) {
    const int v = uniform(lo, hi);
    int scale = 1;
    for (int i = 0; i < frac; ++i) scale *= 10;
    const int a = std::abs(v);
    std::snprintf(buf, sizeof buf, "%s%d.%0*d", v < 0 ? "-" : "", a / scale, frac, a % scale);
    return buf;
  }
  std::string uuid(uint64_t n) {  // stable per device/series
    std::mt19937_64 r(kSeed ^ (n * 0x9e3779b97f4a7c15ULL));
    const uint64_t a = r(), b = r();
    std::snprintf(buf, sizeof buf, "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-a%03" PRIx64 "-%012" PRIx64,
                  a >> 32, (a >> 16) & 0xffff, a & 0xfff, (b >> 48) & 0xfff, b & uint64_t{0xffffffffffff});
    return buf;
  }
};

std::string iso_time(int64_t unix_ms) {
  const time_t secs = static_cast<time_t>(unix_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  char out[64];
  std::snprintf(out, sizeof out, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
  return out;
}

enum class Format { json_array, ndjson, line };

// Appends all parts to `out` (plain appends: g++ 12 warns falsely on chains of string operator+).
template <typename... Parts>
void add(std::string& out, const Parts&... parts) {
  (out.append(std::string_view(parts)), ...);
}

// One row of `table` in the given format. `bad` makes the row fail in the encoder (wrong type, too
// long, out of range) or, for line protocol, in the parser; the body as a whole stays valid.
std::string make_row(Gen& g, uint32_t table, size_t i, Format fmt, bool bad) {
  const int64_t t_ms = kStartUnixMs + static_cast<int64_t>(i / 100) * 1000 + static_cast<int64_t>(i % 100);
  const bool json = fmt != Format::line;
  std::string r;
  if (table == kSensorReadings) {
    static const char* const types[] = {"temperature", "vibration", "pressure", "humidity"};
    static const char* const units[] = {"C", "mm/s", "kPa", "%"};
    const int kind = static_cast<int>(i % 4);
    char sensor[32];
    std::snprintf(sensor, sizeof sensor, "sensor-%05zu", i % 500);
    std::string value = g.decimal(-500000, 5000000, 3), quality = g.decimal(0, 100, 2);
    const bool meta = i % 10 == 3;  // some rows carry metadata
    if (bad) value = "\"n/a\"";  // a string into float8
    if (json) {
      add(r, "{\"timestamp\":\"", iso_time(t_ms), "\",\"sensor_id\":\"", sensor, "\",\"sensor_type\":\"", types[kind],
          "\",\"value\":", value, ",\"unit\":\"", units[kind], "\",\"quality\":", quality);
      if (meta) add(r, ",\"sensor_metadata\":{\"firmware\":\"1.4.2\",\"calibrated\":true}");
      add(r, "}");
    } else {
      add(r, "sensor_readings,sensor_id=", sensor, ",sensor_type=", types[kind], ",unit=", units[kind]);
      if (meta) add(r, ",firmware=1.4.2");
      add(r, " value=", value, ",quality=", quality, " ", std::to_string(t_ms * 1000000));
    }
  } else if (table == kMeterReadings) {
    const std::string device = g.uuid(i % 50);
    if (json) add(r, "{\"time\":\"", iso_time(t_ms), "\",\"device_id\":\"", device, "\"");
    else add(r, "mg_meter,device_id=", device, " ");
    for (int f = 0; f < kMeterFloatCount; ++f) {
      std::string v;
      if (f == 0) v = g.decimal(49900, 50100, 3);                 // frequency
      else if (f == 1) v = g.decimal(22500, 23500, 2);            // voltage
      else if (f < 6) v = g.decimal(0, 80000, 3);                 // currents
      else if (f < 12) v = g.decimal(-20000000, 20000000, 3);     // powers
      else if (f == 12) v = g.decimal(800, 1000, 3);              // power factor
      else v = g.decimal(0, 2000000000, 1);                       // energies
      if (bad && f == 7) v = "1e40";                              // overflows float4
      if (json) add(r, ",\"", kMeterFloats[f], "\":", v);
      else add(r, f ? "," : "", kMeterFloats[f], "=", v);
    }
    if (json) add(r, "}");
    else add(r, " ", std::to_string(t_ms * 1000000));
  } else {
    static const char* const flags[] = {"good", "good", "good", "estimated"};
    const std::string series = g.uuid(1000 + i % 200);
    const std::string value = bad ? "1234567890.5" : g.decimal(0, 2000000000, 3);  // bad: > 9 integer digits
    const char* flag = flags[i % 4];
    if (json) {
      add(r, "{\"series_id\":\"", series, "\",\"ts\":\"", iso_time(t_ms), "\",\"value\":", value,
          ",\"quality_flag\":\"", flag, "\"}");
    } else {
      add(r, "observations,series_id=", series, ",quality_flag=", flag, " value=", value, " ",
          std::to_string(t_ms * 1000000));
    }
  }
  if (bad && fmt == Format::line && i % 2 == 1) {  // half of the bad lines fail in the parser
    r.clear();
    add(r, "broken_line_without_fields ", std::to_string(t_ms));
  }
  return r;
}

struct Body {
  std::string text;  // capacity >= size + kJsonPadding
  uint32_t rows = 0, bad = 0;
};

// `table` < 0: line protocol mixing all three tables row by row. Every `bad_every`-th row is bad.
Body make_body(int table, Format fmt, size_t rows, size_t bad_every) {
  Gen g;
  Body b;
  if (fmt == Format::json_array) b.text.push_back('[');
  for (size_t i = 0; i < rows; ++i) {
    const bool bad = bad_every != 0 && i % bad_every == bad_every / 2;
    const uint32_t t = table < 0 ? static_cast<uint32_t>(i % 3) : static_cast<uint32_t>(table);
    if (i > 0 && fmt == Format::json_array) b.text.push_back(',');
    b.text += make_row(g, t, i, fmt, bad);
    if (fmt != Format::json_array) b.text.push_back('\n');
    ++b.rows;
    b.bad += bad;
  }
  if (fmt == Format::json_array) b.text.push_back(']');
  reserve_json_padding(b.text);
  return b;
}

// --- benchmarks -----------------------------------------------------------------------------------

std::vector<std::unique_ptr<RowEncoder>> make_encoders() {
  std::vector<std::unique_ptr<RowEncoder>> e;
  for (const auto& t : catalog().tables) e.push_back(std::make_unique<RowEncoder>(t));
  return e;
}

bool check(benchmark::State& state, const Body& body, const JsonParseResult& r) {
  if (!r.syntax_ok) {
    state.SkipWithError(("syntax error: " + r.syntax_error).c_str());
    return false;
  }
  if (r.rows_accepted != body.rows - body.bad || r.rows_rejected != body.bad) {
    char msg[256];
    std::snprintf(msg, sizeof msg, "accepted %u rejected %u, expected %u/%u; first error: %s", r.rows_accepted,
                  r.rows_rejected, body.rows - body.bad, body.bad, r.errors.empty() ? "-" : r.errors[0].message.c_str());
    state.SkipWithError(msg);
    return false;
  }
  return true;
}

void report(benchmark::State& state, const Body& body, const JsonParseResult& r) {
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations()) * body.rows);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(body.text.size()));
  size_t out_bytes = 0;
  for (const auto& b : r.blocks) out_bytes += b->data.size();
  state.counters["rows"] = body.rows;
  state.counters["bad"] = body.bad;
  state.counters["body_B/row"] = static_cast<double>(body.text.size()) / body.rows;
  state.counters["copy_B/row"] = static_cast<double>(out_bytes) / (body.rows - body.bad);
}

void bench_json(benchmark::State& state, uint32_t table, Format fmt, size_t bad_every) {
  const Body body = make_body(static_cast<int>(table), fmt, g_rows, bad_every);
  JsonRowParser parser;
  RowEncoder encoder(catalog().tables[table]);
  JsonParseResult result;
  const JsonShape shape = fmt == Format::ndjson ? JsonShape::ndjson : JsonShape::automatic;
  const std::string_view text(body.text);
  parser.parse(text, body.text.capacity(), shape, encoder, table, SIZE_MAX, result);  // warm up + check
  if (!check(state, body, result)) return;
  for (auto _ : state) {
    parser.parse(text, body.text.capacity(), shape, encoder, table, SIZE_MAX, result);
    benchmark::DoNotOptimize(result.blocks.data());
    benchmark::ClobberMemory();
  }
  report(state, body, result);
}

void bench_line(benchmark::State& state, int table, size_t bad_every) {
  const Body body = make_body(table, Format::line, g_rows, bad_every);
  LineMapper mapper(catalog(), mappings());
  auto encoders = make_encoders();
  LineParseResult result;
  const std::string_view text(body.text);
  mapper.parse(text, EpochPrecision::ns, kNowNs, encoders, SIZE_MAX, result);
  if (!check(state, body, result)) return;
  for (auto _ : state) {
    mapper.parse(text, EpochPrecision::ns, kNowNs, encoders, SIZE_MAX, result);
    benchmark::DoNotOptimize(result.blocks.data());
    benchmark::ClobberMemory();
  }
  report(state, body, result);
}

void register_all() {
  struct J {
    const char* name;
    uint32_t table;
    Format fmt;
    size_t bad_every;
  };
  const J json_cases[] = {
      {"json_array/sensor_readings", kSensorReadings, Format::json_array, 0},
      {"ndjson/sensor_readings", kSensorReadings, Format::ndjson, 0},
      {"json_array/sensor_readings/bad1pct", kSensorReadings, Format::json_array, 100},
      {"json_array/mg_meter_readings", kMeterReadings, Format::json_array, 0},
      {"ndjson/mg_meter_readings", kMeterReadings, Format::ndjson, 0},
      {"json_array/observations", kObservations, Format::json_array, 0},
      {"ndjson/observations", kObservations, Format::ndjson, 0},
  };
  for (const J& c : json_cases) {
    benchmark::RegisterBenchmark(c.name, [c](benchmark::State& s) { bench_json(s, c.table, c.fmt, c.bad_every); });
  }
  struct L {
    const char* name;
    int table;
    size_t bad_every;
  };
  const L line_cases[] = {
      {"line/sensor_readings", kSensorReadings, 0},
      {"line/sensor_readings/bad1pct", kSensorReadings, 100},
      {"line/mg_meter_readings", kMeterReadings, 0},
      {"line/observations", kObservations, 0},
      {"line/mixed3tables", -1, 0},
  };
  for (const L& c : line_cases) {
    benchmark::RegisterBenchmark(c.name, [c](benchmark::State& s) { bench_line(s, c.table, c.bad_every); });
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Our own flag first (Google Benchmark rejects flags it does not know).
  int out = 1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rows") == 0 && i + 1 < argc) {
      g_rows = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::strncmp(argv[i], "--rows=", 7) == 0) {
      g_rows = std::strtoull(argv[i] + 7, nullptr, 10);
    } else {
      argv[out++] = argv[i];
    }
  }
  argc = out;
  if (g_rows == 0) g_rows = 1;
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
