// bench/gen_rows.cpp — the same N rows, from a fixed seed, in every form the benchmarks send them.
//
//   sluice-gen-rows --table T --rows N [--seed S] [--per-request R] [--udp-bytes B]
//                   [--series-by id|keys] --out DIR
//     T = sensor_readings | mg_meter_readings (flux.mg_meter_readings) | observations
//     DIR/rows.csv            header-less CSV in the column order printed on stdout (psql \copy, INSERT clients)
//     DIR/bodies/NNNNNN.json  JSON arrays of R row objects           (POST /v1/write/<table>)
//     DIR/lp/NNNNNN.lp        the same rows as InfluxDB line protocol (POST /write?precision=ns)
//     DIR/index.tsv           one line per body: number, rows, the body's timestamp (ISO 8601, UTC)
//     DIR/udp.lp              the same rows as line protocol datagrams of at most B bytes (default 1400),
//                             separated by an empty line
//     DIR/entities.csv        what the rows reference: sensor ids (sensor_readings: FK to sensors),
//                             series "id,ba,type,subtype,units" (observations: FK to series); empty else
//
// Every body holds exactly one timestamp: R entities (sensors, devices, series) report once per
// second, and body k carries second k. So "the body's rows are visible" is "its timestamp is in the
// table" (the latency poller relies on it), and (time, entity) is unique as the keys require.
// Values are decimal strings with few digits, so CSV text, JSON numbers and line protocol floats
// denote exactly the same values (real columns included), and the contents of two runs can be
// compared.
//
// Line protocol measurements (bench/run maps them with "measurements"):
//   sensor   tags sensor_id, sensor_type, unit; fields value, quality          → sensor_readings
//   mg_meter tag device_id; 25 float fields named as the columns               → flux.mg_meter_readings
//   obs      tag series_id (or, with --series-by keys, tags ba, type, subtype for the series
//            resolver); fields value, quality_flag (string)                    → observations
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

namespace {

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "sluice-gen-rows: %s\nusage: sluice-gen-rows --table sensor_readings|mg_meter_readings|observations "
               "--rows N [--seed S] [--per-request R] [--udp-bytes B] [--series-by id|keys] --out DIR\n",
               why);
  std::exit(2);
}

FILE* open_or_die(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) {
    std::perror(path.c_str());
    std::exit(1);
  }
  return f;
}

void format_time(int64_t unix_s, char* out, size_t n) {
  const time_t secs = static_cast<time_t>(unix_s);
  struct tm tm;
  gmtime_r(&secs, &tm);
  std::snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                tm.tm_min, tm.tm_sec);
}

// A decimal with `decimals` digits after the point, from an integer in units of 10^-decimals.
std::string decimal(int64_t scaled, int decimals) {
  const bool neg = scaled < 0;
  uint64_t a = static_cast<uint64_t>(neg ? -scaled : scaled);
  uint64_t p = 1;
  for (int i = 0; i < decimals; ++i) p *= 10;
  char buf[64];
  if (decimals == 0) {
    std::snprintf(buf, sizeof buf, "%s%" PRIu64, neg ? "-" : "", a);
  } else {
    std::snprintf(buf, sizeof buf, "%s%" PRIu64 ".%0*" PRIu64, neg ? "-" : "", a / p, decimals, a % p);
  }
  return buf;
}

std::string uuid_for(uint64_t kind, uint64_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%08" PRIx64 "-0000-4000-8000-%012" PRIx64, kind, n);
  return buf;
}

enum class Role { time, tag, field_number, field_string };

struct Value {
  const char* column;
  Role role;
  std::string text;  // CSV/JSON/LP text (numbers unquoted in JSON)
};

const char* kMgColumns[] = {
    "frequency", "voltage_line_average", "current_phase_a", "current_phase_b", "current_phase_c",
    "current_phase_average", "power_phase_a_active", "power_phase_b_active", "power_phase_c_active",
    "power_total_active", "power_total_reactive", "power_total_apparent", "power_factor_total",
    "energy_imported_active", "energy_exported_active", "energy_imported_phase_a_active",
    "energy_exported_phase_a_active", "energy_imported_phase_b_active", "energy_exported_phase_b_active",
    "energy_imported_phase_c_active", "energy_exported_phase_c_active", "energy_imported_reactive",
    "energy_exported_reactive", "energy_imported_apparent", "energy_exported_apparent"};

