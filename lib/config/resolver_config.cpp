// config/resolver_config.cpp — see resolver_config.h.
#include "config/resolver_config.h"

#include <set>

#include <nlohmann/json.hpp>

namespace sluice {

namespace {

using nlohmann::json;

bool string_list(const json& obj, const char* key, const std::string& path, std::vector<std::string>& out,
                 std::vector<std::string>& problems) {
  auto it = obj.find(key);
  if (it == obj.end()) return false;
  const std::string where = path + "." + key;
  if (!it->is_array()) {
    problems.push_back(where + ": expected an array of names");
    return true;
  }
  for (size_t i = 0; i < it->size(); ++i) {
    const json& v = (*it)[i];
    if (!v.is_string() || v.get<std::string>().empty()) {
      problems.push_back(where + "[" + std::to_string(i) + "]: expected a non-empty name");
      continue;
    }
    out.push_back(v.get<std::string>());
  }
  return true;
}

void string_value(const json& obj, const char* key, const std::string& path, std::string& out,
                  std::vector<std::string>& problems) {
  auto it = obj.find(key);
  if (it == obj.end()) return;
  if (!it->is_string() || it->get<std::string>().empty()) {
    problems.push_back(path + "." + key + ": expected a non-empty string");
    return;
  }
  out = it->get<std::string>();
}

template <typename Int>
void int_value(const json& obj, const char* key, const std::string& path, Int& out, long long min, long long max,
               std::vector<std::string>& problems) {
  auto it = obj.find(key);
  if (it == obj.end()) return;
  if (!it->is_number_integer()) {
    problems.push_back(path + "." + key + ": expected an integer");
    return;
  }
  const long long n = it->get<long long>();
  if (n < min || n > max) {
    problems.push_back(path + "." + key + ": " + std::to_string(n) + " is out of range [" + std::to_string(min) +
                       ", " + std::to_string(max) + "]");
    return;
  }
  out = static_cast<Int>(n);
}

}  // namespace

std::vector<ResolverConfig> parse_resolvers(const json& v, const std::string& path, const std::string& table,
                                            std::vector<std::string>& problems) {
  std::vector<ResolverConfig> out;
  if (!v.is_array()) {
    problems.push_back(path + ": expected an array of resolvers");
    return out;
  }
  static const std::set<std::string> known = {"column",     "keys",         "nullable_keys", "unknown",
                                              "lookup_table", "match",      "id_column",     "create_values",
                                              "lookup_sql", "create_sql",   "negative_ttl_ms", "cache_size"};
  std::set<std::string> columns;
  for (size_t i = 0; i < v.size(); ++i) {
    const std::string p = path + "[" + std::to_string(i) + "]";
    const json& o = v[i];
    if (!o.is_object()) {
      problems.push_back(p + ": expected an object");
      continue;
    }
    for (auto it = o.begin(); it != o.end(); ++it) {
      if (!known.count(it.key())) problems.push_back(p + "." + it.key() + ": unknown setting");
    }
    ResolverConfig r;
    r.table = table;
    string_value(o, "column", p, r.column, problems);
    if (!o.contains("column")) problems.push_back(p + ".column: required");
    if (!string_list(o, "keys", p, r.keys, problems)) problems.push_back(p + ".keys: required");
    if (o.contains("keys") && o["keys"].is_array() && o["keys"].empty()) {
      problems.push_back(p + ".keys: must name at least one key");
    }
    std::set<std::string> seen;
    for (const auto& k : r.keys) {
      if (!seen.insert(k).second) problems.push_back(p + ".keys: \"" + k + "\" is listed twice");
    }
    string_list(o, "nullable_keys", p, r.nullable_keys, problems);
    for (const auto& n : r.nullable_keys) {
      if (!seen.count(n)) problems.push_back(p + ".nullable_keys: \"" + n + "\" is not one of keys");
    }
    std::string unknown = "reject";
    string_value(o, "unknown", p, unknown, problems);
    if (unknown == "create") {
      r.unknown = UnknownKeyRule::create;
    } else if (unknown != "reject") {
      problems.push_back(p + ".unknown: \"" + unknown + "\" is not one of reject, create");
    }
    string_value(o, "lookup_table", p, r.lookup_table, problems);
    string_list(o, "match", p, r.match, problems);
    string_value(o, "id_column", p, r.id_column, problems);
    if (auto it = o.find("create_values"); it != o.end()) {
      if (!it->is_object()) {
        problems.push_back(p + ".create_values: expected an object {\"column\": constant}");
      } else {
        for (auto cv = it->begin(); cv != it->end(); ++cv) {
          if (cv->is_string()) {
            r.create_values.emplace_back(cv.key(), cv->get<std::string>());
          } else if (cv->is_number() || cv->is_boolean()) {
            r.create_values.emplace_back(cv.key(), cv->dump());
          } else {
            problems.push_back(p + ".create_values." + cv.key() + ": expected a string, number or boolean");
          }
        }
      }
    }
    string_value(o, "lookup_sql", p, r.lookup_sql, problems);
    string_value(o, "create_sql", p, r.create_sql, problems);
    int_value(o, "negative_ttl_ms", p, r.negative_ttl_ms, 0, 86'400'000, problems);
    int_value(o, "cache_size", p, r.cache_size, 1, 100'000'000, problems);

    const bool declarative = !r.lookup_table.empty();
    if (declarative && !r.lookup_sql.empty()) {
      problems.push_back(p + ": give either lookup_table (declarative form) or lookup_sql (SQL form), not both");
    } else if (!declarative && r.lookup_sql.empty()) {
      problems.push_back(p + ": lookup_table (declarative form) or lookup_sql (SQL form) is required");
    }
    if (declarative) {
      if (r.match.size() != r.keys.size()) {
        problems.push_back(p + ".match: " + std::to_string(r.match.size()) + " columns for " +
                           std::to_string(r.keys.size()) + " keys (one match column per key)");
      }
      if (r.id_column.empty()) problems.push_back(p + ".id_column: required with lookup_table");
      if (!r.create_sql.empty()) problems.push_back(p + ".create_sql: belongs to the SQL form (use create_values)");
    } else if (!r.lookup_sql.empty()) {
      if (!r.match.empty()) problems.push_back(p + ".match: belongs to the declarative form (lookup_table)");
      if (!r.id_column.empty()) problems.push_back(p + ".id_column: belongs to the declarative form (lookup_table)");
      if (!r.create_values.empty()) {
        problems.push_back(p + ".create_values: belongs to the declarative form (lookup_table)");
      }
      if (r.unknown == UnknownKeyRule::create && r.create_sql.empty()) {
        problems.push_back(p + ".create_sql: required with unknown \"create\" and lookup_sql");
      }
    }
    if (r.unknown == UnknownKeyRule::reject && (!r.create_sql.empty() || !r.create_values.empty())) {
      problems.push_back(p + ".unknown: create_sql/create_values are only used with unknown \"create\"");
    }
    if (!r.column.empty() && !columns.insert(r.column).second) {
      problems.push_back(p + ".column: \"" + r.column + "\" has more than one resolver");
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace sluice
