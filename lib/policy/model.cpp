#include "policy/model.h"

#include <algorithm>
#include <cstdio>

namespace sluice::policy {

QualifiedName split_name(const std::string& name, const std::string& default_schema) {
  const auto dot = name.find('.');
  if (dot == std::string::npos) return {default_schema, name};
  return {name.substr(0, dot), name.substr(dot + 1)};
}

std::vector<DesiredTable> desired_from_config(const Config& config) {
  std::vector<DesiredTable> out;
  for (const auto& t : config.tables) {
    if (!t.timeseries) continue;
    DesiredTable d;
    d.config_name = t.name;
    d.table = split_name(t.name);
    d.ts = *t.timeseries;
    d.allow_destructive = t.timeseries->allow_destructive || config.policy.allow_destructive;
    out.push_back(std::move(d));
  }
  return out;
}

const char* mode_name(PolicyMode m) {
  switch (m) {
    case PolicyMode::timescaledb: return "timescaledb";
    case PolicyMode::timescaledb_apache: return "timescaledb-apache";
    case PolicyMode::plain_postgres: return "postgresql";
    case PolicyMode::unsupported: return "unsupported";
  }
  return "?";
}

const char* job_kind_name(JobKind k) {
  switch (k) {
    case JobKind::compression: return "compression";
    case JobKind::retention: return "retention";
    case JobKind::refresh: return "refresh";
    case JobKind::other: return "other";
  }
  return "?";
}

bool Detection::has_extension(const std::string& name) const {
  return std::find(extensions.begin(), extensions.end(), name) != extensions.end();
}

bool version_at_least(const std::string& version, int major, int minor) {
  int ma = 0, mi = 0;
  if (std::sscanf(version.c_str(), "%d.%d", &ma, &mi) != 2) return false;
  return ma > major || (ma == major && mi >= minor);
}

ModeReport classify(const Detection& d) {
  ModeReport r;
  const std::string pg = "PostgreSQL " + (d.server_version.empty() ? std::string("?") : d.server_version);
  if (!d.timescaledb_installed) {
    r.mode = PolicyMode::plain_postgres;
    r.summary = "TimescaleDB is not installed on " + pg +
                (d.timescaledb_available ? " (it is available: CREATE EXTENSION timescaledb enables it)" : "") +
                ": plain PostgreSQL fallback — native range partitions created ahead and on demand, retention "
                "drops whole partitions, continuous aggregates become summary tables refreshed by sluice, "
                "compression is unavailable";
    return r;
  }
  const std::string ts = "TimescaleDB " + d.timescaledb_version;
  if (!version_at_least(d.timescaledb_version, 2, 13)) {
    r.mode = PolicyMode::unsupported;
    r.summary = ts + " on " + pg + " is not supported: sluice needs TimescaleDB 2.13 or newer; nothing is changed";
    return r;
  }
  if (d.license == "apache") {
    r.mode = PolicyMode::timescaledb_apache;
    r.summary = ts + " on " + pg +
                " runs under the apache license (timescaledb.license = 'apache'): hypertables and chunk intervals "
                "are managed; compression, continuous aggregates, retention and refresh policies need the "
                "community license (timescaledb.license = 'timescale') and are reported as unavailable";
    return r;
  }
  r.mode = PolicyMode::timescaledb;
  r.summary = ts + " on " + pg + " (license: " + (d.license.empty() ? std::string("unknown") : d.license) +
              "): hypertables, compression, retention and continuous aggregates are managed";
  return r;
}

size_t TablePlan::pending() const {
  return static_cast<size_t>(std::count_if(steps.begin(), steps.end(), [](const Step& s) { return !s.skipped; }));
}

size_t Plan::pending() const {
  size_t n = 0;
  for (const auto& t : tables) n += t.pending();
  return n;
}

size_t Plan::skipped() const {
  size_t n = 0;
  for (const auto& t : tables) {
    for (const auto& s : t.steps) n += s.skipped ? 1 : 0;
  }
  return n;
}

std::string Plan::format() const {
  std::string out = "mode: " + std::string(mode_name(mode.mode)) + " — " + mode.summary + "\n";
  for (const auto& t : tables) {
    out += "\n" + t.table + ": ";
    if (t.steps.empty()) {
      out += "matches the config\n";
    } else {
      out += std::to_string(t.pending()) + " change(s)";
      const size_t sk = t.steps.size() - t.pending();
      if (sk) out += ", " + std::to_string(sk) + " skipped";
      out += "\n";
    }
    for (const auto& n : t.notes) out += "  note: " + n + "\n";
    for (const auto& s : t.steps) {
      out += std::string("  ") + (s.skipped ? "SKIPPED " : "- ") + s.description;
      if (s.destructive) out += " [destructive]";
      if (s.non_transactional) out += " [outside a transaction]";
      out += "\n";
      if (s.skipped) out += "    why: " + s.skip_reason + "\n";
      std::string sql = s.sql;
      size_t pos = 0;
      while (pos < sql.size()) {
        const auto nl = sql.find('\n', pos);
        out += "    " + sql.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos) + "\n";
        if (nl == std::string::npos) break;
        pos = nl + 1;
      }
    }
  }
  const size_t p = pending();
  const size_t sk = skipped();
  out += "\n";
  if (p == 0) {
    out += "no changes";
  } else {
    out += std::to_string(p) + " change(s) to apply";
  }
  if (sk) out += ", " + std::to_string(sk) + " skipped";
  out += "\n";
  return out;
}

}  // namespace sluice::policy