const char* kBas[] = {"PJM", "CAISO", "MISO", "ERCOT", "SPP"};  // the five of sql/001_grid.sql

// LP escaping is unnecessary: generated tag values and strings have no spaces, commas or '='.
void append_json_string(std::string& out, const std::string& s) {
  out += '"';
  out += s;
  out += '"';
}

}  // namespace

int main(int argc, char** argv) {
  std::string table = "sensor_readings", out, series_by = "id";
  uint64_t rows = 100000, seed = 42, per_request = 1000, udp_bytes = 1400;
  for (int i = 1; i < argc; i += 2) {
    const std::string k = argv[i];
    if (i + 1 >= argc) usage(("missing value for " + k).c_str());
    const std::string v = argv[i + 1];
    if (k == "--table") table = v;
    else if (k == "--rows") rows = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--seed") seed = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--per-request" || k == "--sensors") per_request = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--udp-bytes") udp_bytes = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--series-by") series_by = v;
    else if (k == "--out") out = v;
    else usage(("unknown option " + k).c_str());
  }
  if (table == "flux.mg_meter_readings") table = "mg_meter_readings";
  if (out.empty()) usage("--out is required");
  if (table != "sensor_readings" && table != "mg_meter_readings" && table != "observations") {
    usage(("unknown table " + table).c_str());
  }
  if (rows == 0 || per_request == 0) usage("--rows and --per-request must be positive");
  if (udp_bytes < 512 || udp_bytes > 65000) usage("--udp-bytes must be within 512..65000");
  if (series_by != "id" && series_by != "keys") usage("--series-by must be id or keys");
  std::filesystem::create_directories(out + "/bodies");
  std::filesystem::create_directories(out + "/lp");

  const uint64_t entities = per_request;
  {
    FILE* e = open_or_die(out + "/entities.csv");
    for (uint64_t s = 0; s < entities; ++s) {
      if (table == "sensor_readings") std::fprintf(e, "sensor-%05" PRIu64 "\n", s);
      if (table == "observations") {
        std::fprintf(e, "%s,%s,bench,s%05" PRIu64 ",MW\n", uuid_for(0x5e, s).c_str(), kBas[s % 5], s);
      }
    }
    std::fclose(e);
  }

  std::mt19937_64 rng(seed);
  const char* types[] = {"temperature", "vibration", "pressure", "humidity"};
  const char* units[] = {"C", "mm/s", "kPa", "%"};
  const char* flags[] = {"good", "good", "good", "estimated"};
  const int64_t start_s = 1735689600;  // 2025-01-01T00:00:00Z

  FILE* csv = open_or_die(out + "/rows.csv");
  FILE* index = open_or_die(out + "/index.tsv");
  FILE* udp = open_or_die(out + "/udp.lp");
  std::string json_body, lp_body, udp_datagram, line, csv_line;
  std::vector<Value> values;
  char ts[64], path[512];
  bool first_datagram = true;

  auto flush_datagram = [&] {
    if (udp_datagram.empty()) return;
    if (!first_datagram) std::fputc('\n', udp);  // the empty line between datagrams
    std::fwrite(udp_datagram.data(), 1, udp_datagram.size(), udp);
    first_datagram = false;
    udp_datagram.clear();
  };

  for (uint64_t body_no = 0, r = 0; r < rows; ++body_no) {
    const int64_t t_s = start_s + static_cast<int64_t>(body_no);
    format_time(t_s, ts, sizeof ts);
    const std::string ts_ns = std::to_string(t_s) + "000000000";
    json_body = "[";
    lp_body.clear();
    uint64_t in_body = 0;
    for (; in_body < per_request && r < rows; ++in_body, ++r) {
      const uint64_t e = in_body;  // entity
      values.clear();
      const char* measurement = "";
      if (table == "sensor_readings") {
        measurement = "sensor";
        const int kind = static_cast<int>(e % 4);
        char id[32];
        std::snprintf(id, sizeof id, "sensor-%05" PRIu64, e);
        values.push_back({"timestamp", Role::time, ts});
        values.push_back({"sensor_id", Role::tag, id});
        values.push_back({"sensor_type", Role::tag, types[kind]});
        values.push_back({"value", Role::field_number, decimal(std::uniform_int_distribution<int64_t>(-500000, 5000000)(rng), 3)});
        values.push_back({"unit", Role::tag, units[kind]});
        values.push_back({"quality", Role::field_number, decimal(std::uniform_int_distribution<int64_t>(0, 100)(rng), 2)});
      } else if (table == "mg_meter_readings") {
        measurement = "mg_meter";
        values.push_back({"time", Role::time, ts});
        values.push_back({"device_id", Role::tag, uuid_for(0xde, e)});
        for (const char* c : kMgColumns) {
          values.push_back({c, Role::field_number, decimal(std::uniform_int_distribution<int64_t>(-99999, 999999)(rng), 2)});
        }
      } else {
        measurement = "obs";
        if (series_by == "id") {
          values.push_back({"series_id", Role::tag, uuid_for(0x5e, e)});
        } else {  // the resolver form: the series named by its business key (not a CSV column)
          values.push_back({"ba", Role::tag, kBas[e % 5]});
          values.push_back({"type", Role::tag, "bench"});
          char sub[32];
          std::snprintf(sub, sizeof sub, "s%05" PRIu64, e);
          values.push_back({"subtype", Role::tag, sub});
        }
        values.push_back({"ts", Role::time, ts});
        values.push_back({"value", Role::field_number, decimal(std::uniform_int_distribution<int64_t>(0, 99999999)(rng), 3)});
        values.push_back({"quality_flag", Role::field_string, flags[std::uniform_int_distribution<int>(0, 3)(rng)]});
      }

      // CSV and JSON.
      csv_line.clear();
      if (in_body > 0) json_body += ',';
      json_body += '{';
      bool first = true;
      for (const Value& v : values) {
        if (!csv_line.empty()) csv_line += ',';
        csv_line += v.text;
        if (!first) json_body += ',';
        first = false;
        append_json_string(json_body, v.column);
        json_body += ':';
        if (v.role == Role::field_number) json_body += v.text;
        else append_json_string(json_body, v.text);
      }
      json_body += '}';
      csv_line += '\n';
      if (series_by == "id") std::fwrite(csv_line.data(), 1, csv_line.size(), csv);

      // Line protocol.
      line = measurement;
      for (const Value& v : values) {
        if (v.role != Role::tag) continue;
        line += ',';
        line += v.column;
        line += '=';
        line += v.text;
      }
      first = true;
      for (const Value& v : values) {
        if (v.role != Role::field_number && v.role != Role::field_string) continue;
        line += first ? ' ' : ',';
        first = false;
        line += v.column;
        line += '=';
        if (v.role == Role::field_string) {
          line += '"';
          line += v.text;
          line += '"';
        } else {
          line += v.text;
        }
      }
      line += ' ';
      line += ts_ns;
      line += '\n';
      lp_body += line;
      if (udp_datagram.size() + line.size() > udp_bytes) flush_datagram();
      udp_datagram += line;
    }
    json_body += ']';
    std::snprintf(path, sizeof path, "%s/bodies/%06" PRIu64 ".json", out.c_str(), body_no);
    FILE* f = open_or_die(path);
    std::fwrite(json_body.data(), 1, json_body.size(), f);
    std::fclose(f);
    std::snprintf(path, sizeof path, "%s/lp/%06" PRIu64 ".lp", out.c_str(), body_no);
    f = open_or_die(path);
    std::fwrite(lp_body.data(), 1, lp_body.size(), f);
    std::fclose(f);
    std::fprintf(index, "%06" PRIu64 "\t%" PRIu64 "\t%s\n", body_no, in_body, ts);
  }
  flush_datagram();
  std::fclose(udp);
  std::fclose(index);
  std::fclose(csv);

  // The CSV column order (compare-copy and bench/run read it).
  if (table == "sensor_readings") {
    std::printf("timestamp,sensor_id,sensor_type,value,unit,quality\n");
  } else if (table == "mg_meter_readings") {
    std::printf("time,device_id");
    for (const char* c : kMgColumns) std::printf(",%s", c);
    std::printf("\n");
  } else {
    std::printf("series_id,ts,value,quality_flag\n");
  }
  return 0;
}
