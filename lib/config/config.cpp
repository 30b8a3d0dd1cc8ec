#include "config/config.h"

#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string_view>

#include <nlohmann/json.hpp>

namespace sluice {
namespace {

using nlohmann::json;

std::string join_problems(const std::string& summary, const std::vector<std::string>& problems) {
  std::string s = summary;
  for (const auto& p : problems) s += "\n  - " + p;
  return s;
}

// Walks one JSON object: typed reads with range checks, and a report of keys nobody read
// (a misspelt key is an error, not a silently ignored setting).
class ObjectReader {
 public:
  ObjectReader(const json& obj, std::string path, std::vector<std::string>& problems)
      : obj_(obj), path_(std::move(path)), problems_(problems) {}

  ~ObjectReader() {
    if (!obj_.is_object()) return;
    for (auto it = obj_.begin(); it != obj_.end(); ++it) {
      if (!seen_.count(it.key())) problems_.push_back(at(it.key()) + ": unknown setting");
    }
  }

  std::string at(const std::string& key) const { return path_.empty() ? key : path_ + "." + key; }

  const json* get(const std::string& key) {
    seen_.insert(key);
    if (!obj_.is_object()) return nullptr;
    auto it = obj_.find(key);
    return it == obj_.end() ? nullptr : &*it;
  }

  void string(const std::string& key, std::string& out, bool required = false) {
    const json* v = get(key);
    if (!v) {
      if (required) problems_.push_back(at(key) + ": required");
      return;
    }
    if (!v->is_string()) {
      problems_.push_back(at(key) + ": expected a string");
      return;
    }
    out = v->get<std::string>();
    if (required && out.empty()) problems_.push_back(at(key) + ": must not be empty");
  }

  void boolean(const std::string& key, bool& out) {
    const json* v = get(key);
    if (!v) return;
    if (!v->is_boolean()) {
      problems_.push_back(at(key) + ": expected true or false");
      return;
    }
    out = v->get<bool>();
  }

  template <typename Int>
  void integer(const std::string& key, Int& out, long long min, long long max) {
    const json* v = get(key);
    if (!v) return;
    if (!v->is_number_integer()) {
      problems_.push_back(at(key) + ": expected an integer");
      return;
    }
    const long long n = v->is_number_unsigned() ? static_cast<long long>(v->get<unsigned long long>())
                                                : v->get<long long>();
    if (n < min || n > max) {
      problems_.push_back(at(key) + ": " + std::to_string(n) + " is out of range [" + std::to_string(min) +
                          ", " + std::to_string(max) + "]");
      return;
    }
    out = static_cast<Int>(n);
  }

