// config/resolver_config.h — the dimension resolvers of a table (`tables[].resolvers`).
//
//   "resolvers": [ { "column", "keys", "nullable_keys", "unknown",
//                    "lookup_table", "match", "id_column", "create_values"     (declarative form)
//                    | "lookup_sql", "create_sql",                             (SQL form)
//                    "negative_ttl_ms", "cache_size" } ]
//        │ parse_resolvers() (called by config.cpp for each table; problems collected, never thrown)
//        ▼
//   ResolverConfig ──► catalog/resolver.h (ResolverSet: checked against the catalog, SQL generated)
//
// The semantics (keys consumed from the rows, caching, unknown-key rules) are documented in
// catalog/resolver.h and in README.md ("Mapping" → "Resolvers").
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace sluice {

enum class UnknownKeyRule : uint8_t { reject, create };

struct ResolverConfig {
  std::string table;                    // config name of the table (set from tables[].name)
  std::string column;                   // the target column
  std::vector<std::string> keys;        // ordered key names senders provide ($1..$n)
  std::vector<std::string> nullable_keys;  // keys that may be absent (passed as NULL); the others are required
  UnknownKeyRule unknown = UnknownKeyRule::reject;
  // Declarative form: lookup_table.match[i] = keys[i]; returns id_column; create inserts the keys
  // into the match columns plus create_values (constants, as text literals).
  std::string lookup_table;             // "table" or "schema.table"
  std::vector<std::string> match;       // one column per key
  std::string id_column;
  std::vector<std::pair<std::string, std::string>> create_values;
  // SQL form: lookup_sql returns one row with one value for $1..$n; create_sql inserts the row.
  std::string lookup_sql, create_sql;
  int64_t negative_ttl_ms = 30000;      // how long an unknown (or failed) key is remembered
  size_t cache_size = 100000;           // entries per IO thread (and in the service's shared cache)
};

// Parses one table's "resolvers" array; every problem is appended with its JSON path.
std::vector<ResolverConfig> parse_resolvers(const nlohmann::json& v, const std::string& path,
                                            const std::string& table, std::vector<std::string>& problems);

}  // namespace sluice
