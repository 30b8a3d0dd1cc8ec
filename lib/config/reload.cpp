#include "config/reload.h"

#include <set>

namespace sluice {
namespace {

// Top-level sections compared field by field below; every other section is compared as JSON.
const std::set<std::string> kFieldwiseSections = {"database", "pipeline", "batch", "http", "admin", "log"};
// Top-level sections replaced whole and live (auth: the bearer tokens, their scopes and rate limits).
const std::set<std::string> kLiveSections = {"auth"};

class Differ {
 public:
  explicit Differ(ReloadPlan& plan) : plan_(plan) {}

  template <typename T>
  void live(const std::string& name, const T& a, const T& b) {
    if (a != b) plan_.live_changes.push_back(name + ": " + show(a) + " -> " + show(b));
  }
  template <typename T>
  void restart(const std::string& name, const T& a, const T& b) {
    if (a != b) plan_.restart_required.push_back(name);
  }

 private:
  static std::string show(const std::string& s) { return "\"" + s + "\""; }
  static std::string show(bool b) { return b ? "true" : "false"; }
  template <typename T>
  static std::string show(const T& n) {
    return std::to_string(n);
  }
  ReloadPlan& plan_;
};

}  // namespace

ReloadPlan plan_reload(const Config& a, const Config& b) {
  ReloadPlan plan;
  Differ d(plan);
  d.live("log.level", a.log.level, b.log.level);
  d.live("batch.max_rows", a.batch.max_rows, b.batch.max_rows);
  d.live("batch.max_bytes", a.batch.max_bytes, b.batch.max_bytes);
  d.live("batch.max_age_ms", a.batch.max_age_ms, b.batch.max_age_ms);
  d.live("http.max_body_bytes", a.http.max_body_bytes, b.http.max_body_bytes);
  d.live("http.max_header_bytes", a.http.max_header_bytes, b.http.max_header_bytes);
  d.live("http.header_timeout_ms", a.http.header_timeout_ms, b.http.header_timeout_ms);
  d.live("http.body_timeout_ms", a.http.body_timeout_ms, b.http.body_timeout_ms);
  d.live("http.idle_timeout_ms", a.http.idle_timeout_ms, b.http.idle_timeout_ms);
  d.live("http.max_connections", a.http.max_connections, b.http.max_connections);
  d.live("http.max_rows_per_request", a.http.max_rows_per_request, b.http.max_rows_per_request);
  d.live("http.ack_timeout_ms", a.http.ack_timeout_ms, b.http.ack_timeout_ms);
  d.live("http.default_precision", a.http.default_precision, b.http.default_precision);
  d.live("http.max_connections_per_client", a.http.max_connections_per_client, b.http.max_connections_per_client);
  d.restart("http.tls.enabled", a.http.tls.enabled, b.http.tls.enabled);
  d.restart("http.tls.cert_file", a.http.tls.cert_file, b.http.tls.cert_file);
  d.restart("http.tls.key_file", a.http.tls.key_file, b.http.tls.key_file);
  d.restart("http.tls.client_ca_file", a.http.tls.client_ca_file, b.http.tls.client_ca_file);
  d.restart("http.tls.require_client_cert", a.http.tls.require_client_cert, b.http.tls.require_client_cert);

  d.restart("database.url", a.database.url, b.database.url);
  d.restart("database.connections", a.database.connections, b.database.connections);
  d.restart("database.migrations_dir", a.database.migrations_dir, b.database.migrations_dir);
  d.restart("pipeline.io_threads", a.pipeline.io_threads, b.pipeline.io_threads);
  d.restart("pipeline.ring_capacity", a.pipeline.ring_capacity, b.pipeline.ring_capacity);
  d.restart("batch.split_min_rows", a.batch.split_min_rows, b.batch.split_min_rows);
  d.restart("pipeline.writer_queue_batches", a.pipeline.writer_queue_batches, b.pipeline.writer_queue_batches);
  d.restart("http.enabled", a.http.enabled, b.http.enabled);
  d.restart("http.listen", a.http.listen, b.http.listen);
  d.restart("http.max_errors_reported", a.http.max_errors_reported, b.http.max_errors_reported);
  d.restart("http.ack", a.http.ack, b.http.ack);
  d.restart("http.idempotency_ttl_s", a.http.idempotency_ttl_s, b.http.idempotency_ttl_s);
  d.restart("admin.enabled", a.admin.enabled, b.admin.enabled);
  d.restart("admin.listen", a.admin.listen, b.admin.listen);

  // Every other section (udp, tables, measurements, policy, and any added later): as a whole.
  std::set<std::string> keys;
  for (const auto& [k, v] : a.sections) keys.insert(k);
  for (const auto& [k, v] : b.sections) keys.insert(k);
  for (const auto& k : keys) {
    if (kFieldwiseSections.count(k)) continue;
    const auto ia = a.sections.find(k);
    const auto ib = b.sections.find(k);
    const std::string va = ia == a.sections.end() ? std::string() : ia->second;
    const std::string vb = ib == b.sections.end() ? std::string() : ib->second;
    if (kLiveSections.count(k)) {
      if (va != vb) plan.live_changes.push_back(k + ": replaced");  // never printed: it holds token hashes
    } else {
      d.restart(k, va, vb);
    }
  }
  return plan;
}

Config apply_live_settings(const Config& running, const Config& next) {
  Config c = running;
  c.log.level = next.log.level;
  c.batch = next.batch;
  c.batch.split_min_rows = running.batch.split_min_rows;  // the writer pool's, fixed at start
  c.http.max_body_bytes = next.http.max_body_bytes;
  c.http.max_header_bytes = next.http.max_header_bytes;
  c.http.header_timeout_ms = next.http.header_timeout_ms;
  c.http.body_timeout_ms = next.http.body_timeout_ms;
  c.http.idle_timeout_ms = next.http.idle_timeout_ms;
  c.http.max_connections = next.http.max_connections;
  c.http.max_rows_per_request = next.http.max_rows_per_request;
  c.http.ack_timeout_ms = next.http.ack_timeout_ms;
  c.http.default_precision = next.http.default_precision;
  c.http.max_connections_per_client = next.http.max_connections_per_client;
  c.auth = next.auth;
  for (const auto& k : kLiveSections) {
    const auto it = next.sections.find(k);
    if (it == next.sections.end()) {
      c.sections.erase(k);
    } else {
      c.sections[k] = it->second;
    }
  }
  return c;
}

}  // namespace sluice