 private:
  const json& obj_;
  std::string path_;
  std::vector<std::string>& problems_;
  std::set<std::string> seen_;
};

const json& object_or_empty(const json* v, const std::string& path, std::vector<std::string>& problems) {
  static const json empty = json::object();
  if (!v) return empty;
  if (!v->is_object()) {
    problems.push_back(path + ": expected an object");
    return empty;
  }
  return *v;
}

bool valid_precision(const std::string& p) { return p == "s" || p == "ms" || p == "us" || p == "ns"; }

bool valid_log_level(const std::string& l) {
  static const std::set<std::string> levels = {"trace", "debug", "info", "warn", "error", "critical", "off"};
  return levels.count(l) > 0;
}

void check_address(const std::string& path, const std::string& address, std::vector<std::string>& problems) {
  std::string host;
  uint16_t port = 0;
  if (!split_host_port(address, host, port)) {
    problems.push_back(path + ": \"" + address + "\" is not host:port");
  }
}

// Reads a credential file: the URL with surrounding whitespace removed. The problem names the
// file and the source, never the content.
bool read_secret_file(const std::string& path, const std::string& what, std::string& out,
                      std::vector<std::string>& problems) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    problems.push_back(what + ": cannot read \"" + path + "\"");
    return false;
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  std::string text = ss.str();
  const auto first = text.find_first_not_of(" \t\r\n");
  const auto last = text.find_last_not_of(" \t\r\n");
  if (first == std::string::npos) {
    problems.push_back(what + ": \"" + path + "\" is empty");
    return false;
  }
  text = text.substr(first, last - first + 1);
  if (text.find('\n') != std::string::npos) {
    problems.push_back(what + ": \"" + path + "\" must hold the URL on one line");
    return false;
  }
  out = std::move(text);
  return true;
}

// The precedence of config.h (load_config): the first source that is set wins.
void resolve_database_url(DatabaseConfig& db, std::vector<std::string>& problems) {
  if (const char* env_url = std::getenv("SLUICE_DATABASE_URL"); env_url && *env_url) {
    db.url = env_url;
    db.url_source = "env SLUICE_DATABASE_URL";
    return;
  }
  if (const char* file = std::getenv("SLUICE_DATABASE_URL_FILE"); file && *file) {
    db.url_source = std::string("file ") + file;
    read_secret_file(file, "SLUICE_DATABASE_URL_FILE", db.url, problems);
    return;
  }
  if (const char* dir = std::getenv("CREDENTIALS_DIRECTORY"); dir && *dir) {
    const std::string path = std::string(dir) + "/database-url";
    if (std::ifstream(path).good()) {
      db.url_source = "credential database-url";
      read_secret_file(path, "$CREDENTIALS_DIRECTORY/database-url", db.url, problems);
      return;
    }
  }
  if (!db.url_file.empty()) {
    db.url_source = "file " + db.url_file;
    read_secret_file(db.url_file, "database.url_file", db.url, problems);
    return;
  }
  db.url_source = "config database.url";
  if (db.url.empty()) {
    problems.push_back("database.url: required (or database.url_file, env SLUICE_DATABASE_URL or "
                       "SLUICE_DATABASE_URL_FILE, or the systemd credential database-url)");
  }
}

}  // namespace

ConfigError::ConfigError(const std::string& summary, std::vector<std::string> problems)
    : std::runtime_error(join_problems(summary, problems)), problems_(std::move(problems)) {}

bool split_host_port(const std::string& address, std::string& host, uint16_t& port) {
  std::string port_text;
  if (!address.empty() && address[0] == '[') {
    const auto close = address.find(']');
    if (close == std::string::npos || close + 1 >= address.size() || address[close + 1] != ':') return false;
    host = address.substr(1, close - 1);
    port_text = address.substr(close + 2);
  } else {
    const auto colon = address.rfind(':');
    if (colon == std::string::npos || address.find(':') != colon) return false;
    host = address.substr(0, colon);
    port_text = address.substr(colon + 1);
  }
  if (host.empty() || port_text.empty() || port_text.size() > 5) return false;
  unsigned long n = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') return false;
    n = n * 10 + static_cast<unsigned long>(c - '0');
  }
  if (n > 65535) return false;
  port = static_cast<uint16_t>(n);
  return true;
}

