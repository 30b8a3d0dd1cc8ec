// bench/gen_rows.cpp — the same N rows, from a fixed seed, as CSV (for the psql \copy reference)
// and as JSON request bodies (for sluice).
//
//   sluice-gen-rows --table sensor_readings --rows N --seed S --per-request R --out DIR
//     DIR/rows.csv          header-less CSV in the column order printed on stdout
//     DIR/bodies/NNNNNN.json  JSON arrays of R row objects, the same rows in the same order
//     DIR/sensors.csv       the sensor ids the rows use (the table has a FK to sensors)
//
// Values are chosen so that CSV text and JSON numbers denote exactly the same values.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>

namespace {

void usage() {
  std::fprintf(stderr, "usage: sluice-gen-rows --table sensor_readings --rows N [--seed S] [--per-request R] [--sensors K] --out DIR\n");
  std::exit(2);
}

void format_time(int64_t unix_ms, char* out, size_t n) {
  const time_t secs = static_cast<time_t>(unix_ms / 1000);
  struct tm tm;
  gmtime_r(&secs, &tm);
  std::snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(unix_ms % 1000));
}

}  // namespace

int main(int argc, char** argv) {
  std::string table = "sensor_readings", out;
  uint64_t rows = 100000, seed = 42, per_request = 1000, sensors = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string k = argv[i], v = argv[i + 1];
    if (k == "--table") table = v;
    else if (k == "--rows") rows = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--seed") seed = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--per-request") per_request = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--sensors") sensors = std::strtoull(v.c_str(), nullptr, 10);
    else if (k == "--out") out = v;
    else usage();
  }
  if (out.empty() || table != "sensor_readings" || rows == 0 || per_request == 0 || sensors == 0) usage();
  std::filesystem::create_directories(out + "/bodies");

  FILE* sensors_csv = std::fopen((out + "/sensors.csv").c_str(), "w");
  for (uint64_t s = 0; s < sensors; ++s) std::fprintf(sensors_csv, "sensor-%05" PRIu64 "\n", s);
  std::fclose(sensors_csv);

  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> value_milli(-500000, 5000000);
  std::uniform_int_distribution<int> quality_pct(0, 100);
  const char* types[] = {"temperature", "vibration", "pressure", "humidity"};
  const char* units[] = {"C", "mm/s", "kPa", "%"};

  FILE* csv = std::fopen((out + "/rows.csv").c_str(), "w");
  FILE* body = nullptr;
  uint64_t in_body = 0, body_no = 0;
  const int64_t start_ms = 1735689600000;  // 2025-01-01T00:00:00Z
  char ts[64], path[512];
  for (uint64_t r = 0; r < rows; ++r) {
    // Each sensor reports once per second: (timestamp, sensor_id) is unique, as the PK requires.
    const uint64_t sensor = r % sensors;
    const int64_t t_ms = start_ms + static_cast<int64_t>(r / sensors) * 1000;
    format_time(t_ms, ts, sizeof ts);
    const int kind = static_cast<int>(sensor % 4);
    const int v = value_milli(rng);
    const int q = quality_pct(rng);
    const char* sign = v < 0 ? "-" : "";
    const int av = std::abs(v);
    std::fprintf(csv, "%s,sensor-%05" PRIu64 ",%s,%s%d.%03d,%s,%d.%02d\n", ts, sensor, types[kind], sign, av / 1000,
                 av % 1000, units[kind], q / 100, q % 100);
    if (!body) {
      std::snprintf(path, sizeof path, "%s/bodies/%06" PRIu64 ".json", out.c_str(), body_no++);
      body = std::fopen(path, "w");
      std::fputc('[', body);
    } else {
      std::fputc(',', body);
    }
    std::fprintf(body,
                 "{\"timestamp\":\"%s\",\"sensor_id\":\"sensor-%05" PRIu64
                 "\",\"sensor_type\":\"%s\",\"value\":%s%d.%03d,\"unit\":\"%s\",\"quality\":%d.%02d}",
                 ts, sensor, types[kind], sign, av / 1000, av % 1000, units[kind], q / 100, q % 100);
    if (++in_body == per_request || r + 1 == rows) {
      std::fputs("]", body);
      std::fclose(body);
      body = nullptr;
      in_body = 0;
    }
  }
  std::fclose(csv);
  std::printf("timestamp,sensor_id,sensor_type,value,unit,quality\n");
  return 0;
}
