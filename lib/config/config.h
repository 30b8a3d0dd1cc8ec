// config/config.h — the typed configuration of sluiced, with documented defaults.
//
//   file (JSON, // and /* */ comments allowed) ──► load_config() ──► Config
//                         environment overrides ─┘     │ every problem collected, reported at once
//                                                      ▼
//                                        ConfigError("config.json: 3 problems: ...")
//
// Every field below has its default here and is documented in README.md ("Configuration").
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "config/resolver_config.h"
#include "config/security.h"
#include "config/timeseries.h"

namespace sluice {

struct DatabaseConfig {
  std::string url;                       // libpq URL or conninfo; env SLUICE_DATABASE_URL overrides
  std::string url_file;                  // file holding the URL (not with url); see database_url_sources
  std::string url_source;                // where `url` came from (set by load; logged, never the URL itself)
  int connections = 2;                   // COPY writer connections
  std::string migrations_dir = "sql";    // for `sluiced migrate`; relative to the working directory
};

struct PipelineConfig {
  int io_threads = 2;                    // HTTP/UDP threads, each with its own ring
  size_t ring_capacity = 1024;           // blocks per ring (rounded up to a power of two)
  size_t writer_queue_batches = 8;       // batches waiting for a writer before the batcher blocks
  std::string sink = "copy";             // "copy": writers COPY into PostgreSQL; "null": writers discard
                                         // batches and ack them committed (benchmarks: sluice's own ceiling)
};

struct BatchConfig {
  size_t max_rows = 20000;               // flush a table's batch at this many rows...
  size_t max_bytes = 8u << 20;           // ...or this many encoded bytes...
  int max_age_ms = 50;                   // ...or when its oldest row has waited this long
  size_t split_min_rows = 500;           // a batch taken while other writers wait is shared among
                                         // them in parts of at least this many rows; 0 = never
};

struct HttpConfig {
  bool enabled = true;
  std::string listen = "127.0.0.1:8080";
  size_t max_body_bytes = 16u << 20;     // also the limit for a gunzipped body
  size_t max_header_bytes = 16u << 10;
  int header_timeout_ms = 10000;
  int body_timeout_ms = 60000;
  int idle_timeout_ms = 60000;           // keep-alive connection without a request
  size_t max_connections = 1024;
  size_t max_rows_per_request = 100000;
  std::string default_precision = "s";   // epoch numbers in time columns: s, ms, us or ns
  int ack_timeout_ms = 30000;            // committed ack: answer 504 if the commit takes longer
  size_t max_errors_reported = 100;      // row errors listed in one response
  size_t max_connections_per_client = 0; // per client IP address; 0 = no per-client limit
  TlsConfig tls;                         // http.tls (config/security.h); enabled when present
  std::string ack = "committed";         // default ack mode (X-Sluice-Ack overrides): committed, spooled, accepted
  int idempotency_ttl_s = 86400;         // Idempotency-Key tokens are forgotten after this long
};

struct UdpConfig {
  std::string listen;                    // host:port
  std::string format = "ndjson";         // ndjson: one or more JSON row objects per datagram;
                                         // line: InfluxDB line protocol, mapped by `measurements`
  std::string table;                     // ndjson: target table (must be listed in tables); line: unused
  std::string precision = "s";           // default "ns" for format line
  size_t max_datagram_bytes = 65535;
  int recv_buffer_bytes = 8 << 20;
  std::vector<Cidr> allow;               // source networks accepted; empty = any (config/security.h)
};

struct AdminConfig {
  bool enabled = true;
  std::string listen = "127.0.0.1:9100";
};

// The disk spool (lib/spool/spool.h, README "Delivery"): `spooled` acks, and batches the writers
// cannot write while the database is unreachable.
struct SpoolConfig {
  bool enabled = false;
  std::string dir = "spool";             // relative to the working directory (systemd: /var/lib/sluice/spool)
  uint64_t max_bytes = uint64_t{1} << 30;      // all segment files together
  uint64_t segment_bytes = uint64_t{64} << 20; // rotate segments at this size
  int group_commit_us = 0;               // linger before an fdatasync to gather more appends
  bool fsync = true;                     // false: no fdatasync (tests, or a disk you do not trust anyway)
};

struct LogConfig {
  std::string level = "info";            // trace, debug, info, warn, error, critical, off
};

struct TableConfig {
  std::string name;                      // "table" (schema public) or "schema.table"
  std::string time_column;               // optional; default: the first NOT NULL timestamptz column
  std::string conflict = "error";        // duplicate key: error (dead letter), ignore, update (pg/copy_writer.h)
  std::optional<TimeseriesConfig> timeseries;  // lifecycle managed by lib/policy (config/timeseries.h)
  std::vector<ResolverConfig> resolvers;  // key columns looked up from business keys (config/resolver_config.h)
};

// One InfluxDB line protocol measurement → table mapping (the `measurements` array); turned into a
// MeasurementMapping (ingest/parse/line_mapping.h), whose header documents the rules.
struct MeasurementConfig {
  std::string measurement;               // "*" = any measurement without its own mapping
  std::string table;                     // config name of a listed table; empty = the measurement's name
  std::vector<std::pair<std::string, std::string>> tags, fields;  // renames: line name → column
  std::string extra_json_column;         // json/jsonb column collecting unmapped tags and fields
  std::string unmapped = "reject";       // "reject" the line or "ignore" the name (no extra_json_column)
  std::string measurement_column;        // text column receiving the measurement name
};

struct Config {
  std::string source;                    // file it was loaded from
  DatabaseConfig database;
  PipelineConfig pipeline;
  BatchConfig batch;
  HttpConfig http;
  std::vector<UdpConfig> udp;
  AdminConfig admin;
  LogConfig log;
  SpoolConfig spool;
  PolicySettings policy;                 // the `policy` block (config/timeseries.h)
  std::vector<TableConfig> tables;
  std::vector<MeasurementConfig> measurements;  // line protocol mappings (HTTP /write, /api/v2/write, UDP line)
  AuthConfig auth;                       // bearer tokens for writes (config/security.h)
  std::map<std::string, std::string> sections;  // top-level key → its JSON, canonical (config/reload.h)
};

class ConfigError : public std::runtime_error {
 public:
  ConfigError(const std::string& summary, std::vector<std::string> problems);
  const std::vector<std::string>& problems() const { return problems_; }

 private:
  std::vector<std::string> problems_;
};

// Reads, parses and validates; applies environment overrides (SLUICE_DATABASE_URL). Throws
// ConfigError listing every problem found, each prefixed with its JSON path.
//
// The database URL (it carries the password) is taken from the first source that is set:
//   1. env SLUICE_DATABASE_URL                       (url_source "env SLUICE_DATABASE_URL")
//   2. env SLUICE_DATABASE_URL_FILE: a file          (url_source "file <path>")
//   3. $CREDENTIALS_DIRECTORY/database-url, when that file exists (systemd LoadCredential=)
//   4. database.url_file                             (url_source "file <path>")
//   5. database.url                                  (url_source "config database.url")
// A file holds the URL alone; surrounding whitespace and the final newline are ignored. Never
// from the command line (it would show in ps and the journal).
Config load_config(const std::string& path);
Config parse_config(const std::string& text, const std::string& source_name);

// Splits "host:port" / "[v6]:port"; false when malformed.
bool split_host_port(const std::string& address, std::string& host, uint16_t& port);

}  // namespace sluice