Config parse_config(const std::string& text, const std::string& source_name) {
  std::vector<std::string> problems;
  json root;
  try {
    root = json::parse(text, nullptr, /*allow_exceptions=*/true, /*ignore_comments=*/true);
  } catch (const json::parse_error& e) {
    throw ConfigError(source_name + ": not valid JSON", {std::string(e.what())});
  }
  if (!root.is_object()) throw ConfigError(source_name + ": invalid", {"the top level must be an object"});

  Config c;
  c.source = source_name;
  for (auto it = root.begin(); it != root.end(); ++it) c.sections[it.key()] = it->dump();
  {
    ObjectReader top(root, "", problems);

    ObjectReader db(object_or_empty(top.get("database"), "database", problems), "database", problems);
    db.string("url", c.database.url);
    db.string("url_file", c.database.url_file);
    if (!c.database.url.empty() && !c.database.url_file.empty()) {
      problems.push_back("database.url_file: set either database.url or database.url_file, not both");
    }
    db.integer("connections", c.database.connections, 1, 64);
    db.string("migrations_dir", c.database.migrations_dir);

    ObjectReader pipe(object_or_empty(top.get("pipeline"), "pipeline", problems), "pipeline", problems);
    pipe.integer("io_threads", c.pipeline.io_threads, 1, 64);
    pipe.integer("ring_capacity", c.pipeline.ring_capacity, 2, 1 << 20);
    pipe.integer("writer_queue_batches", c.pipeline.writer_queue_batches, 1, 1024);
    pipe.string("sink", c.pipeline.sink);
    if (c.pipeline.sink != "copy" && c.pipeline.sink != "null") {
      problems.push_back("pipeline.sink: \"" + c.pipeline.sink + "\" is not one of copy, null");
    }

    ObjectReader batch(object_or_empty(top.get("batch"), "batch", problems), "batch", problems);
    batch.integer("max_rows", c.batch.max_rows, 1, 10'000'000);
    batch.integer("max_bytes", c.batch.max_bytes, 1024, 1LL << 32);
    batch.integer("max_age_ms", c.batch.max_age_ms, 1, 60'000);
    batch.integer("split_min_rows", c.batch.split_min_rows, 0, 10'000'000);

    ObjectReader http(object_or_empty(top.get("http"), "http", problems), "http", problems);
    http.boolean("enabled", c.http.enabled);
    http.string("listen", c.http.listen);
    http.integer("max_body_bytes", c.http.max_body_bytes, 1024, 1LL << 32);
    http.integer("max_header_bytes", c.http.max_header_bytes, 1024, 1 << 20);
    http.integer("header_timeout_ms", c.http.header_timeout_ms, 10, 3'600'000);
    http.integer("body_timeout_ms", c.http.body_timeout_ms, 10, 3'600'000);
    http.integer("idle_timeout_ms", c.http.idle_timeout_ms, 10, 3'600'000);
    http.integer("max_connections", c.http.max_connections, 1, 1'000'000);
    http.integer("max_rows_per_request", c.http.max_rows_per_request, 1, 100'000'000);
    http.string("default_precision", c.http.default_precision);
    http.integer("ack_timeout_ms", c.http.ack_timeout_ms, 10, 3'600'000);
    http.integer("max_errors_reported", c.http.max_errors_reported, 0, 1'000'000);
    http.integer("max_connections_per_client", c.http.max_connections_per_client, 0, 1'000'000);
    if (const json* tls = http.get("tls")) parse_tls_config(*tls, "http.tls", c.http.tls, problems);
    http.string("ack", c.http.ack);
    http.integer("idempotency_ttl_s", c.http.idempotency_ttl_s, 60, 90 * 86400);
    if (c.http.ack != "committed" && c.http.ack != "spooled" && c.http.ack != "accepted") {
      problems.push_back("http.ack: \"" + c.http.ack + "\" is not one of committed, spooled, accepted");
    }
    if (c.http.enabled) check_address("http.listen", c.http.listen, problems);
    if (!valid_precision(c.http.default_precision)) {
      problems.push_back("http.default_precision: \"" + c.http.default_precision + "\" is not one of s, ms, us, ns");
    }

    if (const json* udp = top.get("udp")) {
      if (!udp->is_array()) {
        problems.push_back("udp: expected an array of listeners");
      } else {
        for (size_t i = 0; i < udp->size(); ++i) {
          const std::string path = "udp[" + std::to_string(i) + "]";
          UdpConfig u;
          ObjectReader r(object_or_empty(&(*udp)[i], path, problems), path, problems);
          r.string("listen", u.listen, true);
          r.string("format", u.format);
          r.string("table", u.table);
          std::string precision;
          r.string("precision", precision);
          r.integer("max_datagram_bytes", u.max_datagram_bytes, 64, 65535);
          r.integer("recv_buffer_bytes", u.recv_buffer_bytes, 4096, 1 << 30);
          if (const json* allow = r.get("allow")) parse_allow_list(*allow, path + ".allow", u.allow, problems);
          if (!u.listen.empty()) check_address(path + ".listen", u.listen, problems);
          if (u.format != "ndjson" && u.format != "line") {
            problems.push_back(path + ".format: \"" + u.format + "\" is not supported (supported: ndjson, line)");
          }
          // Line protocol counts in nanoseconds unless told otherwise, as InfluxDB does.
          u.precision = !precision.empty() ? precision : u.format == "line" ? "ns" : "s";
          if (u.format == "ndjson" && u.table.empty()) problems.push_back(path + ".table: required (format ndjson)");
          if (!valid_precision(u.precision)) {
            problems.push_back(path + ".precision: \"" + u.precision + "\" is not one of s, ms, us, ns");
          }
          c.udp.push_back(std::move(u));
        }
      }
    }

    ObjectReader admin(object_or_empty(top.get("admin"), "admin", problems), "admin", problems);
    admin.boolean("enabled", c.admin.enabled);
    admin.string("listen", c.admin.listen);
    if (c.admin.enabled) check_address("admin.listen", c.admin.listen, problems);

    ObjectReader spool(object_or_empty(top.get("spool"), "spool", problems), "spool", problems);
    spool.boolean("enabled", c.spool.enabled);
    spool.string("dir", c.spool.dir);
    spool.integer("max_bytes", c.spool.max_bytes, 1 << 16, 1LL << 50);
    spool.integer("segment_bytes", c.spool.segment_bytes, 1 << 12, 1LL << 40);
    spool.integer("group_commit_us", c.spool.group_commit_us, 0, 1'000'000);
    spool.boolean("fsync", c.spool.fsync);
    if (c.spool.enabled && c.spool.dir.empty()) problems.push_back("spool.dir: must not be empty");
    if (c.spool.segment_bytes > c.spool.max_bytes) {
      problems.push_back("spool.segment_bytes: larger than spool.max_bytes (" + std::to_string(c.spool.max_bytes) + ")");
    }
    if (c.http.ack == "spooled" && !c.spool.enabled) {
      problems.push_back("http.ack: \"spooled\" needs the spool (spool.enabled: true)");
    }

    ObjectReader log(object_or_empty(top.get("log"), "log", problems), "log", problems);
    log.string("level", c.log.level);
    if (!valid_log_level(c.log.level)) {
      problems.push_back("log.level: \"" + c.log.level + "\" is not one of trace, debug, info, warn, error, critical, off");
    }

    if (const json* ms = top.get("measurements")) {
      if (!ms->is_array()) {
        problems.push_back("measurements: expected an array of line protocol mappings");
      } else {
        for (size_t i = 0; i < ms->size(); ++i) {
          const std::string path = "measurements[" + std::to_string(i) + "]";
          MeasurementConfig m;
          ObjectReader r(object_or_empty(&(*ms)[i], path, problems), path, problems);
          r.string("measurement", m.measurement, true);
          r.string("table", m.table);
          for (const char* kind : {"tags", "fields"}) {
            const json* renames = r.get(kind);
            if (!renames) continue;
            if (!renames->is_object()) {
              problems.push_back(r.at(kind) + ": expected an object {\"name in the line\": \"column\"}");
              continue;
            }
            auto& out = std::string_view(kind) == "tags" ? m.tags : m.fields;
            for (auto it = renames->begin(); it != renames->end(); ++it) {
              if (!it->is_string() || it->get<std::string>().empty()) {
                problems.push_back(r.at(kind) + "." + it.key() + ": expected a column name");
                continue;
              }
              out.emplace_back(it.key(), it->get<std::string>());
            }
          }
          r.string("extra_json_column", m.extra_json_column);
          r.string("unmapped", m.unmapped);
          r.string("measurement_column", m.measurement_column);
          if (m.unmapped != "reject" && m.unmapped != "ignore") {
            problems.push_back(path + ".unmapped: \"" + m.unmapped + "\" is not one of reject, ignore");
          }
          if (m.measurement == "*" && m.table.empty()) {
            problems.push_back(path + ".table: required for the catch-all measurement \"*\"");
          }
          for (size_t j = 0; j < c.measurements.size(); ++j) {
            if (!m.measurement.empty() && c.measurements[j].measurement == m.measurement) {
              problems.push_back(path + ".measurement: \"" + m.measurement + "\" is mapped twice (also measurements[" +
                                 std::to_string(j) + "])");
            }
          }
          c.measurements.push_back(std::move(m));
        }
      }
    }

    if (const json* pol = top.get("policy")) c.policy = parse_policy_settings(*pol, "policy", problems);
    const json* auth = top.get("auth");  // parsed once the tables are known (scopes name them)

    const json* tables = top.get("tables");
    if (!tables || !tables->is_array() || tables->empty()) {
      problems.push_back("tables: required, a non-empty array of {\"name\": ...}");
    } else {
      std::set<std::string> names;
      for (size_t i = 0; i < tables->size(); ++i) {
        const std::string path = "tables[" + std::to_string(i) + "]";
        TableConfig t;
        ObjectReader r(object_or_empty(&(*tables)[i], path, problems), path, problems);
        r.string("name", t.name, true);
        r.string("time_column", t.time_column);
        r.string("conflict", t.conflict);
        if (t.conflict != "error" && t.conflict != "ignore" && t.conflict != "update") {
          problems.push_back(path + ".conflict: \"" + t.conflict + "\" is not one of error, ignore, update");
        }
        if (const json* ts = r.get("timeseries")) {
          t.timeseries = parse_timeseries(*ts, path + ".timeseries", t.time_column, problems);
          if (t.time_column.empty()) {
            t.time_column = t.timeseries->time_column;
          } else if (t.time_column != t.timeseries->time_column) {
            problems.push_back(path + ".timeseries.time_column: differs from " + path + ".time_column");
          }
        }
        if (const json* rs = r.get("resolvers")) t.resolvers = parse_resolvers(*rs, path + ".resolvers", t.name, problems);
        if (!t.name.empty() && !names.insert(t.name).second) {
          problems.push_back(path + ".name: table \"" + t.name + "\" is listed twice");
        }
        c.tables.push_back(std::move(t));
      }
      for (size_t i = 0; i < c.measurements.size(); ++i) {
        const auto& m = c.measurements[i];
        const std::string& table = m.table.empty() ? m.measurement : m.table;
        if (!table.empty() && table != "*" && !names.count(table)) {
          problems.push_back("measurements[" + std::to_string(i) + "]" + (m.table.empty() ? ".measurement" : ".table") +
                             ": table \"" + table + "\" is not listed in tables");
        }
      }
      for (size_t i = 0; i < c.udp.size(); ++i) {
        if (c.udp[i].format == "line" && c.measurements.empty()) {
          problems.push_back("udp[" + std::to_string(i) + "].format: \"line\" needs a non-empty measurements array");
        }
        if (c.udp[i].format == "line" && !c.udp[i].table.empty()) {
          problems.push_back("udp[" + std::to_string(i) + "].table: not used with format \"line\" (measurements map lines to tables)");
        }
        if (!c.udp[i].table.empty() && !names.count(c.udp[i].table)) {
          problems.push_back("udp[" + std::to_string(i) + "].table: \"" + c.udp[i].table +
                             "\" is not listed in tables");
        }
      }
      if (auth) {
        std::vector<std::string> table_names;
        for (const auto& t : c.tables) table_names.push_back(t.name);
        parse_auth_config(*auth, "auth", table_names, c.auth, problems);
      }
    }
  }

  resolve_database_url(c.database, problems);

  if (!problems.empty()) {
    // The summary is built before the vector is moved into the exception.
    const std::string summary = source_name + ": " + std::to_string(problems.size()) +
                                (problems.size() == 1 ? " problem" : " problems");
    throw ConfigError(summary, std::move(problems));
  }
  return c;
}

Config load_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot be read", {"file not found or not readable"});
  std::ostringstream ss;
  ss << in.rdbuf();
  return parse_config(ss.str(), path);
}

}  // namespace sluice
